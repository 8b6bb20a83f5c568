"""One test per finding of the dwell review, named after it; each failed on the code before the fix.

* unmeasured counts as clean (dwell clock; a metric family missing from the scrape read as 0);
* noise rolls back a good release (one HTTP 500 among ~20 requests);
* old live samples never expire (a 10-hour-old SCS was still used);
* manual triggers and page rules are not wired (pages never reached a person; the escalation baseline
  disappeared at the 100 % phase);
* logic in the shell (the trigger's loop held rules).

Sensors run here against a real config file and a real audit file; the task instance is a stand-in that
serves XComs, and Airflow's ``upsert_hitl_detail`` is replaced by a recorder (the REST side of an
approval is exercised by the e2e tests).
"""

from __future__ import annotations

import ast
import asyncio
import json
import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from llm_release.decisions.dwell import (
    DwellObservation,
    DwellPolicy,
    DwellState,
    JudgedAnswer,
    LiveQualityState,
    QualitySample,
    WindowCounts,
    dwell_step,
    start_dwell,
)
from llm_release.decisions.release import VersionFacts, open_release
from llm_release.integrations.metrics import MetricsSnapshot, window_stats
from llm_release.operators.base import PREPARE_TASK_ID, jsonable
from llm_release.policy import DEFAULT_PROFILE, load_policy, load_release_config
from llm_release.sensors.dwell import RolloutDwellSensor
from llm_release.triggers import rollout as rollout_trigger
from llm_release.triggers.rollout import RolloutDwellTrigger, window_counts

POLICY = load_policy(DEFAULT_PROFILE)
M = 60.0
GOOD = [JudgedAnswer(score=0.9, hallucinated=False)] * 2


def cand(**overrides: Any) -> WindowCounts:
    base = dict(requests=200, errors=0, p50_ms=300.0, p99_ms=900.0, policy_violations=0, escalations=10)
    return WindowCounts(**{**base, **overrides})


BASE = WindowCounts(requests=2000, errors=2, p50_ms=300.0, p99_ms=900.0, policy_violations=0, escalations=200)


def ready(phase: str = "canary_tier_2", closed_at: float = 0.0, scs: float = 0.9) -> DwellState:
    sample = QualitySample(opened_ts=closed_at - 3600, closed_ts=closed_at, judged=120, score_sum=scs * 120)
    quality = LiveQualityState(closed=[sample], open=QualitySample(opened_ts=closed_at))
    return start_dwell("canary", phase).model_copy(update={"quality": quality})


def step(state: DwellState, ts: float, candidate: WindowCounts | None = None, **kwargs: Any):
    obs = DwellObservation(ts=ts, start_ts=ts - M, candidate=candidate or cand(), baseline=BASE,
                           candidate_judged=kwargs.pop("judged", GOOD), **kwargs)
    return dwell_step(state, obs, POLICY, dwell_seconds=30 * M, max_seconds=600 * M, minute_seconds=M)


# --------------------------------------------------------------------------- unmeasured counts as clean


def test_unmeasured_counts_as_clean__every_trigger_unmeasured_stops_the_dwell_clock() -> None:
    state = start_dwell("canary", "canary_tier_2")
    for i in range(1, 40):  # the old trigger called this "ok" and advanced the clock every poll
        state, verdict = step(state, i * M, candidate=WindowCounts(), judged=[])
        assert verdict.action == "hold" and not verdict.clock_advanced
    assert state.clean_seconds == 0.0 and state.active_seconds == 39 * M
    rollback = {t.name for t in POLICY.rollback_triggers}
    assert rollback <= {u.name for u in verdict.unmeasured}


def _scrape(requests: int, errors: int, violations: int | None, ts: float) -> MetricsSnapshot:
    lab = 'version="candidate",mode="live"'
    lines = [
        "# TYPE llm_gateway_requests_total counter", f"llm_gateway_requests_total{{{lab}}} {requests}",
        "# TYPE llm_gateway_errors_total counter", f"llm_gateway_errors_total{{{lab}}} {errors}",
        "# TYPE llm_gateway_escalations_total counter", f"llm_gateway_escalations_total{{{lab}}} 0",
    ]
    if violations is not None:
        lines += ["# TYPE llm_gateway_policy_violations_total counter",
                  f"llm_gateway_policy_violations_total{{{lab}}} {violations}"]
    return MetricsSnapshot.parse("\n".join(lines) + "\n", ts=ts)


