"""Random-effects benchmark (pipeline/reports/evidence/pooling.py) against hand-worked DerSimonian-Laird,
the Paule-Mandel estimating equation and statsmodels called directly."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects

from pipeline.reports.evidence.families import DEFAULT_FAMILIES
from pipeline.reports.evidence.pooling import logit_effect, random_effects
from pipeline.reports.evidence.registry import load_registry

Z = 1.959964


def expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def dersimonian_laird(rates, ns):
    """Written out from the textbook formulas, independently of the code under test."""
    y = [math.log(p / (1 - p)) for p in rates]
    v = [1 / (n * p * (1 - p)) for p, n in zip(rates, ns, strict=True)]
    w = [1 / x for x in v]
    total = sum(w)
    fixed = sum(wi * yi for wi, yi in zip(w, y, strict=True)) / total
    q = sum(wi * (yi - fixed) ** 2 for wi, yi in zip(w, y, strict=True))
    c = total - sum(wi * wi for wi in w) / total
    tau2 = max(0.0, (q - (len(y) - 1)) / c)
    w_re = [1 / (vi + tau2) for vi in v]
    mu = sum(wi * yi for wi, yi in zip(w_re, y, strict=True)) / sum(w_re)
    se = 1 / math.sqrt(sum(w_re))
    return {"tau2": tau2, "q": q, "i2": max(0.0, (q - (len(y) - 1)) / q), "mu": mu, "se": se}


def test_dersimonian_laird_on_three_studies_by_hand():
    # McInnes 2022 53.6% of 537, Juby 2024 60.6% of 66, Wilkinson 2018 45.5% of 44.
    # y = logit p:          0.144250, 0.430529, -0.180488
    # v = 1/(n p (1-p)):    0.0074876, 0.0634581, 0.0916515   (w = 1/v: 133.554, 15.758, 10.911)
    # W = 160.2234; fixed mean = (133.554*0.144250 + 15.758*0.430529 - 10.911*0.180488) / W
    #   = 0.150292
    # Q = sum w (y - 0.150292)^2 = 0.00488 + 1.23649 + 1.19488 = 2.43625
    # C = W - sum w^2 / W = 160.2234 - 113.6168 = 46.6066
    # tau2 = (Q - 2) / C = 0.43625 / 46.6066 = 0.0093603;  I2 = (Q - 2) / Q = 0.17907
    # w* = 1/(v + tau2) = 59.354, 13.733, 9.900 (sum 82.987)
    # mu = (59.354*0.144250 + 13.733*0.430529 - 9.900*0.180488) / 82.987 = 0.152884
    # se = 1/sqrt(82.987) = 0.109773
    # p0 = expit(0.152884) = 0.538147; CI expit(0.152884 -/+ 1.959964*0.109773) = 0.48444, 0.59098
    # PI: t(1, 0.975) = 12.7062; half = 12.7062 * sqrt(0.0093603 + 0.0120501) = 1.85950
    #   -> expit(-1.70662) = 0.15364, expit(2.01234) = 0.88206
    result = random_effects([0.536, 0.606, 0.455], [537, 66, 44], method="dersimonian_laird")
    assert result.k == 3 and result.method == "dersimonian_laird"
    assert result.tau2 == pytest.approx(0.0093603, abs=1e-6)
    assert result.i2 == pytest.approx(0.17907, abs=1e-4)
    assert result.q == pytest.approx(2.43625, abs=1e-4)
    assert result.p0 == pytest.approx(0.538147, abs=1e-5)
    assert (result.p0_ci_low, result.p0_ci_high) == pytest.approx((0.48444, 0.59098), abs=1e-4)
    assert (result.pi_low, result.pi_high) == pytest.approx((0.15364, 0.88206), abs=1e-4)
    assert result.single and result.reason is None
    # and the written-out formulas above, to full precision
    hand = dersimonian_laird([0.536, 0.606, 0.455], [537, 66, 44])
    assert result.tau2 == pytest.approx(hand["tau2"], rel=1e-9)
    assert result.mu == pytest.approx(hand["mu"], rel=1e-9)
    assert result.se == pytest.approx(hand["se"], rel=1e-9)


def test_heterogeneous_studies_have_no_single_benchmark():
    # 50% of 100, 20% of 50, 80% of 25: y = 0, -1.386294, 1.386294; v = 0.04, 0.125, 0.25
    # w = 25, 8, 4 (W = 37); fixed mean = (-11.090355 + 5.545177)/37 = -0.149870
    # Q = 25*0.022461 + 8*1.529052 + 4*2.360302 = 22.23069; C = 37 - 705/37 = 17.945946
    # tau2 = 20.23069 / 17.945946 = 1.127313;  I2 = 20.23069 / 22.23069 = 0.910034 >= 0.75
    result = random_effects([0.5, 0.2, 0.8], [100, 50, 25], method="dersimonian_laird")
    assert result.tau2 == pytest.approx(1.127313, abs=1e-5)
    assert result.i2 == pytest.approx(0.910034, abs=1e-5)
    assert not result.single
    assert "I² = 91%" in result.reason and "20.0% to 80.0%" in result.reason
    assert (result.range_low, result.range_high) == (0.2, 0.8)


def test_elekt_d_with_sakurai_is_the_issue_example_of_no_single_benchmark():
    # ELEKT-D 55.4% of 195 and Sakurai 18.3% of 82: y = 0.21716, -1.49808;
    # v = 1/(195*0.554*0.446) = 0.020754, 1/(82*0.183*0.817) = 0.081572 (w = 48.183, 12.259)
    # fixed = (48.183*0.21716 - 12.259*1.49808)/60.442 = -0.13074
    # Q = 48.183*0.34790^2 + 12.259*1.36734^2 = 5.8319 + 22.9195 = 28.751; I2 = 27.751/28.751
    result = random_effects([0.554, 0.183], [195, 82])
    assert result.i2 == pytest.approx(27.751 / 28.751, abs=2e-4)  # ~97%, as the issue says
    assert not result.single and result.pi_low is None  # two studies: no prediction interval


def test_paule_mandel_matches_statsmodels_and_solves_its_estimating_equation():
    rates, ns = [0.536, 0.606, 0.455, 0.27], [537, 66, 44, 190]
    y = np.array([math.log(p / (1 - p)) for p in rates])
    v = np.array([1 / (n * p * (1 - p)) for p, n in zip(rates, ns, strict=True)])
    direct = combine_effects(y, v, method_re="iterated")
    result = random_effects(rates, ns)  # Paule-Mandel is the default
    assert result.method == "paule_mandel"
    assert result.tau2 == pytest.approx(direct.tau2, rel=1e-9)
    assert result.mu == pytest.approx(direct.mean_effect_re, rel=1e-9)
    assert result.se == pytest.approx(direct.sd_eff_w_re, rel=1e-9)
    assert result.i2 == pytest.approx(max(0.0, direct.i2), rel=1e-9)
    # Paule-Mandel: the generalised Q at tau2 equals its expectation k - 1
    w = 1 / (v + result.tau2)
    mu = float((w * y).sum() / w.sum())
    assert float((w * (y - mu) ** 2).sum()) == pytest.approx(len(y) - 1, abs=1e-4)
    assert result.mu == pytest.approx(mu, abs=1e-6)
    # prediction interval, k = 4: t(2, 0.975) = 4.302653
    half = 4.302653 * math.sqrt(result.tau2 + result.se ** 2)
    assert result.pi_low == pytest.approx(expit(result.mu - half), rel=1e-6)
    assert result.pi_high == pytest.approx(expit(result.mu + half), rel=1e-6)


def test_tau2_and_i2_are_floored_at_zero():
    # Murrough 70.8% of 24 and Phillips 59% of 41: y = 0.885690, 0.363965
    # v = 1/(24*0.708*0.292) = 0.201545, 1/(41*0.59*0.41) = 0.100828; w = 4.961664, 9.917900
    # fixed mean = (4.961664*0.885690 + 9.917900*0.363965)/14.879564 = 0.537937
    # Q = 4.961664*0.347753^2 + 9.917900*0.173972^2 = 0.600025 + 0.300177 = 0.900202 < 1:
    # DerSimonian-Laird tau2 = (0.9002 - 1)/C < 0 -> 0; I2 < 0 -> 0; p0 = expit(fixed mean)
    direct = combine_effects(np.array([0.885690, 0.363965]), np.array([0.201545, 0.100828]),
                             method_re="chi2")
    assert direct.tau2 < 0 and direct.i2 < 0  # statsmodels does not floor them
    for method in ("dersimonian_laird", "paule_mandel"):
        result = random_effects([0.708, 0.59], [24, 41], method=method)
        assert result.tau2 == 0.0 and result.i2 == 0.0
        assert result.p0 == pytest.approx(expit(0.537937), abs=1e-6)  # 0.631332
        assert result.se == pytest.approx(1 / math.sqrt(14.879564), abs=1e-6)
        assert result.q == pytest.approx(0.900202, abs=1e-5)
        assert result.pi_low is None and result.pi_high is None  # k = 2


def test_one_study_is_its_own_rate_with_unknown_tau2():
    # 55.4% of 195: logit 0.217161, se = sqrt(1/48.18278) = 0.144064
    # CI expit(0.217161 -/+ 0.282362) = expit(-0.065201), expit(0.499523) = 0.48371, 0.62234
    result = random_effects([0.554], [195])
    assert result.p0 == 0.554 and result.k == 1 and result.method == "single_study"
    assert result.tau2 is None and result.i2 is None and result.pi_low is None
    assert (result.p0_ci_low, result.p0_ci_high) == pytest.approx((0.48371, 0.62234), abs=1e-4)


def test_zero_and_full_rates_get_the_half_count_correction():
    # 0 of 20: y = log(0.5 / 20.5) = -3.713572, v = 1/0.5 + 1/20.5 = 2.048780
    y, v, corrected = logit_effect(0.0, 20)
    assert (y, v, corrected) == (pytest.approx(-3.713572, abs=1e-6),
                                 pytest.approx(2.048780, abs=1e-6), True)
    y, v, corrected = logit_effect(1.0, 20)
    assert y == pytest.approx(3.713572, abs=1e-6) and corrected
    result = random_effects([1.0, 0.9, 0.85], [12, 40, 60])
    assert result.corrected == (0,) and 0.85 < result.p0 < 1


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="no studies"):
        random_effects([], [])
    with pytest.raises(ValueError, match="method"):
        random_effects([0.5, 0.4], [10, 20], method="hksj")
    with pytest.raises(ValueError, match="proportion"):
        random_effects([53.6], [537])


@pytest.mark.parametrize("method", ["paule_mandel", "dersimonian_laird"])
def test_every_default_family_agrees_with_an_independent_recomputation(method):
    registry = load_registry()
    for family in DEFAULT_FAMILIES.values():
        rates = [registry[s].response_rate for s in family.pooled]
        ns = [registry[s].binomial_n for s in family.pooled]
        result = random_effects(rates, ns, method=method)
        assert result.k == len(rates)
        if len(rates) == 1:
            assert result.p0 == rates[0] and result.tau2 is None
            continue
        if method == "dersimonian_laird":
            hand = dersimonian_laird(rates, ns)
        else:
            y = np.array([math.log(p / (1 - p)) for p in rates])
            v = np.array([1 / (n * p * (1 - p)) for p, n in zip(rates, ns, strict=True)])
            direct = combine_effects(y, v, method_re="iterated")
            hand = {"tau2": max(0.0, direct.tau2), "i2": max(0.0, direct.i2)}
            w = 1 / (v + hand["tau2"])
            hand["mu"], hand["se"] = float((w * y).sum() / w.sum()), float(w.sum() ** -0.5)
        assert result.tau2 == pytest.approx(hand["tau2"], abs=1e-9)
        assert result.i2 == pytest.approx(hand["i2"], abs=1e-9)
        assert result.p0 == pytest.approx(expit(hand["mu"]), abs=1e-9)
        assert result.p0_ci_low == pytest.approx(expit(hand["mu"] - Z * hand["se"]), abs=1e-6)
        if len(rates) >= 3:
            t = stats.t.ppf(0.975, len(rates) - 2)
            half = t * math.sqrt(hand["tau2"] + hand["se"] ** 2)
            assert result.pi_high == pytest.approx(expit(hand["mu"] + half), abs=1e-6)
        else:
            assert result.pi_low is None
