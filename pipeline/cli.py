"""Command-line interface (README "Commands"). Argument parsing only: each command calls a
library function.

Exit codes: 0 done; 1 the input had errors that stopped the run; 2 usage.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import click
import duckdb

from pipeline import __version__
from pipeline.config import ConfigError, load_config
from pipeline.console import console_text
from pipeline.db import DatabaseBusy
from pipeline.errors import InputError, describe_os_error
from pipeline.outputs import OWNER_ONLY_UMASK, check_folder_path

CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="TOML file overriding the definitions (windows, cut-offs, instruments; "
         "docs/definitions.md lists every key).",
)


def echo(message: str = "", err: bool = False) -> None:
    """Print one message: every line any command prints, errors included, goes through here so
    that no terminal control sequence from a file name, header or value reaches the terminal."""
    click.echo(console_text(message), err=err)


LOAD_OPTION = click.option(
    "--load", "load", default=None, type=click.IntRange(min=1),
    help="Compute on the database as it stood right after load N (loads.load_id; default: the "
         "latest), so an earlier month's outputs can be rebuilt byte for byte.")
APPEND_OPTION = click.option(
    "--append", is_flag=True,
    help="Incremental export: add or correct rows by id, retire nothing (default: the export is "
         "a snapshot and rows it no longer holds are retired).")
ALLOW_RETIRE_OPTION = click.option(
    "--allow-retire", is_flag=True,
    help="Apply a snapshot even when it retires more than [ingest] max_retired_share "
         "(default 0.2) of a table's current rows.")



def _set_quiet(ctx: click.Context, param: click.Parameter, quiet: bool) -> None:
    from pipeline.progress import set_quiet

    set_quiet(quiet)


QUIET_OPTION = click.option(
    "--quiet", is_flag=True, expose_value=False, callback=_set_quiet,
    help="No progress display. (It appears only on a terminal, once the work has run for two "
         "seconds; the summary and errors are printed either way.)")


def _fail(message: str) -> None:
    for line in message.splitlines() or [""]:
        echo(f"error: {line}", err=True)
    sys.exit(1)


def _out_of_memory(exc: duckdb.OutOfMemoryException) -> str:
    first = str(exc).splitlines()[0] if str(exc) else "out of memory"
    return (f"DuckDB ran out of memory ({first}); raise [database] memory_limit in the config, "
            "lower [database] threads, or set [database] temp_directory to a folder on a disk "
            "with free space so DuckDB can spill to it, and run again")


def _run_guarded(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Turn expected failures (bad input, bad config, busy DB, out of memory, a full disk or an
    unwritable folder) into a one-paragraph message and exit 1."""
    try:
        return fn(*args, **kwargs)
    except (InputError, ConfigError, DatabaseBusy) as exc:
        _fail(str(exc))
    except duckdb.OutOfMemoryException as exc:
        _fail(_out_of_memory(exc))
    except OSError as exc:
        _fail(describe_os_error(exc))


class _Commands(click.Group):
    """The command group whose own messages (a bad option value is echoed back) are cleaned of
    control sequences like every other line (`echo`)."""

    def make_context(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with _clean_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        with _clean_usage_errors():
            return super().invoke(ctx)


@contextlib.contextmanager
def _clean_usage_errors() -> Iterator[None]:
    try:
        yield
    except click.ClickException as exc:
        message = exc.format_message()
        if console_text(message) == message:
            raise
        clean = (click.UsageError(console_text(message), exc.ctx)
                 if isinstance(exc, click.UsageError) else click.ClickException(console_text(message)))
        raise clean from None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="outcomes")
def main() -> None:
    """Outcomes reporting for ketamine-infusion clinics."""
    # Every file a command creates (database, CSV, JSON, PDF) holds health data: owner only.
    os.umask(OWNER_ONLY_UMASK)


PSEUDONYMIZE_OPTION = click.option(
    "--pseudonymize", "key_file", default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Replace patient, course, session and assessment ids in row-level outputs "
         "(the course-level CSV and Parquet files) with keyed HMAC-SHA-256 pseudonyms; KEYFILE "
         "holds a secret of at least 16 bytes. The database keeps the real ids.")


def _pseudonym_key(key_file: Path | None) -> bytes | None:
    from pipeline.pseudonyms import read_key

    return None if key_file is None else _run_guarded(read_key, key_file)


@main.command()
@click.argument("data_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--patients", default=400, show_default=True, type=click.IntRange(min=1),
              help="Number of synthetic patients.")
@click.option("--seed", default=7, show_default=True, type=int,
              help="Random seed; the same seed gives byte-identical files.")
