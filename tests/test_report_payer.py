"""Payer documentation packets end to end: demo export (+ a treatment_history file) -> DuckDB ->
`write_payer_packets` / `outcomes report payer` -> PDF read back with pdftotext, pypdf and qpdf.

The demo DB is built once per module; single-packet tests use --patient, the batch test a
small month.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import subprocess
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from pypdf import PdfReader

from pipeline.config import load_config
from pipeline.demo import write_demo
from pipeline.errors import InputError
from pipeline.ingest import ingest
from pipeline.metrics_files import run_metrics
from pipeline.months import parse_month
from pipeline.reports.payer.criteria import entry_scores, payer_rules
from pipeline.reports.payer.folder import INDEX_COLUMNS
from pipeline.reports.payer.records import load_packets
from pipeline.reports.payer.write import NEEDS, write_payer_packets
from pipeline.results import read_results
from tests.conftest import cli

PATIENT = "P00002"  # one IND6 course with an evaluable PHQ-9 in the 60-patient demo (seed 7)
SMALL_MONTH = "2025-05"  # 4 active courses in that demo
ID = re.compile(r"\bP\d{5}\b")

# P00002: sertraline 70 days / 10% and venlafaxine 63 days / 20%, both adequate, current
# episode -> 2 qualifying trials -> resistance met. P00003: one qualifying trial and one that
# improved 40% -> not met.
TREATMENT_HISTORY = """\
trial_id,patient_id,medication,drug_class,start_date,end_date,adequate_dose,improvement_pct,episode
T1,P00002,sertraline,SSRI,2024-09-01,2024-11-10,yes,10,current
T2,P00002,venlafaxine,SNRI,2024-12-01,2025-02-02,yes,20,current
T3,P00003,escitalopram,SSRI,2024-09-01,2024-11-10,yes,10,current
T4,P00003,duloxetine,SNRI,2024-12-01,2025-02-02,yes,40,current
"""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("payer")
    export = root / "export"
    write_demo(export, patients=60, seed=7, end=date(2026, 10, 31))
    (export / "treatment_history.csv").write_text(TREATMENT_HISTORY, encoding="utf-8")
    db = root / "clinic.duckdb"
    config = load_config(None)
    ingest(export, db, config, today=date(2026, 11, 28))
    con = duckdb.connect(str(db), read_only=True)
    try:
        all_ids = {r[0] for r in con.execute("SELECT patient_id FROM patients").fetchall()}
        latest = con.execute(
            "SELECT max(d) FROM (SELECT max(started_at)::DATE AS d FROM sessions "
            "UNION ALL SELECT max(administered_at)::DATE FROM assessments)").fetchall()[0][0]
    finally:
        con.close()
    # Patient packets are computed as of the latest data day: metrics as of the same day.
    run_metrics(db, latest, root / "metrics", config)
    return {"root": root, "db": db, "config": config, "ids": all_ids, "as_of": latest}


@pytest.fixture(scope="module")
def packet(demo):
    """One patient's packets via the real CLI, with --html."""
    out = demo["root"] / "patient"
    result = cli("report", "payer", "--db", demo["db"], "--patient", PATIENT, "--out", out,
                 "--html", "--jobs", "1")
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "index.csv")
    assert len(rows) == 1
    pdf = out / rows[0]["file"]
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    return {"out": out, "row": rows[0], "pdf": pdf, "text": text, "flat": " ".join(text.split())}


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def course_outcome(demo, course_id: str, instrument: str) -> dict[str, str]:
    rows = read_csv(demo["root"] / "metrics" / "course_outcomes.csv")
    (row,) = [r for r in rows if r["course_id"] == course_id and r["instrument"] == instrument]
    return row


# --- content and privacy --------------------------------------------------------------------


def test_index_lists_the_packet_with_its_course(packet):
    row = packet["row"]
    assert list(row) == INDEX_COLUMNS
    assert row["file"] == f"{PATIENT}_{row['course_id']}.pdf"
    assert row["patient_id"] == PATIENT and row["protocol_id"] == "IND6"
    assert int(row["pages"]) >= 2
    assert row["sha256"] == hashlib.sha256(packet["pdf"].read_bytes()).hexdigest()


