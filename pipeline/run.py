"""`outcomes run`: every step in order on one export — ingest, the results, then the metrics
files and every report from those results (README "Quick start").

The outcomes are computed once (pipeline/results.py) and handed to each output. Every report
writer is imported here directly: a report module that fails to import fails the run.

Every argument is checked before anything is written: a month that is no month, or one that has
not ended by today (the day of this run's load), stops the run before the ingest.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb

from pipeline.config import Config
from pipeline.db import writer_lock
from pipeline.errors import InputError
from pipeline.ingest import ingest
from pipeline.metrics_files import NEEDS as METRICS_NEEDS
from pipeline.metrics_files import write_metrics
from pipeline.months import (
    Month,
    default_report_month,
    first_infusion_day,
    latest_data_day,
    month_of,
    parse_month,
)
from pipeline.progress import Tracker, tracking
from pipeline.reports.evidence.write import NEEDS as EVIDENCE_NEEDS
from pipeline.reports.evidence.write import READERS as EVIDENCE_READERS
from pipeline.reports.evidence.write import write_evidence
from pipeline.reports.monthly.write import NEEDS as MONTHLY_NEEDS
from pipeline.reports.monthly.write import READERS as MONTHLY_READERS
from pipeline.reports.monthly.write import write_monthly
from pipeline.reports.payer.write import NEEDS as PAYER_NEEDS
from pipeline.reports.payer.write import write_payer
from pipeline.results import read_results

DB_NAME = "clinic.duckdb"
STEPS = ("ingest", "course outcomes", "metrics", "monthly report", "evidence report",
         "payer packets")
NEEDS = (*METRICS_NEEDS, *MONTHLY_NEEDS, *EVIDENCE_NEEDS, *PAYER_NEEDS)
READERS = (*MONTHLY_READERS, *EVIDENCE_READERS)


def run_all(
    data_dir: Path,
    out_dir: Path,
    config: Config,
    month: str | None = None,
    echo: Callable[[str], None] = print,
    pseudonym_key: bytes | None = None,
    append: bool = False,
    allow_retire: bool = False,
) -> dict[str, Path]:
    """Ingest data_dir into out_dir/clinic.duckdb, then metrics and reports for `month` (default:
    the last complete month of the data, or the latest month when no infusion falls in a
    complete one), all from one computation as of its last day."""
    chosen = parse_month(month, "--month") if month else None  # before anything is written
    if chosen is not None:
        check_month_ended(chosen, date.today())
    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = out_dir / DB_NAME
    # no other load between this run's ingest and its metrics; each step adds its own line
    # to the progress display under this one (pipeline/progress.py)
    with writer_lock(db_path), tracking("outcomes run", stages=STEPS) as tracker:
        return _run_all(data_dir, db_path, out_dir, config, chosen, echo, pseudonym_key, append,
                        allow_retire, tracker)


def check_month_ended(month: Month, today: date) -> None:
    """A report month must have ended by the day of the run's own load (months.check_as_of)."""
    if month.last > today:
        raise InputError(
            f"--month {month.text} ends on {month.last.isoformat()}, after today "
            f"({today.isoformat()}), the day of this run's load: the export cannot show the rest "
            "of the month, and courses still running would count as discontinued. Choose a month "
            "that has ended, or run without --month")


def _report_month_end(chosen: Month | None, notes: list[str]) -> Callable[
        [duckdb.DuckDBPyConnection], date]:
    """The rule that finds the as-of day on the loaded database: the last day of `chosen`, or of
    the default month (its note appended to `notes`)."""

    def month_end(con: duckdb.DuckDBPyConnection) -> date:
        first = first_infusion_day(con)
        if chosen is None or first is None:  # no infusion at all: default_report_month says so
            picked = default_report_month(latest_data_day(con), first)
            if picked.note:
                notes.append(picked.note)
            return picked.month.last
        if first > chosen.last:
            raise InputError(f"--month {chosen.text}: no administered infusion on or before "
                             f"{chosen.last.isoformat()} (the first is on {first.isoformat()}); "
                             f"choose {month_of(first).text} or later, or run without --month")
        return chosen.last

    return month_end


def _run_all(data_dir: Path, db_path: Path, out_dir: Path, config: Config, chosen: Month | None,
             echo: Callable[[str], None], pseudonym_key: bytes | None, append: bool,
             allow_retire: bool, tracker: Tracker) -> dict[str, Path]:
    steps = iter(STEPS)

    def step() -> None:
        tracker.stage(next(steps))

    step()
    report = ingest(data_dir, db_path, config, append=append, allow_retire=allow_retire)
    echo(report.render())
    notes: list[str] = []
    step()
    # the outcome frames whole (metrics files, payer packets) and the reports' own readings
    results = read_results(db_path, config, _report_month_end(chosen, notes), needs=NEEDS,
                           readers=READERS)
    report_month = month_of(results.as_of)
    written: dict[str, Path] = {"database": db_path}
    step()
    write_metrics(results, db_path, out_dir / "metrics", pseudonym_key=pseudonym_key)
    written["metrics"] = out_dir / "metrics"
    step()
    written["monthly"] = write_monthly(results, report_month, out_dir / "reports")[0]
    step()
    written["evidence"] = write_evidence(results, out_dir / "reports")[0]
    step()
    written["payer"] = write_payer(results, out_dir / "payer", month=report_month)
    echo("")
    how = ", the latest month of the data: no complete month has an infusion" if notes else ""
    echo(f"Report month {report_month.text} (as of {results.as_of}{how}). Written:")
    for name, path in written.items():
        echo(f"  {name:<10} {path}")
    for note in notes:
        echo(f"Note: {note}.")
    return written
