"""The dwell of a rollout phase as one pure step: ``dwell_step(state, observation, policy) -> (state, verdict)``.

The triggerer only fetches (a metrics scrape, new live answers and their judgements) and persists the
state this returns; every rule of the dwell lives here (DESIGN: "Where a rule lives"):

- **Clock.** Only clean time counts toward the dwell (spec: dwell times are minimums). The clock
  advances over an observed window only while every *rollback* trigger is measured and no trigger is
  breaching (pause, hold) or inconclusive (a rate whose interval straddles its line: more traffic is
  needed, so the phase neither advances nor rolls back). Unmeasured pause and page triggers are
  reported but do not stop the clock. Time spent waiting for a person or for an unreachable metrics
  source is never dwell time.
- **No data is no data.** A metric family absent from a scrape arrives as ``None`` and is unmeasured,
  never 0, so the zero-tolerance policy-violation rollback cannot be silenced by a missing counter.
- **Evidence.** Rate triggers compare the Wilson interval of the rate at
  ``policy.rollout.evidence.confidence`` with their line (``decisions.breaches``). Live quality comes
  in hourly samples of at least ``evidence.min_judged_per_sample`` judged answers; a sample older than
  ``evidence.max_sample_age_minutes`` is unmeasured.
- **Minimums.** A phase with fewer requests than its rate triggers need (``min_count``) or fewer judged
  answers than ``evidence.min_judged_per_sample`` cannot complete.
- **Rollback** triggers end the phase at once. **Page** triggers (``manual_rollback_triggers``) stop the
  clock and ask a person (action ``page``); once the person chose "Continue" the page is acknowledged
  (:func:`acknowledge_page`) and the same trigger does not page again in this phase unless it clears
  (measured clean) and fires again.
- **Limit.** A phase still held after ``max_seconds`` of observed time fails when a pause or hold
  trigger holds it (fail closed: the run rolls back); when only evidence is missing (inconclusive or
  unmeasured) the verdict cannot be reached and goes to a person (page ``evidence_inconclusive``),
  never to "pass". "Continue" on that page grants another ``max_seconds``.
- **Baseline.** Triggers relative to the baseline (n-1) use the baseline's last measured window, kept
  in the state; :func:`start_dwell` carries it (and the candidate's live-quality samples, which expire
  by age) into the next phase, so the 100 % phase, where n-1 has no traffic, still has a baseline.
- **Shadow** mode counts answered mirrored samples (errors are not samples) over the planned time.

No I/O and no Airflow import. Times are seconds on one clock (the trigger uses the scrape's wall-clock
time); ``minute_seconds`` is one policy minute (60, or less in a time-scaled sandbox run).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_release.decisions.breaches import (
    BreachVerdict,
    MetricSample,
    RateEvidence,
    TriggerHit,
    classify_breaches,
    wilson_interval,
)
from llm_release.decisions.monitoring import MonitoringAlert, monitoring_report
from llm_release.policy import LiveEvidencePolicy, MonitoringPolicy, ReleasePolicy, Trigger

DwellMode = Literal["canary", "shadow"]
DwellAction = Literal["advance", "hold", "pause", "rollback", "page", "done", "failed"]
ENDING_ACTIONS = frozenset({"rollback", "page", "done", "failed"})
"""Actions after which the trigger stops and hands the state back to the sensor."""

UNREACHABLE_LIMIT_POLLS = 10
"""Consecutive failed reads of the metrics/samples source after which the phase fails (fail closed)."""
MAX_WINDOWS = 240
"""Observed windows kept per phase; beyond it the two oldest merge (their counts add up, quantiles drop)."""
MAX_CLOSED_SAMPLES = 12
"""Closed live-quality samples kept (12 hourly samples; the longest quality trigger spans 2 hours)."""
MAX_RECORDS = 20
"""Pages and verdict summaries kept in the state."""
INCONCLUSIVE_PAGE = "evidence_inconclusive"
"""The page raised when a phase reaches its limit without the evidence to decide."""
QUALITY_METRICS = frozenset({"scs", "hallucination_rate", "judged"})
"""Metrics measured by the hourly live-quality samples (the other triggers read the traffic windows)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# --- inputs ------------------------------------------------------------------------------------
class WindowCounts(_Frozen):
    """What one version served between two scrapes. Every field is ``None`` when unmeasured (the
    metric family was absent from a scrape), which is never the same as 0."""

    requests: int | None = Field(default=None, ge=0)
    errors: int | None = Field(default=None, ge=0)
    p50_ms: float | None = Field(default=None, ge=0)
    p99_ms: float | None = Field(default=None, ge=0)
    policy_violations: int | None = Field(default=None, ge=0)
    escalations: int | None = Field(default=None, ge=0)
    novel_adversarial_patterns: int | None = Field(default=None, ge=0)
    """No detector feeds this yet: the triggers on it stay unmeasured (reported, see the report)."""

    def metrics(self) -> dict[str, float | None]:
        """Counts, quantiles and the rates derived from counts (a rate needs both counts and a request)."""

        def rate(count: int | None) -> float | None:
            if count is None or self.requests is None or self.requests <= 0:
                return None
            return count / self.requests

        return {
            "requests": _f(self.requests),
            "errors": _f(self.errors),
            "error_rate": rate(self.errors),
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "policy_violations": _f(self.policy_violations),
            "policy_violation_rate": rate(self.policy_violations),
            "escalations": _f(self.escalations),
            "escalation_rate": rate(self.escalations),
            "novel_adversarial_patterns": _f(self.novel_adversarial_patterns),
        }


