"""Pure statistical functions: plain inputs in, plain outputs out, so a test can hand-work them.

docs/definitions.md "Rates" (Wilson score interval), "Cumulative response by infusion number" and
"Durability" (Kaplan-Meier), "Comparison with published evidence" (the exact funnel limits of
docs/benchmarks.md), and a p-chart for the monthly report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959964


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


TAIL95, TAIL998 = 0.025, 0.001  # each side of the 95% and 99.8% funnel limits
# The logit-normal mixture is integrated on this grid of standard-normal scores (trapezoid).
_MIXTURE_GRID = np.linspace(-10.0, 10.0, 2001)


@dataclass(frozen=True)
class ExactFunnel:
    """Exact funnel limits for a unit of n around p0, widened by tau2 (docs/benchmarks.md).

    `counts95` / `counts998`: the lowest and highest counts r whose tail probabilities
    P(R <= r) and P(R >= r) are both at least 0.025 / 0.001. `limits95` / `limits998`: the same
    limits as proportions, interpolated between the last count within and the first count
    outside (so a count is within exactly when r / n lies between them).
    """

    p0: float
    n: int
    tau2: float  # 0.0: plain binomial
    counts95: tuple[int, int]
    counts998: tuple[int, int]
    limits95: tuple[float, float]
    limits998: tuple[float, float]

    def place(self, successes: int) -> tuple[str, str]:
        """('above' | 'within' | 'below') against the 95% and against the 99.8% limits."""
        if not 0 <= successes <= self.n:
            raise ValueError(f"successes must be between 0 and n, got {successes}/{self.n}")

        def side(counts: tuple[int, int]) -> str:
            return "below" if successes < counts[0] else "above" if successes > counts[1] \
                else "within"

        return side(self.counts95), side(self.counts998)


def count_tails(p0: float, n: int, tau2: float | None = None
                ) -> tuple[Callable[[int], float], Callable[[int], float]]:
    """(F, S) with F(r) = P(R <= r) and S(r) = P(R >= r) for a unit's count R of n.

    tau2 None or 0: R ~ Binomial(n, p0). tau2 > 0: R | theta ~ Binomial(n, expit(theta)) with
    theta ~ Normal(logit p0, tau2), the random-effects predictive distribution of a new cohort.
    """
    from scipy import stats  # here only: importing it costs ~1 s that payer packets never need

    if not 0 <= p0 <= 1:
        raise ValueError(f"p0 must be a proportion, got {p0}")
    if not tau2:
        binomial = stats.binom(n, p0)
        return (lambda r: float(binomial.cdf(r))), (lambda r: float(binomial.sf(r - 1)))
    if tau2 < 0 or not 0 < p0 < 1:
        raise ValueError(f"tau2 must be >= 0 and p0 strictly between 0 and 1, got {tau2}, {p0}")
    weights = stats.norm.pdf(_MIXTURE_GRID) * (_MIXTURE_GRID[1] - _MIXTURE_GRID[0])
    weights[[0, -1]] /= 2
    rates = 1 / (1 + np.exp(-(math.log(p0 / (1 - p0)) + math.sqrt(tau2) * _MIXTURE_GRID)))
    return (lambda r: float(weights @ stats.binom.cdf(r, n, rates))), \
        (lambda r: float(weights @ stats.binom.sf(r - 1, n, rates)))


def _first(test: Callable[[int], bool], low: int, high: int) -> int:
    """Smallest r in [low, high] with test(r), for a test false then true; test(high) holds."""
    while low < high:
        middle = (low + high) // 2
        if test(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _exact_limits(cdf: Callable[[int], float], sf: Callable[[int], float], n: int,
                  tail: float) -> tuple[tuple[int, int], tuple[float, float]]:
    low = _first(lambda r: cdf(r) >= tail, 0, n)
    high = _first(lambda r: sf(r + 1) < tail, 0, n)  # the last r with S(r) >= tail
    f, f_before = cdf(low), (cdf(low - 1) if low > 0 else 0.0)
    s, s_after = sf(high), (sf(high + 1) if high < n else 0.0)
    lower = (low - (f - tail) / (f - f_before)) / n
    upper = (high + (s - tail) / (s - s_after)) / n
    return (low, high), (max(lower, 0.0), min(upper, 1.0))


def exact_funnel_limits(p0: float, n: int, tau2: float | None = None) -> ExactFunnel | None:
    """Exact 95% and 99.8% funnel limits for a unit of size n around p0; None when n is 0.

    Widened for the spread between studies when tau2 > 0 (docs/benchmarks.md): the count's
    distribution is then the logit-normal mixture of `count_tails`.
    """
    if n <= 0:
        return None
    cdf, sf = count_tails(p0, n, tau2)
    counts95, limits95 = _exact_limits(cdf, sf, n, TAIL95)
    counts998, limits998 = _exact_limits(cdf, sf, n, TAIL998)
    return ExactFunnel(p0, n, float(tau2 or 0.0), counts95, counts998, limits95, limits998)


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
