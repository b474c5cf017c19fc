"""Random-effects benchmark of a family of published response rates (docs/benchmarks.md).

Each study's rate p on its binomial n enters on the logit scale, y = log(p / (1 - p)), with
within-study variance v = 1 / (n p (1 - p)). A rate of 0 or 1 (no logit) gets the usual
continuity correction: 0.5 added to responders and to non-responders, y = log((x + 0.5) /
(n - x + 0.5)), v = 1 / (x + 0.5) + 1 / (n - x + 0.5) with x = p n. The between-study variance
tau^2 is Paule-Mandel (statsmodels' `combine_effects`, method_re "iterated"; the default) or
DerSimonian-Laird ("chi2"); tau^2 and I^2 are floored at 0. p0 = expit(mu) with a Wald 95% CI
expit(mu +/- z se); for k >= 3 the 95% prediction interval for a new cohort is
expit(mu +/- t(k - 2, 0.975) sqrt(tau^2 + se^2)). With I^2 >= 75% there is no single benchmark.

Plain numbers in, a frozen dataclass out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

PAULE_MANDEL, DERSIMONIAN_LAIRD, SINGLE_STUDY = "paule_mandel", "dersimonian_laird", "single_study"
METHOD_RE = {PAULE_MANDEL: "iterated", DERSIMONIAN_LAIRD: "chi2"}
ALIASES = {"iterated": PAULE_MANDEL, "pm": PAULE_MANDEL, "chi2": DERSIMONIAN_LAIRD,
           "dl": DERSIMONIAN_LAIRD}
METHOD_NAMES = {PAULE_MANDEL: "Paule–Mandel", DERSIMONIAN_LAIRD: "DerSimonian–Laird",
                SINGLE_STUDY: "one study"}
I2_LIMIT = 0.75  # at or above it the studies are too heterogeneous for a single benchmark
CONTINUITY = 0.5


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def logit_effect(rate: float, n: float) -> tuple[float, float, bool]:
    """(logit rate, its within-study variance, whether the continuity correction was applied)."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if not 0 <= rate <= 1:
        raise ValueError(f"rate must be a proportion, got {rate}")
    x = rate * n
    if 0 < rate < 1:
        return logit(rate), 1 / (n * rate * (1 - rate)), False
    a, b = x + CONTINUITY, n - x + CONTINUITY
    return math.log(a / b), 1 / a + 1 / b, True


@dataclass(frozen=True)
class Benchmark:
    """A family's pooled response rate and the spread of its studies."""

    k: int
    method: str  # PAULE_MANDEL, DERSIMONIAN_LAIRD or SINGLE_STUDY
    p0: float
    p0_ci_low: float
    p0_ci_high: float
    tau2: float | None  # None for one study (unknown)
    i2: float | None  # None for one study
    q: float | None  # Cochran's Q
    pi_low: float | None  # 95% prediction interval, k >= 3 only
    pi_high: float | None
    mu: float  # logit p0
    se: float  # standard error of mu
    range_low: float  # lowest and highest study rate
    range_high: float
    corrected: tuple[int, ...]  # indices of studies given the continuity correction
    single: bool  # False when I^2 >= I2_LIMIT: no single benchmark
    reason: str | None  # why there is no single benchmark

    @property
    def method_name(self) -> str:
        return METHOD_NAMES[self.method]


def random_effects(rates: Sequence[float], ns: Sequence[float], method: str = PAULE_MANDEL,
                   level: float = 0.95, i2_limit: float = I2_LIMIT) -> Benchmark:
    """Pool study rates (proportions) on their binomial ns; see the module docstring."""
    if len(rates) != len(ns):
        raise ValueError("rates and ns must have the same length")
    if not rates:
        raise ValueError("no studies to pool")
    method = ALIASES.get(method, method)
    if method not in METHOD_RE:
        raise ValueError(f"method must be one of {', '.join((*METHOD_RE, *ALIASES))}, "
                         f"not {method!r}")
    effects = [logit_effect(p, n) for p, n in zip(rates, ns, strict=True)]
    y = [e[0] for e in effects]
    v = [e[1] for e in effects]
    corrected = tuple(i for i, e in enumerate(effects) if e[2])
    z = float(stats.norm.ppf(0.5 + level / 2))
    k = len(rates)
    low, high = min(rates), max(rates)
    if k == 1:
        se = math.sqrt(v[0])
        return Benchmark(1, SINGLE_STUDY, rates[0], expit(y[0] - z * se), expit(y[0] + z * se),
                         None, None, None, None, None, y[0], se, low, high, corrected, True, None)

    import numpy as np
    from statsmodels.stats.meta_analysis import combine_effects

    with np.errstate(invalid="ignore"):  # sqrt of a negative DerSimonian-Laird variance
        result = combine_effects(np.array(y), np.array(v), method_re=METHOD_RE[method])
    tau2_raw = float(result.tau2)
    if tau2_raw > 0:
        tau2, mu, se = tau2_raw, float(result.mean_effect_re), float(result.sd_eff_w_re)
    else:
        # floored at 0: the random-effects estimate is then the fixed-effect (inverse-variance)
        # one; statsmodels would weight by 1 / (v + tau2) with a negative DerSimonian-Laird tau2
        tau2, mu, se = 0.0, float(result.mean_effect_fe), float(result.sd_eff_w_fe)
    q = float(result.q)
    i2 = max(0.0, (q - (k - 1)) / q) if q > 0 else 0.0
    pi_low = pi_high = None
    if k >= 3:
        t = float(stats.t.ppf(0.5 + level / 2, k - 2))
        half = t * math.sqrt(tau2 + se * se)
        pi_low, pi_high = expit(mu - half), expit(mu + half)
    single = i2 < i2_limit
    reason = None if single else (
        f"I² = {100 * i2:.0f}% (≥ {100 * i2_limit:.0f}%): the studies differ far more than "
        f"chance explains, so no single rate describes them; they range from {100 * low:.1f}% "
        f"to {100 * high:.1f}%")
    return Benchmark(k, method, expit(mu), expit(mu - z * se), expit(mu + z * se), tau2, i2, q,
                     pi_low, pi_high, mu, se, low, high, corrected, single, reason)
