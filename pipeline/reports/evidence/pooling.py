"""Random-effects benchmark of a family of published response rates (docs/benchmarks.md).

Each study's rate p on its binomial n enters on the logit scale, y = log(p / (1 - p)), with
within-study variance v = 1 / (n p (1 - p)). A rate of 0 or 1 (no logit) gets the usual
continuity correction: 0.5 added to responders and to non-responders, y = log((x + 0.5) /
(n - x + 0.5)), v = 1 / (x + 0.5) + 1 / (n - x + 0.5) with x = p n. The between-study variance
tau^2 is Paule-Mandel (the default) or DerSimonian-Laird; tau^2 and I^2 are floored at 0.
p0 = expit(mu) with a Wald 95% CI expit(mu +/- z se); for k >= 3 the 95% prediction interval
for a new cohort is expit(mu +/- t(k - 2, 0.975) sqrt(tau^2 + se^2)). With I^2 >= 75% there is
no single benchmark.

The pooled figures are those of statsmodels' `combine_effects` (method_re "iterated" for
Paule-Mandel, "chi2" for DerSimonian-Laird), computed here with the same numpy operations in the
same order, so the numbers are the same to the last bit (tests/test_evidence_pooling.py compares
them with statsmodels): importing statsmodels takes pandas with it, ~0.5 s of every report.

Plain numbers in, a frozen dataclass out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
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
class Combined:
    """What the report takes from statsmodels' `combine_effects` (its attribute names)."""

    tau2: float  # not floored: negative for DerSimonian-Laird when Q < k - 1
    q: float
    mean_effect_fe: float
    sd_eff_w_fe: float
    mean_effect_re: float
    sd_eff_w_re: float


def paule_mandel_tau2(eff: NDArray[np.float64], var_eff: NDArray[np.float64],
                      atol: float = 1e-5, maxiter: int = 50) -> float:
    """Paule-Mandel tau^2 (DerSimonian and Kacker 2007, appendix 8): Newton steps on
    Q(tau^2) = sum w (y - m)^2 = k - 1 from tau^2 = 0; 0 when Q(0) < k - 1. statsmodels'
    `_fit_tau_iterative` step by step."""
    tau2 = 0.0
    k = eff.shape[0]
    for _ in range(maxiter):
        w = 1 / (var_eff + tau2)
        m = w.dot(eff) / w.sum(0)
        resid_sq = (eff - m) ** 2
        q_w = w.dot(resid_sq)
        ee = q_w - (k - 1)
        if ee < 0:
            return 0.0
        if abs(ee) <= atol:
            break
        tau2 += ee / (w**2).dot(resid_sq)
    return float(tau2)


def combine_effects(eff: NDArray[np.float64], var_eff: NDArray[np.float64],
                    method: str) -> Combined:
    """Fixed- and random-effects means of `eff` with variances `var_eff`, Cochran's Q and
    tau^2 by `method` (PAULE_MANDEL or DERSIMONIAN_LAIRD): statsmodels' `combine_effects`."""
    with np.errstate(invalid="ignore"):  # sqrt of a negative DerSimonian-Laird variance
        weights_fe = 1 / var_eff
        w_total_fe = weights_fe.sum(0)
        mean_effect_fe = (weights_fe / w_total_fe * eff).sum()
        q = (weights_fe * eff**2).sum(0)
        q -= (weights_fe * eff).sum() ** 2 / w_total_fe
        if method == PAULE_MANDEL:
            tau2 = paule_mandel_tau2(eff, var_eff)
        else:
            c = w_total_fe - (weights_fe**2).sum() / w_total_fe
            tau2 = (q - (eff.shape[0] - 1)) / c
        weights_re = 1 / (var_eff + tau2)
        w_total_re = weights_re.sum(0)
        mean_effect_re = (weights_re / weights_re.sum(0) * eff).sum()
        return Combined(float(tau2), float(q), float(mean_effect_fe),
                        float(np.sqrt(1 / w_total_fe)), float(mean_effect_re),
                        float(np.sqrt(1 / w_total_re)))


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

    result = combine_effects(np.array(y), np.array(v), method)
    tau2_raw = result.tau2
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
