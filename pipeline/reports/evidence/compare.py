"""Pure functions of the evidence comparison: intervals from published rates, Kaplan-Meier
point estimates with an interval, claim verdicts and small-cell suppression (the benchmark and
funnel limits: pooling.py, benchmarks.py, pipeline/stats.py).

Plain numbers in, plain numbers out, so tests can hand-work every one (docs/definitions.md "Comparison with
published evidence", "Small-cell suppression").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.methods import Labels
from pipeline.stats import Z95, kaplan_meier

# ---------------------------------------------------------------------------------------------
# Published intervals


def wilson_from_rate(p: float, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a published rate p on n (successes p*n need not be whole)."""
    if n <= 0:
        raise ValueError("n must be positive")
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denominator
    return max(centre - half, 0.0), min(centre + half, 1.0)


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

def verdict_rules(labels: Labels, comparable: bool = True) -> list[str]:
    """How a claim is judged (printed on page 1), with the small-cell size in force; the
    "not comparable" rule only when the clinic's response is not the studies'."""
    rules = [
        "Each claim is read as a range of the clinic's figure (printed beside it, e.g. 20–30%; "
        "\"most patients\" is 50–100%).",
        "Supported: the clinic's point estimate lies inside the claimed range. Firmly when its "
        "whole 95% interval lies inside the range; tentatively when the interval also reaches "
        "outside it.",
        "Not supported: the point estimate lies outside the claimed range. Firmly when the whole "
        "95% interval lies outside the range (the claim is contradicted); tentatively when the "
        "interval still reaches into it.",
        "Cannot be measured: the data needed are absent, the protocol's plan makes the claim "
        "inapplicable, or the figure is withheld because it rests on "
        f"{labels.fewer_than()} courses.",
        "Early/late mix: supported when at least 10% of responders responded early (1–2 "
        "infusions) and at least 10% late (5 or more); firmly when both 95% lower bounds are at "
        "least 10%, firmly not supported when either upper bound is below 10%.",
    ]
    if not comparable:
        rules.append(
            f"Not comparable: the claim rests on response, and the clinic's response (≥"
            f"{labels.response_pct}% reduction) is not the one the claims and the studies use (a "
            "score at least halved); the clinic's figure is printed, no verdict is given.")
    return rules


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
