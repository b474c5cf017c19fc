"""`outcomes run`: every step that exists, in order, on one export (SPEC §3)."""

from __future__ import annotations

import calendar
import importlib
from collections.abc import Callable
from datetime import date
from functools import partial
from pathlib import Path

from pipeline.config import Config
from pipeline.db import connect
from pipeline.errors import InputError
from pipeline.ingest import ingest

DB_NAME = "clinic.duckdb"


def month_end(month: str) -> date:
    """Last day of YYYY-MM."""
    try:
        year, mon = (int(p) for p in month.split("-"))
        return date(year, mon, calendar.monthrange(year, mon)[1])
    except (ValueError, TypeError) as exc:
        raise InputError(f"--month {month!r}: use the form YYYY-MM, e.g. 2026-03") from exc


def last_complete_month(db_path: Path, config: Config) -> str:
    """The last month whose every day lies within the data (latest session or score day)."""
    con = connect(db_path, config, read_only=True)
    try:
        latest = con.execute(
            "SELECT max(d) FROM (SELECT max(started_at)::DATE AS d FROM sessions "
            "UNION ALL SELECT max(administered_at)::DATE FROM assessments)"
        ).fetchall()[0][0]
    finally:
        con.close()
    if latest is None:
        raise InputError("the database holds no sessions or scores yet; nothing to report")
    if latest == month_end(f"{latest.year}-{latest.month:02d}"):
        return f"{latest.year}-{latest.month:02d}"
    year, mon = (latest.year, latest.month - 1) if latest.month > 1 else (latest.year - 1, 12)
    return f"{year}-{mon:02d}"


# (name, module, function, call): the report steps in order. A step whose module is not in
# this build is skipped, so `outcomes run` runs "every step that exists".
REPORT_STEPS: list[tuple[str, str, str, Callable[..., Path]]] = [
    ("monthly", "pipeline.reports.monthly.context", "write_monthly_report",
     lambda fn, db, month, as_of, out, config: fn(db, month, out / "reports", config)[0]),
    ("evidence", "pipeline.reports.evidence.context", "write_evidence_report",
     lambda fn, db, month, as_of, out, config: fn(db, as_of, out / "reports", config)[0]),
    ("payer", "pipeline.reports.payer.write", "write_payer_packets",
     lambda fn, db, month, as_of, out, config: fn(db, out / "payer", config, month=month)),
]


def _report_steps() -> list[tuple[str, Callable[..., Path]]]:
    steps: list[tuple[str, Callable[..., Path]]] = []
    for name, module, function, call in REPORT_STEPS:
        try:
            fn = getattr(importlib.import_module(module), function)
        except ImportError:
            continue
        steps.append((name, partial(call, fn)))
    return steps


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
    """Ingest data_dir into out_dir/clinic.duckdb, then metrics and reports for `month`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    db_path = out_dir / DB_NAME
    report = ingest(data_dir, db_path, config, append=append, allow_retire=allow_retire)
    echo(report.render())
    written: dict[str, Path] = {"database": db_path}
    month = month or last_complete_month(db_path, config)
    as_of = month_end(month)
    from pipeline.metrics import run_metrics

    metrics_dir = out_dir / "metrics"
    run_metrics(db_path, as_of, metrics_dir, config, pseudonym_key=pseudonym_key)
    written["metrics"] = metrics_dir
    for name, step in _report_steps():
        written[name] = step(db_path, month, as_of, out_dir, config)
    echo("")
    echo(f"Report month {month} (as of {as_of}). Written:")
    for name, path in written.items():
        echo(f"  {name:<10} {path}")
    return written
