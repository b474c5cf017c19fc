"""`make bench` / `make bench-1m`: every figure of the scale targets from one run.

Per size (`--sizes`, and the `--large` size): the demo export is generated, then DuckDB's floor
(`SELECT count(*) FROM read_csv(...)` over the same CSV files, the query timed inside its
process, best of three), `outcomes ingest`, `outcomes metrics` (and the size of metrics.json),
`outcomes report monthly` and `outcomes report evidence`, each the real CLI in its own process:
wall time and that process's own peak RSS (os.wait4). At the large size the export is then
revised (`pipeline/demo/revisions.py`: ~1% of rows deleted or corrected) and loaded again into
the same database: the snapshot reload. Last, payer packets with `--jobs 2` against bare
sequential WeasyPrint on the same HTML (bench/payer_bench.py).

The results go to bench-out/bench.json (written after every step, so a run that stops keeps
what it measured) and into BENCHMARKS.md between the `<!-- bench -->` markers (bench_report.py);
the rest of BENCHMARKS.md (the hand-written profile, the snapshots section) is left as it is.

usage: python bench/run_bench.py [--sizes 10000,100000] [--large 1000000] [--config FILE]
                                 [--payer-repeats 3] [--out bench-out] [--markdown BENCHMARKS.md]
       python bench/run_bench.py --from-json bench-out/bench.json   (rewrite the markdown only)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from bench_report import write_markdown  # bench/ is the script's folder
from common import AS_OF, BENCHMARKS, MONTH, OUTCOMES, ROOT, Measure, load_counts, machine, measure

FLOOR_SCRIPT = """
import duckdb, sys, time
con = duckdb.connect()
start = time.perf_counter()
for path in sys.argv[1:]:
    con.execute("SELECT count(*) FROM read_csv(?, all_varchar = true)", [path]).fetchall()
print(time.perf_counter() - start)
"""

REVISE_SCRIPT = """
import json, sys
from pathlib import Path
from pipeline.demo.revisions import revise_export
print(json.dumps(revise_export(Path(sys.argv[1]), Path(sys.argv[2]), seed=2)))
"""


def step(result: dict, name: str, cmd: list[str]) -> Measure | None:
    """Run one measured step; record `{name}_s` and `{name}_rss_mib`, or `{name}_error` when the
    command fails (the run goes on, so one failing step does not lose the others)."""
    try:
        m = measure(cmd)
    except SystemExit as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        result[f"{name}_error"] = lines[-1] if lines else "failed"
        print(f"  {name}: FAILED: {result[f'{name}_error']}", flush=True)
        return None
    result[f"{name}_s"] = round(m.seconds, 2)
    result[f"{name}_rss_mib"] = round(m.peak_rss_mib)
    print(f"  {name}: {m.seconds:.1f} s, peak RSS {m.peak_rss_mib:,.0f} MiB", flush=True)
    return m


def floor_seconds(csvs: list[str]) -> float:
    """DuckDB's bare scan of the same files: the query alone, best of three runs."""
    return min(float(measure([sys.executable, "-c", FLOOR_SCRIPT, *csvs]).stdout) for _ in range(3))


def bench_size(patients: int, work: Path, config: list[str], reload: bool) -> dict:
    export, db, metrics = work / "export", work / "clinic.duckdb", work / "metrics"
    if work.exists():
        shutil.rmtree(work)
    result: dict = {"patients": patients}
    demo = measure([OUTCOMES, "demo", str(export), "--patients", str(patients), "--seed", "7"])
    csvs = sorted(str(p) for p in export.glob("*.csv"))
    result["csv_mib"] = round(sum(Path(p).stat().st_size for p in csvs) / 2**20, 1)
    result["rows"] = {Path(p).stem: sum(1 for _ in open(p, "rb")) - 1 for p in csvs}
    result["demo_s"] = round(demo.seconds, 2)
    result["floor_s"] = round(floor_seconds(csvs), 3)
    print(f"  floor: {result['floor_s']} s", flush=True)
    step(result, "ingest", [OUTCOMES, "ingest", str(export), "--db", str(db), *config])
    if step(result, "metrics", [OUTCOMES, "metrics", "--db", str(db), "--as-of", AS_OF,
                                "--out", str(metrics), *config]):
        # metrics.json itself, whatever else the metrics step writes beside it
        result["metrics_json_bytes"] = (metrics / "metrics.json").stat().st_size
        result["metrics_out_bytes"] = sum(p.stat().st_size for p in metrics.rglob("*") if p.is_file())
    if "ingest_s" in result and "metrics_s" in result:
        result["ingest_plus_metrics_s"] = round(result["ingest_s"] + result["metrics_s"], 2)
    step(result, "monthly", [OUTCOMES, "report", "monthly", "--month", MONTH, "--db", str(db),
                             "--out", str(work / "reports"), *config])
    step(result, "evidence", [OUTCOMES, "report", "evidence", "--as-of", AS_OF, "--db", str(db),
                              "--out", str(work / "reports"), *config])
    if reload and "ingest_s" in result:
        result["reload"] = snapshot_reload(export, work / "export-revised", db, config)
    return result


