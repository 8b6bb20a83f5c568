"""The claim judge's learned model, shipped as JSON: multinomial logistic regression over ``claims``
features (standardised), plus Platt scaling of P(faulty) fitted on a held-out part of the generated data
and the decision threshold chosen there. Loading verifies the sha256 of the parameters recorded in the
manifest and refuses a file whose parameters were changed. Nothing trains at run time."""

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

    def predict(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(class probabilities (n, 3), calibrated P(faulty) (n,)) for feature rows in FEATURE_NAMES order."""
        x = (np.asarray(rows, dtype=np.float64) - self.mean) / self.scale
        logits = x @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
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
    )
