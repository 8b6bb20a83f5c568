"""Breach classification: metric samples over time + triggers -> ok / hold / pause / rollback.

Every trigger ends in one of four states: **breach** (a hit), **clean**, **inconclusive** (measured, but
the evidence neither confirms nor clears the breach) or **unmeasured** (no value, stale sample, no
baseline, too few events). Only hits set the verdict's action; the caller (``decisions.dwell``) decides
what inconclusive and unmeasured triggers mean for the dwell clock.

Evaluation modes (see ``llm_release.policy.triggers``):

- ``instant``: the latest sample breaches. If the latest sample lacks the metric it is unmeasured.
- ``sample``: the latest sample that has the metric (hourly live-quality samples). A sample older than
  the trigger's ``minutes`` or than ``evidence.max_sample_age_minutes`` (counted from ``now``) is stale
  and unmeasured, never reused. A rate whose latest sample straddles its line may be cleared (never
  condemned) by the last ``evidence.clear_with_last_samples`` samples pooled.
- ``sustained``: the breach runs without interruption back from the latest sample over at least
  ``minutes``. Coverage starts at the earliest sample's ``start_ts`` (window samples) or ``ts`` (point
  samples), so three point samples one minute apart cover two minutes, not three. A non-breaching
  sample, a missing value, or a gap (point samples: spacing above ``max_gap_minutes``; window samples:
  a window not starting where the previous ended) ends the run. A short history is never sustained.
- ``window``: aggregate over samples ending in the trailing ``minutes``: a rate of summed counts when
  ``ratio_of`` is set; otherwise the worst sample value (conservative). A rate's breach must also show in
  the latest tumbling block (non-overlapping spans of ``minutes`` and ``min_count`` events), so that each
  request is tested once for a breach instead of at every poll.

Rate triggers (``ratio_of``) weigh evidence (DESIGN: measurement honesty). The summed counts over the
trailing ``minutes`` give a rate and its Wilson interval at ``evidence.confidence``:

- breach when the whole interval is beyond the threshold, clean when none of it is (an interval that
  only touches the threshold is clean), inconclusive while it straddles the threshold;
- the trailing span reaches back only as far as it needs to hold ``min_count`` events (fewer in the
  whole history leave the trigger unmeasured). A breach is read from that window alone; while it is
  inconclusive, older windows may clear the trigger (a longer window whose interval is below the line),
  never condemn it, so trying longer and longer windows cannot fish a breach out of noise;
- ``sustained`` (the spec's "for N consecutive minutes"): the trailing span's interval must have been
  above the line at every evaluation (every sample) for ``minutes``, counted from the start of the
  first breaching evaluation's own window; a window confidently clean on its own, a gap or an
  evaluation that is not a breach ends the run, and a shorter run is inconclusive ("above the line
  for 3 of 5 minutes"), never a hit. Re-testing the same noisy span at every poll would otherwise
  fire on a handful of errors sooner or later;
- with ``relative_to_baseline`` and baseline counts (:class:`RateEvidence`), the threshold itself is an
  interval (the baseline's Wilson interval times 1 +/- t): a breach must clear its upper end and a clean
  verdict its lower end.

A sample that carries a rate but not its counts (an outside source) is evaluated on the worst value,
conservatively; a sample with neither ends the reach-back.

Time is in seconds; ``minute_seconds`` says how long a policy minute is (60, or less in a time-scaled
sandbox run). The most severe action wins: rollback > pause > hold > ok; ``page`` hits ask a human.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from llm_release.decisions._numbers import as_finite, compare
from llm_release.decisions.evidence import wilson_interval
from llm_release.policy import LiveEvidencePolicy, Trigger

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


class RateEvidence(BaseModel):
    """A measured rate as its counts, so that its uncertainty can be weighed (e.g. a baseline rate)."""

    model_config = ConfigDict(frozen=True)

    numerator: float = Field(ge=0)
    denominator: float = Field(ge=0)

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator > 0 else None


class TriggerHit(BaseModel):
    """A trigger's evidence: a breach (in ``hits``) or an undecided one (in ``inconclusive``)."""

    model_config = ConfigDict(frozen=True)

    trigger_name: str
    metric: str
    observed: float
    threshold: float
    evaluation: str
    action: str
    detail: str
    interval: tuple[float, float] | None = None
    """Rate triggers: the Wilson interval of the observed rate at the policy's confidence."""
    sample_size: float | None = None
    """Rate triggers: the denominator the rate rests on (e.g. requests)."""
    window_minutes: float | None = None
    """Policy minutes of history the evidence covers."""


class BreachVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    action: Action
    hits: list[TriggerHit]
    unmeasured: list[str] = Field(default_factory=list)
    """Names of triggers that could not be evaluated (no value, stale sample, no baseline)."""
    notes: list[str] = Field(default_factory=list)
    """Why each unmeasured trigger is unmeasured, and other remarks."""
    inconclusive: list[TriggerHit] = Field(default_factory=list)
    """Rate triggers whose interval straddles the threshold even with all the history: neither a breach
    nor clean."""
    clean: list[str] = Field(default_factory=list)
    """Triggers measured and not breaching."""
    reasons: dict[str, str] = Field(default_factory=dict)
    """Why each unmeasured trigger is unmeasured, by trigger name."""

    @property
    def page_required(self) -> bool:
        return any(hit.action == "page" for hit in self.hits)


# --- evidence (the Wilson interval lives in decisions.evidence, shared with the gates) ---------------
@dataclass(frozen=True)
class _Line:
    """A threshold: exact (lo == hi) or uncertain (a baseline rate scaled by 1 +/- t)."""

    point: float
    lo: float
    hi: float


def _decide(lo: float, hi: float, op: str, line: _Line) -> str:
    """breach / clean / inconclusive for an interval [lo, hi] against ``<op> line``."""
    if op == ">":
        return "breach" if lo > line.hi else "clean" if hi <= line.lo else "inconclusive"
    if op == ">=":
        return "breach" if lo >= line.hi else "clean" if hi < line.lo else "inconclusive"
    if op == "<":
        return "breach" if hi < line.lo else "clean" if lo >= line.hi else "inconclusive"
    if op == "<=":
        return "breach" if hi <= line.lo else "clean" if lo > line.hi else "inconclusive"
    raise ValueError(f"unknown comparison operator {op!r}")


@dataclass(frozen=True)
class _Outcome:
    status: Literal["breach", "clean", "inconclusive", "unmeasured"]
    observed: float | None = None
    detail: str = ""
    interval: tuple[float, float] | None = None
    sample_size: float | None = None
    window_minutes: float | None = None


_CLEAN = _Outcome("clean")


def _value(sample: MetricSample, metric: str) -> float | None:
    number, _ = as_finite(sample.metrics.get(metric))
    return number


def _effective_threshold(
    trigger: Trigger, baseline: Mapping[str, float | RateEvidence] | None, confidence: float
) -> tuple[_Line | None, str]:
    if trigger.threshold is None:  # a monitoring line the policy has not resolved: no line, no verdict
        return None, f"no threshold (monitoring_line {trigger.monitoring_line!r} is resolved by the policy)"
    if not trigger.relative_to_baseline:
        return _Line(trigger.threshold, trigger.threshold, trigger.threshold), ""
    raw = (baseline or {}).get(trigger.metric)
    factor = 1 + trigger.threshold if trigger.op in (">", ">=") else 1 - trigger.threshold
    sign = "+" if factor >= 1 else "-"
    if isinstance(raw, RateEvidence):
        if raw.denominator <= 0 or raw.value is None:
            return None, f"baseline for {trigger.metric} has no events"
        lo, hi = wilson_interval(raw.numerator, raw.denominator, confidence)
        note = (
            f" (baseline {raw.value:g} = {raw.numerator:g}/{raw.denominator:g}, "
            f"interval {lo:.4g}..{hi:.4g}, {sign}{trigger.threshold:.0%})"
        )
        return _Line(raw.value * factor, lo * factor, hi * factor), note
    base, problem = as_finite(raw)
    if base is None:
        return None, f"baseline for {trigger.metric} {problem}"
    line = base * factor
    return _Line(line, line, line), f" (baseline {base:g} {sign}{trigger.threshold:.0%})"


