"""Pure statistics of the case-mix comparison (docs/case-mix.md): O/E intervals, funnel limits,
C-statistic. Plain arrays in, plain arrays out, so a test can check them against scipy or by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray
from scipy import stats

FUNNEL_LEVELS = (0.95, 0.998)


def poisson_oe_interval(observed: ArrayLike, expected: ArrayLike, level: float = 0.95
                        ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Exact (Garwood) Poisson limits for O, divided by E: the usual interval of an O/E ratio.

    low = Gamma(O).ppf(a/2) / E (0 when O = 0), high = Gamma(O + 1).ppf(1 - a/2) / E, with
    a = 1 - level; the same as chi2(2O).ppf(a/2) / 2 and chi2(2O + 2).ppf(1 - a/2) / 2. E is
    treated as known (its own estimation error is ignored; docs/case-mix.md).
    """
    o = np.asarray(observed, dtype=float)
    e = np.asarray(expected, dtype=float)
    if np.any(o < 0) or np.any(e <= 0):
        raise ValueError("observed must be >= 0 and expected > 0")
    tail = (1 - level) / 2
    low = np.where(o > 0, stats.gamma.ppf(tail, np.maximum(o, 1)), 0.0) / e
    high = stats.gamma.ppf(1 - tail, o + 1) / e
    return low, high


def _poisson_limit(expected: NDArray[np.float64], p: float) -> NDArray[np.float64]:
    """The p-quantile of Poisson(E) on a continuous scale (Spiegelhalter 2005, appendix):
    r = smallest count with F(r) >= p, a = (F(r) - p) / (F(r) - F(r - 1)), limit = r - a."""
    r = stats.poisson.ppf(p, expected)
    f_r = stats.poisson.cdf(r, expected)
    f_below = stats.poisson.cdf(r - 1, expected)
    alpha = (f_r - p) / (f_r - f_below)
    return np.maximum(r - alpha, 0.0)


def oe_funnel_limits(expected: Sequence[float] | NDArray[np.float64],
                     levels: Sequence[float] = FUNNEL_LEVELS) -> pl.DataFrame:
    """Funnel-plot limits of O/E around 1 at each expected count E (O ~ Poisson(E) when a unit
    performs as the model expects): columns `expected`, then `low_95`/`high_95`,
    `low_99_8`/`high_99_8` (one pair per level, named by the level in percent).

    A unit whose O/E lies outside the 95% limits at its E differs from the model's expectation
    at the 5% level (two-sided); outside the 99.8% limits, at the 0.2% level.
    """
    e = np.asarray(expected, dtype=float)
    if np.any(e <= 0):
        raise ValueError("expected counts must be > 0")
    columns: dict[str, NDArray[np.float64]] = {"expected": e}
    for level in levels:
        name = f"{level * 100:g}".replace(".", "_")
        tail = (1 - level) / 2
        columns[f"low_{name}"] = _poisson_limit(e, tail) / e
        columns[f"high_{name}"] = _poisson_limit(e, 1 - tail) / e
    return pl.DataFrame(columns)


def funnel_grid(max_expected: float, points: int = 200) -> NDArray[np.float64]:
    """E values from 1 (or less when the largest unit is smaller) to max_expected, spaced evenly
    on a log scale, to draw smooth funnel curves."""
    top = max(float(max_expected), 1e-3)
    bottom = min(1.0, top / 2)
    return np.geomspace(bottom, top, points)


def c_statistic(outcome: ArrayLike, probability: ArrayLike) -> float | None:
    """Area under the ROC curve of fitted probabilities (Mann-Whitney form, ties count 1/2):
    the share of (responder, non-responder) pairs where the responder had the higher probability.
    None without at least one of each."""
    y = np.asarray(outcome, dtype=bool)
    p = np.asarray(probability, dtype=float)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return None
    ranks = stats.rankdata(p)
    u = ranks[y].sum() - positives * (positives + 1) / 2
    return float(u / (positives * negatives))
