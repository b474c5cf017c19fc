"""Case-mix adjustment (docs/case-mix.md) on synthetic clinics written into real DuckDB files.

Each clinic is generated (tests/casemix_clinics.py) with seeded numpy from a known truth: the
probability that a course responds is logistic in the baseline severity share (and, where
stated, in the prior adequate trials and a provider's odds ratio); the endpoint score is then
drawn so that the course is a responder (endpoint <= 50% of baseline) exactly when that
Bernoulli draw says so. The outcome engine, the monthly report's site/provider assignment and
sql/casemix read them back; nothing is taken from the code under test to build the expectations.
"""

from __future__ import annotations

import math
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from pipeline.casemix import (
    ADJUSTED,
    MIN_COURSES,
    POOLED,
    TOO_FEW,
    CaseMix,
    Design,
    case_mix,
    collapse_levels,
    design,
    fit,
    rolling_window,
)
from pipeline.casemix_predictors import (
    PROTOCOL,
    SEVERITY,
    SEX,
    CaseMixInputs,
    case_mix_courses,
    one_row_per_course,
    prior_trials,
    reporting_window,
)
from pipeline.casemix_stats import c_statistic, oe_funnel_limits, poisson_oe_interval
from pipeline.config import load_config
from pipeline.errors import InputError
from pipeline.reports.monthly.data import read_monthly
from pipeline.reports.payer.criteria import ResistanceRule, classify_trial
from pipeline.results import read_results
from tests.casemix_clinics import (
    AS_OF,
    MONTH,
    TRUE_SEVERITY,
    draw_courses,
    severe_site_clinic,
    weak_provider_clinic,
    write_clinic,
)


def run_case_mix(db_path: Path) -> CaseMix:
    """As the monthly report would: outcomes as of the month's end, its site/provider rule."""
    config = load_config(None)
    monthly = read_results(db_path, config, AS_OF, readers=(read_monthly,)).read(read_monthly)
    return case_mix(monthly.case_rows, monthly.units, monthly.case_mix_inputs,
                    config.instruments, MONTH, ResistanceRule(), preferred_instrument="PHQ-9")


def unit(result: CaseMix, kind: str, name: str) -> dict:
    rows = result.as_json()["sites" if kind == "site" else "providers"]
    return next(r for r in rows if r[kind] == name)


@pytest.fixture(scope="module")
def severe_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[CaseMix, pl.DataFrame]:
    path = tmp_path_factory.mktemp("severe") / "clinic.duckdb"
    courses = severe_site_clinic(path)
    return run_case_mix(path), courses


@pytest.fixture(scope="module")
def weak_provider(tmp_path_factory: pytest.TempPathFactory) -> tuple[CaseMix, pl.DataFrame]:
    path = tmp_path_factory.mktemp("weak") / "clinic.duckdb"
    courses = weak_provider_clinic(path)
    return run_case_mix(path), courses

# ---------------------------------------------------------------------------------------------
# (a) the severe site is not flagged; (b) the weak provider is


def test_site_with_the_severe_patients_is_not_flagged_once_case_mix_is_accounted_for(
        severe_site: tuple[CaseMix, pl.DataFrame]) -> None:
    result, courses = severe_site
    assert result.status == ADJUSTED and result.n == 600
    raw = {r["site"]: r["responded"] for r in
           courses.group_by("site").agg(pl.col("responded").mean()).to_dicts()}
    assert raw["B"] - raw["A"] > 0.2  # raw rates clearly differ (truth: ~0.29 vs ~0.59)
    for site in ("A", "B"):
        row = unit(result, "site", site)
        assert row["observed"] == courses.filter(pl.col("site") == site)["responded"].sum()
        assert row["oe_ci_low"] < 1 < row["oe_ci_high"], row
        assert abs(row["oe"] - 1) < 0.15, row
    # the adjusted rates are close to each other, the raw ones are not
    adjusted = [unit(result, "site", s)["adjusted_rate"] for s in ("A", "B")]
    assert abs(adjusted[0] - adjusted[1]) < 0.1


