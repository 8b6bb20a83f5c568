"""OpenAIChatEndpoint against httpx.MockTransport: retries, no-retry cases, bad replies, secrets, order."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import httpx
import pytest

from llm_release.integrations.model_endpoint import BadReply, OpenAIChatEndpoint, extract_content
from llm_release.suites.types import ChatClient

API_KEY = "sk-test-SECRET-1234567890"


def ok_reply(content: str) -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "id": "x",
            "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            "usage": {"total_tokens": 3},
        },
    )


def endpoint(handler, **kw) -> OpenAIChatEndpoint:
    kw.setdefault("backoff_s", 0.001)
    return OpenAIChatEndpoint("http://model.test", transport=httpx.MockTransport(handler), **kw)


def test_is_a_chat_client_and_sends_openai_body():
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        assert request.url.path == "/v1/chat/completions"
        return ok_reply("hello " + seen[-1]["messages"][-1]["content"])

    ep = endpoint(handler, model="cand", system_prompt="Be kind.", temperature=0.2, max_tokens=64)
    assert isinstance(ep, ChatClient)
    [c] = ep.complete_batch(["hi"])
    assert c.ok and c.text == "hello hi" and c.status_code == 200 and c.latency_ms >= 0
    assert seen[0] == {
        "model": "cand",
        "messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "max_tokens": 64,
    }


def test_base_url_with_v1_suffix_is_normalised():
    ep = OpenAIChatEndpoint("http://h:1/v1/")
    assert ep.chat_url == "http://h:1/v1/chat/completions"


def test_retries_503_then_succeeds():
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        if calls["n"] < 3:
            return httpx.Response(503, json={"error": "overloaded"})
        return ok_reply("fine")

    [c] = endpoint(handler, max_retries=2).complete_batch(["q"])
    assert calls["n"] == 3
    assert c.ok and c.text == "fine"
    assert c.attempts == 3 and len(c.failed_attempts) == 2


def test_retries_429_and_connect_errors():
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("connection refused", request=request)
        if calls["n"] == 2:
            return httpx.Response(429, text="slow down")
        return ok_reply("ok")

    [c] = endpoint(handler, max_retries=2).complete_batch(["q"])
    assert (calls["n"], c.text) == (3, "ok")
    assert c.failed_attempts[0].startswith("ConnectError calling http://model.test/v1/chat/completions")
    assert c.failed_attempts[1] == "HTTP 429: slow down"


def test_final_failure_becomes_error_completion():
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        return httpx.Response(503, text="upstream unavailable")

    [c] = endpoint(handler, max_retries=2).complete_batch(["q"])
    assert calls["n"] == 3
    assert not c.ok and c.text is None and c.status_code == 503
    assert c.error == "HTTP 503: upstream unavailable"


def test_timeout_retried_then_reported():
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        raise httpx.ReadTimeout("timed out", request=request)

    [c] = endpoint(handler, max_retries=1).complete_batch(["q"])
    assert calls["n"] == 2
    assert c.text is None and c.error.startswith("timeout calling http://model.test/v1/chat/completions")


def test_400_is_not_retried():
    calls = {"n": 0}

    def handler(request):
        calls["n"] += 1
        return httpx.Response(400, json={"detail": "messages: field required"})

    [c] = endpoint(handler, max_retries=3).complete_batch(["q"])
    assert calls["n"] == 1
    assert c.status_code == 400 and "messages: field required" in c.error


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"id": "x"}, "'choices'"),
        ({"choices": []}, "'choices' is empty"),
        ({"choices": [{"index": 0}]}, "'choices[0].message'"),
        ({"choices": [{"message": {"role": "assistant"}}]}, "'choices[0].message.content'"),
        ({"choices": [{"message": {"content": 5}}]}, "is int, expected str"),
    ],
)
def test_bad_reply_names_missing_field(payload, field):
    [c] = endpoint(lambda r: httpx.Response(200, json=payload)).complete_batch(["q"])
    assert c.text is None and field in c.error and "bad reply" in c.error
    with pytest.raises(BadReply, match="reply"):
        extract_content(payload)


def test_non_json_reply():
    [c] = endpoint(lambda r: httpx.Response(200, text="<html>")).complete_batch(["q"])
    assert c.error.endswith("reply is not valid JSON")


def test_api_key_sent_as_bearer_but_never_leaks(caplog):
    def handler(request):
        assert request.headers["authorization"] == f"Bearer {API_KEY}"
        # a hostile/buggy server echoing the header must not leak it into errors
        return httpx.Response(503, text=f"bad auth header Bearer {API_KEY}")

    ep = endpoint(handler, api_key=API_KEY, max_retries=1)
    with caplog.at_level(logging.DEBUG, logger="llm_release"):
        [c] = ep.complete_batch(["q"])
    assert API_KEY not in c.error and "***" in c.error
    assert API_KEY not in repr(ep) and "'***'" in repr(ep)
    assert API_KEY not in caplog.text and "retrying" in caplog.text


def test_order_preserved_and_concurrency_bounded():
    active = {"now": 0, "max": 0}
    lock = threading.Lock()

    async def handler(request):
        prompt = json.loads(request.content)["messages"][-1]["content"]
        with lock:
            active["now"] += 1
            active["max"] = max(active["max"], active["now"])
        await asyncio.sleep(0.01 * (int(prompt) % 3))  # later prompts finish first sometimes
        with lock:
            active["now"] -= 1
        return ok_reply(f"answer {prompt}")

    prompts = [str(i) for i in range(20)]
    ep = OpenAIChatEndpoint("http://model.test", max_concurrency=3, transport=httpx.MockTransport(handler))
    out = asyncio.run(ep.acomplete_batch(prompts))
    assert [c.prompt for c in out] == prompts
    assert [c.text for c in out] == [f"answer {p}" for p in prompts]
    assert 1 < active["max"] <= 3


def test_complete_batch_from_thread_and_from_running_loop():
    ep = endpoint(lambda r: ok_reply("x"))
    result: list = []
    t = threading.Thread(target=lambda: result.extend(ep.complete_batch(["a", "b"])))
    t.start()
    t.join(10)
    assert [c.text for c in result] == ["x", "x"]

    async def inside_loop():
        return ep.complete_batch(["c"])

    assert asyncio.run(inside_loop())[0].text == "x"


def test_rejects_single_string_and_empty_batch():
    ep = endpoint(lambda r: ok_reply("x"))
    with pytest.raises(TypeError, match="not a single string"):
        ep.complete_batch("abc")
    with pytest.raises(TypeError, match=r"prompts\[1\]"):
        ep.complete_batch(["a", 3])
    assert ep.complete_batch([]) == []


def test_health_uses_models_then_healthz():
    def handler(request):
        if request.url.path == "/v1/models":
            return httpx.Response(404)
        return httpx.Response(200, json={"ok": True})

    h = endpoint(handler).health()
    assert h.ok and h.url.endswith("/healthz") and h.status_code == 200

    def down(request):
        raise httpx.ConnectError("refused", request=request)

    h = endpoint(down).health()
    assert not h.ok and h.status_code is None and "ConnectError" in h.detail


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_url": "model:80"},
        {"base_url": "http://h", "max_concurrency": 0},
        {"base_url": "http://h", "max_retries": -1},
        {"base_url": "http://h", "timeout_s": 0},
        {"base_url": "http://h", "max_retry_after_s": -1},
        {"base_url": "http://h", "max_reply_bytes": 0},
    ],
)
def test_constructor_validates(kwargs):
    with pytest.raises(ValueError):
        OpenAIChatEndpoint(**kwargs)


def test_session_reuses_connections_and_spreads_them_over_small_pools():
    """A load generator's session: many single calls, pooled, never more than max_connections."""
    active = {"now": 0, "max": 0}

    async def handler(request):
        active["now"] += 1
        active["max"] = max(active["max"], active["now"])
        await asyncio.sleep(0.02)
        active["now"] -= 1
        return ok_reply("x")

    ep = OpenAIChatEndpoint("http://model.test", transport=httpx.MockTransport(handler))

    async def run(calls: int):
        async with ep.session(max_connections=40) as session:
            out = await asyncio.gather(*(session.complete(f"q{i}") for i in range(calls)))
            opened = len(session._shards)
        return out, opened, session._shards

    out, opened, after = asyncio.run(run(100))
    assert all(c.ok for c in out) and [c.prompt for c in out] == [f"q{i}" for i in range(100)]
    assert opened == 3 and after == []  # ceil(40 / 16) small pools, all closed with the session
    assert active["max"] > 16  # the calls really overlapped, across pools
    _, few, _ = asyncio.run(run(10))
    assert few == 1  # pools open only as the calls in flight grow


def test_acomplete_one_and_scale_up_url():
    ep = endpoint(lambda r: ok_reply("one"))
    assert asyncio.run(ep.acomplete_one("q")).text == "one"
    with pytest.raises(TypeError, match="prompt is int"):
        asyncio.run(ep.acomplete_one(3))
    assert OpenAIChatEndpoint("http://h:1/v1").scale_up_url == "http://h:1/admin/scale-up"
    assert OpenAIChatEndpoint("http://h:1", scale_up_path="ops/up").scale_up_url == "http://h:1/ops/up"
    assert OpenAIChatEndpoint("http://h:1", scale_up_path=None).scale_up_url is None
