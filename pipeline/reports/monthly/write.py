"""Writing the monthly quality report: monthly-YYYY-MM.pdf and monthly-YYYY-MM.json.

`write_monthly` renders a `Results` as of the month's last day (what `outcomes run` hands it);
`write_monthly_report` is `outcomes report monthly`: it reads the results first.
"""

from __future__ import annotations

from pathlib import Path

import pipeline
from pipeline.config import Config
from pipeline.months import Month, parse_month
from pipeline.progress import Tracker, tracking
from pipeline.reports import files
from pipeline.reports.files import pdf_document, report_timestamp, w3c, write_pdf_and_json
from pipeline.reports.monthly.charts import chart_svgs
from pipeline.reports.monthly.context import build_context
from pipeline.reports.monthly.data import read_monthly
from pipeline.reports.monthly.view import build_view
from pipeline.results import Results, read_results

TEMPLATE = "monthly.html.j2"
# the rows of the canonical tables the report prints (pipeline/results.py INPUTS) and its own
# reading of the outcomes (reports/monthly/data.py): no outcome frame and no metric table whole
NEEDS = ("protocols", "monthly_loads", "monthly_reject_reasons", "latest_data_day")
READERS = (read_monthly,)
FIGURES = "building the figures"
# the stages shown on a terminal (pipeline/progress.py)
STAGES = (files.READ, FIGURES, files.CHARTS, files.RENDER)


def read_monthly_results(db_path: str | Path, month: Month, config: Config,
                         load: int | None = None) -> Results:
    """The results the report for `month` is built from: as of its last day."""
    return read_results(db_path, config, month.last, load=load, needs=NEEDS, frames=False,
                        tables=(), readers=READERS)


def write_monthly(results: Results, month: Month, out_dir: Path) -> list[Path]:
    """Write monthly-YYYY-MM.pdf and .json to out_dir from `results`; returns [pdf, json]."""
    with tracking("monthly report", stages=STAGES) as tracker:
        return _write(results, month, out_dir, tracker)


def _write(results: Results, month: Month, out_dir: Path, tracker: Tracker) -> list[Path]:
    config = results.config
    tracker.stage(FIGURES)
    context = build_context(results, month)
    created = report_timestamp(month.last)
    label, provenance = context["month_label"], context["provenance"]
    version = pipeline.__version__
    doc = pdf_document(
        title=f"Monthly quality report — {label}",
        subject=f"Outcomes, attrition and safety of courses ending in {label}",
        keywords="ketamine, outcomes, quality, monthly",
        created=w3c(created),
        clinic_name=config.clinic.name,
        header_right=f"Monthly quality report · {label}",
        footer=f"As of {context['as_of']} · ketamine-outcomes {version}"
               + (f" · load {provenance['load_id']}, inputs {provenance['input_fingerprint']}"
                  if provenance["load_id"] is not None else ""),
    )
    tracker.stage(files.CHARTS)
    view, charts = build_view(context, config), chart_svgs(context)
    return write_pdf_and_json(out_dir, f"monthly-{month.text}", context, TEMPLATE,
                              config.clinic.page_size, created, doc, tracker=tracker, r=context,
                              view=view, charts=charts)


def write_monthly_report(db_path: str | Path, month: str, out_dir: Path,
                         config: Config, load: int | None = None) -> list[Path]:
    """`outcomes report monthly`: monthly-YYYY-MM.pdf and .json in out_dir; returns [pdf, json]."""
    report_month = parse_month(month)
    with tracking("monthly report", stages=STAGES) as tracker:
        tracker.stage(files.READ)
        results = read_monthly_results(db_path, report_month, config, load=load)
        return _write(results, report_month, out_dir, tracker)
