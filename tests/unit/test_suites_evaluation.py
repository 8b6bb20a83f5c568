"""The labelled eval suite (suites.evaluation) against fake in-process chat clients."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pandas as pd
import pytest

from llm_release.suites.datasets import DatasetError, load_eval_set, load_validation_set
from llm_release.suites.evaluation import run_eval_suite
from llm_release.suites.judge import ReferenceJudge
from llm_release.suites.knowledge_base import KnowledgeBase, default_knowledge_base
from llm_release.suites.types import Completion

HANDOFF = "I'm not able to help with that here. I'll connect you with a support agent."


class KBClient:
    """Answers from the knowledge base like the reference bot; ``rewrite`` crafts bad answers."""

    def __init__(self, kb: KnowledgeBase, rewrite: Callable[[str, str], str] | None = None,
                 latency_ms: float = 120.0) -> None:
        self.kb, self.rewrite, self.latency_ms = kb, rewrite, latency_ms
        self.calls = 0

    def complete_batch(self, prompts: Sequence[str]) -> list[Completion]:
        self.calls += 1
        out = []
        for index, prompt in enumerate(prompts):
            hit = self.kb.best(prompt)
            text = hit[0].answer if hit and hit[1] >= 0.25 else HANDOFF
            if self.rewrite:
                text = self.rewrite(prompt, text)
            out.append(Completion(prompt, text, self.latency_ms + index))
        return out


class FailingClient:
    def __init__(self, fail_every: int = 1) -> None:
        self.fail_every = fail_every

    def complete_batch(self, prompts: Sequence[str]) -> list[Completion]:
        return [Completion(p, None, 30000.0, error="timeout") if i % self.fail_every == 0
                else Completion(p, HANDOFF, 50.0) for i, p in enumerate(prompts)]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_knowledge_base()


@pytest.fixture(scope="module")
def judge(kb: KnowledgeBase) -> ReferenceJudge:
    return ReferenceJudge(kb)


@pytest.fixture(scope="module")
def items() -> pd.DataFrame:
    return load_eval_set()


@pytest.fixture(scope="module")
def half(items: pd.DataFrame) -> pd.DataFrame:
    """Every other item: all categories and paraphrase groups, half the time."""
    return items.iloc[::2].reset_index(drop=True)


def test_kb_bot_passes_on_both_shipped_sets(kb: KnowledgeBase, judge: ReferenceJudge) -> None:
    for frame in (load_eval_set(), load_validation_set()):
        result = run_eval_suite(KBClient(kb), frame, judge)
        m = result.metrics
        assert m["eval_n"] == m["scs_n"] == m["task_completion_n"] == len(frame) >= 120
        assert m["eval_pass_rate"] >= 0.95
        assert m["scs"] >= 0.95
        assert m["policy_violations"] == 0 and m["policy_compliance_rate"] == 1.0
        assert m["safety_category_failures"] == 0
        assert m["hallucination_rate"] <= 0.02
        assert m["task_completion_rate"] >= 0.95
        assert m["eval_errors"] == 0 and result.failed_calls == []
        assert m["eval_attempts"] == len(frame) and m["eval_error_rate"] == 0.0
        assert 120.0 <= m["latency_p50_ms"] <= m["latency_p95_ms"] <= m["latency_p99_ms"]
        assert all(isinstance(v, float) for v in m.values())
        assert list(result.items.columns[:4]) == ["id", "query", "response", "score"]


def test_refund_promises_are_violations_and_safety_failures(kb, judge, half) -> None:
    def promise(prompt: str, text: str) -> str:
        if "refund" in prompt.lower():
            return text + " I have already issued a full refund to your card."
        return text

    m = run_eval_suite(KBClient(kb, promise), half, judge).metrics
    refund_queries = int(half["query"].str.lower().str.contains("refund").sum())
    assert m["policy_violations"] >= refund_queries > 0
    assert m["safety_category_failures"] >= refund_queries
    assert m["policy_compliance_rate"] < 1.0


def test_altered_numbers_are_flagged_as_hallucinations(kb, judge, half) -> None:
    def bump(prompt: str, text: str) -> str:
        return text.replace("30 days", "45 days").replace("$", "$1")

    result = run_eval_suite(KBClient(kb, bump), half, judge)
    m = result.metrics
    assert m["hallucination_rate"] > 0.1
    assert m["eval_pass_rate"] < 0.9
    flagged = result.items[result.items["hallucinated"]]
    assert (flagged["score"] <= 0.3).all() and not flagged["correct"].any()


def test_failing_client_fails_closed(judge, items) -> None:
    result = run_eval_suite(FailingClient(), items, judge)
    m = result.metrics
    assert m["eval_errors"] == m["eval_n"] == len(items) and m["eval_error_rate"] == 1.0
    assert m["eval_pass_rate"] == 0.0 and m["scs"] == 0.0 and m["task_completion_rate"] == 0.0
    assert m["policy_compliance_rate"] == 0.0  # an unanswered item is not shown compliant
    assert math.isnan(m["hallucination_rate"]) and m["hallucination_n"] == 0
    assert math.isnan(m["policy_violations"])  # nothing was checked: no data, not "no violation"
    assert m["latency_p99_ms"] == 30000.0  # the timeouts' latency
    assert m["safety_category_failures"] == int(items["safety_category"].notna().sum()) > 0
    assert len(result.failed_calls) == len(items) and result.failed_calls[0]["error"] == "timeout"


def test_client_that_raises_is_recorded_not_propagated(judge, items) -> None:
    class Exploding:
        def complete_batch(self, prompts: Sequence[str]) -> list[Completion]:
            raise ConnectionError("endpoint down")

    result = run_eval_suite(Exploding(), items.head(5), judge)
    assert result.metrics["eval_errors"] == 5
    assert math.isnan(result.metrics["latency_p50_ms"])  # no call was timed: latency not measured
    assert "endpoint down" in result.failed_calls[0]["error"]


def test_client_returning_wrong_count_is_a_bug(judge, items) -> None:
    class Short:
        def complete_batch(self, prompts: Sequence[str]) -> list[Completion]:
            return [Completion(prompts[0], "x", 1.0)]

    with pytest.raises(ValueError, match="1 completions for 3 prompts"):
        run_eval_suite(Short(), items.head(3), judge)


def test_baseline_deltas_are_relative(kb, judge, items) -> None:
    sample = items.head(40)
    same = run_eval_suite(KBClient(kb), sample, judge, baseline_client=KBClient(kb)).metrics
    assert same["bleu_delta"] == 0.0 and same["rouge_delta"] == 0.0
    assert same["bleu"] > 90

    def chatty(prompt: str, text: str) -> str:
        return "Thanks for reaching out to Northwind Cloud support today! " + text

    worse = run_eval_suite(KBClient(kb, chatty), sample, judge, baseline_client=KBClient(kb)).metrics
    expected = (worse["bleu"] - worse["baseline_bleu"]) / worse["baseline_bleu"]
    assert worse["bleu_delta"] == pytest.approx(expected)
    assert worse["bleu_delta"] < 0 and worse["rouge_delta"] < 0


def test_escalation_items_complete_by_handoff(kb, judge, half) -> None:
    def generic_handoff(prompt: str, text: str) -> str:
        return "I'll connect you with a support agent." if "connect you" in text else text

    result = run_eval_suite(KBClient(kb, generic_handoff), half, judge)
    escalations = result.items[result.items["expects_escalation"]]
    assert escalations["completed"].all()
    assert not escalations[escalations["kb_id"].notna()]["correct"].any()  # facts are missing
    assert result.metrics["task_completion_rate"] > result.metrics["eval_pass_rate"]


def test_paraphrase_variance_reflects_inconsistent_answers(kb, judge, items) -> None:
    steady = run_eval_suite(KBClient(kb), items, judge).metrics
    flip = {"q": 0}

    def every_other(prompt: str, text: str) -> str:
        flip["q"] += 1
        return text if flip["q"] % 2 else "Sorry, I don't know."

    shaky = run_eval_suite(KBClient(kb, every_other), items, judge).metrics
    assert shaky["eval_kb_group_scs_variance_max"] > steady["eval_kb_group_scs_variance_max"]
    assert shaky["eval_kb_groups_n"] == steady["eval_kb_groups_n"] > 40


def test_items_missing_columns_are_rejected(kb, judge, items) -> None:
    with pytest.raises(DatasetError, match="missing column"):
        run_eval_suite(KBClient(kb), items.drop(columns=["reference"]), judge)
    with pytest.raises(DatasetError, match="no rows"):
        run_eval_suite(KBClient(kb), items.head(0), judge)


# ----------------------------------------------------------------------------- fail-closed findings
def test_stage1_pass_rate_comes_with_its_sample_size(kb, judge, items) -> None:
    """Finding: a pass rate on a one-row eval set looked like any other; ``eval_n`` lets a gate refuse it."""
    m = run_eval_suite(KBClient(kb), items.head(1), judge).metrics
    assert m["eval_pass_rate"] == 1.0
    assert m["eval_n"] == 1 and m["scs_n"] == 1 and m["task_completion_n"] == 1 and m["policy_compliance_n"] == 1
    assert m["latency_n"] == 1


def test_unanswered_eval_items_count_as_failed_in_every_pass_rate(kb, judge, half) -> None:
    """Errors never shrink a pass rate's denominator: half the calls failing halves the rates."""
    healthy = run_eval_suite(KBClient(kb), half, judge).metrics

    class HalfDown(KBClient):
        def complete_batch(self, prompts: Sequence[str]) -> list[Completion]:
            answers = super().complete_batch(prompts)
            return [a if i % 2 else Completion(a.prompt, None, 900.0, error="HTTP 503")
                    for i, a in enumerate(answers)]

    result = run_eval_suite(HalfDown(kb), half, judge)
    m = result.metrics
    answered = result.items[result.items["error"].isna()]
    assert m["eval_errors"] == (len(half) + 1) // 2 and m["eval_answered"] == len(answered) == len(half) // 2
    assert m["eval_pass_rate"] == pytest.approx(answered["correct"].sum() / len(half))
    assert m["eval_pass_rate"] < 0.6 < healthy["eval_pass_rate"]
    assert m["policy_compliance_rate"] == pytest.approx(len(answered) / len(half))  # was 1.0 over answered
    assert m["policy_violations_n"] == m["hallucination_n"] == len(answered)
    assert m["latency_p99_ms"] == pytest.approx(900.0)  # failed calls' latency counts


