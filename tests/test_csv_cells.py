"""CSV formula injection (issue 15, item 6): ids and texts beginning with =, +, -, @ (or a tab or
carriage return) are written with a single quote in front in every CSV the pipeline writes —
course_outcomes.csv, payer/index.csv and the CSVs attached to payer packets — while numbers, and
text cells that are a plain number, are written as they are. The CSVs are read back."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader

from pipeline.csv_cells import original_cell, runs_as_formula, safe_cell, safe_frame
from tests.conftest import cli, load

PATIENT = "=1+2"
PLAIN = "-5"  # a patient id that is a plain negative number: left as it is
PROVIDER = "-2+3+cmd|' /C calc'!A0"
EVENT = '=hyperlink("http://127.0.0.1/x","click")'  # adverse events load lower-case
PROTOCOL = "@IND6"
MEDICATION = "+sertraline"

ROWS = {
    "protocols.csv": [
        ["protocol_id", "name", "planned_infusions", "planned_days"],
        [PROTOCOL, "=cmd|' /C calc'!A0", "6", "12"],
    ],
    "patients.csv": [
        ["patient_id", "birth_date", "sex", "diagnosis_code", "payer", "member_id", "site"],
        [PATIENT, "1980-03-04", "F", "F33.2", "+Acme", "@M100", "-North"],
        [PLAIN, "1975-06-30", "M", "F32.2", "Self-pay", "", "North"],
    ],
    "sessions.csv": [
        ["session_id", "patient_id", "protocol_id", "started_at", "course_id", "provider",
         "adverse_events", "site"],
        *[[f"=S{i}", pid, PROTOCOL, f"2026-03-{day:02d} 09:00", course, PROVIDER,
           f"{EVENT};nausea" if i == 1 else "", "+site"]
          for pid, course, first in ((PATIENT, "@c1", 0), (PLAIN, "-c2", 10))
          for i, day in enumerate((2, 4, 6, 9, 11, 13), start=1 + first)],
    ],
    # baseline 20 -> endpoint 8: -60%; baseline 18 -> endpoint 16: -11.1%
    "assessments.csv": [
        ["patient_id", "instrument", "administered_at", "total_score", "timing"],
        [PATIENT, "PHQ-9", "2026-03-02 08:30", "20", "pre"],
        [PATIENT, "PHQ-9", "2026-03-25", "8", "followup"],
        [PLAIN, "PHQ-9", "2026-03-02 08:30", "18", "pre"],
        [PLAIN, "PHQ-9", "2026-03-25", "16", "followup"],
    ],
    "treatment_history.csv": [
        ["trial_id", "patient_id", "medication", "start_date", "end_date", "adequate_dose",
         "improvement_pct", "episode"],
        ["@T1", PATIENT, MEDICATION, "2025-01-01", "2025-03-01", "yes", "-30", "current"],
    ],
}


def read(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def cells(rows: list[dict[str, str]]) -> list[str]:
    return [cell for row in rows for cell in row.values()]


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("formulas")
    export = root / "export"
    export.mkdir()
    for name, rows in ROWS.items():
        with open(export / name, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
    db = root / "clinic.duckdb"
    report = load(export, db, today=date(2026, 11, 28))
    assert sum(f.rejected for f in report.files) == 0, report.render()
    assert cli("metrics", "--db", db, "--as-of", "2026-04-30", "--out", root / "m").exit_code == 0
    payer = cli("report", "payer", "--db", db, "--month", "2026-03", "--out", root / "payer",
                "--jobs", "1")
    assert payer.exit_code == 0, payer.output
    return {"metrics": root / "m", "payer": root / "payer"}


def test_course_outcomes_csv_quotes_formula_text_and_leaves_numbers(outputs):
    rows = read((outputs["metrics"] / "course_outcomes.csv").read_text(encoding="utf-8"))
    assert not [c for c in cells(rows) if runs_as_formula(c)]
    by_patient = {original_cell(r["patient_id"]): r for r in rows}
    assert set(by_patient) == {PATIENT, PLAIN}
    first = by_patient[PATIENT]
    assert (first["patient_id"], first["protocol_id"]) == ("'" + PATIENT, "'" + PROTOCOL)
    assert first["pct_change"] == "-60.0"  # (8 - 20) / 20: a number, untouched
    assert by_patient[PLAIN]["patient_id"] == PLAIN
    assert by_patient[PLAIN]["pct_change"] == "-11.1"  # (16 - 18) / 18


def test_payer_index_quotes_formula_ids(outputs):
    rows = read((outputs["payer"] / "index.csv").read_text(encoding="utf-8"))
    assert not [c for c in cells(rows) if runs_as_formula(c)]
    by_patient = {r["patient_id"]: r for r in rows}
    assert set(by_patient) == {"'" + PATIENT, PLAIN}
    assert (by_patient["'" + PATIENT]["course_id"], by_patient[PLAIN]["course_id"]) == (
        "'@c1", "'-c2")
    assert {r["protocol_id"] for r in rows} == {"'" + PROTOCOL}
    assert {r["pages"] for r in rows} == {"3"}  # numbers as they are


def test_packet_attachments_quote_formula_text_and_leave_numbers(outputs):
    index = read((outputs["payer"] / "index.csv").read_text(encoding="utf-8"))
    (row,) = [r for r in index if r["patient_id"] == "'" + PATIENT]
    reader = PdfReader(outputs["payer"] / row["file"])
    attached = {name: read(data[0].decode("utf-8")) for name, data in reader.attachments.items()}
    assert len(attached) == 2
    for rows in attached.values():
        assert not [c for c in cells(rows) if runs_as_formula(c)]
    source = next(rows for name, rows in attached.items() if name.endswith("_source.csv"))
    sessions = [r for r in source if r["record"] == "session"]
    assert {r["provider"] for r in sessions} == {"'" + PROVIDER}
    assert {r["site"] for r in sessions} == {"'+site"}
    assert [r["adverse_events"] for r in sessions if r["adverse_events"]] == [
        "'" + EVENT + "; nausea"]
    assert {r["record_id"] for r in sessions} == {f"'=S{i}" for i in range(1, 7)}
    (trial,) = [r for r in source if r["record"] == "trial"]
    assert (trial["medication"], trial["improvement_pct"]) == ("'" + MEDICATION, "-30")
    outcomes = next(rows for name, rows in attached.items() if name.endswith("_outcomes.csv"))
    assert [r["pct_change"] for r in outcomes] == ["-60"]


# --- the rule itself -------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "cell"), [
    ("=1+1", "'=1+1"),
    ("+1+1", "'+1+1"),
    ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("  =1", "'  =1"),  # after leading spaces
    ("\uff1d1+1", "'\uff1d1+1"),  # full-width equals sign
    ("'=1", "''=1"),  # the export's own quote: one removed quote gives the value back
    ("-5", "-5"), ("+3.5", "+3.5"), ("-1e3", "-1e3"), ("-.5", "-.5"),  # plain numbers
    ("-5\n", "'-5\n"),  # not a plain number
    ("Dr. =A", "Dr. =A"), ("a-b", "a-b"), ("", ""), ("'quoted", "'quoted"),
])
def test_safe_cell(value, cell):
    assert safe_cell(value) == cell
    assert original_cell(cell) == value


TEXT = st.text(alphabet=st.sampled_from(list("=+-@'\t\r\n .e5aZ\uff1d")), max_size=8)


@given(st.lists(TEXT, min_size=1, max_size=20))
def test_polars_and_python_apply_the_same_rule(values):
    frame = safe_frame(pl.DataFrame({"text": values, "number": [-1.5] * len(values)}))
    assert frame["text"].to_list() == [safe_cell(v) for v in values]
    assert frame["number"].to_list() == [-1.5] * len(values)
    assert all(original_cell(safe_cell(v)) == v for v in values)
    assert not any(runs_as_formula(safe_cell(v)) for v in values)
