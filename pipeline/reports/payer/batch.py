"""Rendering payer packets: one PDF/A-3b per packet, in parallel worker processes.

Workers are spawned (`multiprocessing.get_context("spawn").Pool(..., maxtasksperchild=50)`,
ProcessPoolExecutor(max_tasks_per_child) hangs on Python 3.11) and each builds its Renderer
once in the initializer. A task is a plain dict built in the parent; the worker draws the
charts, renders HTML and PDF, writes the files and returns (file, pages, sha256).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import multiprocessing
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pipeline
from pipeline.csv_cells import rows_csv
from pipeline.outputs import atomic_path
from pipeline.progress import tracking
from pipeline.reports.files import pdf_document
from pipeline.reports.payer.charts import score_chart  # plain SVG: no matplotlib (charts.py)

HEADER_ID_CHARS = 40  # ids longer than this are cut with "…" in the running header
PDF_VARIANT = "pdf/a-3b"  # PDF/A-3 keeps attachments; never a-1/a-2 with patient data
TEMPLATE = "payer.html.j2"
MAX_TASKS_PER_CHILD = 50

SOURCE_COLUMNS = [
    "record", "patient_id", "course_id", "record_id", "at", "protocol_id", "status",
    "infusion_number", "dose_mg_per_kg", "weight_kg", "dose_mg", "duration_minutes", "cpt_codes",
    "bp_systolic_max", "bp_diastolic_max", "adverse_events", "provider", "site", "instrument",
    "total_score", "timing", "infusions_before", "used_as", "medication", "drug_class",
    "start_date", "end_date", "adequate_dose", "improvement_pct", "episode", "counts_toward_resistance",
]
OUTCOME_COLUMNS = [
    "patient_id", "course_id", "protocol_id", "instrument", "course_start", "course_end",
    "infusions", "planned_infusions", "status", "baseline_score", "baseline_at", "endpoint_score",
    "endpoint_at", "pct_change", "category", "remission", "reliable_improvement",
    "reliable_deterioration", "infusions_to_response", "response_timing", "not_evaluable_reason",
]

_renderer: Any = None  # one per worker process, built by init_worker
# What names.file_stem can produce: no '/', '\\', '..', control or non-ASCII character.
SAFE_STEM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,199}")


# ---------------------------------------------------------------------------------------------
# Small pure helpers


def fmt_score(value: Any) -> str:
    """A scale score as written: 18.0 -> '18', 18.5 -> '18.5'."""
    if value is None:
        return "–"
    return f"{float(value):g}"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:g}" if value.is_integer() else repr(value)
    return str(value)


def _cut(text: str, limit: int = HEADER_ID_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    """An attachment's CSV: text cells a spreadsheet could run are neutralised (csv_cells)."""
    return rows_csv(columns, ([row.get(c) for c in columns] for row in rows), _cell).encode("utf-8")


def source_csv(packet: dict[str, Any]) -> bytes:
    """The packet's own source rows: its sessions, its scores, the patient's trials."""
    pid, cid = packet["patient"]["patient_id"], packet["course"]["course_id"]
    rows: list[dict[str, Any]] = []
    for s in packet["sessions"]:
        rows.append({**s, "record": "session", "patient_id": pid, "course_id": cid,
                     "record_id": s["session_id"], "at": s["started_at"],
                     "protocol_id": packet["course"]["protocol_id"]})
    for s in packet["scores"]:
        rows.append({**s, "record": "score", "patient_id": pid, "course_id": cid,
                     "record_id": s["assessment_id"], "at": s["administered_at"],
                     "used_as": s["role"]})
    for t in packet["trials"]:
        rows.append({**t, "record": "trial", "patient_id": pid, "course_id": "",
                     "record_id": t.get("trial_id"), "at": t["start_date"],
                     "counts_toward_resistance": t["qualifies"]})
    return _csv(SOURCE_COLUMNS, rows)


def outcomes_csv(packet: dict[str, Any]) -> bytes:
    return _csv(OUTCOME_COLUMNS, packet["outcomes"])


_STREAM = re.compile(rb"<<(?:(?!>>\s*stream).)*?/Type\s*/ObjStm.*?>>\s*stream\r?\n", re.S)


def count_pages(pdf: bytes) -> int:
    """Pages in a PDF written by WeasyPrint (page objects may sit in compressed object streams).

    Renderer.pdf does not return the laid-out document, so count `/Type /Page` objects.
    """
    texts = [pdf]
    for match in _STREAM.finditer(pdf):
        start = match.end()
        try:
            texts.append(zlib.decompressobj().decompress(pdf[start:start + 50_000_000]))
        except zlib.error:
            continue
    return sum(len(re.findall(rb"/Type\s*/Page(?![A-Za-z])", t)) for t in texts)


# ---------------------------------------------------------------------------------------------
# Worker side


def make_renderer(page_size: str) -> Any:
    from pipeline.render import FULL_TEXT_IN_CSV, Renderer  # imports weasyprint: once per process

    renderer = Renderer(page_size=page_size, full_text_in=FULL_TEXT_IN_CSV)
    renderer.env.filters["score"] = fmt_score  # this Renderer's own environment only
    return renderer


def init_worker(page_size: str) -> None:
    global _renderer
    _renderer = make_renderer(page_size)


