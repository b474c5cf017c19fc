"""Per-family evidence fields (pipeline/reports/evidence/benchmarks.py): study intervals, pooling decided
by the registry, the SPEC evidence JSON keys, and the clinic's place in the exact funnel."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.proportion import proportion_confint

from pipeline.reports.evidence.benchmarks import PUBLISHED, WILSON, family_evidence, study_interval
from pipeline.reports.evidence.families import DEFAULT_FAMILIES, Family
from pipeline.reports.evidence.registry import load_registry

SPEC_KEYS = {"p0", "p0_ci_low", "p0_ci_high", "tau2", "i2", "k", "pi_low", "pi_high", "method",
             "n", "responders", "limit95_low", "limit95_high", "limit998_low", "limit998_high",
             "position"}


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def test_study_interval_published_ci_else_wilson_else_none(registry):
    # Alnefeesi 2022 prints 45% +/- 10: its own CI, not Wilson on 2,665 (43.1-46.9%)
    interval = study_interval(registry["alnefeesi2022_rw_meta"])
    assert (interval.low, interval.high, interval.source) == (0.35, 0.55, PUBLISHED)
    remission = study_interval(registry["alnefeesi2022_rw_meta"], "remission")
    assert (remission.low, remission.high) == (0.24, 0.36)
    # McInnes: 53.6% of 537 -> Wilson on 537
    interval = study_interval(registry["mcinnes2022_kit"])
    assert interval.source == WILSON
    assert (interval.low, interval.high) == pytest.approx(
        proportion_confint(0.536 * 537, 537, alpha=0.05, method="wilson"), abs=1e-6)
    # Salloum: 27 responders of the 56 evaluable (not of the 60 randomized)
    interval = study_interval(registry["salloum2019_fava_dose"])
    assert (interval.low, interval.high) == pytest.approx(
        proportion_confint(27, 56, alpha=0.05, method="wilson"), abs=1e-6)
    # no binomial n: Kaplan-Meier and meta-analytic rows print no interval
    for sid in ("oliver2022_6wk", "han2016_meta_d7", "cochrane2021_vs_placebo"):
        assert study_interval(registry[sid]) is None, sid
    # Juby's remission 32.4% is no whole count of its 66 (or 67): no interval
    assert study_interval(registry["juby2024_sa"], "remission") is None
    assert study_interval(registry["juby2024_sa"]) is not None


def test_family_json_has_the_spec_keys_and_an_independent_benchmark(registry):
    family = DEFAULT_FAMILIES["real_world_induction"]
    result = family_evidence(family, registry, n=40, responders=12).to_json()
    assert SPEC_KEYS <= set(result)
    # Paule-Mandel on McInnes 53.6%/537, Juby 60.6%/66, Wilkinson 45.5%/44, by statsmodels
    rates, ns = [0.536, 0.606, 0.455], [537, 66, 44]
    y = np.array([math.log(p / (1 - p)) for p in rates])
    v = np.array([1 / (n * p * (1 - p)) for p, n in zip(rates, ns, strict=True)])
    direct = combine_effects(y, v, method_re="iterated")
    assert result["k"] == 3 and result["method"] == "paule_mandel"
    assert result["tau2"] == pytest.approx(direct.tau2, rel=1e-9)
    assert result["p0"] == pytest.approx(1 / (1 + math.exp(-direct.mean_effect_re)), rel=1e-9)
    assert result["pi_low"] is not None and result["pi_low"] < result["p0_ci_low"]
    # 12 of 40 = 30%: under the 95% lower line, above the 99.8% one (lines from the
    # logit-normal mixture, checked against quadrature in test_funnel_exact.py)
    assert result["limit998_low"] < 0.30 < result["limit95_low"] < result["p0"]
    assert (result["position"], result["position998"]) == ("below", "within")
    pooled = [s["study_id"] for s in result["studies"] if s["pooled"]]
    assert pooled == ["mcinnes2022_kit", "juby2024_sa", "wilkinson2018_yale"]
    context = {s["study_id"]: s["reason"] for s in result["studies"] if not s["pooled"]}
    assert context["oliver2022_6wk"].startswith("Kaplan–Meier cumulative estimate")
    assert context["alnefeesi2022_rw_meta"].startswith("meta-analytic pooled rate")


def test_clinic_position_uses_the_exact_counts(registry):
    # Twice weekly: ELEKT-D alone, p0 = 0.554, tau2 unknown -> plain Binomial(20, 0.554).
    family = DEFAULT_FAMILIES["twice_weekly_3_4wk"]
    lows = [r for r in range(21) if stats.binom.cdf(r, 20, 0.554) < 0.025]
    highs = [r for r in range(21) if stats.binom.sf(r - 1, 20, 0.554) < 0.025]
    below, above = max(lows), min(highs)  # 6 and 16: P(R <= 6) = 0.0196, P(R >= 16) = 0.0205
    assert (below, above) == (6, 16)
    for responders, expected in ((below, "below"), (below + 1, "within"), (above - 1, "within"),
                                 (above, "above")):
        result = family_evidence(family, registry, n=20, responders=responders).to_json()
        assert result["position"] == expected, responders
        assert result["tau2"] is None and result["pi_low"] is None and result["k"] == 1
    withheld = family_evidence(family, registry, n=20, responders=None).to_json()
    assert withheld["position"] is None and withheld["limit95_low"] is not None
    no_clinic = family_evidence(family, registry).to_json()
    assert no_clinic["limit95_low"] is None and no_clinic["position"] is None


def test_no_single_benchmark_prints_the_range_and_no_position(registry):
    # Were Sakurai's pre-dose figure poolable, ELEKT-D + Sakurai would give I^2 ~ 97%
    forced = dict(registry)
    forced["sakurai2020_mgh"] = dataclasses.replace(registry["sakurai2020_mgh"],
                                                    pooling="poolable")
    family = Family("tw", "Twice weekly", "", pooled=("anand2023_elektd_qids", "sakurai2020_mgh"))
    result = family_evidence(family, forced, n=40, responders=30).to_json()
    assert result["single_benchmark"] is False and result["i2"] > 0.95
    assert result["p0"] is None and result["position"] is None and result["limit95_low"] is None
    assert (result["range_low"], result["range_high"]) == (0.183, 0.554)
    assert "18.3% to 55.4%" in result["no_benchmark_reason"]


def test_pooling_follows_the_registry_not_the_family_list(registry):
    # A hand-made family that lists Kaplan-Meier and meta-analytic rows under pooled:
    family = Family("mine", "Mine", "", pooled=("mcinnes2022_kit", "oliver2022_6wk",
                                                "han2016_meta_d7"))
    result = family_evidence(family, registry, n=30, responders=15).to_json()
    assert result["k"] == 1 and result["p0"] == 0.536
    reasons = {s["study_id"]: s["reason"] for s in result["studies"] if not s["pooled"]}
    assert set(reasons) == {"oliver2022_6wk", "han2016_meta_d7"}


def test_default_families_pool_no_km_meta_analytic_or_pre_dose_row(registry):
    for family in DEFAULT_FAMILIES.values():
        for sid in family.pooled:
            assert registry[sid].pooling == "poolable" and registry[sid].binomial_n, sid
    single = family_evidence(DEFAULT_FAMILIES["single_infusion"], registry).benchmark
    # Han 2016 (n = 368 counted both arms of nine RCTs) is context only: the pooled studies are
    # Salloum 48% of 56, Lii 60% of 20 and Mathew 54% of 26, all inside 0.48-0.60
    assert single.k == 3 and 0.48 < single.p0 < 0.60
