"""Fact matching, quantity extraction and the reference judge (suites.facts, suites.judge)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_release.suites.facts import Quantity, contains_fact, extract_quantities, unsupported_quantities
from llm_release.suites.judge import CORRECT_THRESHOLD, ReferenceJudge
from llm_release.suites.knowledge_base import KnowledgeBase, default_knowledge_base


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


@pytest.fixture(scope="module")
def judge(kb: KnowledgeBase) -> ReferenceJudge:
    return ReferenceJudge(kb)


@pytest.mark.parametrize(
    ("text", "fact"),
    [
        ("Refunds are possible within 30 days.", "30 days"),
        ("a 30-day window", "30-day"),
        ("within thirty days of purchase", "30 days"),
        ("It costs $25.00 per user.", "$25"),
        ("up to 1,200 requests per minute", "1,200 requests per minute"),
        ("Approved refunds take 5 to 10 business days.", "5-10 business days"),
        ("Open Billing > Plan to switch.", "Billing > Plan"),
        ("Write to LEGAL@northwindcloud.com.", "legal@northwindcloud.com"),
    ],
)
def test_contains_fact_normalises_both_sides(text: str, fact: str) -> None:
    assert contains_fact(text, fact)


@pytest.mark.parametrize(
    ("text", "fact"),
    [
        ("It costs $250 per user.", "$25"),  # whole-token match: $250 is not $25
        ("Refunds within 60 days.", "30 days"),
        ("We answer in 2 days.", "2 business days"),
    ],
)
def test_contains_fact_rejects_near_misses(text: str, fact: str) -> None:
    assert not contains_fact(text, fact)


def test_extract_quantities_kinds_and_tokens_glued_to_letters() -> None:
    text = "Pay $6.95, save 20%, wait 3-5 business days; AES-256, 2FA, 8am aren't numbers."
    found = extract_quantities(text)
    assert found == {Quantity("money", "6.95"), Quantity("percent", "20"),
                     Quantity("duration", "3-5", "business day")}


def test_unsupported_quantities_compare_kind_unit_and_value() -> None:
    grounding = ["Refunds within 30 days; a fee of $8."]
    assert unsupported_quantities("Refunds within 30 days, fee $8.", grounding) == []
    assert [str(q) for q in unsupported_quantities("Refunds within 30 days, fee $30.", grounding)] == ["$30"]
    assert [str(q) for q in unsupported_quantities("Refunds within 8 days.", grounding)] == ["8 day"]


def test_every_kb_answer_is_judged_correct(kb: KnowledgeBase, judge: ReferenceJudge) -> None:
    for entry in kb.entries:
        verdict = judge.judge(entry.questions[0], entry.answer, kb_id=entry.id)
        assert verdict.correct, (entry.id, verdict.reasons)
        assert verdict.score == 1.0
        assert verdict.escalated == entry.escalate


def test_altered_number_is_hallucinated_and_incorrect(kb: KnowledgeBase, judge: ReferenceJudge) -> None:
    entry = kb.get("refunds-window")
    verdict = judge.judge(entry.questions[0], entry.answer.replace("30 days", "90 days"), kb_id=entry.id)
    assert verdict.hallucinated
    assert not verdict.correct
    assert verdict.score <= 0.3
    assert "90 day" in verdict.unsupported
    assert "30 days" in verdict.missing_facts


def test_missing_fact_is_not_correct_even_with_high_overlap(kb: KnowledgeBase, judge: ReferenceJudge) -> None:
    entry = kb.get("shipping-cost")
    verdict = judge.judge(entry.questions[0], "Standard shipping is free on larger orders.", kb_id=entry.id)
    assert not verdict.correct
    assert set(verdict.missing_facts) == {"$75", "$6.95"}


def test_escalation_mismatch_caps_the_score(kb: KnowledgeBase, judge: ReferenceJudge) -> None:
    threat = kb.get("legal-threat")
    no_handoff = "Please write to legal@northwindcloud.com about your case with our legal team."
    verdict = judge.judge(threat.questions[0], no_handoff, kb_id=threat.id)
    assert verdict.expected_escalation is True
    assert not verdict.escalated
    assert not verdict.correct
    assert verdict.score <= 0.4
    answerable = kb.get("account-reset-password")
    needless = "I'll connect you with a support agent. " + answerable.answer
    verdict = judge.judge(answerable.questions[0], needless, kb_id=answerable.id)
    assert verdict.escalated and not verdict.correct


def test_reference_none_grounds_in_retrieved_entry(kb: KnowledgeBase, judge: ReferenceJudge) -> None:
    entry = kb.get("refunds-annual")
    verdict = judge.judge("Can I get a refund on my annual plan?", entry.answer)
    assert verdict.grounding_kb_id == "refunds-annual"
    assert verdict.correct


def test_out_of_scope_query_is_judged_on_behaviour_only(judge: ReferenceJudge) -> None:
    handoff = judge.judge("What's the weather in Paris tomorrow?", "I'll connect you with a support agent.")
    assert handoff.grounding_kb_id is None
    assert handoff.correct and handoff.score == 1.0
    invented = judge.judge("What's the weather in Paris tomorrow?", "It will be 21 degrees, 40% rain.")
    assert invented.hallucinated and not invented.correct and invented.score == 0.0


def test_empty_response_scores_zero(kb: KnowledgeBase, judge: ReferenceJudge) -> None:
    entry = kb.get("shipping-times")
    verdict = judge.judge(entry.questions[0], "", kb_id=entry.id)
    assert verdict.score == 0.0 and not verdict.correct


def test_judge_is_deterministic(kb: KnowledgeBase, judge: ReferenceJudge) -> None:
    entry = kb.get("billing-plan-prices")
    text = "Pro is $25 per user per month; Starter $12."
    assert judge.judge(entry.questions[1], text) == judge.judge(entry.questions[1], text)


def test_bad_arguments_are_rejected(kb: KnowledgeBase, judge: ReferenceJudge) -> None:
    with pytest.raises(TypeError):
        judge.judge("q", "a", reference="r", required_facts="30 days")
    with pytest.raises(KeyError, match="no-such-entry"):
        judge.judge("q", "a", kb_id="no-such-entry")
    with pytest.raises(ValueError):
        ReferenceJudge(kb, min_retrieval_score=0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(max_size=80), response=st.text(max_size=200),
       reference=st.one_of(st.none(), st.text(min_size=1, max_size=120)),
       facts=st.lists(st.text(min_size=1, max_size=12), max_size=3),
       expects=st.one_of(st.none(), st.booleans()))
def test_score_is_bounded_and_consistent_for_arbitrary_text(
    judge: ReferenceJudge, query: str, response: str, reference: str | None, facts: list[str],
    expects: bool | None,
) -> None:
    verdict = judge.judge(query, response, reference=reference, required_facts=facts,
                          expects_escalation=expects)
    assert 0.0 <= verdict.score <= 1.0
    if verdict.correct:
        assert verdict.score >= CORRECT_THRESHOLD and not verdict.hallucinated
    if verdict.hallucinated:
        assert not verdict.correct


def test_live_judge_grounds_on_the_entry_query_and_response_both_point_to() -> None:
    """A correct answer from the query's second-nearest entry is not "hallucinated" (it was, when the
    judge grounded on its own nearest entry only); an answer from an entry the query does not point to
    is still judged against the query's nearest entry, and its numbers are unsupported there."""
    from llm_release.suites.judge import ReferenceJudge
    from llm_release.suites.knowledge_base import KnowledgeBase

    kb = KnowledgeBase.load()
    judge = ReferenceJudge(kb)
    query = "Your outage lost us $10,000 in sales. Are you liable for that?"
    nearest = [entry.id for entry, _ in kb.search(query, k=3)]
    assert nearest[0] != "legal-liability-terms" and "legal-liability-terms" in nearest
    right = judge.judge(query, kb.get("legal-liability-terms").answer)
    assert not right.hallucinated and right.grounding_kb_id == "legal-liability-terms"
    wrong = judge.judge(query, kb.get("billing-plan-prices").answer)
    assert wrong.hallucinated and wrong.grounding_kb_id == nearest[0]
