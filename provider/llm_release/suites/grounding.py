"""Grounding: which knowledge-base entries a (query, response) pair is about, by MiniLM embeddings.

The TF-IDF retrieval of ``knowledge_base.KnowledgeBase.search`` picked the wrong entry for about a
quarter of live queries (customers do not use the KB's words), and a correct answer judged against
the wrong entry looks hallucinated. Here every entry is embedded once (each question, the answer and
each answer sentence) and an entry scores the best cosine over its texts. The judge grounds on the
entry the query AND the response both point to (the sum of both scores among the query's and the
response's top-k), falls back on the query's best entry, and says which it did. When the query matches
no entry above ``floor`` the verdict is about behaviour (a hand-off is expected): ``how == "none"``.

Entry vectors are computed once per (KB content, model) and cached in memory and on disk under
``$LLM_RELEASE_CACHE`` (default ``~/.cache/llm_release``), keyed by the sha256 of the KB content and
the embedder's model id, so a changed KB or model never reuses stale vectors.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from llm_release.suites.embeddings import Embedder, get_sentence_embedder

GroundingHow = Literal["query+response", "query", "label", "none"]
DEFAULT_FLOOR = 0.40
"""Query-to-entry cosine below which nothing in the KB answers the query (MiniLM: KB questions score
0.6-1.0 against their own entry, out-of-scope support questions 0.2-0.4)."""
DEFAULT_TOP_K = 3
CACHE_VERSION = "grounder-v1"

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[\"'A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Sentences of a short support text (a dot inside "$6.95", "4.2" or "e.g." does not split)."""
    parts = [p.strip() for p in _SENTENCE_SPLIT.split(text.strip()) if p.strip()]
    merged: list[str] = []
    for part in parts:
        if merged and re.search(r"\b(?:e\.g|i\.e|etc|approx|vs|no)\.$", merged[-1], re.IGNORECASE):
            merged[-1] = f"{merged[-1]} {part}"
        else:
            merged.append(part)
    return merged


def cache_dir() -> Path:
    """``$LLM_RELEASE_CACHE`` or ``~/.cache/llm_release``."""
    return Path(os.environ.get("LLM_RELEASE_CACHE") or Path.home() / ".cache" / "llm_release")


def model_id(embedder: Any) -> str:
    """A stable id of the embedder's model: ``model_id`` attribute, else the model path, else the class."""
    explicit = getattr(embedder, "model_id", None)
    if explicit:
        return str(explicit)
    path = getattr(embedder, "model_path", None)
    if path is not None:
        return f"minilm:{Path(path).name}"
    return type(embedder).__qualname__


@dataclass(frozen=True)
class Grounding:
    """What a judgement is grounded on: ranked (entry, score) pairs, the chosen entry and how it was chosen."""

    entries: tuple[tuple[Any, float], ...]
    chosen: Any | None
    how: GroundingHow
    query_score: float = 0.0
    response_score: float = 0.0


