"""Outcome summaries in pipeline.metrics: protocol rates, cumulative response, same-session
effect, durability, safety, attrition, PHQ-9 item 9 — hand-worked on tiny fixtures."""

from __future__ import annotations

import random

import duckdb
import polars as pl
import pytest
from lifelines import KaplanMeierFitter
from outcome_fixtures import make_clinic, worked_example

from pipeline.metrics import compute_metrics, km_table, local_connection
from pipeline.stats import kaplan_meier

ONE_DAY = "2026-02-15 09:00"


def add_one_infusion_course(clinic, patient, baseline, endpoint, day="2026-02-15"):
    clinic.session(f"{day} 09:00", patient_id=patient, protocol_id="ONE")
    if baseline is not None:
        clinic.score(f"{day} 08:00", baseline, patient_id=patient)
    if endpoint is not None:
        clinic.score(f"{day} 15:00", endpoint, patient_id=patient)


def metrics_for(clinic, as_of="2026-03-31"):
    return compute_metrics(clinic.outcomes(as_of), clinic.config)


def test_protocol_summary_rates_and_itt(tmp_path):
    clinic = make_clinic(tmp_path).protocol("ONE", 1)
    add_one_infusion_course(clinic, "P1", 20, 8)    # response, remission false (8 > 4)
    add_one_infusion_course(clinic, "P2", 20, 4)    # response, remission
    add_one_infusion_course(clinic, "P3", 20, 14)   # partial (-30%)
    add_one_infusion_course(clinic, "P4", 20, 19)   # non-response
    add_one_infusion_course(clinic, "P5", 20, None)  # baseline, no endpoint: ITT only
    add_one_infusion_course(clinic, "P6", None, 5)  # no baseline: nowhere
    (row,) = metrics_for(clinic)["protocol_summary"].to_dicts()
    # evaluable 4: responders 2 (50%), partial 1, non 1 (25%); ITT 2 / 5 = 40%.
    assert (row["courses"], row["in_progress"], row["evaluable"]) == (6, 0, 4)
    assert (row["responders"], row["partial_responders"], row["non_responders"]) == (2, 1, 1)
    assert row["response_rate"] == 0.5
    assert row["non_response_rate"] == 0.25
    assert (row["remitters"], row["remission_rate"]) == (1, 0.25)
    assert row["itt_response_rate"] == pytest.approx(0.4)
    # Wilson 2/4: z^2/n = 0.960365; centre = (0.5 + 0.480182) / 1.960365 = 0.5;
    # half = 1.959964 * sqrt(0.0625 + 0.060023) / 1.960365 = 0.349961 -> (0.150039, 0.849961)
    assert row["response_ci_low"] == pytest.approx(0.150039, abs=1e-6)
    assert row["response_ci_high"] == pytest.approx(0.849961, abs=1e-6)
    # All responses came after infusion 1 -> KM: at 1, 4 at risk, 2 events -> S = 0.5 -> median 1.
    assert row["median_infusions_to_response"] == 1


def test_in_progress_courses_are_reported_but_left_out_of_rates(tmp_path):
    clinic = make_clinic(tmp_path).protocol("TWO", 2)
    clinic.session("2026-03-20 09:00", protocol_id="TWO")  # 1 of 2, 11 days before as-of
    clinic.score("2026-03-20 08:00", 20).score("2026-03-20 15:00", 5)
    tables = metrics_for(clinic)
    (row,) = tables["protocol_summary"].to_dicts()
    assert (row["courses"], row["in_progress"], row["evaluable"]) == (1, 1, 0)
    assert row["response_rate"] is None  # 0/0 is empty, never NaN
    (course,) = tables["course_outcomes"].to_dicts()
    assert course["status"] == "in_progress"
    assert course["category"] == "response"  # interim value is still shown on the course row


