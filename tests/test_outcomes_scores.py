"""SPEC §2 "Baseline", "Post-baseline scores", "Endpoint", including the worked example."""

from __future__ import annotations

from outcome_fixtures import make_clinic, worked_example


def one_infusion_course(tmp_path, day="2026-02-15 09:00"):
    """Protocol ONE plans 1 infusion, so a single infusion completes the course."""
    clinic = make_clinic(tmp_path).protocol("ONE", 1)
    clinic.session(day, protocol_id="ONE")
    return clinic


def test_spec_worked_example(tmp_path):
    clinic = worked_example(make_clinic(tmp_path))
    (row,) = clinic.rows("2026-03-31")
    # SPEC §2: baseline 18 (02-02 08:30), endpoint 7 (02-27, last in window 02-13 + 14),
    # pct (7 - 18) / 18 = -61.1%, response; remission false (7 > 4); 18 - 7 = 11 >= 6 reliable;
    # first score <= 9 is 8 on 02-09 08:50, after 3 infusions -> gradual.
    assert row["status"] == "completed"
    assert row["baseline_score"] == 18
    assert row["endpoint_score"] == 7
    assert row["pct_change"] == -61.1
    assert row["category"] == "response"
    assert row["remission"] is False
    assert row["reliable_improvement"] is True
    assert row["reliable_deterioration"] is False
    assert row["infusions_to_response"] == 3
    assert row["response_timing"] == "gradual"
    assert row["not_evaluable_reason"] is None
    assert str(row["course_outcome_date"]) == "2026-02-27"


def test_worked_example_post_scores_are_tagged_with_infusions_started_before(tmp_path):
    clinic = worked_example(make_clinic(tmp_path))
    post = clinic.outcomes().post_scores
    # 12 (date-only post, end of 02-02) after 1; 10 after 2; 8 after 3; 7 after 6; 6 is outside.
    assert post["total_score"].to_list() == [12, 10, 8, 7]
    assert post["infusions_before"].to_list() == [1, 2, 3, 6]


def test_baseline_taken_exactly_14_days_before_first_infusion_is_inside_window(tmp_path):
    clinic = one_infusion_course(tmp_path)
    clinic.score("2026-02-01 10:00", 16)  # 02-15 - 14 days = 02-01: inside
    (row,) = clinic.rows()
    assert row["baseline_score"] == 16


def test_baseline_taken_15_days_before_first_infusion_is_outside_window(tmp_path):
    clinic = one_infusion_course(tmp_path)
    clinic.score("2026-01-31 23:59", 16)  # 15 calendar days before 02-15: outside
    clinic.score("2026-02-20", 5)
    (row,) = clinic.rows()
    assert row["baseline_score"] is None
    assert row["not_evaluable_reason"] == "no baseline"
    assert row["endpoint_score"] == 5  # the endpoint is kept even when not evaluable
    assert row["category"] is None


def test_endpoint_exactly_14_days_after_last_infusion_is_inside_window(tmp_path):
    clinic = one_infusion_course(tmp_path)
    clinic.score("2026-02-14", 20)
    clinic.score("2026-03-01 23:00", 9)  # 02-15 + 14 days = 03-01: inside
    (row,) = clinic.rows()
    assert row["endpoint_score"] == 9
    assert row["category"] == "response"  # 9 <= 10


def test_endpoint_15_days_after_last_infusion_is_outside_window(tmp_path):
    clinic = one_infusion_course(tmp_path)
    clinic.score("2026-02-14", 20)
    clinic.score("2026-03-02 00:30", 9)  # 15 days after 02-15: outside
    (row,) = clinic.rows()
    assert row["endpoint_score"] is None
    assert row["not_evaluable_reason"] == "no follow-up score"


def test_date_only_score_on_infusion_1_day_counts_as_baseline(tmp_path):
    clinic = one_infusion_course(tmp_path)
    clinic.score("2026-02-10", 19)
    clinic.score("2026-02-15", 17, timing="pre")  # date only, not post -> baseline
    (row,) = clinic.rows()
    assert row["baseline_score"] == 17


