"""Exports over time on a realistic export: a corrected second snapshot, and `--load N`.

The oracle for "the database follows the clinic's records" is a fresh database that loaded the
second export alone: metrics after export 1 then export 2 must equal it row for row. The oracle
for "last month's report stays reproducible" is the output written right after load 1.
"""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipeline.config import load_config
from pipeline.demo import write_demo
from pipeline.demo.revisions import revise_export
from pipeline.errors import InputError
from pipeline.ingest import ingest
from pipeline.metrics_files import run_metrics
from tests.conftest import copy_db

END = date(2026, 10, 31)
LOAD_DAY = date(2026, 11, 28)
AS_OF = date(2026, 9, 30)
BP = ("bp_systolic_max", "bp_diastolic_max")


def without(folder: Path, file: str, columns: tuple[str, ...]) -> None:
    frame = pl.read_csv(folder / file, infer_schema_length=0)
    frame.drop([c for c in columns if c in frame.columns]).write_csv(folder / file)


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """Export 1 (no blood pressure columns) and its corrected month-later snapshot, each also
    without assessment_id."""
    root = tmp_path_factory.mktemp("history")
    demo = root / "demo"
    # 50 patients with 3% of rows revised touch about as many rows as 150 with the default 1%,
    # enough to move the figures of every output compared below (the monthly and evidence
    # JSON of load 1 and load 2 differ in some 450 and 130 lines); a report costs about the same to
    # render at either size, its data do not
    write_demo(demo, patients=50, seed=11, end=END)
    second = root / "second"
    touched = revise_export(demo, second, seed=5, share=0.03)
    assert all(n > 0 for n in touched.values()), touched
    first = root / "first"
    shutil.copytree(demo, first)
    without(first, "sessions.csv", BP)
    folders = {"first": first, "second": second}
    for name in ("first", "second"):
        bare = root / f"{name}-no-id"
        shutil.copytree(folders[name], bare)
        without(bare, "assessments.csv", ("assessment_id",))
        folders[f"{name}-no-id"] = bare
    return folders