def test_provider_whose_patients_respond_at_a_quarter_of_the_odds_is_flagged(
        weak_provider: tuple[CaseMix, pl.DataFrame]) -> None:
    result, _ = weak_provider
    z = unit(result, "provider", "Z")
    assert z["oe_ci_high"] < 1, z
    assert z["oe"] < 0.75
    for other in ("X", "Y"):  # the others are not flagged below
        assert unit(result, "provider", other)["oe_ci_high"] > 1


def test_model_recovers_the_severity_slope_it_was_built_with(
        weak_provider: tuple[CaseMix, pl.DataFrame]) -> None:
    model = weak_provider[0].model
    assert model is not None
    slope = model.coefficients["baseline_severity_share"]
    # truth -5.0; provider Z is not in the model, which only shifts the intercept
    assert abs(slope.estimate - TRUE_SEVERITY) < 3 * slope.se
    # prior trials entered as bands against the reference; more trials, lower odds (truth -0.4 each)
    trial_terms = {k: c.estimate for k, c in model.coefficients.items()
                   if k.startswith("prior_adequate_trials[")}
    assert trial_terms and model.reference_levels["prior_adequate_trials"] == "0"
    assert model.coefficients["prior_adequate_trials[≥ 3]"].estimate < 0
    assert "site" not in " ".join(model.coefficients) and "provider" not in " ".join(
        model.coefficients)


def test_overall_expected_equals_observed_and_adjusted_rate_is_oe_times_overall_rate(
        weak_provider: tuple[CaseMix, pl.DataFrame]) -> None:
    result, courses = weak_provider
    assert result.model is not None
    # logistic maximum likelihood with an intercept: sum of fitted probabilities = responders
    assert result.courses["expected"].sum() == pytest.approx(courses["responded"].sum(), abs=1e-6)
    overall = courses["responded"].sum() / courses.height
    assert result.model.overall_rate == pytest.approx(overall)
    for row in result.as_json()["providers"]:
        assert row["adjusted_rate"] == pytest.approx(row["observed"] / row["expected"] * overall)


# ---------------------------------------------------------------------------------------------
# (c) too few courses; the window and what counts


def small_clinic(tmp_path: Path, evaluable: int) -> CaseMix:
    """`evaluable` evaluable courses, plus courses that must not count: one in progress, one
    without a follow-up score, one whose outcome date (2025-03-31) is before the window."""
    rng = np.random.default_rng(evaluable)
    courses = draw_courses(rng, evaluable, site=np.full(evaluable, "A"),
                           provider=np.full(evaluable, "A1"), baseline=rng.integers(10, 28, evaluable))
    path = tmp_path / "small.duckdb"
    write_clinic(path, courses)
    extras = [  # (start, infusions, follow-up)
        (date(2026, 3, 23), 2, True),  # 2 of 6 infusions, last 2026-03-25: in progress
        (date(2025, 6, 2), 6, False),  # completed, no follow-up score: not evaluable
        (date(2025, 3, 6), 6, True),  # outcome date 2025-03-06 + 25 = 2025-03-31: outside
    ]
    for k, (start, infusions, follow_up) in enumerate(extras):
        extra = draw_courses(rng, 1, site=np.array(["A"]), provider=np.array(["A1"]),
                             baseline=np.array([20]), first=9000 + k).with_columns(
            start=pl.lit(start))
        write_clinic(path, extra, infusions=infusions, with_follow_up=follow_up)
    return run_case_mix(path)


def test_under_50_evaluable_courses_nothing_is_adjusted(tmp_path: Path) -> None:
    result = small_clinic(tmp_path, MIN_COURSES - 1)
    assert result.status == TOO_FEW == "not adjusted: too few courses"
    assert result.n == 49
    assert result.as_json() == {"status": TOO_FEW, "n": 49, "sites": [], "providers": [],
                                "model": None,
                                "period": {"start": "2025-04-01", "end": "2026-03-31"}}