def test_unmeasured_counts_as_clean__a_metric_family_missing_from_the_scrape_is_unmeasured_not_zero() -> None:
    prev, cur = _scrape(100, 0, None, 0.0), _scrape(300, 0, None, 60.0)
    stats = window_stats(prev, cur, "candidate")
    assert stats.requests == 200 and stats.policy_violations is None  # was 0: "no violation"
    assert cur.get("candidate").policy_violations is None and cur.missing_families() == ["policy_violations"]
    _state, verdict = step(ready(), M, candidate=window_counts(stats).model_copy(update={"p99_ms": 900.0}))
    assert "policy_violation_rollback" in {u.name for u in verdict.unmeasured if u.action == "rollback"}
    assert not verdict.clock_advanced
    # with the counter exported, one violation is one strike
    stats = window_stats(_scrape(100, 0, 0, 0.0), _scrape(300, 0, 1, 60.0), "candidate")
    _, verdict = step(ready(), M, candidate=window_counts(stats).model_copy(update={"p99_ms": 900.0}))
    assert verdict.action == "rollback" and verdict.trigger == "policy_violation_rollback"


# --------------------------------------------------------------------------- noise


def test_noise_rolls_back_a_good_release__one_500_among_twenty_requests_holds() -> None:
    state = ready()
    quiet = cand(requests=4, errors=0, escalations=0)
    for i in range(1, 5):
        state, verdict = step(state, i * M, candidate=quiet)
    state, verdict = step(state, 5 * M, candidate=cand(requests=4, errors=1, escalations=0))
    # 1/20 = 5 % "sustained for 5 minutes" rolled the healthy candidate back before the fix
    assert verdict.action == "hold" and not verdict.clock_advanced
    inconclusive = {h.trigger_name: h for h in verdict.inconclusive}
    assert inconclusive["error_rate_sustained_5min"].interval[0] < 0.025 < inconclusive[
        "error_rate_sustained_5min"].interval[1]
    # nor is a handful of clean requests evidence of health: the clock never moved
    assert state.clean_seconds == 0.0


# --------------------------------------------------------------------------- expiry


def test_old_live_samples_never_expire__a_ten_hour_old_scs_is_unmeasured() -> None:
    state = ready(closed_at=0.0, scs=0.79)  # would roll back if it still counted
    _, verdict = step(state, 10 * 3600.0)
    reasons = {u.name: u.reason for u in verdict.unmeasured}
    assert verdict.action == "hold" and "min old" in reasons["scs_below_080_hourly"]
    assert not verdict.clock_advanced


# --------------------------------------------------------------------------- pages reach a person


def test_manual_triggers_not_wired__scs_degraded_for_two_hours_pages() -> None:
    closed = [QualitySample(opened_ts=h * 3600.0 - 3600, closed_ts=h * 3600.0, judged=60, score_sum=0.81 * 60)
              for h in range(3)]
    state = start_dwell("canary", "canary_tier_2").model_copy(
        update={"quality": LiveQualityState(closed=closed, open=QualitySample(opened_ts=7200.0))}
    )
    _, verdict = step(state, 7200.0 + M)
    assert verdict.action == "page" and verdict.trigger == "scs_degraded_over_2h"
    assert verdict.page is not None and verdict.page.observed == pytest.approx(0.81)


def test_manual_triggers_not_wired__a_novel_adversarial_pattern_pages() -> None:
    _, verdict = step(ready(), M, candidate=cand(novel_adversarial_patterns=1))
    assert verdict.action == "page" and verdict.trigger == "novel_adversarial_pattern_live"


# sensors: a config, a release record, an audit file, a task-instance stand-in


@pytest.fixture
def config_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AIRFLOW_CONN_LLM_METRICS_SOURCE",
                       json.dumps({"conn_type": "llm_metrics_source", "host": "127.0.0.1", "port": 9}))
    path = tmp_path / "release.yaml"
    path.write_text(textwrap.dedent(f"""
        model_name: support-llm
        model_type: support-llm
        approvers:
          ml_lead: [alice]
          support_ops_lead: [bob]
          safety_reviewer: [carol]
          executive: [dana]
        mlflow_tracking_uri: sqlite:///{tmp_path}/mlflow.db
        audit_path: {tmp_path}/audit/audit.jsonl
        tickets_dir: {tmp_path}/tickets
        time_scale: 0.001
        """))
    return path