def _latest_with(samples: Sequence[MetricSample], metric: str) -> MetricSample | None:
    return next((s for s in reversed(samples) if _value(s, metric) is not None), None)


def _instant(trigger: Trigger, samples: Sequence[MetricSample], line: _Line, m: float) -> _Outcome:
    value = _value(samples[-1], trigger.metric)
    if value is None:
        return _Outcome("unmeasured", detail="latest sample has no value")
    if compare(value, trigger.op, line.point):
        return _Outcome("breach", value, "latest sample")
    return _CLEAN


def _sample(
    trigger: Trigger,
    samples: Sequence[MetricSample],
    line: _Line,
    m: float,
    confidence: float,
    pool_samples: int = 1,
) -> _Outcome:
    """The latest sample carrying the metric; a rate with its counts (``ratio_of``) is weighed by its
    Wilson interval like any rate (one hallucination among a dozen judged answers is not "8 %").

    A latest sample whose interval straddles the line may be cleared, never condemned, by the last
    ``pool_samples`` samples pooled (``evidence.clear_with_last_samples``; the same rule as the window
    rates): a judge that flags a few per cent of good answers puts a healthy candidate's single sample
    near a 5 % line often, and holding every phase on it would page a person for noise. A breach is only
    ever read from the latest sample, which must still be fresh.
    """
    sample = _latest_with(samples, trigger.metric)
    if sample is None:
        return _Outcome("unmeasured", detail="no sample has a value")
    value = _value(sample, trigger.metric)
    assert value is not None
    counts = _counts(trigger, sample) if trigger.ratio_of is not None else None
    if counts is not None and counts[1] > 0:
        num, den = counts
        interval = wilson_interval(min(num, den), den, confidence)
        status = _decide(*interval, trigger.op, line)
        detail = (
            f"{num:g}/{den:g} in the sample at ts={sample.ts:g}, "
            f"{confidence:.0%} interval {interval[0]:.4g}..{interval[1]:.4g}"
        )
        if status == "inconclusive" and pool_samples > 1:
            status, note = _cleared_by_recent_samples(trigger, samples, line, confidence, pool_samples)
            detail += note
        return _Outcome(status, num / den, detail, interval, den)  # type: ignore[arg-type]
    if compare(value, trigger.op, line.point):
        return _Outcome("breach", value, f"sample at ts={sample.ts:g}")
    return _CLEAN


def _counts(trigger: Trigger, sample: MetricSample) -> tuple[float, float] | None:
    assert trigger.ratio_of is not None
    n = _value(sample, trigger.ratio_of.numerator)
    d = _value(sample, trigger.ratio_of.denominator)
    return None if n is None or d is None else (n, d)


def _cleared_by_recent_samples(
    trigger: Trigger, samples: Sequence[MetricSample], line: _Line, confidence: float, pool: int
) -> tuple[str, str]:
    """("clean", note) when the last ``pool`` counted samples, pooled, lie below the line;
    ("inconclusive", note) otherwise. Only ever clears: pooling never turns into a breach."""
    num = den = 0.0
    used = 0
    for sample in reversed(samples):
        if used >= pool:
            break
        counts = _counts(trigger, sample)
        if counts is None:
            continue
        num, den, used = num + counts[0], den + counts[1], used + 1
    if used < 2 or den <= 0:
        return "inconclusive", ""
    interval = wilson_interval(min(num, den), den, confidence)
    if _decide(*interval, trigger.op, line) != "clean":
        return "inconclusive", f"; the last {used} samples pooled ({num:g}/{den:g}) do not clear it either"
    return "clean", (
        f"; cleared by the last {used} samples pooled: {num:g}/{den:g}, "
        f"interval {interval[0]:.4g}..{interval[1]:.4g}"
    )


def _rates_without_counts(trigger: Trigger, samples: Sequence[MetricSample]) -> bool:
    """Some sample carries the rate but not its counts: evaluate values, conservatively."""
    return any(_counts(trigger, s) is None and _value(s, trigger.metric) is not None for s in samples)