def charts_for(packet: dict[str, Any]) -> list[dict[str, Any]]:
    infusion_days = sorted({
        (s["started_at"].date() if isinstance(s["started_at"], dt.datetime) else s["started_at"])
        for s in packet["sessions"] if s["infusion_number"] is not None
    })
    charts = []
    for instrument, spec in packet["instruments"].items():
        scores = [s for s in packet["scores"] if s["instrument"] == instrument]
        if not scores:
            continue
        band_text = ", ".join(f"{b['label']} {b['low']:g}–{b['high']:g}" for b in spec["bands"])
        caption = (f"{instrument} scores of this course over time (higher = more severe); "
                   f"triangles: infusion days."
                   + (f" Shaded severity bands: {band_text}." if band_text else ""))
        charts.append({"instrument": instrument, "caption": caption,
                       "svg": score_chart(instrument, spec, scores, infusion_days)})
    return charts


def packet_html(renderer: Any, packet: dict[str, Any]) -> str:
    from pipeline.render import isolate_bidi

    # ids are export text: isolated, a bidi override in one cannot reorder the words around it
    raw_pid, raw_cid = packet["patient"]["patient_id"], packet["course"]["course_id"]
    pid, cid = isolate_bidi(raw_pid), isolate_bidi(raw_cid)
    # the running header is one line in the top margin: long ids are cut there (full in the body)
    header_pid, header_cid = isolate_bidi(_cut(raw_pid)), isolate_bidi(_cut(raw_cid))
    doc = pdf_document(
        title=f"Payer documentation packet – patient {pid} – course {cid}",
        subject=(f"Dates of service, scale scores, outcomes and payer criteria for patient {pid}, "
                 f"course {cid}, as of {packet['as_of'].isoformat()}"),
        keywords="payer documentation, ketamine infusion, PHQ-9, treatment-resistant depression",
        created=packet["as_of"].isoformat(),  # W3C date: the as-of day, never "now"
        clinic_name=packet["clinic_name"],
        header_right=f"Patient {header_pid} · course {header_cid}",
        footer=(f"ketamine-outcomes {pipeline.__version__} · records as of "
                f"{packet['as_of'].isoformat()} · source rows attached as CSV"),
    )
    return renderer.html(TEMPLATE, {"doc": doc, "lang": "en", "p": packet,
                                    "charts": charts_for(packet)})


def render_packet(task: dict[str, Any], renderer: Any = None) -> dict[str, Any]:
    """Write one packet's PDF (and HTML when asked); return file name, pages and SHA-256."""
    renderer = renderer or _renderer
    packet = task["packet"]
    out_dir = Path(task["out_dir"])
    stem = packet["stem"]
    if not SAFE_STEM.fullmatch(stem):  # names.file_stem makes these; never trust blindly
        raise ValueError(f"unsafe packet file name {stem!r}")
    html = packet_html(renderer, packet)
    if task["html"]:
        with atomic_path(out_dir / f"{stem}.html") as partial:
            partial.write_text(html, encoding="utf-8")
    target = out_dir / f"{stem}.pdf"
    created = dt.datetime.combine(packet["as_of"], dt.time())
    renderer.pdf(html, target, created=created, pdf_variant=PDF_VARIANT, attachments=[
        (f"{stem}_source.csv", source_csv(packet),
         "Source rows of this packet: sessions and scores of the course, antidepressant trials"),
        (f"{stem}_outcomes.csv", outcomes_csv(packet),
         "Course outcome rows of the outcomes engine for this course"),
    ])
    data = target.read_bytes()
    return {"file": target.name, "pages": count_pages(data),
            "sha256": hashlib.sha256(data).hexdigest()}


# ---------------------------------------------------------------------------------------------
# Parent side


@contextlib.contextmanager
def render_pool(jobs: int | None, page_size: str, tasks: int | None = None) -> Iterator[Any]:
    """The worker processes (None for one job), started at once: each imports WeasyPrint and
    builds its Renderer while the parent is still reading the results and partitioning the
    courses into packets, so rendering starts on warm workers. With the number of `tasks`
    known, no more workers than tasks (None for one or none: each worker costs a start-up)."""
    workers = jobs or os.cpu_count() or 1
    if tasks is not None:
        workers = min(workers, tasks)
    if workers <= 1:
        yield None
        return
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=init_worker, initargs=(page_size,),
                      maxtasksperchild=MAX_TASKS_PER_CHILD) as pool:
        yield pool


def render_all(packets: list[dict[str, Any]], out_dir: Path, html: bool, pool: Any,
               page_size: str) -> list[dict[str, Any]]:
    """Render every packet (in the order given) in `pool` (render_pool), or in this process when
    it is None; results in the same order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [{"packet": p, "out_dir": str(out_dir), "html": html} for p in packets]
    results: list[dict[str, Any]] = []
    # the progress display counts packets; it never prints an id (pipeline/progress.py)
    with tracking("payer packets", total=len(tasks)) as tracker:
        tracker.stage("rendering")
        if pool is None:
            renderer = make_renderer(page_size)
            for task in tasks:
                results.append(render_packet(task, renderer))
                tracker.advance()
        else:
            for result in pool.imap(render_packet, tasks, chunksize=1):
                results.append(result)
                tracker.advance()
    return results
