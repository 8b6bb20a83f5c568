"""Typed loaders for the shipped labelled sets and probe files (JSONL, one object per line).

Every record is validated before a suite sees it: a wrong type, a missing or unknown field, a blank
string or a duplicate id raises ``DatasetError`` naming the file, the line number and the field, so a
broken data file stops a release at load time instead of producing a quietly wrong score. Files are
read through ``llm_release.inputs`` (existence, size limit, strict UTF-8, one JSON object per line), and
a set smaller than the caller's ``min_rows`` is refused: too few items cannot support a rate.
Loaders return pandas DataFrames with exactly the columns of the schema, in schema order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from llm_release.inputs import InputError, JsonlRow, read_jsonl, row_count_problem

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
    """A data file is missing, too big, not UTF-8, not JSONL, too small, or a record breaks the schema
    (message says where). Errors of the reader itself are chained as ``__cause__`` (an ``InputError``)."""


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
def read_rows(
    path: str | Path,
    schema: Schema,
    *,
    field: str | None = None,
    max_bytes: int | None = None,
) -> list[JsonlRow]:
    """Parse and validate a JSONL file into (line, record) rows; blank lines are skipped, ids are unique.

    ``field`` is the setting that named the file (``datasets.eval_set``), for a file that is missing.
    """
    source = str(path)
    try:
        rows = read_jsonl(path, kind="dataset", max_bytes=max_bytes, field=field, what=f"{schema.name} file")
    except InputError as exc:
        raise DatasetError(str(exc)) from exc
    first_line_of: dict[str, int] = {}
    for number, record in rows:
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
    if not rows:
        raise DatasetError(f"{source}: no {schema.name} records")
    return rows


def read_records(path: str | Path, schema: Schema) -> list[dict[str, Any]]:
    """The validated records of a JSONL file, without their line numbers (see ``read_rows``)."""
    return [row.data for row in read_rows(path, schema)]


def check_min_rows(path: str | Path, count: int, min_rows: int | None, name: str) -> None:
    """Refuse a data set below ``min_rows`` items: ``<file>: N rows, at least M required (<name>)``."""
    problem = row_count_problem(path, count, min_rows, name)
    if problem:
        raise DatasetError(problem)


def load_jsonl(
    path: str | Path,
    schema: Schema,
    *,
    min_rows: int | None = None,
    name: str | None = None,
    field: str | None = None,
    max_bytes: int | None = None,
) -> pd.DataFrame:
    """Validated records as a DataFrame with the schema's columns.

    Columns are object dtype (booleans as bool) so a JSON null stays ``None`` rather than becoming NaN
    under pandas' string inference, and list fields stay Python lists. ``name`` is the data set's name
    in errors about its size (default: the schema's).
    """
    rows = read_rows(path, schema, field=field, max_bytes=max_bytes)
    check_min_rows(path, len(rows), min_rows, name or schema.name)
    frame = pd.DataFrame([row.data for row in rows], columns=schema.columns, dtype=object)
    for column, check in schema.fields.items():
        if check is _boolean:
            frame[column] = frame[column].astype(bool)
    return frame


def _load(
    name: str, schema: Schema, path: str | Path | None, min_rows: int | None, max_bytes: int | None
) -> pd.DataFrame:
    """Load the shipped set ``name``, or the override ``path``; an override that cannot be read is
    reported against the config setting that names it, ``datasets.<name>``."""
    if path is None:
        return load_jsonl(shipped_path(name), schema, min_rows=min_rows, name=name, max_bytes=max_bytes)
    return load_jsonl(path, schema, min_rows=min_rows, name=name, field=f"datasets.{name}", max_bytes=max_bytes)


def load_eval_set(
    path: str | Path | None = None, *, min_rows: int | None = None, max_bytes: int | None = None
) -> pd.DataFrame:
    """Stage 1 internal eval set (default: shipped ``eval_set.jsonl``)."""
    return _load("eval_set", EVAL_SCHEMA, path, min_rows, max_bytes)


def load_validation_set(
    path: str | Path | None = None, *, min_rows: int | None = None, max_bytes: int | None = None
) -> pd.DataFrame:
    """Stage 2 held-out validation set (default: shipped ``validation_set.jsonl``)."""
    return _load("validation_set", EVAL_SCHEMA, path, min_rows, max_bytes)


def load_injection_probes(
    path: str | Path | None = None, *, min_rows: int | None = None, max_bytes: int | None = None
) -> pd.DataFrame:
    """Prompt-injection probes (default: shipped ``injection_probes.jsonl``)."""
    return _load("injection_probes", INJECTION_SCHEMA, path, min_rows, max_bytes)


def load_policy_probes(
    path: str | Path | None = None, *, min_rows: int | None = None, max_bytes: int | None = None
) -> pd.DataFrame:
    """Business-policy boundary probes (default: shipped ``policy_probes.jsonl``)."""
    return _load("policy_probes", POLICY_PROBE_SCHEMA, path, min_rows, max_bytes)


def load_persona_probes(
    path: str | Path | None = None, *, min_rows: int | None = None, max_bytes: int | None = None
) -> pd.DataFrame:
    """Persona-break probes (default: shipped ``persona_probes.jsonl``)."""
    return _load("persona_probes", PERSONA_SCHEMA, path, min_rows, max_bytes)


def load_bias_probes(
    path: str | Path | None = None, *, min_rows: int | None = None, max_bytes: int | None = None
) -> pd.DataFrame:
    """Counterfactual bias probes (default: shipped ``bias_probes.jsonl``)."""
    return _load("bias_probes", BIAS_SCHEMA, path, min_rows, max_bytes)


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