def _rate(
    trigger: Trigger,
    samples: Sequence[MetricSample],
    line: _Line,
    m: float,
    confidence: float,
    clear: bool = True,
) -> _Outcome:
    """Weigh a rate trigger's evidence over its trailing span (see the module docstring).

    A breach is only ever read from the trailing span (widened to ``min_count`` events): the line is
    about the last ``minutes``. Older history may only clear the trigger, never condemn it, so trying
    longer windows cannot fish a breach out of noise.
    """
    assert trigger.ratio_of is not None
    now = samples[-1].ts
    span = (trigger.minutes or 0) * m
    needed = trigger.min_count or 1
    num = den = 0.0
    start = now
    gap = ""
    index = len(samples) - 1
    while index >= 0:
        sample = samples[index]
        if sample.ts <= now - span + _EPS and den >= needed:
            break  # the trailing span holds enough events
        counts = _counts(trigger, sample)
        if counts is None:
            gap = f"; no {trigger.ratio_of.numerator}/{trigger.ratio_of.denominator} counts before ts={sample.ts:g}"
            break
        num, den, start = num + counts[0], den + counts[1], sample.start
        index -= 1
    if den < needed:
        return _Outcome(
            "unmeasured", detail=f"only {den:g} {trigger.ratio_of.denominator} (< {needed}) so far{gap}"
        )
    interval = wilson_interval(min(num, den), den, confidence)
    status = _decide(*interval, trigger.op, line)
    covered = (now - start) / m
    detail = (
        f"{num:g}/{den:g} over {covered:g} min (>= {trigger.minutes:g}), "
        f"{confidence:.0%} interval {interval[0]:.4g}..{interval[1]:.4g}{gap}"
    )
    if status == "inconclusive" and not gap and clear:
        status, note = _cleared_by_history(trigger, samples, index, (num, den), line, m, confidence, now)
        detail += note
    return _Outcome(status, num / den, detail, interval, den, covered)  # type: ignore[arg-type]


def _rate_window(
    trigger: Trigger, samples: Sequence[MetricSample], line: _Line, m: float, confidence: float
) -> _Outcome:
    """A ``window`` rate: the trailing span says clean / inconclusive, but a breach must be confirmed by
    the latest *tumbling* block (see :func:`_tumbling_blocks`), where each request is tested once.

    Re-testing a sliding span at every poll looks at nearly the same requests again and again: one
    unlucky streak of hand-offs (10 of 20 where a quarter is normal) then breaches at poll after poll,
    and over a phase some streak almost surely does. A simulated healthy 2 % canary (26 % hand-offs,
    line at 32 %, 80 % intervals, 60 s of polls) was paused in 22 % of phases by the sliding test and
    in 7 % by tumbling blocks. A breaching span that its block does not confirm holds (inconclusive).
    """
    outcome = _rate(trigger, samples, line, m, confidence)
    if outcome.status != "breach":
        return outcome
    closed, growing = _tumbling_blocks(trigger, samples, m)
    # before the first block closes (a history shorter than ``minutes``), the one growing block is the
    # evidence: it grows, it never slides, so it cannot re-test an old streak in new company
    block = closed[-1] if closed else growing
    if block is None or block[1] < (trigger.min_count or 1):
        return _Outcome("inconclusive", outcome.observed, outcome.detail + "; no complete block yet",
                        outcome.interval, outcome.sample_size, outcome.window_minutes)
    num, den, start, end = block
    interval = wilson_interval(min(num, den), den, confidence)
    covered = (end - start) / m
    detail = (
        f"{num:g}/{den:g} in the block of {covered:g} min ending at ts={end:g} (each request tested once), "
        f"{confidence:.0%} interval {interval[0]:.4g}..{interval[1]:.4g}"
    )
    if _decide(*interval, trigger.op, line) == "breach":
        return _Outcome("breach", num / den, detail, interval, den, covered)
    return _Outcome("inconclusive", outcome.observed,
                    outcome.detail + f"; not confirmed by its latest block: {detail}",
                    outcome.interval, outcome.sample_size, outcome.window_minutes)


_Block = tuple[float, float, float, float]