def snapshot_reload(export: Path, revised: Path, db: Path, config: list[str]) -> dict:
    """The next month's export (~1% of rows changed) loaded into the database of the first."""
    made = measure([sys.executable, "-c", REVISE_SCRIPT, str(export), str(revised)])
    reload: dict = {"revise_s": round(made.seconds, 2), "changes": json.loads(made.stdout)}
    print(f"  revised export: {made.seconds:.1f} s, {reload['changes']}", flush=True)
    if step(reload, "ingest", [OUTCOMES, "ingest", str(revised), "--db", str(db), *config]):
        reload["load"] = load_counts(db)
    return reload


def startup() -> dict:
    help_run = min(measure([OUTCOMES, "--help"]).seconds for _ in range(3))
    imports = min(measure([sys.executable, "-c", "import pipeline.cli"]).seconds for _ in range(3))
    return {"outcomes_help_s": round(help_run, 3), "import_cli_s": round(imports, 3)}


def payer(out: Path, repeats: int) -> dict:
    """bench/payer_bench.py in its own process; its progress (stderr) goes to the terminal."""
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "payer_bench.py"),
                           "--out", str(out / "payer"), "--repeats", str(repeats)],
                          stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        return {"error": f"bench/payer_bench.py exited with {proc.returncode} (its message is above)"}
    return json.loads(proc.stdout)


def config_settings(path: str | None) -> dict:
    if path is None:
        return {}
    with open(path, "rb") as handle:
        return {"file": path, **tomllib.load(handle).get("database", {})}


def expected_minutes(sizes: list[int], large: int | None, repeats: int) -> float:
    """A rough duration on 2 idle cores (the 2026-11-28 run and a dry run): per size ~40 s plus
    ~0.46 ms per patient for demo, floor, ingest, metrics and both reports; ~0.2 ms per patient
    for the revised export and its reload; ~2 min per payer repeat."""
    seconds = sum(40 + 4.6e-4 * n for n in sizes)
    if large:
        seconds += 2.1e-4 * large + 10
    return (seconds + 20 + 120 * repeats) / 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--large", type=int, default=None,
                        help="also this many patients, with the snapshot reload (1000000 for "
                             "the targets; ~8 GB of disk under --out)")
    parser.add_argument("--config", default=None, help="TOML config passed to every step of "
                        "every size (bench/large.toml: [database] memory_limit = \"3GB\")")
    parser.add_argument("--payer-repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench-out"))
    parser.add_argument("--markdown", default=str(BENCHMARKS))
    parser.add_argument("--from-json", default=None,
                        help="only rewrite the markdown from an earlier bench.json")
    args = parser.parse_args()
    if args.from_json:
        write_markdown(json.loads(Path(args.from_json).read_text(encoding="utf-8")),
                       Path(args.markdown))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    everything = [*sizes, *([args.large] if args.large else [])]
    print(f"expected duration: about {expected_minutes(everything, args.large, args.payer_repeats):.0f} "
          "min on 2 idle cores (up to twice that on a busy machine); disk: about "
          f"{sum(everything) * 6e-6 + (args.large or 0) * 2e-6:.1f} GB under {args.out}", flush=True)
    results: dict = {"command": " ".join(["python bench/run_bench.py", *sys.argv[1:]]),
                     "machine": machine(), "config": config_settings(args.config),
                     "floor_method": "query", "startup": startup(), "large": args.large,
                     "sizes": []}
    config = ["--config", args.config] if args.config else []
    saved = out / "bench.json"
    for n in everything:
        print(f"benchmarking {n:,} patients ...", flush=True)
        results["sizes"].append(bench_size(n, out / f"p{n}", config, reload=n == args.large))
        saved.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"benchmarking payer packets ({args.payer_repeats} repeats) ...", flush=True)
    results["payer"] = payer(out, args.payer_repeats)
    saved.write_text(json.dumps(results, indent=2), encoding="utf-8")
    write_markdown(results, Path(args.markdown))
    print(f"written: {args.markdown} and {saved}")


if __name__ == "__main__":
    main()