def test_date_only_post_score_on_infusion_1_day_is_post_baseline_not_baseline(tmp_path):
    clinic = one_infusion_course(tmp_path)
    clinic.score("2026-02-10", 19)
    clinic.score("2026-02-15", 9, timing="post")  # end of 02-15, after infusion 1
    (row,) = clinic.rows()
    assert row["baseline_score"] == 19
    assert row["endpoint_score"] == 9
    assert row["infusions_to_response"] == 1  # 9 <= 9.5 after 1 infusion
    assert row["response_timing"] == "early"


def test_timed_score_at_start_of_infusion_1_is_baseline(tmp_path):
    clinic = one_infusion_course(tmp_path)
    clinic.score("2026-02-15 09:00", 15)  # "no later than the start": equal counts
    clinic.score("2026-02-15 09:01", 14)
    (row,) = clinic.rows()
    assert (row["baseline_score"], row["endpoint_score"]) == (15, 14)


def test_two_baseline_scores_at_the_same_time_the_higher_wins(tmp_path):
    clinic = one_infusion_course(tmp_path)
    clinic.score("2026-02-15 08:30", 15, assessment_id="A")
    clinic.score("2026-02-15 08:30", 17, assessment_id="B")
    clinic.score("2026-02-20", 8)
    (row,) = clinic.rows()
    assert row["baseline_score"] == 17
    assert row["category"] == "response"  # 8 <= 8.5; with 15 it would be partial (-46.7%)


def test_two_endpoint_scores_at_the_same_time_the_higher_wins(tmp_path):
    clinic = one_infusion_course(tmp_path)
    clinic.score("2026-02-15 08:30", 20)
    clinic.score("2026-02-20 10:00", 8, assessment_id="A")
    clinic.score("2026-02-20 10:00", 12, assessment_id="B")
    (row,) = clinic.rows()
    assert row["endpoint_score"] == 12
    assert row["category"] == "partial_response"  # -40%


def test_score_after_the_next_course_started_belongs_to_the_next_course(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND2", 2).protocol("BOOST", 1)
    clinic.sessions("2026-01-05 09:00", "2026-01-07 09:00", protocol_id="IND2")
    clinic.session("2026-01-12 09:00", protocol_id="BOOST")  # protocol change: course 2
    clinic.score("2026-01-05 08:00", 20)
    # 08:00 is before course 2 starts: course 1's endpoint and course 2's baseline.
    clinic.score("2026-01-12 08:00", 14)
    # 10:00 is inside course 1's window (01-07 + 14) but after course 2 started: course 2 only.
    clinic.score("2026-01-12 10:00", 6)
    first, second = clinic.rows()
    assert (first["baseline_score"], first["endpoint_score"]) == (20, 14)
    assert first["category"] == "partial_response"  # (14 - 20) / 20 = -30%
    assert (second["baseline_score"], second["endpoint_score"]) == (14, 6)


def test_zero_baseline_is_not_evaluable_with_reason(tmp_path):
    clinic = one_infusion_course(tmp_path)
    clinic.score("2026-02-15 08:00", 0)
    clinic.score("2026-02-20", 3)
    (row,) = clinic.rows()
    assert row["baseline_score"] == 0  # kept
    assert row["not_evaluable_reason"] == "zero baseline"
    assert row["pct_change"] is None
    assert row["category"] is None
    assert row["remission"] is None
    assert row["infusions_to_response"] is None
    assert row["response_timing"] is None


def test_scores_after_the_as_of_day_are_ignored(tmp_path):
    clinic = one_infusion_course(tmp_path)
    clinic.score("2026-02-15 08:00", 20)
    clinic.score("2026-02-20", 15)
    clinic.score("2026-02-25", 5)
    (row,) = clinic.rows("2026-02-24")
    assert row["endpoint_score"] == 15


def test_every_instrument_in_the_export_gets_a_row_per_course(tmp_path):
    clinic = one_infusion_course(tmp_path)
    clinic.score("2026-02-15 08:00", 20)
    clinic.score("2025-06-01", 30, instrument="MADRS", patient_id="OTHER")
    frame = clinic.outcomes().course_outcomes
    assert frame["instrument"].to_list() == ["MADRS", "PHQ-9"]
    assert frame["not_evaluable_reason"].to_list() == ["no baseline", "no follow-up score"]
