"""SPEC §2 "Category", "Remission", "Reliable improvement / deterioration", "Infusions to
response", recovery (domain.md §3), and definitions taken from the config."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from outcome_fixtures import make_clinic

from pipeline.config import Config, Definitions, load_config
from pipeline.metrics import local_connection, protocol_summary
from pipeline.outcomes import define_settings, outcome_sql_files


def course_with(tmp_path, baseline, endpoint, instrument="PHQ-9", config=None):
    """One completed 1-infusion course (02-15 09:00) with a baseline and an endpoint score."""
    clinic = make_clinic(tmp_path, config).protocol("ONE", 1)
    clinic.session("2026-02-15 09:00", protocol_id="ONE")
    clinic.score("2026-02-15 08:00", baseline, instrument=instrument)
    clinic.score("2026-02-20 10:00", endpoint, instrument=instrument)
    (row,) = clinic.rows(instrument=instrument)
    return row


def test_reduction_of_exactly_50_percent_is_response(tmp_path):
    row = course_with(tmp_path, 20, 10)  # -50.0%
    assert (row["pct_change"], row["category"]) == (-50.0, "response")


def test_reduction_of_exactly_25_percent_is_partial_response(tmp_path):
    row = course_with(tmp_path, 20, 15)  # -25.0%
    assert (row["pct_change"], row["category"]) == (-25.0, "partial_response")


def test_reduction_under_25_percent_is_non_response(tmp_path):
    row = course_with(tmp_path, 20, 16)  # -20.0%
    assert (row["pct_change"], row["category"]) == (-20.0, "non_response")


def test_response_boundary_is_exact_for_thirds(tmp_path):
    # 27 -> 13.5 is exactly -50%; comparing without division avoids a float miss.
    row = course_with(tmp_path, 27, 13.5)
    assert row["category"] == "response"


def test_remission_is_empty_when_baseline_at_cutoff(tmp_path):
    row = course_with(tmp_path, 4, 1)  # PHQ-9 cutoff 4: baseline 4 is not above it
    assert row["remission"] is None
    assert row["category"] == "response"


def test_remission_is_true_when_baseline_above_cutoff_and_endpoint_at_cutoff(tmp_path):
    row = course_with(tmp_path, 5, 4)
    assert row["remission"] is True


def test_reliable_change_is_empty_for_instrument_without_threshold(tmp_path):
    row = course_with(tmp_path, 30, 10, instrument="MADRS")
    assert row["category"] == "response"
    assert row["remission"] is True  # 10 <= MADRS cutoff 10, baseline 30 > 10
    assert row["reliable_improvement"] is None
    assert row["reliable_deterioration"] is None


def test_reliable_deterioration_when_endpoint_rises_by_threshold(tmp_path):
    row = course_with(tmp_path, 10, 16)  # +6 on PHQ-9 (threshold 6)
    assert row["reliable_deterioration"] is True
    assert row["reliable_improvement"] is False
    assert row["category"] == "non_response"


def test_recovery_when_case_at_baseline_and_not_at_endpoint(tmp_path):
    row = course_with(tmp_path, 12, 9)  # 12 >= 10 (case) -> 9 < 10; fall of 3 < 6
    assert row["recovery"] is True
    assert row["reliable_recovery"] is False


def test_recovery_is_empty_when_not_a_case_at_baseline(tmp_path):
    row = course_with(tmp_path, 9, 2)
    assert row["recovery"] is None
    assert row["reliable_recovery"] is None


def test_response_reached_early_and_lost_by_endpoint(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND3", 3)
    clinic.sessions("2026-02-02 09:00", "2026-02-04 09:00", "2026-02-06 09:00")
    clinic.score("2026-02-02 08:00", 20)
    clinic.score("2026-02-04 08:00", 14)  # after 1 infusion: 14 > 10
    clinic.score("2026-02-05 10:00", 9)  # after 2 infusions: 9 <= 10 -> response at 2
    clinic.score("2026-02-10 10:00", 16)  # endpoint: -20% -> non_response
    (row,) = clinic.rows()
    assert row["infusions_to_response"] == 2
    assert row["response_timing"] == "early"
    assert row["category"] == "non_response"


def test_late_and_never_timing(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND6", 6)
    days = ["2026-02-02", "2026-02-04", "2026-02-06", "2026-02-09", "2026-02-11", "2026-02-13"]
    clinic.sessions(*[f"{d} 09:00" for d in days])
    clinic.sessions(*[f"{d} 09:00" for d in days], patient_id="Y")
    clinic.score("2026-02-02 08:00", 20).score("2026-02-12 10:00", 10)  # after 5 -> late
    clinic.score("2026-02-02 08:00", 20, patient_id="Y").score("2026-02-20", 11, patient_id="Y")
    late, never = clinic.rows()
    assert (late["infusions_to_response"], late["response_timing"]) == (5, "late")
    assert (never["infusions_to_response"], never["response_timing"]) == (None, "never")


def test_config_windows_change_the_baseline(tmp_path):
    config = Config(definitions=Definitions(baseline_window_days=3))
    clinic = make_clinic(tmp_path, config).protocol("ONE", 1)
    clinic.session("2026-02-15 09:00", protocol_id="ONE")
    clinic.score("2026-02-11", 20)  # 4 days before: outside a 3-day window
    clinic.score("2026-02-20", 8)
    (row,) = clinic.rows()
    assert row["not_evaluable_reason"] == "no baseline"


def test_config_response_threshold_and_instrument_override(tmp_path):
    path = tmp_path / "outcomes.toml"
    path.write_text('[definitions]\nresponse_pct = 60\n[instruments."PHQ-9"]\nremission = 9\n')
    config = load_config(path)
    row = course_with(tmp_path, 20, 10, config=config)  # -50% < 60% reduction: partial
    assert row["category"] == "partial_response"
    assert row["remission"] is False  # 10 > 9 under the override


# --- invariants over random courses, without a database ---------------------------------------

_course = st.tuples(
    st.sampled_from(["A", "B"]),
    st.sampled_from(["completed", "discontinued", "in_progress"]),
    st.one_of(st.none(), st.integers(0, 27)),
    st.one_of(st.none(), st.integers(0, 27)),
)


def _course_scores(courses):
    n = len(courses)
    return pl.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(n)],
            "course_id": [f"C{i}" for i in range(n)],
            "course_id_source": ["derived"] * n,
            "protocol_id": [c[0] for c in courses],
            "instrument": ["PHQ-9"] * n,
            "first_infusion_day": [None] * n,
            "last_infusion_day": [None] * n,
            "infusions": [3] * n,
            "aborted_infusions": [0] * n,
            "planned_infusions": [3] * n,
            "status": [c[1] for c in courses],
            "course_outcome_date": [None] * n,
            "baseline_score": [c[2] for c in courses],
            "baseline_at": [None] * n,
            "endpoint_score": [None if c[2] is None else c[3] for c in courses],
            "endpoint_at": [None] * n,
            "endpoint_after_infusions": [3] * n,
        },
        schema_overrides={"baseline_score": pl.Float64, "endpoint_score": pl.Float64,
                          "first_infusion_day": pl.Date, "last_infusion_day": pl.Date,
                          "course_outcome_date": pl.Date, "baseline_at": pl.Datetime,
                          "endpoint_at": pl.Datetime},
    )


_EMPTY_POST = pl.DataFrame(
    schema={"patient_id": pl.String, "course_id": pl.String, "instrument": pl.String,
            "total_score": pl.Float64, "infusions_before": pl.Int64}
)


@pytest.fixture(scope="module")
def outcome_con():
    """An in-memory connection with the default definitions, for every example (opening one
    costs more than the query; registering a frame again replaces it)."""
    con = local_connection()
    define_settings(con, date(2026, 3, 31), Config())
    yield con
    con.close()


def _course_outcomes(con, course_scores):
    """sql/outcomes/10_course_outcomes.sql over the frames, with the default definitions."""
    con.register("course_scores", course_scores)
    con.register("post_scores", _EMPTY_POST)
    ((name, query),) = [f for f in outcome_sql_files() if f[0] == "course_outcomes"]
    return con.sql(query).pl()


@settings(max_examples=60, deadline=None)
@given(st.lists(_course, min_size=1, max_size=30))
def test_categories_partition_the_evaluable_courses(outcome_con, courses):
    outcomes = _course_outcomes(outcome_con, _course_scores(courses))
    summary = protocol_summary(outcomes)
    for row in summary.to_dicts():
        assert row["responders"] + row["partial_responders"] + row["non_responders"] == row[
            "evaluable"]
        assert row["evaluable"] <= row["courses"] - row["in_progress"]
        assert row["responders"] <= row["itt_courses"]
        for name in ("response", "non_response", "itt_response", "remission"):
            if row[f"{name}_rate"] is not None:
                assert 0 <= (row.get(f"{name}_ci_low") or 0) <= row[f"{name}_rate"] <= 1
            if row.get(f"{name}_ci_high") is not None:
                assert row[f"{name}_rate"] <= row[f"{name}_ci_high"] <= 1
    # Outcome columns are empty exactly where the row is not evaluable.
    not_evaluable = outcomes.filter(pl.col("not_evaluable_reason").is_not_null())
    assert not_evaluable["category"].null_count() == not_evaluable.height
    evaluable = outcomes.filter(pl.col("evaluable"))
    assert evaluable["category"].null_count() == 0