def test_fifty_evaluable_courses_are_adjusted(tmp_path: Path) -> None:
    result = small_clinic(tmp_path, MIN_COURSES)
    assert result.status == ADJUSTED and result.n == 50
    assert result.model is not None and result.model.n == 50


def test_rolling_window_is_the_twelve_months_ending_with_the_month() -> None:
    assert rolling_window("2026-03") == (date(2025, 4, 1), date(2026, 3, 31))
    assert rolling_window("2026-12") == (date(2026, 1, 1), date(2026, 12, 31))
    assert rolling_window("2024-02") == (date(2023, 3, 1), date(2024, 2, 29))


# ---------------------------------------------------------------------------------------------
# (d) C-statistic, (e) O/E interval, funnel limits: independent computations


def pairwise_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Every (responder, non-responder) pair: 1 if the responder's p is higher, 1/2 if tied."""
    pos, neg = p[y], p[~y]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def test_c_statistic_matches_a_pairwise_count(
        severe_site: tuple[CaseMix, pl.DataFrame]) -> None:
    result, _ = severe_site
    assert result.model is not None
    y = result.courses["responded"].to_numpy()
    p = result.courses["expected"].to_numpy()
    assert result.model.c_statistic == pytest.approx(pairwise_auc(y, p), abs=1e-12)
    assert 0.6 < result.model.c_statistic < 0.85  # severity alone: a moderate discrimination


def test_c_statistic_by_hand_with_ties() -> None:
    # responders 0.9, 0.5; non-responders 0.5, 0.1: pairs (0.9>0.5) (0.9>0.1) (0.5=0.5) (0.5>0.1)
    # = 3 + 1/2 of 4 pairs = 0.875
    assert c_statistic([1, 1, 0, 0], [0.9, 0.5, 0.5, 0.1]) == pytest.approx(0.875)
    assert c_statistic([1, 1], [0.2, 0.3]) is None


def test_oe_interval_is_exact_poisson_against_chi2(
        weak_provider: tuple[CaseMix, pl.DataFrame]) -> None:
    result, _ = weak_provider
    for row in result.as_json()["providers"]:
        o, e = row["observed"], row["expected"]
        # Garwood: [chi2(2O).ppf(.025) / 2, chi2(2O + 2).ppf(.975) / 2] / E
        assert row["oe_ci_low"] == pytest.approx(stats.chi2.ppf(0.025, 2 * o) / 2 / e, rel=1e-9)
        assert row["oe_ci_high"] == pytest.approx(stats.chi2.ppf(0.975, 2 * o + 2) / 2 / e,
                                                  rel=1e-9)


def test_oe_interval_by_hand() -> None:
    # Exact 95% limits for a Poisson count of 10 are 4.795 and 18.390 (tabulated, e.g. Breslow &
    # Day vol. II, appendix); with E = 8: 0.5994 and 2.2988. O = 0: [0, -ln(0.025)] = [0, 3.689].
    low, high = poisson_oe_interval([10, 0], [8.0, 2.0])
    assert low[0] == pytest.approx(4.7954 / 8, abs=1e-4)
    assert high[0] == pytest.approx(18.3904 / 8, abs=1e-4)
    assert low[1] == 0
    assert high[1] == pytest.approx(-math.log(0.025) / 2, abs=1e-9)


