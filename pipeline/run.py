"""`outcomes run`: every step in order on one export — ingest, the results, then the metrics
files and every report from those results (README "Quick start").

The outcomes are computed once (pipeline/results.py) and handed to each output. Every report
writer is imported here directly: a report module that fails to import fails the run.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb

from pipeline.config import Config
from pipeline.db import writer_lock
from pipeline.ingest import ingest
from pipeline.metrics_files import NEEDS as METRICS_NEEDS
from pipeline.metrics_files import write_metrics
from pipeline.months import last_complete_month, latest_data_day, month_of, parse_month
from pipeline.progress import Tracker, tracking
from pipeline.reports.evidence.write import NEEDS as EVIDENCE_NEEDS
from pipeline.reports.evidence.write import write_evidence
from pipeline.reports.monthly.write import NEEDS as MONTHLY_NEEDS
from pipeline.reports.monthly.write import write_monthly
from pipeline.reports.payer.write import NEEDS as PAYER_NEEDS
from pipeline.reports.payer.write import write_payer
from pipeline.results import read_results

DB_NAME = "clinic.duckdb"
STEPS = ("ingest", "course outcomes", "metrics", "monthly report", "evidence report",
         "payer packets")
NEEDS = (*METRICS_NEEDS, *MONTHLY_NEEDS, *EVIDENCE_NEEDS, *PAYER_NEEDS)


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
    the last complete month of the data), all from one computation as of its last day."""
    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = out_dir / DB_NAME
    # no other load between this run's ingest and its metrics; each step adds its own line
    # to the progress display under this one (pipeline/progress.py)
    with writer_lock(db_path), tracking("outcomes run", stages=STEPS) as tracker:
        return _run_all(data_dir, db_path, out_dir, config, month, echo, pseudonym_key, append,
                        allow_retire, tracker)


def _run_all(data_dir: Path, db_path: Path, out_dir: Path, config: Config, month: str | None,
             echo: Callable[[str], None], pseudonym_key: bytes | None, append: bool,
             allow_retire: bool, tracker: Tracker) -> dict[str, Path]:
    steps = iter(STEPS)

    def step() -> None:
        tracker.stage(next(steps))

    step()
    report = ingest(data_dir, db_path, config, append=append, allow_retire=allow_retire)
    echo(report.render())

    def month_end(con: duckdb.DuckDBPyConnection) -> date:
        chosen = parse_month(month, "--month") if month else last_complete_month(
            latest_data_day(con))
        return chosen.last

    step()
    results = read_results(db_path, config, month_end, needs=NEEDS)
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
    echo(f"Report month {report_month.text} (as of {results.as_of}). Written:")
    for name, path in written.items():
        echo(f"  {name:<10} {path}")
    return written
