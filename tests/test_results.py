"""The results step (pipeline/results.py): the database read once (the outcomes computed once
per `outcomes run` is counted in test_determinism.py), the tables `outcomes metrics` stored
read back only when they are the results asked for, a broken report module failing the run,
and every label following the configured cut-offs."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

import pipeline.results
from pipeline.config import load_config
from pipeline.ingest import ingest
from pipeline.metrics_files import run_metrics
from pipeline.outcomes import compute_outcomes
from pipeline.results import INPUTS, STORED_FRAMES, matches, read_results, stored_run
from tests.conftest import DEMO_END, LOAD_DAY, copy_db


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[date]:
    """Every as-of day the outcome computation is called for, while the test runs."""
    seen: list[date] = []

    def counted(con, as_of, config):  # type: ignore[no-untyped-def]
        seen.append(as_of)
        return compute_outcomes(con, as_of, config)

    monkeypatch.setattr(pipeline.results, "compute_outcomes", counted)
    return seen


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory, twin_dbs: dict[str, Path]) -> Path:
    """A twin database after `outcomes metrics` as of 2026-10-31 (default config)."""
    root = tmp_path_factory.mktemp("stored")
    db = copy_db(twin_dbs["a"], root / "clinic.duckdb")
    run_metrics(db, DEMO_END, root / "metrics", load_config())
    return db


def test_reports_read_the_stored_results_when_they_match(stored: Path, twin_dbs: dict[str, Path],
                                                         calls: list[date]) -> None:
    config = load_config()
    from_store = read_results(stored, config, DEMO_END, needs=INPUTS)
    assert from_store.stored and calls == []  # nothing computed
    computed = read_results(twin_dbs["b"], config, DEMO_END, needs=INPUTS)  # same export
    assert not computed.stored and calls == [DEMO_END]
    for name in (*STORED_FRAMES, "course_outcomes"):
        a, b = getattr(from_store.frames, name), getattr(computed.frames, name)
        assert a.schema == b.schema, name
        assert a.equals(b), name
    assert from_store.tables.keys() == computed.tables.keys()
    for name, table in from_store.tables.items():
        assert table.equals(computed.tables[name]), name
    for name in INPUTS:
        assert from_store.input(name).equals(computed.input(name)), name


def test_stored_results_for_another_day_or_config_are_not_used(stored: Path, tmp_path: Path,
                                                               calls: list[date]) -> None:
    other_day = read_results(stored, load_config(), date(2026, 9, 30))
    # the same definitions written in a file: its SHA-256 differs from the defaults' (None)
    config_file = tmp_path / "same.toml"
    config_file.write_text("[definitions]\nresponse_pct = 50\n", encoding="utf-8")
    other_config = read_results(stored, load_config(config_file), DEMO_END)
    assert not other_day.stored and not other_config.stored
    assert calls == [date(2026, 9, 30), DEMO_END]


def test_stored_results_of_another_load_are_not_used(tmp_path: Path, twin_dbs: dict[str, Path],
                                                     calls: list[date]) -> None:
    # load 2 is the same export again; metrics stored for load 2; asked for load 1, they
    # are not the results asked for
    db = copy_db(twin_dbs["a"], tmp_path / "clinic.duckdb")
    export = twin_dbs["a"].parent / "export"
    ingest(export, db, load_config(), today=LOAD_DAY)
    run_metrics(db, DEMO_END, tmp_path / "metrics", load_config())
    calls.clear()
    latest = read_results(db, load_config(), DEMO_END)
    assert latest.stored and latest.load_id == 2
    assert calls == []
    con = duckdb.connect(str(db), read_only=True)
    try:
        run = stored_run(con)
    finally:
        con.close()
    assert run is not None and run[:2] == (DEMO_END, 2)
    assert matches(run, DEMO_END, 2, load_config())
    assert not matches(run, DEMO_END, 1, load_config())


def test_results_open_the_database_read_only(stored: Path) -> None:
    """Reading results (stored or computed) leaves the database file as it was."""
    before = stored.read_bytes()
    read_results(stored, load_config(), DEMO_END, needs=INPUTS)
    read_results(stored, load_config(), date(2026, 9, 30), needs=INPUTS)
    assert stored.read_bytes() == before


def test_a_report_module_that_fails_to_import_fails_outcomes_run(tmp_path: Path) -> None:
    """run.py imports every report writer itself: a broken one is an error, not a skipped
    report (checked in a fresh interpreter, where the evidence writer cannot be imported)."""
    (tmp_path / "export").mkdir()
    code = ("import sys; sys.modules['pipeline.reports.evidence.write'] = None\n"
            "from pipeline.cli import main\n"
            f"main(['run', {str(tmp_path / 'export')!r}, '--out', {str(tmp_path / 'out')!r}])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode != 0
    assert "ModuleNotFoundError" in done.stderr or "ImportError" in done.stderr
    assert not (tmp_path / "out").exists()  # it failed before doing anything


# ---------------------------------------------------------------------------------------------
# Labels follow the config: response_pct 40 reaches every printed label


THRESHOLD_LABEL = re.compile(
    r"(.{0,45})([≥<] ?50 ?% (?:reduction|improvement|same-day)|at least 50%|50% or greater"
    r"|less than 50%|at most 50%|half the baseline|(?:25|49)–(?:49|50)%)(.{0,45})")
# where 50% is not the clinic's response cut-off: the published studies' definition, and the
# payer's continuation rule ([payer] continuation.min_reduction_pct, 50 by default)
NOT_THE_CLINICS = [
    re.compile(r"response \(≥50% reduction, (MADRS|mostly PHQ-9|QIDS-SR-16|MADRS/HDRS)"),
    re.compile(r"the studies' \(≥50% reduction\)"),
    re.compile(r"≥ 50% reduction( from the course baseline|: (yes|no))"),
]


def pdf_text(pdf: Path) -> str:
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    return " ".join(text.split())


def clinic_thresholds(text: str) -> list[str]:
    """Every place a text names 50% (or half) as a cut-off of the clinic's own definitions."""
    return [m.group(0) for m in THRESHOLD_LABEL.finditer(text)
            if not any(p.search(m.group(0)) for p in NOT_THE_CLINICS)]