def test_funnel_limits_interpolate_the_poisson_quantiles() -> None:
    # E = 10, upper 97.5%: F(16) = 0.97296, F(17) = 0.98572 (Poisson(10) cdf), so r = 17 and
    # a = (0.98572 - 0.975) / (0.98572 - 0.97296) = 0.8401 -> O limit 16.160, O/E 1.6160.
    # lower 2.5%: F(3) = 0.010336, F(4) = 0.029253 -> r = 4, a = (0.029253 - 0.025) / 0.018917
    # = 0.2248 -> O limit 3.7752, O/E 0.37752.
    limits = oe_funnel_limits([10.0])
    assert limits["high_95"][0] == pytest.approx(1.6160, abs=2e-4)
    assert limits["low_95"][0] == pytest.approx(0.37752, abs=2e-4)
    grid = np.array([0.5, 2.0, 5.0, 20.0, 60.0, 200.0])
    limits = oe_funnel_limits(grid)
    for tail, column in ((0.025, "low_95"), (0.975, "high_95"), (0.001, "low_99_8"),
                         (0.999, "high_99_8")):
        r = stats.poisson.ppf(tail, grid)
        o_limit = limits[column].to_numpy() * grid
        assert np.all(o_limit <= r + 1e-9) and np.all(o_limit >= np.maximum(r - 1, 0) - 1e-9)
    # wider at 99.8% than at 95%, and narrowing as E grows
    assert np.all(limits["high_99_8"].to_numpy() > limits["high_95"].to_numpy())
    assert np.all(limits["low_99_8"].to_numpy() <= limits["low_95"].to_numpy())
    assert np.all(np.diff(limits["high_95"].to_numpy()) < 0)
    # at E = 200 the normal approximation 1 +/- 1.96 / sqrt(E) is close
    assert limits["high_95"][-1] == pytest.approx(1 + 1.96 / math.sqrt(200), abs=0.01)
    assert limits["low_99_8"][-1] == pytest.approx(1 - 3.09 / math.sqrt(200), abs=0.01)


# ---------------------------------------------------------------------------------------------
# Predictors: adequate trials as the payer packet counts them; rare levels; separation


def test_prior_adequate_trials_count_as_the_payer_packet_counts_them() -> None:
    rule = ResistanceRule()
    start = date(2026, 1, 10)
    d = date.fromisoformat
    trials = [  # (patient, class, start, end, adequate, improvement, episode)
        ("P1", "SSRI", d("2025-01-01"), d("2025-03-01"), True, 10.0, "current"),  # counts
        ("P1", "SNRI", d("2025-04-01"), d("2025-06-01"), True, 25.0, "current"),  # counts (25)
        ("P1", "Augmentation", d("2025-04-01"), d("2025-06-01"), True, 0.0, "current"),
        ("P1", "TCA", d("2025-07-01"), d("2025-08-01"), True, 0.0, "current"),  # 4.4 weeks
        ("P1", "SSRI", d("2025-07-01"), d("2025-10-01"), False, 0.0, "current"),  # dose
        ("P1", "SSRI", d("2025-07-01"), d("2025-10-01"), True, 30.0, "current"),  # improved
        ("P1", "SSRI", d("2025-07-01"), d("2025-10-01"), True, 0.0, "prior"),  # episode
        ("P1", "SSRI", d("2026-01-10"), d("2026-03-01"), True, 0.0, "current"),  # on day 1
        ("P1", None, d("2025-07-01"), None, True, 0.0, "current"),  # no end: incomplete
        ("P1", None, d("2025-07-01"), d("2025-10-01"), None, 0.0, "current"),  # no dose
        ("P1", None, d("2025-07-01"), d("2025-10-01"), True, None, "current"),  # no change
        ("P1", None, d("2025-07-01"), d("2025-10-01"), True, 0.0, None),  # no episode
        ("P1", "", d("2025-07-01"), d("2025-08-12"), True, 0.0, "current"),  # 6.0 weeks: counts
        ("P2", "SSRI", d("2025-07-01"), d("2025-10-01"), True, 40.0, "current"),  # P2: 0
    ]
    columns = ["patient_id", "drug_class", "start_date", "end_date", "adequate_dose",
               "improvement_pct", "episode"]
    history = pl.DataFrame(trials, schema=columns, orient="row")
    courses = pl.DataFrame({"patient_id": ["P1", "P2", "P3"], "course_id": ["c", "c", "c"],
                            "course_start": [start] * 3})
    got = prior_trials(courses, history, rule).sort("patient_id")
    oracle = sum(classify_trial(dict(zip(columns, t, strict=True)), start, rule)[0] == "counts"
                 for t in trials if t[0] == "P1")
    assert oracle == 3
    assert got["prior_adequate_trials"].to_list() == ["≥ 3", "0", "no record"]


