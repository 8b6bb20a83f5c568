"""Verdicts of the LLM judge and how they combine with the offline judge (pure: no I/O, no Airflow).

Two rules keep an LLM judge honest as a measuring instrument (DESIGN, "Measurement honesty"):

* Repeats. The judge is asked N times per item (temperature 0, yet endpoints are not deterministic).
  :func:`aggregate_repeats` takes the majority verdict and reports its ``agreement``: the share of ALL
  requested repeats that agree with it, so a repeat that failed or never parsed counts against the
  verdict instead of vanishing. A tie, no parsed repeat, or agreement below ``min_agreement`` makes the
  item "inconclusive". A failed repeat is never a pass.
* Combination. :func:`combine` applies the policy's judge mode for a use (``policy.judging``): the
  offline judge alone, the LLM judge alone, or both, where any disagreement on correct / hallucinated /
  policy makes the item "inconclusive" (it goes to a person). Inconclusive is never a pass.

The offline :class:`~llm_release.suites.judge.Judgement` has no policy opinion of its own: the policy
checker's finding for the same answer is passed as ``checker_violation`` (every judged answer goes
through the checker, whatever the judge mode).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any, Literal

from llm_release.policy.judging import JudgeMode
from llm_release.suites.judge import Judgement


def judge_batch(judge: Any, requests: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Judge many answers, in one embedding batch when the judge can (``judge_many``), else one by one.

    Each request holds ``judge``'s keyword arguments; ``query`` and ``response`` are required. The eval
    suite, the shadow evaluation and the live dwell all judge this way, so none pays per-answer overhead.
    """
    if hasattr(judge, "judge_many"):
        return list(judge.judge_many(list(requests)))
    out = []
    for request in requests:
        rest = {k: v for k, v in request.items() if k not in ("query", "response")}
        out.append(judge.judge(request["query"], request["response"], **rest))
    return out

Verdict = Literal["correct", "incorrect", "inconclusive"]
JUDGE_MODES: tuple[str, ...] = ("offline", "llm", "both")


@dataclass(frozen=True)
class RepeatVerdict:
    """One parsed reply of the LLM judge (the rubric's JSON, validated)."""

    verdict: Literal["correct", "incorrect"]
    hallucinated: bool
    policy_violation: bool
    violation_category: str | None
    score: float
    reason: str


@dataclass(frozen=True)
class LLMJudgement:
    """The LLM judge's verdict on one item, over its repeats.

    ``hallucinated``, ``policy_violation`` and ``score`` are None when no repeat parsed. Token counts are
    what this judgement spent now: repeats served from the cache cost nothing and count 0.
    """

    verdict: Verdict
    hallucinated: bool | None
    policy_violation: bool | None
    violation_category: str | None
    score: float | None
    agreement: float
    repeats: int
    parsed_repeats: int
    reasons: tuple[str, ...]
    cached: bool
    prompt_tokens: int
    completion_tokens: int
    attempts: int = 0
    """HTTP requests sent for this item (retries and re-asks included; 0 when fully cached)."""
    errors: tuple[str, ...] = ()
    """Why repeats failed (transport errors, HTTP errors, replies unparsable after the re-ask)."""
    cost: float = 0.0


def _majority_flag(values: Sequence[bool]) -> bool:
    """Majority of boolean flags; a tie goes to True (the failing side: a flag is a finding)."""
    true = sum(values)
    return true * 2 >= len(values)


