"""The claim judge's learned model, shipped as JSON: gradient-boosted trees for P(faulty) over ``claims``
features (trees are exported node by node and evaluated with numpy, so no pickle and no sklearn at run
time), a multinomial logistic regression (standardised features) that says *how* a faulty claim is wrong
(contradicted or unsupported), Platt scaling of P(faulty) fitted on out-of-fold predictions, and the
decision threshold chosen by cross-validation on the calibration set's train split. Loading verifies
the sha256 of the parameters recorded in the manifest and refuses a file whose parameters were
changed. Nothing trains at run time."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from llm_release.suites.claims import FEATURE_NAMES

MODEL_RESOURCE = "models/claim_judge.json"


class ClaimModelError(ValueError):
    """The model file is missing, malformed, for other features, or its parameters do not match its hash."""


def params_sha256(params: dict[str, Any]) -> str:
    """sha256 of the parameters as canonical JSON (what the manifest records)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass(frozen=True)
class ClaimModel:
    """Rebuilt from JSON; ``predict`` gives class probabilities and calibrated P(faulty) per feature row."""

    classes: tuple[str, ...]
    coef: np.ndarray
    intercept: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    platt_a: float
    platt_b: float
    threshold: float
    manifest: dict[str, Any]
    trees: tuple[dict[str, np.ndarray], ...] = ()
    tree_init: float = 0.0
    tree_rate: float = 0.0
    generic_words: frozenset[str] = frozenset()

    def tree_raw(self, rows: np.ndarray) -> np.ndarray:
        """Log-odds of "faulty" from the boosted trees (init + rate * sum of the leaves reached)."""
        x = np.asarray(rows, dtype=np.float64)
        total = np.full(x.shape[0], self.tree_init)
        index = np.arange(x.shape[0])
        for tree in self.trees:
            node = np.zeros(x.shape[0], dtype=np.int64)
            for _ in range(int(tree["depth"])):
                left = tree["left"][node]
                inner = left >= 0
                go_left = x[index, np.maximum(tree["feature"][node], 0)] <= tree["threshold"][node]
                node = np.where(inner, np.where(go_left, left, tree["right"][node]), node)
            total += self.tree_rate * tree["value"][node]
        return total

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class probabilities (n, 3), calibrated P(faulty) (n,)) for feature rows in FEATURE_NAMES order."""
        x = (np.asarray(rows, dtype=np.float64) - self.mean) / self.scale
        logits = x @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        if self.trees:
            raw = 1.0 / (1.0 + np.exp(-self.tree_raw(rows)))
        else:
            raw = 1.0 - probs[:, self.classes.index("supported")]
        p_faulty = 1.0 / (1.0 + np.exp(-(self.platt_a * raw + self.platt_b)))
        return probs, p_faulty


def load_claim_model(path: str | Path | None = None) -> ClaimModel:
    """Load and verify the shipped model (default ``llm_release/data/models/claim_judge.json``)."""
    source = Path(path) if path is not None else Path(str(resources.files("llm_release.data").joinpath(MODEL_RESOURCE)))
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClaimModelError(
            f"{source}: claim-judge model not found; run python -m llm_release.data.train_claim_judge") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ClaimModelError(f"{source}: cannot read the claim-judge model: {exc}") from exc
    try:
        params, manifest = document["params"], document["manifest"]
        expected = manifest["params_sha256"]
    except (KeyError, TypeError) as exc:
        raise ClaimModelError(
            f"{source}: missing field {exc} (expected 'params' and 'manifest.params_sha256')") from exc
    actual = params_sha256(params)
    if actual != expected:
        raise ClaimModelError(
            f"{source}: parameters do not match manifest.params_sha256 (expected {expected}, got {actual}); "
            "the file was edited or corrupted: retrain with python -m llm_release.data.train_claim_judge"
        )
    if tuple(params["feature_names"]) != FEATURE_NAMES:
        raise ClaimModelError(f"{source}: field 'params.feature_names' {params['feature_names']} does not match "
                              f"the judge's features {list(FEATURE_NAMES)}")
    return ClaimModel(
        classes=tuple(params["classes"]), coef=np.asarray(params["coef"], dtype=np.float64),
        intercept=np.asarray(params["intercept"], dtype=np.float64), mean=np.asarray(params["mean"]),
        scale=np.asarray(params["scale"]), platt_a=float(params["platt_a"]), platt_b=float(params["platt_b"]),
        threshold=float(params["threshold"]), manifest=manifest,
        trees=tuple(_tree(t, source, n) for n, t in enumerate(params.get("trees", ()))),
        tree_init=float(params.get("tree_init", 0.0)), tree_rate=float(params.get("tree_rate", 0.0)),
        generic_words=frozenset(params.get("generic_words", ())),
    )


def _tree(tree: dict[str, Any], source: Path, number: int) -> dict[str, np.ndarray]:
    try:
        out = {"feature": np.asarray(tree["feature"], dtype=np.int64), "threshold": np.asarray(tree["threshold"]),
               "left": np.asarray(tree["left"], dtype=np.int64), "right": np.asarray(tree["right"], dtype=np.int64),
               "value": np.asarray(tree["value"], dtype=np.float64), "depth": np.asarray(int(tree["depth"]))}
    except (KeyError, TypeError, ValueError) as exc:
        raise ClaimModelError(f"{source}: field 'params.trees[{number}]' is malformed: {exc}") from exc
    if out["feature"].max(initial=-1) >= len(FEATURE_NAMES):
        raise ClaimModelError(f"{source}: field 'params.trees[{number}].feature' names an unknown feature")
    return out