def test_rare_levels_merge_with_a_neighbour_pool_or_join_the_reference() -> None:
    age = {"< 25": (2, 3), "25–44": (20, 20), "45–64": (30, 25), "≥ 65": (4, 10),
           "unknown": (1, 1)}
    mapping, reference, notes = collapse_levels("age_band", age, ("< 25", "25–44", "45–64",
                                                                  "≥ 65"))
    # "< 25" has 2 responders -> joins its only neighbour; "≥ 65" has 4 -> joins "45–64";
    # "unknown" (1, 1) cannot stand alone -> joins the reference, the lowest ordered group
    assert mapping == {"< 25": "< 25 / 25–44", "25–44": "< 25 / 25–44",
                       "45–64": "45–64 / ≥ 65", "≥ 65": "45–64 / ≥ 65",
                       "unknown": "< 25 / 25–44"}
    assert reference == "< 25 / 25–44" and len(notes) == 3
    protocol = {"IND6": (40, 40), "TW4": (3, 10), "KET": (4, 2), "BOOST": (10, 12)}
    mapping, reference, _ = collapse_levels("protocol", protocol, ())
    # TW4 + KET = 7 responders, 12 non-responders: enough as one pooled level
    assert mapping == {"IND6": "IND6", "BOOST": "BOOST", "TW4": POOLED, "KET": POOLED}
    assert reference == "IND6"
    mapping, reference, notes = collapse_levels("sex", {"female": (30, 30), "male": (2, 1)}, ())
    assert reference is None and "sex left out: fewer than two levels" in notes[0]
    _, reference, notes = collapse_levels("instrument", {"PHQ-9": (30, 30)}, ())
    assert reference is None and notes == ["instrument left out: the same for every course"]


def test_a_perfectly_separating_column_is_left_out_and_said_so() -> None:
    rng = np.random.default_rng(3)
    n = 80
    severity = rng.random(n)
    y = (rng.random(n) < 0.5).astype(float)
    separating = y.copy()  # 1 exactly for responders: infinite log-odds
    matrix = np.column_stack([np.ones(n), severity, separating])
    d = Design(["intercept", "baseline_severity_share", "protocol[KET6]"],
               ["intercept", "baseline_severity_share", "protocol"], matrix,
               {"protocol": "IND6"}, [])
    result, kept = fit(y, d)
    assert kept.names == ["intercept", "baseline_severity_share"]
    assert any("protocol left out" in note for note in kept.notes)
    assert result.converged and np.all(np.asarray(result.bse) < 5)


def test_an_instrument_missing_from_the_registry_is_a_clear_input_error() -> None:
    co = pl.DataFrame({
        "patient_id": ["P1"], "course_id": ["c"], "instrument": ["XYZ-9"],
        "status": ["completed"], "course_outcome_date": [date(2026, 3, 1)], "evaluable": [True],
        "category": ["response"], "baseline_score": [20.0], "protocol_id": ["IND6"],
        "course_start": [date(2026, 2, 1)]})
    units = pl.DataFrame({"patient_id": ["P1"], "course_id": ["c"], "site": ["A"],
                          "provider": ["A1"]})
    inputs = CaseMixInputs(pl.DataFrame(schema={"patient_id": pl.String, "birth_date": pl.Date,
                                                "sex": pl.String}), pl.DataFrame())
    with pytest.raises(InputError, match=r"'XYZ-9' is not in the instrument registry.*total_max"):
        case_mix_courses(co, units, inputs, load_config(None).instruments, date(2025, 4, 1),
                         AS_OF, ResistanceRule())


def test_json_shape(weak_provider: tuple[CaseMix, pl.DataFrame]) -> None:
    doc = weak_provider[0].as_json()
    assert set(doc) >= {"sites", "providers", "model"}
    keys = {"observed", "expected", "oe", "oe_ci_low", "oe_ci_high", "adjusted_rate"}
    assert keys | {"site"} <= set(doc["sites"][0])
    assert keys | {"provider"} <= set(doc["providers"][0])
    assert {"n", "coefficients", "c_statistic"} <= set(doc["model"])
    assert set(doc["model"]["coefficients"]["intercept"]) == {"estimate", "se"}
    assert [r["provider"] for r in doc["providers"]] == ["X", "Y", "Z"]