def _tumbling_blocks(
    trigger: Trigger, samples: Sequence[MetricSample], m: float
) -> tuple[list[_Block], _Block | None]:
    """Consecutive, non-overlapping blocks of samples, oldest first: a block closes once it spans the
    trigger's ``minutes`` and holds ``min_count`` events. Returns the closed blocks and the open one, each
    as (numerator, denominator, start, end); a sample without counts starts over. The partition depends
    only on the samples, so re-evaluating between two closings tests the same block again, not new
    evidence."""
    span = (trigger.minutes or 0) * m
    needed = trigger.min_count or 1
    blocks: list[_Block] = []
    num = den = 0.0
    start: float | None = None
    end = 0.0
    for sample in samples:
        counts = _counts(trigger, sample)
        if counts is None:
            num = den = 0.0
            start = None
            continue
        if start is None:
            start = sample.start
        num, den, end = num + counts[0], den + counts[1], sample.ts
        if den >= needed and sample.ts - start >= span - _EPS:
            blocks.append((num, den, start, sample.ts))
            num = den = 0.0
            start = None
    return blocks, (num, den, start, end) if start is not None else None


def _latest_is_clean(
    trigger: Trigger, samples: Sequence[MetricSample], line: _Line, confidence: float
) -> bool:
    """The latest window alone (widened to ``min_count`` events) is confidently below the line."""
    needed = trigger.min_count or 1
    num = den = 0.0
    for sample in reversed(samples):
        counts = _counts(trigger, sample)
        if counts is None:
            return False
        num, den = num + counts[0], den + counts[1]
        if den >= needed:
            return _decide(*wilson_interval(min(num, den), den, confidence), trigger.op, line) == "clean"
    return False


def _rate_sustained(
    trigger: Trigger, samples: Sequence[MetricSample], line: _Line, m: float, confidence: float
) -> _Outcome:
    """"Above the line for N minutes": the interval of the trailing span has been above the line at
    every evaluation (every sample) for at least ``minutes``, counted from the start of the first
    breaching evaluation's own window. A window that is confidently clean on its own, a gap, or an
    evaluation that is not a breach ends the run; a shorter run is inconclusive (the clock holds)."""
    latest = _rate(trigger, samples, line, m, confidence)
    if latest.status != "breach":
        return latest
    if _latest_is_clean(trigger, samples, line, confidence):
        return _Outcome("clean", latest.observed, latest.detail + "; the latest window alone is clean")
    needed = (trigger.minutes or 0) * m
    now = samples[-1].ts
    run_from = samples[-1].start
    index = len(samples) - 1
    why = ""
    while now - run_from < needed - _EPS:
        if index == 0:
            why = "the history is shorter"
            break
        current, previous = samples[index], samples[index - 1]
        if current.start_ts is not None:
            joined = current.start_ts - previous.ts <= _WINDOW_JOIN_TOLERANCE * m + _EPS
        else:
            joined = current.ts - previous.ts <= trigger.max_gap_minutes * m + _EPS
        if not joined:
            why = f"a gap before ts={current.start:g}"
            break
        before = samples[:index]
        if _rate(trigger, before, line, m, confidence, clear=False).status != "breach" or _latest_is_clean(
            trigger, before, line, confidence
        ):
            why = f"not above the line at ts={previous.ts:g}"
            break
        run_from = previous.start
        index -= 1
    run = (now - run_from) / m
    if now - run_from < needed - _EPS:
        return _Outcome(
            "inconclusive",
            latest.observed,
            f"{latest.detail}; above the line for only {run:g} of {trigger.minutes:g} min ({why})",
            latest.interval,
            latest.sample_size,
            latest.window_minutes,
        )
    return _Outcome(
        "breach",
        latest.observed,
        f"{latest.detail}; above the line at every evaluation for {run:g} min (>= {trigger.minutes:g})",
        latest.interval,
        latest.sample_size,
        run,
    )