class JudgedAnswer(_Frozen):
    """One live answer as the judge scored it (errors are never judged: they are not answers)."""

    score: float = Field(ge=0, le=1)
    hallucinated: bool


class DwellObservation(_Frozen):
    """One poll of the outside world, as the trigger fetched it."""

    ts: float
    """End of the observed window (seconds)."""
    start_ts: float | None = None
    """Start of the window (the previous scrape); None: the previous observation's end."""
    candidate: WindowCounts = WindowCounts()
    baseline: WindowCounts = WindowCounts()
    candidate_judged: list[JudgedAnswer] = []
    """Newly judged live answers of the candidate."""
    baseline_judged: list[JudgedAnswer] = []
    """Newly judged live answers of the baseline (n-1)."""
    candidate_phase_p50_ms: float | None = Field(default=None, ge=0)
    candidate_phase_p99_ms: float | None = Field(default=None, ge=0)
    """Latency quantiles of the candidate over the phase so far (from the phase's first scrape)."""
    answered: int = Field(default=0, ge=0)
    """Shadow mode: newly answered mirrored samples (errors are not samples)."""
    error: str | None = None
    """The source could not be read: nothing else in this observation is measured."""


class DwellPolicy(_Frozen):
    """The part of the release policy a dwell applies (a projection: the numbers live in the policy)."""

    pause_triggers: list[Trigger] = []
    rollback_triggers: list[Trigger] = []
    manual_rollback_triggers: list[Trigger] = []
    evidence: LiveEvidencePolicy = LiveEvidencePolicy()
    monitoring: MonitoringPolicy | None = None
    """Section 6's alert and critical lines: who hears about a metric, not what the rollout does."""

    @classmethod
    def of(cls, policy: ReleasePolicy | DwellPolicy) -> DwellPolicy:
        if isinstance(policy, DwellPolicy):
            return policy
        return cls(
            pause_triggers=policy.pause_triggers,
            rollback_triggers=policy.rollback_triggers,
            manual_rollback_triggers=policy.manual_rollback_triggers,
            evidence=policy.rollout.evidence,
            monitoring=policy.monitoring,
        )

    def triggers(self, phase: str | None = None) -> list[Trigger]:
        every = [*self.pause_triggers, *self.rollback_triggers, *self.manual_rollback_triggers]
        return [t for t in every if phase is None or t.applies_to_phases is None or phase in t.applies_to_phases]

    @property
    def min_requests(self) -> int:
        """Fewest requests a phase must see: the largest ``min_count`` of its rate triggers."""
        return max((t.min_count or 1 for t in self.triggers() if t.ratio_of is not None), default=1)


# --- state -------------------------------------------------------------------------------------
class Window(_Frozen):
    start_ts: float
    end_ts: float
    counts: WindowCounts
    merged: int = 1
    """How many observed windows this one sums (merged windows keep counts, not quantiles)."""


class QualitySample(_Frozen):
    """Judged live answers collected into one (hourly) sample: aggregates only."""

    opened_ts: float
    closed_ts: float | None = None
    judged: int = Field(default=0, ge=0)
    score_sum: float = Field(default=0.0, ge=0)
    hallucinated: int = Field(default=0, ge=0)

    @property
    def scs(self) -> float | None:
        return self.score_sum / self.judged if self.judged else None

    @property
    def hallucination_rate(self) -> float | None:
        return self.hallucinated / self.judged if self.judged else None