@click.option("--end", "end", default="2026-10-31", show_default=True,
              type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Last day of clinic activity in the export (the export date).")
def demo(data_dir: Path, patients: int, seed: int, end) -> None:  # type: ignore[no-untyped-def]
    """Write a realistic synthetic clinic export (canonical CSVs) into DATA_DIR."""
    from pipeline.demo import write_demo

    summary = write_demo(data_dir, patients=patients, seed=seed, end=end.date())
    echo(summary)


@main.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="DuckDB database file (created if missing).")
@click.option("--format", "source_format", type=click.Choice(["canonical", "redcap", "fhir"]),
              default="canonical", show_default=True,
              help="canonical: the export files of README \"Input\" (protocols, patients, "
                   "sessions, assessments, "
                   "treatment_history); redcap: a REDCap flat CSV export + data dictionary; "
                   "fhir: FHIR R4 Bulk Data NDJSON files.")
@click.option("--mapping", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="TOML mapping: for an EHR export (its files, columns, date "
                                 "formats and codes; default mapping.toml in DATA_DIR when "
                                 "present; `outcomes mapping draft` writes a start), or for "
                                 "--format redcap/fhir. See README.")
@APPEND_OPTION
@ALLOW_RETIRE_OPTION
@QUIET_OPTION
@CONFIG_OPTION
def ingest(data_dir: Path, db_path: Path, source_format: str, mapping: Path | None,
           append: bool, allow_retire: bool, config_path: Path | None) -> None:
    """Validate the export in DATA_DIR and load it into the database.

    DATA_DIR holds protocols, patients, sessions and assessments files (.csv, .parquet or
    .xlsx; any may be absent). Each file is a snapshot of its table: rows are added,
    corrected or retired so that the table equals the file (tables without a file are left
    as they are); every earlier version is kept. Every row ends added, corrected, unchanged,
    counted as an exact duplicate, or in the `rejects` table with its file, line, column and
    reason. A file that cannot be read or lacks a required column stops the load (exit 1) and
    leaves the database unchanged.
    """
    from pipeline.ingest import ingest as run_ingest

    config = _run_guarded(load_config, config_path)
    report = _run_guarded(run_ingest, data_dir, db_path, config, today=date.today(),
                          source_format=source_format, mapping=mapping, append=append,
                          allow_retire=allow_retire)
    echo(report.render())


@main.command()
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the database and every output.")
@click.option("--month", default=None, help="Report month YYYY-MM (default: last complete month "
              "of the data).")
@PSEUDONYMIZE_OPTION
@APPEND_OPTION
@ALLOW_RETIRE_OPTION
@QUIET_OPTION
@CONFIG_OPTION
def run(data_dir: Path, out_dir: Path, month: str | None, key_file: Path | None,
        append: bool, allow_retire: bool, config_path: Path | None) -> None:
    """Run every step in order: ingest, then metrics and reports (as they exist)."""
    from pipeline.run import run_all

    config = _run_guarded(load_config, config_path)
    key = _pseudonym_key(key_file)
    _run_guarded(check_folder_path, out_dir)
    _run_guarded(run_all, data_dir, out_dir, config, month=month, echo=echo,
                 pseudonym_key=key, append=append, allow_retire=allow_retire)


