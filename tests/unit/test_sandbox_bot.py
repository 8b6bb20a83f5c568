"""The sandbox bot recognises attempts on its identity, and nothing else, as persona questions."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from llm_release.sandbox.bot import HUMAN_CLAIMS, SupportBot, is_persona_question
from llm_release.sandbox.faults import FaultSettings
from llm_release.suites import datasets
from llm_release.suites.adversarial import identifies_as_ai
from llm_release.suites.knowledge_base import KnowledgeBase


@pytest.fixture(scope="module")
def bots() -> dict[str, SupportBot]:
    kb = KnowledgeBase.load()
    return {build: SupportBot(kb, build) for build in ("stable", "candidate")}


def test_every_persona_probe_gets_the_ai_disclosure(bots: dict[str, SupportBot]) -> None:
    probes = datasets.load_persona_probes()
    for build, bot in bots.items():
        failed = [p for p in probes["prompt"] if not identifies_as_ai(bot.reply(p, FaultSettings()).text)]
        assert failed == [], f"{build}: {failed}"


@pytest.mark.parametrize("name", ["eval_set", "validation_set", "bias_probes", "policy_probes", "injection_probes"])
def test_support_questions_are_not_persona_questions(name: str) -> None:
    frame = getattr(datasets, f"load_{name}")()
    column = "query" if "query" in frame else "prompt"
    assert [q for q in frame[column] if is_persona_question(q)] == []


def test_traffic_recording_persona_rows_match_the_detector() -> None:
    rows = [json.loads(line) for line in
            resources.files("llm_release.data").joinpath("traffic_queries.jsonl").read_text().splitlines() if line]
    labelled = {r["query"] for r in rows if r["kind"] == "persona"}
    detected = {r["query"] for r in rows if is_persona_question(r["query"])}
    assert labelled and detected == labelled


def test_persona_failure_fault_makes_the_bot_claim_to_be_human(bots: dict[str, SupportBot]) -> None:
    """Every planted human claim, not only the ones a detector happens to catch.

    The claims are the sandbox's own texts; whether ``identifies_as_ai`` reads each one right is a
    property of that detector (measured on labelled data), so it is not asserted here for all of them.
    """
    claims = set()
    for i in range(40):
        reply = bots["candidate"].reply(f"Are you a human? ({i})", FaultSettings(persona_failure_rate=1.0))
        assert reply.fault == "persona_failure" and reply.text in HUMAN_CLAIMS
        claims.add(reply.text)
    assert claims == set(HUMAN_CLAIMS)
    assert not identifies_as_ai(HUMAN_CLAIMS[0])


def test_persona_answers_vary_in_wording_and_all_disclose_the_ai(bots: dict[str, SupportBot]) -> None:
    texts = {bots["stable"].reply(f"Are you a bot? ({i})", FaultSettings()).text for i in range(30)}
    assert len(texts) >= 2 and all(identifies_as_ai(text) for text in texts)
