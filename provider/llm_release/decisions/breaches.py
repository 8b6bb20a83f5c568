"""Breach classification: metric samples over time + triggers -> ok / hold / pause / rollback.

Evaluation modes (see ``llm_release.policy.triggers``):

- ``instant``: the latest sample breaches. If the latest sample lacks the metric it is unmeasured.
- ``sample``: the latest sample that has the metric (hourly live-quality samples); with ``minutes`` set,
  an older sample is stale and unmeasured.
- ``sustained``: the breach runs without interruption back from the latest sample over at least
  ``minutes``. Coverage starts at the earliest sample's ``start_ts`` (window samples) or ``ts`` (point
  samples), so three point samples one minute apart cover two minutes, not three. A non-breaching
  sample, a missing value, or a gap (point samples: spacing above ``max_gap_minutes``; window samples:
  a window not starting where the previous ended) ends the run. A short history is never sustained.
- ``window``: aggregate over samples ending in the trailing ``minutes``: a ratio of summed counts when
  ``ratio_of`` is set and every sample has the counts; otherwise the worst sample value (conservative).
- ``ratio_of`` with ``min_count`` (window or sustained): the summed counts reach further back than
  ``minutes`` until the denominator holds ``min_count`` events, and fewer in the whole history leave
  the trigger unmeasured. Sustained then means the rate over at least the last ``minutes`` (and
  enough events) is over the line, with a history covering ``minutes``.

Time is in seconds; ``minute_seconds`` says how long a policy minute is (60, or less in a time-scaled
sandbox run). The most severe action wins: rollback > pause > hold > ok; ``page`` hits ask a human.
Triggers whose metric is unmeasured are listed in ``unmeasured`` so the caller can fail closed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_release.decisions._numbers import as_finite, compare
from llm_release.policy import Trigger

Action = Literal["ok", "hold", "pause", "rollback"]
SEVERITY: dict[str, int] = {"ok": 0, "hold": 1, "pause": 2, "rollback": 3}
_EPS = 1e-9
_WINDOW_JOIN_TOLERANCE = 0.05
"""Window samples must abut: the next window may start at most this fraction of a minute late."""


class MetricSample(BaseModel):
    """Measurements of one window ending at ``ts`` (seconds). ``start_ts``: the window's start, if known."""

    model_config = ConfigDict(frozen=True)

    ts: float
    metrics: dict[str, float | None]
    start_ts: float | None = None

    @property
    def start(self) -> float:
        return self.ts if self.start_ts is None else self.start_ts


class TriggerHit(BaseModel):
    model_config = ConfigDict(frozen=True)

    trigger_name: str
    metric: str
    observed: float
    threshold: float
    evaluation: str
    action: str
    detail: str


class BreachVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Action
    hits: list[TriggerHit]
    unmeasured: list[str] = Field(default_factory=list)
    """Names of triggers that could not be evaluated (no value, stale sample, no baseline)."""
    notes: list[str] = Field(default_factory=list)
    """Why each unmeasured trigger is unmeasured, and other remarks."""

    @property
    def page_required(self) -> bool:
        return any(hit.action == "page" for hit in self.hits)


def _value(sample: MetricSample, metric: str) -> float | None:
    number, _ = as_finite(sample.metrics.get(metric))
    return number


def _effective_threshold(trigger: Trigger, baseline: Mapping[str, float] | None) -> tuple[float | None, str]:
    if not trigger.relative_to_baseline:
        return trigger.threshold, ""
    base, problem = as_finite((baseline or {}).get(trigger.metric))
    if base is None:
        return None, f"baseline for {trigger.metric} {problem}"
    factor = 1 + trigger.threshold if trigger.op in (">", ">=") else 1 - trigger.threshold
    return base * factor, f" (baseline {base:g} {'+' if factor >= 1 else '-'}{trigger.threshold:.0%})"


def _instant(trigger: Trigger, samples: Sequence[MetricSample], threshold: float, m: float):
    value = _value(samples[-1], trigger.metric)
    if value is None:
        return None, "latest sample has no value"
    return (value, "latest sample") if compare(value, trigger.op, threshold) else (None, "")


