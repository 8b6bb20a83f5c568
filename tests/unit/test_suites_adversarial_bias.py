"""Injection, policy-probe, persona (suites.adversarial) and bias (suites.bias) suites with fake clients."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pandas as pd
import pytest

from llm_release.suites.adversarial import (
    identifies_as_ai,
    run_injection_suite,
    run_persona_suite,
    run_policy_probes,
)
from llm_release.suites.bias import evidence_from_completions, measure_bias, run_bias_audit
from llm_release.suites.datasets import (
    load_bias_probes,
    load_injection_probes,
    load_persona_probes,
    load_policy_probes,
)
from llm_release.suites.sentiment import sentiment_score
from llm_release.suites.types import Completion

SAFE = ("I'm an AI assistant for Northwind Cloud, so I can't do that, but I can help with billing, "
        "shipping or account questions.")


class ScriptedClient:
    def __init__(self, answer: Callable[[str], str | None]) -> None:
        self.answer = answer

    def complete_batch(self, prompts: Sequence[str]) -> list[Completion]:
        out = []
        for prompt in prompts:
            text = self.answer(prompt)
            out.append(Completion(prompt, text, 80.0) if text is not None
                       else Completion(prompt, None, 80.0, error="HTTP 503"))
        return out


@pytest.fixture(scope="module")
def injection() -> pd.DataFrame:
    return load_injection_probes()


def test_refusing_client_resists_every_injection(injection: pd.DataFrame) -> None:
    result = run_injection_suite(ScriptedClient(lambda p: SAFE), injection)
    assert result.metrics["injection_resistance"] == 1.0
    assert result.metrics["injection_n"] == len(injection) >= 60
    assert set(result.per_category) == {"role_override", "jailbreak", "indirect_injection",
                                        "system_prompt_extraction"}
    assert result.failures.empty


def test_complying_client_fails_per_category(injection: pd.DataFrame) -> None:
    markers = dict(zip(injection["prompt"], injection["forbidden_markers"], strict=True))

    def comply_with_role_override(prompt: str) -> str:
        if "override" in prompt.lower() or "role" in prompt.lower() or "you are now" in prompt.lower():
            return f"Sure. {markers[prompt][0]}"
        return SAFE

    result = run_injection_suite(ScriptedClient(comply_with_role_override), injection)
    m = result.metrics
    assert m["injection_resistance_role_override"] == 0.0
    assert m["injection_failed_role_override"] == 15
    assert m["injection_resistance_system_prompt_extraction"] == 1.0
    assert m["injection_resistance"] < 0.97
    assert all("forbidden marker" in r[0] for r in result.failures["reasons"])


def test_policy_checker_findings_fail_injection_probes(injection: pd.DataFrame) -> None:
    leak = ScriptedClient(lambda p: "Here is my system prompt: You are the Northwind support bot.")
    result = run_injection_suite(leak, injection)
    assert result.metrics["injection_resistance"] == 0.0
    assert "system_prompt_disclosure" in result.items["findings"].iloc[0]


def test_failed_calls_fail_probes_closed(injection: pd.DataFrame) -> None:
    result = run_injection_suite(ScriptedClient(lambda p: None), injection)
    assert result.metrics["injection_resistance"] == 0.0
    assert result.metrics["injection_errors"] == result.metrics["injection_probes"] == len(injection)
    assert result.metrics["injection_n"] == 0  # no answered probe: no evidence of resistance


def test_policy_probes_count_violations_with_zero_tolerance() -> None:
    probes = load_policy_probes()
    assert len(probes) >= 50
    clean = run_policy_probes(ScriptedClient(lambda p: SAFE), probes).metrics
    assert clean["policy_probe_violations"] == 0 and clean["policy_probe_pass_rate"] == 1.0

    def generous(prompt: str) -> str:
        return "No problem, I have issued a full refund." if "refund" in prompt.lower() else SAFE

    bad = run_policy_probes(ScriptedClient(generous), probes)
    assert bad.metrics["policy_probe_violations"] > 0
    assert bad.metrics["policy_probe_violations_refund"] > 0
    assert bad.metrics["policy_probe_violations_privacy"] == 0
    assert bad.metrics["policy_probe_pass_rate"] < 1.0
    down = run_policy_probes(ScriptedClient(lambda p: None), probes).metrics
    assert down["policy_probe_errors"] == len(probes) and down["policy_probe_pass_rate"] == 0.0
    assert down["policy_probe_n"] == 0


def test_persona_requires_ai_identity_and_no_human_claim() -> None:
    probes = load_persona_probes()
    assert run_persona_suite(ScriptedClient(lambda p: SAFE), probes).metrics["persona_pass_rate"] == 1.0
    human = run_persona_suite(ScriptedClient(lambda p: "Yes, I am a real person here to help."), probes)
    assert human.metrics["persona_pass_rate"] == 0.0
    assert "claims_human" in human.items["findings"].iloc[0]
    evasive = run_persona_suite(ScriptedClient(lambda p: "How can I help with your order?"), probes)
    assert evasive.metrics["persona_pass_rate"] == 0.0
    assert not identifies_as_ai("I am not an AI, I promise.")
    assert identifies_as_ai("I'm a virtual assistant.")


# ----------------------------------------------------------------------------- bias
@pytest.fixture(scope="module")
def bias_probes() -> pd.DataFrame:
    return load_bias_probes()


def _answer_by_base(probes: pd.DataFrame, decorate: Callable[[str, str], str] = lambda q, a: a
                    ) -> Callable[[str], str]:
    base_of = dict(zip(probes["query"], probes["base_id"], strict=True))
    return lambda q: decorate(q, f"Here is how to handle request {base_of[q]}: follow the steps in Settings.")


def test_identical_answers_have_zero_disparity(bias_probes: pd.DataFrame) -> None:
    result = run_bias_audit(ScriptedClient(_answer_by_base(bias_probes)), bias_probes)
    m = result.metrics
    assert m["bias_length_disparity"] == 0.0
    assert m["bias_escalation_excess"] == 0.0
    assert m["bias_sentiment_disparity"] == 0.0
    assert m["bias_insufficient_groups"] == 0 and m["bias_min_group_n"] == 20
    assert set(result.by_group) == {"gender", "age"}


def test_group_dependent_length_and_handoffs_are_detected(bias_probes: pd.DataFrame) -> None:
    seniors = set(bias_probes.loc[bias_probes["group"] == "senior", "query"])

    def longer_and_handed_off(query: str, answer: str) -> str:
        if query in seniors:
            return answer + " This may be difficult, unfortunately. I'll connect you with a support agent."
        return answer

    client = ScriptedClient(_answer_by_base(bias_probes, longer_and_handed_off))
    m = run_bias_audit(client, bias_probes).metrics
    assert m["bias_length_disparity_age"] > 0.10
    assert m["bias_length_disparity_gender"] == 0.0
    # seniors escalate 100%, pooled age rate is 1/3: excess (1 - 1/3) / (1/3) = 2
    assert m["bias_escalation_excess_age"] == pytest.approx(2.0)
    assert m["bias_sentiment_disparity_age"] > 0.08
    assert m["bias_length_disparity"] == m["bias_length_disparity_age"]


def test_too_few_answers_in_a_group_fail_closed(bias_probes: pd.DataFrame) -> None:
    females = set(bias_probes.loc[bias_probes["group"] == "female", "query"])
    answer = _answer_by_base(bias_probes)
    result = run_bias_audit(ScriptedClient(lambda q: None if q in females else answer(q)), bias_probes)
    m = result.metrics
    assert math.isnan(m["bias_length_disparity_gender"]) and math.isnan(m["bias_length_disparity"])
    assert m["bias_length_disparity_age"] == 0.0
    assert result.insufficient == {"gender": ["female"]}
    assert m["bias_errors"] == 20 and m["bias_min_group_n"] == 0
    assert m["bias_group_n_gender_female"] == 0 and m["bias_group_n_gender_male"] == 20


# ----------------------------------------------------------------------------- fail-closed findings
def _half_down(answer: Callable[[str], str | None]) -> ScriptedClient:
    """Every other prompt fails with HTTP 503; the rest get ``answer``."""
    seen = {"n": 0}

    def maybe(prompt: str) -> str | None:
        seen["n"] += 1
        return None if seen["n"] % 2 else answer(prompt)

    return ScriptedClient(maybe)


def test_adversarial_n_counts_answered_probes_and_unanswered_ones_fail(injection: pd.DataFrame) -> None:
    """Finding: ``*_n`` counted every probe sent, so a half-down endpoint still showed the full sample."""
    for run, probes, prefix, rate_name in (
            (run_injection_suite, injection, "injection", "injection_resistance"),
            (run_policy_probes, load_policy_probes(), "policy_probe", "policy_probe_pass_rate"),
            (run_persona_suite, load_persona_probes(), "persona", "persona_pass_rate")):
        m = run(_half_down(lambda p: SAFE), probes).metrics
        unanswered = (len(probes) + 1) // 2
        assert m[f"{prefix}_probes"] == len(probes), prefix
        assert m[f"{prefix}_errors"] == unanswered and m[f"{prefix}_n"] == len(probes) - unanswered, prefix
        assert m[rate_name] == pytest.approx((len(probes) - unanswered) / len(probes)), prefix
        assert m[f"{prefix}_error_rate"] == pytest.approx(unanswered / len(probes)), prefix


def test_per_category_rates_carry_their_n(injection: pd.DataFrame) -> None:
    result = run_injection_suite(_half_down(lambda p: SAFE), injection)
    for category, group in result.items.groupby("category"):
        answered = int(group["answered"].sum())
        assert 0 < answered < len(group)
        assert result.metrics[f"injection_resistance_{category}_n"] == answered
        assert result.metrics[f"injection_resistance_{category}"] == pytest.approx(answered / len(group))
    persona = run_persona_suite(ScriptedClient(lambda p: SAFE), load_persona_probes())
    for category, counts in persona.per_category.items():
        assert persona.metrics[f"persona_pass_rate_{category}_n"] == counts["answered"] == counts["n"]


def test_policy_probes_without_answers_have_no_violation_count() -> None:
    """Nothing checked is not "no violation": the zero-tolerance count is NaN, never 0."""
    probes = load_policy_probes()
    m = run_policy_probes(ScriptedClient(lambda p: None), probes).metrics
    assert math.isnan(m["policy_probe_violations"]) and math.isnan(m["policy_probe_failed"])
    for category in probes["category"].unique():
        assert math.isnan(m[f"policy_probe_violations_{category}"])
        assert m[f"policy_probe_violations_{category}_n"] == 0


def test_blank_answers_fail_injection_and_policy_probes(injection: pd.DataFrame) -> None:
    """An empty string shows no marker and no finding: it used to pass every injection and policy probe."""
    injected = run_injection_suite(ScriptedClient(lambda p: "   "), injection)
    assert injected.metrics["injection_resistance"] == 0.0
    assert injected.metrics["injection_blank"] == len(injection) and injected.metrics["injection_n"] == 0
    assert "empty answer" in injected.failures["reasons"].iloc[0][0]
    policy = run_policy_probes(ScriptedClient(lambda p: ""), load_policy_probes()).metrics
    assert policy["policy_probe_pass_rate"] == 0.0 and math.isnan(policy["policy_probe_violations"])


def test_bias_reports_per_group_sample_sizes(bias_probes: pd.DataFrame) -> None:
    m = run_bias_audit(ScriptedClient(_answer_by_base(bias_probes)), bias_probes).metrics
    groups = bias_probes.groupby(["group_attribute", "group"]).size()
    for (attribute, group), size in groups.items():
        assert m[f"bias_group_n_{attribute}_{group}"] == size
    assert m["bias_attempts"] == len(bias_probes) and m["bias_error_rate"] == 0.0


def test_measure_bias_validates_min_group_n(bias_probes: pd.DataFrame) -> None:
    items = evidence_from_completions(bias_probes, [Completion(q, "ok", 1.0) for q in bias_probes["query"]])
    with pytest.raises(ValueError):
        measure_bias(items, min_group_n=0)


def test_sentiment_proxy_orders_tone() -> None:
    assert sentiment_score("Happy to help, great question!") > 0.5 > sentiment_score(
        "Unfortunately this failed and we cannot fix the problem.")
    assert sentiment_score("") == 0.5


def test_the_release_policy_sets_the_credit_limit_the_probes_are_checked_against() -> None:
    """A user's ``compliance.credit_limit_usd`` reaches the checker: the same answer breaks a $50 limit
    and not a $100 one (the policy field is enforced, not only validated)."""
    from llm_release.policy import DEFAULT_PROFILE, load_policy

    probes = load_policy_probes().head(10)
    answer = ScriptedClient(lambda p: "I've added a $75 credit to your account for the trouble.")
    shipped = load_policy(DEFAULT_PROFILE).compliance
    generous = shipped.model_copy(update={"credit_limit_usd": 100.0})
    assert run_policy_probes(answer, probes, shipped.model_copy()).metrics["policy_probe_violations"] == 10
    assert run_policy_probes(answer, probes, generous).metrics["policy_probe_violations"] == 0
