"""How well the shipped judge and policy checker tell a good answer from a bad one (issue 6).

Nothing is trained here: the claim judge and the policy checker load their shipped model files. Two runs:

1. **Held-out calibration part** (``load_calibration("test")``): answers written by this project
   independently of the sandbox, labelled correct / fabrication / contradiction / wrong_number / omission /
   violation / policy-adjacent clean / hand-off. Each is judged twice:
   * ``live``: as shadow and live samples are judged, from the query and the response alone (the judge
     grounds itself in the knowledge base);
   * ``eval``: as the offline suites judge labelled items, with the entry's id (its answer is the reference).
   The headline figures are the *worse* of the two modes for each key, so that one number holds for every
   use of the judge.
2. **Live-style run against the sandbox's fault library**: the candidate bot answers the traffic queries with
   fabrication, contradiction, wrong numbers, policy violations and persona slips switched on; the labels are
   the faults the bot says it applied. This is not independent of the sandbox's texts in the sense of (1),
   but neither the judge nor the checker has seen them.

Definitions (per answer): hallucination recall = hallucinated answers (fabrication, contradiction, wrong
number) the judge calls hallucinated; hallucination FPR = correct answers (correct, policy-adjacent clean,
hand-off) it calls hallucinated; policy recall / FPR = violating answers the checker flags / non-violating
answers it flags; balanced accuracy = mean of the recall of "correct" and of "incorrect", where an answer is
judged correct when the judge says correct and the checker finds nothing. ``judge_items_per_s`` times the
offline judge alone (``judge_many`` over the held-out part, models already loaded).

    .venv/bin/python benchmarks/judge_quality.py

The last line is one JSON object: ``{"judge_balanced_accuracy", "halluc_recall", "halluc_fpr", "policy_recall",
"policy_fpr", "judge_items_per_s"}`` plus the per-mode and sandbox figures under their own keys.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_release.data.traffic import load_traffic_queries
from llm_release.sandbox.bot import SupportBot
from llm_release.sandbox.faults import FaultSettings, RequestContext
from llm_release.suites.calibration import CalibrationRow, calibration_version, load_calibration
from llm_release.suites.claim_judge import ClaimJudge
from llm_release.suites.knowledge_base import KnowledgeBase
from llm_release.suites.policy_checker import check_responses

HALLUCINATED_FAULTS = {"fabrication", "contradiction", "wrong_number"}
POLICY_FAULTS = {"policy_violation", "persona_slip"}


@dataclass(frozen=True)
class Labelled:
    """One answer with its truth: hallucinated, policy violation, correct overall."""

    id: str
    query: str
    response: str
    kb_id: str | None
    hallucinated: bool
    violation: bool
    correct: bool
    kind: str


@dataclass
class Scores:
    halluc_tp: int = 0
    halluc_fn: int = 0
    halluc_fp: int = 0
    halluc_tn: int = 0
    policy_tp: int = 0
    policy_fn: int = 0
    policy_fp: int = 0
    policy_tn: int = 0
    correct_ok: int = 0
    correct_n: int = 0
    incorrect_ok: int = 0
    incorrect_n: int = 0

    @staticmethod
    def _ratio(k: int, n: int) -> float | None:
        return round(k / n, 4) if n else None

    def figures(self) -> dict[str, Any]:
        bal = None
        if self.correct_n and self.incorrect_n:
            bal = round((self.correct_ok / self.correct_n + self.incorrect_ok / self.incorrect_n) / 2, 4)
        return {
            "balanced_accuracy": bal,
            "halluc_recall": self._ratio(self.halluc_tp, self.halluc_tp + self.halluc_fn),
            "halluc_fpr": self._ratio(self.halluc_fp, self.halluc_fp + self.halluc_tn),
            "policy_recall": self._ratio(self.policy_tp, self.policy_tp + self.policy_fn),
            "policy_fpr": self._ratio(self.policy_fp, self.policy_fp + self.policy_tn),
            "counts": {
                "hallucinated": self.halluc_tp + self.halluc_fn, "correct": self.correct_n,
                "violations": self.policy_tp + self.policy_fn, "not_violations": self.policy_fp + self.policy_tn,
                "incorrect": self.incorrect_n,
            },
        }


def score(items: Sequence[Labelled], judgements: Sequence[Any], findings: Sequence[Sequence[Any]],
          misses: Counter[str]) -> Scores:
    s = Scores()
    for item, judgement, found in zip(items, judgements, findings, strict=True):
        flagged = bool(found)
        if item.hallucinated:
            if judgement.hallucinated:
                s.halluc_tp += 1
            else:
                s.halluc_fn += 1
                misses[f"hallucination missed: {item.kind}"] += 1
        elif item.correct:
            if judgement.hallucinated:
                s.halluc_fp += 1
                misses[f"correct answer called hallucinated: {item.kind}"] += 1
            else:
                s.halluc_tn += 1
        if item.violation:
            s.policy_tp += flagged
            s.policy_fn += not flagged
            if not flagged:
                misses[f"violation missed: {item.kind}"] += 1
        else:
            s.policy_fp += flagged
            s.policy_tn += not flagged
            if flagged:
                misses[f"clean answer flagged: {item.kind}"] += 1
        said_correct = bool(judgement.correct) and not flagged
        if item.correct:
            s.correct_n += 1
            s.correct_ok += said_correct
        else:
            s.incorrect_n += 1
            s.incorrect_ok += not said_correct
    return s


def calibration_items(rows: Sequence[CalibrationRow]) -> list[Labelled]:
    return [
        Labelled(r.id, r.query, r.response, r.kb_id, r.hallucinated, r.policy_violation, r.correct,
                 r.violation_category or r.label)
        for r in rows
    ]


def sandbox_items(kb: KnowledgeBase, seed: int) -> list[Labelled]:
    """The candidate bot's answers to the traffic queries with the fault library switched on."""
    faults = FaultSettings(hallucination_rate=0.3, policy_violation_rate=0.15, persona_slip_rate=0.05, seed=seed)
    bot = SupportBot(kb, "candidate")
    live = RequestContext(traffic="live", traffic_share=0.5, served_before=10_000)
    items = []
    for index, query in enumerate(load_traffic_queries()):
        reply = bot.reply(query, faults, live)
        applied = set((reply.fault or "").split("+")) - {""}
        hallucinated = bool(applied & HALLUCINATED_FAULTS)
        violation = bool(applied & POLICY_FAULTS)
        kind = "+".join(sorted(applied)) or "faithful"
        items.append(Labelled(f"sandbox-{index}", query, reply.text, None, hallucinated, violation,
                              not applied, kind))
    return items