def test_design_codes_levels_against_the_reference_after_merging() -> None:
    # 60 courses: protocol IND6 30 responders / 24 not, TW4 6 courses all responders (cannot
    # stand alone, joins IND6, which leaves protocol with one level: left out);
    # sex female 25 responders / 15 not, male 11 / 9; severity varies.
    responded = [True] * 30 + [False] * 24 + [True] * 6
    courses = pl.DataFrame({
        "responded": responded,
        "baseline_severity_share": np.linspace(0.3, 0.9, 60),
        "protocol": ["IND6"] * 54 + ["TW4"] * 6,
        "sex": (["female"] * 25 + ["male"] * 5) + (["female"] * 15 + ["male"] * 9)
               + ["male"] * 6,
    })
    d = design(courses, [SEVERITY, PROTOCOL, SEX])
    assert d.names == ["intercept", "baseline_severity_share", "sex[male]"]
    assert d.references == {"sex": "female"}
    assert any("protocol left out" in note for note in d.notes)
    assert d.matrix[:, 2].sum() == 5 + 9 + 6


def test_a_course_counts_once_on_the_headline_instrument_when_evaluable_there() -> None:
    # course a: PHQ-9 and MADRS evaluable -> PHQ-9; course b: PHQ-9 not evaluable -> MADRS;
    # course c: MADRS and GAD-7 -> MADRS (2 evaluable MADRS rows in the window vs 1 GAD-7)
    rows = pl.DataFrame({
        "patient_id": ["P"] * 6, "course_id": ["a", "a", "b", "b", "c", "c"],
        "instrument": ["MADRS", "PHQ-9", "PHQ-9", "MADRS", "GAD-7", "MADRS"],
        "evaluable": [True, True, False, True, True, True],
        "status": ["completed"] * 6, "course_outcome_date": [date(2026, 3, 1)] * 6})
    got = one_row_per_course(reporting_window(rows, date(2025, 4, 1), AS_OF), "PHQ-9")
    assert got.select("course_id", "instrument").rows() == [("a", "PHQ-9"), ("b", "MADRS"),
                                                            ("c", "MADRS")]


def test_without_treatment_history_prior_trials_are_not_a_predictor(
        severe_site: tuple[CaseMix, pl.DataFrame]) -> None:
    model = severe_site[0].model
    assert model is not None
    assert "prior_adequate_trials" not in model.reference_levels
    assert not any(name.startswith("prior") for name in model.coefficients)
    assert set(model.reference_levels) == {"age_band", "sex", "protocol"}
    assert "instrument left out: the same for every course" in model.notes


def test_expected_per_unit_is_the_exact_sum_the_same_every_time():
    # 300,000 courses over 7 sites: E per site must be the exactly rounded sum of the courses'
    # expected probabilities (math.fsum over the site's rows, grouped here in plain Python),
    # and the same on every call (a threaded float sum differed in its last digits)
    from pipeline.casemix import compare_units

    rng = np.random.default_rng(3)
    n = 300_000
    sites = rng.choice([f"S{i}" for i in range(7)], n)
    expected = rng.uniform(0.05, 0.95, n) * 10.0 ** rng.integers(-3, 1, n)
    responded = rng.random(n) < 0.4
    fitted = pl.DataFrame({"site": sites, "expected": expected, "responded": responded})
    by_site: dict[str, list[float]] = {}
    for site, value in zip(sites.tolist(), expected.tolist(), strict=True):
        by_site.setdefault(site, []).append(value)
    runs = [compare_units(fitted, "site", 0.4) for _ in range(4)]
    assert all(run == runs[0] for run in runs)
    assert {u.name: u.expected for u in runs[0]} == {
        site: math.fsum(values) for site, values in by_site.items()}
