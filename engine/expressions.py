"""The restricted expression language of gateway conditions, timers and every other BPMN expression.

SpiffWorkflow evaluates expressions with Python's `eval` and full builtins, and swapping
builtins is no sandbox. Lajur evaluates them with `simpleeval` (a maintained evaluator
made for this) behind a whitelist of syntax checked the same way at deploy and at run time:

- names (form fields and process variables) and literals (numbers, strings, True/False/None,
  lists and tuples of those);
- comparisons `== != < <= > >=`, `in`, `not in`, `is`, `is not`;
- `and`, `or`, `not`, `x if c else y`; arithmetic `+ - * / // %` and unary minus;
- indexing `x[0]`, `x["key"]`; attribute reading of names not starting with `_`;
- calls of the functions in FUNCTIONS only, by name.

No imports, no lambdas or comprehensions, no other calls. Script tasks (code) are a
separate matter: refused at deploy unless the installation allows them (Settings.allow_scripts).
"""
from __future__ import annotations

import ast
import functools

from simpleeval import EvalWithCompoundTypes, InvalidExpression
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import TaskDataEnvironment

# The documented functions: small, pure, and bounded by their input.
FUNCTIONS = {
    "len": len, "int": int, "float": float, "str": str, "bool": bool,
    "abs": abs, "min": min, "max": max, "round": round,
    "lower": lambda s: str(s).lower(), "upper": lambda s: str(s).upper(), "strip": lambda s: str(s).strip(),
}

_ALLOWED = (
    ast.Expression, ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple,
    ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
    ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod,
    ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn, ast.Is, ast.IsNot,
    ast.IfExp, ast.Subscript, ast.Attribute, ast.Call,
)
MAX_LENGTH = 2000


class ExpressionError(ValueError):
    """An expression outside the language; `offset` is the 1-based line within the expression."""

    def __init__(self, message: str, line: int = 1):
        super().__init__(message)
        self.line = line


@functools.lru_cache(maxsize=4096)
def check(expression: str) -> frozenset[str]:
    """Refuse anything outside the language; return the data names the expression reads."""
    if len(expression) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"not a valid expression: {exc.msg}", exc.lineno or 1) from None
    names: set[str] = set()
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 1)
        if not isinstance(node, _ALLOWED):
            raise ExpressionError(f"{_describe(node)} is not allowed in an expression", line)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ExpressionError(f"attribute {node.attr!r} is not allowed (names starting with _)", line)
        if isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in FUNCTIONS):
                raise ExpressionError("only these functions may be called: " + ", ".join(sorted(FUNCTIONS)), line)
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise ExpressionError("functions take plain arguments only", line)
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise ExpressionError(f"name {node.id!r} is not allowed (names starting with _)", line)
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in calls and node.id not in ("True", "False", "None"):
            names.add(node.id)
    return frozenset(names)


def _describe(node) -> str:
    kinds = {ast.Lambda: "a lambda", ast.ListComp: "a comprehension", ast.GeneratorExp: "a generator",
             ast.DictComp: "a comprehension", ast.SetComp: "a comprehension", ast.NamedExpr: "assignment (:=)",
             ast.Pow: "the power operator **", ast.Dict: "a dict literal", ast.Set: "a set literal",
             ast.JoinedStr: "an f-string", ast.Starred: "unpacking (*)"}
    return kinds.get(type(node), f"{type(node).__name__} syntax")


def evaluate(expression: str, data: dict):
    """Evaluate a checked expression over `data`; errors are ExpressionError in plain words."""
    check(expression)
    evaluator = EvalWithCompoundTypes(names=dict(data), functions=FUNCTIONS)
    try:
        return evaluator.eval(expression.strip())
    except InvalidExpression as exc:
        raise ExpressionError(str(exc)) from None
    except (TypeError, ValueError, ZeroDivisionError, KeyError, IndexError) as exc:
        raise ExpressionError(f"{type(exc).__name__}: {exc}") from None


class ScriptsDisabled(RuntimeError):
    """A script reached at run time although the installation does not allow scripts."""


class RestrictedEnvironment(TaskDataEnvironment):
    """SpiffWorkflow's script environment with expressions in the restricted language.

    Scripts (script tasks, pre/post scripts) are Python: they run only when the installation
    allows them; deploy refuses them otherwise, and this refuses them at run time too."""

    def __init__(self, allow_scripts: bool = False):
        super().__init__({})
        self.allow_scripts = allow_scripts

    def evaluate(self, expression, context, external_context=None):
        return evaluate(expression, {**(external_context or {}), **context})

    def execute(self, script, context, external_context=None):
        if not self.allow_scripts:
            raise ScriptsDisabled("script tasks are disabled on this installation (LAJUR_ALLOW_SCRIPTS)")
        return super().execute(script, context, external_context)


class TimerValueError(ValueError):
    """A timer's expression gave something that is not an ISO 8601 time, duration or cycle."""


def check_timer_value(event_definition, value) -> None:
    """Raise TimerValueError unless `value` is what the timer kind needs (a duration for
    timeDuration, a date-time for timeDate, a cycle for timeCycle), with a fire time a calendar has."""
    from datetime import datetime, timezone
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import (CycleTimerEventDefinition,
                                                                  DurationTimerEventDefinition,
                                                                  TimeDateEventDefinition, TimerEventDefinition)
    if not isinstance(value, str):
        raise TimerValueError(f"gave {value!r}, not a text such as \"PT30M\"")
    try:
        if isinstance(event_definition, DurationTimerEventDefinition):
            parsed = TimerEventDefinition.parse_iso_duration(value)
            datetime.now(timezone.utc) + TimerEventDefinition.get_timedelta_from_start(parsed)
        elif isinstance(event_definition, TimeDateEventDefinition):
            TimerEventDefinition.parse_time_or_duration(value)
        elif isinstance(event_definition, CycleTimerEventDefinition):
            TimerEventDefinition.parse_iso_recurring_interval(value)
    except (OverflowError, ValueError, TypeError, AttributeError, IndexError):
        raise TimerValueError(f"{value[:100]!r} is out of range") from None
    except Exception:  # SpiffWorkflow's own parse errors are bare Exception("Invalid duration")
        raise TimerValueError(f"{value[:100]!r} is not an ISO 8601 duration or time (such as PT30M, P2D)") from None


class LajurScriptEngine(PythonScriptEngine):
    """SpiffWorkflow's script engine over the restricted environment, which also checks what a
    timer's expression gives: SpiffWorkflow parses it only after the evaluation, and its parse
    errors name no task, so a bad timer value would stop the instance without saying where.
    Checked here, the error is a WorkflowTaskException of the timer's task (engine/incidents.py)."""

    def evaluate(self, task, expression, external_context=None):
        value = super().evaluate(task, expression, external_context)
        event_definition = getattr(task.task_spec, "event_definition", None)
        if event_definition is not None and getattr(event_definition, "expression", None) == expression:
            from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
            from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
            if isinstance(event_definition, TimerEventDefinition):
                try:
                    check_timer_value(event_definition, value)
                except TimerValueError as exc:
                    raise WorkflowTaskException(f"timer value {exc}", task=task, exception=exc) from exc
        return value


def script_engine(allow_scripts: bool = False) -> PythonScriptEngine:
    return LajurScriptEngine(environment=RestrictedEnvironment(allow_scripts))
