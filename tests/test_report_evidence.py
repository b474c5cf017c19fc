"""Evidence comparison report: pure pieces on hand-worked inputs, then the real report on the demo."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import date

import polars as pl
import pytest
from statsmodels.stats.proportion import proportion_confint

from pipeline.config import ConfigError, load_config
from pipeline.formatting import Suppressed
from pipeline.reports.evidence.claims import bound_verdict
from pipeline.reports.evidence.compare import (
    km_at,
    mix_verdict,
    range_verdict,
    wilson_from_rate,
)
from pipeline.reports.evidence.rates import rate_entry
from pipeline.reports.evidence.write import read_evidence_results, write_evidence_report

AS_OF = date(2026, 10, 31)

# ---------------------------------------------------------------------------------------------
# Hand-worked pure functions


def test_published_interval_is_wilson_from_rate_and_n():
    for p, n in [(0.536, 537), (0.708, 24), (0.0, 28), (0.916, 12)]:
        low, high = proportion_confint(p * n, n, alpha=0.05, method="wilson")
        assert wilson_from_rate(p, n) == pytest.approx((low, high), abs=1e-6)


def test_km_at_with_greenwood_interval():
    # durations 1,2,2,3,4 with events T,T,F,T,F:
    # t=1: 5 at risk, 1 event -> S = 0.8; t=2: 4 at risk, 1 event -> S = 0.8*0.75 = 0.6
    # Greenwood sum at 2: 1/(5*4) + 1/(4*3) = 0.05 + 0.083333 = 0.133333
    # log(-log) interval: se = sqrt(0.133333)/|ln 0.6| = 0.365148/0.510826 = 0.714820
    # z*se = 1.959964*0.714820 = 1.40102; low = 0.6^exp(1.40102) = 0.6^4.0593 = 0.12573;
    # high = 0.6^exp(-1.40102) = 0.6^0.24635 = 0.88175
    point = km_at([1, 2, 2, 3, 4], [True, True, False, True, False], 2.5)
    assert point.survival == pytest.approx(0.6)
    assert point.events_by_time == 2 and point.at_risk_after == 2
    assert point.low == pytest.approx(0.12573, abs=1e-4)
    assert point.high == pytest.approx(0.88175, abs=1e-4)
    lifelines = pytest.importorskip("lifelines")
    fitter = lifelines.KaplanMeierFitter().fit([1, 2, 2, 3, 4], [1, 1, 0, 1, 0])
    ci = fitter.confidence_interval_survival_function_
    row = ci[ci.index <= 2.5].iloc[-1]
    assert (point.low, point.high) == pytest.approx((row.iloc[0], row.iloc[1]), abs=1e-6)


@pytest.mark.parametrize(
    ("estimate", "low", "high", "expected"),
    [
        (0.25, 0.21, 0.29, "supported (firm)"),          # all inside 20-30%
        (0.26, 0.18, 0.36, "supported (tentative)"),     # estimate inside, interval spills out
        (0.39, 0.33, 0.46, "not supported (firm)"),      # whole interval above 30%
        (0.35, 0.28, 0.42, "not supported (tentative)"),  # estimate above, interval reaches in
        (None, None, None, "cannot be measured"),
    ],
)
def test_range_verdicts(estimate, low, high, expected):
    assert range_verdict(estimate, low, high, 0.2, 0.3).text == expected


def test_mix_verdict_and_withheld_bounds():
    assert mix_verdict((0.3, 0.2, 0.4), (0.19, 0.12, 0.3)).text == "supported (firm)"
    assert mix_verdict((0.3, 0.2, 0.4), (0.12, 0.06, 0.2)).text == "supported (tentative)"
    assert mix_verdict((0.5, 0.4, 0.6), (0.05, 0.02, 0.09)).text == "not supported (firm)"
    assert mix_verdict(None, (0.2, 0.1, 0.3)).verdict == "cannot be measured"
    # "<11 of 87" same-day halvings: rate <= 10/87 = 11.5%, Wilson high of 10/87 ~ 20% < 50%
    entry = rate_entry(8, 87, 10)
    assert entry["rate"] is None and entry["ceiling"] == pytest.approx(10 / 87)
    assert bound_verdict(entry, 0.5, 1.0, 10).text == "not supported (firm)"
    assert bound_verdict(entry, 0.05, 0.3, 10).verdict == "cannot be measured"


def test_small_cells_and_complementary_suppression():
    assert rate_entry(5, 100, 10)["numerator"] == Suppressed(10)      # primary
    complement = rate_entry(95, 100, 10)                               # 5 derivable
    assert complement["rate"] is None and complement["numerator"] is None
    assert complement["floor"] == pytest.approx(0.9)
    assert rate_entry(3, 8, 10)["denominator"] == Suppressed(10)
    shown = rate_entry(0, 100, 10)
    assert shown["rate"] == 0 and not shown["suppressed"]


# ---------------------------------------------------------------------------------------------
# The real report on the demo export (built once for the module)


@pytest.fixture(scope="module")
def report(evidence_report, demo_db) -> dict:
    pdf, js = evidence_report
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    return {"db": demo_db, "pdf": pdf, "json": js, "config": load_config(),
            "text": text, "flat": " ".join(text.split()),
            "data": json.loads(js.read_text(encoding="utf-8"))}


def test_writes_pdf_and_json_named_by_date(report):
    assert report["pdf"].name == "evidence-2026-10-31.pdf"
    assert report["json"].name == "evidence-2026-10-31.json"


def test_pdf_passes_qpdf_check_and_every_page_renders(report, tmp_path):
    subprocess.run(["qpdf", "--check", str(report["pdf"])], check=True, capture_output=True)
    info = subprocess.run(["pdfinfo", str(report["pdf"])], capture_output=True, text=True,
                          check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    subprocess.run(["pdftoppm", "-png", "-r", "20", str(report["pdf"]), str(tmp_path / "p")],
                   check=True)
    rendered = sorted(tmp_path.glob("p-*.png"))
    assert len(rendered) == pages and all(p.stat().st_size > 0 for p in rendered)


def test_no_patient_identifier_anywhere(report):
    assert not re.search(r"P\d{5}", report["text"])
    assert not re.search(r"P\d{5}", report["json"].read_text(encoding="utf-8"))
    raw = report["pdf"].read_bytes()
    assert not re.search(rb"P\d{5}", raw)


def independent_rates(report) -> pl.DataFrame:
    """Evaluable-course PHQ-9 response counts straight from the outcome rows."""
    metrics = read_evidence_results(report["db"], AS_OF, report["config"]).tables
    rows = metrics["course_outcomes"].filter(
        (pl.col("instrument") == "PHQ-9") & pl.col("evaluable")
        & (pl.col("status") != "in_progress"))
    return rows.group_by("protocol_id").agg(
        evaluable=pl.len(), responders=(pl.col("category") == "response").sum(),
        non_responders=(pl.col("category") == "non_response").sum(),
    ).sort("protocol_id")


def test_printed_clinic_rates_equal_independent_wilson(report):
    checked = 0
    sections = {s["protocol_id"]: s for s in report["data"]["protocols"]}
    for row in independent_rates(report).to_dicts():
        for key, count in (("response", row["responders"]), ("non_response", row["non_responders"])):
            n = row["evaluable"]
            printed = next(r for r in sections[row["protocol_id"]]["rates"]["rows"]
                           if r["key"] == key)["evaluable"]
            if count <= 10 or n - count <= 10 or printed["rate"] is None:
                assert printed["rate"] is None  # withheld: never a small cell in print
                continue
            low, high = proportion_confint(count, n, alpha=0.05, method="wilson")
            expected = f"{100 * count / n:.1f}% ({100 * low:.1f}%–{100 * high:.1f}%)"
            assert expected in report["flat"], (row["protocol_id"], key, expected)
            assert (printed["numerator"], printed["denominator"]) == (count, n)
            checked += 1
    # complementary suppression (docs/suppression.md) withholds a few more rates than the
    # small cells alone; the demo still prints at least three of these eight
    assert checked >= 3


def test_every_published_figure_has_a_reference_and_references_end_the_report(report):
    data, flat = report["data"], report["flat"]
    refs = {r["ref"] for r in data["references"]}
    for section in data["protocols"]:
        for family in section["families"]:
            for study in family["studies"]:
                assert study["ref"] in refs
                assert f"{study['label']}" in flat
    assert flat.rfind("References") > flat.rfind("Methods")
    assert "doi:10.1016/j.jad.2021.12.097" in flat  # McInnes 2022


def test_small_cells_never_printed(report):
    flat = report["flat"]
    assert "<11" in flat and "withheld" in flat

    def walk(value, key=None):
        if isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, k)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v, key)
        else:
            yield key, value

    count_keys = {"numerator", "denominator", "evaluable", "itt", "subjects", "finished",
                  "in_progress", "courses_not_in_progress", "mix_n"}
    for key, value in walk(report["data"]):
        if key in count_keys and isinstance(value, int) and not isinstance(value, bool):
            assert not 1 <= value <= 10, (key, value)


def test_claims_table_has_every_claim_with_a_verdict(report):
    flat = report["flat"]
    for claim in ("Relief within about an hour", "better after 3–4 infusions",
                  "Early responders after 1–2 infusions", "About 20–30% do not respond",
                  "Relief lasts weeks to months", "six infusions over 12 days"):
        assert claim in flat
    for rule in report["data"]["verdict_rules"]:
        assert " ".join(rule.split())[:60] in flat
    ind6 = next(s for s in report["data"]["protocols"] if s["protocol_id"] == "IND6")
    verdicts = {c["key"]: c["verdict"]["verdict"] for c in ind6["claims"]}
    assert set(verdicts.values()) <= {"supported", "not supported", "cannot be measured"}
    assert len(verdicts) == 7


def test_bad_evidence_config_stops_the_report(report, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[evidence]\nfamilies = 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        write_evidence_report(report["db"], AS_OF, tmp_path / "out", load_config(path))


# ---------------------------------------------------------------------------------------------
# Deterministic reports (issue 9): the same export, config and as-of give the same bytes


@pytest.fixture(scope="module")
def twin_reports(tmp_path_factory, evidence_report, demo_db, demo_db_again):
    """The demo's report (tests/conftest.py `evidence_report`, rendered once with
    SOURCE_DATE_EPOCH unset), the report from a second load of the same export into another
    database, and from the first again with SOURCE_DATE_EPOCH: the evidence writer's
    byte-identity, checked once."""
    base = tmp_path_factory.mktemp("evidence-twins")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
        plain = [evidence_report,
                 write_evidence_report(demo_db_again, AS_OF, base / "b", load_config())]
        monkeypatch.setenv("SOURCE_DATE_EPOCH", "1790000000")
        epoch = write_evidence_report(demo_db, AS_OF, base / "a-epoch", load_config())
    return {None: plain, "1790000000": [epoch]}


def pdf_dates(pdf):
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True,
                          check=True).stdout
    return [line for line in info.splitlines() if line.startswith(("CreationDate", "ModDate"))]


@pytest.mark.slow
@pytest.mark.parametrize("epoch", [None, "1790000000"])
def test_same_export_gives_byte_identical_evidence_reports(twin_reports, demo_db, epoch):
    """From one load and from a second load of the same export: the same JSON and PDF bytes.
    The PDF is dated SOURCE_DATE_EPOCH when set, else the end of the as-of day (both in UTC);
    the JSON carries no date of the run at all (the same JSON with SOURCE_DATE_EPOCH)."""
    runs = twin_reports[epoch]
    for pdf, js in runs[1:]:
        assert js.read_bytes() == runs[0][1].read_bytes()
        assert pdf.read_bytes() == runs[0][0].read_bytes()
    expected = ("Mon Sep 21 14:13:20 2026 UTC" if epoch else "Sat Oct 31 23:59:59 2026 UTC")
    assert pdf_dates(runs[0][0]) == [f"CreationDate:    {expected}", f"ModDate:         {expected}"]
    text = runs[0][1].read_text(encoding="utf-8")
    assert text == twin_reports[None][0][1].read_text(encoding="utf-8")
    assert str(runs[0][1].parent) not in text and str(demo_db.parent) not in text
