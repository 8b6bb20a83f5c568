"""Deferrable dwell: hold a rollout phase (or the shadow phase) in the triggerer, watching the live traffic.

The trigger only fetches and persists. Every poll it

1. scrapes the metrics source and turns the window since the previous scrape into counts for the
   candidate and for the baseline (n-1) version (a counter family absent from the scrape is ``None``);
2. fetches the new live answers of both versions and judges them (errors are not answers);
3. hands that :class:`~llm_release.decisions.dwell.DwellObservation` to
   :func:`~llm_release.decisions.dwell.dwell_step` with the current state, and keeps the state it returns.

``dwell_step`` decides everything (clock, hold, pause, rollback, page, done, failed). When it ends the
phase the trigger fires one event carrying the final state (``dwell_state``) so the sensor can resume
from it after a person answers a page, or hand it to the next phase. In shadow mode the observation
is the number of answered mirrored samples.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

HARD_LIMIT_SLACK_SECONDS = 60.0
"""A liveness guard on top of ``dwell_step``'s own limit, in case observations stop making progress."""


class RolloutDwellTrigger(BaseTrigger):
    """Watch one phase until :func:`dwell_step` ends it.

    :param dwell_policy: ``DwellPolicy`` as JSON (canary mode): the phase's triggers and evidence rules.
    :param state: ``DwellState`` as JSON to resume from (None: a fresh dwell of ``phase``).
    :param phase_start: the phase's first metrics snapshot (``MetricsSnapshot.to_dict``), so the phase's
        latency quantiles survive a resume; None: the first scrape of this run.
    :param shadow_since: shadow mode: the sample cursor where mirroring started.
    """

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
        dwell_policy: dict[str, Any] | None = None,
        state: dict[str, Any] | None = None,
        phase_start: dict[str, Any] | None = None,
        min_shadow_samples: int = 0,
        shadow_since: int = 0,
    ) -> None:
        super().__init__()
        if mode not in ("canary", "shadow"):
            raise ValueError(f"mode must be 'canary' or 'shadow', got {mode!r}")
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
        self.dwell_policy = dict(dwell_policy or {})
        self.state = state
        self.phase_start = phase_start
        self.min_shadow_samples = int(min_shadow_samples)
        self.shadow_since = int(shadow_since)
        self._judge: Any = None

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
                "dwell_policy": self.dwell_policy,
                "state": self.state,
                "phase_start": self.phase_start,
                "min_shadow_samples": self.min_shadow_samples,
                "shadow_since": self.shadow_since,
            },
        )

    def hard_limit_seconds(self) -> float:
        """Wall time after which the loop stops even if ``dwell_step`` has not ended the phase."""
        from llm_release.decisions.dwell import UNREACHABLE_LIMIT_POLLS, DwellState

        state = DwellState.model_validate(self.state) if self.state else None
        remaining = self.max_seconds + (state.extra_seconds - state.active_seconds if state else 0.0)
        outage = UNREACHABLE_LIMIT_POLLS * (self.poll_seconds + 30.0)  # failing polls take time too
        return max(0.0, remaining) + outage + HARD_LIMIT_SLACK_SECONDS

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event = await self.watch()
        yield TriggerEvent(event)

    # --- the loop: fetch, step, persist ---------------------------------------------------------
    async def watch(self, *, sources: tuple[Any, Any] | None = None, clock: Any = time.time) -> dict[str, Any]:
        """Poll until ``dwell_step`` ends the phase; returns the event (``sources``/``clock`` for tests)."""
        from llm_release.decisions.dwell import (
            ENDING_ACTIONS,
            DwellObservation,
            DwellPolicy,
            DwellState,
            dwell_step,
            start_dwell,
        )

        policy = DwellPolicy.model_validate(self.dwell_policy)
        state = DwellState.model_validate(self.state) if self.state else start_dwell(self.mode, self.phase)  # type: ignore[arg-type]
        metrics, samples = sources or self._sources()
        fetch = self._fetch_shadow if self.mode == "shadow" else self._fetch_canary
        context: dict[str, Any] = {"metrics": metrics, "samples": samples, "clock": clock}
        started = time.monotonic()
        hard_limit = self.hard_limit_seconds()
        if self.mode == "shadow":
            context["last_ts"] = clock()  # the shadow clock runs from the trigger's start
        else:
            # a failure here is retried by the first poll, which reports it to dwell_step
            with contextlib.suppress(Exception):
                await self._open_window(context)
        while True:
            await asyncio.sleep(self.poll_seconds)
            observation: DwellObservation = await fetch(context)
            state, verdict = dwell_step(
                state,
                observation,
                policy,
                dwell_seconds=self.dwell_seconds,
                max_seconds=self.max_seconds,
                minute_seconds=self.minute_seconds,
                min_shadow_samples=self.min_shadow_samples,
            )
            if verdict.action in ENDING_ACTIONS:
                return self._event(state, verdict, context)
            if time.monotonic() - started > hard_limit:
                return self._event(state, verdict, context, stalled=time.monotonic() - started)

    def _sources(self) -> tuple[Any, Any]:
        from llm_release.integrations.metrics import GatewayMetricsSource, GatewaySampleSource

        return GatewayMetricsSource(self.metrics_url), GatewaySampleSource(self.samples_url)

    async def _fetch_shadow(self, context: dict[str, Any]) -> Any:
        from llm_release.decisions.dwell import DwellObservation

        source = context["samples"]
        context.setdefault("cursor", self.shadow_since)
        now = context["clock"]()
        start = context.get("last_ts", now)
        try:
            new, context["cursor"] = await source.afetch(self.candidate_backend, "shadow", since=context["cursor"])
        except Exception as exc:  # the source is down: dwell_step counts the failures
            return DwellObservation(ts=now, error=f"{type(exc).__name__}: {exc}")
        context["last_ts"] = now
        answered = sum(1 for s in new if s.get("response") is not None)
        return DwellObservation(ts=now, start_ts=start, answered=answered)

    async def _fetch_canary(self, context: dict[str, Any]) -> Any:
        from llm_release.decisions.dwell import DwellObservation
        from llm_release.integrations.metrics import window_stats

        metrics, samples = context["metrics"], context["samples"]
        try:
            if "prev" not in context:
                await self._open_window(context)
            prev = context["prev"]
            cur = await metrics.ascrape()
            new, cursor = await samples.afetch(self.candidate_backend, "live", since=context["cursor"])
            new_base, base_cursor = await samples.afetch(
                self.baseline_backend, "live", since=context["base_cursor"]
            )
            judged = await asyncio.to_thread(self._judge_all, new)
            judged_base = await asyncio.to_thread(self._judge_all, new_base)
            cand = window_stats(prev, cur, self.candidate_backend, "live")
            base = window_stats(prev, cur, self.baseline_backend, "live")
            phase = window_stats(context["phase_start"], cur, self.candidate_backend, "live")
        except Exception as exc:  # unreachable, unparsable or unjudgeable: dwell_step counts the failures
            return DwellObservation(ts=context["clock"](), error=f"{type(exc).__name__}: {exc}")
        context.update(prev=cur, cursor=cursor, base_cursor=base_cursor)
        return DwellObservation(
            ts=cur.ts,
            start_ts=prev.ts,
            candidate=window_counts(cand),
            baseline=window_counts(base),
            candidate_judged=judged,
            baseline_judged=judged_base,
            candidate_phase_p50_ms=phase.p50_ms,
            candidate_phase_p99_ms=phase.p99_ms,
        )

    async def _open_window(self, context: dict[str, Any]) -> None:
        """This run's first scrape and sample cursors: the first window starts here."""
        from llm_release.integrations.metrics import MetricsSnapshot

        metrics, samples = context["metrics"], context["samples"]
        prev = await metrics.ascrape()
        cursor = await samples.acursor_now(self.candidate_backend, "live")
        base_cursor = await samples.acursor_now(self.baseline_backend, "live")
        start = MetricsSnapshot.from_dict(self.phase_start) if self.phase_start else prev
        context.update(prev=prev, cursor=cursor, base_cursor=base_cursor, phase_start=start)

    def _judge_all(self, samples: Sequence[dict[str, Any]]) -> list[Any]:
        if not any(s.get("response") is not None for s in samples):
            return []
        if self._judge is None:
            from llm_release.suites.judges import offline_judge

            self._judge = offline_judge()
        return judged_answers(self._judge, samples)

    # --- persisting: the event the sensor reads ---------------------------------------------------
    def _event(self, state: Any, verdict: Any, context: dict[str, Any], stalled: float | None = None) -> dict[str, Any]:
        from llm_release.decisions.dwell import phase_metrics
        from llm_release.operators.base import jsonable

        policy_confidence = (self.dwell_policy.get("evidence") or {}).get("confidence")
        status = verdict.action
        event: dict[str, Any] = {
            "status": status,
            "phase": self.phase,
            "mode": self.mode,
            "elapsed": state.active_seconds,
            "clean_seconds": state.clean_seconds,
            "polls": state.polls,
            "holds": [
                "; ".join(v.reasons) for v in state.last_verdicts if v.action in ("hold", "pause") and v.reasons
            ][-5:],
            "reasons": list(verdict.reasons),
            "hits": jsonable(verdict.hits),
            "inconclusive": jsonable(verdict.inconclusive),
            "unmeasured_triggers": [u.name for u in verdict.unmeasured],
            "unmeasured": jsonable(verdict.unmeasured),
            "dwell_state": state.model_dump(mode="json", exclude_defaults=True),
        }
        if stalled is not None:
            event["status"] = "failed"
            event["reason"] = (
                f"the dwell made no decision within {stalled:.0f}s (last verdict: {verdict.action}: "
                f"{'; '.join(verdict.reasons[:3])})"
            )
        elif verdict.trigger is not None:
            event["trigger"] = verdict.trigger
            event["reason"] = f"{verdict.trigger}: " + "; ".join(verdict.reasons[:3])
        else:
            event["reason"] = "; ".join(verdict.reasons[:5])
        if status == "rollback":
            hit = next(h for h in verdict.hits if h.trigger_name == verdict.trigger)
            event["hit"] = jsonable(hit)
            event["reason"] = f"{hit.trigger_name}: {hit.detail}"
        if verdict.page is not None:
            event["page"] = jsonable(verdict.page)
        if self.mode == "shadow":
            event["samples"] = state.answered
        else:
            event["phase_metrics"] = jsonable(phase_metrics(state, policy_confidence))
            if state.windows:
                event["last_sample"] = jsonable(state.windows[-1].counts.metrics())
            start = context.get("phase_start")
            if start is not None:
                event["phase_start"] = start.to_dict()
        return jsonable(event)


def window_counts(stats: Any) -> Any:
    """A ``WindowStats`` as the dwell's ``WindowCounts`` (None stays None: unmeasured)."""
    from llm_release.decisions.dwell import WindowCounts

    return WindowCounts(
        requests=stats.requests,
        errors=stats.errors,
        p50_ms=stats.p50_ms,
        p99_ms=stats.p99_ms,
        policy_violations=stats.policy_violations,
        escalations=stats.escalations,
    )


def judged_answers(judge: Any, samples: Sequence[dict[str, Any]]) -> list[Any]:
    """Judge each answered sample; errors (no response) are not answers and are skipped."""
    import math

    from llm_release.decisions.dwell import JudgedAnswer
    from llm_release.suites.judging import judge_batch

    answered = [s for s in samples if s.get("response") is not None]
    # one embedding batch for the whole window
    verdicts = judge_batch(judge, [{"query": s["query"], "response": s["response"]} for s in answered])
    out = []
    for sample, verdict in zip(answered, verdicts, strict=True):
        score = float(verdict.score)
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise ValueError(f"the judge scored sample {sample.get('seq')!r} {score!r}, outside 0..1")
        out.append(JudgedAnswer(score=score, hallucinated=bool(verdict.hallucinated)))
    return out
