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


def payer_bench() -> dict:
    """Packets/s with --jobs 1 and 2, and bare sequential WeasyPrint, on the 400-patient demo."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "payer_bench.py")],
                          capture_output=True, text=True, check=False)
    rates = {}
    for line in proc.stdout.splitlines():
        key = line.split(":")[0]
        if "packets/s" in line:
            rates[key] = float(line.rsplit("=", 1)[1].split()[0])
    return {"lines": proc.stdout.strip().splitlines(), "rates": rates}


def targets(results: dict) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) for every target of the scale issue that this run measured."""
    by_n = {r["patients"]: r for r in results["sizes"]}
    rows = []
    if 1_000_000 in by_n:
        r = by_n[1_000_000]
        rows.append(("1M: ingest + metrics within 3x the floor", f"{r['ratio_to_floor']}x",
                     "met" if r["ratio_to_floor"] <= 3 else "missed"))
        peak = max(r["ingest_rss_mib"], r["metrics_rss_mib"])
        rows.append(("1M: peak RSS <= 4 GiB", f"{peak:,} MiB", "met" if peak <= 4096 else "missed"))
    if 100_000 in by_n:
        r = by_n[100_000]
        peak = max(r["ingest_rss_mib"], r["metrics_rss_mib"])
        rows.append(("100k: peak RSS <= 2 GiB", f"{peak:,} MiB", "met" if peak <= 2048 else "missed"))
        for report in ("monthly", "evidence"):
            v = r[f"{report}_report_s"]
            ok = isinstance(v, float) and v <= 10
            rows.append((f"100k: {report} report in seconds (<= 10 s)", f"{v} s", "met" if ok else "missed"))
    sizes = sorted(by_n)
    for small, big in zip(sizes, sizes[1:], strict=False):
        a, b = by_n[small]["ingest_plus_metrics_s"], by_n[big]["ingest_plus_metrics_s"]
        factor = round(b / a, 1)
        rows.append((f"linear growth {small:,} -> {big:,} (~{big // small}x)", f"{factor}x",
                     "met" if factor <= 1.5 * big / small else "missed"))
    rates = results.get("payer", {}).get("rates", {})
    if {"jobs=2", "bare WeasyPrint, sequential, one process"} <= rates.keys():
        speedup = round(rates["jobs=2"] / rates["bare WeasyPrint, sequential, one process"], 2)
        rows.append(("payer: --jobs 2 close to 2x the bare sequential render", f"{speedup}x",
                     "met" if speedup >= 1.8 else "missed"))
    return rows


def write_markdown(results: dict, target: Path) -> None:
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"One run of `{results.get('command', 'make bench')}` on {m['date']}: {m['cores']} cores, "
        f"{m['memory_gib']} GiB, "
        f"Python {m['python']}, DuckDB {m['duckdb']}, polars {m['polars']}.",
        "Each step is the real CLI in its own process; peak RSS is that process's own "
        "(os.wait4). Floor = DuckDB `SELECT count(*) FROM read_csv(...)` over the same CSVs.",
        "",
        "| patients | CSV MiB | floor s | ingest s (× floor) | ingest RSS MiB "
        "| metrics s (× floor) | metrics RSS MiB | ingest+metrics (× floor) | monthly s (× floor) "
        "| evidence s (× floor) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def with_ratio(seconds: float | str, floor: float) -> str:
        if not isinstance(seconds, int | float):
            return str(seconds)
        return f"{seconds} ({seconds / floor:.1f}×)"

    for r in results["sizes"]:
        f = r["floor_s"]
        lines.append(
            f"| {r['patients']:,} | {r['csv_mib']} | {f} | {with_ratio(r['ingest_s'], f)} | "
            f"{r['ingest_rss_mib']:,} | {with_ratio(r['metrics_s'], f)} | {r['metrics_rss_mib']:,} | "
            f"{with_ratio(r['ingest_plus_metrics_s'], f)} | {with_ratio(r['monthly_report_s'], f)} | "
            f"{with_ratio(r['evidence_report_s'], f)} |"
        )
    lines += ["", "## Targets", "", "| target | measured | verdict |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {v} |" for t, m, v in targets(results)]
    if results.get("payer"):
        lines += ["", "## Payer packets (400-patient demo, month 2026-10)", "", "```",
                  *results["payer"]["lines"], "```"]
    snapshots = ROOT / "bench" / "snapshots.md"  # written by bench/snapshot_bench.py
    if snapshots.is_file():
        lines += ["", snapshots.read_text(encoding="utf-8").strip()]
    analysis = ROOT / "bench" / "analysis.md"
    if analysis.is_file():
        lines += ["", analysis.read_text(encoding="utf-8").strip()]
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
    parser.add_argument("--from-json", default=None,
                        help="rewrite the markdown from an earlier bench.json (payer step re-run)")
    args = parser.parse_args()
    if args.from_json:
        results = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        results.setdefault("command", "make bench-1m" if any(
            r["patients"] == 1_000_000 for r in results["sizes"]) else "make bench")
        results["payer"] = payer_bench()
        write_markdown(results, Path(args.markdown))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.with_1m:
        sizes.append(1_000_000)
    out = Path(args.out)
    command = "make bench-1m" if args.with_1m else "make bench"
    results = {"command": command, "machine": machine(), "startup": startup(), "sizes": []}
    for n in sizes:
        print(f"benchmarking {n:,} patients ...", flush=True)
        config = ["--config", args.config] if args.config else []
        results["sizes"].append(bench_size(n, out / f"p{n}", config))
        print(json.dumps(results["sizes"][-1]), flush=True)
    print("benchmarking payer packets ...", flush=True)
    results["payer"] = payer_bench()
    write_markdown(results, Path(args.markdown))
    (out / "bench.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"written: {args.markdown}")


if __name__ == "__main__":
    main()
