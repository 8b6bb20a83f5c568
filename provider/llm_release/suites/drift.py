"""Data drift between two windows of user queries (spec section 3, 'Data Drift Detection').

DESIGN fixes the measurement: the Jensen-Shannon divergence in base 2 (0..1) between the histograms of
the query embeddings over k clusters fitted (k-means) on the reference window. How it is computed:

1. Embed both windows in one call (``embed_once``); rows are unit vectors (SBERT / MiniLM).
2. Fit ``KMeans(k, random_state=seed)`` on the reference embeddings and give every query the label of
   its nearest centroid, except queries unlike anything in the reference window, which go to one extra
   "novel" bin (below). Count queries per bin in each window.
3. ``drift_js_divergence`` = ``scipy.spatial.distance.jensenshannon(p, q, base=2) ** 2`` (scipy returns
   the distance, the square root of the divergence).
4. Permutation null: pool both windows' bin labels, reshuffle them into the same two sizes
   ``permutations`` times (seeded) and recompute the divergence. Its mean (``drift_null_mean``) is the
   divergence that sampling noise alone produces with no drift at all; ``drift_p_value`` =
   (1 + #{null >= observed}) / (permutations + 1). The bins stay fixed across permutations:
   refitting k-means per permutation gave the same null mean within noise on simulated topic mixtures
   and calibrated p-values (about 5% below 0.05 with no drift), at roughly 100 times the cost.

The novel bin (``novelty_bin=True``, the default) exists because clusters fitted on the reference can
only partition the topics the reference contains: a topic that is new in the current window is spread
over the nearest old clusters and barely moves their shares (measured with MiniLM: billing questions as
reference vs shipping questions as current gave JS 0.015 with clusters alone, 0.85 with the bin). A query
is novel when its cosine similarity to its nearest reference query is below the 5th percentile of the
reference queries' similarity to their nearest *other* reference query (leave-one-out, so both windows
are measured the same way): by construction 5% of the reference is novel, and on random splits of the
shipped query sets 5.6% of the current window was, so with no drift the bin adds only noise, which the
null accounts for.

Choices and why:

* ``k`` = min(8, n_reference // 25), at least 2, unless given: about 25 reference queries per cluster
  keep each bin's share within roughly +-0.1 (binomial sd sqrt(0.25 / 25)), so a topic that moves
  shows up instead of drowning in bin noise; more than 8 bins over a few hundred queries mostly adds
  noise (the null grows with k - 1).
* ``MIN_QUERIES_PER_WINDOW`` = 50: two clusters of ~25 queries is the coarsest histogram that can show
  a topic shift. Fewer queries on either side -> status ``insufficient_data`` and no divergence at all
  (fail closed: approval routing sends it to a person, it never passes).
* The status comes from ``decisions.drift.drift_verdict``, which also turns a null above the alert
  threshold into ``insufficient_data`` (DESIGN 'Drift': the number would be noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from sklearn.cluster import KMeans

from llm_release.decisions.drift import DriftVerdict, drift_verdict
from llm_release.policy import DriftPolicy
from llm_release.suites.embeddings import Embedder, check_texts, l2_normalise

MIN_QUERIES_PER_WINDOW = 50
QUERIES_PER_CLUSTER = 25
MAX_CLUSTERS = 8
MIN_CLUSTERS = 2
EXAMPLES_PER_CLUSTER = 3
NOVELTY_REFERENCE_SHARE = 0.05
"""Share of the reference window that counts as novel by construction (see module docstring)."""
_SIMILARITY_CHUNK = 2048

CLUSTER_COLUMNS = [
    "cluster", "reference_count", "current_count", "reference_share", "current_share", "share_delta",
    "reference_examples", "current_examples",
]


class DriftInputError(ValueError):
    """The queries or embeddings handed to the drift check are malformed (message says which)."""


@dataclass
class DriftResult:
    """Drift metrics for MLflow/XCom, the policy verdict, and per-cluster evidence for reviewers."""

    status: str
    """ok | alert | block | insufficient_data (``decisions.drift.drift_verdict``)."""
    metrics: dict[str, float | None]
    verdict: DriftVerdict
    reason: str
    clusters: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CLUSTER_COLUMNS))
    """One row per bin (the k clusters and "novel"), largest share change first; empty when not measured."""
    null_divergences: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def requires_human_decision(self) -> bool:
        return self.verdict.requires_human_decision


def js_divergence(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon divergence in base 2 (0..1) between two histograms (counts or probabilities)."""
    p_arr, q_arr = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    if p_arr.shape != q_arr.shape or p_arr.ndim != 1 or p_arr.size == 0:
        raise DriftInputError(f"histograms must be 1-d and the same length, got {p_arr.shape} and {q_arr.shape}")
    if (p_arr < 0).any() or (q_arr < 0).any() or p_arr.sum() <= 0 or q_arr.sum() <= 0:
        raise DriftInputError("histograms must be non-negative with a positive total")
    distance = float(jensenshannon(p_arr / p_arr.sum(), q_arr / q_arr.sum(), base=2))
    return min(1.0, max(0.0, distance * distance))


