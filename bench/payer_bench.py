"""Payer packets: `outcomes report payer --jobs N` against bare sequential WeasyPrint (not a test).

The 400-patient demo (seed 7) is generated, ingested and its metrics computed with the real CLI.
Then, `--repeats` times: the month's packets are written with `outcomes report payer --month M
--jobs N --html` for each N (the whole command in its own process: start-up, outcomes,
partitioning, workers), and the same HTML files are rendered to PDF by WeasyPrint alone,
sequentially, in one fresh process (the floor: the render loop timed inside that process).
Prints one JSON object: per repeat the seconds and packets/s of each, and the speed-up of
--jobs 2 over the bare render (the median over the repeats is the figure in BENCHMARKS.md).

usage: python bench/payer_bench.py [--out bench-out/payer] [--month 2026-10] [--jobs 1 2]
                                   [--repeats 3] [--config FILE]
       python bench/payer_bench.py --bare HTML_DIR PDF_DIR   (the floor; used by the above)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

from common import AS_OF, MONTH, OUTCOMES, ROOT, measure  # bench/ is the script's folder


def bare_render(html_dir: Path, out: Path) -> dict:
    """The floor: WeasyPrint alone rendering the HTML files of html_dir sequentially."""
    from pipeline.render import Renderer

    html_files = sorted(html_dir.glob("*.html"))
    renderer = Renderer()
    out.mkdir(parents=True)
    start = time.perf_counter()
    for path in html_files:
        renderer.pdf(path.read_text(encoding="utf-8"), out / f"{path.stem}.pdf",
                     created=datetime(2026, 10, 31), pdf_variant="pdf/a-3b")
    seconds = time.perf_counter() - start
    return {"files": len(html_files), "seconds": round(seconds, 2)}


def demo_db(work: Path, config: list[str]) -> Path:
    export, db = work / "export", work / "clinic.duckdb"
    measure([OUTCOMES, "demo", str(export), "--patients", "400", "--seed", "7"])
    measure([OUTCOMES, "ingest", str(export), "--db", str(db), *config])
    measure([OUTCOMES, "metrics", "--db", str(db), "--as-of", AS_OF, "--out", str(work / "metrics"),
             *config])
    return db


def one_repeat(db: Path, work: Path, month: str, jobs_list: list[int], config: list[str]) -> dict:
    result: dict = {}
    for jobs in jobs_list:
        out = work / f"jobs{jobs}"
        m = measure([OUTCOMES, "report", "payer", "--db", str(db), "--month", month, "--out",
                     str(out), "--jobs", str(jobs), "--html", *config])
        packets = len(list(out.glob("*.pdf")))
        result[f"jobs={jobs}"] = {"packets": packets, "seconds": round(m.seconds, 2),
                                  "packets_per_s": round(packets / m.seconds, 3),
                                  "peak_rss_mib": round(m.peak_rss_mib)}
    html_dir = work / f"jobs{jobs_list[-1]}"
    bare = measure([sys.executable, __file__, "--bare", str(html_dir), str(work / "bare")])
    floor = json.loads(bare.stdout)
    floor["packets_per_s"] = round(floor["files"] / floor["seconds"], 3)
    result["bare"] = floor
    if "jobs=2" in result:
        result["speedup_jobs2_vs_bare"] = round(
            result["jobs=2"]["packets_per_s"] / floor["packets_per_s"], 2)
    return result


def run(out: Path, month: str, jobs_list: list[int], repeats: int, config: list[str]) -> dict:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    db = demo_db(out, config)
    runs = []
    for i in range(repeats):
        work = out / f"repeat{i + 1}"
        runs.append(one_repeat(db, work, month, jobs_list, config))
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        shutil.rmtree(work)
    speedups = [r["speedup_jobs2_vs_bare"] for r in runs if "speedup_jobs2_vs_bare" in r]
    return {"patients": 400, "month": month, "runs": runs,
            "speedup_median": round(statistics.median(speedups), 2) if speedups else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "payer")
    parser.add_argument("--month", default=MONTH)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", default=None, help="TOML config passed to every step")
    parser.add_argument("--bare", nargs=2, type=Path, metavar=("HTML_DIR", "PDF_DIR"))
    args = parser.parse_args()
    if args.bare:
        print(json.dumps(bare_render(*args.bare)))
        return
    config = ["--config", args.config] if args.config else []
    print(json.dumps(run(args.out, args.month, args.jobs, args.repeats, config), indent=2))


if __name__ == "__main__":
    main()