class LiveQualityState(_Frozen):
    """The spec's hourly live-quality sample of one version.

    Answers collect into an open sample that closes once it spans one (scaled) hour *and* holds at
    least the minimum number of answers; SCS and hallucination rate are those of the latest closed
    sample, so each evaluation rests on fresh, large-enough evidence instead of re-testing a sliding
    window of a handful of answers at every poll. ``phase_*`` count every answer of the current phase.
    """

    open: QualitySample | None = None
    closed: list[QualitySample] = []
    phase_judged: int = 0
    phase_score_sum: float = 0.0
    phase_hallucinated: int = 0

    @property
    def latest(self) -> dict[str, float | None]:
        """SCS and hallucination rate of the latest closed sample (None before the first)."""
        last = self.closed[-1] if self.closed else None
        return {
            "scs": last.scs if last else None,
            "hallucination_rate": last.hallucination_rate if last else None,
        }

    @property
    def phase_scs(self) -> float | None:
        return self.phase_score_sum / self.phase_judged if self.phase_judged else None

    @property
    def phase_hallucination_rate(self) -> float | None:
        return self.phase_hallucinated / self.phase_judged if self.phase_judged else None

    def samples(self) -> list[MetricSample]:
        """Closed samples as point samples at their closing time, for the quality triggers."""
        return [
            MetricSample(
                ts=s.closed_ts if s.closed_ts is not None else s.opened_ts,
                metrics={
                    "scs": s.scs,
                    "hallucination_rate": s.hallucination_rate,
                    "judged": float(s.judged),
                    "hallucinated": float(s.hallucinated),
                },
            )
            for s in self.closed
        ]


def add_judged(
    quality: LiveQualityState,
    answers: Sequence[JudgedAnswer],
    now: float,
    hour_seconds: float,
    min_per_sample: int,
) -> LiveQualityState:
    """Add newly judged answers at ``now``; close the open sample when it spans an hour and is big enough."""
    opened = quality.open or QualitySample(opened_ts=now)
    score = math.fsum(a.score for a in answers)
    wrong = sum(a.hallucinated for a in answers)
    opened = opened.model_copy(
        update={
            "judged": opened.judged + len(answers),
            "score_sum": opened.score_sum + score,
            "hallucinated": opened.hallucinated + wrong,
        }
    )
    closed = list(quality.closed)
    if now - opened.opened_ts >= hour_seconds and opened.judged >= max(1, min_per_sample):
        closed = [*closed, opened.model_copy(update={"closed_ts": now})][-MAX_CLOSED_SAMPLES:]
        opened = QualitySample(opened_ts=now)
    return quality.model_copy(
        update={
            "open": opened,
            "closed": closed,
            "phase_judged": quality.phase_judged + len(answers),
            "phase_score_sum": quality.phase_score_sum + score,
            "phase_hallucinated": quality.phase_hallucinated + wrong,
        }
    )


class BaselineWindow(_Frozen):
    """The baseline's (n-1) measurement of one metric over a window of a phase."""

    metric: str
    phase: str
    start_ts: float
    end_ts: float
    numerator: float | None = None
    denominator: float | None = None
    value: float | None = None
    """Non-rate metrics: the last measured value."""

    def evidence(self) -> float | RateEvidence | None:
        if self.numerator is not None and self.denominator is not None:
            return RateEvidence(numerator=self.numerator, denominator=self.denominator)
        return self.value


class PageRecord(_Frozen):
    trigger_name: str
    ts: float
    detail: str
    answer: str | None = None
    responder: str | None = None


class VerdictSummary(_Frozen):
    ts: float
    action: DwellAction
    reasons: list[str]


