"""The learned half of the policy checker: one logistic regression per category on MiniLM sentence embeddings.

Rules catch the wordings someone thought of; the classifier generalises to the ones nobody listed ("I'll
sort the fee out for you personally"). It is trained offline by ``python -m
llm_release.data.train_policy_classifier`` on the labelled corpus ``data/policy_corpus/violations.jsonl``
and shipped as ``data/models/policy_classifier.json``: the coefficients, intercepts and classes, plus a
manifest with the sha256 of those parameters, the corpus version and the cross-validated scores.
Loading re-hashes the parameters and refuses a file that does not match (a hand-edited or truncated
model would otherwise judge releases silently). Nothing trains at run time.

Embedding needs MiniLM (~8 s to load), so a ``PolicyClassifier`` is built lazily by the checker and
scores all sentences of a batch in one call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm_release.suites.embeddings import EMBEDDING_DIM, Embedder, get_sentence_embedder

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
CORPUS_PATH = DATA_DIR / "policy_corpus" / "violations.jsonl"
MODEL_PATH = DATA_DIR / "models" / "policy_classifier.json"
MODEL_FORMAT = "llm_release.policy_classifier/1"
CLEAN_LABEL = "clean"


class PolicyModelError(ValueError):
    """The shipped classifier file is missing, malformed or does not match its recorded hash."""


class CorpusError(ValueError):
    """A row of the labelled violation corpus is malformed (the message names the file and line)."""


@dataclass(frozen=True)
class CorpusRow:
    """One labelled sentence: ``label`` is a category id or ``clean``."""

    text: str
    label: str
    line: int


def load_corpus(path: Path = CORPUS_PATH, categories: Sequence[str] | None = None) -> list[CorpusRow]:
    """Read the JSONL corpus; every problem names ``path:line`` and the field."""
    allowed = None if categories is None else {*categories, CLEAN_LABEL}
    rows: list[CorpusRow] = []
    seen: dict[str, int] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read the corpus: {exc}") from exc
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            item = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise CorpusError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(item, dict):
            raise CorpusError(f"{where}: expected a JSON object, got {type(item).__name__}")
        unknown = set(item) - {"text", "label"}
        if unknown:
            raise CorpusError(f"{where}: unknown field(s) {sorted(unknown)} (allowed: text, label)")
        text, label = item.get("text"), item.get("label")
        if not isinstance(text, str) or not text.strip():
            raise CorpusError(f"{where}: field 'text' must be a non-empty string")
        if not isinstance(label, str) or (allowed is not None and label not in allowed):
            raise CorpusError(f"{where}: field 'label' must be one of {sorted(allowed or [])}, got {label!r}")
        if text in seen:
            raise CorpusError(f"{where}: duplicate of line {seen[text]}")
        seen[text] = number
        rows.append(CorpusRow(text=text, label=label, line=number))
    if not rows:
        raise CorpusError(f"{path}: the corpus is empty")
    return rows


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parameters_sha256(parameters: dict[str, Any]) -> str:
    """Hash of the parameters in a canonical JSON form (key order and whitespace do not matter)."""
    canonical = json.dumps(parameters, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _estimator(coef: np.ndarray, intercept: float) -> Any:
    """A fitted binary ``LogisticRegression`` rebuilt from its parameters (no training)."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression()
    model.coef_ = coef.reshape(1, -1).astype(np.float64)
    model.intercept_ = np.array([intercept], dtype=np.float64)
    model.classes_ = np.array([0, 1])
    return model


class PolicyClassifier:
    """Per-category violation probabilities for sentences; build with ``PolicyClassifier.load``."""

    def __init__(self, classes: Sequence[str], coef: np.ndarray, intercept: np.ndarray,
                 manifest: dict[str, Any], embedder: Embedder | None = None) -> None:
        if coef.shape != (len(classes), EMBEDDING_DIM) or intercept.shape != (len(classes),):
            raise PolicyModelError(f"coefficients of shape {coef.shape} / intercepts {intercept.shape} do not fit "
                                   f"{len(classes)} classes x {EMBEDDING_DIM} features")
        self.classes = tuple(classes)
        self.manifest = manifest
        self._estimators = {c: _estimator(coef[i], float(intercept[i])) for i, c in enumerate(self.classes)}
        self._embedder = embedder

    @classmethod
    def load(cls, path: Path = MODEL_PATH, embedder: Embedder | None = None) -> PolicyClassifier:
        """Read and verify the shipped model: the parameters must hash to the manifest's sha256."""
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise PolicyModelError(f"{path}: cannot read the policy classifier: {exc}") from exc
        except json.JSONDecodeError as exc:
            raise PolicyModelError(f"{path}: not valid JSON at line {exc.lineno} ({exc.msg})") from None
        if not isinstance(document, dict) or document.get("format") != MODEL_FORMAT:
            raise PolicyModelError(f"{path}: field 'format' must be {MODEL_FORMAT!r}")
        parameters, manifest = document.get("parameters"), document.get("manifest")
        if not isinstance(parameters, dict) or not isinstance(manifest, dict):
            raise PolicyModelError(f"{path}: fields 'parameters' and 'manifest' must be objects")
        expected = manifest.get("parameters_sha256")
        actual = parameters_sha256(parameters)
        if actual != expected:
            raise PolicyModelError(f"{path}: parameters hash {actual} does not match manifest.parameters_sha256 "
                                   f"{expected}: the model file was altered; retrain it")
        try:
            classes = [str(c) for c in parameters["classes"]]
            coef = np.asarray(parameters["coef"], dtype=np.float64)
            intercept = np.asarray(parameters["intercept"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise PolicyModelError(f"{path}: parameters need classes, coef and intercept: {exc}") from None
        feature = parameters.get("feature", {})
        if feature.get("dim") != EMBEDDING_DIM:
            raise PolicyModelError(f"{path}: parameters.feature.dim must be {EMBEDDING_DIM}")
        return cls(classes, coef, intercept, manifest, embedder)

    def predict_embeddings(self, vectors: np.ndarray) -> dict[str, np.ndarray]:
        """Category -> probability per row of ``vectors`` (unit-length MiniLM rows)."""
        if len(vectors) == 0:
            return {c: np.zeros(0) for c in self.classes}
        return {c: est.predict_proba(vectors)[:, 1] for c, est in self._estimators.items()}

    def predict(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Category -> probability per text; all texts are embedded in one batch."""
        if not texts:
            return {c: np.zeros(0) for c in self.classes}
        embedder = self._embedder if self._embedder is not None else get_sentence_embedder()
        return self.predict_embeddings(embedder.embed(list(texts)))
