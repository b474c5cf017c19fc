"""The evidence report's comparisons as printed (docs/benchmarks.md): every family's p0, CI, τ²,
I², prediction interval and funnel limits, in the PDF and in the JSON, against a recomputation
made here (statsmodels' combine_effects called directly, the weighted mean and Cochran's Q by
hand, scipy's binomial and a quadrature of the random-effects mixture); pooling by the
registry's columns; definitions as configured (response_pct = 40); small cells suppressed
whatever small_cell_max; the instrument with most evaluable courses when there is no PHQ-9.
"""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from scipy import integrate, stats
from statsmodels.stats.meta_analysis import combine_effects

import pipeline
from pipeline.config import ConfigError, load_config
from pipeline.demo import write_demo
from pipeline.formatting import Suppressed, Withheld
from pipeline.ingest import ingest
from pipeline.reports.evidence.charts import funnel_lines
from pipeline.reports.evidence.families import DEFAULT_FAMILIES
from pipeline.reports.evidence.studies import place
from pipeline.reports.evidence.view import build_view
from pipeline.reports.evidence.write import (
    evidence_context,
    read_evidence_results,
    write_evidence_report,
)
from pipeline.stats import exact_funnel_limits
from tests.test_funnel_exact import reference_limits
from tests.test_suppression import K, audit_evidence

AS_OF = date(2026, 10, 31)
Z = float(stats.norm.ppf(0.975))  # 1.959964...
REGISTRY = Path(pipeline.__file__).parent / "reports" / "evidence" / "registry.csv"
# What the demo's protocols are matched with (docs/definitions.md, matching by plan)
EXPECTED_FAMILIES = {"IND6": ["series_6_in_2wk", "real_world_induction"],
                     "SINGLE": ["single_infusion"],
                     "TW4": ["twice_weekly_3_4wk", "real_world_induction"], "MAINT": []}
RESPONSE_CLAIMS = {"relief_hour", "better_3_4", "timing_mix", "non_response", "not_response",
                   "durability"}