@pytest.mark.slow
def test_response_pct_reaches_every_label_of_every_report(
        response40_reports: dict[str, Any]) -> None:
    # `outcomes report monthly|evidence|payer --config r40.toml` on the demo database, written
    # once (tests/conftest.py; test_report_evidence_benchmarks.py reads the evidence report)
    patient = response40_reports["patient"]
    for code, output in response40_reports["done"].values():
        assert code == 0, output
    out = response40_reports["out"]
    texts = {path.name: pdf_text(path) for path in out.glob("*.pdf")}
    texts |= {path.name: " ".join(json.dumps(json.loads(path.read_text(encoding="utf-8")),
                                             ensure_ascii=False).split())
              for path in out.glob("*.json")}
    assert len(texts) == 5  # monthly and evidence PDF + JSON, one payer packet
    assert {name: clinic_thresholds(text) for name, text in texts.items()} == \
        {name: [] for name in texts}
    # ... and the labels say 40% instead
    monthly, evidence = texts["monthly-2026-10.pdf"], texts["evidence-2026-10-31.pdf"]
    packet = next(text for name, text in texts.items() if name.startswith(patient))
    assert "Response (≥ 40% reduction)" in monthly and "Non-response (< 20% reduction)" in monthly
    assert "at most 60% of the baseline" in monthly
    assert "Response (≥40% reduction)" in evidence and "<40% reduction" in evidence
    assert "partial responders (20–39%)" in evidence
    assert "reduction ≥ 40%; partial response: 20–40%" in packet


# ---------------------------------------------------------------------------------------------
# A report reads only what it uses (the stored results): no score or infusion rows


def held_frames(value: object, name: str = "results") -> dict[str, pl.DataFrame]:
    """Every frame a `Results` holds (inputs, tables, frames, what its readers read), by path."""
    if isinstance(value, pl.DataFrame):
        return {name: value}
    if isinstance(value, dict):
        items = value.items()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    else:
        return {}
    found: dict[str, pl.DataFrame] = {}
    for key, item in items:
        label = getattr(key, "__name__", str(key))
        found |= held_frames(item, f"{name}.{label}")
    return found