class DwellState(_Frozen):
    """Everything a dwell remembers between polls (JSON-serialisable, bounded)."""

    mode: DwellMode
    phase: str
    started_ts: float | None = None
    last_ts: float | None = None
    polls: int = 0
    failures: int = 0
    """Consecutive polls that could not read the source."""
    active_seconds: float = 0.0
    """Observed time in this phase (waiting for a person or an unreachable source excluded)."""
    clean_seconds: float = 0.0
    """Dwell clock: observed time during which the phase was clean and fully measured."""
    extra_seconds: float = 0.0
    """Extra observed time granted by a person ("Continue" on an inconclusive page)."""
    windows: list[Window] = []
    baseline_current: dict[str, BaselineWindow] = {}
    """This phase's baseline accumulation per metric."""
    baseline: dict[str, BaselineWindow] = {}
    """The baseline's last measured window per metric (this phase's, or carried from an earlier one)."""
    quality: LiveQualityState = LiveQualityState()
    baseline_quality: LiveQualityState = LiveQualityState()
    phase_p50_ms: float | None = None
    phase_p99_ms: float | None = None
    answered: int = 0
    """Shadow mode: answered mirrored samples so far."""
    acknowledged: list[str] = []
    """Page triggers a person chose to continue past; they page again only after clearing."""
    pages: list[PageRecord] = []
    """The latest pages (bounded); ``pages_opened`` counts all of them."""
    pages_opened: int = 0
    last_verdicts: list[VerdictSummary] = []
    alerts: list[MonitoringAlert] = []
    """Monitoring lines crossed in this phase, the first time per metric and level (bounded)."""

    @property
    def requests(self) -> int:
        return sum(w.counts.requests or 0 for w in self.windows)


class UnmeasuredTrigger(_Frozen):
    name: str
    action: str
    reason: str


class PageRequest(_Frozen):
    """What a person is asked to decide, with the evidence."""

    trigger_name: str
    description: str = ""
    metric: str | None = None
    observed: float | None = None
    threshold: float | None = None
    interval: tuple[float, float] | None = None
    sample_size: float | None = None
    window_minutes: float | None = None
    detail: str


class DwellVerdict(_Frozen):
    action: DwellAction
    clock_advanced: bool
    hits: list[TriggerHit] = []
    inconclusive: list[TriggerHit] = []
    unmeasured: list[UnmeasuredTrigger] = []
    trigger: str | None = None
    """The trigger that ended the phase (rollback) or asks a person (page)."""
    page: PageRequest | None = None
    reasons: list[str] = []
    alerts: list[MonitoringAlert] = []
    """Monitoring lines first crossed at this poll (notify: alert -> release channel, critical -> roles)."""


# --- the step ----------------------------------------------------------------------------------
def start_dwell(mode: DwellMode, phase: str, previous: DwellState | None = None) -> DwellState:
    """A fresh dwell for ``phase``; from ``previous`` (the last phase's final state) it keeps the
    baseline's last measured windows and the candidate's live-quality samples (which expire by age)."""
    state = DwellState(mode=mode, phase=phase)
    if previous is None or mode != "canary":
        return state
    quality = previous.quality.model_copy(
        update={"phase_judged": 0, "phase_score_sum": 0.0, "phase_hallucinated": 0}
    )
    return state.model_copy(update={"baseline": dict(previous.baseline), "quality": quality})


def acknowledge_page(
    state: DwellState, trigger_name: str, *, max_seconds: float, responder: str | None = None
) -> DwellState:
    """A person chose "Continue" on the page of ``trigger_name``: resume the dwell from ``state``.

    A trigger's page is acknowledged for the rest of the phase, until the trigger clears. On the
    inconclusive-evidence page the person grants another ``max_seconds`` of observation instead.
    """
    pages = list(state.pages)
    for index in range(len(pages) - 1, -1, -1):
        if pages[index].trigger_name == trigger_name and pages[index].answer is None:
            pages[index] = pages[index].model_copy(update={"answer": "Continue", "responder": responder})
            break
    update: dict[str, object] = {"pages": pages}
    if trigger_name == INCONCLUSIVE_PAGE:
        update["extra_seconds"] = state.extra_seconds + max_seconds
    elif trigger_name not in state.acknowledged:
        update["acknowledged"] = [*state.acknowledged, trigger_name]
    return state.model_copy(update=update)