def test_eval_set_without_safety_items_cannot_show_no_safety_failures(kb, judge, items) -> None:
    unsafe_free = items[items["safety_category"].isna()].head(20)
    m = run_eval_suite(FailingClient(), unsafe_free, judge).metrics
    assert m["safety_category_n"] == 0
    assert math.isnan(m["safety_category_failures"])  # was 0: no data passed "0 tolerance"
    with_safety = run_eval_suite(KBClient(kb), items, judge).metrics
    assert with_safety["safety_category_failures"] == 0 and with_safety["safety_category_n"] > 0


def test_baseline_failures_do_not_flatter_the_candidate(kb, judge, items) -> None:
    """A baseline that times out on half the items scored lower and made the candidate look better."""
    sample = items.head(40)

    class FlakyBaseline(KBClient):
        def complete_batch(self, prompts: Sequence[str]) -> list[Completion]:
            answers = super().complete_batch(prompts)
            return [a if i % 2 else Completion(a.prompt, None, 30000.0, error="timeout")
                    for i, a in enumerate(answers)]

    m = run_eval_suite(KBClient(kb), sample, judge, baseline_client=FlakyBaseline(kb)).metrics
    assert m["baseline_errors"] == 20 and m["delta_n"] == 20
    assert m["bleu_delta"] == pytest.approx(0.0) and m["rouge_delta"] == pytest.approx(0.0)
    down = run_eval_suite(KBClient(kb), sample, judge, baseline_client=FailingClient()).metrics
    assert down["delta_n"] == 0 and math.isnan(down["bleu_delta"]) and math.isnan(down["rouge_delta"])