def test_packet_names_its_patient_and_no_other_patient(packet, demo):
    found = set(ID.findall(packet["text"]))
    assert found == {PATIENT}
    others = demo["ids"] - {PATIENT}
    assert len(others) == 59
    assert not [pid for pid in others if pid in packet["text"]]


def test_printed_baseline_endpoint_and_change_equal_the_course_outcomes_row(packet, demo):
    row = course_outcome(demo, packet["row"]["course_id"], "PHQ-9")
    baseline, endpoint = float(row["baseline_score"]), float(row["endpoint_score"])
    pct = float(row["pct_change"])
    # The continuation evidence prints the engine's values:
    # "PHQ-9 baseline B (date) → latest E (date): change −X.X%"
    match = re.search(r"PHQ-9 baseline (\d+(?:\.\d+)?) \(([\d\- :]+)\) → latest (\d+(?:\.\d+)?) "
                      r"\(([\d\- :]+)\): change ([−+][\d.]+)%", packet["flat"])
    assert match, "continuation evidence line not found"
    assert float(match[1]) == baseline
    assert float(match[3]) == endpoint
    assert float(match[5].replace("−", "-")) == pct
    # ... and the percent change is what SPEC §2 says, from the printed scores.
    assert round((endpoint - baseline) / baseline * 100, 1) == pct
    expected_category = {"response": "Response", "partial_response": "Partial response",
                         "non_response": "Non-response"}[row["category"]]
    assert expected_category in packet["flat"]


def test_baseline_matches_an_independent_reading_of_the_raw_scores(packet, demo):
    """SPEC §2 baseline worked straight from the assessments and sessions tables."""
    row = course_outcome(demo, packet["row"]["course_id"], "PHQ-9")
    con = duckdb.connect(str(demo["db"]), read_only=True)
    try:
        (start,) = con.execute(
            "SELECT min(started_at) FROM sessions WHERE patient_id = ? AND status <> 'cancelled'",
            [PATIENT]).fetchall()[0]
        scores = con.execute(
            "SELECT administered_at, date_only, timing, total_score FROM assessments "
            "WHERE patient_id = ? AND instrument = 'PHQ-9'", [PATIENT]).fetchall()
    finally:
        con.close()
    candidates = []
    for at, date_only, timing, total in scores:
        scored_at = at + timedelta(days=1, microseconds=-1) if date_only and timing == "post" else at
        if scored_at <= start and at.date() >= start.date() - timedelta(days=14):
            candidates.append((scored_at, total))
    assert max(candidates)[1] == float(row["baseline_score"])
    assert f"{float(row['baseline_score']):g} (" in packet["flat"]


def test_packet_shows_codes_doses_and_criteria_verdicts(packet):
    flat = packet["flat"]
    for text in ("Dates of service", "96365", "mg/kg", "Diagnosis (ICD-10)", "Attestation",
                 "Signature", "Treatment resistance"):
        assert text in flat
    # P00002 has two adequate failed trials in the current episode (see TREATMENT_HISTORY).
    assert re.search(r"2 qualifying trials documented", flat)
    assert "sertraline (SSRI), from 2024-09-01: counts" in flat


def test_every_course_score_is_printed(packet):
    source = read_attachment(packet["pdf"], "_source.csv")
    scores = [r for r in source if r["record"] == "score"]
    assert scores
    lines = packet["text"]
    for r in scores:
        assert r["at"][:10] in lines


# --- PDF/A, attachments, structure ---------------------------------------------------------


def read_attachment(pdf: Path, suffix: str) -> list[dict[str, str]]:
    reader = PdfReader(pdf)
    (name,) = [n for n in reader.attachments if n.endswith(suffix)]
    (data,) = reader.attachments[name]
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))


def test_pdf_is_pdfa3_with_title_and_language(packet):
    reader = PdfReader(packet["pdf"])
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode("utf-8")
    assert 'pdfaid:part="3"' in xmp or "<pdfaid:part>3</pdfaid:part>" in xmp
    assert "/OutputIntents" in reader.trailer["/Root"]
    assert reader.trailer["/Root"]["/Lang"] == "en"
    assert PATIENT in reader.metadata.title
    assert reader.metadata.author == "Demo Ketamine Clinic"
    assert reader.metadata.subject
    # fonts are embedded
    fonts = subprocess.run(["pdffonts", str(packet["pdf"])], capture_output=True, text=True,
                           check=True).stdout.splitlines()[2:]
    assert fonts and all(" yes " in line for line in fonts)