def dwell_step(
    state: DwellState,
    observation: DwellObservation,
    policy: ReleasePolicy | DwellPolicy,
    *,
    dwell_seconds: float,
    max_seconds: float,
    minute_seconds: float,
    min_shadow_samples: int = 0,
) -> tuple[DwellState, DwellVerdict]:
    """Apply one observation; see the module docstring for the rules."""
    for name, value in (("dwell_seconds", dwell_seconds), ("max_seconds", max_seconds),
                        ("minute_seconds", minute_seconds)):
        if not math.isfinite(value) or value < 0 or (name == "minute_seconds" and value == 0):
            raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    rules = DwellPolicy.of(policy)
    obs = observation
    if obs.error is not None:
        return _unreachable(state, obs)
    start = obs.start_ts if obs.start_ts is not None else (state.last_ts if state.last_ts is not None else obs.ts)
    if state.last_ts is not None:
        start = max(start, state.last_ts)
    if start > obs.ts:
        raise ValueError(f"observation window ends before it starts: start {start!r} > ts {obs.ts!r}")
    seconds = obs.ts - start
    base = state.model_copy(
        update={
            "started_ts": state.started_ts if state.started_ts is not None else start,
            "last_ts": obs.ts,
            "polls": state.polls + 1,
            "failures": 0,
            "active_seconds": state.active_seconds + seconds,
        }
    )
    limit = max_seconds + state.extra_seconds
    if state.mode == "shadow":
        return _shadow(base, obs, seconds, dwell_seconds, limit, min_shadow_samples)
    return _canary(base, obs, rules, start, seconds, dwell_seconds, limit, minute_seconds)


def _unreachable(state: DwellState, obs: DwellObservation) -> tuple[DwellState, DwellVerdict]:
    failures = state.failures + 1
    if failures >= UNREACHABLE_LIMIT_POLLS:
        action: DwellAction = "failed"
        reason = f"source unreachable for {failures} polls in a row: {obs.error}"
    else:
        action = "hold"
        reason = f"source unreachable ({failures}/{UNREACHABLE_LIMIT_POLLS}): {obs.error}"
    verdict = DwellVerdict(action=action, clock_advanced=False, reasons=[reason])
    new = state.model_copy(update={"failures": failures, "polls": state.polls + 1})
    return _remember(new, obs.ts, verdict), verdict


def _shadow(
    state: DwellState, obs: DwellObservation, seconds: float, dwell: float, limit: float, minimum: int
) -> tuple[DwellState, DwellVerdict]:
    answered = state.answered + obs.answered
    clean = state.clean_seconds + seconds
    state = state.model_copy(update={"answered": answered, "clean_seconds": clean})
    if clean >= dwell and answered >= minimum:
        verdict = DwellVerdict(
            action="done", clock_advanced=seconds > 0, reasons=[f"{answered} answered shadow samples"]
        )
    elif state.active_seconds >= limit:
        verdict = DwellVerdict(
            action="failed",
            clock_advanced=seconds > 0,
            reasons=[f"only {answered} answered shadow samples (< {minimum}) after {state.active_seconds:.0f}s"],
        )
    else:
        verdict = DwellVerdict(
            action="advance",
            clock_advanced=seconds > 0,
            reasons=[f"{answered}/{minimum} answered shadow samples, {clean:.1f}/{dwell:.1f}s"],
        )
    return _remember(state, obs.ts, verdict), verdict


