"""``PolicyError`` and the translation of pydantic errors into ``<file>: <field.path>: <reason>`` lines.

A release owner edits YAML, not Python: every problem must point at the file and the dotted path of the
key, say what is wrong in plain words and, for a misspelt key, suggest the closest valid one.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from llm_release.policy.release_policy import CROSS_FIELD_MARK


class PolicyError(ValueError):
    """Invalid policy or release config; ``problems`` holds one ``<file>: <path>: <reason>`` line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


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
    exc: ValidationError, label: str, model: type[BaseModel], prefix: Sequence[Any] = ()
) -> list[str]:
    """Turn a pydantic ``ValidationError`` into ``<label>: <path>: <reason>`` lines."""
    problems: list[str] = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        kind = error["type"]
        message = str(error["msg"])
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if kind == "extra_forbidden":
            key = str(loc[-1]) if loc else ""
            valid = fields_at(model, loc[:-1]) or []
            problems.append(
                f"{label}: {dotted((*prefix, *loc))}: extra inputs are not permitted{suggestion(key, valid)}"
            )
            continue
        if kind == "value_error" and CROSS_FIELD_MARK in message:
            for line in message.splitlines():
                if line.startswith(CROSS_FIELD_MARK) and ": " in line:
                    path, reason = line[len(CROSS_FIELD_MARK) :].split(": ", 1)
                    problems.append(f"{label}: {dotted((*prefix, *loc, path))}: {reason}")
                elif line.strip():
                    problems.append(f"{label}: {dotted((*prefix, *loc))}: {line}")
            continue
        if kind == "missing":
            problems.append(f"{label}: {dotted((*prefix, *loc))}: required field is missing")
            continue
        if kind.endswith(("_type", "_parsing")) or kind in (
            "literal_error",
            "enum",
            "greater_than",
            "greater_than_equal",
            "less_than",
            "less_than_equal",
            "string_pattern_mismatch",
            "too_short",
            "too_long",
        ):
            message = f"{message} (got {_short(error.get('input'))})"
        problems.append(f"{label}: {dotted((*prefix, *loc))}: {message}")
    return problems
