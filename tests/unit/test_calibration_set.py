"""The shipped calibration set and its loader (issue 6).

The set is the yardstick for the judge and the policy checker, so these tests check what makes it a fair
one: it covers every knowledge-base entry, both splits hold every label, it is not written in the knowledge
base's own sentences (that circularity is what the issue is about), and a broken row stops the loader with
the file, line and field.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from llm_release.suites.calibration import (
    HALLUCINATED_LABELS,
    CalibrationError,
    CalibrationRow,
    calibration_version,
    default_calibration_directory,
    label_counts,
    load_calibration,
)
from llm_release.suites.datasets import DatasetError
from llm_release.suites.knowledge_base import KnowledgeBase

ANSWER_LABELS = ("correct", "fabrication", "contradiction", "wrong_number", "omission", "handoff")


@pytest.fixture(scope="module")
def rows() -> list[CalibrationRow]:
    return load_calibration()


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase.load()


def _normalise(text: str) -> str:
    return " ".join(text.lower().split())


def _kb_answer_sentences(kb: KnowledgeBase) -> list[str]:
    """Every sentence of every KB answer (split on . ! ? ; and on clause-ending semicolons)."""
    sentences = []
    for entry in kb.entries:
        for sentence in re.split(r"(?<=[.!?;])\s+", _normalise(entry.answer)):
            sentence = sentence.rstrip(".!?;").strip()
            if len(sentence.split()) >= 3:
                sentences.append(sentence)
    return sentences


# ----------------------------------------------------------------------------- the shipped set
def test_shipped_set_loads_with_valid_rows(rows: list[CalibrationRow]) -> None:
    assert rows and all(isinstance(row, CalibrationRow) for row in rows)
    assert len({row.id for row in rows}) == len(rows)


def test_answer_half_has_at_least_520_rows(rows: list[CalibrationRow]) -> None:
    answers = [row for row in rows if row.id.startswith("cal-a-")]
    assert len(answers) >= 520
    assert not any(row.policy_violation for row in answers), "violations belong to the policy half"


def test_every_kb_entry_has_at_least_six_answer_rows(rows: list[CalibrationRow], kb: KnowledgeBase) -> None:
    per_entry = Counter(row.kb_id for row in rows if row.id.startswith("cal-a-"))
    thin = {entry.id: per_entry[entry.id] for entry in kb.entries if per_entry[entry.id] < 6}
    assert not thin, f"entries with fewer than 6 rows: {thin}"
    assert per_entry[None] >= 15, "out-of-scope queries are needed to score hand-offs"


def test_both_splits_hold_every_label(rows: list[CalibrationRow]) -> None:
    counts = label_counts(rows)
    present = {label for label, _ in counts}
    assert set(ANSWER_LABELS) <= present
    for label in present:
        train, test = counts.get((label, "train"), 0), counts.get((label, "test"), 0)
        assert train and test, f"label {label!r}: train={train} test={test}"
        assert abs(train - test) <= max(2, 0.2 * (train + test)), f"label {label!r} unbalanced: {train}/{test}"


def test_splits_share_no_response(rows: list[CalibrationRow]) -> None:
    train = {(row.kb_id, _normalise(row.response)) for row in rows if row.split == "train"}
    test = {(row.kb_id, _normalise(row.response)) for row in rows if row.split == "test"}
    assert not train & test


def test_no_response_repeats_a_kb_answer_sentence(rows: list[CalibrationRow], kb: KnowledgeBase) -> None:
    sentences = _kb_answer_sentences(kb)
    assert len(sentences) > 47
    copied = [
        (row.id, sentence)
        for row in rows
        for sentence in sentences
        if sentence in _normalise(row.response)
    ]
    assert not copied, f"responses copying the KB answer text: {copied[:5]}"


def test_no_query_is_a_kb_question(rows: list[CalibrationRow], kb: KnowledgeBase) -> None:
    questions = {_normalise(question) for entry in kb.entries for question in entry.questions}
    copied = [row.id for row in rows if _normalise(row.query) in questions]
    assert not copied, f"queries copied from the KB: {copied}"


def test_wrong_parts_are_marked(rows: list[CalibrationRow]) -> None:
    for row in rows:
        if row.label in HALLUCINATED_LABELS:
            assert row.span and row.span in row.response, row.id


def test_high_stakes_entries_carry_a_third_of_the_answer_rows(rows: list[CalibrationRow]) -> None:
    high_stakes = {"billing-dispute", "billing-chargeback", "billing-double-charge", "account-close",
                   "account-closure-dispute"}
    answers = [row for row in rows if row.id.startswith("cal-a-")]
    share = sum(
        1 for row in answers if row.kb_id and (row.kb_id in high_stakes or row.kb_id.startswith(("refunds-", "legal-")))
    ) / len(answers)
    assert share >= 0.3


def test_combined_set_reaches_600_rows_when_the_policy_half_is_present(rows: list[CalibrationRow]) -> None:
    if not (default_calibration_directory() / "policy.jsonl").exists():
        pytest.skip("policy.jsonl is not in this tree yet")
    assert len(rows) >= 600


def test_split_filter(rows: list[CalibrationRow]) -> None:
    train, test = load_calibration("train"), load_calibration("test")
    assert {row.split for row in train} == {"train"} and {row.split for row in test} == {"test"}
    assert len(train) + len(test) == len(rows)
    with pytest.raises(ValueError, match="split"):
        load_calibration("validation")


def test_version_is_stable_and_a_sha256() -> None:
    version = calibration_version()
    assert re.fullmatch(r"[0-9a-f]{64}", version)
    assert calibration_version() == version


# ----------------------------------------------------------------------------- bad input
def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "cal-a-9001",
        "split": "train",
        "kb_id": "billing-plan-prices",
        "category": "billing",
        "query": "what does Pro cost?",
        "response": "Pro is $30 per user per month.",
        "label": "wrong_number",
        "hallucinated": True,
        "correct": False,
        "policy_violation": False,
        "violation_category": None,
        "span": "$30",
        "note": "Pro is $25",
    }
    row.update(changes)
    return row


def _write(directory: Path, name: str, records: list[dict[str, Any] | str]) -> Path:
    path = directory / name
    lines = [record if isinstance(record, str) else json.dumps(record) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_good_temp_file_loads(tmp_path: Path) -> None:
    _write(tmp_path, "a.jsonl", [_row(), _row(id="cal-a-9002", split="test")])
    loaded = load_calibration(directory=tmp_path)
    assert [row.id for row in loaded] == ["cal-a-9001", "cal-a-9002"]
    assert [row.id for row in load_calibration("test", directory=tmp_path)] == ["cal-a-9002"]


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"hallucinated": False}, "hallucinated", "must be True"),
        ({"correct": True}, "correct", "must be False"),
        ({"policy_violation": True}, "policy_violation", "must be False"),
        ({"violation_category": "legal_advice"}, "violation_category", "must be null"),
        (
            {"label": "violation", "hallucinated": False, "policy_violation": True},
            "violation_category",
            "required",
        ),
        ({"span": "$35"}, "span", "not a substring"),
        ({"span": None}, "span", "required for label"),
        ({"kb_id": "billing-nonexistent"}, "kb_id", "names no knowledge-base entry"),
        ({"category": "refunds"}, "category", "differs from the category"),
        ({"kb_id": None}, "category", "out_of_scope"),
        ({"label": "great"}, "label", "Input should be"),
        ({"split": "dev"}, "split", "Input should be"),
        ({"query": "   "}, "query", "blank"),
        ({"id": "row-1"}, "id", "pattern"),
        ({"hallucinated": "yes"}, "hallucinated", "boolean"),
        ({"extra": 1}, "extra", "unknown field"),
    ],
)
def test_bad_row_names_file_line_and_field(tmp_path: Path, changes: dict[str, Any], field: str, reason: str) -> None:
    path = _write(tmp_path, "bad.jsonl", [_row(id="cal-a-9000"), "", _row(**changes)])
    with pytest.raises(CalibrationError) as caught:
        load_calibration(directory=tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}:3: field '{field}':"), message
    assert reason in message
    assert isinstance(caught.value, DatasetError)


def test_missing_field_is_named(tmp_path: Path) -> None:
    record = _row()
    del record["note"]
    path = _write(tmp_path, "bad.jsonl", [record])
    with pytest.raises(CalibrationError, match=re.escape(f"{path}:1: field 'note': missing")):
        load_calibration(directory=tmp_path)


def test_broken_json_line_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.jsonl", [_row(), '{"id": "cal-a-9002",'])
    with pytest.raises(CalibrationError, match=re.escape(f"{path}:2:")):
        load_calibration(directory=tmp_path)


def test_duplicate_id_in_one_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.jsonl", [_row(), _row(split="test")])
    with pytest.raises(CalibrationError, match=re.escape(f"{path}:2: field 'id': duplicate 'cal-a-9001'")):
        load_calibration(directory=tmp_path)


def test_duplicate_id_across_files_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "answers.jsonl", [_row()])
    second = _write(tmp_path, "policy.jsonl", [_row(split="test")])
    with pytest.raises(CalibrationError, match=re.escape(f"{second}:1: field 'id': duplicate")) as caught:
        load_calibration(directory=tmp_path)
    assert "answers.jsonl:1" in str(caught.value)


def test_empty_or_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CalibrationError, match=re.escape("no *.jsonl")):
        load_calibration(directory=tmp_path)
    with pytest.raises(CalibrationError, match="not found"):
        load_calibration(directory=tmp_path / "absent")


def test_version_changes_with_the_data(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.jsonl", [_row()])
    before = calibration_version(tmp_path)
    _write(tmp_path, "a.jsonl", [_row(note="Pro costs $25 per user per month")])
    assert calibration_version(tmp_path) != before
    path.rename(tmp_path / "b.jsonl")
    _write(tmp_path, "b.jsonl", [_row()])
    assert calibration_version(tmp_path) != before  # same bytes under another name