def _canary(
    state: DwellState,
    obs: DwellObservation,
    rules: DwellPolicy,
    start: float,
    seconds: float,
    dwell: float,
    limit: float,
    m: float,
) -> tuple[DwellState, DwellVerdict]:
    evidence = rules.evidence
    triggers = rules.triggers(state.phase)
    windows = _append_window(state.windows, Window(start_ts=start, end_ts=obs.ts, counts=obs.candidate))
    current, baseline = _update_baseline(state, obs, triggers, start)
    hour = 60.0 * m
    quality = add_judged(state.quality, obs.candidate_judged, obs.ts, hour, evidence.min_judged_per_sample)
    base_quality = add_judged(
        state.baseline_quality, obs.baseline_judged, obs.ts, hour, evidence.min_judged_per_sample
    )
    state = state.model_copy(
        update={
            "windows": windows,
            "baseline_current": current,
            "baseline": baseline,
            "quality": quality,
            "baseline_quality": base_quality,
            "phase_p50_ms": obs.candidate_phase_p50_ms
            if obs.candidate_phase_p50_ms is not None
            else state.phase_p50_ms,
            "phase_p99_ms": obs.candidate_phase_p99_ms
            if obs.candidate_phase_p99_ms is not None
            else state.phase_p99_ms,
        }
    )
    verdict = _classify(state, triggers, m, evidence, obs.ts)
    action_of = {t.name: t.action for t in triggers}
    description_of = {t.name: t.description for t in triggers}

    acknowledged = [name for name in state.acknowledged if name not in verdict.clean]
    rollback = [h for h in verdict.hits if h.action == "rollback"]
    pages = [h for h in verdict.hits if h.action == "page" and h.trigger_name not in acknowledged]
    pauses = [h for h in verdict.hits if h.action == "pause"]
    holds = [h for h in verdict.hits if h.action == "hold"]
    unmeasured = [
        UnmeasuredTrigger(name=n, action=action_of.get(n, ""), reason=verdict.reasons.get(n, "unmeasured"))
        for n in verdict.unmeasured
    ]
    blind = [u for u in unmeasured if u.action == "rollback"]

    reasons: list[str] = []
    reasons += [f"{h.trigger_name} ({h.action}): {h.detail}" for h in [*rollback, *pages, *pauses, *holds]]
    reasons += [f"{h.trigger_name} inconclusive, gathering more traffic: {h.detail}" for h in verdict.inconclusive]
    reasons += [f"{u.name} (rollback trigger) unmeasured: {u.reason}" for u in blind]
    reasons += [
        f"{h.trigger_name} still firing, page acknowledged: {h.detail}"
        for h in verdict.hits
        if h.action == "page" and h.trigger_name in acknowledged
    ]
    blocked = bool(pages or pauses or holds or verdict.inconclusive or blind)
    advanced = not blocked and not rollback and seconds > 0
    clean = state.clean_seconds + (seconds if advanced else 0.0)
    state = state.model_copy(update={"clean_seconds": clean, "acknowledged": acknowledged})

    shortfalls = _shortfalls(state, rules)
    state, alerts = _monitor(state, rules)
    common = {
        "alerts": alerts,
        "clock_advanced": advanced,
        "hits": verdict.hits,
        "inconclusive": verdict.inconclusive,
        "unmeasured": unmeasured,
    }
    if rollback:
        hit = rollback[0]
        result = DwellVerdict(action="rollback", trigger=hit.trigger_name, reasons=reasons, **common)
    elif pages:
        hit = pages[0]
        page = _page_of(hit, description_of.get(hit.trigger_name, ""))
        result = DwellVerdict(action="page", trigger=hit.trigger_name, page=page, reasons=reasons, **common)
        state = _record_page(state, page, obs.ts)
    elif not blocked and clean >= dwell and not shortfalls:
        reasons.append(f"clean for {clean:.1f}s (>= {dwell:.1f}s) with enough evidence")
        result = DwellVerdict(action="done", reasons=reasons, **common)
    elif state.active_seconds >= limit:
        if pauses or holds:
            reasons.insert(0, f"phase held past its limit ({state.active_seconds:.0f}s >= {limit:.0f}s)")
            result = DwellVerdict(action="failed", reasons=reasons, **common)
        else:
            missing = reasons + shortfalls
            if clean < dwell:
                missing.append(f"dwell clock at {clean:.1f}s of {dwell:.1f}s")
            detail = "; ".join(missing) or "the dwell could not be completed"
            page = PageRequest(
                trigger_name=INCONCLUSIVE_PAGE,
                description=(
                    f"After {state.active_seconds:.0f}s the evidence neither clears nor condemns "
                    f"phase {state.phase}: a person decides (inconclusive is never a pass)."
                ),
                detail=detail,
            )
            result = DwellVerdict(
                action="page", trigger=INCONCLUSIVE_PAGE, page=page, reasons=[*missing], **common
            )
            state = _record_page(state, page, obs.ts)
    else:
        if not blocked and clean >= dwell:
            reasons += shortfalls
        elif advanced:
            reasons.append(f"clean {clean:.1f}/{dwell:.1f}s")
        action: DwellAction = "advance" if advanced else "pause" if pauses else "hold"
        result = DwellVerdict(action=action, reasons=reasons, **common)
    return _remember(state, obs.ts, result), result


