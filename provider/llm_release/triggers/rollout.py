"""Deferrable dwell: hold a rollout phase (or the shadow phase) in the triggerer, watching metrics.

Canary mode, every poll:

1. scrape the metrics source and take the window since the previous scrape for the candidate and
   for the baseline (n-1) version: requests, errors, p99, policy violations, escalations;
2. judge the candidate's new live responses (sampled by the gateway) against the knowledge base,
   giving a live SCS and hallucination rate over the trailing (scaled) hour once enough exist;
3. classify breaches over the history with the policy's pause, hold and rollback triggers.

Only clean time counts toward the dwell: while a pause or hold trigger is active the clock stops
(spec: "dwell times are minimums"). A rollback trigger ends the phase at once. The phase also needs a
minimum number of judged live responses, so it can never complete without a measured SCS. An
unreachable metrics source or a phase held past its limit ends with a failure (fail closed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

UNREACHABLE_LIMIT_POLLS = 10


class RolloutDwellTrigger(BaseTrigger):
    """Hold for ``dwell_seconds`` of clean time, or until a rollback trigger fires."""

    def __init__(
        self,
        *,
        mode: str,
        phase: str,
        candidate_backend: str,
        baseline_backend: str,
        metrics_url: str,
        samples_url: str,
        dwell_seconds: float,
        minute_seconds: float,
        poll_seconds: float,
        max_seconds: float,
        triggers: list[dict[str, Any]] | None = None,
        min_live_samples: int = 0,
        min_requests: int = 1,
        min_shadow_samples: int = 0,
        shadow_since: int = 0,
    ) -> None:
        super().__init__()
        self.mode = mode
        self.phase = phase
        self.candidate_backend = candidate_backend
        self.baseline_backend = baseline_backend
        self.metrics_url = metrics_url
        self.samples_url = samples_url
        self.dwell_seconds = float(dwell_seconds)
        self.minute_seconds = float(minute_seconds)
        self.poll_seconds = float(poll_seconds)
        self.max_seconds = float(max_seconds)
        self.triggers = list(triggers or [])
        self.min_live_samples = int(min_live_samples)
        self.min_requests = int(min_requests)
        self.min_shadow_samples = int(min_shadow_samples)
        self.shadow_since = int(shadow_since)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "mode": self.mode,
                "phase": self.phase,
                "candidate_backend": self.candidate_backend,
                "baseline_backend": self.baseline_backend,
                "metrics_url": self.metrics_url,
                "samples_url": self.samples_url,
                "dwell_seconds": self.dwell_seconds,
                "minute_seconds": self.minute_seconds,
                "poll_seconds": self.poll_seconds,
                "max_seconds": self.max_seconds,
                "triggers": self.triggers,
                "min_live_samples": self.min_live_samples,
                "min_requests": self.min_requests,
                "min_shadow_samples": self.min_shadow_samples,
                "shadow_since": self.shadow_since,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        runner = self._shadow() if self.mode == "shadow" else self._canary()
        event = await runner
        event.setdefault("phase", self.phase)
        yield TriggerEvent(event)

    # --- shadow: wait the planned time and for enough mirrored samples -----------------------
    async def _shadow(self) -> dict[str, Any]:
        from llm_release.integrations.metrics import GatewaySampleSource

        source = GatewaySampleSource(self.samples_url)
        start = time.monotonic()
        cursor, count, failures = self.shadow_since, 0, 0
        while True:
            await asyncio.sleep(self.poll_seconds)
            elapsed = time.monotonic() - start
            try:
                new, cursor = await source.afetch(self.candidate_backend, "shadow", since=cursor)
                failures = 0
            except Exception as exc:  # the source is down: never pass on missing data
                failures += 1
                if failures >= UNREACHABLE_LIMIT_POLLS:
                    return {
                        "status": "failed",
                        "reason": f"sample source unreachable: {exc}",
                        "elapsed": elapsed,
                    }
                continue
            count += len(new)
            if elapsed >= self.dwell_seconds and count >= self.min_shadow_samples:
                return {"status": "done", "samples": count, "elapsed": elapsed}
            if elapsed >= self.max_seconds:
                return {
                    "status": "failed",
                    "reason": f"only {count} shadow samples (< {self.min_shadow_samples}) after {elapsed:.0f}s",
                    "elapsed": elapsed,
                }

    # --- canary: metrics, live quality, breaches ---------------------------------------------
    async def _canary(self) -> dict[str, Any]:
        from llm_release.decisions.breaches import MetricSample, classify_breaches
        from llm_release.integrations.metrics import GatewayMetricsSource, GatewaySampleSource, window_stats
        from llm_release.policy import Trigger

        triggers = [Trigger.model_validate(t) for t in self.triggers]
        metrics = GatewayMetricsSource(self.metrics_url)
        samples = GatewaySampleSource(self.samples_url)
        hour = 60 * self.minute_seconds
        quality = LiveQuality(hour_seconds=hour, min_per_sample=self.min_live_samples)
        baseline_quality = LiveQuality(hour_seconds=hour, min_per_sample=self.min_live_samples)
        first = prev = await metrics.ascrape()
        cursor = await samples.acursor_now(self.candidate_backend, "live")
        base_cursor = await samples.acursor_now(self.baseline_backend, "live")
        history: list[Any] = []
        holds: list[str] = []
        clean = 0.0
        failures = 0
        start = time.monotonic()
        last = start
        while True:
            await asyncio.sleep(self.poll_seconds)
            now = time.monotonic()
            try:
                cur = await metrics.ascrape()
                new, cursor = await samples.afetch(self.candidate_backend, "live", since=cursor)
                new_base, base_cursor = await samples.afetch(self.baseline_backend, "live", since=base_cursor)
                failures = 0
            except Exception as exc:
                failures += 1
                if failures >= UNREACHABLE_LIMIT_POLLS:
                    return self._end(
                        "failed", f"metrics source unreachable: {exc}", history, holds, now - start
                    )
                continue
            await asyncio.to_thread(quality.add, new, now)
            await asyncio.to_thread(baseline_quality.add, new_base, now)
            cand = window_stats(prev, cur, self.candidate_backend, "live")
            base = window_stats(first, cur, self.baseline_backend, "live")
            sample = MetricSample(
                ts=cand.end_ts,
                start_ts=cand.start_ts,
                metrics={**_window_metrics(cand), **quality.latest},
            )
            history.append(sample)
            verdict = classify_breaches(
                triggers,
                history,
                minute_seconds=self.minute_seconds,
                baseline={"escalation_rate": base.escalation_rate}
                if base.escalation_rate is not None
                else {},
                phase=self.phase,
            )
            if verdict.action == "rollback":
                hit = next(h for h in verdict.hits if _action_of(triggers, h.trigger_name) == "rollback")
                return self._end("rollback", hit, history, holds, now - start, verdict=verdict)
            if verdict.action == "ok":
                clean += now - last
            else:
                holds.append("; ".join(f"{h.trigger_name}: {h.detail}" for h in verdict.hits))
            last = now
            prev = cur
            phase_stats = window_stats(first, cur, self.candidate_backend, "live")
            enough = quality.total >= self.min_live_samples and phase_stats.requests >= self.min_requests
            if clean >= self.dwell_seconds and enough:
                return self._end(
                    "done", None, history, holds, now - start, phase=(phase_stats, quality, baseline_quality)
                )
            if now - start >= self.max_seconds:
                reason = holds[-1] if holds else (
                    f"too little evidence: {phase_stats.requests:g} requests (need {self.min_requests}), "
                    f"{quality.total} judged responses (need {self.min_live_samples})"
                )
                return self._end(
                    "failed", f"phase held past its limit: {reason}", history, holds, now - start
                )

    def _end(
        self,
        status: str,
        reason: Any,
        history: list[Any],
        holds: list[str],
        elapsed: float,
        verdict: Any = None,
        phase: Any = None,
    ) -> dict[str, Any]:
        from llm_release.operators.base import jsonable

        event: dict[str, Any] = {
            "status": status,
            "phase": self.phase,
            "elapsed": elapsed,
            "polls": len(history),
            "holds": holds[-5:],
        }
        if status == "rollback":
            event["trigger"] = reason.trigger_name
            event["hit"] = jsonable(reason)
            event["hits"] = jsonable(verdict.hits)
            event["reason"] = f"{reason.trigger_name}: {reason.detail}"
        elif reason is not None:
            event["reason"] = str(reason)
        if phase is not None:
            stats, quality, baseline_quality = phase
            event["phase_metrics"] = {
                **_window_metrics(stats),
                "scs": quality.phase_scs(),
                "hallucination_rate": quality.phase_hallucination_rate(),
                "judged_samples": quality.total,
                "baseline_scs": baseline_quality.phase_scs(),
                "baseline_judged_samples": baseline_quality.total,
            }
        if history:
            event["last_sample"] = jsonable(history[-1].metrics)
        if verdict is not None and getattr(verdict, "unmeasured", None):
            event["unmeasured_triggers"] = list(verdict.unmeasured)
        return jsonable(event)


def _action_of(triggers: list[Any], name: str) -> str:
    return next((t.action for t in triggers if t.name == name), "")


def _window_metrics(stats: Any) -> dict[str, float | None]:
    requests = stats.requests or 0
    return {
        "requests": float(requests),
        "errors": float(stats.errors or 0),
        "error_rate": stats.error_rate,
        "p50_ms": stats.p50_ms,
        "p99_ms": stats.p99_ms,
        "policy_violations": float(stats.policy_violations or 0),
        "policy_violation_rate": (stats.policy_violations / requests) if requests else None,
        "escalations": float(stats.escalations or 0),
        "escalation_rate": stats.escalation_rate,
    }


class LiveQuality:
    """Judged live answers of one version, as the spec's "hourly sample" of quality.

    Answers collect into a sample that closes once it spans one (scaled) hour *and* holds at least
    ``min_per_sample`` answers; SCS and hallucination rate are those of the latest closed sample. Each
    trigger evaluation so rests on fresh, large-enough evidence, instead of re-testing a sliding
    window of a handful of answers at every poll.
    """

    def __init__(self, hour_seconds: float, min_per_sample: int = 1) -> None:
        self.hour_seconds = hour_seconds
        self.min_per_sample = max(1, min_per_sample)
        self.scored: list[tuple[float, bool]] = []
        self._open: list[tuple[float, bool]] = []
        self._opened_at: float | None = None
        self._latest: dict[str, float | None] = {"scs": None, "hallucination_rate": None}
        self._judge: Any = None

    @property
    def total(self) -> int:
        return len(self.scored)

    def add(self, samples: list[dict[str, Any]], now: float) -> None:
        if self._opened_at is None:
            self._opened_at = now
        if samples and self._judge is None:
            from llm_release.suites.judge import ReferenceJudge
            from llm_release.suites.knowledge_base import KnowledgeBase

            self._judge = ReferenceJudge(KnowledgeBase.load())
        for s in samples:
            if s.get("response") is None:
                continue  # errors are counted by the metrics, not judged
            j = self._judge.judge(s["query"], s["response"])
            self._open.append((float(j.score), bool(j.hallucinated)))
        if now - self._opened_at >= self.hour_seconds and len(self._open) >= self.min_per_sample:
            self._latest = _quality(self._open)
            self.scored.extend(self._open)
            self._open, self._opened_at = [], now

    @property
    def latest(self) -> dict[str, float | None]:
        """SCS and hallucination rate of the latest closed hourly sample (None before the first)."""
        return dict(self._latest)

    def phase_scs(self) -> float | None:
        return _quality(self.scored + self._open)["scs"]

    def phase_hallucination_rate(self) -> float | None:
        return _quality(self.scored + self._open)["hallucination_rate"]


def _quality(scored: list[tuple[float, bool]]) -> dict[str, float | None]:
    if not scored:
        return {"scs": None, "hallucination_rate": None}
    return {"scs": sum(x[0] for x in scored) / len(scored),
            "hallucination_rate": sum(x[1] for x in scored) / len(scored)}