def test_source_csv_attachment_holds_only_this_patient(packet):
    rows = read_attachment(packet["pdf"], "_source.csv")
    assert {r["patient_id"] for r in rows} == {PATIENT}
    assert {r["record"] for r in rows} == {"session", "score", "trial"}
    raw = "".join(",".join(r.values()) for r in rows)
    assert set(ID.findall(raw)) == {PATIENT}
    outcomes = read_attachment(packet["pdf"], "_outcomes.csv")
    assert {r["patient_id"] for r in outcomes} == {PATIENT}


def test_qpdf_check_passes(packet):
    result = subprocess.run(["qpdf", "--check", str(packet["pdf"])], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_html_is_written_beside_the_pdf(packet):
    html = packet["pdf"].with_suffix(".html").read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and '<html lang="en">' in html
    assert set(ID.findall(html)) == {PATIENT}


# --- errors ---------------------------------------------------------------------------------


def test_unknown_patient_is_an_input_error(demo, tmp_path):
    with pytest.raises(InputError, match="not in the database"):
        write_payer_packets(demo["db"], tmp_path, demo["config"], patient="P99999")


def test_unknown_patient_exits_1_via_cli(demo, tmp_path):
    result = cli("report", "payer", "--db", demo["db"], "--patient", "NOPE", "--out", tmp_path)
    assert result.exit_code == 1
    assert "not in the database" in result.output


# --- consistency with the outcomes engine over a month --------------------------------------


def test_entry_evidence_is_the_engines_baseline_wherever_one_exists(demo):
    config = demo["config"]
    rules = payer_rules(config)
    month = parse_month("2026-10")
    results = read_results(demo["db"], config, month.last, needs=NEEDS)
    packets = load_packets(results, rules, month=month)
    checked = 0
    for p in packets:
        scores = [{**s} for s in p["scores"]]
        chosen = entry_scores(scores, p["course"]["course_start"], rules.entry)
        for o in p["outcomes"]:
            if o["instrument"] in chosen and o["baseline_score"] is not None:
                assert chosen[o["instrument"]]["total_score"] == o["baseline_score"]
                assert chosen[o["instrument"]]["scored_at"] == o["baseline_at"]
                checked += 1
    assert checked > 0


# --- batch ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_batch_output_is_identical_with_one_and_two_workers(demo):
    one = demo["root"] / "jobs1"
    two = demo["root"] / "jobs2"
    write_payer_packets(demo["db"], one, demo["config"], month=SMALL_MONTH, jobs=1)
    write_payer_packets(demo["db"], two, demo["config"], month=SMALL_MONTH, jobs=2)
    index_one = (one / "index.csv").read_bytes()
    assert index_one == (two / "index.csv").read_bytes()
    rows = read_csv(one / "index.csv")
    assert len(rows) >= 2
    assert len({r["patient_id"] for r in rows}) >= 2
    assert sorted(p.name for p in one.glob("*.pdf")) == sorted(p.name for p in two.glob("*.pdf"))
    for row in rows:
        assert (one / row["file"]).read_bytes() == (two / row["file"]).read_bytes()
        # each packet of the batch holds its own patient only
        text = subprocess.run(["pdftotext", str(one / row["file"]), "-"], capture_output=True,
                              text=True, check=True).stdout
        assert set(ID.findall(text)) == {row["patient_id"]}


def test_month_without_active_courses_writes_an_empty_index(demo, tmp_path):
    index = write_payer_packets(demo["db"], tmp_path, demo["config"], month="2024-01")
    assert index.read_text(encoding="utf-8").strip() == ",".join(INDEX_COLUMNS)


def test_bad_month_is_an_input_error(demo, tmp_path):
    with pytest.raises(InputError, match="YYYY-MM"):
        write_payer_packets(demo["db"], tmp_path, demo["config"], month="2025-13")
