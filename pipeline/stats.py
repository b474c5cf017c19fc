"""Pure statistical functions: plain inputs in, plain outputs out, so a test can hand-work them.

docs/definitions.md "Rates" (Wilson score interval), "Cumulative response by infusion number" and
"Durability" (Kaplan-Meier), "Comparison with published evidence" (the exact funnel limits of
docs/benchmarks.md), and a p-chart for the monthly report.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

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


Moments = tuple[float, float, float]  # mean, variance, third central moment


def _count_distribution(p0: float, n: int, tau2: float | None
                        ) -> tuple[Callable[[int], float], Callable[[int], float],
                                   Callable[[], Moments]]:
    """(F, S, moments) of a unit's count R of n (count_tails); the moments (computed when
    called) only tell `_exact_limits` where to start looking."""
    from scipy import stats  # here only: importing it costs ~1 s that payer packets never need

    if not 0 <= p0 <= 1:
        raise ValueError(f"p0 must be a proportion, got {p0}")
    if not tau2:
        return ((lambda r: float(stats.binom.cdf(r, n, p0))),
                (lambda r: float(stats.binom.sf(r - 1, n, p0))),
                lambda: (n * p0, n * p0 * (1 - p0), n * p0 * (1 - p0) * (1 - 2 * p0)))
    if tau2 < 0 or not 0 < p0 < 1:
        raise ValueError(f"tau2 must be >= 0 and p0 strictly between 0 and 1, got {tau2}, {p0}")
    weights, rates = _mixture_weights(), _mixture_rates(p0, tau2)
    return ((lambda r: float(weights @ stats.binom.cdf(r, n, rates))),
            (lambda r: float(weights @ stats.binom.sf(r - 1, n, rates))),
            lambda: _mixture_moments(weights / weights.sum(), rates, n))


@functools.cache
def _mixture_weights() -> NDArray[np.float64]:
    """Trapezoid weights of the standard-normal density on _MIXTURE_GRID (read-only)."""
    from scipy import stats

    weights = stats.norm.pdf(_MIXTURE_GRID) * (_MIXTURE_GRID[1] - _MIXTURE_GRID[0])
    weights[[0, -1]] /= 2
    weights.flags.writeable = False
    return weights


@functools.lru_cache(maxsize=64)
def _mixture_rates(p0: float, tau2: float) -> NDArray[np.float64]:
    """expit(logit p0 + tau * z) at each score z of _MIXTURE_GRID (read-only; the same for
    every n, so a chart's funnel computes it once)."""
    rates = 1 / (1 + np.exp(-(math.log(p0 / (1 - p0)) + math.sqrt(tau2) * _MIXTURE_GRID)))
    rates.flags.writeable = False
    return rates


def _mixture_moments(weights: NDArray[np.float64], rates: NDArray[np.float64], n: int
                     ) -> Moments:
    """Mean, variance and third central moment of R when R | p ~ Binomial(n, p) and p takes
    `rates` with probabilities `weights` (the law of total cumulance)."""
    mean = n * rates                          # E[R | p]
    var = n * rates * (1 - rates)             # Var(R | p)
    third = var * (1 - 2 * rates)             # third central moment of R | p
    mu = float(weights @ mean)
    centred = mean - mu
    return (mu, float(weights @ var + weights @ centred ** 2),
            float(weights @ third + 3 * (weights @ (centred * var)) + weights @ centred ** 3))


def count_tails(p0: float, n: int, tau2: float | None = None
                ) -> tuple[Callable[[int], float], Callable[[int], float]]:
    """(F, S) with F(r) = P(R <= r) and S(r) = P(R >= r) for a unit's count R of n.

    tau2 None or 0: R ~ Binomial(n, p0). tau2 > 0: R | theta ~ Binomial(n, expit(theta)) with
    theta ~ Normal(logit p0, tau2), the random-effects predictive distribution of a new cohort.
    """
    cdf, sf, _ = _count_distribution(p0, n, tau2)
    return cdf, sf


def _first(test: Callable[[int], bool], low: int, high: int, guess: int) -> int:
    """Smallest r in [low, high] with test(r), for a test false then true; test(high) holds.

    Searched outward from `guess` in doubling steps, then by halving: a good guess settles it
    in two tests (the guess and its neighbour), a bad one costs about twice a plain bisection.
    """
    guess = min(max(guess, low), high)
    step = 1
    if test(guess):
        high = guess
        while high > low:
            probe = max(high - step, low)
            if not test(probe):
                low = probe + 1
                break
            high, step = probe, step * 2
    else:
        low = guess + 1
        while low < high:
            probe = min(low - 1 + step, high)
            if test(probe):
                high = probe
                break
            low, step = probe + 1, step * 2
    while low < high:
        middle = (low + high) // 2
        if test(middle):
            high = middle
        else:
            low = middle + 1
    return low


# standard-normal scores of the tails: where the search for each limit starts
_Z_TAIL = {TAIL95: 1.959964, TAIL998: 3.090232}


def _quantile_guesses(moments: Moments, tail: float) -> tuple[int, int]:
    """Rough counts at the lower and upper `tail` (Cornish-Fisher: normal scores corrected for
    skewness); where the exact search starts."""
    mean, variance, third = moments
    sd = math.sqrt(max(variance, 0.0))
    skew = third / sd ** 3 if sd > 0 else 0.0
    z = _Z_TAIL.get(tail, 2.0)
    shift = (z * z - 1) * skew / 6
    # P(R <= r) ~ Phi((r + 1/2 - mean) / sd): the lowest r at or above the lower tail, the
    # highest r with P(R >= r) at or above the upper tail
    low, high = mean + sd * (-z + shift) - 0.5, mean + sd * (z + shift) + 0.5
    return (math.ceil(low), math.floor(high)) if math.isfinite(low + high) else (0, 0)


def _exact_limits(cdf: Callable[[int], float], sf: Callable[[int], float], n: int,
                  tail: float, guesses: tuple[int, int]
                  ) -> tuple[tuple[int, int], tuple[float, float]]:
    guess_low, guess_high = guesses
    low = _first(lambda r: cdf(r) >= tail, 0, n, guess_low)
    high = _first(lambda r: sf(r + 1) < tail, 0, n, guess_high)  # the last r with S(r) >= tail
    f, f_before = cdf(low), (cdf(low - 1) if low > 0 else 0.0)
    s, s_after = sf(high), (sf(high + 1) if high < n else 0.0)
    lower = (low - (f - tail) / (f - f_before)) / n
    upper = (high + (s - tail) / (s - s_after)) / n
    return (low, high), (max(lower, 0.0), min(upper, 1.0))


def exact_funnel_limits(p0: float, n: int, tau2: float | None = None,
                        near: ExactFunnel | None = None) -> ExactFunnel | None:
    """Exact 95% and 99.8% funnel limits for a unit of size n around p0; None when n is 0.

    Widened for the spread between studies when tau2 > 0 (docs/benchmarks.md): the count's
    distribution is then the logit-normal mixture of `count_tails`. The limits are the same
    whatever `near` is: the funnel of a nearby n around the same p0 and tau2 (a chart drawing
    the limits at many n) only tells the search where to start, which saves most of the
    costly tail probabilities; each of those is computed once for both levels.
    """
    if n <= 0:
        return None
    cdf, sf, moments = _count_distribution(p0, n, tau2)
    cdf, sf, moments = functools.cache(cdf), functools.cache(sf), functools.cache(moments)

    def guesses(tail: float, limits: tuple[float, float] | None) -> tuple[int, int]:
        if limits is None:
            return _quantile_guesses(moments(), tail)
        return math.ceil(limits[0] * n), math.floor(limits[1] * n)

    counts95, limits95 = _exact_limits(cdf, sf, n, TAIL95,
                                       guesses(TAIL95, near.limits95 if near else None))
    counts998, limits998 = _exact_limits(cdf, sf, n, TAIL998,
                                         guesses(TAIL998, near.limits998 if near else None))
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
