"""The LLM judge against a local OpenAI-compatible server (FastAPI + uvicorn on 127.0.0.1:<free port>).

The server scripts its verdicts by a marker in the answer being judged, and counts every request, so
the tests see exactly what the judge sent: re-asks, retries, cache hits (no request at all).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from llm_release.integrations.judge_cache import JudgeCache
from llm_release.integrations.judge_rubric import EvidenceEntry
from llm_release.integrations.judge_selection import LLMJudgeSettings, judge_for
from llm_release.integrations.llm_judge import JudgeItem, LLMJudge
from llm_release.policy import DEFAULT_PROFILE, load_policy

pytestmark = pytest.mark.integration

API_KEY = "sk-judge-test-51c0ffee"
PROMPT_TOKENS, COMPLETION_TOKENS = 120, 30
EVIDENCE = (EvidenceEntry("refunds-window", "Refunds are available within 30 days of purchase.",
                          ("30 days",)),)


def verdict(kind: str) -> str:
    body = {
        "correct": {"verdict": "correct", "hallucinated": False, "policy_violation": False,
                    "violation_category": None, "score": 0.9, "reason": "faithful paraphrase"},
        "incorrect": {"verdict": "incorrect", "hallucinated": True, "policy_violation": False,
                      "violation_category": None, "score": 0.2, "reason": "invents a payment method"},
        "violation": {"verdict": "incorrect", "hallucinated": False, "policy_violation": True,
                      "violation_category": "credit_over_limit", "score": 0.0, "reason": "sixty bucks credit"},
    }[kind]
    return json.dumps(body)


MALFORMED = '{"verdict": "correct", "hallucinated": false,'  # cut off: not JSON


class Script:
    """What the server answers, keyed by the marker in the judged answer; every request is counted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests = 0
            self.per_answer: Counter[str] = Counter()
            self.bodies: list[dict[str, Any]] = []
            self.auth: set[str | None] = set()
            self.in_flight = 0
            self.max_in_flight = 0

    def reply(self, body: dict[str, Any]) -> tuple[int, str]:
        messages = body["messages"]
        judged = messages[1]["content"].split("ASSISTANT ANSWER TO JUDGE:\n", 1)[1]
        reask = len(messages) > 2
        with self.lock:
            self.per_answer[judged] += 1
            n = self.per_answer[judged]  # 1-based count of requests about this answer
        if "[HTTP500-ONCE]" in judged and n == 1:
            return 500, "upstream exploded"
        if "[429-ONCE]" in judged and n == 1:
            return 429, "slow down"
        if "[429-LONG]" in judged:
            return 429, "come back tomorrow"
        if "[HTTP500-ALWAYS]" in judged:
            return 500, "upstream exploded"
        if "[MALFORMED-TWICE]" in judged:
            return 200, MALFORMED
        if "[MALFORMED-ONCE]" in judged:
            return 200, verdict("correct") if reask else MALFORMED
        if "[DISAGREE]" in judged:
            return 200, verdict("incorrect" if n % 3 == 0 else "correct")
        if "[VIOLATION]" in judged:
            return 200, f"```json\n{verdict('violation')}\n```"
        if "[SLOW]" in judged:
            return 200, verdict("correct")
        return 200, verdict("correct")