@pytest.fixture(scope="module")
def first_load(exports, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """A database after load 1 of export 1 (on LOAD_DAY), made once: a test copies it."""
    db = tmp_path_factory.mktemp("first-load") / "clinic.duckdb"
    ingest(exports["first"], db, load_config(), today=LOAD_DAY)
    return db


def metrics_files(db: Path, out: Path, load: int | None = None) -> dict[str, bytes]:
    run_metrics(db, AS_OF, out, load_config(), load=load)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def comparable(files: dict[str, bytes]) -> dict[str, object]:
    """The outputs without provenance (which names the loads, and so differs by design)."""
    body = json.loads(files["metrics.json"])
    body.pop("provenance")
    return {**files, "metrics.json": body}


@pytest.mark.parametrize("variant", ["", "-no-id"], ids=["with assessment_id", "without"])
def test_a_corrected_snapshot_gives_the_metrics_of_a_fresh_load(exports, first_load, tmp_path,
                                                               variant):
    config = load_config()
    db = tmp_path / "two-loads.duckdb"
    if variant:
        ingest(exports[f"first{variant}"], db, config, today=LOAD_DAY)
    else:
        copy_db(first_load, db)  # export 1 loaded on LOAD_DAY
    before = metrics_files(db, tmp_path / "after-1")
    report = ingest(exports[f"second{variant}"], db, config, today=LOAD_DAY)
    fresh = tmp_path / "fresh.duckdb"
    ingest(exports[f"second{variant}"], fresh, config, today=LOAD_DAY)
    got = comparable(metrics_files(db, tmp_path / "after-2"))
    want = comparable(metrics_files(fresh, tmp_path / "fresh-out"))
    assert got == want
    assert comparable(before) != want  # the corrections do move the figures
    sessions = next(f for f in report.files if f.file == "sessions.csv")
    assert sessions.retired > 0 and sessions.corrected > 0  # bp added, doses corrected
    # every current row is the second export's; the database holds every version
    con = duckdb.connect(str(db), read_only=True)
    try:
        for table in ("sessions", "assessments"):
            current, versions = con.execute(
                f"SELECT (SELECT count(*) FROM {table}), (SELECT count(*) FROM history.{table})"
            ).fetchall()[0]
            assert versions > current
    finally:
        con.close()


def test_load_1_rebuilds_the_outputs_made_right_after_load_1(exports, first_load, tmp_path):
    from pipeline.reports.evidence.write import write_evidence_report
    from pipeline.reports.monthly.write import write_monthly_report
    from pipeline.reports.payer.write import write_payer_packets

    config = load_config()
    db = tmp_path / "clinic.duckdb"

    def everything(out: Path, load: int | None, reports: bool = True) -> dict[str, bytes]:
        run_metrics(db, AS_OF, out / "metrics", config, load=load)
        if reports:
            write_monthly_report(db, "2026-09", out / "reports", config, load=load)
            write_evidence_report(db, AS_OF, out / "reports", config, load=load)
            write_payer_packets(db, out / "payer", config, patient=patient, jobs=1, load=load)
        return {str(p.relative_to(out)): p.read_bytes()
                for p in sorted(out.rglob("*")) if p.is_file()}

    copy_db(first_load, db)  # export 1 loaded on LOAD_DAY
    # the payer packets of a patient whose sessions the second export corrects
    second = pl.read_csv(exports["second"] / "sessions.csv", infer_schema_length=0)
    first = pl.read_csv(exports["first"] / "sessions.csv", infer_schema_length=0)
    changed = first.join(second.drop(BP), on=first.columns, how="anti")
    patient = changed.filter(pl.col("status") == "completed")["patient_id"].sort()[0]
    right_after = everything(tmp_path / "right-after-1", None)
    ingest(exports["second"], db, config, today=LOAD_DAY)
    latest = everything(tmp_path / "latest", None, reports=False)  # only its metrics are compared
    rebuilt = everything(tmp_path / "rebuilt-1", 1)
    assert rebuilt.keys() == right_after.keys()
    for name in right_after:
        assert rebuilt[name] == right_after[name], name
    assert latest["metrics/course_outcomes.csv"] != right_after["metrics/course_outcomes.csv"]
    # `--load 2` is the latest load: the same as no --load
    assert metrics_files(db, tmp_path / "load-2", load=2) == {
        name.removeprefix("metrics/"): data for name, data in latest.items()
        if name.startswith("metrics/")}


def test_a_load_that_does_not_exist_is_a_clear_error(first_load, tmp_path):
    db = copy_db(first_load, tmp_path / "clinic.duckdb")  # export 1 loaded on LOAD_DAY
    with pytest.raises(InputError, match=r"--load 3: .* has loads 1 to 1; choose one of them"):
        run_metrics(db, AS_OF, tmp_path / "out", load_config(), load=3)


def as_written_before_history(db: Path) -> None:
    """Turn a database into the shape the version before load history wrote: no history
    schema, no `changes`, `loads` without the snapshot columns (checked once against a
    database really written by that version; README "Exports over time", migration)."""
    con = duckdb.connect(str(db))
    try:
        con.execute("DROP SCHEMA history CASCADE")
        con.execute("DROP TABLE changes")
        for column in ("mode", "added", "corrected", "unchanged", "retired"):
            con.execute(f"ALTER TABLE loads DROP COLUMN {column}")
    finally:
        con.close()


def test_a_database_from_before_load_history_gets_it_on_the_next_load(exports, first_load,
                                                                    tmp_path):
    config = load_config()
    db = copy_db(first_load, tmp_path / "clinic.duckdb")  # export 1 loaded on LOAD_DAY
    as_written_before_history(db)
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute("SELECT (SELECT count(*) FROM sessions), (SELECT count(*) FROM "
                       "assessments), (SELECT count(*) FROM rejects)").fetchall()[0]
    con.close()
    before = metrics_files(db, tmp_path / "before")
    report = ingest(exports["second"], db, config, today=LOAD_DAY)
    assert report.load_id == 2
    con = duckdb.connect(str(db), read_only=True)
    try:
        loads = con.execute("SELECT DISTINCT load_id, mode FROM loads ORDER BY 1").fetchall()
        kept = con.execute(
            "SELECT (SELECT count(*) FROM history.sessions WHERE load_id = 1), "
            "(SELECT count(*) FROM history.assessments WHERE load_id = 1), "
            "(SELECT count(*) FROM rejects WHERE load_id = 1)").fetchall()[0]
    finally:
        con.close()
    assert loads == [(1, "legacy"), (2, "snapshot")]
    assert kept == rows  # nothing loaded before the upgrade is lost
    rebuilt = metrics_files(db, tmp_path / "rebuilt", load=1)
    assert comparable(rebuilt) == comparable(before)


def test_a_read_only_report_on_an_old_database_says_how_to_add_history(exports, first_load,
                                                                      tmp_path):
    from pipeline.reports.evidence.write import evidence_context

    config = load_config()
    db = copy_db(first_load, tmp_path / "clinic.duckdb")  # export 1 loaded on LOAD_DAY
    ingest(exports["second"], db, config, today=LOAD_DAY)
    as_written_before_history(db)
    with pytest.raises(InputError, match="written before load history existed; run `outcomes "
                                         "ingest` \\(or `outcomes metrics`\\) on it once"):
        evidence_context(db, AS_OF, config, load=1)
