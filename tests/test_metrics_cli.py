"""`outcomes metrics --db DB --as-of DATE --out DIR [--config FILE]` (SPEC §3): runs the real
command on a fixture database, then reads the files and the database it wrote."""

from __future__ import annotations

import csv
import hashlib
import json

import duckdb
import polars as pl
from outcome_fixtures import make_clinic, worked_example

from tests.conftest import cli

COURSE_COLUMNS = (
    "patient_id,course_id,protocol_id,instrument,course_start,course_end,infusions,"
    "planned_infusions,status,baseline_score,endpoint_score,pct_change,category,remission,"
    "reliable_improvement,reliable_deterioration,infusions_to_response,response_timing,"
    "not_evaluable_reason"
).split(",")
SUMMARY_COLUMNS = (
    "protocol_id,instrument,courses,in_progress,evaluable,responders,response_rate,"
    "response_ci_low,response_ci_high,partial_responders,non_responders,non_response_rate,"
    "non_response_ci_low,non_response_ci_high,remitters,remission_rate,itt_response_rate,"
    "median_infusions_to_response"
).split(",")


def example_db(tmp_path):
    clinic = worked_example(make_clinic(tmp_path)).load("sessions.csv", "cd" * 32)
    clinic.close()
    return clinic.db_path


def invoke(*args):
    return cli("metrics", *args)


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_metrics_writes_spec_columns_in_order_with_worked_example(tmp_path):
    db = example_db(tmp_path)
    out = tmp_path / "out"
    result = invoke("--db", db, "--as-of", "2026-03-31", "--out", out)
    assert result.exit_code == 0, result.output
    with open(out / "course_outcomes.csv", encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert header[: len(COURSE_COLUMNS)] == COURSE_COLUMNS
    assert "course_outcome_date" in header[len(COURSE_COLUMNS):]
    (row,) = read_csv(out / "course_outcomes.csv")
    assert (row["baseline_score"], row["endpoint_score"], row["pct_change"]) == ("18.0", "7.0",
                                                                                 "-61.1")
    assert (row["category"], row["remission"], row["reliable_improvement"]) == (
        "response", "false", "true")
    assert (row["infusions_to_response"], row["response_timing"]) == ("3", "gradual")
    assert row["reliable_deterioration"] == "false"
    assert row["not_evaluable_reason"] == ""
    assert row["course_outcome_date"] == "2026-02-27"
    with open(out / "protocol_summary.csv", encoding="utf-8") as handle:
        header = handle.readline().strip().split(",")
    assert header[: len(SUMMARY_COLUMNS)] == SUMMARY_COLUMNS
    (summary,) = read_csv(out / "protocol_summary.csv")
    assert (summary["courses"], summary["evaluable"], summary["responders"]) == ("1", "1", "1")
    assert summary["response_rate"] == "1.0"


def test_metrics_json_holds_tables_definitions_and_provenance(tmp_path):
    db = example_db(tmp_path)
    config = tmp_path / "clinic.toml"
    config.write_text("[definitions]\nendpoint_window_days = 15\n", encoding="utf-8")
    out = tmp_path / "out"
    result = invoke("--db", db, "--as-of", "2026-03-31", "--out", out, "--config", config)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    for key in ("protocol_summary", "cumulative_response", "same_session_effect",
                "durability_summary", "safety_summary", "adverse_event_rates", "attrition",
                "methods"):
        assert key in data
    # Course-level tables are named, not repeated: a CSV and a Parquet file each.
    assert data["course_outcomes"] == {"csv": "course_outcomes.csv",
                                       "parquet": "course_outcomes.parquet", "rows": 1}
    assert data["item9_flags"]["rows"] == 0  # the worked example exports no items
    # With a 15-day endpoint window the 02-28 score (6) becomes the endpoint.
    (row,) = read_csv(out / "course_outcomes.csv")
    assert row["endpoint_score"] == "6.0"
    assert data["definitions_in_force"]["definitions"]["endpoint_window_days"] == 15
    provenance = data["provenance"]
    assert provenance["as_of"] == "2026-03-31"
    assert provenance["inputs"][0]["sha256"] == "cd" * 32
    assert provenance["config"]["sha256"] == hashlib.sha256(config.read_bytes()).hexdigest()
    assert provenance["config"]["path"] == str(config)
    assert "package_version" in provenance
    assert any("15 calendar days" in m["text"] for m in data["methods"])


def test_course_level_files_are_csv_and_parquet_with_the_same_rows(tmp_path):
    clinic = worked_example(make_clinic(tmp_path))
    # Y: pre 20 and post 9 on the day of infusion 1 (a same-session pair, and the baseline and
    # endpoint of a discontinued course: 9 <= 20 / 2, a response), PHQ-9 items with item 9 = 2
    # on the pre score (a safety flag). X (the worked example) has a pair too (18, then 12) and
    # responded (7 <= 9): two same-session rows, two responders followed for durability.
    clinic.session("2026-02-02 09:00", patient_id="Y")
    clinic.score("2026-02-02 08:00", 20, patient_id="Y", timing="pre",
                 items=[3, 3, 3, 3, 2, 2, 2, 0, 2])
    clinic.score("2026-02-02 11:00", 9, patient_id="Y", timing="post")
    clinic.load()
    clinic.close()
    out = tmp_path / "out"
    result = invoke("--db", clinic.db_path, "--as-of", "2026-03-31", "--out", out)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    expected_rows = {"course_outcomes": 2, "same_session_courses": 2, "durability_courses": 2,
                     "item9_flags": 1}
    for name, rows in expected_rows.items():
        entry = data[name]
        assert entry == {"csv": f"{name}.csv", "parquet": f"{name}.parquet", "rows": rows}
        typed = pl.read_parquet(out / entry["parquet"])
        text = read_csv(out / entry["csv"])
        assert typed.height == len(text) == rows
        assert typed.columns == list(text[0])
    courses = pl.read_parquet(out / "course_outcomes.parquet")
    assert courses.schema["course_start"] == pl.Date
    assert courses.schema["baseline_at"] == pl.Datetime("us")
    assert courses.schema["remission"] == pl.Boolean
    x = courses.filter(pl.col("patient_id") == "X").row(0, named=True)
    assert (x["baseline_score"], x["pct_change"], x["infusions_to_response"]) == (18.0, -61.1, 3)
    (flag,) = pl.read_parquet(out / "item9_flags.parquet").to_dicts()
    assert (flag["patient_id"], flag["item_9"], flag["total_score"]) == ("Y", 2, 20.0)
    assert read_csv(out / "item9_flags.csv")[0]["administered_at"] == "2026-02-02T08:00:00"


def test_metrics_stores_tables_in_duckdb_replacing_previous_results(tmp_path):
    db = example_db(tmp_path)
    for _ in range(2):
        result = invoke("--db", db, "--as-of", "2026-03-31", "--out", tmp_path / "out")
        assert result.exit_code == 0, result.output
    result = invoke("--db", db, "--as-of", "2026-02-10", "--out", tmp_path / "out2")
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM course_outcomes").fetchone()[0] == 1
        # As of 02-10: 4 of 6 infusions, last 02-09 -> in progress; replaces the 03-31 run.
        status = con.execute("SELECT status FROM course_outcomes").fetchone()[0]
        assert status == "in_progress"
        assert con.execute("SELECT count(*) FROM protocol_summary").fetchone()[0] == 1
        assert con.execute("SELECT as_of FROM metrics_runs").fetchone()[0].isoformat() == (
            "2026-02-10")
    finally:
        con.close()


def test_metrics_with_missing_database_is_a_message_not_a_traceback(tmp_path):
    result = invoke("--db", tmp_path / "nope.duckdb", "--as-of", "2026-03-31", "--out",
                    tmp_path / "out")
    assert result.exit_code == 1
    assert "not found" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "nope.duckdb").exists()


def test_metrics_with_empty_database_is_a_message(tmp_path):
    clinic = make_clinic(tmp_path)
    clinic.close()
    result = invoke("--db", clinic.db_path, "--as-of", "2026-03-31", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "no sessions" in result.output


def test_metrics_with_as_of_before_any_infusion_is_a_message(tmp_path):
    db = example_db(tmp_path)
    result = invoke("--db", db, "--as-of", "2026-01-01", "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert "no administered infusion on or before 2026-01-01" in result.output


def test_metrics_with_bad_date_is_a_usage_error(tmp_path):
    db = example_db(tmp_path)
    result = invoke("--db", db, "--as-of", "31/03/2026", "--out", tmp_path / "out")
    assert result.exit_code == 2


def test_metrics_with_unknown_config_key_is_a_message(tmp_path):
    db = example_db(tmp_path)
    config = tmp_path / "bad.toml"
    config.write_text("[definitions]\ncourse_gap_dayz = 30\n", encoding="utf-8")
    result = invoke("--db", db, "--as-of", "2026-03-31", "--out", tmp_path / "o", "--config",
                    config)
    assert result.exit_code == 1
    assert "course_gap_dayz" in result.output
