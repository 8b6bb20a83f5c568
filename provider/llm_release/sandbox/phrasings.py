"""The sandbox bot's own wordings (``phrasings.yaml``): several per KB entry and per fixed answer.

Loaded once and checked on load (every list non-empty, only strings, the fixed answers present), so a
broken edit fails with the file and the key instead of as an odd reply at run time.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

RESOURCE = "phrasings.yaml"
FIXED_KEYS = ("fallback", "persona", "injection_refusal", "candidate_closing")
MIN_PHRASINGS = 3


class PhrasingsError(ValueError):
    """``phrasings.yaml`` (or a text file of the sandbox) is malformed; the message names file and key."""


def text_list(source: str, key: str, value: Any, minimum: int = 1) -> tuple[str, ...]:
    """``value`` as a tuple of non-blank strings with at least ``minimum`` items (else PhrasingsError)."""
    if not isinstance(value, list) or len(value) < minimum:
        raise PhrasingsError(f"{source}: {key}: expected a list of at least {minimum} texts, got {value!r:.80}")
    texts = []
    for position, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise PhrasingsError(f"{source}: {key}[{position}]: expected a non-blank text, got {item!r:.80}")
        texts.append(" ".join(item.split()))
    return tuple(texts)


def read_resource(name: str) -> tuple[str, Any]:
    """(path, parsed YAML) of a data file next to this module."""
    path = resources.files("llm_release.sandbox").joinpath(name)
    try:
        return str(path), yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PhrasingsError(f"{path}: cannot read: {exc}") from exc


@dataclass(frozen=True)
class Phrasings:
    """Entry id -> its wordings, and fixed answer name -> its wordings."""

    entries: dict[str, tuple[str, ...]]
    fixed: dict[str, tuple[str, ...]]
    source: str


@functools.lru_cache(maxsize=1)
def load_phrasings() -> Phrasings:
    source, data = read_resource(RESOURCE)
    if not isinstance(data, dict) or set(data) != {"entries", "fixed"}:
        raise PhrasingsError(f"{source}: expected exactly the top-level keys 'entries' and 'fixed'")
    if not isinstance(data["entries"], dict) or not isinstance(data["fixed"], dict):
        raise PhrasingsError(f"{source}: 'entries' and 'fixed' must be mappings")
    entries = {
        str(entry_id): text_list(source, f"entries.{entry_id}", value, MIN_PHRASINGS)
        for entry_id, value in data["entries"].items()
    }
    missing = [key for key in FIXED_KEYS if key not in data["fixed"]]
    if missing:
        raise PhrasingsError(f"{source}: fixed: missing {missing}")
    fixed = {str(key): text_list(source, f"fixed.{key}", value) for key, value in data["fixed"].items()}
    return Phrasings(entries, fixed, source)