def build_app(script: Script) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        with script.lock:
            script.requests += 1
            script.bodies.append(body)
            script.auth.add(request.headers.get("authorization"))
            script.in_flight += 1
            script.max_in_flight = max(script.max_in_flight, script.in_flight)
        try:
            if "[SLOW]" in body["messages"][1]["content"]:
                await asyncio.sleep(0.05)
            status, content = script.reply(body)
        finally:
            with script.lock:
                script.in_flight -= 1
        if status == 429:
            wait = "3600" if content == "come back tomorrow" else "0.2"
            return JSONResponse({"error": content}, status_code=429, headers={"Retry-After": wait})
        if status != 200:
            return JSONResponse({"error": content}, status_code=status)
        return {
            "id": "x", "object": "chat.completion", "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                      "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS},
        }

    return app


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Script]]:
    script = Script()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(build_app(script), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "judge test server did not start within 10 s"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", script
    srv.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def server(served: tuple[str, Script]) -> tuple[str, Script]:
    served[1].reset()
    return served


def make_judge(url: str, **kwargs: Any) -> LLMJudge:
    settings: dict[str, Any] = {"api_key": API_KEY, "repeats": 3, "max_concurrency": 4, "timeout_s": 10.0,
                                "backoff_s": 0.01, "max_backoff_s": 0.05}
    settings.update(kwargs)
    return LLMJudge(url, "judge-model", **settings)


def test_valid_verdicts_request_shape_and_tokens(server):
    url, script = server
    judge = make_judge(url, price_per_1k_input=0.5, price_per_1k_output=1.5)
    result = judge.judge("Can I get a refund?", "Yes, within 30 days of buying. [VALID]", EVIDENCE)
    assert (result.verdict, result.hallucinated, result.policy_violation) == ("correct", False, False)
    assert (result.agreement, result.repeats, result.parsed_repeats, result.cached) == (1.0, 3, 3, False)
    assert result.score == pytest.approx(0.9)
    assert (result.prompt_tokens, result.completion_tokens) == (3 * PROMPT_TOKENS, 3 * COMPLETION_TOKENS)
    assert result.cost == pytest.approx(0.36 * 0.5 + 0.09 * 1.5)
    assert script.requests == 3 and result.attempts == 3
    body = script.bodies[0]
    assert body["temperature"] == 0 and body["model"] == "judge-model"
    assert body["messages"][0]["role"] == "system" and "refunds-window" in body["messages"][1]["content"]
    assert script.auth == {f"Bearer {API_KEY}"}
    assert API_KEY not in repr(judge)
    assert judge.usage.prompt_tokens == 3 * PROMPT_TOKENS and judge.usage.attempts == 3


def test_fenced_violation_is_parsed_with_its_category(server):
    url, _ = server
    result = make_judge(url).judge("Can I get credit?", "Sure, sixty bucks on your account. [VIOLATION]")
    assert result.verdict == "incorrect" and result.policy_violation is True
    assert result.violation_category == "credit_over_limit" and result.agreement == 1.0


def test_malformed_then_valid_on_the_reask(server):
    url, script = server
    judge = make_judge(url, repeats=1)
    result = judge.judge("Refund?", "Within 30 days. [MALFORMED-ONCE]", EVIDENCE)
    assert result.verdict == "correct" and result.parsed_repeats == 1
    assert script.requests == 2 and result.attempts == 2
    reask = script.bodies[1]["messages"]
    assert len(reask) == 4 and reask[2] == {"role": "assistant", "content": MALFORMED}
    assert "Invalid JSON" in reask[3]["content"]
    assert (result.prompt_tokens, result.completion_tokens) == (2 * PROMPT_TOKENS, 2 * COMPLETION_TOKENS)
    assert judge.usage.reasks == 1 and judge.usage.unparsable_repeats == 0


def test_malformed_twice_is_an_unparsable_repeat_never_a_pass(server, tmp_path: Path):
    url, script = server
    cache = JudgeCache.in_dir(tmp_path)
    judge = make_judge(url, cache=cache)
    result = judge.judge("Refund?", "Within 30 days. [MALFORMED-TWICE]", EVIDENCE)
    assert result.verdict == "inconclusive" and result.parsed_repeats == 0 and result.agreement == 0.0
    assert result.hallucinated is None and result.score is None
    assert script.requests == 6  # each repeat asked once and re-asked once, no more
    assert len(result.errors) == 3 and all("unparsable after the re-ask" in e for e in result.errors)
    assert judge.usage.unparsable_repeats == 3 and len(cache) == 0  # failures are never cached


def test_disagreeing_repeats_majority_and_min_agreement(server):
    url, _ = server
    lenient = make_judge(url, min_agreement=0.66).judge("Refund?", "Within 30 days. [DISAGREE] a", EVIDENCE)
    assert lenient.verdict == "correct" and lenient.agreement == pytest.approx(2 / 3)
    assert round(lenient.agreement, 2) == 0.67 and lenient.parsed_repeats == 3
    strict = make_judge(url, min_agreement=0.8).judge("Refund?", "Within 30 days. [DISAGREE] b", EVIDENCE)
    assert strict.verdict == "inconclusive" and strict.agreement == pytest.approx(2 / 3)
    assert any("below the minimum" in r for r in strict.reasons)


def test_http_500_then_success_counts_the_failed_attempt(server):
    url, script = server
    judge = make_judge(url, repeats=1)
    result = judge.judge("Refund?", "Within 30 days. [HTTP500-ONCE]", EVIDENCE)
    assert result.verdict == "correct" and result.attempts == 2 and script.requests == 2
    assert judge.usage.failed_attempts == 1 and judge.usage.attempts == 2
    assert (result.prompt_tokens, result.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)


def test_retry_after_is_honoured_and_a_too_long_one_ends_the_call(server):
    url, script = server
    judge = make_judge(url, repeats=1, max_retry_after_s=1.0)
    start = time.perf_counter()
    result = judge.judge("Refund?", "Within 30 days. [429-ONCE]", EVIDENCE)
    assert result.verdict == "correct" and result.attempts == 2 and time.perf_counter() - start >= 0.2
    refused = judge.judge("Refund?", "Within 30 days. [429-LONG]", EVIDENCE)
    assert refused.verdict == "inconclusive" and refused.attempts == 1 and "HTTP 429" in refused.errors[0]
    assert script.requests == 3


def test_persistent_500_is_inconclusive_with_every_attempt_counted(server):
    url, script = server
    judge = make_judge(url, repeats=2, max_retries=2)
    result = judge.judge("Refund?", "Within 30 days. [HTTP500-ALWAYS]", EVIDENCE)
    assert result.verdict == "inconclusive" and result.attempts == 6 and script.requests == 6
    assert judge.usage.failed_attempts == 6 and all("HTTP 500" in e for e in result.errors)
    assert all(API_KEY not in e for e in result.errors)


def test_cache_hit_on_the_second_run_sends_nothing(server, tmp_path: Path):
    url, script = server
    items = [JudgeItem("Refund?", f"Within 30 days, item {i}. [VALID]", EVIDENCE) for i in range(3)]
    first = make_judge(url, cache=JudgeCache.in_dir(tmp_path)).judge_batch(items)
    assert script.requests == 9 and not any(r.cached for r in first)
    again = make_judge(url, cache=JudgeCache.in_dir(tmp_path))  # a new process would open the file like this
    second = again.judge_batch(items)
    assert script.requests == 9, "a cached item must send no request"
    assert all(r.cached and r.verdict == "correct" and r.prompt_tokens == 0 and r.attempts == 0 for r in second)
    assert again.usage.cache_hits == 9 and again.usage.requests == 0
    other_rubric = make_judge(url, cache=JudgeCache.in_dir(tmp_path), rubric_version="support-rubric-v2")
    other_rubric.judge_batch(items[:1])
    assert script.requests == 12, "another rubric version is another cache key"


def test_concurrency_is_bounded(server):
    url, script = server
    items = [JudgeItem("Refund?", f"Slow answer {i}. [SLOW]", EVIDENCE) for i in range(6)]
    results = make_judge(url, max_concurrency=2, repeats=2).judge_batch(items)
    assert all(r.verdict == "correct" for r in results) and script.requests == 12
    assert script.max_in_flight <= 2


def test_judge_for_builds_the_policy_judge_for_a_use(server, tmp_path: Path):
    url, script = server
    policy = load_policy(DEFAULT_PROFILE)
    assert judge_for(policy, "shadow", None).llm is None  # shipped default: offline everywhere
    policy = policy.model_copy(update={"judging": policy.judging.model_copy(update={
        "shadow": "both", "llm": policy.judging.llm.model_copy(update={"repeats": 2, "max_concurrency": 1})})})
    with pytest.raises(ValueError, match=r"judging\.shadow.*'both'.*no LLM judge connection"):
        judge_for(policy, "shadow", None)
    selection = judge_for(policy, "shadow", LLMJudgeSettings(url, "judge-model", API_KEY, cache_dir=str(tmp_path)))
    assert selection.mode == "both" and selection.llm is not None
    assert (selection.llm.repeats, selection.llm.max_concurrency) == (2, 1)
    result = selection.llm.judge("Refund?", "Within 30 days. [VALID] policy", EVIDENCE)
    assert result.verdict == "correct" and script.requests == 2