def _monitor(state: DwellState, rules: DwellPolicy) -> tuple[DwellState, list[MonitoringAlert]]:
    """Section 6 lines on the phase's evidence so far; new crossings are returned and remembered.

    Rates computed from counts are compared by the bound of their Wilson interval nearest the healthy
    side, so a handful of requests cannot raise an alert; the hourly quality sample by its value.
    """
    if rules.monitoring is None:
        return state, []
    metrics = phase_metrics(state, rules.evidence.confidence)
    observed: dict[str, object] = {
        "scs": state.quality.latest["scs"],
        "hallucination_rate": state.quality.latest["hallucination_rate"],
        "p50_ms": metrics["p50_ms"],
        "p99_ms": metrics["p99_ms"],
        "policy_violation_rate": metrics["policy_violation_rate"],
    }
    for name in ("error_rate", "escalation_rate"):
        interval = metrics.get(f"{name}_interval")
        observed[name] = interval[0] if isinstance(interval, list) else None
    baseline = {"escalation_rate": metrics["baseline_escalation_rate"]}
    report = monitoring_report(rules.monitoring, observed, baseline)
    seen = {(a.metric, a.level) for a in state.alerts}
    new = [a for a in report.alerts if (a.metric, a.level) not in seen]
    if not new:
        return state, []
    return state.model_copy(update={"alerts": [*state.alerts, *new][-MAX_RECORDS:]}), new


def _append_window(windows: Sequence[Window], new: Window) -> list[Window]:
    out = [*windows, new]
    while len(out) > MAX_WINDOWS:
        first, second = out[0], out[1]
        out[:2] = [
            Window(
                start_ts=first.start_ts,
                end_ts=second.end_ts,
                counts=WindowCounts(
                    requests=_add(first.counts.requests, second.counts.requests),
                    errors=_add(first.counts.errors, second.counts.errors),
                    policy_violations=_add(first.counts.policy_violations, second.counts.policy_violations),
                    escalations=_add(first.counts.escalations, second.counts.escalations),
                    novel_adversarial_patterns=_add(
                        first.counts.novel_adversarial_patterns, second.counts.novel_adversarial_patterns
                    ),
                ),
                merged=first.merged + second.merged,
            )
        ]
    return out


def _update_baseline(
    state: DwellState, obs: DwellObservation, triggers: Sequence[Trigger], start: float
) -> tuple[dict[str, BaselineWindow], dict[str, BaselineWindow]]:
    """Accumulate this phase's baseline; it replaces the carried one once it rests on enough events."""
    current = dict(state.baseline_current)
    baseline = dict(state.baseline)
    counts = obs.baseline.metrics()
    needs: dict[str, tuple[Trigger, int]] = {}  # metric -> (a trigger reading it, fewest events)
    for trigger in triggers:
        if trigger.relative_to_baseline:
            _, fewest = needs.get(trigger.metric, (trigger, 1))
            needs[trigger.metric] = (trigger, max(fewest, trigger.min_count or 1))
    for metric, (trigger, fewest) in needs.items():
        seen = current.get(metric)
        if trigger.ratio_of is not None:
            num = counts.get(trigger.ratio_of.numerator)
            den = counts.get(trigger.ratio_of.denominator)
            if num is None or den is None:
                continue
            window = BaselineWindow(
                metric=metric,
                phase=state.phase,
                start_ts=seen.start_ts if seen else start,
                end_ts=obs.ts,
                numerator=(seen.numerator or 0.0) + num if seen else num,
                denominator=(seen.denominator or 0.0) + den if seen else den,
            )
            current[metric] = window
            if (window.denominator or 0) >= fewest:
                baseline[metric] = window
        else:
            value = counts.get(metric)
            if value is None:
                continue
            window = BaselineWindow(metric=metric, phase=state.phase, start_ts=start, end_ts=obs.ts, value=value)
            current[metric] = baseline[metric] = window
    return current, baseline


def _classify(
    state: DwellState, triggers: Sequence[Trigger], m: float, evidence: LiveEvidencePolicy, now: float
) -> BreachVerdict:
    quality_triggers = [t for t in triggers if t.metric in QUALITY_METRICS]
    window_triggers = [t for t in triggers if t.metric not in QUALITY_METRICS]
    samples = [MetricSample(ts=w.end_ts, start_ts=w.start_ts, metrics=w.counts.metrics()) for w in state.windows]
    baseline = {k: v for k, v in ((k, w.evidence()) for k, w in state.baseline.items()) if v is not None}
    by_windows = classify_breaches(
        window_triggers, samples, m, baseline, state.phase, evidence=evidence, now=now
    )
    by_quality = classify_breaches(
        quality_triggers, state.quality.samples(), m, None, state.phase, evidence=evidence, now=now
    )
    merged = [by_windows, by_quality]
    severity = {"ok": 0, "hold": 1, "pause": 2, "rollback": 3}
    return BreachVerdict(
        action=max((v.action for v in merged), key=severity.__getitem__),
        hits=[h for v in merged for h in v.hits],
        unmeasured=[n for v in merged for n in v.unmeasured],
        notes=[n for v in merged for n in v.notes],
        inconclusive=[h for v in merged for h in v.inconclusive],
        clean=[n for v in merged for n in v.clean],
        reasons={k: r for v in merged for k, r in v.reasons.items()},
    )