def choose_clusters(n_reference: int) -> int:
    """k = min(8, n_reference // 25), at least 2 (see module docstring)."""
    return max(MIN_CLUSTERS, min(MAX_CLUSTERS, n_reference // QUERIES_PER_CLUSTER))


def embed_once(
    embedder: Embedder, reference_queries: Sequence[str], current_queries: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Embed both windows in one ``embed`` call (one model pass, one batch plan) and split the rows."""
    reference, current = check_texts(reference_queries), check_texts(current_queries)
    vectors = np.asarray(embedder.embed([*reference, *current]), dtype=np.float64)
    expected = len(reference) + len(current)
    if vectors.ndim != 2 or vectors.shape[0] != expected:
        raise DriftInputError(f"embedder returned shape {vectors.shape} for {expected} texts")
    if not np.isfinite(vectors).all():
        raise DriftInputError("embedder returned non-finite values")
    return vectors[: len(reference)], vectors[len(reference):]


def _histogram(labels: np.ndarray, k: int) -> np.ndarray:
    return np.bincount(labels, minlength=k).astype(float)


def nearest_reference_similarity(queries: np.ndarray, reference: np.ndarray, leave_one_out: bool = False
                                 ) -> np.ndarray:
    """Cosine similarity of each query row to its nearest reference row (rows must be unit length).

    ``leave_one_out`` (``queries`` is ``reference``) skips each row's match with itself. Computed in
    chunks so a week of traffic never needs an n x n matrix in memory.
    """
    if leave_one_out and len(reference) < 2:
        raise DriftInputError("leave-one-out similarity needs at least 2 reference rows")
    best = np.empty(len(queries))
    for start in range(0, len(queries), _SIMILARITY_CHUNK):
        block = queries[start:start + _SIMILARITY_CHUNK] @ reference.T
        if leave_one_out:
            rows = np.arange(block.shape[0])
            block[rows, rows + start] = -np.inf
        best[start:start + _SIMILARITY_CHUNK] = block.max(axis=1)
    return best


def _insufficient(policy: DriftPolicy, n_ref: int, n_cur: int, reason: str, k: int | None = None
                  ) -> DriftResult:
    verdict = drift_verdict(policy, None, None)
    metrics: dict[str, float | None] = {
        "drift_js_divergence": None,
        "drift_null_mean": None,
        "drift_null_p95": None,
        "drift_p_value": None,
        "drift_reference_n": float(n_ref),
        "drift_current_n": float(n_cur),
        "drift_clusters": None if k is None else float(k),
        "drift_novel_share_reference": None,
        "drift_novel_share_current": None,
    }
    return DriftResult(status=verdict.status, metrics=metrics, verdict=verdict, reason=reason)


def _examples(texts: Sequence[str] | None, labels: np.ndarray, rank: np.ndarray, cluster: int) -> list[str]:
    """The most typical queries of a bin (lowest ``rank``): what the bin is about, for a reviewer."""
    if texts is None:
        return []
    members = np.flatnonzero(labels == cluster)
    order = members[np.argsort(rank[members], kind="stable")]
    return [texts[i] for i in order[:EXAMPLES_PER_CLUSTER]]


def _ranks(vectors: np.ndarray, labels: np.ndarray, model: KMeans, similarity: np.ndarray | None
           ) -> np.ndarray:
    """Distance to the own centroid for clustered queries; for novel ones, similarity to the nearest
    reference query (least similar first)."""
    k = model.n_clusters
    clustered = np.minimum(labels, k - 1)
    rank = np.linalg.norm(vectors - model.cluster_centers_[clustered], axis=1)
    if similarity is not None:
        rank = np.where(labels == k, similarity, rank)
    return rank


def drift_from_embeddings(
    reference: np.ndarray,
    current: np.ndarray,
    drift_policy: DriftPolicy,
    n_clusters: int | None = None,
    permutations: int = 200,
    seed: int = 0,
    reference_queries: Sequence[str] | None = None,
    current_queries: Sequence[str] | None = None,
    min_queries: int = MIN_QUERIES_PER_WINDOW,
    novelty_bin: bool = True,
) -> DriftResult:
    """The drift check on precomputed embeddings (rows = queries); see the module docstring."""
    if permutations < 1:
        raise ValueError(f"permutations must be >= 1, got {permutations}")
    if min_queries < MIN_CLUSTERS:
        raise ValueError(f"min_queries must be >= {MIN_CLUSTERS}, got {min_queries}")
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    for name, arr, texts in (("reference", ref, reference_queries), ("current", cur, current_queries)):
        if arr.ndim != 2:
            raise DriftInputError(f"{name} embeddings must be 2-d (queries x dimensions), got {arr.shape}")
        if not np.isfinite(arr).all():
            raise DriftInputError(f"{name} embeddings contain NaN or infinite values")
        if texts is not None and len(texts) != len(arr):
            raise DriftInputError(f"{name}: {len(texts)} queries but {len(arr)} embedding rows")
    ref, cur = l2_normalise(ref), l2_normalise(cur)
    if ref.shape[1] != cur.shape[1]:
        raise DriftInputError(f"embedding widths differ: reference {ref.shape[1]}, current {cur.shape[1]}")
    n_ref, n_cur = len(ref), len(cur)
    if n_ref < min_queries or n_cur < min_queries:
        return _insufficient(drift_policy, n_ref, n_cur,
                             f"too few queries: reference {n_ref}, current {n_cur} (need >= {min_queries} "
                             "in each window)")
    distinct = len(np.unique(ref, axis=0))
    k = choose_clusters(n_ref) if n_clusters is None else int(n_clusters)
    if not MIN_CLUSTERS <= k <= n_ref:
        raise ValueError(f"n_clusters must be between {MIN_CLUSTERS} and the reference size {n_ref}, got {k}")
    if distinct < k:
        return _insufficient(drift_policy, n_ref, n_cur,
                             f"reference window has only {distinct} distinct queries, fewer than {k} clusters",
                             k)

    model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(ref)
    ref_labels = model.labels_.astype(np.int64)
    cur_labels = model.predict(cur).astype(np.int64)
    bins, ref_similarity, cur_similarity = k, None, None
    if novelty_bin:
        ref_similarity = nearest_reference_similarity(ref, ref, leave_one_out=True)
        cur_similarity = nearest_reference_similarity(cur, ref)
        threshold = float(np.quantile(ref_similarity, NOVELTY_REFERENCE_SHARE))
        ref_labels = np.where(ref_similarity < threshold, k, ref_labels)
        cur_labels = np.where(cur_similarity < threshold, k, cur_labels)
        bins = k + 1
    ref_hist, cur_hist = _histogram(ref_labels, bins), _histogram(cur_labels, bins)
    divergence = js_divergence(ref_hist, cur_hist)

    rng = np.random.default_rng(seed)
    pooled = np.concatenate([ref_labels, cur_labels])
    null = np.empty(permutations)
    for index in range(permutations):
        shuffled = rng.permutation(pooled)
        null[index] = js_divergence(_histogram(shuffled[:n_ref], bins), _histogram(shuffled[n_ref:], bins))
    null_mean = float(null.mean())
    p_value = float((1 + np.count_nonzero(null >= divergence - 1e-12)) / (permutations + 1))

    verdict = drift_verdict(drift_policy, divergence, null_mean)
    metrics: dict[str, float | None] = {
        "drift_js_divergence": divergence,
        "drift_null_mean": null_mean,
        "drift_null_p95": float(np.percentile(null, 95)),
        "drift_p_value": p_value,
        "drift_reference_n": float(n_ref),
        "drift_current_n": float(n_cur),
        "drift_clusters": float(k),
        "drift_novel_share_reference": float(ref_hist[k] / n_ref) if novelty_bin else None,
        "drift_novel_share_current": float(cur_hist[k] / n_cur) if novelty_bin else None,
    }
    ref_rank = _ranks(ref, ref_labels, model, ref_similarity)
    cur_rank = _ranks(cur, cur_labels, model, cur_similarity)
    rows: list[dict[str, Any]] = []
    for cluster in range(bins):
        ref_share, cur_share = ref_hist[cluster] / n_ref, cur_hist[cluster] / n_cur
        rows.append({
            "cluster": "novel" if cluster == k else str(cluster),
            "reference_count": int(ref_hist[cluster]),
            "current_count": int(cur_hist[cluster]),
            "reference_share": float(ref_share),
            "current_share": float(cur_share),
            "share_delta": float(cur_share - ref_share),
            "reference_examples": _examples(reference_queries, ref_labels, ref_rank, cluster),
            "current_examples": _examples(current_queries, cur_labels, cur_rank, cluster),
        })
    clusters = pd.DataFrame(rows, columns=CLUSTER_COLUMNS)
    clusters = clusters.iloc[np.argsort(-clusters["share_delta"].abs().to_numpy(), kind="stable")]
    return DriftResult(
        status=verdict.status,
        metrics=metrics,
        verdict=verdict,
        reason=f"{verdict.reason} (null mean {null_mean:.3f}, p={p_value:.3f}, k={k})",
        clusters=clusters.reset_index(drop=True),
        null_divergences=null,
    )


def run_drift_check(
    reference_queries: Sequence[str],
    current_queries: Sequence[str],
    embedder: Embedder,
    drift_policy: DriftPolicy,
    n_clusters: int | None = None,
    permutations: int = 200,
    seed: int = 0,
    min_queries: int = MIN_QUERIES_PER_WINDOW,
    novelty_bin: bool = True,
) -> DriftResult:
    """Compare the current window of queries with the reference window (see module docstring).

    Blank queries carry no topic and are dropped before counting. Too few queries on either side
    returns ``insufficient_data`` without loading the embedding model.
    """
    reference = [q for q in check_texts(reference_queries) if q.strip()]
    current = [q for q in check_texts(current_queries) if q.strip()]
    if len(reference) < min_queries or len(current) < min_queries:
        return _insufficient(drift_policy, len(reference), len(current),
                             f"too few queries: reference {len(reference)}, current {len(current)} "
                             f"(need >= {min_queries} in each window)")
    ref_vectors, cur_vectors = embed_once(embedder, reference, current)
    return drift_from_embeddings(
        ref_vectors, cur_vectors, drift_policy, n_clusters=n_clusters, permutations=permutations, seed=seed,
        reference_queries=reference, current_queries=current, min_queries=min_queries,
        novelty_bin=novelty_bin,
    )