def _cleared_by_history(
    trigger: Trigger,
    samples: Sequence[MetricSample],
    index: int,
    counts: tuple[float, float],
    line: _Line,
    m: float,
    confidence: float,
    now: float,
) -> tuple[str, str]:
    """Reach back from ``samples[index]`` for evidence of health: "clean" once a longer window clears
    the line; still "inconclusive" when the history runs out or the longer window is above the line."""
    num, den = counts
    while index >= 0:
        more = _counts(trigger, samples[index])
        if more is None:
            break
        num, den = num + more[0], den + more[1]
        lo, hi = wilson_interval(min(num, den), den, confidence)
        status = _decide(lo, hi, trigger.op, line)
        minutes = (now - samples[index].start) / m
        if status == "clean":
            return "clean", f"; clean over {minutes:g} min ({num:g}/{den:g})"
        if status == "breach":
            return "inconclusive", f"; above the line over {minutes:g} min ({num:g}/{den:g}), not in the last span"
        index -= 1
    return "inconclusive", f"; still inconclusive over all {den:g} {trigger.ratio_of.denominator} of the history"  # type: ignore[union-attr]


def _sustained(trigger: Trigger, samples: Sequence[MetricSample], line: _Line, m: float) -> _Outcome:
    latest = samples[-1]
    latest_value = _value(latest, trigger.metric)
    if latest_value is None:
        return _Outcome("unmeasured", detail="latest sample has no value")
    if not compare(latest_value, trigger.op, line.point):
        return _CLEAN
    needed = (trigger.minutes or 0) * m
    now = latest.ts
    covered_from = latest.start
    worst = latest_value
    index = len(samples) - 1
    while now - covered_from < needed - _EPS:
        if index == 0:
            return _CLEAN  # history shorter than the span: not sustained yet
        current, previous = samples[index], samples[index - 1]
        value = _value(previous, trigger.metric)
        if value is None or not compare(value, trigger.op, line.point):
            return _CLEAN
        if current.start_ts is not None:
            gap_ok = current.start_ts - previous.ts <= _WINDOW_JOIN_TOLERANCE * m + _EPS
        else:
            gap_ok = current.ts - previous.ts <= trigger.max_gap_minutes * m + _EPS
        if not gap_ok:
            return _CLEAN
        worst = value if compare(value, trigger.op, worst) else worst
        covered_from = previous.start
        index -= 1
    span = (now - covered_from) / m
    return _Outcome(
        "breach",
        latest_value,
        f"breaching for {span:g} min (>= {trigger.minutes:g}); latest {latest_value:g}, worst {worst:g}",
        window_minutes=span,
    )


def _window(trigger: Trigger, samples: Sequence[MetricSample], line: _Line, m: float) -> _Outcome:
    now = samples[-1].ts
    span = (trigger.minutes or 0) * m
    inside = [s for s in samples if s.ts > now - span + _EPS]
    covered = (now - min(s.start for s in inside)) / m
    coverage = f"over {covered:g} of {trigger.minutes:g} min"
    values = [v for v in (_value(s, trigger.metric) for s in inside) if v is not None]
    if not values:
        return _Outcome("unmeasured", detail="no value in the window")
    worst = max(values) if trigger.op in (">", ">=") else min(values)
    detail = f"worst sample {coverage} (counts unavailable)"
    if compare(worst, trigger.op, line.point):
        return _Outcome("breach", worst, detail, window_minutes=covered)
    return _CLEAN


def _evaluate(
    trigger: Trigger,
    samples: Sequence[MetricSample],
    line: _Line,
    m: float,
    confidence: float,
    pool_samples: int = 1,
) -> _Outcome:
    rate = trigger.ratio_of is not None and not _rates_without_counts(trigger, samples)
    if trigger.evaluation == "instant":
        return _instant(trigger, samples, line, m)
    if trigger.evaluation == "sample":
        return _sample(trigger, samples, line, m, confidence, pool_samples)
    if trigger.evaluation == "sustained":
        if rate:
            return _rate_sustained(trigger, samples, line, m, confidence)
        return _sustained(trigger, samples, line, m)
    if rate:
        return _rate_window(trigger, samples, line, m, confidence)
    return _window(trigger, samples, line, m)


