"""pipeline.stats: Wilson against statsmodels, Kaplan-Meier against lifelines, hand-worked cases."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lifelines import KaplanMeierFitter
from statsmodels.stats.proportion import proportion_confint

from pipeline.stats import (
    cumulative_incidence,
    kaplan_meier,
    km_median,
    p_chart,
    rate,
    wilson,
)


def test_wilson_is_none_for_empty_denominator():
    assert wilson(0, 0) is None
    assert rate(0, 0) == {"numerator": 0, "denominator": 0, "rate": None,
                          "ci_low": None, "ci_high": None}


def test_wilson_hand_worked_5_of_10():
    # z^2 = 3.841459; centre = (0.5 + 0.192073) / 1.384146 = 0.5;
    # half = 1.959964 * sqrt(0.025 + 0.009604) / 1.384146 = 0.263407 -> (0.236593, 0.763407)
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.236593, abs=1e-6)
    assert high == pytest.approx(0.763407, abs=1e-6)


def test_wilson_all_and_none_reach_the_bounds():
    assert wilson(0, 7)[0] == 0.0
    assert wilson(7, 7)[1] == 1.0


def test_wilson_rejects_impossible_counts():
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_wilson_matches_statsmodels_on_random_counts():
    rng = random.Random(20260331)
    for _ in range(500):
        n = rng.randint(1, 2000)
        k = rng.randint(0, n)
        low, high = wilson(k, n)
        ref_low, ref_high = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert low == pytest.approx(ref_low, abs=1e-6)
        assert high == pytest.approx(ref_high, abs=1e-6)


@given(st.integers(1, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_interval_contains_the_rate(counts):
    k, n = counts
    low, high = wilson(k, n)
    assert 0 <= low <= k / n <= high <= 1


def test_kaplan_meier_hand_worked():
    # times 1e 2c 3e 3e 5c: S(1) = 4/5 = 0.8; at 3, 3 at risk, 2 events -> 0.8 * 1/3 = 0.26667
    steps = kaplan_meier([1, 2, 3, 3, 5], [True, False, True, True, False])
    assert [(s.time, s.at_risk, s.events, s.censored) for s in steps] == [
        (1, 5, 1, 0), (2, 4, 0, 1), (3, 3, 2, 0), (5, 1, 0, 1)]
    assert [round(s.survival, 5) for s in steps] == [0.8, 0.8, 0.26667, 0.26667]
    assert km_median(steps) == 3
    assert cumulative_incidence(steps)[0] == (1, pytest.approx(0.2))


def test_kaplan_meier_median_is_none_when_half_never_reached():
    assert km_median(kaplan_meier([1, 2, 3], [True, False, False])) is None


def test_kaplan_meier_median_at_exactly_half():
    # 1e 2c 3c 4c: S(1) = 0.75; 1e 1e 2c 2c: S(1) = 0.5 -> median 1
    assert km_median(kaplan_meier([1, 1, 2, 2], [True, True, False, False])) == 1


def test_kaplan_meier_matches_lifelines_on_random_data():
    rng = random.Random(7)
    for _ in range(30):
        n = rng.randint(1, 80)
        durations = [rng.randint(0, 12) for _ in range(n)]
        events = [rng.random() < 0.6 for _ in range(n)]
        steps = kaplan_meier(durations, events)
        kmf = KaplanMeierFitter().fit(durations, events)
        reference = kmf.survival_function_["KM_estimate"]
        for step in steps:
            assert step.survival == pytest.approx(reference.loc[step.time], abs=1e-12)
        ours = km_median(steps)
        theirs = kmf.median_survival_time_
        assert (ours is None and math.isinf(theirs)) or ours == theirs


def test_p_chart_hand_worked():
    # p-bar = (10 + 30) / (100 + 100) = 0.2; 3 * sqrt(0.16 / 100) = 0.12 -> (0.08, 0.32)
    points = p_chart([10, 30, 0], [100, 100, 0])
    assert points[0]["centre"] == pytest.approx(0.2)
    assert points[0]["lower"] == pytest.approx(0.08)
    assert points[1]["upper"] == pytest.approx(0.32)
    assert points[1]["proportion"] == pytest.approx(0.3)
    assert points[2]["proportion"] is None
