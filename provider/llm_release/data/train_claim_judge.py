"""Train the claim judge's model and write ``data/models/claim_judge.json``
(``python -m llm_release.data.train_claim_judge``).

Training data, two sources:

* the deterministic perturbation generator (``perturb.generate``): KB sentences, paraphrases and their
  negations, swaps, wrong numbers and invented claims, grounded on their own entry;
* the calibration set's TRAIN split only (``load_calibration("train")``; the test split is never read):
  every answer is split into claims exactly as the judge splits them, grounded both as live traffic is
  (query + response) and as the offline suites are (the entry's id). The claim containing the row's
  ``span`` is faulty (contradicted for a contradiction, unsupported for a fabrication or a wrong number);
  every other claim of a hallucinated answer and every claim of a correct, policy-adjacent clean, hand-off
  or omission answer is supported. Violations (a policy matter, not a factual one) and out-of-scope rows
  are left out.

Model: gradient-boosted trees for P(faulty) and a multinomial logistic regression for the kind of fault.
The threshold is chosen at the level the gates use, the answer (hallucinated = some claim above it), by
grouped cross-validation on the calibration train split (folds by knowledge-base entry, so a fold's entries
are unseen): the lowest threshold whose out-of-fold answer-level false-positive rate on correct answers is
at most ``MAX_ANSWER_FPR`` in both grounding modes. Platt scaling is fitted on the same out-of-fold
predictions. The manifest records the cross-validated figures, the training data's hash and the
calibration train split's version.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from llm_release.data.perturb import GENERATOR_VERSION, generate, rows_sha256
from llm_release.suites.calibration import CalibrationRow, load_calibration
from llm_release.suites.claim_judge import ClaimJudge
from llm_release.suites.claim_model import params_sha256
from llm_release.suites.claims import FEATURE_NAMES, content_words, feature_vector
from llm_release.suites.grounding import Grounder
from llm_release.suites.judge import ReferenceJudge
from llm_release.suites.knowledge_base import KnowledgeBase
from llm_release.suites.numbers import parse_quantities
from llm_release.suites.policy_checker import is_escalation

MAX_ANSWER_FPR = 0.03
"""Out-of-fold answer-level FPR allowed on correct answers (below the issue's 0.05, for margin)."""
CALIBRATION_WEIGHT = 2.0
"""Weight of a calibration claim relative to a generated one (real wording is scarcer and closer to traffic)."""
FOLDS = 5
GBM_PARAMS: dict[str, Any] = {"n_estimators": 250, "max_depth": 3, "learning_rate": 0.08, "subsample": 0.9,
                              "min_samples_leaf": 8, "random_state": 0}
DEFAULT_OUT = Path(__file__).parent / "models" / "claim_judge.json"
_FAULT_CLASS = {"contradiction": "contradicted", "fabrication": "unsupported", "wrong_number": "unsupported"}


@dataclass(frozen=True)
class ClaimSample:
    """One claim's features and label; ``answer`` / ``mode`` tie a calibration claim to its answer."""

    features: list[float]
    label: str
    group: str
    weight: float
    answer: int = -1
    mode: str = ""
    forced_supported: bool = False


def span_in_claim(span: str, claim: str) -> bool:
    """The claim carries the wrong part: either contains the other, or they share most content words."""
    a, b = span.strip(" .,;!?").lower(), claim.strip(" .,;!?").lower()
    if a in b or b in a:
        return True
    span_words, claim_words = set(content_words(span)), set(content_words(claim))
    if not span_words or not claim_words:
        return False
    shared = len(span_words & claim_words)
    return shared / len(span_words) >= 0.6 or shared / len(claim_words) >= 0.6


def calibration_samples(judge: ClaimJudge, rows: Sequence[CalibrationRow]) -> tuple[list[ClaimSample], list[dict]]:
    """Claims of the calibration rows in both grounding modes, and one record per (answer, mode)."""
    usable = [r for r in rows if r.kb_id is not None and r.label != "violation"]
    samples: list[ClaimSample] = []
    answers: list[dict] = []
    for mode in ("live", "eval"):
        parsed = judge.parse_items([{"query": r.query, "response": r.response,
                                     "kb_id": r.kb_id if mode == "eval" else None} for r in usable])
        _, _, owners, feature_rows = judge.claim_features_many(parsed)
        for position, row in enumerate(usable):
            answers.append({"index": len(answers), "row": position, "mode": mode, "group": row.kb_id,
                            "hallucinated": row.hallucinated, "correct": row.correct, "label": row.label})
        base = len(answers) - len(usable)
        for (item, claim, _, _), features in zip(owners, feature_rows, strict=True):
            row = usable[item]
            faulty = row.hallucinated and row.span is not None and span_in_claim(row.span, claim)
            label = _FAULT_CLASS[row.label] if faulty else "supported"
            forced = is_escalation(claim) and not parse_quantities(claim)
            samples.append(ClaimSample(features, label, str(row.kb_id), CALIBRATION_WEIGHT, base + item, mode, forced))
    return samples, answers


def generator_samples(judge: ClaimJudge, kb: KnowledgeBase, seed: int) -> tuple[list[ClaimSample], str]:
    rows = generate(kb, seed=seed)
    feats = judge.claim_rows([(r.entry_id, r.query, r.claim) for r in rows])
    return [ClaimSample(feature_vector(f), r.label, r.entry_id, 1.0) for r, (f, _) in zip(rows, feats, strict=True)], \
        rows_sha256(rows)


def fit_trees(x: np.ndarray, faulty: np.ndarray, weight: np.ndarray) -> GradientBoostingClassifier:
    model = GradientBoostingClassifier(**GBM_PARAMS)
    model.fit(x, faulty, sample_weight=weight)
    return model


def export_trees(model: GradientBoostingClassifier, x: np.ndarray) -> dict[str, Any]:
    """The fitted trees as JSON-able node arrays; checked against sklearn's own decision function."""
    trees = []
    for estimator in model.estimators_[:, 0]:
        t = estimator.tree_
        trees.append({"feature": t.feature.tolist(), "threshold": t.threshold.tolist(),
                      "left": t.children_left.tolist(), "right": t.children_right.tolist(),
                      "value": t.value[:, 0, 0].tolist(), "depth": int(t.max_depth)})
    rate = float(model.learning_rate)
    leaves = sum(rate * e.predict(x) for e in model.estimators_[:, 0])
    init = float(np.median(model.decision_function(x) - leaves))
    return {"trees": trees, "tree_init": init, "tree_rate": rate}


def answer_figures(answers: list[dict], p_max: np.ndarray, threshold: float) -> dict[str, dict[str, float]]:
    out = {}
    for mode in ("live", "eval"):
        sel = [a for a in answers if a["mode"] == mode]
        hall = [a for a in sel if a["hallucinated"]]
        corr = [a for a in sel if a["correct"]]
        recall = sum(p_max[a["index"]] > threshold for a in hall) / max(1, len(hall))
        fpr = sum(p_max[a["index"]] > threshold for a in corr) / max(1, len(corr))
        out[mode] = {"halluc_recall": round(recall, 4), "halluc_fpr": round(fpr, 4), "n_hallucinated": len(hall),
                     "n_correct": len(corr)}
    return out


def _recall_at(answers: list[dict], p_max: np.ndarray, fpr: float) -> list[float]:
    for t in sorted(set(np.round(p_max, 6))):
        figures = answer_figures(answers, p_max, float(t))
        if all(figures[m]["halluc_fpr"] <= fpr for m in figures):
            return [figures["live"]["halluc_recall"], figures["eval"]["halluc_recall"]]
    return [0.0, 0.0]


def learn_generic(kb: KnowledgeBase, rows: Sequence[CalibrationRow]) -> frozenset[str]:
    """Support-speak: word stems that acceptable answers of at least two entries use although their entry
    never does ("disruption", "re-purchase"), and that appear in fewer entries' hallucinated spans."""
    used: dict[str, set[str]] = {}
    faulty: dict[str, set[str]] = {}
    for row in rows:
        if row.kb_id is None:
            continue
        if row.hallucinated and row.span:
            for word in set(content_words(row.span)):
                faulty.setdefault(word, set()).add(row.kb_id)
        if row.correct or row.label == "omission":
            entry = kb.get(row.kb_id)
            known = set(content_words(" ".join([entry.answer, *entry.facts, *entry.questions, row.query])))
            for word in set(content_words(row.response)) - known:
                used.setdefault(word, set()).add(row.kb_id)
    return frozenset(w for w, ids in used.items() if len(ids) >= 2 and len(ids) > len(faulty.get(w, ())))


def _arrays(samples: Sequence[ClaimSample]) -> tuple[np.ndarray, ...]:
    x = np.asarray([s.features for s in samples])
    labels = np.asarray([s.label for s in samples])
    weight = np.asarray([s.weight for s in samples])
    groups = np.asarray([s.group for s in samples])
    return x, labels, labels != "supported", weight, groups


def train(kb: KnowledgeBase, seed: int = 0) -> dict:
    judge = ClaimJudge.__new__(ClaimJudge)  # features only: no model file needed (it may not exist yet)
    judge.kb, judge.grounder, judge._vectors, judge._fallback = kb, Grounder(kb), {}, ReferenceJudge(kb)
    calibration_rows = load_calibration("train")
    calib_groups = sorted({r.kb_id for r in calibration_rows if r.kb_id is not None and r.label != "violation"})

    # Grouped CV over the calibration train split's entries: a held-out fold's entries are unseen in its
    # calibration claims, in the generated claims and in the support-speak list the fold's model uses.
    oof_by_answer: dict[int, float] = {}
    answers: list[dict] = []
    calib: list[ClaimSample] = []
    for fold, (_, test_groups) in enumerate(GroupKFold(n_splits=FOLDS).split(calib_groups, groups=calib_groups)):
        held = {calib_groups[i] for i in test_groups}
        judge.generic_words = learn_generic(kb, [r for r in calibration_rows if r.kb_id not in held])
        generated, generated_sha = generator_samples(judge, kb, seed)
        calib, answers = calibration_samples(judge, calibration_rows)
        x, _, faulty, weight, groups = _arrays(generated + calib)
        held_mask = np.isin(groups, list(held))
        model = fit_trees(x[~held_mask], faulty[~held_mask], weight[~held_mask])
        is_calib = np.arange(len(x)) >= len(generated)
        target = np.flatnonzero(held_mask & is_calib)
        for index, p in zip(target, model.predict_proba(x[target])[:, 1], strict=True):
            sample = calib[index - len(generated)]
            oof_by_answer.setdefault(sample.answer, 0.0)
            if not sample.forced_supported:
                oof_by_answer[sample.answer] = max(oof_by_answer[sample.answer], float(p))
        print(f"fold {fold}: {len(held)} entries held out, {len(target)} claims")
    oof_calib_claims = []  # (raw p, faulty) of held-out calibration claims for Platt scaling
    p_max_raw = np.asarray([oof_by_answer.get(a["index"], 0.0) for a in answers])
    for a in answers:
        oof_calib_claims.append((p_max_raw[a["index"]], bool(a["hallucinated"])))
    platt = LogisticRegression(C=1e6, max_iter=1000)
    platt.fit(np.asarray([[p] for p, _ in oof_calib_claims]), np.asarray([y for _, y in oof_calib_claims]))
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    p_max = 1.0 / (1.0 + np.exp(-(a * p_max_raw + b)))
    p_max[p_max_raw == 0] = 0.0  # answers with no scored claim stay at 0
    threshold = 0.99
    for t in sorted(set(np.round(p_max, 6))):
        figures = answer_figures(answers, p_max, float(t))
        if all(figures[m]["halluc_fpr"] <= MAX_ANSWER_FPR for m in figures):
            threshold = float(t)
            break
    cv = answer_figures(answers, p_max, threshold)
    curve = {str(fpr): _recall_at(answers, p_max, fpr) for fpr in (0.03, 0.05, 0.1, 0.2)}

    judge.generic_words = learn_generic(kb, calibration_rows)
    generated, generated_sha = generator_samples(judge, kb, seed)
    calib, answers = calibration_samples(judge, calibration_rows)
    samples = generated + calib
    x, labels, faulty, weight, _ = _arrays(samples)
    final = fit_trees(x, faulty, weight)
    exported = export_trees(final, x)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    kinds = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced")
    kinds.fit((x - mean) / scale, labels, sample_weight=weight)
    params = {
        "feature_names": list(FEATURE_NAMES), "classes": [str(c) for c in kinds.classes_],
        "coef": kinds.coef_.tolist(), "intercept": kinds.intercept_.tolist(), "mean": mean.tolist(),
        "scale": scale.tolist(), "platt_a": a, "platt_b": b, "threshold": threshold, **exported,
        "generic_words": sorted(judge.generic_words),
    }
    calibration_version = hashlib.sha256(json.dumps(
        [r.model_dump(mode="json") for r in calibration_rows], sort_keys=True).encode()).hexdigest()
    data_version = hashlib.sha256(f"{generated_sha}|{calibration_version}".encode()).hexdigest()
    manifest = {
        "params_sha256": params_sha256(params), "training_data_sha256": data_version,
        "generator": GENERATOR_VERSION, "generator_rows_sha256": generated_sha,
        "calibration_train_sha256": calibration_version, "calibration_train_rows": len(calibration_rows),
        "seed": seed, "rows": len(samples), "rows_generated": len(generated), "rows_calibration": len(calib),
        "sklearn_version": sklearn.__version__, "model": f"GradientBoostingClassifier{GBM_PARAMS}",
        "embedder": judge.grounder.model_id, "kb_sha256": judge.grounder.kb_hash,
        "date": dt.date.today().isoformat(), "max_answer_fpr_cv": MAX_ANSWER_FPR,
        "cv_calibration_train": {"folds": FOLDS, "grouped_by": "kb_id", "answer_level_at_threshold": cv,
                                 "recall_live_eval_at_fpr": curve},
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