class FakeTI:
    dag_id = "release_test"
    run_id = "manual__2026-11-20"

    def __init__(self, task_id: str, xcoms: dict[tuple[str, str], Any]) -> None:
        self.task_id = task_id
        self.id = uuid.uuid4()
        self.xcoms = xcoms
        self.pushed: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str, key: str = "return_value") -> Any:
        return self.xcoms.get((task_ids, key))

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


def sensor_context(config_path: Path, phase: str, extra: dict[tuple[str, str], Any] | None = None):
    cfg = load_release_config(config_path)
    record = open_release(
        cfg.release_policy, model_name=cfg.model_name, model_type=cfg.model_type,
        candidate=VersionFacts(version="2", backend="candidate", endpoint_conn_id="llm_candidate"),
        production=VersionFacts(version="1", backend="stable", endpoint_conn_id="llm_stable"),
        release_type="prompt_minor", change_summary="", open_reviews=[], used_version_names=[],
        closed_outcomes=[], now=datetime(2026, 11, 20, 9, 0, tzinfo=UTC), time_scale=0.001,
    )
    xcoms = {
        (PREPARE_TASK_ID, "return_value"): jsonable(record),
        (f"stage_5_production.set_traffic_{phase}", "return_value"): {"dwell_seconds": 7.2},
        **(extra or {}),
    }
    ti = FakeTI(f"stage_5_production.dwell_{phase}", xcoms)
    return {"ti": ti, "task_instance": ti, "params": {}}


def page_event(phase: str = "canary_tier_2") -> dict[str, Any]:
    """The event the trigger fires when dwell_step pages (built by the real trigger code)."""
    state, verdict = step(ready(phase), M, candidate=cand(novel_adversarial_patterns=1))
    trigger = RolloutDwellTrigger(
        mode="canary", phase=phase, candidate_backend="candidate", baseline_backend="stable",
        metrics_url="http://127.0.0.1:9/metrics", samples_url="http://127.0.0.1:9", dwell_seconds=7.2,
        minute_seconds=0.06, poll_seconds=0.5, max_seconds=100.0,
        dwell_policy=DwellPolicy.of(POLICY).model_dump(mode="json"),
    )
    return trigger._event(state, verdict, {})