def raw_count(db: Path, query: str) -> int:
    """A count straight from the database file (not through the code under test)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return int(con.execute(query).fetchall()[0][0])
    finally:
        con.close()


# columns of score rows and infusion rows
ROW_COLUMNS = {"assessment_id", "total_score", "score_day", "session_id", "infusion_day"}


def test_evidence_results_hold_no_score_or_infusion_rows(stored: Path) -> None:
    from pipeline.reports.evidence.write import COLUMNS, TABLES, read_evidence_results

    results = read_evidence_results(stored, DEMO_END, load_config())
    assert results.stored
    with pytest.raises(KeyError, match="without the outcome frames"):
        results.frames  # noqa: B018
    assert set(results.tables) == set(TABLES)
    held = held_frames(results)
    assert all(not ROW_COLUMNS & set(frame.columns) for frame in held.values()), held.keys()
    # every course row, without its identifiers: as many as the stored table holds
    rows = results.tables["course_outcomes"]
    assert rows.columns == list(COLUMNS["course_outcomes"])
    assert rows.height == raw_count(stored, "SELECT count(*) FROM main.course_outcomes") > 0
    spans = next(frame for path, frame in held.items() if "read_course_spans" in path)
    assert spans["courses"].sum() == raw_count(stored, "SELECT count(*) FROM outcome_courses")
    # the rows it did not read are there: the course rows are the most it holds
    assert raw_count(stored, "SELECT count(*) FROM outcome_scores") > rows.height
    assert max(frame.height for frame in held.values()) == rows.height
    # ... and read whole (the payer packets), the frames do hold score rows
    whole = held_frames(read_results(stored, load_config(), DEMO_END))
    assert any(ROW_COLUMNS & set(frame.columns) for frame in whole.values())


def test_monthly_results_hold_counts_and_the_case_mix_rows_only(stored: Path) -> None:
    from pipeline.months import parse_month
    from pipeline.reports.monthly.data import read_monthly
    from pipeline.reports.monthly.write import read_monthly_results

    results = read_monthly_results(stored, parse_month("2026-10"), load_config())
    assert results.stored and results.tables == {}
    with pytest.raises(KeyError, match="without the outcome frames"):
        results.frames  # noqa: B018
    held = held_frames(results)
    assert all(not ROW_COLUMNS & set(frame.columns) for frame in held.values()), held.keys()
    data = results.read(read_monthly)
    # the case-mix model's rows: evaluable course rows ending in the 12 months to 2026-10
    assert data.case_rows.height == raw_count(stored, """
        SELECT count(*) FROM main.course_outcomes WHERE evaluable AND status <> 'in_progress'
        AND course_outcome_date BETWEEN DATE '2025-11-01' AND DATE '2026-10-31'""") > 0
    courses = raw_count(stored, "SELECT count(*) FROM main.course_outcomes")
    patients = raw_count(stored, "SELECT count(*) FROM patients")
    # besides those rows, the case-mix inputs (a row per patient, per prior trial) and counts
    for path, frame in held.items():
        if not any(part in path for part in ("case_rows", "units", "case_mix_inputs")):
            assert frame.height < courses, path
    assert data.case_mix_inputs.patients.height == patients


def test_the_monthly_reader_reads_the_same_from_stored_and_computed_results(
        stored: Path, twin_dbs: dict[str, Path], calls: list[date]) -> None:
    """Stored tables (views over them), computed frames (registered) and outcome relations left
    in DuckDB (a report's own computation) give the same figures: the reader's SQL runs over
    any of them."""
    from pipeline.reports.monthly.data import read_monthly

    config = load_config()
    from_store = read_results(stored, config, DEMO_END, frames=False, tables=(),
                              readers=(read_monthly,))
    in_memory = read_results(twin_dbs["b"], config, DEMO_END, readers=(read_monthly,))
    in_duckdb = read_results(twin_dbs["b"], config, DEMO_END, frames=False, tables=(),
                             readers=(read_monthly,))
    assert from_store.stored and not in_memory.stored and not in_duckdb.stored
    assert calls == [DEMO_END]  # only the frames are computed in memory
    expected = held_frames(from_store.read(read_monthly))
    assert len(expected) > 20
    for computed in (in_memory, in_duckdb):
        found = held_frames(computed.read(read_monthly))
        assert found.keys() == expected.keys()
        for path, frame in expected.items():
            assert frame.equals(found[path]), path
        assert computed.read(read_monthly).activity == from_store.read(read_monthly).activity


def test_metric_tables_computed_in_duckdb_equal_the_stored_ones(stored: Path,
                                                                twin_dbs: dict[str, Path]) -> None:
    """A report's metric tables, computed without reading the outcome frames into memory, are
    the tables `outcomes metrics` stored, column for column (the evidence report's columns)."""
    from pipeline.reports.evidence.write import COLUMNS, TABLES

    config = load_config()
    a = read_results(stored, config, DEMO_END, frames=False, tables=TABLES, columns=COLUMNS)
    b = read_results(twin_dbs["b"], config, DEMO_END, frames=False, tables=TABLES,
                     columns=COLUMNS)
    assert a.stored and not b.stored
    assert a.tables.keys() == b.tables.keys() == set(TABLES)
    for name in TABLES:
        assert a.tables[name].equals(b.tables[name]), name