def _sample(trigger: Trigger, samples: Sequence[MetricSample], threshold: float, m: float):
    now = samples[-1].ts
    for sample in reversed(samples):
        value = _value(sample, trigger.metric)
        if value is None:
            continue
        if trigger.minutes is not None and now - sample.ts > trigger.minutes * m + _EPS:
            return None, f"latest value is {(now - sample.ts) / m:g} min old (limit {trigger.minutes:g})"
        hit = compare(value, trigger.op, threshold)
        return (value, f"sample at ts={sample.ts:g}") if hit else (None, "")
    return None, "no sample has a value"


def _has_counts(trigger: Trigger, samples: Sequence[MetricSample]) -> bool:
    """Every sample carries the ratio's counts (else evaluate the metric's values, conservatively)."""
    assert trigger.ratio_of is not None
    names = (trigger.ratio_of.numerator, trigger.ratio_of.denominator)
    return all(_value(s, name) is not None for s in samples for name in names)


def _ratio(trigger: Trigger, samples: Sequence[MetricSample], m: float) -> tuple[float, float, float] | str:
    """Summed (numerator, denominator, covered minutes) over the trailing ``minutes``, reaching further
    back until the denominator reaches ``min_count``; a reason string when that cannot be done."""
    assert trigger.ratio_of is not None
    now = samples[-1].ts
    span = (trigger.minutes or 0) * m
    needed = trigger.min_count or 1
    num = den = 0.0
    start = now
    for sample in reversed(samples):
        if sample.ts <= now - span + _EPS and den >= needed:
            break
        n, d = _value(sample, trigger.ratio_of.numerator), _value(sample, trigger.ratio_of.denominator)
        if n is None or d is None:
            return f"no {trigger.ratio_of.numerator}/{trigger.ratio_of.denominator} counts in a sample"
        num, den, start = num + n, den + d, sample.start
    if den < needed:
        return f"only {den:g} {trigger.ratio_of.denominator} (< {needed}) so far"
    return num, den, (now - start) / m


def _ratio_verdict(trigger: Trigger, samples: Sequence[MetricSample], threshold: float, m: float, sustained: bool):
    """Window and sustained evaluation of a ratio trigger on summed counts with enough evidence.

    Sustained additionally needs a history covering ``minutes``: the rate over (at least) the last
    ``minutes`` is above the line, so a one-poll blip cannot fire it.
    """
    result = _ratio(trigger, samples, m)
    if isinstance(result, str):
        return None, result
    num, den, covered = result
    if sustained and (samples[-1].ts - samples[0].start) < (trigger.minutes or 0) * m - _EPS:
        return None, ""  # history shorter than the span: not sustained yet
    value = num / den
    detail = f"{num:g}/{den:g} over {covered:g} min (>= {trigger.minutes:g})"
    return (value, detail) if compare(value, trigger.op, threshold) else (None, "")


def _sustained(trigger: Trigger, samples: Sequence[MetricSample], threshold: float, m: float):
    if trigger.ratio_of is not None and _has_counts(trigger, samples):
        return _ratio_verdict(trigger, samples, threshold, m, sustained=True)
    latest = samples[-1]
    latest_value = _value(latest, trigger.metric)
    if latest_value is None:
        return None, "latest sample has no value"
    if not compare(latest_value, trigger.op, threshold):
        return None, ""
    needed = (trigger.minutes or 0) * m
    now = latest.ts
    covered_from = latest.start
    worst = latest_value
    index = len(samples) - 1
    while now - covered_from < needed - _EPS:
        if index == 0:
            return None, ""  # history shorter than the span: not sustained yet
        current, previous = samples[index], samples[index - 1]
        value = _value(previous, trigger.metric)
        if value is None or not compare(value, trigger.op, threshold):
            return None, ""
        if current.start_ts is not None:
            gap_ok = current.start_ts - previous.ts <= _WINDOW_JOIN_TOLERANCE * m + _EPS
        else:
            gap_ok = current.ts - previous.ts <= trigger.max_gap_minutes * m + _EPS
        if not gap_ok:
            return None, ""
        worst = value if compare(value, trigger.op, worst) else worst
        covered_from = previous.start
        index -= 1
    span = (now - covered_from) / m
    return (
        latest_value,
        f"breaching for {span:g} min (>= {trigger.minutes:g}); latest {latest_value:g}, worst {worst:g}",
    )


