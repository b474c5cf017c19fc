"""`make bench`: ingest and metrics at 10k / 100k (/ 1M) patients against DuckDB's floor.

Every measured step runs as its own child process (the real CLI), so wall time and peak RSS
(os.wait4's ru_maxrss) are those of that command alone. The floor is DuckDB reading the same
CSV files with a bare `SELECT count(*) FROM read_csv(...)`. Results go to BENCHMARKS.md.

usage: python bench/run_bench.py [--sizes 10000,100000] [--with-1m] [--out bench-out]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUTCOMES = str(BIN / "outcomes")
AS_OF = "2026-10-31"


@dataclass
class Measure:
    seconds: float
    peak_rss_mib: float


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Measure:
    """Run cmd as a child; wall time and its own peak resident memory."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})})
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"benchmark step failed: {' '.join(cmd)}\n{err}")
    return Measure(seconds, usage.ru_maxrss / 1024)


FLOOR_SCRIPT = """
import duckdb, sys
con = duckdb.connect()
for path in sys.argv[1:]:
    con.execute("SELECT count(*) FROM read_csv(?, all_varchar = true)", [path]).fetchall()
"""


def bench_size(patients: int, work: Path, config: list[str]) -> dict:
    export, db, metrics = work / "export", work / "clinic.duckdb", work / "metrics"
    if work.exists():
        shutil.rmtree(work)
    demo = measure([OUTCOMES, "demo", str(export), "--patients", str(patients), "--seed", "7"])
    csvs = sorted(str(p) for p in export.glob("*.csv"))
    size_mib = sum(Path(p).stat().st_size for p in csvs) / 2**20
    rows = {Path(p).stem: sum(1 for _ in open(p, "rb")) - 1 for p in csvs}
    floor = measure([sys.executable, "-c", FLOOR_SCRIPT, *csvs])
    ingest = measure([OUTCOMES, "ingest", str(export), "--db", str(db), *config])
    metrics_m = measure([OUTCOMES, "metrics", "--db", str(db), "--as-of", AS_OF, "--out", str(metrics),
                         *config])
    result = {
        "patients": patients,
        "csv_mib": round(size_mib, 1),
        "rows": rows,
        "demo_s": round(demo.seconds, 2),
        "floor_s": round(floor.seconds, 2),
        "ingest_s": round(ingest.seconds, 2),
        "ingest_rss_mib": round(ingest.peak_rss_mib),
        "metrics_s": round(metrics_m.seconds, 2),
        "metrics_rss_mib": round(metrics_m.peak_rss_mib),
    }
    total = ingest.seconds + metrics_m.seconds
    result["ingest_plus_metrics_s"] = round(total, 2)
    result["ratio_to_floor"] = round(total / floor.seconds, 1)
    result["ingest_ratio_to_floor"] = round(ingest.seconds / floor.seconds, 1)
    for report, args in (("monthly", ["monthly", "--month", "2026-10"]),
                         ("evidence", ["evidence", "--as-of", AS_OF])):
        try:
            m = measure([OUTCOMES, "report", *args, "--db", str(db), "--out", str(work / "reports"),
                         *config])
            result[f"{report}_report_s"] = round(m.seconds, 2)
        except SystemExit as exc:  # a report not in this build
            result[f"{report}_report_s"] = f"failed: {str(exc).splitlines()[0]}"
    return result


def startup() -> dict:
    help_run = min(measure([OUTCOMES, "--help"]).seconds for _ in range(3))
    imports = min(measure([sys.executable, "-c", "import pipeline.cli"]).seconds for _ in range(3))
    return {"outcomes_help_s": round(help_run, 3), "import_cli_s": round(imports, 3)}


def machine() -> dict:
    import duckdb
    import polars

    mem_kib = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return {
        "date": dt.date.today().isoformat(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "polars": polars.__version__,
    }


def write_markdown(results: dict, target: Path) -> None:
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"One `make bench` run on {m['date']}: {m['cores']} cores, {m['memory_gib']} GiB, "
        f"Python {m['python']}, DuckDB {m['duckdb']}, polars {m['polars']}.",
        "Each step is the real CLI in its own process; peak RSS is that process's own "
        "(os.wait4). Floor = DuckDB `SELECT count(*) FROM read_csv(...)` over the same CSVs.",
        "",
        "| patients | CSV MiB | floor s | ingest s | ingest RSS MiB | metrics s | metrics RSS MiB "
        "| ingest+metrics / floor | monthly s | evidence s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["sizes"]:
        lines.append(
            f"| {r['patients']:,} | {r['csv_mib']} | {r['floor_s']} | {r['ingest_s']} | "
            f"{r['ingest_rss_mib']:,} | {r['metrics_s']} | {r['metrics_rss_mib']:,} | "
            f"{r['ratio_to_floor']}× | {r['monthly_report_s']} | {r['evidence_report_s']} |"
        )
    s = results["startup"]
    lines += ["", f"Start-up: `outcomes --help` {s['outcomes_help_s']} s; `import pipeline.cli` "
              f"{s['import_cli_s']} s.", "", "Raw figures:", "", "```json",
              json.dumps(results, indent=2), "```", ""]
    target.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--with-1m", action="store_true", help="also 1,000,000 patients (~10 GB disk)")
    parser.add_argument("--out", default=str(ROOT / "bench-out"))
    parser.add_argument("--markdown", default=str(ROOT / "BENCHMARKS.md"))
    parser.add_argument("--config", default=None, help="TOML config passed to every step "
                        "(e.g. [database] memory_limit for the 1M run)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.with_1m:
        sizes.append(1_000_000)
    out = Path(args.out)
    results = {"machine": machine(), "startup": startup(), "sizes": []}
    for n in sizes:
        print(f"benchmarking {n:,} patients ...", flush=True)
        config = ["--config", args.config] if args.config else []
        results["sizes"].append(bench_size(n, out / f"p{n}", config))
        print(json.dumps(results["sizes"][-1]), flush=True)
    write_markdown(results, Path(args.markdown))
    (out / "bench.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"written: {args.markdown}")


if __name__ == "__main__":
    main()
