"""Pure statistical functions: plain inputs in, plain outputs out, so a test can hand-work them.

SPEC §2 "Rates" (Wilson score interval), "Cumulative response by infusion number" and
"Durability" (Kaplan-Meier), "Comparison with published evidence" (funnel limits), and a
p-chart for the monthly report.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959964
Z998 = 3.090232


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95% Wilson score interval for successes/n; None when n is 0.

    Clamped so that 0 <= low <= successes/n <= high <= 1 holds despite rounding.
    """
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n, got {successes}/{n}")
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else min(max(centre - half, 0.0), p)
    high = 1.0 if successes == n else max(min(centre + half, 1.0), p)
    return low, high


def rate(successes: int, n: int, z: float = Z95) -> dict[str, float | int | None]:
    """Numerator, denominator, rate and Wilson interval; rate and interval are None when n is 0."""
    interval = wilson(successes, n, z)
    return {
        "numerator": successes,
        "denominator": n,
        "rate": successes / n if n else None,
        "ci_low": interval[0] if interval else None,
        "ci_high": interval[1] if interval else None,
    }


@dataclass(frozen=True)
class KMStep:
    """One distinct time of the Kaplan-Meier table."""

    time: float
    at_risk: int
    events: int
    censored: int
    survival: float  # S(t) just after `time`


def kaplan_meier(durations: Sequence[float], events: Sequence[bool]) -> list[KMStep]:
    """Kaplan-Meier product-limit estimate, one step per distinct time (events or censorings).

    `events[i]` is True when the event happened at `durations[i]`, False when censored there.
    Events at a time are counted before censorings at the same time (the usual convention).
    """
    if len(durations) != len(events):
        raise ValueError("durations and events must have the same length")
    by_time: dict[float, list[int]] = {}
    for duration, event in zip(durations, events, strict=True):
        counts = by_time.setdefault(duration, [0, 0])
        counts[0 if event else 1] += 1
    at_risk = len(durations)
    survival = 1.0
    steps: list[KMStep] = []
    for time in sorted(by_time):
        n_events, n_censored = by_time[time]
        if n_events:
            survival *= 1 - n_events / at_risk
        steps.append(KMStep(time, at_risk, n_events, n_censored, survival))
        at_risk -= n_events + n_censored
    return steps


def km_median(steps: Sequence[KMStep]) -> float | None:
    """Smallest time at which S(t) <= 0.5; None when the curve never gets there."""
    for step in steps:
        if step.survival <= 0.5 + 1e-12:
            return step.time
    return None


def cumulative_incidence(steps: Sequence[KMStep]) -> list[tuple[float, float]]:
    """(time, 1 - S(t)) pairs: the share with the event by each time (e.g. responded)."""
    return [(step.time, 1 - step.survival) for step in steps]


def funnel_limits(p0: float, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Funnel-plot control limits around benchmark p0 for a unit of size n (normal approximation).

    Clipped to [0, 1]; None when n is 0.
    """
    if n <= 0:
        return None
    if not 0 <= p0 <= 1:
        raise ValueError(f"p0 must be a proportion, got {p0}")
    half = z * math.sqrt(p0 * (1 - p0) / n)
    return max(p0 - half, 0.0), min(p0 + half, 1.0)


def funnel_position(successes: int, n: int, p0: float, z: float = Z95) -> str | None:
    """'above', 'within' or 'below' the funnel limits; None when n is 0."""
    limits = funnel_limits(p0, n, z)
    if limits is None:
        return None
    observed = successes / n
    if observed > limits[1]:
        return "above"
    if observed < limits[0]:
        return "below"
    return "within"


def p_chart(
    successes: Sequence[int], sizes: Sequence[int], z: float = 3.0
) -> list[dict[str, float | None]]:
    """p-chart: centre line p-bar = sum successes / sum sizes, limits p-bar +/- z*sqrt(pq/n_i).

    One dict per subgroup: proportion, centre, lower, upper (None for an empty subgroup).
    """
    if len(successes) != len(sizes):
        raise ValueError("successes and sizes must have the same length")
    total = sum(sizes)
    centre = sum(successes) / total if total else None
    points: list[dict[str, float | None]] = []
    for count, size in zip(successes, sizes, strict=True):
        if not size or centre is None:
            points.append({"proportion": None, "centre": centre, "lower": None, "upper": None})
            continue
        half = z * math.sqrt(centre * (1 - centre) / size)
        points.append({
            "proportion": count / size,
            "centre": centre,
            "lower": max(centre - half, 0.0),
            "upper": min(centre + half, 1.0),
        })
    return points
