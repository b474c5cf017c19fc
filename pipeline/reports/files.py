"""The one timestamp an aggregate report carries (its PDF's created/modified date), and how
its files are written.

Issue 9 ("deterministic reports"): the same export, config and as-of date give the same bytes.
So no report reads the wall clock. The PDF metadata date is SOURCE_DATE_EPOCH (seconds since
1970, UTC; the reproducible-builds convention) when that variable is set, else the last second
of the report's as-of day, in UTC. Printed text never shows a run time at all: provenance is
the load id and the SHA-256 of the input files, which do not change between runs.

Issue 9 ("faults"): a report's JSON and PDF appear together or not at all, and a failed run
(full disk, killed process) leaves the outputs already there as they were.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path

from pipeline.errors import InputError
from pipeline.outputs import atomic_path


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
