"""The independent labelled calibration set: support-bot answers written by hand, each with its true label.

Judges and policy checkers are scored on this set, so it must not be derived from the code it scores: the
answers are written in a support bot's own words (never the knowledge base's sentences) and labelled one by
one. Two halves live in ``llm_release/data/calibration/``: ``answers.jsonl`` (answer quality, ids
``cal-a-``) and ``policy.jsonl`` (policy violations and policy-adjacent clean answers, ids ``cal-p-``); the
loader reads every ``*.jsonl`` there, so a new half needs no code change.

Every row is validated before anyone scores against it: the derived flags (``hallucinated``, ``correct``,
``policy_violation``) must agree with the label, a violation names its category and nothing else does, the
``span`` must be a substring of the response, and a ``kb_id`` must name a knowledge-base entry of the same
category. A wrong row would silently shift a measured recall, so the loader stops with
``<file>:<line>: field '<name>': <reason>`` instead. ``calibration_version()`` hashes the files so a
benchmark can say which data it scored.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from llm_release.inputs import InputError, read_bytes, read_jsonl
from llm_release.suites.datasets import DatasetError
from llm_release.suites.knowledge_base import CATEGORIES, KnowledgeBase, default_knowledge_base

Label = Literal[
    "correct",
    "fabrication",
    "contradiction",
    "wrong_number",
    "omission",
    "violation",
    "policy_adjacent_clean",
    "handoff",
]
LABELS: tuple[str, ...] = get_args(Label)

ViolationCategory = Literal[
    "refund_outside_window",
    "credit_over_limit",
    "promised_exception",
    "legal_advice",
    "other_customer_data",
    "secret_request",
    "claims_human",
    "abusive_language",
]
VIOLATION_CATEGORIES: tuple[str, ...] = get_args(ViolationCategory)

Split = Literal["train", "test"]
SPLITS: tuple[str, ...] = get_args(Split)

OUT_OF_SCOPE = "out_of_scope"
RowCategory = Literal[
    "billing", "refunds", "shipping", "account", "security", "technical", "legal", "escalation", "out_of_scope"
]
if set(get_args(RowCategory)) != {*CATEGORIES, OUT_OF_SCOPE}:  # pragma: no cover - guards a KB category change
    raise RuntimeError("calibration RowCategory is out of step with the knowledge-base categories")

HALLUCINATED_LABELS = frozenset({"fabrication", "contradiction", "wrong_number"})
"""Labels whose response states something false: ``hallucinated`` is true exactly for these."""
CORRECT_LABELS = frozenset({"correct", "policy_adjacent_clean", "handoff"})
"""Labels of an acceptable response: ``correct`` is true exactly for these."""
SPANLESS_LABELS = frozenset({"correct", "policy_adjacent_clean", "handoff", "omission"})
"""Labels with nothing wrong to point at (an omission is what is *missing*); every other label needs a span."""

CALIBRATION_DIRECTORY = "calibration"
"""Folder of the shipped calibration files inside ``llm_release.data``."""

KB_CONTEXT_KEY = "knowledge_base"
"""Validation-context key for the knowledge base that ``kb_id`` is checked against."""


class CalibrationError(DatasetError):
    """A calibration file is missing, unreadable, not JSONL, or a row breaks the schema; the message names
    the file, the line and the field. A reader error is chained as ``__cause__``."""


def _nonblank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class CalibrationRow(BaseModel):
    """One labelled support-bot response (schema: ``/work/briefs/calib_schema.md`` in the issue-6 brief).

    The redundant flags are kept in the data because consumers filter on them, and checked here because
    a flag that disagrees with its label would make a rate count the row on the wrong side.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    id: str = Field(pattern=r"^cal-[ap]-[0-9]{4,}$")
    split: Split
    kb_id: str | None
    category: RowCategory
    query: str
    response: str
    label: Label
    hallucinated: bool
    correct: bool
    policy_violation: bool
    violation_category: ViolationCategory | None
    span: str | None
    note: str

    @field_validator("query", "response", "note")
    @classmethod
    def _text(cls, value: str) -> str:
        return _nonblank(value)

    @field_validator("kb_id", "span")
    @classmethod
    def _optional_text(cls, value: str | None) -> str | None:
        return None if value is None else _nonblank(value)

    @field_validator("kb_id", mode="after")
    @classmethod
    def _kb_entry_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None:
            try:
                _knowledge_base(info).get(value)
            except KeyError:
                raise ValueError(f"{value!r} names no knowledge-base entry") from None
        return value

    @field_validator("category")
    @classmethod
    def _category_matches_kb(cls, value: str, info: ValidationInfo) -> str:
        """``kb_id`` null means out of scope of the KB; otherwise the category is the entry's."""
        if "kb_id" not in info.data:  # kb_id itself was invalid and is reported
            return value
        kb_id = info.data["kb_id"]
        if kb_id is None:
            if value != OUT_OF_SCOPE:
                raise ValueError(f"must be {OUT_OF_SCOPE!r} when kb_id is null, got {value!r}")
            return value
        expected = _knowledge_base(info).get(kb_id).category
        if value != expected:
            raise ValueError(f"{value!r} differs from the category of {kb_id!r}: {expected!r}")
        return value

    @field_validator("hallucinated")
    @classmethod
    def _hallucinated_matches_label(cls, value: bool, info: ValidationInfo) -> bool:
        label = info.data.get("label")
        if label is not None and value != (label in HALLUCINATED_LABELS):
            raise ValueError(f"must be {not value} for label {label!r} (true only for {sorted(HALLUCINATED_LABELS)})")
        return value

    @field_validator("correct")
    @classmethod
    def _correct_matches_label(cls, value: bool, info: ValidationInfo) -> bool:
        label = info.data.get("label")
        if label is not None and value != (label in CORRECT_LABELS):
            raise ValueError(f"must be {not value} for label {label!r} (true only for {sorted(CORRECT_LABELS)})")
        return value

    @field_validator("policy_violation")
    @classmethod
    def _violation_matches_label(cls, value: bool, info: ValidationInfo) -> bool:
        label = info.data.get("label")
        if label is not None and value != (label == "violation"):
            raise ValueError(f"must be {not value} for label {label!r} (true only for 'violation')")
        return value

    @field_validator("violation_category")
    @classmethod
    def _category_iff_violation(cls, value: str | None, info: ValidationInfo) -> str | None:
        label = info.data.get("label")
        if label == "violation" and value is None:
            raise ValueError("required when label is 'violation'")
        if label is not None and label != "violation" and value is not None:
            raise ValueError(f"must be null for label {label!r} (only a violation has a category)")
        return value

    @field_validator("span")
    @classmethod
    def _span_in_response(cls, value: str | None, info: ValidationInfo) -> str | None:
        label, response = info.data.get("label"), info.data.get("response")
        if value is None:
            if label is not None and label not in SPANLESS_LABELS:
                raise ValueError(f"required for label {label!r}: the exact wrong part of the response")
            return value
        if response is not None and value not in response:
            raise ValueError(f"{value!r} is not a substring of the response")
        return value