def _window(trigger: Trigger, samples: Sequence[MetricSample], threshold: float, m: float):
    if trigger.ratio_of is not None and trigger.min_count is not None and _has_counts(trigger, samples):
        return _ratio_verdict(trigger, samples, threshold, m, sustained=False)
    now = samples[-1].ts
    span = (trigger.minutes or 0) * m
    inside = [s for s in samples if s.ts > now - span + _EPS]
    covered = (now - min(s.start for s in inside)) / m
    coverage = f"over {covered:g} of {trigger.minutes:g} min"
    if trigger.ratio_of is not None:
        nums = [_value(s, trigger.ratio_of.numerator) for s in inside]
        dens = [_value(s, trigger.ratio_of.denominator) for s in inside]
        if all(v is not None for v in nums + dens):
            total = math.fsum(dens)  # type: ignore[arg-type]
            if total <= 0:
                return None, f"no {trigger.ratio_of.denominator} in the window"
            value = math.fsum(nums) / total  # type: ignore[arg-type]
            detail = f"{math.fsum(nums):g}/{total:g} {coverage}"  # type: ignore[arg-type]
            return (value, detail) if compare(value, trigger.op, threshold) else (None, "")
    values = [v for v in (_value(s, trigger.metric) for s in inside) if v is not None]
    if not values:
        return None, "no value in the window"
    worst = max(values) if trigger.op in (">", ">=") else min(values)
    detail = f"worst sample {coverage} (counts unavailable)"
    return (worst, detail) if compare(worst, trigger.op, threshold) else (None, "")


_EVALUATORS = {"instant": _instant, "sample": _sample, "sustained": _sustained, "window": _window}


def classify_breaches(
    triggers: Sequence[Trigger],
    samples: Sequence[MetricSample],
    minute_seconds: float,
    baseline: Mapping[str, float] | None = None,
    phase: str | None = None,
) -> BreachVerdict:
    """Evaluate ``triggers`` (those applying to ``phase``; all when None) on ``samples``."""
    if not minute_seconds > 0 or not math.isfinite(minute_seconds):
        raise ValueError(f"minute_seconds must be a positive number, got {minute_seconds!r}")
    ordered = sorted(samples, key=lambda s: s.ts)
    hits: list[TriggerHit] = []
    unmeasured: list[str] = []
    notes: list[str] = []
    action: Action = "ok"
    for trigger in triggers:
        if (
            phase is not None
            and trigger.applies_to_phases is not None
            and phase not in trigger.applies_to_phases
        ):
            continue
        if not ordered:
            unmeasured.append(trigger.name)
            notes.append(f"{trigger.name}: no samples")
            continue
        threshold, baseline_note = _effective_threshold(trigger, baseline)
        if threshold is None:
            unmeasured.append(trigger.name)
            notes.append(f"{trigger.name}: {baseline_note}")
            continue
        observed, detail = _EVALUATORS[trigger.evaluation](trigger, ordered, threshold, minute_seconds)
        if observed is None:
            if detail:
                unmeasured.append(trigger.name)
                notes.append(f"{trigger.name}: {detail}")
            continue
        hits.append(
            TriggerHit(
                trigger_name=trigger.name,
                metric=trigger.metric,
                observed=observed,
                threshold=threshold,
                evaluation=trigger.evaluation,
                action=trigger.action,
                detail=f"{trigger.metric} {observed:g} {trigger.op} {threshold:g}{baseline_note}: {detail}",
            )
        )
        if trigger.action in SEVERITY and SEVERITY[trigger.action] > SEVERITY[action]:
            action = trigger.action  # type: ignore[assignment]
    return BreachVerdict(action=action, hits=hits, unmeasured=unmeasured, notes=notes)