def expit(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def flat(text: str) -> str:
    """Text without whitespace and hyphens: a line break inside a printed figure, or one
    pdftotext reads as a hyphenation ("meta-" + "analytic" -> "metaanalytic"), does not
    matter."""
    return re.sub(r"[\s-]+", "", text)


def pdftotext(pdf: Path) -> str:
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


@pytest.fixture(scope="module")
def registry() -> dict[str, dict[str, str]]:
    """The registry file read with the csv module (not the code under test)."""
    with REGISTRY.open(encoding="utf-8") as handle:
        return {row["study_id"]: row for row in csv.DictReader(handle)}


def pooled_inputs(registry: dict[str, dict[str, str]], family: str
                  ) -> tuple[list[str], list[float], list[int]]:
    """A family's poolable rows: complete citation and a responders / n proportion."""
    rows = [registry[s] for s in DEFAULT_FAMILIES[family].pooled
            if registry[s]["benchmark"] == "yes" and registry[s]["pooling"] == "poolable"]
    return ([r["study_id"] for r in rows], [float(r["response_rate"]) for r in rows],
            [int(r["n_response"] or r["n"]) for r in rows])


def reference_benchmark(rates: list[float], ns: list[int], method_re: str = "iterated"
                        ) -> dict[str, Any]:
    """The random-effects benchmark of docs/benchmarks.md, worked here: τ² from statsmodels
    (floored at 0), the weighted mean, its Wald CI, Cochran's Q, I² and the prediction
    interval by hand."""
    y = np.array([math.log(p / (1 - p)) for p in rates])
    v = np.array([1 / (n * p * (1 - p)) for p, n in zip(rates, ns, strict=True)])
    k = len(rates)
    if k == 1:
        se = math.sqrt(v[0])
        return {"p0": rates[0], "p0_ci_low": expit(y[0] - Z * se),
                "p0_ci_high": expit(y[0] + Z * se), "tau2": None, "i2": None, "k": 1,
                "pi_low": None, "pi_high": None}
    with np.errstate(invalid="ignore"):
        tau2 = max(float(combine_effects(y, v, method_re=method_re).tau2), 0.0)
    w = 1 / (v + tau2)
    mu, se = float(w @ y / w.sum()), float(1 / math.sqrt(w.sum()))
    fixed = float((y / v).sum() / (1 / v).sum())
    q = float(((y - fixed) ** 2 / v).sum())
    out = {"p0": expit(mu), "p0_ci_low": expit(mu - Z * se), "p0_ci_high": expit(mu + Z * se),
           "tau2": tau2, "i2": max(0.0, (q - (k - 1)) / q), "k": k, "pi_low": None,
           "pi_high": None}
    if k >= 3:
        half = stats.t.ppf(0.975, k - 2) * math.sqrt(tau2 + se * se)
        out["pi_low"], out["pi_high"] = expit(mu - half), expit(mu + half)
    return out


def mixture_pmfs(n: int, p0: float, tau2: float) -> list[float]:
    """P(R = r) for r = 0..n with R | theta ~ Bin(n, expit theta), theta ~ N(logit p0, tau2):
    tests/test_funnel_exact.py `mixture_pmf`, every r in one (vector) quadrature instead of one
    quadrature per r (the same values to ~1e-13, 30-60 times faster)."""
    mu, tau = math.log(p0 / (1 - p0)), math.sqrt(tau2)
    counts = np.arange(n + 1)

    def integrand(theta: float) -> np.ndarray:
        return stats.binom.pmf(counts, n, 1 / (1 + math.exp(-theta))) * stats.norm.pdf(
            theta, mu, tau)

    pmf = integrate.quad_vec(integrand, mu - 12 * tau, mu + 12 * tau, epsabs=1e-13,
                             epsrel=1e-13, limit=200)[0]
    return [float(p) for p in pmf]


def reference_funnel(p0: float, n: int, tau2: float | None) -> dict[str, Any]:
    """Counts within and interpolated limits from the pmf: scipy's binomial, or the mixture
    by quadrature where τ² > 0."""
    pmf = (mixture_pmfs(n, p0, tau2) if tau2
           else [float(stats.binom.pmf(r, n, p0)) for r in range(n + 1)])
    counts95, limits95 = reference_limits(pmf, n, 0.025)
    counts998, limits998 = reference_limits(pmf, n, 0.001)
    return {"counts95": counts95, "counts998": counts998, "limit95_low": limits95[0],
            "limit95_high": limits95[1], "limit998_low": limits998[0],
            "limit998_high": limits998[1]}


def label(responders: int, funnel: dict[str, Any]) -> str:
    def side(counts: tuple[int, int]) -> str:
        return "below" if responders < counts[0] else "above" if responders > counts[1] \
            else "within"

    position, beyond = side(funnel["counts95"]), side(funnel["counts998"])
    return f"{position} (outside 99.8%)" if position != "within" and beyond == position \
        else position


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def span(low: float, high: float) -> str:
    return f"{100 * low:.1f}–{pct(high)}"


@pytest.fixture(scope="module")
def demo(evidence_report: list[Path], demo_db: Path) -> dict[str, Any]:
    pdf, js = evidence_report
    rows = read_evidence_results(demo_db, AS_OF, load_config()).tables["course_outcomes"]
    clinic = rows.filter((pl.col("instrument") == "PHQ-9") & pl.col("evaluable")
                         & (pl.col("status") != "in_progress")).group_by("protocol_id").agg(
        n=pl.len(), responders=(pl.col("category") == "response").sum())
    return {"data": json.loads(js.read_text(encoding="utf-8")), "text": flat(pdftotext(pdf)),
            "clinic": {r["protocol_id"]: r for r in clinic.to_dicts()}}


def families(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(s["protocol_id"], f) for s in data["protocols"] for f in s["families"]]


def test_every_family_agrees_with_an_independent_recomputation(demo, registry):
    data, text = demo["data"], demo["text"]
    assert {s["protocol_id"]: [f["key"] for f in s["families"]]
            for s in data["protocols"]} == EXPECTED_FAMILIES
    checked_pi = checked_tau = 0
    for protocol, family in families(data):
        ids, rates, ns = pooled_inputs(registry, family["key"])
        expected = reference_benchmark(rates, ns)
        assert family["method"] == ("single_study" if len(ids) == 1 else "paule_mandel")
        assert [s["study_id"] for s in family["studies"] if s["pooled"]] == ids
        for key, value in expected.items():
            assert family[key] == (pytest.approx(value, rel=1e-9, abs=1e-12)
                                   if value is not None else None), (protocol, key)
        assert family["single_benchmark"] and (family["i2"] or 0) < 0.75
        # printed: p0 with its CI, τ² and I², the prediction interval (k >= 3)
        p0 = f"p0={pct(expected['p0'])}(95%CI{span(expected['p0_ci_low'], expected['p0_ci_high'])})"
        assert flat(p0) in text, (protocol, p0)
        if expected["k"] >= 2:
            assert flat(f"τ² = {expected['tau2']:.3f}, I² = {100 * expected['i2']:.0f}%") in text
        if expected["pi_low"] is not None:
            checked_pi += 1
            assert flat("prediction interval for a new cohort "
                        f"{span(expected['pi_low'], expected['pi_high'])}") in text
        # the clinic on the exact funnel for its n, widened for τ²
        clinic = demo["clinic"][protocol]
        funnel = reference_funnel(expected["p0"], clinic["n"], expected["tau2"])
        checked_tau += bool(expected["tau2"])
        for key in ("limit95_low", "limit95_high", "limit998_low", "limit998_high"):
            assert family[key] == pytest.approx(funnel[key], abs=1e-7), (protocol, key)
        assert (family["n"], family["responders"]) == (clinic["n"], clinic["responders"])
        position = label(clinic["responders"], funnel)
        assert family["position_text"] == position
        limits = (f"exact 95% limits {span(funnel['limit95_low'], funnel['limit95_high'])}, "
                  f"99.8% limits {span(funnel['limit998_low'], funnel['limit998_high'])} at "
                  f"n = {clinic['n']:,}")
        assert flat(f"Clinic response: {position} ({limits})") in text, (protocol, limits)
        # the funnel chart's lines at the clinic's n are these limits (the label's function)
        grid, lines = funnel_lines(family["p0"], family["tau2"], 600, clinic["n"])
        at = lines[list(grid).index(clinic["n"])]
        assert list(at) == pytest.approx([funnel[k] for k in (
            "limit95_low", "limit95_high", "limit998_low", "limit998_high")], abs=1e-7)
    assert checked_pi >= 2 and checked_tau >= 2  # real-world (twice) and single infusion


def test_no_kaplan_meier_or_armless_meta_analytic_figure_is_pooled(demo, registry):
    text, seen = demo["text"], set()
    for _, family in families(demo["data"]):
        for study in family["studies"]:
            kind = registry[study["study_id"]]["pooling"]
            if kind != "poolable":
                assert not study["pooled"], study["study_id"]
                seen.add(kind)
            if kind in ("kaplan_meier", "meta_analytic"):
                # no binomial n: no Wilson interval; the paper's own CI where it has one
                published = registry[study["study_id"]]["response_ci_low"]
                assert study["ci_low"] == (float(published) if published else None)
        assert family["k"] == sum(s["pooled"] for s in family["studies"])
    assert {"kaplan_meier", "meta_analytic", "pre_dose", "secondary_source"} <= seen
    assert flat("not pooled: Kaplan–Meier cumulative estimate, not a responders / n") in text
    assert flat("not pooled: meta-analytic pooled rate without the ketamine-arm n") in text
    assert flat("not pooled: scored before each dose") in text


def test_a_withheld_count_is_placed_only_when_its_marker_decides(registry):
    # p0 = 0.5, n = 40, binomial: P(R <= 13) = 0.0192 < 0.025 <= P(R <= 14) = 0.0403, so every
    # count 1-10 is below (and P(R <= 10) = 0.00111, P(R <= 9) = 0.00032: 1-9 are also below
    # the 99.8% limit, 10 is not); "*" (11-40) spans below, within and above
    assert stats.binom.cdf(13, 40, 0.5) < 0.025 <= stats.binom.cdf(14, 40, 0.5)
    funnel = exact_funnel_limits(0.5, 40)
    assert place(funnel, Suppressed(10), 10) == ("below", None)
    assert place(funnel, Withheld(), 10) == (None, None)
    assert place(funnel, 20, 10) == ("within", "within")
    # with a larger small-cell size the marker covers more counts: 1-15 reach into "within"
    assert place(funnel, Suppressed(15), 15) == (None, None)


# ---------------------------------------------------------------------------------------------
# Definitions as configured: response_pct = 40

THRESHOLD_50 = re.compile(r"(>=|[≥<>])\s*50\s*%|50\s*%\s*(reduction|improvement|same-day|or)|"
                          r"(at least|less than)\s+50\s*%")


@pytest.fixture(scope="module")
def response40(response40_reports: dict[str, Any]) -> dict[str, Any]:
    """The demo's evidence report with response_pct = 40 (partial 20), written once by
    `outcomes report evidence --config` (tests/conftest.py; test_results.py reads it too)."""
    code, output = response40_reports["done"]["evidence"]
    assert code == 0, output
    pdf = response40_reports["out"] / f"evidence-{AS_OF.isoformat()}.pdf"
    return {"text": pdftotext(pdf), "json": pdf.with_suffix(".json").read_text(encoding="utf-8")}


def test_response_40_never_prints_50_as_the_threshold(response40):
    for where in ("text", "json"):
        found = [m.group(0) for m in THRESHOLD_50.finditer(response40[where])]
        assert found == [], (where, found)
    text = " ".join(response40["text"].split())
    assert "Response (≥40% reduction)" in text and "Did not reach response (<40% reduction)" in text
    assert "Non-response (<20% reduction)" in text
    assert "≥ 40%" in text and "at most 60% of baseline" in text


def test_response_40_compares_nothing_with_the_studies(response40):
    data = json.loads(response40["json"])
    reads = "not comparable: response defined as ≥ 40%"
    assert data["not_comparable"] == reads
    compared = 0
    for _, family in families(data):
        compared += 1
        assert family["position_text"] == reads and family["position"] is None
        assert family["limit95_low"] is None and family["limit998_high"] is None
        assert family["p0"] is not None  # the studies' benchmark itself is still printed
    for s in data["protocols"]:
        for claim in s["claims"]:
            if claim["key"] in RESPONSE_CLAIMS:
                assert claim["verdict"]["text"] == reads, claim["key"]
    assert compared == 5
    ind6 = next(s for s in data["protocols"] if s["protocol_id"] == "IND6")
    assert all(f["position"] is None for f in ind6["families"])
    assert reads in " ".join(response40["text"].split())


# ---------------------------------------------------------------------------------------------
# Suppression whatever small_cell_max; the config's estimator; no PHQ-9


def config_file(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_small_cell_max_zero_still_suppresses_1_to_10(tmp_path, demo_db):
    config = load_config(config_file(tmp_path, "[definitions]\nsmall_cell_max = 0\n"
                                               "suppress_small_cells = true\n"))
    pdf, js = write_evidence_report(demo_db, AS_OF, tmp_path / "out", config)
    report = json.loads(js.read_text(encoding="utf-8"))
    assert audit_evidence(report).leaks() == []
    text = json.dumps(report, ensure_ascii=False)
    assert '"<11"' in text and '"<1"' not in text and "1 to 0" not in text
    # the PDF says the same: the box on page 1, the footer and the methods table
    printed = " ".join(pdftotext(pdf).split())
    assert 'counts from 1 to 10 print as "<11"' in printed
    assert "counts of 1–10 are printed as <11" in printed
    assert not re.search(r"1 to 0|1–0 |<1\b|\"<1\"", printed)
    assert report["small_cell_max"] == K
    small = next(m for m in report["evidence_methods"] if m["definition"] == "Small cells")
    assert "counts from 1 to 10 print as \"<11\"" in small["text"]
    assert "small_cell_max = 0 is raised to 10" in small["text"]

    def counts(value: Any, key: str = "") -> list[tuple[str, Any]]:
        if isinstance(value, dict):
            return [x for k, v in value.items() for x in counts(v, k)]
        if isinstance(value, list):
            return [x for v in value for x in counts(v, key)]
        return [(key, value)]

    keys = {"numerator", "denominator", "evaluable", "itt", "subjects", "finished", "n",
            "in_progress", "courses_not_in_progress", "mix_n", "responders"}
    raw = [(k, v) for k, v in counts(report["protocols"]) if k in keys
           and isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= K]
    # the published studies' n are not clinic counts (none of them is 1-10 either)
    assert raw == []


def test_the_config_chooses_dersimonian_laird(tmp_path, demo_db, registry):
    config = load_config(config_file(tmp_path, '[evidence]\nmethod = "dersimonian_laird"\n'))
    report = evidence_context(demo_db, AS_OF, config)
    family = next(f for _, f in families(report) if f["key"] == "real_world_induction")
    _, rates, ns = pooled_inputs(registry, "real_world_induction")
    expected = reference_benchmark(rates, ns, method_re="chi2")
    assert family["method"] == "dersimonian_laird"
    assert family["tau2"] == pytest.approx(expected["tau2"], rel=1e-9)
    assert family["p0"] == pytest.approx(expected["p0"], rel=1e-9)
    bad = config_file(tmp_path / "bad", '[evidence]\nmethod = "magic"\n')
    with pytest.raises(ConfigError, match=r"bad/config.toml: \[evidence\] method = 'magic'"):
        write_evidence_report(demo_db, AS_OF, tmp_path / "out", load_config(bad))


def test_without_phq9_the_report_uses_the_instrument_with_most_evaluable_courses(tmp_path):
    export = tmp_path / "export"
    write_demo(export, patients=120, seed=5, end=AS_OF)
    scores = pl.read_csv(export / "assessments.csv", infer_schema_length=0)
    # every spelling ingest reads as PHQ-9 ("phq-9", "PHQ9") goes too
    scores.filter(pl.col("instrument").str.to_lowercase().str.replace_all("[^a-z0-9]", "")
                  != "phq9").write_csv(export / "assessments.csv")
    db = tmp_path / "clinic.duckdb"
    ingest(export, db, load_config(), today=date(2026, 11, 28))
    rows = read_evidence_results(db, AS_OF, load_config()).tables["course_outcomes"]
    evaluable = rows.filter(pl.col("evaluable")).group_by("instrument").agg(n=pl.len()).sort(
        ["n", "instrument"], descending=[True, False])
    expected = evaluable["instrument"][0]
    assert expected != "PHQ-9" and evaluable["n"][0] > evaluable["n"][1]
    report = evidence_context(db, AS_OF, load_config())
    assert report["primary_instrument"] == expected
    assert expected == "GAD-7"  # in this demo; the caveat says the studies measured depression
    assert any("the GAD-7, which measures anxiety, not depression as the studies did" in c
               for c in report["caveats"])
    sections = [s for s in report["protocols"] if s["rates"]]
    assert sections and all(s["instrument"] == expected for s in sections)
    assert any(isinstance(s["rates"]["evaluable"], int) and s["rates"]["evaluable"] > 0
               for s in sections)


def test_secondary_instruments_note_names_those_scored_on_fewer_courses(demo, demo_db):
    """The note under "Other instrument" lists the instruments with fewer evaluable courses than
    the compared one, counted here from the course rows, and calls the GAD-7 an anxiety scale
    only where it is listed."""
    config = load_config()
    rows = read_evidence_results(demo_db, AS_OF, config).tables["course_outcomes"]
    counts = {(r["protocol_id"], r["instrument"]): r["n"] for r in rows.filter(
        pl.col("evaluable") & (pl.col("status") != "in_progress")).group_by(
        "protocol_id", "instrument").agg(n=pl.len()).to_dicts()}
    view = build_view(evidence_context(demo_db, AS_OF, config), config)
    text, listed = demo["text"], 0
    for protocol in EXPECTED_FAMILIES:
        primary = counts[(protocol, "PHQ-9")]
        expected = [i for i in config.instruments if i != "PHQ-9"
                    and 0 < counts.get((protocol, i), 0) < primary]
        assert view["protocols"][protocol]["fewer_scored"] == expected, protocol
        assert view["protocols"][protocol]["not_depression"] == (
            ["The GAD-7 measures anxiety, not depression."] if (protocol, "GAD-7") in counts
            else [])
        listed += len(expected)
        if expected:
            assert flat(f"({', '.join(expected)} scored on fewer courses than the PHQ-9)") in text
    assert listed >= 4  # GAD-7 and MADRS under IND6, SINGLE and TW4 in the demo
    assert flat("The GAD-7 measures anxiety, not depression.") in text