@pytest.fixture
def hitl(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    import airflow.sdk.execution_time.hitl as hitl_module

    monkeypatch.setattr(hitl_module, "upsert_hitl_detail", lambda **kwargs: calls.append(kwargs))
    return calls


def test_manual_triggers_not_wired__a_page_opens_an_approval_for_the_critical_roles(config_path, hitl) -> None:
    from airflow.sdk.exceptions import TaskAwaitingInput

    sensor = RolloutDwellSensor(task_id="dwell_canary_tier_2", phase="canary_tier_2", config_path=str(config_path))
    context = sensor_context(config_path, "canary_tier_2")
    event = page_event()
    with pytest.raises(TaskAwaitingInput) as waiting:
        sensor.execute_complete(context, event)
    assert waiting.value.method_name == "page_answered" and waiting.value.kwargs == {"dwell": event}
    [request] = hitl
    assert request["ti_id"] == context["ti"].id and request["options"] == ["Rollback", "Continue"]
    # critical_notify_roles = ml_lead, support_ops_lead
    assert request["assigned_users"] == [{"id": "alice", "name": "alice"}, {"id": "bob", "name": "bob"}]
    body = request["body"]
    assert "novel_adversarial_pattern_live" in body and "observed 1" in body and "window" in body
    assert context["ti"].pushed["page"]["trigger_name"] == "novel_adversarial_pattern_live"
    assert context["ti"].pushed["page"]["number"] == 1
    # a second page of the same task writes a second request (Airflow clears the first answer)
    with pytest.raises(TaskAwaitingInput):
        sensor.execute_complete(context, page_event())
    assert len(hitl) == 2


def answer(choice: str, who: str = "alice") -> dict[str, Any]:
    return {"chosen_options": [choice], "params_input": {}, "responded_at": datetime.now(UTC),
            "responded_by_user": {"id": who, "name": who}, "timedout": False}


def test_manual_triggers_not_wired__rollback_on_a_page_takes_the_rollback_path(config_path) -> None:
    sensor = RolloutDwellSensor(task_id="dwell_canary_tier_2", phase="canary_tier_2", config_path=str(config_path))
    context = sensor_context(config_path, "canary_tier_2")
    with pytest.raises(AirflowFailException, match="novel_adversarial_pattern_live"):
        sensor.page_answered(context, dwell=page_event(), event=answer("Rollback", "bob"))
    breach = context["ti"].pushed["breach"]
    assert breach["trigger"] == "novel_adversarial_pattern_live" and breach["phase"] == "canary_tier_2"
    assert "bob" in breach["reason"] and breach["event"]["answer"]["chosen"] == ["Rollback"]


def test_manual_triggers_not_wired__no_answer_fails_closed(config_path) -> None:
    sensor = RolloutDwellSensor(task_id="dwell_canary_tier_2", phase="canary_tier_2", config_path=str(config_path))
    context = sensor_context(config_path, "canary_tier_2")
    timed_out = {**answer("Continue"), "chosen_options": [], "timedout": True}
    with pytest.raises(AirflowFailException, match="no valid answer"):
        sensor.page_answered(context, dwell=page_event(), event=timed_out)
    assert context["ti"].pushed["breach"]["trigger"] == "novel_adversarial_pattern_live"


def test_manual_triggers_not_wired__continue_resumes_with_the_page_acknowledged(config_path) -> None:
    sensor = RolloutDwellSensor(task_id="dwell_canary_tier_2", phase="canary_tier_2", config_path=str(config_path))
    context = sensor_context(config_path, "canary_tier_2")
    event = page_event()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.page_answered(context, dwell=event, event=answer("Continue"))
    trigger = deferred.value.trigger
    assert isinstance(trigger, RolloutDwellTrigger) and deferred.value.method_name == "execute_complete"
    state = DwellState.model_validate(trigger.state)
    assert state.acknowledged == ["novel_adversarial_pattern_live"]
    assert state.pages[-1].answer == "Continue" and state.pages[-1].responder == "alice"
    assert state.clean_seconds == event["dwell_state"].get("clean_seconds", 0.0)
    # the resumed dwell does not page again for the same, still-firing trigger
    _resumed, verdict = step(state, 2 * M, candidate=cand(novel_adversarial_patterns=1))
    assert verdict.action != "page"


def test_manual_triggers_not_wired__the_escalation_baseline_reaches_the_full_phase(config_path) -> None:
    previous, _ = step(ready("progressive_50"), M)
    assert "escalation_rate" in previous.baseline
    pushed = {"status": "done", "dwell_state": previous.model_dump(mode="json", exclude_defaults=True)}
    context = sensor_context(config_path, "full", {("stage_5_production.dwell_progressive_50", "return_value"): pushed})
    sensor = RolloutDwellSensor(task_id="dwell_full", phase="full", config_path=str(config_path),
                                previous_dwell_task_id="stage_5_production.dwell_progressive_50")
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    state = DwellState.model_validate(deferred.value.trigger.state)
    assert state.phase == "full" and state.baseline == previous.baseline
    no_traffic = WindowCounts(requests=0, errors=0, policy_violations=0, escalations=0)
    obs = DwellObservation(ts=2 * M, start_ts=M, candidate=cand(requests=2000, escalations=400),
                           baseline=no_traffic)
    _, verdict = dwell_step(state, obs, POLICY, dwell_seconds=60.0, max_seconds=600.0, minute_seconds=M)
    assert verdict.trigger == "escalation_over_baseline_35pct"  # n-1 serves nothing, its baseline still counts


# --------------------------------------------------------------------------- logic in the shell


class FakeMetrics:
    """Cumulative counters growing by a fixed amount per scrape, one policy minute apart."""

    def __init__(self, per_minute: dict[str, int]) -> None:
        self.per_minute = per_minute
        self.scrapes = 0

    async def ascrape(self) -> MetricsSnapshot:
        n = self.scrapes
        self.scrapes += 1
        lines = []
        for version, requests, escalations in (("candidate", self.per_minute["candidate"], 5),
                                               ("stable", self.per_minute["stable"], 100)):
            lab = f'version="{version}",mode="live"'
            lines += [f"llm_gateway_requests_total{{{lab}}} {n * requests}",
                      f"llm_gateway_errors_total{{{lab}}} 0",
                      f"llm_gateway_policy_violations_total{{{lab}}} 0",
                      f"llm_gateway_escalations_total{{{lab}}} {n * escalations}"]
            for le, share in (("0.5", 0.5), ("1.0", 1.0), ("+Inf", 1.0)):
                lines.append(f'llm_gateway_request_duration_seconds_bucket{{{lab},le="{le}"}} {n * requests * share}')
        return MetricsSnapshot.parse("\n".join(lines) + "\n", ts=n * M)


class FakeSamples:
    def __init__(self) -> None:
        self.seq = 0

    async def acursor_now(self, version: str, mode: str) -> int:
        return self.seq

    async def afetch(self, version: str, mode: str, since: int = 0) -> tuple[list[dict[str, Any]], int]:
        self.seq += 3
        answers = [{"seq": self.seq, "query": "q", "response": "good"}] * 2
        return [*answers, {"seq": self.seq, "query": "q", "response": None}], self.seq  # one error


class FixedJudge:
    def judge(self, query: str, response: str) -> SimpleNamespace:
        return SimpleNamespace(score=0.9, hallucinated=False)


def test_logic_in_the_shell__the_trigger_only_fetches_and_persists_what_dwell_step_decides(monkeypatch) -> None:
    calls: list[tuple[DwellState, DwellObservation]] = []
    real = dwell_step

    def spy(state, observation, policy, **kwargs):
        calls.append((state, observation))
        return real(state, observation, policy, **kwargs)

    monkeypatch.setattr("llm_release.decisions.dwell.dwell_step", spy)
    trigger = RolloutDwellTrigger(
        mode="canary", phase="canary_tier_2", candidate_backend="candidate", baseline_backend="stable",
        metrics_url="http://127.0.0.1:9/metrics", samples_url="http://127.0.0.1:9", dwell_seconds=20 * M,
        minute_seconds=M, poll_seconds=0.0, max_seconds=600 * M,
        dwell_policy=DwellPolicy.of(POLICY).model_dump(mode="json"),
        state=ready().model_dump(mode="json"),
    )
    trigger._judge = FixedJudge()
    event = asyncio.run(trigger.watch(sources=(FakeMetrics({"candidate": 200, "stable": 2000}), FakeSamples())))
    assert event["status"] == "done"
    final = DwellState.model_validate(event["dwell_state"])
    replay = ready()
    for state, observation in calls:  # the event is exactly dwell_step's last state
        assert state == replay
        replay, _ = real(replay, observation, DwellPolicy.of(POLICY), dwell_seconds=20 * M,
                         max_seconds=600 * M, minute_seconds=M)
    assert replay == final
    first = calls[0][1]
    assert first.candidate.requests == 200
    assert first.candidate_judged == [JudgedAnswer(score=0.9, hallucinated=False)] * 2
    assert event["phase_metrics"]["p99_ms"] is not None and event["phase_metrics"]["requests"] == 200 * len(calls)


def test_logic_in_the_shell__shadow_counts_answered_mirrored_samples_only() -> None:
    class Mirrored:
        async def afetch(self, version: str, mode: str, since: int = 0):
            assert mode == "shadow"
            return [{"response": "a"}, {"response": None}, {"response": "b"}], since + 3

    ticks = iter(range(0, 10_000, 60))
    trigger = RolloutDwellTrigger(
        mode="shadow", phase="shadow", candidate_backend="candidate", baseline_backend="stable",
        metrics_url="http://127.0.0.1:9/metrics", samples_url="http://127.0.0.1:9", dwell_seconds=5 * M,
        minute_seconds=M, poll_seconds=0.0, max_seconds=60 * M, min_shadow_samples=10,
    )
    event = asyncio.run(trigger.watch(sources=(None, Mirrored()), clock=lambda: float(next(ticks))))
    assert event["status"] == "done" and event["samples"] == 10  # 2 answered per poll; errors are not samples


def test_logic_in_the_shell__the_trigger_module_holds_no_rule() -> None:
    tree = ast.parse(Path(rollout_trigger.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert not imported & {"classify_breaches", "compare", "Trigger", "MetricSample", "wilson_interval"}
    assert "dwell_step" in imported
    classes = {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    assert classes == {"RolloutDwellTrigger"}  # LiveQuality's rules moved to decisions.dwell