def aggregate_repeats(
    outcomes: Sequence[RepeatVerdict | None],
    min_agreement: float,
    *,
    errors: Sequence[str] = (),
    cached: bool = False,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    attempts: int = 0,
    cost: float = 0.0,
) -> LLMJudgement:
    """Fold the repeats of one item (None = failed or unparsable repeat) into an :class:`LLMJudgement`.

    verdict: the strict majority of the parsed verdicts; "inconclusive" on a tie, when nothing parsed, or
    when ``agreement`` (majority count / all repeats) is below ``min_agreement``. ``hallucinated`` and
    ``policy_violation`` are the majority of the parsed repeats, a tie counting as a finding; the
    category is the commonest one among the repeats that found a violation; ``score`` the median.
    """
    if not outcomes:
        raise ValueError("aggregate_repeats needs at least one repeat")
    if not 0.0 <= min_agreement <= 1.0:
        raise ValueError(f"min_agreement must be in [0, 1], got {min_agreement}")
    parsed = [o for o in outcomes if o is not None]
    total = len(outcomes)
    reasons = tuple(o.reason for o in parsed)
    if not parsed:
        return LLMJudgement(
            verdict="inconclusive", hallucinated=None, policy_violation=None, violation_category=None,
            score=None, agreement=0.0, repeats=total, parsed_repeats=0,
            reasons=(f"no repeat of {total} gave a parsable verdict",), cached=cached,
            prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, attempts=attempts,
            errors=tuple(errors), cost=cost,
        )
    votes = Counter(o.verdict for o in parsed)
    correct, incorrect = votes["correct"], votes["incorrect"]
    top = max(correct, incorrect)
    agreement = top / total
    verdict: Verdict
    notes: list[str] = []
    if correct == incorrect:
        verdict = "inconclusive"
        notes.append(f"repeats tie: {correct} correct / {incorrect} incorrect")
    elif agreement < min_agreement:
        verdict = "inconclusive"
        notes.append(f"agreement {agreement:.2f} below the minimum {min_agreement:.2f} "
                     f"({correct} correct / {incorrect} incorrect / {total - len(parsed)} failed)")
    else:
        verdict = "correct" if correct > incorrect else "incorrect"
    violation = _majority_flag([o.policy_violation for o in parsed])
    categories = Counter(o.violation_category for o in parsed if o.policy_violation and o.violation_category)
    return LLMJudgement(
        verdict=verdict,
        hallucinated=_majority_flag([o.hallucinated for o in parsed]),
        policy_violation=violation,
        violation_category=categories.most_common(1)[0][0] if violation and categories else None,
        score=float(median(o.score for o in parsed)),
        agreement=agreement,
        repeats=total,
        parsed_repeats=len(parsed),
        reasons=(*notes, *reasons),
        cached=cached,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        attempts=attempts,
        errors=tuple(errors),
        cost=cost,
    )


@dataclass(frozen=True)
class CombinedVerdict:
    """The verdict a gate counts for one answer, with where it came from.

    ``correct`` is True only for a "correct" verdict; an "inconclusive" one has ``needs_review`` set and
    ``disagreements`` naming what the judges disagreed on (empty when a judge simply had no verdict).
    """

    verdict: Verdict
    mode: JudgeMode
    hallucinated: bool | None
    policy_violation: bool | None
    violation_category: str | None
    score: float | None
    reasons: tuple[str, ...]
    disagreements: tuple[str, ...] = ()

    @property
    def correct(self) -> bool:
        return self.verdict == "correct"

    @property
    def needs_review(self) -> bool:
        return self.verdict == "inconclusive"


def _offline_only(offline: Judgement, checker_violation: bool | None) -> CombinedVerdict:
    violation = bool(checker_violation)
    reasons = list(offline.reasons)
    if violation:
        reasons.append("policy checker found a violation")
    return CombinedVerdict(
        verdict="correct" if offline.correct and not violation else "incorrect",
        mode="offline", hallucinated=offline.hallucinated,
        policy_violation=checker_violation, violation_category=None, score=offline.score,
        reasons=tuple(reasons),
    )


def _inconclusive(mode: JudgeMode, why: str, llm: LLMJudgement | None, offline: Judgement | None,
                  disagreements: tuple[str, ...] = ()) -> CombinedVerdict:
    scores = [s for s in (llm.score if llm else None, offline.score if offline else None) if s is not None]
    return CombinedVerdict(
        verdict="inconclusive", mode=mode,
        hallucinated=llm.hallucinated if llm is not None else None,
        policy_violation=llm.policy_violation if llm is not None else None,
        violation_category=llm.violation_category if llm is not None else None,
        score=min(scores) if scores else None,
        reasons=(why, *(llm.reasons if llm is not None else ())),
        disagreements=disagreements,
    )


