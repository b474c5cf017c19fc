"""Monthly quality report end to end: real demo database -> metrics -> report -> PDF, read back.

The printed figures are checked against numbers worked out here, independently, from
course_outcomes.csv (filter outcome dates to the month, count responders / evaluable, Wilson
interval from statsmodels), and against the report's own JSON.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from statsmodels.stats.proportion import proportion_confint

from pipeline.config import load_config
from pipeline.reports.monthly.write import write_monthly_report
from tests.conftest import cli, copy_db

MONTH = "2026-10"
PATIENT_ID = re.compile(r"P\d{5}")


def pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, demo_db: Path) -> dict[str, Any]:
    """The demo database, `outcomes metrics` as of 2026-10-31 and `outcomes report monthly` for
    2026-10 through the CLI: the report reads the results metrics stored. (Not `outcomes run`,
    which also renders the evidence and payer reports.)"""
    base = tmp_path_factory.mktemp("monthly")
    db = copy_db(demo_db, base / "out" / "clinic.duckdb")
    for args in (("metrics", "--db", db, "--as-of", "2026-10-31", "--out", base / "out" / "metrics"),
                 ("report", "monthly", "--db", db, "--month", MONTH, "--out", base / "out" / "reports")):
        result = cli(*args)
        assert result.exit_code == 0, result.output
    pdf = base / "out" / "reports" / f"monthly-{MONTH}.pdf"
    return {
        "base": base,
        "db": base / "out" / "clinic.duckdb",
        "pdf": pdf,
        "json": json.loads(pdf.with_suffix(".json").read_text(encoding="utf-8")),
        "text": pdf_text(pdf),
        "outcomes": pl.read_csv(base / "out" / "metrics" / "course_outcomes.csv",
                                try_parse_dates=True),
    }


def expected_rate(frame: pl.DataFrame, start: date, end: date, instrument: str = "PHQ-9",
                  protocol: str | None = None) -> tuple[int, int, str]:
    """(responders, evaluable, printed text) worked out from course_outcomes.csv."""
    ended = frame.filter(
        (pl.col("status") != "in_progress")
        & pl.col("course_outcome_date").is_between(start, end)
        & (pl.col("instrument") == instrument)
    )
    if protocol is not None:
        ended = ended.filter(pl.col("protocol_id") == protocol)
    evaluable = ended.filter(pl.col("not_evaluable_reason").is_null())
    k = evaluable.filter(pl.col("category") == "response").height
    n = evaluable.height
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    return k, n, f"{k}/{n} {100 * k / n:.1f}%", f"{100 * low:.1f}–{100 * high:.1f}%"


def section(text: str, start: str, end: str) -> str:
    return text[text.index(start):text.index(end, text.index(start))]


def headline_line(text: str, label: str) -> str:
    return next(line for line in section(text, "Headline", "Activity in").splitlines()
                if line.strip().startswith(label))


def test_headline_response_equals_course_outcomes_csv(run: dict[str, Any]) -> None:
    text = run["text"]
    month = expected_rate(run["outcomes"], date(2026, 10, 1), date(2026, 10, 31))
    # SPEC §2: the report for M is computed as of M's last day; the previous month is the
    # courses whose outcome date falls in September, in that same computation.
    previous = expected_rate(run["outcomes"], date(2026, 9, 1), date(2026, 9, 30))
    rolling = expected_rate(run["outcomes"], date(2025, 11, 1), date(2026, 10, 31))
    line = headline_line(text, "Response (≥ 50% reduction)")
    assert re.search(rf"{re.escape(month[2])}\s+{re.escape(previous[2])}\s+{re.escape(rolling[2])}",
                     line), line
    ci_line = text.splitlines()[text.splitlines().index(line) + 1]
    assert [month[3], previous[3], rolling[3]] == ci_line.split()[-3:]


def test_per_protocol_rows_equal_course_outcomes_csv(run: dict[str, Any]) -> None:
    month_table = section(run["text"], "Courses ending in October 2026",
                          "Courses ending in the 12 months")
    for protocol in run["outcomes"]["protocol_id"].unique().sort().to_list():
        k, n, printed, interval = expected_rate(run["outcomes"], date(2026, 10, 1),
                                                date(2026, 10, 31), protocol=protocol)
        if n == 0:
            continue
        lines = month_table.splitlines()
        at = next(i for i, li in enumerate(lines) if li.split()[:2] == [protocol, "PHQ-9"])
        # the response cell is the first rate column, stacked: k/n, then the rate, then the CI
        fraction, percent = printed.split()
        assert lines[at].split()[4] == fraction, lines[at]
        assert lines[at + 1].split()[0] == percent, lines[at + 1]
        assert lines[at + 2].split()[0] == interval, lines[at + 2]


def test_pdf_figures_equal_the_json(run: dict[str, Any]) -> None:
    report, text = run["json"], run["text"]
    for key in ("month", "previous", "rolling"):
        r = report["headline"][key]["response"]
        assert f"{r['numerator']}/{r['denominator']} {100 * r['rate']:.1f}%" in text
        assert f"{100 * r['low']:.1f}–{100 * r['high']:.1f}%" in text
        assert f"{report['headline'][key]['courses_ended']:,}" in headline_line(text, "Courses ending")
    for row in report["outcomes"]["month"]:
        if not row["empty"]:
            r = row["response"]
            assert f"{r['numerator']}/{r['denominator']}" in text
            assert f"{100 * r['low']:.1f}–{100 * r['high']:.1f}%" in text
    activity = section(text, "Activity in", "Outcomes per protocol")
    infusions = next(li for li in activity.splitlines() if "Infusions administered" in li)
    assert infusions.split()[-2:] == [f"{report['activity']['month']['infusions']:,}",
                                      f"{report['activity']['previous']['infusions']:,}"]


def test_json_rates_equal_protocol_summary_of_the_month(run: dict[str, Any]) -> None:
    from pipeline.metrics import protocol_summary

    frame = run["outcomes"].filter(
        (pl.col("status") != "in_progress")
        & pl.col("course_outcome_date").is_between(date(2026, 10, 1), date(2026, 10, 31))
    ).with_columns(evaluable=pl.col("not_evaluable_reason").is_null())
    summary = {(r["protocol_id"], r["instrument"]): r
               for r in protocol_summary(frame).to_dicts()}
    for row in run["json"]["outcomes"]["month"]:
        s = summary[(row["protocol_id"], row["instrument"])]
        assert row["evaluable"] == s["evaluable"]
        assert row["response"]["numerator"] == s["responders"]
        assert row["non_response"]["numerator"] == s["non_responders"]
        assert row["itt_response"]["denominator"] == s["itt_courses"]


def test_pdf_is_valid_and_every_page_renders(run: dict[str, Any], tmp_path: Path) -> None:
    subprocess.run(["qpdf", "--check", str(run["pdf"])], check=True, capture_output=True)
    info = subprocess.run(["pdfinfo", str(run["pdf"])], capture_output=True, text=True,
                          check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))  # type: ignore[union-attr]
    subprocess.run(["pdftoppm", "-png", "-r", "30", str(run["pdf"]), str(tmp_path / "page")],
                   check=True, capture_output=True)
    assert len(list(tmp_path.glob("page-*.png"))) == pages
    assert "Title:           Monthly quality report — October 2026" in info


def test_no_patient_identifier_in_pdf_or_json(run: dict[str, Any]) -> None:
    ids = set(run["outcomes"]["patient_id"].to_list())
    assert PATIENT_ID.search(run["text"]) is None
    raw_json = run["pdf"].with_suffix(".json").read_text(encoding="utf-8")
    assert PATIENT_ID.search(raw_json) is None
    assert not any(pid in run["text"] or pid in raw_json for pid in ids)
    assert "patient_id" not in raw_json


def test_no_nan_printed(run: dict[str, Any]) -> None:
    assert re.search(r"\bnan\b|\bNaN\b|\bNone\b", run["text"]) is None


def test_month_without_activity_renders_sentences(run: dict[str, Any], tmp_path: Path) -> None:
    pdf, data = write_monthly_report(run["db"], "2025-03", tmp_path, load_config())
    text = pdf_text(pdf)
    assert "No course ended in March 2025." in text
    assert "No infusion was administered in March 2025." in text
    assert re.search(r"\bnan\b|\bNaN\b", text) is None
    report = json.loads(data.read_text(encoding="utf-8"))
    assert report["headline"]["month"]["courses_ended"] == 0
    assert report["outcomes"]["month"] == []


def walk_rates(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        found = [value] if {"rate", "numerator", "denominator", "suppressed"} <= set(value) else []
        return found + [r for v in value.values() for r in walk_rates(v)]
    if isinstance(value, list):
        return [r for v in value for r in walk_rates(v)]
    return []


def test_small_cells_are_suppressed_when_configured(
        suppressed_reports: dict[str, list[Path]]) -> None:
    # suppress_small_cells = true, small_cell_max = 10 (tests/conftest.py)
    pdf, data = suppressed_reports["monthly"]
    text, report = pdf_text(pdf), json.loads(data.read_text(encoding="utf-8"))
    assert "<11" in text
    rates = walk_rates(report)
    assert any(r["suppressed"] for r in rates)
    for r in rates:
        if r["suppressed"] or r["rate"] is None:
            assert r["rate"] is None and r["low"] is None
            continue
        k, n = r["numerator"], r["denominator"]
        assert isinstance(k, int) and isinstance(n, int)
        assert not 1 <= k <= 10 and not 1 <= n <= 10 and not 1 <= n - k <= 10, r
    # complementary suppression: a column of sites adding up to a printed total never hides
    # exactly one cell
    for breakdown in report["breakdown"]["month"] + report["breakdown"]["rolling"]:
        units = [row for row in breakdown["rows"] if not row["total"]]
        for column in ("courses", "infusions"):
            hidden = [row[column] for row in units if row[column] in ("<11", "*")]
            assert len(hidden) != 1, (breakdown["unit"], column)
    # and no printed count from 1 to 10 anywhere in the site/provider tables
    for breakdown in report["breakdown"]["month"]:
        for row in breakdown["rows"]:
            for column in ("courses", "infusions"):
                assert not (isinstance(row[column], int) and 1 <= row[column] <= 10)


# ---------------------------------------------------------------------------------------------
# Deterministic reports (issue 9): the same export, config and month give the same bytes


@pytest.fixture(scope="module")
def twin_reports(tmp_path_factory: pytest.TempPathFactory,
                 suppressed_reports: dict[str, list[Path]], demo_db: Path, demo_db_again: Path,
                 suppress_config: Path) -> dict[str, tuple[Path, Path]]:
    """The demo's report, suppressed (tests/conftest.py `suppressed_reports`, rendered once with
    SOURCE_DATE_EPOCH unset), the report from a second load of the same export into another
    database, and from the first again with SOURCE_DATE_EPOCH: the monthly writer's
    byte-identity, checked once (README "Running safely")."""
    base = tmp_path_factory.mktemp("monthly-twins")
    config = load_config(suppress_config)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
        reports = {"a": tuple(suppressed_reports["monthly"]),
                   "b": write_monthly_report(demo_db_again, MONTH, base / "b", config)}
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")  # 2026-09-21 14:13:20 UTC
        reports["a-epoch"] = write_monthly_report(demo_db, MONTH, base / "a-epoch", config)
    return reports


def pdf_dates(pdf: Path) -> list[str]:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True,
                          check=True).stdout
    return [line for line in info.splitlines() if line.startswith(("CreationDate", "ModDate"))]


@pytest.mark.slow
def test_same_export_gives_byte_identical_monthly_reports(
        twin_reports: dict[str, tuple[Path, Path]], demo_db: Path) -> None:
    """From one load and from a second load of the same export: the JSON and the PDF are the
    same bytes; the PDF is dated the last second of the month (UTC)."""
    runs = [twin_reports["a"], twin_reports["b"]]
    for pdf, data in runs[1:]:
        assert data.read_bytes() == runs[0][1].read_bytes()
        assert pdf.read_bytes() == runs[0][0].read_bytes()
    assert pdf_dates(runs[0][0]) == ["CreationDate:    Sat Oct 31 23:59:59 2026 UTC",
                                     "ModDate:         Sat Oct 31 23:59:59 2026 UTC"]
    text = runs[0][1].read_text(encoding="utf-8")
    assert "run_time" not in text and "loaded_at" not in text
    assert str(runs[0][1].parent) not in text and str(demo_db.parent) not in text
    report = json.loads(text)
    assert report["provenance"]["load_id"] == 1
    assert re.fullmatch(r"[0-9a-f]{12}", report["provenance"]["input_fingerprint"])
    assert f"load 1, inputs {report['provenance']['input_fingerprint']}" in pdf_text(runs[0][0])


@pytest.mark.slow
def test_source_date_epoch_dates_the_pdf_and_changes_nothing_else(
        twin_reports: dict[str, tuple[Path, Path]], demo_db: Path,
        suppress_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(suppress_config)
    plain_pdf, plain_json = twin_reports["a"]
    runs = [twin_reports["a-epoch"], twin_reports["b"]]
    assert runs[0][0].read_bytes() != plain_pdf.read_bytes()  # the date reached the PDF
    assert runs[0][1].read_bytes() == runs[1][1].read_bytes() == plain_json.read_bytes()
    assert pdf_dates(runs[0][0]) == ["CreationDate:    Mon Sep 21 14:13:20 2026 UTC",
                                     "ModDate:         Mon Sep 21 14:13:20 2026 UTC"]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    from pipeline.errors import InputError

    with pytest.raises(InputError, match="SOURCE_DATE_EPOCH"):
        write_monthly_report(demo_db, MONTH, tmp_path / "bad", config)