def judge_items(judge: ClaimJudge, items: Sequence[Labelled], with_reference: bool) -> list[Any]:
    return judge.judge_many([
        {"query": i.query, "response": i.response, "kb_id": i.kb_id if with_reference else None} for i in items
    ])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7, help="fault dice of the sandbox run")
    parser.add_argument("--show-misses", type=int, default=12, help="how many miss kinds to print per run")
    args = parser.parse_args(argv)

    kb = KnowledgeBase.load()
    started = time.perf_counter()
    judge = ClaimJudge(kb)
    judge.judge_many([{"query": "warm-up", "response": "Happy to help."}])  # loads MiniLM and the model file
    check_responses([("warm-up", "Happy to help.")])
    print(f"models loaded in {time.perf_counter() - started:.1f} s; calibration data {calibration_version()[:12]}")

    rows = load_calibration("test")
    items = calibration_items(rows)
    findings = check_responses([(i.query, i.response) for i in items])
    per_mode: dict[str, dict[str, Any]] = {}
    rate = 0.0
    for mode in ("live", "eval"):
        started = time.perf_counter()
        judgements = judge_items(judge, items, with_reference=mode == "eval")
        elapsed = time.perf_counter() - started
        if mode == "live":
            rate = len(items) / elapsed
        misses: Counter[str] = Counter()
        per_mode[mode] = score(items, judgements, findings, misses).figures()
        print(f"held-out calibration part, {mode} judging ({len(items)} answers, {len(items) / elapsed:.0f}/s): "
              f"{json.dumps({k: v for k, v in per_mode[mode].items() if k != 'counts'})}")
        print(f"  counts {per_mode[mode]['counts']}")
        for kind, count in misses.most_common(args.show_misses):
            print(f"  {count:4d} {kind}")

    sandbox = sandbox_items(kb, args.seed)
    sandbox_misses: Counter[str] = Counter()
    sandbox_scores = score(
        sandbox, judge_items(judge, sandbox, with_reference=False),
        check_responses([(i.query, i.response) for i in sandbox]), sandbox_misses,
    ).figures()
    print(f"sandbox fault library, live judging ({len(sandbox)} answers): "
          f"{json.dumps({k: v for k, v in sandbox_scores.items() if k != 'counts'})}")
    print(f"  counts {sandbox_scores['counts']}")
    for kind, count in sandbox_misses.most_common(args.show_misses):
        print(f"  {count:4d} {kind}")

    def worst(key: str, higher_is_better: bool) -> float | None:
        values = [m[key] for m in per_mode.values() if m[key] is not None]
        if not values:
            return None
        return min(values) if higher_is_better else max(values)

    result = {
        "judge_balanced_accuracy": worst("balanced_accuracy", True),
        "halluc_recall": worst("halluc_recall", True),
        "halluc_fpr": worst("halluc_fpr", False),
        "policy_recall": per_mode["live"]["policy_recall"],
        "policy_fpr": per_mode["live"]["policy_fpr"],
        "judge_items_per_s": round(rate, 1),
        "live": {k: v for k, v in per_mode["live"].items() if k != "counts"},
        "eval": {k: v for k, v in per_mode["eval"].items() if k != "counts"},
        "sandbox": {k: v for k, v in sandbox_scores.items() if k != "counts"},
        "held_out_answers": len(items),
        "calibration_version": calibration_version()[:12],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
