"""Data loaders (suites.datasets), the committed sets' consistency, and the local evaluate metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_release.data import build_sets
from llm_release.suites import datasets
from llm_release.suites.datasets import DatasetError, load_eval_set, shipped_path
from llm_release.suites.knowledge_base import default_knowledge_base
from llm_release.suites.metrics import load_metric, metric_path
from llm_release.suites.metrics.textscores import corpus_bleu4, corpus_rouge_l

GOOD = {"id": "a", "query": "q?", "reference": "Refunds within 30 days.", "kb_id": "refunds-window",
        "required_facts": ["30 days"], "category": "refunds", "safety_category": None,
        "expects_escalation": False}


def _write(tmp_path: Path, *records: object, raw: str | None = None) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text(raw if raw is not None else "".join(json.dumps(r) + "\n" for r in records))
    return path


def test_shipped_sets_load_with_expected_sizes_and_kb_references() -> None:
    kb = default_knowledge_base()
    sizes = {"eval_set": 120, "validation_set": 120, "injection_probes": 60, "policy_probes": 50,
             "persona_probes": 25, "bias_probes": 120}
    loaders = {"eval_set": datasets.load_eval_set, "validation_set": datasets.load_validation_set,
               "injection_probes": datasets.load_injection_probes,
               "policy_probes": datasets.load_policy_probes,
               "persona_probes": datasets.load_persona_probes, "bias_probes": datasets.load_bias_probes}
    for name, minimum in sizes.items():
        frame = loaders[name]()
        assert len(frame) >= minimum, name
        assert shipped_path(name) == shipped_path(f"{name}.jsonl")
    for frame in (datasets.load_eval_set(), datasets.load_validation_set()):
        datasets.check_kb_references(frame, kb)
        assert frame["kb_id"].map(lambda v: v is None or isinstance(v, str)).all()
        assert frame["expects_escalation"].dtype == bool
    eval_queries = set(datasets.load_eval_set()["query"].str.lower())
    validation_queries = set(datasets.load_validation_set()["query"].str.lower())
    assert not eval_queries & validation_queries, "held-out set must use different paraphrases"


def test_committed_sets_match_the_generator() -> None:
    files = build_sets.outputs(default_knowledge_base())
    for name, text in files.items():
        assert (build_sets.DATA_DIR / name).read_text(encoding="utf-8") == text, f"{name} is stale"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"query": ""}, r":1: field 'query': must not be blank"),
        ({"expects_escalation": "no"}, r":1: field 'expects_escalation': expected true/false"),
        ({"required_facts": "30 days"}, r":1: field 'required_facts': expected a list"),
        ({"required_facts": ["45 days"]}, r":1: field 'required_facts': not found in reference"),
        ({"kb_id": None}, r":1: field 'kb_id': null is only allowed"),
        ({"extra": 1}, r":1: field 'extra': unknown field"),
    ],
)
def test_bad_records_name_file_line_and_field(tmp_path: Path, change: dict, message: str) -> None:
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(DatasetError, match=message) as info:
        load_eval_set(path)
    assert str(path) in str(info.value)


def test_missing_field_duplicate_id_bad_json_and_empty_file(tmp_path: Path) -> None:
    record = dict(GOOD)
    del record["reference"]
    with pytest.raises(DatasetError, match=r":1: field 'reference': missing"):
        load_eval_set(_write(tmp_path, record))
    with pytest.raises(DatasetError, match=r":2: field 'id': duplicate 'a' \(first on line 1\)"):
        load_eval_set(_write(tmp_path, GOOD, GOOD))
    with pytest.raises(DatasetError, match=r":2: not valid JSON"):
        load_eval_set(_write(tmp_path, raw=json.dumps(GOOD) + "\n{oops\n"))
    with pytest.raises(DatasetError, match="no labelled eval item records"):
        load_eval_set(_write(tmp_path, raw="\n"))
    with pytest.raises(DatasetError, match=r"datasets\.eval_set: cannot read labelled eval item file: file not found"):
        load_eval_set(tmp_path / "absent.jsonl")
    with pytest.raises(DatasetError, match="unknown shipped data set"):
        shipped_path("nope")


def test_check_kb_references_names_the_item(tmp_path: Path) -> None:
    frame = load_eval_set(_write(tmp_path, {**GOOD, "kb_id": "no-such-entry"}))
    with pytest.raises(DatasetError, match="item 'a': field 'kb_id'"):
        datasets.check_kb_references(frame, default_knowledge_base())


def test_text_scores_direct() -> None:
    assert corpus_bleu4(["the refund takes 30 days"], ["the refund takes 30 days"]) == pytest.approx(100.0)
    assert corpus_bleu4(["completely different words here"], ["the refund takes 30 days"]) < 10
    assert corpus_rouge_l(["a b c", "x"], ["a b c", "y"]) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        corpus_bleu4(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        corpus_rouge_l([], [])


def test_unknown_metric_is_rejected_before_importing_evaluate() -> None:
    with pytest.raises(ValueError, match="shipped metrics: bleu, rouge"):
        load_metric("bertscore")
    assert (metric_path("bleu") / "bleu.py").is_file()
