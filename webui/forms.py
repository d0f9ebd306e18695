"""A step's JSON Schema as server-rendered form fields, and form posts back into schema types.

The schema is the single definition of a step's form: the engine validates against it
on completion; here it also decides the widget of each field, turns the posted strings
into the types the schema wants (an empty optional field is omitted, not sent as ""),
and explains validation errors in Bahasa Indonesia next to the field they belong to.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from jsonschema import Draft202012Validator, FormatChecker
from werkzeug.datastructures import MultiDict

from engine import attachments as evidence

YES_NO = {"YA", "TIDAK"}


@dataclass
class Field:
    name: str
    label: str
    description: str
    widget: str  # text|textarea|date|url|number|select|radio|checkbox|checkboxes|lines|files
    required: bool
    options: list[str] = field(default_factory=list)
    value: Any = None
    errors: list[str] = field(default_factory=list)
    accept: list[str] = field(default_factory=list)
    select_from: str | None = None
    choices: list[str] = field(default_factory=list)  # sha256s offered by x-lajur-select-from
    example: str | None = None
    max_length: int | None = None
    codes: list = field(default_factory=list)  # (code, name) offered by a classification field


def widget_of(prop: dict) -> str:
    """Which input a schema property gets (see processes/*/forms conventions)."""
    explicit = prop.get("x-lajur-widget")
    if explicit in ("files", "textarea", "classification"):
        return explicit
    kind = prop.get("type")
    if kind == "boolean":
        return "checkbox"
    if kind in ("integer", "number"):
        return "number"
    if kind == "array":
        items = prop.get("items", {})
        return "checkboxes" if "enum" in items else "lines"
    if "enum" in prop:
        return "radio" if set(prop["enum"]) <= YES_NO or len(prop["enum"]) <= 2 else "select"
    if prop.get("format") == "date":
        return "date"
    if prop.get("format") == "uri":
        return "url"
    return "text"


def build_fields(schema: dict, data: dict | None = None, errors: dict[str, list[str]] | None = None,
                 earlier: dict[str, list[str]] | None = None) -> list[Field]:
    """The form's fields in schema order, filled with `data` and annotated with `errors`."""
    data = data or {}
    errors = errors or {}
    earlier = earlier or {}
    required = set(schema.get("required", []))
    fields = []
    for name, prop in schema.get("properties", {}).items():
        widget = widget_of(prop)
        items = prop.get("items", {})
        value = data.get(name)
        if widget == "lines" and isinstance(value, list):
            value = "\n".join(str(v) for v in value)
        codes = []
        if widget == "classification":  # the SOP's default, chosen from the searchable list
            from engine import classification
            codes = list(classification.all_codes())
            value = prop.get("default") if value is None else value
        examples = prop.get("examples") or items.get("examples") or []
        select_from = prop.get("x-lajur-select-from")
        fields.append(Field(
            name=name, label=prop.get("title", name), description=prop.get("description", ""), widget=widget,
            required=name in required, options=list(prop.get("enum") or items.get("enum") or []), value=value,
            errors=errors.get(name, []), accept=list(prop.get("x-lajur-accept", [])), select_from=select_from,
            choices=list(earlier.get(select_from, [])) if select_from else [],
            example=str(examples[0]) if examples else None, max_length=prop.get("maxLength"), codes=codes))
    return fields


def coerce(schema: dict, form: MultiDict, uploaded: dict[str, list[str]] | None = None) -> dict:
    """Posted form values as the types the schema expects; empty optional values are left out.

    `uploaded` adds the sha256 of files just uploaded for a files field. Values that cannot
    be converted are kept as typed so validation reports them and the form shows them again.
    """
    uploaded = uploaded or {}
    data: dict[str, Any] = {}
    for name, prop in schema.get("properties", {}).items():
        widget = widget_of(prop)
        if widget == "checkbox":
            data[name] = form.get(name) in ("on", "true", "1", "yes", "YA")
        elif widget == "checkboxes":
            values = [v for v in form.getlist(name) if v]
            if values:
                data[name] = list(dict.fromkeys(values))
        elif widget == "files":
            values = [v.strip().lower() for v in form.getlist(name) if v.strip()] + uploaded.get(name, [])
            if values:
                data[name] = list(dict.fromkeys(values))
        elif widget == "lines":
            lines = [line.strip() for line in (form.get(name) or "").splitlines() if line.strip()]
            if lines:
                data[name] = list(dict.fromkeys(lines))
        elif widget == "number":
            raw = (form.get(name) or "").strip().replace(",", ".")
            if raw:
                try:
                    data[name] = int(raw) if prop.get("type") == "integer" else float(raw)
                except ValueError:
                    data[name] = raw
        else:
            raw = form.get(name)
            raw = raw.replace("\r\n", "\n").strip() if raw is not None else ""
            if raw:
                data[name] = raw
    return data


def validate(schema: dict, data: dict) -> dict[str, list[str]]:
    """Errors per top-level field ("" = the whole form), worded for staff in Bahasa Indonesia."""
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    properties = schema.get("properties", {})
    errors: dict[str, list[str]] = {}
    for error in validator.iter_errors(data):
        path = [str(p) for p in error.absolute_path]
        if error.validator == "required":
            missing = error.message.split("'")[1] if "'" in error.message else ""
            path = path + [missing] if missing else path
        name = path[0] if path else ""
        prop = properties.get(name, {})
        message = _message(error, prop)
        bucket = errors.setdefault(name if name in properties else "", [])
        if message not in bucket:
            bucket.append(message)
    return errors


def _message(error, prop: dict) -> str:
    kind, value = error.validator, error.validator_value
    if kind == "required":
        return _("Wajib diisi.")
    if kind == "minLength":
        return _("Wajib diisi.") if value <= 1 else _("Minimal %(n)d karakter.", n=value)
    if kind == "maxLength":
        return _("Maksimal %(n)d karakter.", n=value)
    if kind == "pattern":
        examples = prop.get("examples") or prop.get("items", {}).get("examples")
        if prop.get("x-lajur-widget") == "files":
            return _("Berkas bukti tidak dikenal.")
        if str(value).startswith("^https?://"):
            return _("Alamat harus diawali http:// atau https://.")
        return _("Format tidak sesuai, contoh: %(ex)s", ex=examples[0]) if examples else _("Format tidak sesuai.")
    if kind == "format":
        if value == "date":
            return _("Tanggal tidak valid.")
        if value in ("uri", "uri-reference"):
            return _("Alamat (URL) tidak valid.")
        return _("Format tidak sesuai.")
    if kind == "enum":
        return _("Pilih salah satu pilihan yang tersedia.")
    if kind == "const":
        return _("Wajib dicentang.") if value is True else _("Isian tidak sesuai.")
    if kind == "minItems":
        if prop.get("x-lajur-widget") == "files":
            return _("Unggah atau pilih minimal %(n)d berkas.", n=value)
        return _("Pilih minimal %(n)d.", n=value)
    if kind == "maxItems":
        return _("Paling banyak %(n)d.", n=value)
    if kind == "uniqueItems":
        return _("Ada isian yang ganda.")
    if kind == "type":
        return _("Harus berupa angka.") if value in ("integer", "number") else _("Jenis isian tidak sesuai.")
    if kind == "additionalProperties":
        return _("Formulir berisi isian yang tidak dikenal.")
    if kind in ("minimum", "exclusiveMinimum"):
        return _("Terlalu kecil (minimal %(n)s).", n=value)
    if kind in ("maximum", "exclusiveMaximum"):
        return _("Terlalu besar (maksimal %(n)s).", n=value)
    return error.message


# the evidence fields' rules are the engine's (engine.attachments), shared with the API
file_fields = evidence.evidence_fields
file_values = evidence.evidence_values
