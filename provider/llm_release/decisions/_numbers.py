"""Turning untrusted measurements into numbers, failing closed."""

from __future__ import annotations

import math
from typing import Any


def as_finite(value: Any) -> tuple[float | None, str | None]:
    """``(number, None)`` for a finite real number, else ``(None, reason)``.

    Booleans count as 0/1 (a flag like ``rollback_path_ready``); strings never count.
    """
    if value is None:
        return None, "not measured"
    if isinstance(value, bool):
        return float(value), None
    if not isinstance(value, int | float):
        return None, f"not a number ({type(value).__name__})"
    number = float(value)
    if math.isnan(number):
        return None, "measured NaN"
    if math.isinf(number):
        return None, "measured infinity"
    return number, None


def compare(observed: float, op: str, threshold: float) -> bool:
    """Evaluate ``observed <op> threshold`` for the policy's comparison operators."""
    if op == ">=":
        return observed >= threshold
    if op == ">":
        return observed > threshold
    if op == "<=":
        return observed <= threshold
    if op == "<":
        return observed < threshold
    if op == "==":
        return math.isclose(observed, threshold, rel_tol=1e-9, abs_tol=1e-12)
    if op == "abs<=":
        return abs(observed) <= threshold
    raise ValueError(f"unknown comparison operator {op!r}")