def test_evidence_sits_next_to_every_rate_and_mean_and_per_category(kb, judge) -> None:
    """Each rate carries k, n and its Wilson interval, the SCS its bootstrap interval, overall and per
    knowledge-base / high-stakes category; the verdict of stage 2's evidence checks is logged as a figure."""
    from llm_release.decisions.evidence import wilson_interval
    from llm_release.decisions.gates import check_gate, evidence_table, stage_checks
    from llm_release.policy import DEFAULT_PROFILE, load_policy
    from llm_release.suites.uncertainty import CategoryMap

    policy = load_policy(DEFAULT_PROFILE)
    conf = policy.offline_metrics.confidence
    cmap = CategoryMap.from_kb(kb, policy.offline_metrics.high_stakes_categories)
    result = run_eval_suite(KBClient(kb), load_validation_set(), judge, confidence=conf, categories=cmap)
    m, ev = result.metrics, result.evidence
    for metric in ("eval_pass_rate", "hallucination_rate", "task_completion_rate", "policy_compliance_rate", "scs"):
        assert ev[metric].value == pytest.approx(m[metric]) and ev[metric].n == m["eval_n"] - (
            m["eval_errors"] if metric == "hallucination_rate" else 0)
        assert ev[metric].lo <= ev[metric].value <= ev[metric].hi
    k, n = ev["eval_pass_rate"].k, ev["eval_pass_rate"].n
    assert (ev["eval_pass_rate"].lo, ev["eval_pass_rate"].hi) == wilson_interval(k, n, conf)
    assert ev["scs"].method in {"bootstrap_bca", "bootstrap_percentile", "constant"}  # the KB bot scores 1.0
    assert ev["scs"].hi - ev["scs"].lo < 0.1
    assert m["hs_refunds_n"] == 21 and m["hs_billing_disputes_n"] == 9 and m["hs_account_closure_n"] == 6
    assert m["kb_shipping_n"] == 21 and ev["kb_legal_hallucination_rate"].n == 12
    checks = [c for c in stage_checks(policy, "validation") if c.interval]
    verdict = check_gate(checks, m, ev, confidence=conf)
    # the shipped set has 9 billing-dispute and 6 account-closure items (< 10): never a pass on it
    assert verdict.outcome in {"inconclusive", "fail"}
    assert {"hs_billing_disputes_scs", "hs_account_closure_scs"} <= {c.metric for c in verdict.inconclusive}
    print("\n" + evidence_table(verdict))


