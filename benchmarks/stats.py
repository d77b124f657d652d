"""Summaries and ratios of noisy samples.

Every scenario reports medians with a p10-p90 spread: the median because one
preempted sample on a shared 2-core machine must not move the result, the
spread so a reader sees how much the machine wobbled.  Comparisons between
contenders are *paired by round*: contenders run one after the other within a
round, so a slow spell of the machine hits all of them, and the ratio of
their medians in the same round cancels it.  The reported ratio is the median
of those per-round ratios.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Optional

__all__ = ["paired_difference", "paired_ratio", "percentile", "summarize"]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (``fraction`` in 0..1) of ``values``."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summarize(values: Sequence[float]) -> dict[str, float]:
    """median, p10, p90, p99, min, max and count of ``values`` (which must not be empty)."""
    return {
        "median": statistics.median(values),
        "p10": percentile(values, 0.10),
        "p90": percentile(values, 0.90),
        "p99": percentile(values, 0.99),
        "min": min(values),
        "max": max(values),
        "n": float(len(values)),
    }


def paired_ratio(
    rounds: Sequence[Mapping[str, float]], numerator: str, denominator: str
) -> Optional[float]:
    """Median over rounds of ``round[numerator] / round[denominator]``.

    ``rounds`` holds one mapping per round from contender name to that
    contender's median in the round; rounds where either side is missing (the
    contender failed or was skipped) are left out.
    """
    ratios = [
        r[numerator] / r[denominator]
        for r in rounds
        if r.get(numerator) is not None and r.get(denominator) and r[denominator] > 0
    ]
    return statistics.median(ratios) if ratios else None


def paired_difference(
    rounds: Sequence[Mapping[str, float]], minuend: str, subtrahend: str
) -> Optional[float]:
    """Median over rounds of ``round[minuend] - round[subtrahend]`` (both present)."""
    differences = [
        r[minuend] - r[subtrahend]
        for r in rounds
        if r.get(minuend) is not None and r.get(subtrahend) is not None
    ]
    return statistics.median(differences) if differences else None
