"""The case-mix section of the monthly report (docs/case-mix.md), read back from the JSON and
the PDF the report writes for synthetic clinics of known truth (tests/casemix_clinics.py).

Expectations come from the clinics' truth and from scipy, never from the code under test:
observed responders are counted in the generated courses; the 95% interval of O/E is the exact
Poisson (Garwood) interval recomputed with scipy's chi-squared quantiles from the printed O and
E; the adjusted rate is O/E times the clinic's response rate counted in the generated courses.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy import stats

from pipeline.config import load_config
from pipeline.reports.monthly.write import write_monthly_report
from tests.casemix_clinics import (
    MONTH,
    draw_courses,
    severe_site_clinic,
    weak_provider_clinic,
)
from tests.conftest import SUPPRESS
from tests.test_suppression import audit_monthly

Report = tuple[dict[str, Any], str, pl.DataFrame]


def monthly(path: Path, out: Path, config_text: str | None = None, text: bool = True
            ) -> tuple[dict[str, Any], str]:
    """The monthly report for MONTH: its JSON and the PDF's text ("" when `text` is False: the
    caller reads the JSON only)."""
    config_path = None
    if config_text is not None:
        config_path = out.parent / "config.toml"
        config_path.write_text(config_text, encoding="utf-8")
    pdf, js = write_monthly_report(path, MONTH, out, load_config(config_path))
    shown = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                           text=True, check=True).stdout if text else ""
    return json.loads(js.read_text(encoding="utf-8")), shown


def clinic_report(factory: pytest.TempPathFactory, name: str,
                  make: Callable[[Path], pl.DataFrame]) -> Report:
    """A synthetic clinic written by `make`, and its monthly report without suppression."""
    base = factory.mktemp(name)
    courses = make(base / "clinic.duckdb")
    report, text = monthly(base / "clinic.duckdb", base / "out")
    return report, text, courses


@pytest.fixture(scope="module")
def severe(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return clinic_report(tmp_path_factory, "severe-monthly", severe_site_clinic)


@pytest.fixture(scope="module")
def weak(tmp_path_factory: pytest.TempPathFactory) -> Report:
    return clinic_report(tmp_path_factory, "weak-monthly", weak_provider_clinic)


def row(report: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    return next(r for r in report["case_mix"][f"{kind}s"] if r[kind] == name)


def garwood(observed: int, expected: float) -> tuple[float, float]:
    """Exact Poisson 95% limits for O, divided by E (chi-squared form)."""
    low = stats.chi2.ppf(0.025, 2 * observed) / 2 if observed else 0.0
    return low / expected, stats.chi2.ppf(0.975, 2 * observed + 2) / 2 / expected


def pdf_line(text: str, start: str) -> str:
    return " ".join(next(li for li in text.splitlines() if li.strip().startswith(start)).split())


def test_the_json_carries_every_key_of_the_case_mix_section(severe: Report) -> None:
    cm = severe[0]["case_mix"]
    assert cm["status"] == "adjusted"
    assert cm["period"] == {"start": "2025-04-01", "end": "2026-03-31"}
    for kind in ("site", "provider"):
        for r in cm[f"{kind}s"]:
            assert {kind, "observed", "expected", "oe", "oe_ci_low", "oe_ci_high",
                    "adjusted_rate"} <= set(r)
    assert {"n", "coefficients", "c_statistic"} <= set(cm["model"])
    assert [r["site"] for r in cm["sites"]] == ["A", "B"]
    assert [r["provider"] for r in cm["providers"]] == ["A1", "A2", "B1", "B2"]


def test_the_site_with_the_severe_patients_is_not_flagged(severe: Report) -> None:
    report, text, courses = severe
    truth = {r["site"]: r for r in courses.group_by("site").agg(
        n=pl.len(), responders=pl.col("responded").sum()).to_dicts()}
    overall = courses["responded"].mean()
    assert isinstance(overall, float)
    model = report["case_mix"]["model"]
    assert model["n"] == 600 and model["responders"] == courses["responded"].sum()
    raw = {}
    for site in ("A", "B"):
        r = row(report, "site", site)
        assert r["evaluable"] == truth[site]["n"] == 300
        assert r["observed"] == truth[site]["responders"]
        raw[site] = r["raw_rate"]["rate"]
        assert raw[site] == pytest.approx(truth[site]["responders"] / 300)
        # O/E near 1, and its interval (recomputed from the printed O and E) holds 1
        assert abs(r["oe"] - 1) < 0.15, r
        assert r["oe"] == pytest.approx(r["observed"] / r["expected"])
        low, high = garwood(r["observed"], r["expected"])
        assert (r["oe_ci_low"], r["oe_ci_high"]) == pytest.approx((low, high), rel=1e-9)
        assert low < 1 < high and r["position"] == "within"
        assert r["adjusted_rate"] == pytest.approx(r["oe"] * overall)
    # raw rates differ clearly (truth ~0.29 vs ~0.59); the adjusted ones do not
    assert raw["B"] - raw["A"] > 0.2
    assert abs(row(report, "site", "A")["adjusted_rate"]
               - row(report, "site", "B")["adjusted_rate"]) < 0.1
    # the PDF prints the same verdict on each site's row
    for number, site in ((1, "A"), (2, "B")):
        line = pdf_line(text, f"{number}. {site} ")
        assert "as expected" in line and f"{row(report, 'site', site)['oe']:.2f}" in line
    assert "fewer than expected" not in text


def test_the_provider_whose_patients_respond_at_a_quarter_of_the_odds_is_flagged(
        weak: Report) -> None:
    report, text, courses = weak
    truth = {r["provider"]: r["responders"] for r in courses.group_by("provider").agg(
        responders=pl.col("responded").sum()).to_dicts()}
    z = row(report, "provider", "Z")
    assert z["observed"] == truth["Z"]
    low, high = garwood(z["observed"], z["expected"])
    assert z["oe_ci_high"] == pytest.approx(high, rel=1e-9) and high < 1
    assert z["position"] == "below" and z["oe"] < 0.75
    for other in ("X", "Y"):
        r = row(report, "provider", other)
        assert r["observed"] == truth[other]
        assert r["oe_ci_high"] > 1 and r["position"] != "below"
    line = pdf_line(text, "3. Z ")
    assert "fewer than expected" in line
    assert f"{z['oe']:.2f} ({z['oe_ci_low']:.2f}–{z['oe_ci_high']:.2f})" in line
    # the methods appendix prints the model: n, C-statistic and the coefficients
    model = report["case_mix"]["model"]
    flat = " ".join(text.split())
    assert "Case-mix model" in flat and f"C-statistic {model['c_statistic']:.3f}" in flat
    assert f"case mix of {model['n']} evaluable courses" in flat
    assert "Prior adequate antidepressant trials: ≥ 3 (against 0)" in flat


def test_under_suppression_a_small_observed_count_withholds_what_would_reveal_it(
        tmp_path: Path) -> None:
    """The severe clinic plus provider C1 with 6 mild courses (a handful of responders): C1's
    O prints "<11", its E (under 11) too, and nothing that gives O back is printed; the
    outside auditor (tests/test_suppression.py) finds no count of 1..10 derivable."""
    path = tmp_path / "clinic.duckdb"
    rng = np.random.default_rng(3)
    small = draw_courses(rng, 6, site=np.full(6, "A"), provider=np.full(6, "C1"),
                         baseline=rng.integers(10, 14, 6), first=5000)
    courses = severe_site_clinic(path, small)
    assert 1 <= int(small["responded"].sum()) <= 10  # the truth of this draw
    report, _ = monthly(path, tmp_path / "out", SUPPRESS, text=False)
    c1 = row(report, "provider", "C1")
    assert c1["observed"] == "<11" and c1["expected"] == "<11"
    assert all(c1[key] is None for key in ("oe", "oe_ci_low", "oe_ci_high", "adjusted_rate"))
    model = report["case_mix"]["model"]
    totals_shown = isinstance(model["n"], int) and isinstance(model["responders"], int)
    for kind in ("site", "provider"):
        for r in report["case_mix"][f"{kind}s"]:
            shown = isinstance(r["observed"], int)
            assert not (shown and 1 <= r["observed"] <= 10)
            for key in ("oe", "oe_ci_low", "oe_ci_high", "adjusted_rate"):
                assert (r[key] is not None) == (
                    shown and totals_shown and isinstance(r["expected"], float)), (key, r)
    # the providers add up to the clinic: another provider's O (or the total) is withheld
    others = [row(report, "provider", p)["observed"] for p in ("A1", "A2", "B1", "B2")]
    assert "*" in others or report["case_mix"]["model"]["responders"] == "*"
    assert audit_monthly(report).leaks() == []
    assert courses.height == 606 and report["case_mix"]["model"]["n"] == 606
