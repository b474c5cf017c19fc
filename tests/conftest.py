"""Shared fixtures: tiny exports written as real files, loaded into real DuckDB files; the demo
export and its database, built once per session; and `cli`, the one way a test runs a command.

Session fixtures are shared by every test that asks for them: treat them as read-only (reports
open a database read-only; to write to one, copy it with `copy_db`). Under pytest-xdist the
expensive ones are built once for the whole run, not once per worker (`built_once`).
"""

from __future__ import annotations

import fcntl
import gc
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pytest
from click.testing import CliRunner, Result

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.demo import write_demo
from pipeline.ingest import LoadReport, ingest

T = TypeVar("T")

LOAD_DAY = date(2026, 11, 28)
DEMO_END = date(2026, 10, 31)  # the last day of clinic activity in the demo exports
SUPPRESS = "[definitions]\nsuppress_small_cells = true\nsmall_cell_max = 10\n"


# Modules whose every test is slow: real processes killed, locked and starved (faults).
SLOW_MODULES = {"test_faults.py"}


# The longest modules, longest first (measured with --durations), except that a module which
# builds a fixture shared through `built_once` comes well before the others that read it
# (determinism before privacy, long_text before pdf_tags, evidence_benchmarks before results,
# faults before progress), so that no worker waits on the lock while the other builds. `make
# test` runs the suite on every core (pytest-xdist, one module per worker at a time, in
# collection order): starting the long ones first keeps one of them from running alone at the end.
LONGEST_FIRST = ("test_suppression.py", "test_faults.py", "test_determinism.py",
                 "test_ingest_history.py", "test_report_evidence_benchmarks.py",
                 "test_report_monthly.py", "test_long_text.py", "test_faults_snapshots.py",
                 "test_ingest_corpus_files.py", "test_hostile_content.py", "test_render.py",
                 "test_report_monthly_casemix.py", "test_report_dates.py",
                 "test_report_evidence.py", "test_payer_folder.py",
                 "test_ingest_corpus_values.py", "test_outcomes_categories.py",
                 "test_ingest_snapshots.py", "test_report_payer.py", "test_mapping_ingest.py",
                 "test_privacy.py", "test_pdf_tags.py", "test_results.py", "test_progress.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of SLOW_MODULES `slow` (the marker is declared in pyproject.toml), and
    put the LONGEST_FIRST modules first (a stable sort: each module's tests keep their order)."""
    for item in items:
        if item.path.name in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


# A test worker's heap holds every module the suite imports (WeasyPrint, matplotlib, polars,
# statsmodels…) and the session's fixtures. Python's full collections walked all of it again and
# again and found nothing to free: ~10% of a worker's CPU (gc.callbacks timings on
# test_suppression.py + test_report_monthly.py: 8.1 s → 2.9 s of collection). What is alive once
# collection is done, and again when a module's fixtures have been torn down, is moved out of the
# collector's view with gc.freeze(), after a full pass frees the garbage. Objects a test creates
# are still collected as before.
def _freeze_the_heap() -> None:
    gc.collect()
    gc.freeze()


def pytest_collection_finish(session: pytest.Session) -> None:
    _freeze_the_heap()


@pytest.hookimpl(trylast=True)  # after pytest's own teardown, which ends the module's fixtures
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    if nextitem is not None and nextitem.path != item.path:
        _freeze_the_heap()


def cli(*args: str | Path, env: dict[str, str | None] | None = None) -> Result:
    """`outcomes ARGS` in this process (click's CliRunner): exit_code, stdout, stderr, output.

    An exception the command does not turn into a message propagates and fails the test with
    its traceback, so "no traceback" is checked by every call. `env` sets (None: unsets)
    environment variables for the call.
    """
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def outcomes_process(*args: str | Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """`outcomes ARGS` as a separate process: only for tests whose subject is the process
    (exit status and output of a real run, kills, locks)."""
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def copy_db(db: Path, target: Path) -> Path:
    """A writable copy of a (session) database. A write-ahead log that a killed process left
    beside `target` is removed: DuckDB would replay it onto the copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(db, target)
    target.with_name(target.name + ".wal").unlink(missing_ok=True)
    return target


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str,
               build: Callable[[Path], T]) -> T:
    """`build(folder)` for a session fixture, run once per test run.

    Without xdist this is `build` into a fresh temporary folder. Under xdist (`make test`) every
    worker would build its own copy of a session fixture; instead the first worker to ask builds
    it into a folder of the run's temporary directory that every worker sees, holding a file lock
    meanwhile, and records what `build` returned; a worker asking later (or while it is being
    built: it waits on the lock) gets the same files. The files are as `build` wrote them, so a
    test cannot tell which worker built them. A build that failed is retried by the next asker.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return build(tmp_path_factory.mktemp(name))
    # A worker's base folder is the run's base folder / the worker's id (pytest-xdist).
    root = tmp_path_factory.getbasetemp().parent / "built-once"
    root.mkdir(exist_ok=True)
    folder, built = root / name, root / f"{name}.pickle"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not built.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            value = build(folder)
            built.write_bytes(pickle.dumps(value))
            return value
    return pickle.loads(built.read_bytes())


@pytest.fixture(scope="session")
def demo_written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """`outcomes demo` (400 patients, seed 7, activity up to 2026-10-31), written once: the
    folder and the summary it printed."""
    def build(folder: Path) -> tuple[Path, str]:
        return folder / "export", write_demo(folder / "export", patients=400, seed=7,
                                             end=DEMO_END)

    return built_once(tmp_path_factory, "demo", build)


@pytest.fixture(scope="session")
def demo_export(demo_written: tuple[Path, str]) -> Path:
    """The folder of the demo export (read it, do not change it)."""
    return demo_written[0]


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory, demo_export: Path) -> Path:
    """The demo export loaded once (day of load 2026-11-28). Read-only: copy it to write."""
    def build(folder: Path) -> Path:
        ingest(demo_export, folder / "clinic.duckdb", load_config(), today=LOAD_DAY)
        return folder / "clinic.duckdb"

    return built_once(tmp_path_factory, "demo-db", build)


@pytest.fixture(scope="session")
def demo_db_again(tmp_path_factory: pytest.TempPathFactory, demo_export: Path) -> Path:
    """The demo export loaded a second time, into a database of its own (another load, another
    clock): a report from it must be the same bytes as from `demo_db`. Read-only."""
    def build(folder: Path) -> Path:
        ingest(demo_export, folder / "clinic.duckdb", load_config(), today=LOAD_DAY)
        return folder / "clinic.duckdb"

    return built_once(tmp_path_factory, "demo-db-again", build)


@pytest.fixture(scope="session")
def twin_dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One demo export (120 patients, seed 5) loaded twice, into two separate databases (two
    loads, two clocks): the same export must give the same report bytes from either."""
    def build(base: Path) -> dict[str, Path]:
        write_demo(base / "export", patients=120, seed=5, end=DEMO_END)
        dbs = {}
        for name in ("a", "b"):
            dbs[name] = base / f"{name}.duckdb"
            ingest(base / "export", dbs[name], load_config(), today=LOAD_DAY)
        return dbs

    return built_once(tmp_path_factory, "twins", build)


@pytest.fixture(scope="session")
def suppress_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config file turning small-cell suppression on (counts 1-10)."""
    path = tmp_path_factory.mktemp("config") / "suppress.toml"
    path.write_text(SUPPRESS, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def suppressed_reports(tmp_path_factory: pytest.TempPathFactory, demo_db: Path,
                       suppress_config: Path) -> dict[str, list[Path]]:
    """The demo's monthly report for 2026-10 and evidence report as of 2026-10-31 with
    suppression on ([pdf, json] each), rendered once for the modules that read them (with
    SOURCE_DATE_EPOCH unset: the PDFs are dated by the data, test_report_monthly.py)."""
    from pipeline.reports.evidence.write import write_evidence_report
    from pipeline.reports.monthly.write import write_monthly_report

    def build(out: Path) -> dict[str, list[Path]]:
        config = load_config(suppress_config)
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
            return {"monthly": write_monthly_report(demo_db, "2026-10", out, config),
                    "evidence": write_evidence_report(demo_db, DEMO_END, out, config)}

    return built_once(tmp_path_factory, "suppressed", build)


@pytest.fixture(scope="session")
def evidence_report(tmp_path_factory: pytest.TempPathFactory, demo_db: Path) -> list[Path]:
    """The demo's evidence report as of 2026-10-31 with the default config ([pdf, json]),
    rendered once for the modules that read it (with SOURCE_DATE_EPOCH unset: the PDF is dated
    by the data, test_report_evidence.py)."""
    from pipeline.reports.evidence.write import write_evidence_report

    def build(out: Path) -> list[Path]:
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
            return write_evidence_report(demo_db, DEMO_END, out, load_config())

    return built_once(tmp_path_factory, "evidence", build)


RESPONSE_40 = "[definitions]\nresponse_pct = 40\npartial_response_pct = 20\n"


@pytest.fixture(scope="session")
def response40_reports(tmp_path_factory: pytest.TempPathFactory, demo_db: Path) -> dict[str, Any]:
    """`outcomes report` monthly (2026-10), evidence (as of 2026-10-31) and payer (one patient)
    on the demo with response_pct = 40 (partial 20) in a config file, once for the modules that
    read them (test_results.py, test_report_evidence_benchmarks.py): the folder they were
    written to, the patient, and each command's (exit code, output) for the tests to check."""
    def build(folder: Path) -> dict[str, Any]:
        config = folder / "r40.toml"
        config.write_text(RESPONSE_40, encoding="utf-8")
        # a patient with a PHQ-9 score after infusion 1 of a course
        patient = query(demo_db, "SELECT min(patient_id) FROM assessments")[0][0]
        done = {}
        for args in (("monthly", "--month", "2026-10"), ("evidence", "--as-of", "2026-10-31"),
                     ("payer", "--patient", patient, "--jobs", "1")):
            result = cli("report", args[0], "--db", demo_db, *args[1:], "--out", folder / "out",
                         "--config", config)
            done[args[0]] = (result.exit_code, result.output)
        return {"out": folder / "out", "patient": patient, "done": done}

    return built_once(tmp_path_factory, "response40", build)


@pytest.fixture(scope="session")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """`outcomes run` of the whole pipeline twice on one demo export (80 patients, seed 3),
    each into its own folder and database, for report month 2026-09 with a config for external
    use (small-cell suppression on) and SOURCE_DATE_EPOCH unset, counting the calls of the
    outcome computation: test_determinism.py compares the runs, test_privacy.py reads the first.

    Returns the export, the config file, the run folders ("first", "second"), each run's
    (exit code, stdout + stderr) and the as-of days the outcomes were computed for."""
    import pipeline.results
    from pipeline.outcomes import compute_outcomes

    def build(root: Path) -> dict[str, Any]:
        export, config = root / "export", root / "external.toml"
        demo = cli("demo", export, "--patients", "80", "--seed", "3")
        assert demo.exit_code == 0, demo.output
        config.write_text("[definitions]\nsuppress_small_cells = true\n", encoding="utf-8")
        computed: list[date] = []

        def counted(con, as_of, config):  # type: ignore[no-untyped-def]
            computed.append(as_of)
            return compute_outcomes(con, as_of, config)

        done = {}
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.setattr(pipeline.results, "compute_outcomes", counted)
            for name in ("first", "second"):
                result = cli("run", export, "--out", root / name, "--month", "2026-09",
                             "--config", config, env={"SOURCE_DATE_EPOCH": None})
                done[name] = (result.exit_code, result.stdout + result.stderr)
        return {"export": export, "config": config, "first": root / "first",
                "second": root / "second", "done": done, "computed": computed}

    return built_once(tmp_path_factory, "two-runs", build)


@pytest.fixture(scope="session")
def small_demo_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The 30-patient demo (seed 7) rendered once: monthly report for 2026-10, the evidence
    report and the payer packets of one patient (tests/test_long_text.py `render`, read by
    test_long_text.py and test_pdf_tags.py)."""
    from tests.test_long_text import render

    return built_once(tmp_path_factory, "small-demo-reports",
                      lambda root: render(root, huge=False))


PROTOCOLS = """\
protocol_id,name,planned_infusions,planned_days,dose_mg_per_kg,infusion_minutes,phase
IND6,6 infusions over 12 days,6,12,0.5,40,induction
"""
PATIENTS = """\
patient_id,birth_date,sex,diagnosis_code,payer,member_id,site
P1,1980-03-04,F,F33.2,Acme Health,M100,North
P2,1975-06-30,M,F32.2,Self-pay,,North
"""


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(textwrap.dedent(text).encode(encoding))
    return path


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A folder holding valid protocols and patients files; tests add the rest."""
    folder = tmp_path / "export"
    write(folder, "protocols.csv", PROTOCOLS)
    write(folder, "patients.csv", PATIENTS)
    return folder


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "clinic.duckdb"


@pytest.fixture
def empty_export(tmp_path: Path) -> Path:
    """An empty export folder: the case writes the files it is about."""
    (tmp_path / "export").mkdir()
    return tmp_path / "export"


@pytest.fixture(scope="session")
def references_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The database after one load of PROTOCOLS and PATIENTS (what the rows of a case about one
    file refer to), made once per run: copy it (`copy_db`) to load a case's file as load 2."""
    def build(folder: Path) -> Path:
        write(folder / "export", "protocols.csv", PROTOCOLS)
        write(folder / "export", "patients.csv", PATIENTS)
        load(folder / "export", folder / "clinic.duckdb")
        return folder / "clinic.duckdb"

    return built_once(tmp_path_factory, "references-db", build)


def load(folder: Path, db_path: Path, today: date = LOAD_DAY, **options: bool) -> LoadReport:
    """ingest() with the default config; options: append, allow_retire."""
    return ingest(folder, db_path, load_config(), today=today, **options)


def query(db_path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def query_each(db_path: Path, queries: dict[str, str]) -> dict[str, list[tuple]]:
    """query() of each named SQL, through one connection (opening the file costs more than a
    small query)."""
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return {name: con.execute(sql).fetchall() for name, sql in queries.items()}
    finally:
        con.close()


def rejects(db_path: Path, file: str | None = None) -> list[tuple]:
    """(file, line, column, reason) of every reject, in file/line order."""
    rows = query(
        db_path, 'SELECT file, line, "column", reason FROM rejects ORDER BY file, line, "column"'
    )
    return [r for r in rows if file is None or r[0] == file]


def result(report: LoadReport, file: str):  # type: ignore[no-untyped-def]
    return next(f for f in report.files if f.file == file)