def test_shadow_evidence_groups_answers_by_their_grounding_entry(kb, judge) -> None:
    from llm_release.policy import DEFAULT_PROFILE, load_policy
    from llm_release.suites.shadow import evaluate_shadow_samples
    from llm_release.suites.uncertainty import CategoryMap

    policy = load_policy(DEFAULT_PROFILE)
    cmap = CategoryMap.from_kb(kb, policy.offline_metrics.high_stakes_categories)
    samples = [{"seq": i, "query": e.questions[0], "response": e.answer, "latency_ms": 100.0, "error": None,
                "status": 200, "policy_violations": []} for i, e in enumerate(kb.entries * 2)]
    samples.append({"seq": 999, "query": "x", "response": None, "latency_ms": None, "error": "HTTP 503",
                    "status": 503, "policy_violations": []})
    result = evaluate_shadow_samples(samples, judge, confidence=0.95, categories=cmap)
    m, ev = result.metrics, result.evidence
    assert ev["shadow_error_rate"].k == 1 and ev["shadow_error_rate"].n == len(samples)
    assert ev["shadow_scs"].n == m["shadow_samples"] == len(kb.entries) * 2
    grounded = result.items["grounding_kb_id"].map(cmap.kb_category.get)
    assert m["shadow_kb_refunds_n"] == float((grounded == "refunds").sum()) > 0
    assert ev["shadow_hs_refunds_scs"].n == m["shadow_hs_refunds_n"]
    assert evaluate_shadow_samples(samples, judge).evidence == {}  # no confidence: the gate fails closed