def _knowledge_base(info: ValidationInfo) -> KnowledgeBase:
    context = info.context if isinstance(info.context, dict) else {}
    kb = context.get(KB_CONTEXT_KEY)
    return kb if isinstance(kb, KnowledgeBase) else default_knowledge_base()


def default_calibration_directory() -> Path:
    """The shipped ``llm_release/data/calibration`` folder."""
    return Path(str(resources.files("llm_release.data").joinpath(CALIBRATION_DIRECTORY)))


def calibration_files(directory: Path | None = None) -> list[Path]:
    """Every ``*.jsonl`` file of the calibration folder, sorted by name; refuses a missing or empty folder."""
    folder = default_calibration_directory() if directory is None else Path(directory)
    if not folder.is_dir():
        raise CalibrationError(f"{folder}: calibration directory not found")
    files = sorted(path for path in folder.glob("*.jsonl") if path.is_file())
    if not files:
        raise CalibrationError(f"{folder}: no *.jsonl calibration files")
    return files


def _field_of(error: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ()))
    return location or "(row)"


def _row_problem(path: Path, line: int, exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if first.get("type") == "missing":
        message = "missing"
    elif first.get("type") == "extra_forbidden":
        message = "unknown field for a calibration row"
    return f"{path}:{line}: field '{_field_of(first)}': {message}"


def parse_rows(path: Path, kb: KnowledgeBase | None = None) -> list[tuple[int, CalibrationRow]]:
    """The validated rows of one calibration file with their line numbers (ids unique within the file)."""
    try:
        records = read_jsonl(path, kind="dataset", what="calibration file")
    except InputError as exc:
        raise CalibrationError(str(exc)) from exc
    context = {KB_CONTEXT_KEY: kb or default_knowledge_base()}
    rows: list[tuple[int, CalibrationRow]] = []
    for line, record in records:
        try:
            rows.append((line, CalibrationRow.model_validate(record, context=context)))
        except ValidationError as exc:
            raise CalibrationError(_row_problem(path, line, exc)) from exc
    if not rows:
        raise CalibrationError(f"{path}: no calibration rows")
    return rows


def load_calibration(split: str | None = None, directory: Path | None = None) -> list[CalibrationRow]:
    """Every calibration row (both halves), optionally only one split, in file-name then line order.

    ``directory`` defaults to the shipped set. Ids must be unique across all files: the two halves are
    written by different people, and a repeated id would make a per-row result ambiguous.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)} or None, got {split!r}")
    kb = default_knowledge_base()
    first_seen: dict[str, str] = {}
    rows: list[CalibrationRow] = []
    for path in calibration_files(directory):
        for line, row in parse_rows(path, kb):
            if row.id in first_seen:
                raise CalibrationError(
                    f"{path}:{line}: field 'id': duplicate {row.id!r} (first at {first_seen[row.id]})"
                )
            first_seen[row.id] = f"{path.name}:{line}"
            rows.append(row)
    return [row for row in rows if split is None or row.split == split]


def calibration_version(directory: Path | None = None) -> str:
    """SHA-256 over the calibration files (sorted by name): each file's name, byte length and bytes.

    Names and lengths are hashed with the bytes so that moving a row from one file to the next, or
    renaming a half, also changes the version a benchmark reports.
    """
    digest = hashlib.sha256()
    for path in calibration_files(directory):
        try:
            data = read_bytes(path, kind="dataset", what="calibration file")
        except InputError as exc:
            raise CalibrationError(str(exc)) from exc
        digest.update(path.name.encode("utf-8") + b"\0" + str(len(data)).encode("ascii") + b"\0")
        digest.update(data)
    return digest.hexdigest()


def label_counts(rows: Iterable[CalibrationRow]) -> dict[tuple[str, str], int]:
    """(label, split) -> number of rows; for reports and for checking the split is balanced."""
    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.label, row.split)
        counts[key] = counts.get(key, 0) + 1
    return counts
