"""Sandbox gateway and model servers over real HTTP: routing, shadow, faults, metrics, validation."""

from __future__ import annotations

import socket
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llm_release.sandbox.bot import FABRICATED_SENTENCES, POLICY_VIOLATIONS, entry_phrasings
from llm_release.sandbox.fault_library import split_sentences
from llm_release.sandbox.runner import SandboxProcess, pid_alive
from llm_release.suites.knowledge_base import default_knowledge_base

pytestmark = pytest.mark.integration

KB_QUERIES = [
    "How long does shipping take?",
    "What is your refund policy?",
    "How do I reset my password?",
    "Do you ship internationally?",
    "How much does the Pro plan cost per user?",
]


def free_ports(count: int) -> list[int]:
    sockets = []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    gateway, stable, candidate = free_ports(3)
    state_dir: Path = tmp_path_factory.mktemp("sandbox")
    process = SandboxProcess(state_dir, gateway, stable, candidate, replay_rate=0)
    process.start()
    try:
        yield process
    finally:
        pid = process.pid
        process.stop()
        assert pid is not None and not pid_alive(pid)


@pytest.fixture()
def client(sandbox: SandboxProcess) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=15.0) as http:
        yield http
        # Leave the sandbox as the next test expects it: all traffic on stable, no shadow, no faults.
        url = sandbox.gateway_url
        assert http.put(f"{url}/admin/weights", json={"weights": {"stable": 100}}).status_code == 200
        assert http.put(f"{url}/admin/shadow", json={"target": None}).status_code == 200
        for build in ("stable", "candidate"):
            reset = {"error_rate": 0, "policy_violation_rate": 0, "hallucination_rate": 0, "fabrication_rate": 0,
                     "scopes": None}
            assert http.put(f"{sandbox.urls[build]}/admin/faults", json=reset).status_code == 200


def chat(http: httpx.Client, base_url: str, query: str) -> httpx.Response:
    return http.post(
        f"{base_url}/v1/chat/completions",
        json={"model": "default", "messages": [{"role": "user", "content": query}]},
    )


