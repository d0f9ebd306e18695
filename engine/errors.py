"""Errors the engine raises; adapters map them to HTTP codes or CLI exit codes."""
import re

_OBJECT_REPR = re.compile(r"<([\w.]+)[^<>]*? at 0x[0-9a-fA-F]+>")


def _printable(text: str) -> str:
    """One line, no Python object reprs: control characters (a newline in a name) are shown escaped."""
    text = _OBJECT_REPR.sub(lambda m: m.group(1).rsplit(".", 1)[-1], str(text))
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class LajurError(Exception):
    """Base class: the message is a single line fit to show a user."""

    http_status = 400


class NotFound(LajurError):
    http_status = 404


class Forbidden(LajurError):
    """The user may not see or act on this (other office, other lane, missing role)."""

    http_status = 403


class OtherOffice(Forbidden):
    """The object belongs to another office. The web says 403; the API answers 404 exactly as
    for a missing id, so another office's ids reveal nothing."""


class Conflict(LajurError):
    """The object changed under the caller (a race lost, a task already taken or done)."""

    http_status = 409


class FormInvalid(LajurError):
    """Submitted data does not match the step's JSON Schema.

    `errors` maps a field path ("" for the whole form) to a list of messages.
    """

    http_status = 422

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        fields = ", ".join(f"{k or '(form)'}: {'; '.join(v)}" for k, v in errors.items())
        super().__init__(f"form data invalid: {fields}")


class DeployError(LajurError):
    """A process folder that cannot be deployed; says where (file, element, line)."""

    http_status = 422

    def __init__(self, message: str, file: str = "", element_id: str = "", line: int | str = ""):
        message, element_id = _printable(message), _printable(element_id or "")
        self.file, self.element_id, self.line, self.reason = file, element_id, line, message
        where = ":".join(str(p) for p in (file, line) if p not in ("", None))
        if element_id:
            where = f"{where} element '{element_id}'" if where else f"element '{element_id}'"
        super().__init__(f"{where}: {message}" if where else message)
        self.problems: list[DeployError] = [self]


class DeployProblems(DeployError):
    """Several independent problems of one folder, found in one pass (the studio marks each on its
    element). It reads as the first of them, so `lajur deploy` still refuses in one line."""

    def __init__(self, problems: list[DeployError]):
        first = problems[0]
        super().__init__(first.reason, file=first.file, element_id=first.element_id, line=first.line)
        self.problems = list(problems)
        if len(problems) > 1:
            self.args = (f"{self.args[0]} (and {len(problems) - 1} more problem"
                         f"{'s' if len(problems) > 2 else ''})",)
