"""Reading policy YAML: duplicate-key detection, syntax errors with line numbers, ``${VAR}`` expansion,
and the deep merge used for ``extends:`` and release-config overrides."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from llm_release.policy.errors import PolicyError, dotted, suggestion

_ENV_PATTERN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAMED_LIST_KEYS = ("name", "id", "metric", "gate")
"""Keys that identify items of a list, so an override can address ``phases: {canary_tier_2: {...}}``."""


# libyaml's C parser when PyYAML was built with it: parsing is most of a DAG file's parse time.
_SafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[misc,valid-type]
    """PyYAML keeps the last of two equal keys silently; in a policy that hides an edit, so refuse."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first defined on line {seen[key]})",
                    key_node.start_mark,
                )
            with contextlib.suppress(TypeError):  # unhashable key: PyYAML reports it below
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """Parse ``path`` and return its top-level mapping, or raise ``PolicyError`` naming the file/line."""
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError([f"{label}: file not found"]) from None
    except OSError as exc:
        raise PolicyError([f"{label}: cannot read file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        raise PolicyError([f"{label}: {where}: YAML syntax error: {what}"]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([f"{label}: YAML error: {exc}"]) from None
    if data is None:
        raise PolicyError([f"{label}: (root): the file is empty"])
    if not isinstance(data, dict):
        raise PolicyError([f"{label}: (root): expected a mapping of settings, got {type(data).__name__}"])
    return data


def expand_env(data: Any, label: str, env: Mapping[str, str] | None = None) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string value; ``$$`` is a literal ``$``.

    Raises ``PolicyError`` listing every unset variable that has no default, with its field path.
    """
    environ = os.environ if env is None else env
    problems: list[str] = []

    def substitute(text: str, loc: tuple[Any, ...]) -> str:
        def one(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            problems.append(
                f"{label}: {dotted(loc)}: environment variable {name!r} is not set "
                f"(write ${{{name}:-default}} to give a default)"
            )
            return match.group(0)

        return _ENV_PATTERN.sub(one, text)

    def walk(value: Any, loc: tuple[Any, ...]) -> Any:
        if isinstance(value, str):
            return substitute(value, loc)
        if isinstance(value, dict):
            return {key: walk(item, (*loc, key)) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item, (*loc, index)) for index, item in enumerate(value)]
        return value

    result = walk(data, ())
    if problems:
        raise PolicyError(problems)
    return result


def _item_key(items: list[Any]) -> str | None:
    """The identifying key shared by every item of a list of mappings, if any."""
    for key in _NAMED_LIST_KEYS:
        if items and all(isinstance(item, dict) and key in item for item in items):
            return key
    return None


def deep_merge(base: Any, override: Any, label: str, loc: tuple[Any, ...] = ()) -> Any:
    """Overlay ``override`` on ``base``; raise ``PolicyError`` if an override names an unknown list item.

    Mappings merge key by key; a list is replaced by a list; a list of named items (phases, triggers,
    stages...) can also be overridden by a mapping from item name to a partial item.
    """
    merged, problems = merge_collect(base, override, label, loc)
    if problems:
        raise PolicyError(problems)
    return merged


def merge_collect(base: Any, override: Any, label: str, loc: tuple[Any, ...] = ()) -> tuple[Any, list[str]]:
    """``deep_merge`` that returns its problems instead of raising, so callers can report them together
    with the validation errors of the merged result (unknown items are skipped)."""
    problems: list[str] = []
    return _merge(base, override, label, loc, problems), problems


def _merge(base: Any, override: Any, label: str, loc: tuple[Any, ...], problems: list[str]) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value, label, (*loc, key), problems) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(override, dict):
        key = _item_key(base)
        if key is None:
            return override  # validation reports the type mismatch at this path
        names = [item[key] for item in base]
        merged_list = list(base)
        for name, patch in override.items():
            if name not in names:
                known = ", ".join(map(str, names))
                problems.append(
                    f"{label}: {dotted((*loc, name))}: no item with {key} {name!r}"
                    f"{suggestion(str(name), map(str, names))} (known: {known})"
                )
                continue
            index = names.index(name)
            merged_list[index] = _merge(base[index], patch, label, (*loc, index), problems)
        return merged_list
    return override
