"""How a report's files are written: the one timestamp an aggregate report carries (its PDF's
created/modified date), the PDF metadata every report sets, the JSON text of a context, and the
PDF and JSON written together.

Deterministic reports (README "Outputs"): the same export, config and as-of date give the same
bytes. So no report reads the wall clock. The PDF metadata date is SOURCE_DATE_EPOCH (seconds since
1970, UTC; the reproducible-builds convention) when that variable is set, else the last second
of the report's as-of day, in UTC. Printed text never shows a run time at all: provenance is
the load id and the SHA-256 of the input files, which do not change between runs.

Faults: a report's JSON and PDF appear together or not at all, and a failed run (full disk,
killed process) leaves the outputs already there as they were.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pipeline
from pipeline.errors import InputError
from pipeline.formatting import json_ready
from pipeline.outputs import atomic_path
from pipeline.progress import Tracker


def report_timestamp(as_of: date) -> datetime:
    """SOURCE_DATE_EPOCH (UTC) when set, else the end of the as-of day (23:59:59 UTC)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if epoch:
        try:
            return datetime.fromtimestamp(int(epoch), tz=UTC)
        except (ValueError, OverflowError, OSError) as exc:
            raise InputError(f"SOURCE_DATE_EPOCH={epoch!r} is not a whole number of seconds "
                             "since 1970-01-01 UTC; unset it or correct it") from exc
    return datetime.combine(as_of, time(23, 59, 59), tzinfo=UTC)


def w3c(moment: datetime) -> str:
    """'2026-10-31T23:59:59+00:00': the W3C date with zone WeasyPrint reads from
    <meta name="dcterms.created"> (a date without zone is ignored and leaves no date)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def write_report_files(json_path: Path, json_text: str, render_pdf: Callable[[], None]) -> None:
    """Write the JSON beside its final name, render the PDF (pipeline.render writes it under a
    temporary name and renames it), then rename the JSON: nothing new appears unless both were
    written, and an error leaves the previous outputs untouched."""
    with atomic_path(json_path) as partial:
        partial.write_text(json_text, encoding="utf-8")
        render_pdf()


def pdf_document(*, title: str, subject: str, keywords: str, created: str, clinic_name: str,
                 header_right: str, footer: str) -> dict[str, str]:
    """The `doc` of report_templates/base.html.j2: the PDF's metadata (title, author, subject,
    keywords, generator, dates) and its running header and footer."""
    return {
        "title": title,
        "author": clinic_name,
        "subject": subject,
        "keywords": keywords,
        "version": pipeline.__version__,
        "created": created,
        "clinic_name": clinic_name,
        "header_right": header_right,
        "footer": footer,
    }


def context_json(context: dict[str, Any]) -> str:
    """The JSON text of a context: sorted keys, fixed float text, one trailing newline — the
    same context gives the same bytes (a withheld count as it prints: "<11", "*")."""
    return json.dumps(json_ready(context), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


# the stages of a report shown on a terminal (pipeline/progress.py), between which each report
# names its own (monthly: building the figures; evidence: pooling the studies)
READ, CHARTS, RENDER = "reading the results", "drawing the charts", "rendering the PDF"


def write_pdf_and_json(out_dir: Path, stem: str, context: dict[str, Any], template: str,
                       page_size: str, created: datetime, doc: dict[str, str],
                       tracker: Tracker | None = None, **template_values: Any) -> list[Path]:
    """Render `template` with `doc` and `template_values`, write <stem>.pdf and <stem>.json (the
    context) into out_dir together; returns [pdf, json]. `tracker` shows the stage."""
    from pipeline.render import Renderer  # imports WeasyPrint: only when a report is written

    if tracker is not None:
        tracker.stage(RENDER)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf_path, json_path = out_dir / f"{stem}.pdf", out_dir / f"{stem}.json"
    renderer = Renderer(page_size=page_size)
    html = renderer.html(template, {"doc": doc, **template_values})
    write_report_files(json_path, context_json(context),
                       lambda: renderer.pdf(html, pdf_path, created=created))
    return [pdf_path, json_path]
