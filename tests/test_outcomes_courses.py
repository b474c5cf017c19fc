"""SPEC §2 "Administered infusion", "Course", "Course status", "As-of date", outcome date."""

from __future__ import annotations

from outcome_fixtures import make_clinic, worked_example


def courses(clinic, as_of="2026-03-31"):
    return clinic.outcomes(as_of).courses.to_dicts()


def test_gap_of_30_days_keeps_one_course(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND6", 6)
    # 2026-01-01 -> 2026-01-31 is 30 calendar days: not more than course_gap_days (30).
    clinic.sessions("2026-01-01 09:00", "2026-01-31 09:00")
    rows = courses(clinic)
    assert len(rows) == 1
    assert rows[0]["infusions"] == 2


def test_gap_of_31_days_starts_a_new_course(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND6", 6)
    # 2026-01-01 -> 2026-02-01 is 31 days > 30: a second course.
    clinic.sessions("2026-01-01 09:00", "2026-02-01 09:00")
    rows = courses(clinic)
    assert [r["infusions"] for r in rows] == [1, 1]
    assert [r["course_id"] for r in rows] == ["X-IND6-20260101", "X-IND6-20260201"]


def test_gap_counts_calendar_days_not_hours(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND6", 6)
    # 01-01 23:00 -> 01-31 08:00 is < 30 x 24 h but 30 calendar days; 01-31 -> 03-03 is 31 days.
    clinic.sessions("2026-01-01 23:00", "2026-01-31 08:00", "2026-03-03 07:00")
    assert [r["infusions"] for r in courses(clinic)] == [2, 1]


def test_protocol_change_starts_a_new_course(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND6", 6).protocol("BOOST", 1)
    clinic.sessions("2026-01-05 09:00", "2026-01-07 09:00")
    clinic.session("2026-01-09 09:00", protocol_id="BOOST")
    rows = courses(clinic)
    assert [(r["protocol_id"], r["infusions"]) for r in rows] == [("IND6", 2), ("BOOST", 1)]


def test_course_id_from_export_overrides_gap_and_protocol_rules(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND6", 6).protocol("BOOST", 1)
    # 73 days apart and a protocol change, but the export says both belong to course C1.
    clinic.session("2026-01-01 09:00", course_id="C1")
    clinic.session("2026-03-15 09:00", course_id="C1", protocol_id="BOOST")
    # One day apart, but the export puts them in two courses.
    clinic.session("2026-03-20 09:00", course_id="C2")
    clinic.session("2026-03-21 09:00", course_id="C3")
    rows = courses(clinic)
    assert [(r["course_id"], r["infusions"], r["protocol_id"]) for r in rows] == [
        ("C1", 2, "IND6"),  # the course's protocol is that of infusion 1
        ("C2", 1, "IND6"),
        ("C3", 1, "IND6"),
    ]
    assert {r["course_id_source"] for r in rows} == {"export"}


def test_infusions_are_numbered_within_each_course(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND6", 6)
    clinic.sessions("2026-01-05 09:00", "2026-01-07 09:00", "2026-01-09 09:00")
    clinic.sessions("2026-03-01 09:00", "2026-03-03 09:00")
    infusions = clinic.outcomes().course_infusions
    assert infusions["infusion_number"].to_list() == [1, 2, 3, 1, 2]


def test_aborted_session_is_an_infusion_but_cancelled_is_not(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND3", 3)
    clinic.session("2026-02-02 09:00")
    clinic.session("2026-02-04 09:00", status="cancelled")
    clinic.session("2026-02-05 09:00", status="aborted")
    clinic.session("2026-02-07 09:00")
    # Administered: 02-02, 02-05 (aborted), 02-07 -> 3 infusions = planned 3 -> completed.
    frames = clinic.outcomes()
    (course,) = frames.courses.to_dicts()
    assert course["infusions"] == 3
    assert course["aborted_infusions"] == 1
    assert course["status"] == "completed"
    assert frames.course_infusions["status"].to_list() == ["completed", "aborted", "completed"]


def test_patient_with_only_cancelled_sessions_has_no_course(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND6", 6)
    clinic.session("2026-02-02 09:00", status="cancelled", patient_id="Z")
    clinic.session("2026-02-02 09:00")
    assert [r["patient_id"] for r in courses(clinic)] == ["X"]


def test_completed_course_has_planned_infusions_and_outcome_date_at_window_close(tmp_path):
    clinic = worked_example(make_clinic(tmp_path))
    (course,) = courses(clinic)
    # 6 administered >= 6 planned; outcome date = 02-13 + 14 days = 02-27.
    assert course["status"] == "completed"
    assert str(course["course_outcome_date"]) == "2026-02-27"


def test_course_with_no_infusion_for_31_days_before_as_of_is_discontinued(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND6", 6)
    clinic.sessions("2026-02-26 09:00", "2026-02-28 09:00")
    (course,) = courses(clinic, "2026-03-31")
    # 03-31 - 02-28 = 31 days > 30 -> discontinued on 02-28 + 30 + 1 = 03-31.
    assert course["status"] == "discontinued"
    assert str(course["course_outcome_date"]) == "2026-03-31"


def test_course_with_last_infusion_30_days_before_as_of_is_in_progress(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND6", 6)
    clinic.sessions("2026-02-27 09:00", "2026-03-01 09:00")
    (course,) = courses(clinic, "2026-03-31")
    # 03-31 - 03-01 = 30 days, not more than 30 -> still in progress, no outcome date yet.
    assert course["status"] == "in_progress"
    assert course["course_outcome_date"] is None


def test_sessions_after_the_as_of_day_are_ignored(tmp_path):
    clinic = make_clinic(tmp_path).protocol("IND3", 3)
    clinic.sessions("2026-03-29 09:00", "2026-03-30 09:00", "2026-04-01 09:00")
    (course,) = courses(clinic, "2026-03-31")
    # The 04-01 infusion is after as-of: 2 of 3 given, last 1 day ago -> in progress.
    assert course["infusions"] == 2
    assert course["status"] == "in_progress"
    (later,) = courses(clinic, "2026-04-01")
    assert later["status"] == "completed"
