"""Payer documentation packets (SPEC §3 `outcomes report payer`): one PDF/A-3 per patient course.

Flow: one set-based fetch and one `compute_outcomes` in the parent (payer_context) -> criteria
verdicts (payer_criteria) -> packets as plain dicts -> parallel render (payer_batch) ->
index.csv of what was written. A packet holds one patient's data only; its outcome values are
the outcomes engine's course rows, unchanged.
"""

from __future__ import annotations

import csv
from pathlib import Path

from pipeline.config import Config
from pipeline.db import connect
from pipeline.outputs import atomic_path
from pipeline.reports.payer.batch import render_all
from pipeline.reports.payer.context import load_packets
from pipeline.reports.payer.criteria import payer_rules

INDEX_COLUMNS = ["file", "patient_id", "course_id", "protocol_id", "course_start", "course_end",
                 "status", "pages", "sha256"]


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
    """Write one packet per course (every course of `patient` as of the latest data day, or
    every course active in `month` as of its last day) and return the path of index.csv.

    Active in a month: an administered infusion or a course score dated in it. A month without
    active courses writes an index with no rows; an unknown patient, or one without a course,
    is an InputError.
    """
    rules = payer_rules(config)  # config errors before any work
    con = connect(db_path, config, read_only=True, load=load)
    try:
        _, packets = load_packets(con, config, rules, patient=patient, month=month)
    finally:
        con.close()
    out_dir = Path(out_dir)
    results = render_all(packets, out_dir, html=html, jobs=jobs, page_size=config.clinic.page_size)
    index = out_dir / "index.csv"
    with atomic_path(index) as partial, open(partial, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(INDEX_COLUMNS)
        for packet, result in zip(packets, results, strict=True):
            course = packet["course"]
            writer.writerow([
                result["file"], course["patient_id"], course["course_id"], course["protocol_id"],
                course["first_infusion_day"].isoformat(), course["last_infusion_day"].isoformat(),
                course["status"], result["pages"], result["sha256"],
            ])
    return index
