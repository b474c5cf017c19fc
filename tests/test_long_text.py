"""Huge free text (issue 15, item 9): a 100,000-character provider name and adverse-event text on
16 sessions made a 267-page monthly report and a payer packet still rendering after 500 s. Every
value a report prints is cut to FIELD_CHARS with a visible marker; the full value stays in the
report's JSON (monthly) and in the packet's attached source CSV (payer).

Real parts: `outcomes demo` (30 patients, seed 7) rewritten through the csv module, ingested into
a real DuckDB file, rendered by the CLI and read back with pdftotext and pypdf.
"""

from __future__ import annotations

import csv
import json
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from pipeline.config import load_config
from pipeline.ingest import ingest
from pipeline.render import FIELD_CHARS, FULL_TEXT_IN_CSV, PROSE_CHARS, cut_text, printable, prose
from pipeline.reports.evidence.write import write_evidence_report
from tests.conftest import cli

LOAD_DAY = date(2026, 11, 28)
MONTH = "2026-10"
AS_OF = date(2026, 10, 31)
PATIENT = "P00025"  # the patient with the most sessions in the months before MONTH
HUGE = 100_000
# distinct letters every 10 characters: a cut at the wrong place would show in the text
PROVIDER = "Dr " + "".join(f"Provider{i % 10:02d}" for i in range(HUGE // 10))[: HUGE - 3]
EVENT = "".join(f"nausea {i % 10:02d} " for i in range(HUGE // 10))[: HUGE - 1] + "."
assert len(PROVIDER) == len(EVENT) == HUGE
SESSIONS = 16
# The same demo without the huge text renders the monthly report in 11 pages and the packet in
# 5 (measured once); a cut value adds at most a few lines per cell, never hundreds of pages.
MAX_EXTRA_PAGES = 4


def rewrite_sessions(export: Path) -> list[str]:
    """The latest SESSIONS sessions of PATIENT and the others get the huge provider name and
    adverse-event text; returns the session ids changed."""
    path = export / "sessions.csv"
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, rows = list(reader.fieldnames or []), list(reader)
    completed = sorted((r for r in rows if r["status"] == "completed"),
                       key=lambda r: r["started_at"], reverse=True)
    latest = sorted(completed, key=lambda r: r["patient_id"] != PATIENT)[:SESSIONS]
    for row in latest:
        row["provider"], row["adverse_events"] = PROVIDER, EVENT
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return [r["session_id"] for r in latest]


def render(root: Path, huge: bool) -> dict[str, Any]:
    export = root / "export"
    result = cli("demo", export, "--patients", "30", "--seed", "7", "--end", AS_OF.isoformat())
    assert result.exit_code == 0, result.output
    changed = rewrite_sessions(export) if huge else []
    db = root / "clinic.duckdb"
    ingest(export, db, load_config(None), today=LOAD_DAY)
    reports, payer = root / "reports", root / "payer"
    result = cli("report", "monthly", "--db", db, "--month", MONTH, "--out", reports)
    assert result.exit_code == 0, result.output
    result = cli("report", "payer", "--db", db, "--patient", PATIENT, "--out", payer,
                 "--jobs", "1", "--html")
    assert result.exit_code == 0, result.output
    with open(payer / "index.csv", newline="", encoding="utf-8") as handle:
        index = list(csv.DictReader(handle))
    evidence = None if huge else write_evidence_report(db, AS_OF, reports, load_config(None))[0]
    return {"changed": changed, "monthly": reports / f"monthly-{MONTH}.pdf", "evidence": evidence,
            "json": reports / f"monthly-{MONTH}.json",
            "packets": [payer / row["file"] for row in index]}


@pytest.fixture(scope="module")
def plain(small_demo_reports: dict[str, Any]) -> dict[str, Any]:
    """render(huge=False), built once per run (tests/conftest.py; test_pdf_tags.py reads it)."""
    return small_demo_reports


@pytest.fixture(scope="module")
def huge(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return render(tmp_path_factory.mktemp("huge"), huge=True)


def pages(pdf: Path) -> int:
    return len(PdfReader(pdf).pages)


def text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-raw", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


def flat(value: str) -> str:
    return "".join(value.replace("\u200b", "").split())


@pytest.mark.slow
def test_huge_text_on_16_sessions_adds_a_few_pages_not_hundreds(plain, huge):
    assert len(huge["changed"]) == SESSIONS
    assert pages(huge["monthly"]) <= pages(plain["monthly"]) + MAX_EXTRA_PAGES
    assert len(huge["packets"]) == len(plain["packets"]) >= 1
    for big, small in zip(huge["packets"], plain["packets"], strict=True):
        assert pages(big) <= pages(small) + MAX_EXTRA_PAGES, big.name


@pytest.mark.slow
def test_the_pdfs_show_the_start_of_the_value_and_a_marker_with_its_length(huge):
    marker = f"[cut: {HUGE:,} characters; full text in"
    monthly = flat(text(huge["monthly"]))
    assert flat(PROVIDER[:FIELD_CHARS]) in monthly
    assert flat(PROVIDER[:FIELD_CHARS + 10]) not in monthly  # nothing past the limit
    assert flat(marker) in monthly and flat("the report's JSON file]") in monthly
    packet = flat("".join(text(pdf) for pdf in huge["packets"]))
    assert flat(PROVIDER[:FIELD_CHARS]) in packet and flat(EVENT[:FIELD_CHARS]) in packet
    assert flat(marker + " " + FULL_TEXT_IN_CSV + "]") in packet


@pytest.mark.slow
def test_the_full_values_stay_in_the_json_and_the_attached_csv(huge):
    report = huge["json"].read_text(encoding="utf-8")
    assert json.dumps(PROVIDER) in report
    attached = []
    for pdf in huge["packets"]:
        for name, blobs in PdfReader(pdf).attachments.items():
            if name.endswith("_source.csv"):
                attached.extend(blobs)
    rows = [row for blob in attached
            for row in csv.DictReader(blob.decode("utf-8").splitlines(keepends=True))]
    changed = [row for row in rows if row["record_id"] in huge["changed"]]
    assert changed, "the patient's changed sessions are attached"
    for row in changed:
        assert row["provider"] == PROVIDER and row["adverse_events"] == EVENT


@pytest.mark.slow
def test_a_plain_report_cuts_nothing(plain):
    # the limit must never cut our own sentences or realistic values
    for pdf in [plain["monthly"], plain["evidence"], *plain["packets"]]:
        assert "[cut:" not in text(pdf), pdf.name


def test_cut_text_keeps_short_values_and_marks_long_ones():
    assert cut_text("abc", 3, "x") == "abc"
    assert cut_text("abcd", 3, "the CSV") == "abc … [cut: 4 characters; full text in the CSV]"
    assert printable("é" * FIELD_CHARS) == "é" * FIELD_CHARS
    assert printable("a" * (FIELD_CHARS + 1)).startswith("a" * FIELD_CHARS + " … [cut: ")
    # our own sentences (the `prose` filter) get the longer limit
    sentence = "word " * (FIELD_CHARS // 5 + 10)
    assert printable(prose(sentence)) == sentence
    assert "[cut:" in printable(prose("w" * (PROSE_CHARS + 1)))
