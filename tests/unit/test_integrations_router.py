"""SandboxGatewayRouter against an in-memory fake gateway (httpx.MockTransport)."""

from __future__ import annotations

import json

import httpx
import pytest

from llm_release.integrations.router import RouterError, SandboxGatewayRouter, TrafficRouter, validate_weights


class FakeGateway:
    """Mimics the sandbox admin API, including its 422 validation and flaky connections."""

    def __init__(self, fail_first: int = 0, ignore_writes: bool = False) -> None:
        self.weights = {"stable": 100, "candidate": 0}
        self.shadow: str | None = None
        self.fail_first = fail_first
        self.ignore_writes = ignore_writes
        self.calls: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path))
        if self.fail_first > 0:
            self.fail_first -= 1
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if path == "/admin/weights":
            if request.method == "PUT":
                body = json.loads(request.content)["weights"]
                unknown = set(body) - set(self.weights)
                if unknown:
                    return httpx.Response(422, json={"detail": f"unknown backend(s): {sorted(unknown)}"})
                if not self.ignore_writes:
                    self.weights = {k: body.get(k, 0) for k in self.weights}
            return httpx.Response(200, json={"weights": self.weights})
        if path == "/admin/shadow":
            if request.method == "PUT" and not self.ignore_writes:
                self.shadow = json.loads(request.content)["target"]
            return httpx.Response(200, json={"target": self.shadow})
        if path == "/admin/backends":
            return httpx.Response(
                200, json={"backends": {"stable": {"url": "http://s"}, "candidate": {"url": "http://c"}}}
            )
        return httpx.Response(404, json={"detail": "Not Found"})


def router(gw: FakeGateway) -> SandboxGatewayRouter:
    return SandboxGatewayRouter("http://gw.test", transport=httpx.MockTransport(gw), backoff_s=0.001)


def test_set_and_get_weights_round_trip_idempotent():
    gw = FakeGateway()
    r = router(gw)
    assert isinstance(r, TrafficRouter)
    assert r.set_weights({"stable": 90, "candidate": 10}) == {"stable": 90, "candidate": 10}
    assert r.set_weights({"stable": 90, "candidate": 10}) == {"stable": 90, "candidate": 10}
    assert r.get_weights() == {"stable": 90, "candidate": 10}
    assert r.set_weights({"candidate": 100}) == {"stable": 0, "candidate": 100}


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"stable": 90, "candidate": 5}, "sum to 100, got 95"),
        ({"stable": 100.0}, "integer percent"),
        ({"stable": True}, "integer percent"),
        ({"stable": 120, "candidate": -20}, "within 0..100"),
        ({}, "non-empty"),
    ],
)
def test_invalid_weights_rejected_before_sending(weights, message):
    gw = FakeGateway()
    with pytest.raises(ValueError, match=message):
        router(gw).set_weights(weights)
    assert gw.calls == []


def test_server_reason_and_url_in_error():
    with pytest.raises(RouterError, match=r"PUT http://gw.test/admin/weights -> HTTP 422: unknown backend"):
        router(FakeGateway()).set_weights({"canary": 100})


def test_read_back_mismatch_is_an_error():
    with pytest.raises(RouterError, match="reads back"):
        router(FakeGateway(ignore_writes=True)).set_weights({"stable": 50, "candidate": 50})
    with pytest.raises(RouterError, match="reads back None"):
        router(FakeGateway(ignore_writes=True)).set_shadow("candidate")


def test_connection_errors_retried_then_fail_with_url():
    gw = FakeGateway(fail_first=2)
    assert router(gw).get_shadow() is None
    assert len(gw.calls) == 3
    with pytest.raises(RouterError, match=r"GET http://gw.test/admin/weights failed after 4 attempts"):
        router(FakeGateway(fail_first=10)).get_weights()


def test_shadow_and_backends():
    r = router(FakeGateway())
    assert r.set_shadow("candidate") == "candidate"
    assert r.get_shadow() == "candidate"
    assert r.set_shadow(None) is None
    assert set(r.backends()) == {"stable", "candidate"}
    with pytest.raises(ValueError):
        r.set_shadow("")


def test_validate_weights_normalises():
    assert validate_weights({"a": 0, "b": 100}) == {"a": 0, "b": 100}