def _stale(
    trigger: Trigger, samples: Sequence[MetricSample], now: float | None, max_age_minutes: float, m: float
) -> str:
    """Why the trigger's latest value is too old to use at ``now`` ("" when fresh or absent).

    A rate with counts (``ratio_of``) is as fresh as its latest counted window: a window that served no
    request is a fresh measurement of zero events (the rate reaches back for evidence), not a stale one.
    """
    limit = max_age_minutes
    if trigger.evaluation == "sample" and trigger.minutes is not None:
        limit = min(limit, trigger.minutes)
    latest = _latest_with(samples, trigger.metric)
    if trigger.ratio_of is not None and trigger.evaluation != "sample":
        counted = [s for s in samples if _counts(trigger, s) is not None]
        latest = counted[-1] if counted else latest
    if latest is None:
        return ""  # the evaluation says why it is unmeasured
    reference = samples[-1].ts if now is None else max(now, samples[-1].ts)
    age = (reference - latest.ts) / m
    if age > limit + _EPS:
        return f"latest value is {age:g} min old (limit {limit:g})"
    return ""


def classify_breaches(
    triggers: Sequence[Trigger],
    samples: Sequence[MetricSample],
    minute_seconds: float,
    baseline: Mapping[str, float | RateEvidence] | None = None,
    phase: str | None = None,
    *,
    evidence: LiveEvidencePolicy | None = None,
    now: float | None = None,
) -> BreachVerdict:
    """Evaluate ``triggers`` (those applying to ``phase``; all when None) on ``samples``.

    ``evidence``: the policy's live-evidence rules (confidence of rate intervals, the age after which a
    sample is stale); the policy model's defaults when None. ``now``: the time of the evaluation
    (seconds, same clock as the samples); a sample older than the age limit at ``now`` is unmeasured.
    """
    if not minute_seconds > 0 or not math.isfinite(minute_seconds):
        raise ValueError(f"minute_seconds must be a positive number, got {minute_seconds!r}")
    rules = evidence or LiveEvidencePolicy()
    ordered = sorted(samples, key=lambda s: s.ts)
    hits: list[TriggerHit] = []
    inconclusive: list[TriggerHit] = []
    unmeasured: list[str] = []
    clean: list[str] = []
    notes: list[str] = []
    reasons: dict[str, str] = {}
    action: Action = "ok"

    def not_measured(name: str, why: str) -> None:
        unmeasured.append(name)
        notes.append(f"{name}: {why}")
        reasons[name] = why

    for trigger in triggers:
        if (
            phase is not None
            and trigger.applies_to_phases is not None
            and phase not in trigger.applies_to_phases
        ):
            continue
        if not ordered:
            not_measured(trigger.name, "no samples")
            continue
        line, baseline_note = _effective_threshold(trigger, baseline, rules.confidence)
        if line is None:
            not_measured(trigger.name, baseline_note)
            continue
        stale = _stale(trigger, ordered, now, rules.max_sample_age_minutes, minute_seconds)
        if stale:
            not_measured(trigger.name, stale)
            continue
        outcome = _evaluate(
            trigger, ordered, line, minute_seconds, rules.confidence, rules.clear_with_last_samples
        )
        if outcome.status == "unmeasured":
            not_measured(trigger.name, outcome.detail)
            continue
        if outcome.status == "clean":
            clean.append(trigger.name)
            continue
        assert outcome.observed is not None
        evidence_of = TriggerHit(
            trigger_name=trigger.name,
            metric=trigger.metric,
            observed=outcome.observed,
            threshold=line.point,
            evaluation=trigger.evaluation,
            action=trigger.action,
            detail=(
                f"{trigger.metric} {outcome.observed:g} {trigger.op} {line.point:g}{baseline_note}: "
                f"{outcome.detail}"
            ),
            interval=outcome.interval,
            sample_size=outcome.sample_size,
            window_minutes=outcome.window_minutes,
        )
        if outcome.status == "inconclusive":
            inconclusive.append(evidence_of)
            continue
        hits.append(evidence_of)
        if trigger.action in SEVERITY and SEVERITY[trigger.action] > SEVERITY[action]:
            action = trigger.action  # type: ignore[assignment]
    return BreachVerdict(
        action=action,
        hits=hits,
        unmeasured=unmeasured,
        notes=notes,
        inconclusive=inconclusive,
        clean=clean,
        reasons=reasons,
    )