def test_cumulative_response_by_infusion_number(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND3", 3)
    days = ["2026-02-02", "2026-02-04", "2026-02-06"]
    for patient, scores in {
        "A": [14, 9, 9],   # responds after 2
        "B": [12, 12, 8],  # responds after 3
        "C": [18, 16, 15],  # never: censored at 3
    }.items():
        clinic.sessions(*[f"{d} 09:00" for d in days], patient_id=patient)
        clinic.score("2026-02-02 08:00", 20, patient_id=patient)
        for day, score in zip(days, scores, strict=True):
            clinic.score(f"{day} 12:00", score, patient_id=patient)
    tables = metrics_for(clinic)
    curve = tables["cumulative_response"].select("infusion_number", "at_risk", "events",
                                                 "cumulative_response").rows()
    # at 2: 3 at risk, 1 event -> 1/3; at 3: 2 at risk, 1 event (C censored) -> 1 - 2/3 * 1/2 = 2/3
    assert curve == [(2, 3, 1, pytest.approx(1 / 3)), (3, 2, 1, pytest.approx(2 / 3))]
    (row,) = tables["protocol_summary"].to_dicts()
    assert row["median_infusions_to_response"] == 3


def test_km_table_matches_stats_and_lifelines_per_group():
    rng = random.Random(11)
    rows = [(rng.choice("AB"), rng.randint(1, 8), rng.random() < 0.5) for _ in range(200)]
    frame = pl.DataFrame(rows, schema=["group", "t", "event"], orient="row")
    con = local_connection()
    con.register("frame", frame)
    table = km_table(con, "SELECT \"group\" AS protocol_id, 'PHQ-9' AS instrument, t AS time, "
                          "event FROM frame")
    for group in "AB":
        mine = table.filter(pl.col("protocol_id") == group)
        durations = [t for g, t, _ in rows if g == group]
        events = [e for g, _, e in rows if g == group]
        reference = kaplan_meier(durations, events)
        assert mine["survival"].to_list() == pytest.approx([s.survival for s in reference])
        assert mine["at_risk"].to_list() == [s.at_risk for s in reference]
        lifelines_sf = KaplanMeierFitter().fit(durations, events).survival_function_
        assert mine["survival"].to_list() == pytest.approx(
            lifelines_sf.loc[mine["time"].to_list(), "KM_estimate"].to_list())
    con.close()


def test_local_connections_keep_their_frames_tables_and_macros_to_themselves():
    """local_connection hands out cursors of one in-memory database: what one registers or
    creates is not seen by another, open at the same time or opened after it is closed."""
    first, second = local_connection(), local_connection()
    first.register("frame", pl.DataFrame({"x": [1, 2]}))
    first.execute("CREATE TEMP TABLE km_input AS SELECT 1 AS one")
    first.execute("CREATE OR REPLACE TEMP MACRO rated(evaluable, status) AS 42")
    assert first.execute("SELECT rated(true, 'x'), count(*) FROM frame").fetchall() == [(42, 2)]
    for other in (second, local_connection()):
        for query in ("SELECT * FROM frame", "SELECT * FROM km_input"):
            with pytest.raises(duckdb.CatalogException):
                other.execute(query)
        assert other.execute("SELECT rated(true, 'completed')").fetchall() == [(True,)]
        other.close()
    first.close()
    third = local_connection()
    with pytest.raises(duckdb.CatalogException):
        third.execute("SELECT * FROM km_input")
    third.close()


def test_same_session_effect_of_infusion_1(tmp_path):
    clinic = worked_example(make_clinic(tmp_path))
    # Y: pre 20 at 08:00, post 9 at 11:00 on infusion-1 day -> change -11, reduced by >= 50%.
    clinic.session("2026-02-02 09:00", patient_id="Y")
    clinic.score("2026-02-02 08:00", 20, patient_id="Y", timing="pre")
    clinic.score("2026-02-02 11:00", 9, patient_id="Y", timing="post")
    # Z: no same-day post -> not measured for Z.
    clinic.session("2026-02-02 09:00", patient_id="Z")
    clinic.score("2026-02-02 08:00", 20, patient_id="Z", timing="pre")
    tables = metrics_for(clinic)
    # X (worked example): pre 18 (08:30), date-only post 12 at end of day -> -6, not >= 50%.
    per_course = tables["same_session_courses"].select("patient_id", "same_day_change",
                                                      "reduced_by_half").rows()
    assert per_course == [("X", -6.0, False), ("Y", -11.0, True)]
    (row,) = tables["same_session_effect"].to_dicts()
    assert (row["measured"], row["mean_change"], row["reduced_by_half"]) == (2, -8.5, 1)
    assert row["status"] == "measured"


def test_same_session_effect_not_measured_without_pairs(tmp_path):
    clinic = make_clinic(tmp_path).protocol("ONE", 1)
    add_one_infusion_course(clinic, "P1", 20, 8)  # no timing labels at all
    (row,) = metrics_for(clinic)["same_session_effect"].to_dicts()
    assert (row["measured"], row["status"], row["reduced_by_half_rate"]) == (
        0, "not measured", None)


def test_durability_relapse_and_censoring(tmp_path):
    clinic = make_clinic(tmp_path).protocol("ONE", 1)
    add_one_infusion_course(clinic, "R", 20, 8)   # endpoint 02-15 15:00 (window ends 03-01)
    clinic.score("2026-03-02", 9, patient_id="R")  # 15 days: 9 <= 10, still >= 50% better
    clinic.score("2026-03-11", 11, patient_id="R")  # 24 days: 11 > 10 -> relapse at 24
    add_one_infusion_course(clinic, "S", 20, 6)
    clinic.score("2026-03-05", 7, patient_id="S")  # 18 days, no relapse -> censored at 18
    add_one_infusion_course(clinic, "T", 20, 15)  # partial: not followed for durability
    tables = metrics_for(clinic)
    courses = tables["durability_courses"].select("patient_id", "relapsed", "days").rows()
    assert courses == [("R", True, 24), ("S", False, 18)]
    (summary,) = tables["durability_summary"].to_dicts()
    # KM: at 18, S censored (2 at risk); at 24, 1 at risk, 1 event -> S = 0 -> median 24.
    assert (summary["responders"], summary["relapses"], summary["median_days_to_relapse"]) == (
        2, 1, 24)


def test_safety_rates_per_100_infusions(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND6", 6)
    clinic.session("2026-02-02 09:00", adverse_events=["nausea", "dissociation"],
                   bp_systolic_max=182, bp_diastolic_max=95)
    clinic.session("2026-02-04 09:00", adverse_events=["nausea"], bp_systolic_max=150,
                   bp_diastolic_max=110)
    clinic.session("2026-02-06 09:00", status="aborted", bp_systolic_max=140,
                   bp_diastolic_max=90)
    clinic.session("2026-02-09 09:00", status="cancelled", adverse_events=["nausea"])
    tables = metrics_for(clinic)
    protocol = tables["safety_summary"].filter(pl.col("scope") == "protocol").to_dicts()[0]
    # 3 administered (cancelled excluded); 1 aborted = 1/3; BP high on 2 of 3 recorded.
    assert protocol["infusions"] == 3
    assert protocol["aborted_rate"] == pytest.approx(1 / 3)
    assert (protocol["high_bp"], protocol["bp_recorded"]) == (2, 3)
    events = tables["adverse_event_rates"].filter(pl.col("scope") == "protocol")
    # nausea 2 / 3 infusions = 66.7 per 100; dissociation 1 / 3 = 33.3 per 100.
    assert events.select("event_type", "events").rows() == [("dissociation", 1), ("nausea", 2)]
    assert events["per_100_infusions"].to_list() == pytest.approx([100 / 3, 200 / 3])


def test_attrition_counts_courses_reaching_each_infusion(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND3", 3)
    clinic.sessions("2026-01-05 09:00", "2026-01-07 09:00", "2026-01-09 09:00", patient_id="A")
    clinic.sessions("2026-01-05 09:00", "2026-01-07 09:00", patient_id="B")  # discontinued
    clinic.sessions("2026-01-05 09:00", patient_id="C")  # discontinued
    clinic.sessions("2026-03-30 09:00", patient_id="D")  # in progress: left out
    rows = metrics_for(clinic)["attrition"].select("infusion_number", "courses_reaching").rows()
    assert rows == [(1, 3), (2, 2), (3, 1)]


def test_phq9_item_9_above_zero_is_flagged_whatever_the_total(tmp_path):
    clinic = make_clinic(tmp_path).protocol("ONE", 1)
    clinic.session(ONE_DAY, protocol_id="ONE")
    clinic.score("2026-02-15 08:00", 3, items=[0, 0, 0, 0, 0, 0, 0, 2, 1])  # total 3, item 9 = 1
    clinic.score("2026-02-16 08:00", 20, items=[3, 3, 3, 3, 2, 2, 2, 2, 0])  # item 9 = 0
    clinic.score("2026-02-17 08:00", 20)  # no items
    flags = metrics_for(clinic)["item9_flags"]
    assert flags.select("total_score", "item_9").rows() == [(3.0, 1)]


def test_recovery_rates_in_protocol_summary(tmp_path):
    clinic = make_clinic(tmp_path).protocol("ONE", 1)
    add_one_infusion_course(clinic, "P1", 16, 8)   # case -> non-case, fall 8 >= 6: reliable
    add_one_infusion_course(clinic, "P2", 12, 9)   # case -> non-case, fall 3: not reliable
    add_one_infusion_course(clinic, "P3", 14, 12)  # still a case
    add_one_infusion_course(clinic, "P4", 8, 2)    # not a case at baseline: excluded
    (row,) = metrics_for(clinic)["protocol_summary"].to_dicts()
    assert (row["cases"], row["recovered"], row["reliably_recovered"]) == (3, 2, 1)
    assert row["recovery_rate"] == pytest.approx(2 / 3)
    assert row["reliable_recovery_rate"] == pytest.approx(1 / 3)
