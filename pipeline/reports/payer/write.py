"""Payer documentation packets (`outcomes report payer`): one PDF/A-3 per patient course.

Flow: one `Results` (pipeline/results.py) -> the records of each course and the criteria
verdicts (records, packet, criteria) -> packets as plain dicts -> parallel render (batch) ->
index.csv of the folder, read back from disk (folder). For `outcomes report payer` the worker
processes start first, so they get ready while the parent reads the results and builds the
packets; `outcomes run` hands results already read, so it starts no more workers than there are
packets (none for one packet: it renders in this process). A packet holds one patient's
data only; its outcome values are the outcomes engine's course rows, unchanged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.months import Month, parse_month
from pipeline.reports.payer.batch import render_all, render_pool
from pipeline.reports.payer.criteria import PayerRules, payer_rules
from pipeline.reports.payer.folder import publish, staging
from pipeline.reports.payer.records import load_packets, packets_as_of
from pipeline.results import Results, read_results

# the rows of the canonical tables a packet prints (pipeline/results.py INPUTS)
NEEDS = ("patients", "payer_sessions", "treatment_history", "protocols")


def write_payer(results: Results, out_dir: Path, rules: PayerRules | None = None,
                patient: str | None = None, month: Month | None = None, html: bool = False,
                jobs: int | None = None) -> Path:
    """Render the packets of `results` (as of the month's last day, or of the latest data day
    for a patient) aside, move them into `out_dir` and write index.csv from the folder
    (pipeline/reports/payer/folder.py); returns its path."""
    config = results.config
    packets = load_packets(results, rules or payer_rules(config), patient=patient, month=month)
    # the results are read already: no more workers than packets (one or none: this process)
    with render_pool(jobs, config.clinic.page_size, tasks=len(packets)) as pool:
        return _write(packets, config, out_dir, html, pool)


def _write(packets: list[dict[str, Any]], config: Config, out_dir: Path, html: bool,
           pool: Any) -> Path:
    out_dir = Path(out_dir)
    with staging(out_dir) as staged:
        written = render_all(packets, staged, html, pool, config.clinic.page_size)
        rows = [{"file": result["file"], "patient_id": course["patient_id"],
                 "course_id": course["course_id"], "protocol_id": course["protocol_id"],
                 "course_start": course["first_infusion_day"].isoformat(),
                 "course_end": course["last_infusion_day"].isoformat(),
                 "status": course["status"]}
                for course, result in zip((p["course"] for p in packets), written, strict=True)]
        return publish(staged, out_dir, rows)


def write_payer_packets(
    db_path: str | Path,
    out_dir: Path,
    config: Config,
    patient: str | None = None,
    month: str | None = None,
    html: bool = False,
    jobs: int | None = None,
    load: int | None = None,
) -> Path:
    """`outcomes report payer`: one packet per course (every course of `patient` as of the
    latest data day, or every course active in `month` as of its last day); returns the path
    of index.csv.

    Active in a month: an administered infusion or a course score dated in it. A month without
    active courses writes an index with no rows; an unknown patient, or one without a course,
    is an InputError.
    """
    rules = payer_rules(config)  # config errors before any work
    report_month = parse_month(month) if month is not None else None
    as_of = packets_as_of(patient, report_month)
    # the workers start now and get ready while the results are read and the packets built
    with render_pool(jobs, config.clinic.page_size) as pool:
        results = read_results(db_path, config, as_of, load=load, needs=NEEDS)
        packets = load_packets(results, rules, patient=patient, month=report_month)
        return _write(packets, config, out_dir, html, pool)
