"""Pure functions of the evidence comparison: pooled benchmark, intervals from published rates,
Kaplan-Meier point estimates with an interval, claim verdicts and small-cell suppression.

Plain numbers in, plain numbers out, so tests can hand-work every one (docs/definitions.md "Comparison with
published evidence", "Small-cell suppression").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.stats import Z95, Z998, funnel_limits, kaplan_meier

# ---------------------------------------------------------------------------------------------
# Benchmarks


def pooled_rate(rates_and_ns: Sequence[tuple[float, int]]) -> tuple[float, int] | None:
    """n-weighted pooled rate p0 = sum(n_i * p_i) / sum(n_i), and the total n; None if empty."""
    total = sum(n for _, n in rates_and_ns)
    if total <= 0:
        return None
    return sum(p * n for p, n in rates_and_ns) / total, total


def wilson_from_rate(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a published rate p on n (successes p*n need not be whole)."""
    if n <= 0:
        raise ValueError("n must be positive")
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(centre - half, 0.0), min(centre + half, 1.0)


@dataclass(frozen=True)
class FunnelResult:
    p0: float
    n: int
    observed: float
    limits95: tuple[float, float]
    limits998: tuple[float, float]
    position: str  # above / within / below the 95% limits
    beyond_998: bool  # also outside the 99.8% limits

    @property
    def label(self) -> str:
        if self.position == "within":
            return "within"
        return f"{self.position} (outside 99.8%)" if self.beyond_998 else self.position


def funnel_result(successes: int, n: int, p0: float) -> FunnelResult | None:
    """Place successes/n on the funnel around p0 (normal approximation, 95% and 99.8% limits)."""
    l95 = funnel_limits(p0, n, Z95)
    l998 = funnel_limits(p0, n, Z998)
    if l95 is None or l998 is None:
        return None
    observed = successes / n
    position = "above" if observed > l95[1] else "below" if observed < l95[0] else "within"
    beyond = observed > l998[1] or observed < l998[0]
    return FunnelResult(p0, n, observed, l95, l998, position, beyond)


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier at one time, with a Greenwood log(-log) interval (lifelines' default)


@dataclass(frozen=True)
class KMPoint:
    survival: float
    low: float | None
    high: float | None
    subjects: int
    events_by_time: int
    at_risk_after: int  # still under observation after `time` (not yet event or censored)
    followed_to_time: bool  # someone was still at risk at `time` (or every subject had the event)


def km_at(durations: Sequence[float], events: Sequence[bool], time: float,
          z: float = Z95) -> KMPoint | None:
    """S(time) with a 95% Greenwood interval on the log(-log) scale; None when no subjects."""
    if not durations:
        return None
    steps = kaplan_meier(durations, events)
    survival, variance_sum, events_by = 1.0, 0.0, 0
    for step in steps:
        if step.time > time:
            break
        survival = step.survival
        events_by += step.events
        if step.events and step.at_risk > step.events:
            variance_sum += step.events / (step.at_risk * (step.at_risk - step.events))
    at_risk_after = sum(1 for d in durations if d > time)
    followed = at_risk_after > 0 or any(d >= time for d in durations) or survival == 0
    low = high = None
    if 0 < survival < 1:
        se = math.sqrt(variance_sum) / abs(math.log(survival))
        low = survival ** math.exp(z * se)
        high = survival ** math.exp(-z * se)
    elif survival == 1:
        low, high = None, 1.0
    else:
        low, high = 0.0, None
    return KMPoint(survival, low, high, len(durations), events_by, at_risk_after, followed)


# ---------------------------------------------------------------------------------------------
# Claim verdicts

SUPPORTED, NOT_SUPPORTED, NOT_MEASURABLE = "supported", "not supported", "cannot be measured"

VERDICT_RULES = [
    "Each claim is read as a range of the clinic's figure (printed beside it, e.g. 20–30%; "
    "\"most patients\" is 50–100%).",
    "Supported: the clinic's point estimate lies inside the claimed range. Firmly when its whole "
    "95% interval lies inside the range; tentatively when the interval also reaches outside it.",
    "Not supported: the point estimate lies outside the claimed range. Firmly when the whole 95% "
    "interval lies outside the range (the claim is contradicted); tentatively when the interval "
    "still reaches into it.",
    "Cannot be measured: the data needed are absent, the protocol's plan makes the claim "
    "inapplicable, or the figure is withheld because it rests on fewer than 11 courses.",
    "Early/late mix: supported when at least 10% of responders responded early (1–2 infusions) "
    "and at least 10% late (5 or more); firmly when both 95% lower bounds are at least 10%, "
    "firmly not supported when either upper bound is below 10%.",
]


@dataclass(frozen=True)
class Verdict:
    verdict: str
    strength: str | None  # firm / tentative; None when not measurable
    reason: str

    @property
    def text(self) -> str:
        if self.strength is None:
            return self.verdict
        return f"{self.verdict} ({self.strength})"


def range_verdict(estimate: float | None, low: float | None, high: float | None,
                  claim_low: float, claim_high: float, missing_reason: str = "") -> Verdict:
    """Verdict of a claimed range [claim_low, claim_high] against an estimate and its interval."""
    if estimate is None:
        return Verdict(NOT_MEASURABLE, None, missing_reason or "no estimate")
    low = estimate if low is None else low
    high = estimate if high is None else high
    inside = claim_low <= estimate <= claim_high
    interval_inside = claim_low <= low and high <= claim_high
    interval_outside = high < claim_low or low > claim_high
    if inside:
        if interval_inside:
            return Verdict(SUPPORTED, "firm", "estimate and whole interval inside the range")
        return Verdict(SUPPORTED, "tentative", "estimate inside; interval reaches outside")
    if interval_outside:
        return Verdict(NOT_SUPPORTED, "firm", "whole interval outside the range")
    return Verdict(NOT_SUPPORTED, "tentative", "estimate outside; interval reaches into the range")


def mix_verdict(early: tuple[float, float, float] | None, late: tuple[float, float, float] | None,
                floor: float = 0.10, missing_reason: str = "") -> Verdict:
    """Early/late mix claim: (share, low, high) of responders early and late against `floor`."""
    if early is None or late is None:
        return Verdict(NOT_MEASURABLE, None, missing_reason or "no estimate")
    if early[0] >= floor and late[0] >= floor:
        firm = early[1] >= floor and late[1] >= floor
        return Verdict(SUPPORTED, "firm" if firm else "tentative",
                       "both classes hold at least 10% of responders")
    firm = early[2] < floor or late[2] < floor
    return Verdict(NOT_SUPPORTED, "firm" if firm else "tentative",
                   "a class holds less than 10% of responders")


# ---------------------------------------------------------------------------------------------
# Small-cell suppression (CMS-style: 1..k never printed, nor derivable)


def is_small(count: int | None, small_cell_max: int) -> bool:
    return count is not None and 1 <= count <= small_cell_max


def rate_withheld(numerator: int, denominator: int, small_cell_max: int) -> bool:
    """A rate is withheld when its numerator, its complement or its denominator is 1..k."""
    return (is_small(numerator, small_cell_max) or is_small(denominator, small_cell_max)
            or is_small(denominator - numerator, small_cell_max))
