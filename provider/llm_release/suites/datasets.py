"""Typed loaders for the shipped labelled sets and probe files (JSONL, one object per line).

Every record is validated before a suite sees it: a wrong type, a missing or unknown field, a blank
string or a duplicate id raises ``DatasetError`` naming the file, the line number and the field, so a
broken data file stops a release at load time instead of producing a quietly wrong score.
Loaders return pandas DataFrames with exactly the columns of the schema, in schema order.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

SHIPPED_FILES: dict[str, str] = {
    "eval_set": "eval_set.jsonl",
    "validation_set": "validation_set.jsonl",
    "injection_probes": "injection_probes.jsonl",
    "policy_probes": "policy_probes.jsonl",
    "persona_probes": "persona_probes.jsonl",
    "bias_probes": "bias_probes.jsonl",
}

INJECTION_CATEGORIES = ("role_override", "jailbreak", "indirect_injection", "system_prompt_extraction")
POLICY_PROBE_CATEGORIES = ("refund", "credit", "legal", "escalation", "privacy")
PERSONA_CATEGORIES = ("direct", "pressure", "roleplay", "trick")
GROUP_ATTRIBUTES = ("gender", "age")


class DatasetError(ValueError):
    """A data file is missing, is not JSONL, or a record breaks the schema (message says where)."""


def shipped_path(name: str) -> Path:
    """Path of a shipped data file: ``shipped_path("eval_set")`` or ``shipped_path("eval_set.jsonl")``."""
    stem = name[: -len(".jsonl")] if name.endswith(".jsonl") else name
    if stem not in SHIPPED_FILES:
        raise DatasetError(f"unknown shipped data set {name!r}; known: {', '.join(SHIPPED_FILES)}")
    return Path(str(resources.files("llm_release.data").joinpath(SHIPPED_FILES[stem])))


# ----------------------------------------------------------------------------- field checkers
Checker = Callable[[Any], str | None]
"""Returns None when the value is acceptable, else the reason it is not."""


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"expected a string, got {type(value).__name__}"
    if not value.strip():
        return "must not be blank"
    return None


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected true/false, got {type(value).__name__}"


def _text_list(min_items: int) -> Checker:
    def check(value: Any) -> str | None:
        if not isinstance(value, list):
            return f"expected a list of strings, got {type(value).__name__}"
        if len(value) < min_items:
            return f"expected at least {min_items} item(s), got {len(value)}"
        for position, item in enumerate(value):
            reason = _text(item)
            if reason:
                return f"item {position}: {reason}"
        return None

    return check


def _one_of(choices: Iterable[str]) -> Checker:
    allowed = tuple(choices)

    def check(value: Any) -> str | None:
        if value not in allowed:
            return f"expected one of {', '.join(allowed)}, got {value!r}"
        return None

    return check


@dataclass(frozen=True)
class Schema:
    """Field name -> checker (every field required, no extras) plus an optional whole-record rule."""

    name: str
    fields: dict[str, Checker]
    record_rule: Callable[[dict[str, Any]], tuple[str, str] | None] | None = None
    """Returns (field, reason) for a cross-field problem, else None."""

    @property
    def columns(self) -> list[str]:
        return list(self.fields)


def _eval_record_rule(record: dict[str, Any]) -> tuple[str, str] | None:
    if record["kb_id"] is None and not record["expects_escalation"]:
        return "kb_id", "null is only allowed for out-of-scope items that expect escalation"
    reference = record["reference"].lower()
    missing = [fact for fact in record["required_facts"] if fact.lower() not in reference]
    if missing:
        return "required_facts", f"not found in reference: {missing}"
    return None


EVAL_SCHEMA = Schema(
    "labelled eval item",
    {
        "id": _text,
        "query": _text,
        "reference": _text,
        "kb_id": _optional_text,
        "required_facts": _text_list(0),
        "category": _text,
        "safety_category": _optional_text,
        "expects_escalation": _boolean,
    },
    _eval_record_rule,
)

INJECTION_SCHEMA = Schema(
    "injection probe",
    {
        "id": _text,
        "category": _one_of(INJECTION_CATEGORIES),
        "prompt": _text,
        "forbidden_markers": _text_list(1),
    },
)

POLICY_PROBE_SCHEMA = Schema(
    "policy probe",
    {
        "id": _text,
        "category": _one_of(POLICY_PROBE_CATEGORIES),
        "query": _text,
        "boundary": _text,
    },
)

PERSONA_SCHEMA = Schema(
    "persona probe",
    {"id": _text, "category": _one_of(PERSONA_CATEGORIES), "prompt": _text},
)

BIAS_SCHEMA = Schema(
    "bias probe",
    {
        "id": _text,
        "base_id": _text,
        "group_attribute": _one_of(GROUP_ATTRIBUTES),
        "group": _text,
        "query": _text,
    },
)


def is_missing(value: Any) -> bool:
    """None or NaN: how a null field looks in a caller-built DataFrame."""
    return value is None or (isinstance(value, float) and value != value)


# ----------------------------------------------------------------------------- loading
def read_records(path: str | Path, schema: Schema) -> list[dict[str, Any]]:
    """Parse and validate a JSONL file; blank lines are skipped, ids must be unique."""
    source = str(path)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DatasetError(f"{source}: cannot read {schema.name} file: {exc}") from exc
    records: list[dict[str, Any]] = []
    first_line_of: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{source}:{number}: not valid JSON: {exc.msg}") from exc
        if not isinstance(record, dict):
            raise DatasetError(f"{source}:{number}: expected a JSON object, got {type(record).__name__}")
        missing = [name for name in schema.fields if name not in record]
        if missing:
            raise DatasetError(f"{source}:{number}: field '{missing[0]}': missing")
        extra = sorted(set(record) - set(schema.fields))
        if extra:
            raise DatasetError(f"{source}:{number}: field '{extra[0]}': unknown field for a {schema.name}")
        for name, check in schema.fields.items():
            reason = check(record[name])
            if reason:
                raise DatasetError(f"{source}:{number}: field '{name}': {reason}")
        if schema.record_rule is not None:
            problem = schema.record_rule(record)
            if problem:
                raise DatasetError(f"{source}:{number}: field '{problem[0]}': {problem[1]}")
        if record["id"] in first_line_of:
            raise DatasetError(
                f"{source}:{number}: field 'id': duplicate {record['id']!r} (first on line "
                f"{first_line_of[record['id']]})"
            )
        first_line_of[record["id"]] = number
        records.append(record)
    if not records:
        raise DatasetError(f"{source}: no {schema.name} records")
    return records


def load_jsonl(path: str | Path, schema: Schema) -> pd.DataFrame:
    """Validated records as a DataFrame with the schema's columns.

    Columns are object dtype (booleans as bool) so a JSON null stays ``None`` rather than becoming NaN
    under pandas' string inference, and list fields stay Python lists.
    """
    frame = pd.DataFrame(read_records(path, schema), columns=schema.columns, dtype=object)
    for name, check in schema.fields.items():
        if check is _boolean:
            frame[name] = frame[name].astype(bool)
    return frame


def _resolve(path: str | Path | None, name: str) -> Path:
    return shipped_path(name) if path is None else Path(path)


def load_eval_set(path: str | Path | None = None) -> pd.DataFrame:
    """Stage 1 internal eval set (default: shipped ``eval_set.jsonl``)."""
    return load_jsonl(_resolve(path, "eval_set"), EVAL_SCHEMA)


def load_validation_set(path: str | Path | None = None) -> pd.DataFrame:
    """Stage 2 held-out validation set (default: shipped ``validation_set.jsonl``)."""
    return load_jsonl(_resolve(path, "validation_set"), EVAL_SCHEMA)


def load_injection_probes(path: str | Path | None = None) -> pd.DataFrame:
    return load_jsonl(_resolve(path, "injection_probes"), INJECTION_SCHEMA)


def load_policy_probes(path: str | Path | None = None) -> pd.DataFrame:
    return load_jsonl(_resolve(path, "policy_probes"), POLICY_PROBE_SCHEMA)


def load_persona_probes(path: str | Path | None = None) -> pd.DataFrame:
    return load_jsonl(_resolve(path, "persona_probes"), PERSONA_SCHEMA)


def load_bias_probes(path: str | Path | None = None) -> pd.DataFrame:
    return load_jsonl(_resolve(path, "bias_probes"), BIAS_SCHEMA)


def check_kb_references(items: pd.DataFrame, kb: Any, source: str = "<items>") -> None:
    """Every non-null ``kb_id`` must name a KB entry; raises ``DatasetError`` naming the item id."""
    known = {entry.id for entry in kb.entries}
    for item_id, kb_id in zip(items["id"], items["kb_id"], strict=True):
        if not is_missing(kb_id) and kb_id not in known:
            raise DatasetError(
                f"{source}: item {item_id!r}: field 'kb_id': no knowledge-base entry {kb_id!r}"
            )


def require_columns(frame: pd.DataFrame, schema: Schema, what: str) -> None:
    """Suites accept caller-built DataFrames too; they must carry the schema's columns."""
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [column for column in schema.columns if column not in frame.columns]
    if missing:
        raise DatasetError(f"{what}: missing column(s) {', '.join(missing)}")
    if frame.empty:
        raise DatasetError(f"{what}: no rows")
    if frame["id"].duplicated().any():
        duplicate = frame.loc[frame["id"].duplicated(), "id"].iloc[0]
        raise DatasetError(f"{what}: duplicate id {duplicate!r}")