def metric(http: httpx.Client, base_url: str, name: str, **labels: str) -> float:
    text = http.get(f"{base_url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"metric {name}{labels} not exposed")


def test_chat_completion_through_gateway(sandbox: SandboxProcess, client: httpx.Client) -> None:
    response = chat(client, sandbox.gateway_url, "How long does shipping take?")
    assert response.status_code == 200
    assert response.headers["x-served-by"] == "stable"
    body = response.json()
    content = body["choices"][0]["message"]["content"]
    # the bot answers in one of its own wordings of the shipping-times entry, never the KB sentence
    assert content in entry_phrasings(default_knowledge_base().get("shipping-times"))
    assert body["model"] == "northwind-support-stable"
    assert body["usage"]["completion_tokens"] == len(content.split())
    assert body["id"].startswith("chatcmpl-")
    models = client.get(f"{sandbox.urls['candidate']}/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["northwind-support-candidate"]
    backends = client.get(f"{sandbox.gateway_url}/admin/backends").json()["backends"]
    assert backends == {name: {"url": sandbox.urls[name]} for name in ("stable", "candidate")}
    persona = chat(client, sandbox.gateway_url, "Are you a human?").json()["choices"][0]["message"]["content"]
    assert "AI assistant" in persona


def test_weighted_routing_splits_traffic(sandbox: SandboxProcess, client: httpx.Client) -> None:
    url = sandbox.gateway_url
    assert client.put(f"{url}/admin/weights", json={"weights": {"stable": 90, "candidate": 10}}).json() == {
        "weights": {"stable": 90, "candidate": 10}
    }
    assert metric(client, url, "llm_gateway_traffic_weight", version="candidate") == 10
    before = metric(client, url, "llm_gateway_requests_total", version="candidate", mode="live")
    n = 300
    with ThreadPoolExecutor(max_workers=24) as pool:
        responses = list(pool.map(lambda i: chat(client, url, KB_QUERIES[i % len(KB_QUERIES)]), range(n)))
    assert all(r.status_code == 200 for r in responses)
    served = Counter(r.headers["x-served-by"] for r in responses)
    # Binomial(300, 0.1): mean 30, sd 5.2 -> +-4 sd is [9, 51].
    assert 9 <= served["candidate"] <= 51, served
    assert served["stable"] + served["candidate"] == n
    after = metric(client, url, "llm_gateway_requests_total", version="candidate", mode="live")
    assert after - before == served["candidate"]


def test_shadow_mirrors_without_returning_shadow_answers(
    sandbox: SandboxProcess, client: httpx.Client
) -> None:
    url = sandbox.gateway_url
    assert client.put(f"{url}/admin/shadow", json={"target": "candidate"}).json() == {"target": "candidate"}
    assert client.get(f"{url}/admin/shadow").json() == {"target": "candidate"}
    cursor = client.get(f"{url}/admin/samples", params={"limit": 1}).json()["next"]
    cursor = max(cursor, client.get(f"{url}/admin/samples", params={"since": cursor}).json()["next"])
    # persona questions: the candidate words its AI disclosure differently, so answers show the build
    queries = [f"Are you a real person or a bot? (ticket {i})" for i in range(20)]
    for query in queries:
        response = chat(client, url, query)
        assert response.headers["x-served-by"] == "stable"
        # Candidate phrasing ends with a follow-up question; the user must only ever see stable's answer.
        assert "anything else I can help" not in response.json()["choices"][0]["message"]["content"]
    deadline = time.monotonic() + 10
    shadow: list[dict] = []
    while time.monotonic() < deadline:
        params = {"version": "candidate", "mode": "shadow", "since": cursor}
        shadow = client.get(f"{url}/admin/samples", params=params).json()["samples"]
        if len(shadow) >= len(queries):
            break
        time.sleep(0.1)
    assert sorted(s["query"] for s in shadow) == sorted(queries)
    assert all(s["status"] == 200 and s["error"] is None for s in shadow)
    assert all("anything else I can help" in s["response"] for s in shadow)
    live = client.get(f"{url}/admin/samples", params={"mode": "live", "since": cursor}).json()["samples"]
    assert {s["version"] for s in live} == {"stable"} and len(live) == len(queries)


def test_faults_switch_at_run_time_and_errors_are_counted(
    sandbox: SandboxProcess, client: httpx.Client
) -> None:
    url = sandbox.gateway_url
    fault = client.put(f"{sandbox.urls['candidate']}/admin/faults", json={"error_rate": 1}).json()
    assert fault["error_rate"] == 1.0 and fault["latency_p50_ms"] == 120.0
    client.put(f"{url}/admin/weights", json={"weights": {"stable": 0, "candidate": 100}})
    before = metric(client, url, "llm_gateway_errors_total", version="candidate", mode="live")
    statuses = [chat(client, url, query).status_code for query in KB_QUERIES]
    assert statuses == [503] * len(KB_QUERIES)
    assert metric(client, url, "llm_gateway_errors_total", version="candidate", mode="live") - before == len(
        KB_QUERIES
    )
    client.put(f"{sandbox.urls['candidate']}/admin/faults", json={"error_rate": 0})
    assert chat(client, url, KB_QUERIES[0]).status_code == 200
    bucket = "llm_gateway_request_duration_seconds_bucket"
    hist = metric(client, url, bucket, version="candidate", mode="live", le="10.0")
    assert hist >= len(KB_QUERIES) + 1


def test_policy_violations_are_counted(sandbox: SandboxProcess, client: httpx.Client) -> None:
    """The gateway checks every answer and counts flagged ones; which it flags is the checker's business.

    The sandbox's violations are written in plain words, independently of the checker, so this test does
    not assume the checker catches each one (that is measured on labelled data, not here): it checks that
    the counter and the recorded samples agree and that the stable build is untouched.
    """
    url = sandbox.gateway_url
    client.put(f"{sandbox.urls['candidate']}/admin/faults", json={"policy_violation_rate": 1})
    client.put(f"{url}/admin/weights", json={"weights": {"stable": 0, "candidate": 100}})
    before = metric(client, url, "llm_gateway_policy_violations_total", version="candidate", mode="live")
    cursor = client.get(f"{url}/admin/samples", params={"since": 0, "limit": 20000}).json()["next"]
    for query in KB_QUERIES:
        assert chat(client, url, query).status_code == 200
    after = metric(client, url, "llm_gateway_policy_violations_total", version="candidate", mode="live")
    samples = client.get(f"{url}/admin/samples", params={"version": "candidate", "since": cursor}).json()
    assert len(samples["samples"]) == len(KB_QUERIES)
    assert after - before == sum(bool(s["policy_violations"]) for s in samples["samples"])
    violations = set(POLICY_VIOLATIONS)
    assert all(violations & set(split_sentences(s["response"])) for s in samples["samples"])
    # The stable build is untouched by the candidate's fault.
    client.put(f"{url}/admin/weights", json={"weights": {"stable": 100, "candidate": 0}})
    name = "llm_gateway_policy_violations_total"
    before_stable = metric(client, url, name, version="stable", mode="live")
    chat(client, url, KB_QUERIES[1])
    assert metric(client, url, name, version="stable", mode="live") == before_stable


def test_faults_scoped_to_traffic_fire_only_there(sandbox: SandboxProcess, client: httpx.Client) -> None:
    """The gateway marks shadow and live requests; a shadow-only fault spares offline and live answers."""
    url, candidate = sandbox.gateway_url, sandbox.urls["candidate"]
    faults = {"fabrication_rate": 1, "scopes": {"fabrication": {"traffic": ["shadow"], "categories": ["shipping"]}}}
    assert client.put(f"{candidate}/admin/faults", json=faults).json()["scopes"]["fabrication"]["traffic"] == [
        "shadow"
    ]
    claims = set(FABRICATED_SENTENCES)
    query = "How long does shipping take?"
    offline = chat(client, candidate, query).json()["choices"][0]["message"]["content"]
    assert not claims & set(split_sentences(offline))
    client.put(f"{url}/admin/shadow", json={"target": "candidate"})
    cursor = client.get(f"{url}/admin/samples", params={"since": 10**9}).json()["next"]
    chat(client, url, query)
    deadline, shadow = time.monotonic() + 10, []
    while time.monotonic() < deadline and not shadow:
        params = {"version": "candidate", "mode": "shadow", "since": cursor}
        shadow = client.get(f"{url}/admin/samples", params=params).json()["samples"]
        time.sleep(0.05)
    assert shadow and claims & set(split_sentences(shadow[0]["response"]))
    client.put(f"{url}/admin/shadow", json={"target": None})
    client.put(f"{url}/admin/weights", json={"weights": {"stable": 0, "candidate": 100}})
    live = chat(client, url, query).json()["choices"][0]["message"]["content"]
    assert live == offline  # same build, seed and query: the same wording, no fault on live traffic
    bad = client.put(f"{candidate}/admin/faults", json={"scopes": {"omission": {"categories": ["refundz"]}}})
    assert bad.status_code == 422 and "refundz" in bad.text and "categories" in bad.text


def test_escalations_are_counted(sandbox: SandboxProcess, client: httpx.Client) -> None:
    url = sandbox.gateway_url
    before = metric(client, url, "llm_gateway_escalations_total", version="stable", mode="live")
    queries = ("I'm going to sue Northwind Cloud.", "I want to talk to a human.", "How long is shipping?")
    for query in queries:
        chat(client, url, query)
    assert metric(client, url, "llm_gateway_escalations_total", version="stable", mode="live") - before == 2


@pytest.mark.parametrize(
    ("target", "body", "needle"),
    [
        ("stable", {"error_rate": 2}, "error_rate"),
        ("stable", {"bogus_rate": 0.1}, "bogus_rate"),
        ("stable", {"latency_p50_ms": 500, "latency_p99_ms": 100}, "latency_p99_ms"),
        ("stable", {"seed": "abc"}, "seed"),
        ("stable", [1, 2], "body"),
        ("gateway-weights", {"weights": {"stable": 50, "candidate": 40}}, "sum to 100"),
        ("gateway-weights", {"weights": {"stable": 100, "nope": 0}}, "nope"),
        ("gateway-weights", {"weights": {"stable": 90.5, "candidate": 9.5}}, "weights.stable"),
        ("gateway-weights", {"stable": 100}, "weights"),
        ("gateway-shadow", {"target": "nope"}, "nope"),
    ],
)
def test_bad_admin_bodies_are_422_naming_the_problem(
    sandbox: SandboxProcess, client: httpx.Client, target: str, body: object, needle: str
) -> None:
    url = {
        "stable": f"{sandbox.urls['stable']}/admin/faults",
        "gateway-weights": f"{sandbox.gateway_url}/admin/weights",
        "gateway-shadow": f"{sandbox.gateway_url}/admin/shadow",
    }[target]
    before = client.get(url).json()
    response = client.put(url, json=body)
    assert response.status_code == 422
    assert needle in response.text
    assert client.get(url).json() == before  # nothing was applied