def _llm_ready(mode: JudgeMode, llm: LLMJudgement | None, offline: Judgement | None,
               min_agreement: float | None) -> CombinedVerdict | None:
    """An inconclusive verdict when the LLM judgement cannot decide, else None."""
    if llm is None:
        return _inconclusive(mode, "no LLM judgement for this item (judge unavailable)", None, offline)
    if llm.verdict == "inconclusive":
        return _inconclusive(mode, "the LLM judge is inconclusive", llm, offline)
    if min_agreement is not None and llm.agreement < min_agreement:
        return _inconclusive(
            mode, f"LLM judge agreement {llm.agreement:.2f} below the minimum {min_agreement:.2f}", llm, offline)
    if llm.hallucinated is None or llm.policy_violation is None:
        return _inconclusive(mode, "the LLM judgement lacks its hallucination / policy findings", llm, offline)
    return None


def combine(
    offline: Judgement,
    llm: LLMJudgement | None,
    mode: JudgeMode,
    *,
    checker_violation: bool | None = None,
    min_agreement: float | None = None,
) -> CombinedVerdict:
    """The verdict for one answer under the policy's judge ``mode`` (module docstring).

    ``offline``: the offline judge alone; a checker violation makes it incorrect. ``llm``: the LLM judge
    alone (missing or inconclusive -> inconclusive); a checker violation still makes it incorrect.
    ``both``: correct only when both judges say correct with no hallucination and no violation; a
    disagreement on correct, hallucinated or policy (judge vs judge, or LLM vs checker) -> inconclusive.
    ``min_agreement`` re-checks the LLM judgement's agreement (None: trust its own verdict).
    """
    if mode not in JUDGE_MODES:
        raise ValueError(f"judge mode must be one of {list(JUDGE_MODES)}, got {mode!r}")
    if mode == "offline":
        return _offline_only(offline, checker_violation)
    blocked = _llm_ready(mode, llm, offline, min_agreement)
    if blocked is not None:
        return blocked
    assert llm is not None and llm.hallucinated is not None and llm.policy_violation is not None
    # a "correct" verdict that also reports a hallucination or a violation contradicts itself: not a pass
    llm_correct = llm.verdict == "correct" and not llm.hallucinated and not llm.policy_violation
    if mode == "llm":
        violation = llm.policy_violation or bool(checker_violation)
        reasons = list(llm.reasons)
        if checker_violation and not llm.policy_violation:
            reasons.append("policy checker found a violation the LLM judge did not")
        return CombinedVerdict(
            verdict="correct" if llm_correct and not violation else "incorrect", mode="llm",
            hallucinated=llm.hallucinated, policy_violation=violation,
            violation_category=llm.violation_category, score=llm.score, reasons=tuple(reasons),
        )
    disagreements: list[str] = []
    if offline.correct != llm_correct:
        disagreements.append(f"correct: offline {offline.correct}, LLM {llm_correct}")
    if offline.hallucinated != llm.hallucinated:
        disagreements.append(f"hallucinated: offline {offline.hallucinated}, LLM {llm.hallucinated}")
    if checker_violation is not None and checker_violation != llm.policy_violation:
        disagreements.append(f"policy violation: checker {checker_violation}, LLM {llm.policy_violation}")
    if disagreements:
        return _inconclusive("both", "the offline and LLM judges disagree: " + "; ".join(disagreements),
                             llm, offline, tuple(disagreements))
    violation = llm.policy_violation or bool(checker_violation)
    both_correct = offline.correct and llm_correct and not violation and not llm.hallucinated
    return CombinedVerdict(
        verdict="correct" if both_correct else "incorrect", mode="both",
        hallucinated=llm.hallucinated, policy_violation=violation,
        violation_category=llm.violation_category,
        score=min(offline.score, llm.score) if llm.score is not None else offline.score,
        reasons=(*offline.reasons, *llm.reasons),
    )