class Grounder:
    """MiniLM retrieval over a ``KnowledgeBase``; inject ``embedder`` (anything with ``embed``) in tests."""

    def __init__(self, kb: Any, embedder: Embedder | None = None, floor: float = DEFAULT_FLOOR,
                 top_k: int = DEFAULT_TOP_K, cache: Path | str | Literal[False] | None = None) -> None:
        if not 0.0 <= floor < 1.0:
            raise ValueError(f"floor must be in [0, 1), got {floor}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.kb = kb
        self.embedder: Embedder = embedder if embedder is not None else get_sentence_embedder()
        self.floor = floor
        self.top_k = top_k
        self.entries = list(kb.entries)
        self.model_id = model_id(self.embedder)
        texts: list[str] = []
        owners: list[int] = []
        self.sentences: dict[str, list[str]] = {}
        self._sentence_rows: dict[str, list[int]] = {}
        for index, entry in enumerate(self.entries):
            sentences = split_sentences(entry.answer)
            self.sentences[entry.id] = sentences
            for text in (*entry.questions, entry.answer):
                texts.append(text)
                owners.append(index)
            rows = []
            for sentence in sentences:
                rows.append(len(texts))
                texts.append(sentence)
                owners.append(index)
            self._sentence_rows[entry.id] = rows
        self._texts = texts
        self._owners = np.asarray(owners)
        self.kb_hash = hashlib.sha256(
            json.dumps([e.model_dump(mode="json") for e in self.entries], sort_keys=True).encode()
        ).hexdigest()
        self._cache_path = None if cache is False else Path(cache or cache_dir()) / (
            f"{CACHE_VERSION}-{hashlib.sha256(f'{self.kb_hash}|{self.model_id}'.encode()).hexdigest()[:32]}.npy"
        )
        self._matrix = self._load_or_embed(texts)

    # ------------------------------------------------------------------ cache
    def _load_or_embed(self, texts: list[str]) -> np.ndarray:
        path = self._cache_path
        if path is not None and path.is_file():
            try:
                matrix = np.load(path, allow_pickle=False)
                if matrix.ndim == 2 and matrix.shape[0] == len(texts) and np.isfinite(matrix).all():
                    return matrix.astype(np.float32)
            except (OSError, ValueError):
                pass  # a corrupt cache file is recomputed and overwritten
        matrix = np.asarray(self.embedder.embed(texts), dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(texts):
            raise ValueError(f"embedder returned shape {matrix.shape} for {len(texts)} texts")
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npy", delete=False) as handle:
                    np.save(handle, matrix, allow_pickle=False)
                os.replace(handle.name, path)
            except OSError:
                pass  # caching is an optimisation; a read-only home must not stop judging
        return matrix

    @property
    def cache_path(self) -> Path | None:
        return self._cache_path

    # ------------------------------------------------------------------ retrieval
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` with the grounder's model (one batch)."""
        return np.asarray(self.embedder.embed(list(texts)), dtype=np.float32)

    def entry_scores(self, vectors: np.ndarray) -> np.ndarray:
        """(n, n_entries) best cosine of each vector against each entry's texts."""
        doc_scores = vectors @ self._matrix.T
        out = np.full((vectors.shape[0], len(self.entries)), -1.0, dtype=np.float32)
        for column in range(len(self.entries)):
            mask = self._owners == column
            out[:, column] = doc_scores[:, mask].max(axis=1)
        return out

    def search(self, text: str, k: int | None = None) -> list[tuple[Any, float]]:
        """Top-``k`` entries for ``text`` with their scores, best first."""
        scores = self.entry_scores(self.embed([text]))[0]
        order = np.argsort(-scores, kind="stable")[: k or self.top_k]
        return [(self.entries[i], float(scores[i])) for i in order]

    def sentence_vectors(self, entry_id: str) -> np.ndarray:
        """Cached vectors of the entry's answer sentences (in ``self.sentences[entry_id]`` order)."""
        return self._matrix[self._sentence_rows[entry_id]]

    def ground(self, query: str, response: str = "", kb_id: str | None = None) -> Grounding:
        """Ground one pair; see ``ground_many``."""
        return self.ground_many([(query, response, kb_id)])[0]

    def ground_many(self, items: Sequence[tuple[str, str, str | None]],
                    vectors: tuple[np.ndarray, np.ndarray] | None = None) -> list[Grounding]:
        """Ground (query, response, kb_id) triples in one embedding batch (or with given query/response vectors).

        ``kb_id`` pins the entry ("label"). Else, with a response: the entry maximising query score +
        response score among the union of both top-k lists whose query score clears the floor
        ("query+response"); without one, the query's best entry ("query"); "none" when the query's best
        score is below the floor.
        """
        if vectors is None:
            queries = [q for q, _, _ in items]
            responses = [r or "" for _, r, _ in items]
            embedded = self.embed(queries + responses) if items else np.zeros((0, 1), np.float32)
            q_vecs, r_vecs = embedded[: len(items)], embedded[len(items):]
        else:
            q_vecs, r_vecs = vectors
        q_scores = self.entry_scores(q_vecs) if len(items) else np.zeros((0, len(self.entries)))
        r_scores = self.entry_scores(r_vecs) if len(items) else np.zeros((0, len(self.entries)))
        out = []
        for row, (_, response, kb_id) in enumerate(items):
            qs, rs = q_scores[row], r_scores[row]
            if kb_id is not None:
                entry = self.kb.get(kb_id)
                column = self.entries.index(entry)
                out.append(Grounding(((entry, 1.0),), entry, "label", float(qs[column]), float(rs[column])))
                continue
            q_top = [int(i) for i in np.argsort(-qs, kind="stable")[: self.top_k]]
            has_response = bool((response or "").strip())
            r_top = [int(i) for i in np.argsort(-rs, kind="stable")[: self.top_k]] if has_response else []
            if qs[q_top[0]] < self.floor:
                ranked = tuple((self.entries[i], float(qs[i])) for i in q_top)
                r_best = float(rs.max()) if has_response else 0.0
                out.append(Grounding(ranked, None, "none", float(qs[q_top[0]]), r_best))
                continue
            if has_response:
                # The response names the topic more precisely than a terse query ("pay by wire?"), so the
                # entry maximising the mean of both scores wins among the union of both top-k lists, as long
                # as the query itself clears the floor for it.
                union = list(dict.fromkeys(q_top + r_top))
                candidates = [i for i in union if qs[i] >= self.floor]
                combined = {i: float(qs[i] + rs[i]) / 2 for i in union}
                best = max(candidates, key=lambda i: (combined[i], -i))
                ranked = tuple(sorted(((self.entries[i], s) for i, s in combined.items()), key=lambda p: -p[1]))
                out.append(Grounding(ranked, self.entries[best], "query+response", float(qs[best]), float(rs[best])))
            else:
                best = q_top[0]
                ranked = tuple((self.entries[i], float(qs[i])) for i in q_top)
                out.append(Grounding(ranked, self.entries[best], "query", float(qs[best]), 0.0))
        return out