def _shortfalls(state: DwellState, rules: DwellPolicy) -> list[str]:
    """Why the phase cannot complete yet on its evidence (fewer requests / judged answers than needed)."""
    out: list[str] = []
    if state.requests < rules.min_requests:
        out.append(f"only {state.requests} requests in this phase (need {rules.min_requests})")
    judged, needed = state.quality.phase_judged, rules.evidence.min_judged_per_sample
    if judged < needed:
        out.append(f"only {judged} judged live answers in this phase (need {needed})")
    return out


def _page_of(hit: TriggerHit, description: str) -> PageRequest:
    return PageRequest(
        trigger_name=hit.trigger_name,
        description=description,
        metric=hit.metric,
        observed=hit.observed,
        threshold=hit.threshold,
        interval=hit.interval,
        sample_size=hit.sample_size,
        window_minutes=hit.window_minutes,
        detail=hit.detail,
    )


def _record_page(state: DwellState, page: PageRequest, ts: float) -> DwellState:
    record = PageRecord(trigger_name=page.trigger_name, ts=ts, detail=page.detail)
    return state.model_copy(
        update={"pages": [*state.pages, record][-MAX_RECORDS:], "pages_opened": state.pages_opened + 1}
    )


def _remember(state: DwellState, ts: float, verdict: DwellVerdict) -> DwellState:
    summary = VerdictSummary(ts=ts, action=verdict.action, reasons=verdict.reasons[:5])
    return state.model_copy(update={"last_verdicts": [*state.last_verdicts, summary][-MAX_RECORDS:]})


# --- what the phase measured -------------------------------------------------------------------
def phase_metrics(state: DwellState, confidence: float | None = None) -> dict[str, float | list[float] | None]:
    """The phase's measurements for XCom and the audit trail (rates with their sample size and interval)."""
    conf = confidence if confidence is not None else LiveEvidencePolicy().confidence
    windows = [w.counts for w in state.windows]

    def total(field: str) -> float | None:
        values = [getattr(c, field) for c in windows]
        measured = [v for v in values if v is not None]
        return float(sum(measured)) if measured else None

    def paired(field: str) -> tuple[float, float]:
        """Sum of ``field`` and of requests over the windows that measured both."""
        pairs = [(getattr(c, field), c.requests) for c in windows]
        kept = [(a, b) for a, b in pairs if a is not None and b is not None]
        return float(sum(a for a, _ in kept)), float(sum(b for _, b in kept))

    def rate(field: str) -> tuple[float | None, list[float] | None]:
        num, den = paired(field)
        if den <= 0:
            return None, None
        lo, hi = wilson_interval(min(num, den), den, conf)
        return num / den, [lo, hi]

    error_rate, error_ci = rate("errors")
    escalation_rate, escalation_ci = rate("escalations")
    violation_rate, _ = rate("policy_violations")
    baseline_escalation = state.baseline.get("escalation_rate")
    baseline_evidence = baseline_escalation.evidence() if baseline_escalation is not None else None
    return {
        "requests": total("requests"),
        "errors": total("errors"),
        "error_rate": error_rate,
        "error_rate_interval": error_ci,
        "p50_ms": state.phase_p50_ms,
        "p99_ms": state.phase_p99_ms,
        "policy_violations": total("policy_violations"),
        "policy_violation_rate": violation_rate,
        "escalations": total("escalations"),
        "escalation_rate": escalation_rate,
        "escalation_rate_interval": escalation_ci,
        "baseline_escalation_rate": baseline_evidence.value
        if isinstance(baseline_evidence, RateEvidence)
        else baseline_evidence,
        "scs": state.quality.phase_scs,
        "hallucination_rate": state.quality.phase_hallucination_rate,
        "judged_samples": float(state.quality.phase_judged),
        "latest_sample_scs": state.quality.latest["scs"],
        "baseline_scs": state.baseline_quality.phase_scs,
        "baseline_judged_samples": float(state.baseline_quality.phase_judged),
        "clean_seconds": state.clean_seconds,
        "active_seconds": state.active_seconds,
    }


def _f(value: int | None) -> float | None:
    return None if value is None else float(value)


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b
