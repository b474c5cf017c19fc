"""Payer packets per second with 1 and 2 worker processes on the demo month (not a test).

Usage: .venv/bin/python bench/payer_bench.py [--db out/clinic.duckdb] [--month 2026-10]
Builds the 400-patient demo (seed 7) into a temporary folder when --db is not given.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

from pipeline.config import load_config
from pipeline.demo import write_demo
from pipeline.ingest import ingest
from pipeline.reports.payer.write import write_payer_packets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--month", default="2026-10")
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    config = load_config(None)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        db = args.db
        if db is None:
            write_demo(root / "export", patients=400, seed=7, end=date(2026, 10, 31))
            db = root / "clinic.duckdb"
            ingest(root / "export", db, config, today=date(2026, 11, 28))
        for jobs in args.jobs:
            out = root / f"jobs{jobs}"
            start = time.perf_counter()
            index = write_payer_packets(db, out, config, month=args.month, jobs=jobs, html=True)
            seconds = time.perf_counter() - start
            packets = len(index.read_text(encoding="utf-8").splitlines()) - 1
            print(f"jobs={jobs}: {packets} packets in {seconds:.1f} s = "
                  f"{packets / seconds:.2f} packets/s")
        bare_render(sorted((root / f"jobs{args.jobs[0]}").glob("*.html")), root / "bare")


def bare_render(html_files: list[Path], out: Path) -> None:
    """The floor: WeasyPrint alone rendering the same HTML files sequentially in one process."""
    from pipeline.render import Renderer

    renderer = Renderer()
    out.mkdir()
    start = time.perf_counter()
    for path in html_files:
        renderer.pdf(path.read_text(encoding="utf-8"), out / f"{path.stem}.pdf",
                     created=datetime(2026, 10, 31), pdf_variant="pdf/a-3b")
    seconds = time.perf_counter() - start
    print(f"bare WeasyPrint, sequential, one process: {len(html_files)} HTML files in "
          f"{seconds:.1f} s = {len(html_files) / seconds:.2f} packets/s")


if __name__ == "__main__":
    main()
