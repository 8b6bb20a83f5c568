"""``PolicyError`` and the translation of pydantic errors into ``<file>: <field.path>: <reason>`` lines.

A release owner edits YAML, not Python: every problem must point at the file and the dotted path of the
key, say what is wrong in plain words and, for a misspelt key, suggest the closest valid one.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from llm_release.inputs import InputError
from llm_release.policy.release_policy import CROSS_FIELD_MARK

LineOf = Callable[[Sequence[Any]], "int | None"]
"""Line of a key path in the file being validated (``YamlDocument.line_of``), None when unknown."""


class PolicyError(ValueError):
    """Invalid policy or release config; ``problems`` holds one ``<file>: <path>: <reason>`` line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))

    @classmethod
    def from_input(cls, exc: InputError) -> PolicyError:
        """The reader's error in this module's shape, so a CLI or a test sees one format per file kind."""
        return cls([input_problem(exc)])


def input_problem(exc: InputError) -> str:
    """``<file>: line L, column C: <field>: <reason>``, leaving out the parts the error does not know.

    The position reads "line L, column C" rather than ``file:L:C`` to keep the ``<file>: <where>:
    <reason>`` shape of every other policy problem.
    """
    parts = [exc.path]
    if exc.line is not None:
        parts.append(f"line {exc.line}" + (f", column {exc.column}" if exc.column is not None else ""))
    if exc.field:
        parts.append(exc.field)
    parts.append(exc.reason)
    return ": ".join(parts)


def with_line(problem: str, line: int | None) -> str:
    """Append ``(line N)`` to a ``<file>: <path>: <reason>`` problem when the key's line is known."""
    return problem if line is None else f"{problem} (line {line})"


def dotted(loc: Iterable[Any]) -> str:
    text = ".".join(str(part) for part in loc)
    return text or "(root)"


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...] so we can walk to the model a location points into."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def fields_at(model: type[BaseModel], loc: Sequence[Any]) -> list[str] | None:
    """Names of the fields valid at ``loc`` (the mapping that contains the bad key), if it is a model."""
    current: Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
            continue
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if origin in (list, tuple, set, frozenset) and args:
            current = args[0]
        elif origin is dict and len(args) == 2:
            current = args[1]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def suggestion(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validation_problems(
    exc: ValidationError,
    label: str,
    model: type[BaseModel],
    prefix: Sequence[Any] = (),
    line_of: LineOf | None = None,
) -> list[str]:
    """Turn a pydantic ``ValidationError`` into ``<label>: <path>: <reason>`` lines.

    With ``line_of`` (the parsed file's ``YamlDocument.line_of``) each line ends in ``(line N)``: the
    line of the key, or of its nearest ancestor in the file (a missing field has no line of its own).
    """
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        for loc, reason in _error_lines(error, model):
            full = (*prefix, *loc)
            problem = f"{label}: {dotted(full)}: {reason}"
            problems.append(problem if line_of is None else with_line(problem, line_of(full)))
    return problems


_SHOW_INPUT = (
    "literal_error",
    "enum",
    "greater_than",
    "greater_than_equal",
    "less_than",
    "less_than_equal",
    "string_pattern_mismatch",
    "too_short",
    "too_long",
)
"""Error types whose message is clearer with the offending value shown."""


def _error_lines(error: Any, model: type[BaseModel]) -> list[tuple[tuple[Any, ...], str]]:
    """(location, reason) of each problem in one pydantic error (a cross-field error may hold several)."""
    loc = tuple(error["loc"])
    kind = error["type"]
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        valid = fields_at(model, loc[:-1]) or []
        return [(loc, f"extra inputs are not permitted{suggestion(key, valid)}")]
    if kind == "value_error" and CROSS_FIELD_MARK in message:
        lines: list[tuple[tuple[Any, ...], str]] = []
        for line in message.splitlines():
            if line.startswith(CROSS_FIELD_MARK) and ": " in line:
                path, reason = line[len(CROSS_FIELD_MARK) :].split(": ", 1)
                lines.append(((*loc, *path.split(".")), reason))
            elif line.strip():
                lines.append((loc, line))
        return lines
    if kind == "missing":
        return [(loc, "required field is missing")]
    if kind.endswith(("_type", "_parsing")) or kind in _SHOW_INPUT:
        message = f"{message} (got {_short(error.get('input'))})"
    return [(loc, message)]
