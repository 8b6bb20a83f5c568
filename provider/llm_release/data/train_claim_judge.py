"""Train the claim judge's model from the deterministic generator and write
``data/models/claim_judge.json`` (``python -m llm_release.data.train_claim_judge``).

Entries are split by a hash of their id into train (60 %), calib (20 %) and test (20 %): a multinomial
logistic regression is fitted on train; Platt scaling of P(faulty) and the decision threshold (the
lowest with claim-level false-positive rate <= ``MAX_CLAIM_FPR`` on calib) are fitted on calib; the
manifest reports precision / recall / FPR of "faulty" on test, entries the model never saw.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

from llm_release.data.perturb import GENERATOR_VERSION, generate, rows_sha256, split_of
from llm_release.suites.claim_judge import ClaimJudge
from llm_release.suites.claim_model import params_sha256
from llm_release.suites.claims import FEATURE_NAMES, feature_vector
from llm_release.suites.grounding import Grounder
from llm_release.suites.knowledge_base import KnowledgeBase

MAX_CLAIM_FPR = 0.05
DEFAULT_OUT = Path(__file__).parent / "models" / "claim_judge.json"


def _scores(y_faulty: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    tp = int((pred & y_faulty).sum())
    fp = int((pred & ~y_faulty).sum())
    fn = int((~pred & y_faulty).sum())
    tn = int((~pred & ~y_faulty).sum())
    return {"precision": tp / max(1, tp + fp), "recall": tp / max(1, tp + fn), "fpr": fp / max(1, fp + tn),
            "n_faulty": tp + fn, "n_supported": fp + tn}


def train(kb: KnowledgeBase, seed: int = 0) -> dict:
    rows = generate(kb, seed=seed)
    judge = ClaimJudge.__new__(ClaimJudge)
    judge.kb, judge.grounder, judge._vectors = kb, Grounder(kb), {}
    feats = judge.claim_rows([(r.entry_id, r.query, r.claim) for r in rows])
    x = np.asarray([feature_vector(f) for f, _ in feats])
    labels = np.asarray([r.label for r in rows])
    part = np.asarray([split_of(r.entry_id) for r in rows])
    mean, scale = x[part == "train"].mean(axis=0), x[part == "train"].std(axis=0)
    scale[scale == 0] = 1.0
    xs = (x - mean) / scale
    model = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")
    model.fit(xs[part == "train"], labels[part == "train"])
    classes = [str(c) for c in model.classes_]
    raw = 1.0 - model.predict_proba(xs)[:, classes.index("supported")]
    faulty = labels != "supported"
    platt = LogisticRegression(C=1e6, max_iter=1000)
    calib = part == "calib"
    platt.fit(raw[calib].reshape(-1, 1), faulty[calib])
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    p = 1.0 / (1.0 + np.exp(-(a * raw + b)))
    candidates = sorted(set(np.round(p[calib], 6)))
    threshold = 0.5
    for t in candidates:
        if _scores(faulty[calib], p[calib] > t)["fpr"] <= MAX_CLAIM_FPR:
            threshold = float(t)
            break
    params = {
        "feature_names": list(FEATURE_NAMES), "classes": classes, "coef": model.coef_.tolist(),
        "intercept": model.intercept_.tolist(), "mean": mean.tolist(), "scale": scale.tolist(),
        "platt_a": a, "platt_b": b, "threshold": threshold,
    }
    test = part == "test"
    manifest = {
        "params_sha256": params_sha256(params), "training_data_sha256": rows_sha256(rows),
        "generator": GENERATOR_VERSION, "seed": seed, "rows": len(rows), "sklearn_version": sklearn.__version__,
        "embedder": judge.grounder.model_id, "kb_sha256": judge.grounder.kb_hash,
        "date": dt.date.today().isoformat(), "max_claim_fpr_on_calib": MAX_CLAIM_FPR,
        "heldout_test": _scores(faulty[test], p[test] > threshold),
        "heldout_calib": _scores(faulty[calib], p[calib] > threshold),
    }
    return {"params": params, "manifest": manifest}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    document = train(KnowledgeBase.load(), seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(document["manifest"], indent=1))


if __name__ == "__main__":
    main()
