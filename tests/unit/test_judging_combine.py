"""How repeats fold into an LLM verdict and how the judge modes combine (suites.judging; pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llm_release.suites.judge import Judgement
from llm_release.suites.judging import LLMJudgement, RepeatVerdict, aggregate_repeats, combine

CORRECT = RepeatVerdict("correct", False, False, None, 0.9, "ok")
WRONG = RepeatVerdict("incorrect", True, False, None, 0.2, "invented")
VIOLATES = RepeatVerdict("incorrect", False, True, "claims_human", 0.0, "says it is a person")


def offline(correct: bool, hallucinated: bool = False, score: float = 0.8) -> Judgement:
    return Judgement(score=score, correct=correct, hallucinated=hallucinated, escalated=False)


def llm(verdict: str, hallucinated: bool | None = False, violation: bool | None = False,
        agreement: float = 1.0, score: float | None = 0.9) -> LLMJudgement:
    return LLMJudgement(verdict=verdict, hallucinated=hallucinated, policy_violation=violation,  # type: ignore[arg-type]
                        violation_category="claims_human" if violation else None, score=score,
                        agreement=agreement, repeats=3, parsed_repeats=3, reasons=("llm",), cached=False,
                        prompt_tokens=0, completion_tokens=0)


# --------------------------------------------------------------------------- aggregate_repeats
def test_two_of_three_is_a_majority_with_agreement_two_thirds() -> None:
    result = aggregate_repeats([CORRECT, CORRECT, WRONG], min_agreement=0.66)
    assert result.verdict == "correct" and result.agreement == pytest.approx(2 / 3)
    assert result.hallucinated is False and result.score == pytest.approx(0.9)
    assert aggregate_repeats([CORRECT, CORRECT, WRONG], min_agreement=0.67).verdict == "inconclusive"


def test_ties_and_unparsable_repeats_never_pass() -> None:
    assert aggregate_repeats([CORRECT, WRONG], 0.5).verdict == "inconclusive"
    nothing = aggregate_repeats([None, None, None], 0.5, errors=["e"] * 3)
    assert nothing.verdict == "inconclusive" and nothing.parsed_repeats == 0 and nothing.score is None
    # one parsed "correct" of three is agreement 1/3: the failed repeats count against it
    assert aggregate_repeats([CORRECT, None, None], 0.5).verdict == "inconclusive"


def test_violation_category_is_the_commonest_among_violating_repeats() -> None:
    result = aggregate_repeats([VIOLATES, VIOLATES, CORRECT], 0.66)
    assert result.verdict == "incorrect" and result.policy_violation and result.violation_category == "claims_human"
    with pytest.raises(ValueError, match="at least one repeat"):
        aggregate_repeats([], 0.5)


repeat_lists = st.lists(st.sampled_from([CORRECT, WRONG, VIOLATES, None]), min_size=1, max_size=7)


@given(repeat_lists, st.floats(0.5, 1.0))
def test_aggregate_properties(outcomes: list[RepeatVerdict | None], min_agreement: float) -> None:
    result = aggregate_repeats(outcomes, min_agreement)
    parsed = [o for o in outcomes if o is not None]
    assert result.repeats == len(outcomes) and result.parsed_repeats == len(parsed)
    assert 0.0 <= result.agreement <= 1.0
    if result.verdict != "inconclusive":
        assert result.agreement >= min_agreement
        agreeing = sum(o.verdict == result.verdict for o in parsed)
        assert agreeing * 2 > len(parsed) and agreeing / len(outcomes) == pytest.approx(result.agreement)
    if not parsed:
        assert result.verdict == "inconclusive"


# --------------------------------------------------------------------------- combine
def test_offline_mode_ignores_the_llm_and_honours_the_checker() -> None:
    assert combine(offline(True), None, "offline").verdict == "correct"
    assert combine(offline(True), llm("incorrect", True), "offline").verdict == "correct"
    assert combine(offline(True), None, "offline", checker_violation=True).verdict == "incorrect"


def test_llm_mode_without_a_decisive_llm_is_inconclusive() -> None:
    assert combine(offline(True), None, "llm").verdict == "inconclusive"
    assert combine(offline(True), llm("inconclusive", None, None, score=None), "llm").verdict == "inconclusive"
    assert combine(offline(False), llm("correct"), "llm").verdict == "correct"
    assert combine(offline(True), llm("correct", agreement=0.5), "llm", min_agreement=0.66).needs_review
    assert combine(offline(True), llm("correct"), "llm", checker_violation=True).verdict == "incorrect"


def test_both_mode_disagreements_go_to_a_person() -> None:
    split = combine(offline(True), llm("incorrect", hallucinated=True), "both")
    assert split.verdict == "inconclusive" and split.needs_review and not split.correct
    assert any(d.startswith("correct") for d in split.disagreements)
    assert any(d.startswith("hallucinated") for d in split.disagreements)
    policy = combine(offline(True), llm("correct"), "both", checker_violation=True)
    assert policy.verdict == "inconclusive" and any(d.startswith("policy") for d in policy.disagreements)
    agree = combine(offline(True, score=0.7), llm("correct"), "both", checker_violation=False)
    assert agree.verdict == "correct" and agree.score == pytest.approx(0.7)
    assert combine(offline(False, True), llm("incorrect", True), "both").verdict == "incorrect"
    with pytest.raises(ValueError, match="judge mode"):
        combine(offline(True), None, "neither")  # type: ignore[arg-type]


llm_judgements = st.one_of(
    st.none(),
    st.builds(llm, st.sampled_from(["correct", "incorrect", "inconclusive"]), st.booleans(), st.booleans(),
              st.floats(0.0, 1.0)),
)


@given(st.booleans(), st.booleans(), llm_judgements, st.sampled_from(["offline", "llm", "both"]),
       st.sampled_from([None, True, False]), st.sampled_from([None, 0.66]))
def test_combine_properties(off_correct: bool, off_halluc: bool, llm_j: LLMJudgement | None, mode: str,
                            checker: bool | None, min_agreement: float | None) -> None:
    off = offline(off_correct and not off_halluc, off_halluc)
    result = combine(off, llm_j, mode, checker_violation=checker, min_agreement=min_agreement)  # type: ignore[arg-type]
    assert result.mode == mode
    if result.correct:  # a pass needs every consulted judge to pass it and no policy finding anywhere
        assert not checker
        if mode in ("offline", "both"):
            assert off.correct
        if mode in ("llm", "both"):
            assert llm_j is not None and llm_j.verdict == "correct"
            assert not llm_j.hallucinated and not llm_j.policy_violation
            assert min_agreement is None or llm_j.agreement >= min_agreement
    if mode != "offline" and (llm_j is None or llm_j.verdict == "inconclusive"):
        assert result.verdict == "inconclusive"
    if mode == "both" and result.verdict != "inconclusive":
        assert llm_j is not None
        llm_pass = llm_j.verdict == "correct" and not llm_j.hallucinated and not llm_j.policy_violation
        assert off.correct == llm_pass
        assert off.hallucinated == llm_j.hallucinated
        assert checker is None or checker == llm_j.policy_violation
    if mode == "offline":
        assert result.verdict == ("correct" if off.correct and not checker else "incorrect")