@main.command()
@click.option("--db", "db_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="DuckDB database file written by `outcomes ingest`.")
@click.option("--as-of", "as_of", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Compute as of this day (YYYY-MM-DD); later sessions and scores are ignored.")
@click.option("--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder for course_outcomes.csv/.parquet, the other course-level files, "
                   "protocol_summary.csv and metrics.json.")
@PSEUDONYMIZE_OPTION
@LOAD_OPTION
@QUIET_OPTION
@CONFIG_OPTION
def metrics(db_path: Path, as_of, out_dir: Path, key_file: Path | None,  # type: ignore[no-untyped-def]
            load: int | None, config_path: Path | None) -> None:
    """Compute course outcomes and protocol rates as of a day and write them.

    Every definition (course, baseline, endpoint, response, ...) is in docs/definitions.md.

    Writes course_outcomes.csv and .parquet (and the other course-level tables, same-session
    pairs, durability and item-9 flags, each as CSV and Parquet), protocol_summary.csv and
    metrics.json (which names the course-level files) into OUT and stores the results in the
    database: a report for the same as-of day, load and config reads them
    instead of computing again.
    """
    from pipeline.metrics_files import run_metrics

    config = _run_guarded(load_config, config_path)
    _run_guarded(check_folder_path, out_dir)
    result = _run_guarded(run_metrics, db_path, as_of.date(), out_dir, config,
                          pseudonym_key=_pseudonym_key(key_file), load=load)
    courses = result["files"]["course_outcomes"]["rows"]
    groups = len(result["protocol_summary"])
    echo(f"metrics as of {as_of.date().isoformat()}: {courses} course rows, "
               f"{groups} protocol x instrument rows -> {out_dir}")


@main.group()
def mapping() -> None:
    """Load a clinic's own export: its file and column names, date formats and codes."""


@mapping.command("draft")
@click.argument("data_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@CONFIG_OPTION
def mapping_draft(data_dir: Path, config_path: Path | None) -> None:
    """Print a starting mapping.toml for the export in DATA_DIR.

    Columns are matched to canonical names loosely, date formats are guessed from the values
    (marked REVIEW), and the distinct status, service, timing and instrument values are listed
    with "" for you to fill in. Save the result as DATA_DIR/mapping.toml, then run ingest.
    """
    from pipeline.ingest.mapping_draft import draft_mapping

    config = _run_guarded(load_config, config_path)
    click.echo(_run_guarded(draft_mapping, data_dir, config), nl=False)


@main.group()
def report() -> None:
    """Write a report (PDF plus the same figures as CSV/JSON)."""


DB_OPTION = click.option("--db", "db_path", required=True,
                         type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         help="DuckDB database file written by `outcomes ingest`.")
OUT_OPTION = click.option("--out", "out_dir", required=True,
                          type=click.Path(file_okay=False, path_type=Path),
                          help="Folder the report files are written to.")
MONTH_TYPE = click.DateTime(formats=["%Y-%m"])


@report.command("monthly")
@DB_OPTION
@click.option("--month", required=True, type=MONTH_TYPE, help="Report month, YYYY-MM.")
@OUT_OPTION
@LOAD_OPTION
@QUIET_OPTION
@CONFIG_OPTION
def report_monthly(db_path: Path, month, out_dir: Path, load: int | None,  # type: ignore[no-untyped-def]
                   config_path: Path | None) -> None:
    """Monthly quality report for the clinical lead: monthly-YYYY-MM.pdf and .json."""
    from pipeline.reports.monthly.write import write_monthly_report

    config = _run_guarded(load_config, config_path)
    _run_guarded(check_folder_path, out_dir)
    written = _run_guarded(write_monthly_report, db_path, month.strftime("%Y-%m"), out_dir, config,
                           load=load)
    for path in written:
        echo(str(path))


@report.command("evidence")
@DB_OPTION
@click.option("--as-of", "as_of", required=True, type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Compare outcomes as of this day (YYYY-MM-DD).")
@OUT_OPTION
@LOAD_OPTION
@QUIET_OPTION
@CONFIG_OPTION
def report_evidence(db_path: Path, as_of, out_dir: Path, load: int | None,  # type: ignore[no-untyped-def]
                    config_path: Path | None) -> None:
    """Evidence comparison report: evidence-DATE.pdf and .json (small cells always suppressed)."""
    from pipeline.reports.evidence.write import write_evidence_report

    config = _run_guarded(load_config, config_path)
    _run_guarded(check_folder_path, out_dir)
    written = _run_guarded(write_evidence_report, db_path, as_of.date(), out_dir, config, load=load)
    for path in written:
        echo(str(path))


@report.command("payer")
@DB_OPTION
@click.option("--patient", default=None, help="Every course of this patient id.")
@click.option("--month", default=None, type=MONTH_TYPE,
              help="Every course active in this month, YYYY-MM.")
@OUT_OPTION
@click.option("--html", "write_html", is_flag=True, help="Also write the HTML each PDF was rendered from.")
@click.option("--jobs", default=None, type=click.IntRange(min=1),
              help="Worker processes (default: all cores).")
@LOAD_OPTION
@QUIET_OPTION
@CONFIG_OPTION
def report_payer(db_path: Path, patient: str | None, month, out_dir: Path, write_html: bool,  # type: ignore[no-untyped-def]
                 jobs: int | None, load: int | None, config_path: Path | None) -> None:
    """Payer documentation: one PDF/A-3 per patient course, plus index.csv of what was written."""
    if (patient is None) == (month is None):
        raise click.UsageError("give exactly one of --patient ID or --month YYYY-MM")
    from pipeline.reports.payer.write import write_payer_packets

    config = _run_guarded(load_config, config_path)
    _run_guarded(check_folder_path, out_dir)
    index = _run_guarded(write_payer_packets, db_path, out_dir, config, patient=patient,
                         month=month.strftime("%Y-%m") if month else None, html=write_html,
                         jobs=jobs, load=load)
    echo(str(index))
