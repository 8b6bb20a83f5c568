"""Reading policy YAML through the project's one reader (``llm_release.inputs``: size limit, strict UTF-8,
no anchors or aliases, no duplicate keys, line numbers), ``${VAR}`` expansion, and the deep merge used for
``extends:`` and release-config overrides."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llm_release.inputs import InputError, InputKind, YamlDocument, read_yaml_document
from llm_release.policy.errors import LineOf, PolicyError, dotted, suggestion, with_line

_ENV_PATTERN = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_NAMED_LIST_KEYS = ("name", "id", "metric", "gate")
"""Keys that identify items of a list, so an override can address ``phases: {canary_tier_2: {...}}``."""


def read_yaml_mapping_document(path: Path, kind: InputKind = "policy") -> YamlDocument:
    """Parse ``path`` into a document whose data is the top-level mapping, or raise ``PolicyError``.

    Every problem of the file itself (missing, too big, not UTF-8, YAML syntax, aliases, duplicate keys)
    comes from ``llm_release.inputs`` and is reported as ``<file>: line L, column C: <reason>``.
    """
    label = str(path)
    try:
        document = read_yaml_document(path, kind=kind)
    except InputError as exc:
        raise PolicyError.from_input(exc) from None
    if document.data is None:
        raise PolicyError([f"{label}: (root): the file is empty"])
    if not isinstance(document.data, dict):
        raise PolicyError(
            [f"{label}: (root): expected a mapping of settings, got {type(document.data).__name__}"]
        )
    return document


def read_yaml_mapping(path: Path, kind: InputKind = "policy") -> dict[str, Any]:
    """Parse ``path`` and return its top-level mapping, or raise ``PolicyError`` naming the file/line."""
    data: dict[str, Any] = read_yaml_mapping_document(path, kind).data
    return data


def expand_env(
    data: Any, label: str, env: Mapping[str, str] | None = None, line_of: LineOf | None = None
) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string value; ``$$`` is a literal ``$``.

    Raises ``PolicyError`` listing every unset variable that has no default, with its field path (and,
    with ``line_of``, its line). The walk copies every value, which is why the reader refuses YAML
    aliases: a copied alias tree is exponentially larger than the file.
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
            problem = (
                f"{label}: {dotted(loc)}: environment variable {name!r} is not set "
                f"(write ${{{name}:-default}} to give a default)"
            )
            problems.append(problem if line_of is None else with_line(problem, line_of(loc)))
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


def deep_merge(
    base: Any, override: Any, label: str, loc: tuple[Any, ...] = (), line_of: LineOf | None = None
) -> Any:
    """Overlay ``override`` on ``base``; raise ``PolicyError`` if an override names an unknown list item.

    Mappings merge key by key; a list is replaced by a list; a list of named items (phases, triggers,
    stages...) can also be overridden by a mapping from item name to a partial item. ``line_of`` (the
    override file's) adds the line to each problem.
    """
    merged, problems = merge_collect(base, override, label, loc, line_of)
    if problems:
        raise PolicyError(problems)
    return merged


def merge_collect(
    base: Any, override: Any, label: str, loc: tuple[Any, ...] = (), line_of: LineOf | None = None
) -> tuple[Any, list[str]]:
    """``deep_merge`` that returns its problems instead of raising, so callers can report them together
    with the validation errors of the merged result (unknown items are skipped)."""
    found: list[tuple[str, tuple[Any, ...]]] = []
    merged = _merge(base, override, label, loc, loc, found)
    problems = [
        problem if line_of is None else with_line(problem, line_of(file_loc)) for problem, file_loc in found
    ]
    return merged, problems


def _merge(
    base: Any,
    override: Any,
    label: str,
    loc: tuple[Any, ...],
    file_loc: tuple[Any, ...],
    found: list[tuple[str, tuple[Any, ...]]],
) -> Any:
    """Merge one level; ``loc`` is the path in the merged data (list items by index, as validation
    names them), ``file_loc`` the path as written in the override file (items by name), for lines."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            if key in base:
                merged[key] = _merge(base[key], value, label, (*loc, key), (*file_loc, key), found)
            else:
                merged[key] = value
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
                found.append(
                    (
                        f"{label}: {dotted((*loc, name))}: no item with {key} {name!r}"
                        f"{suggestion(str(name), map(str, names))} (known: {known})",
                        (*file_loc, name),
                    )
                )
                continue
            index = names.index(name)
            merged_list[index] = _merge(base[index], patch, label, (*loc, index), (*file_loc, name), found)
        return merged_list
    return override
