"""Writing the evidence comparison report: evidence-YYYY-MM-DD.pdf and .json.

`write_evidence` renders a `Results` (what `outcomes run` hands it); `write_evidence_report` is
`outcomes report evidence`: it reads the results first.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import InputError
from pipeline.formatting import finite
from pipeline.progress import Tracker, tracking
from pipeline.reports import files
from pipeline.reports.evidence.cells import read_course_spans
from pipeline.reports.evidence.charts import forest_plot, funnel_plot
from pipeline.reports.evidence.context import build_context
from pipeline.reports.evidence.families import evidence_settings
from pipeline.reports.evidence.rates import evidence_labels
from pipeline.reports.evidence.view import build_view
from pipeline.reports.files import pdf_document, report_timestamp, w3c, write_pdf_and_json
from pipeline.results import Results, read_results

TEMPLATE = "evidence.html.j2"
NEEDS = ("protocols",)  # the rows of the canonical tables the report prints
# the metric tables it reads (of the course rows, the columns its counts use: no identifier),
# and its own reading of the courses; no outcome frame whole
TABLES = ("course_outcomes", "protocol_summary", "same_session_effect", "durability_courses",
          "durability_summary")
COLUMNS = {"course_outcomes": (
    "protocol_id", "instrument", "status", "evaluable", "category", "remission",
    "reliable_improvement", "reliable_deterioration", "baseline_score", "caseness_at_baseline",
    "recovery", "reliable_recovery", "infusions_to_response", "last_scored_infusion",
    "response_timing")}
READERS = (read_course_spans,)
POOL = "pooling the studies and comparing"
# the stages shown on a terminal (pipeline/progress.py)
STAGES = (files.READ, POOL, files.CHARTS, files.RENDER)


def read_evidence_results(db_path: str | Path, as_of: date, config: Config,
                          load: int | None = None) -> Results:
    """The results the report is built from; InputError when no infusion was given by as-of."""
    results = read_results(db_path, config, as_of, load=load, needs=NEEDS, frames=False,
                           tables=TABLES, columns=COLUMNS, readers=READERS)
    if results.read(read_course_spans).height == 0:
        raise InputError(f"{db_path} has no administered infusion on or before "
                         f"{as_of.isoformat()}; choose a later --as-of")
    return results


def evidence_context(db_path: str | Path, as_of: date, config: Config,
                     load: int | None = None) -> dict[str, Any]:
    """The report's context (what the JSON holds), without rendering the PDF."""
    settings = evidence_settings(config)
    results = read_evidence_results(db_path, as_of, config, load=load)
    return finite(build_context(results, settings))


def write_evidence(results: Results, out_dir: Path) -> list[Path]:
    """evidence-YYYY-MM-DD.pdf and .json in out_dir from `results`; returns [pdf, json]."""
    with tracking("evidence report", stages=STAGES) as tracker:
        return _write(results, out_dir, tracker)


def _write(results: Results, out_dir: Path, tracker: Tracker) -> list[Path]:
    config, as_of = results.config, results.as_of
    tracker.stage(POOL)
    context = finite(build_context(results, evidence_settings(config)))
    tracker.stage(files.CHARTS)
    printed = evidence_labels(config)
    why_not = context["not_comparable"]
    axis = ("Published response rate (score at least halved) with 95% interval" if why_not else
            f"Response rate (≥{printed.response_pct}% reduction) with 95% interval")
    charts = {}
    for section in context["protocols"]:
        if section["families"]:
            charts[section["protocol_id"]] = {
                "forest": forest_plot(section, axis, why_not),
                "funnel": funnel_plot(section, why_not),
            }
    created = report_timestamp(as_of)
    doc = pdf_document(
        title=f"Evidence comparison as of {as_of.isoformat()}",
        subject="Clinic outcomes per protocol compared with published IV-ketamine studies and "
                "with common patient-facing claims",
        keywords="ketamine, outcomes, evidence, funnel plot, PHQ-9",
        created=w3c(created),
        clinic_name=config.clinic.name,
        header_right=f"Evidence comparison · as of {as_of.isoformat()}",
        footer=f"Aggregate figures only; counts of {printed.small_range()} are printed as "
               f"{printed.marker}. No patient identifiers.",
    )
    return write_pdf_and_json(out_dir, f"evidence-{as_of.isoformat()}", context, TEMPLATE,
                              config.clinic.page_size, created, doc, tracker=tracker,
                              ctx=context, view=build_view(context, config), charts=charts)


def write_evidence_report(db_path: str | Path, as_of: date, out_dir: Path,
                          config: Config, load: int | None = None) -> list[Path]:
    """`outcomes report evidence`: evidence-YYYY-MM-DD.pdf and .json in out_dir."""
    evidence_settings(config)  # config errors first, before any work
    with tracking("evidence report", stages=STAGES) as tracker:
        tracker.stage(files.READ)
        results = read_evidence_results(db_path, as_of, config, load=load)
        return _write(results, out_dir, tracker)
