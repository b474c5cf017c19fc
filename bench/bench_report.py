"""BENCHMARKS.md's generated part (between `<!-- bench -->` markers) from one run's results.

The targets are the scale issue's rows, word for word, each with its measured value and a
verdict computed here. "1M" is the run's large size and "100k" the largest of the other sizes;
a run with other sizes (a dry run) says at which size each figure was measured.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path

from common import replace_marked  # bench/ is the script's folder

MARK_START, MARK_END = "<!-- bench -->", "<!-- /bench -->"
GIB = 1024  # MiB
MB = 1_000_000  # bytes

Verdict = tuple[str, bool] | None  # (measured, met); None: not measured in this run


def _x(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}×"


def _size(r: dict, nominal: int) -> str:
    return "" if r["patients"] == nominal else f" (at {r['patients']:,} patients)"


def _roles(results: dict) -> tuple[dict | None, dict | None]:
    """(the "1M" size, the "100k" size) of this run."""
    sizes = results["sizes"]
    large = results.get("large")
    if large is None and any(r["patients"] == 1_000_000 for r in sizes):
        large = 1_000_000  # bench.json of the earlier runs
    big = next((r for r in sizes if r["patients"] == large), None)
    rest = [r for r in sizes if r["patients"] != large]
    mid = next((r for r in rest if r["patients"] == 100_000), None) or (
        max(rest, key=lambda r: r["patients"]) if rest else None)
    return big, mid


def _ingest_metrics(big: dict) -> Verdict:
    if "ingest_plus_metrics_s" not in big:
        return None
    ratio = big["ingest_plus_metrics_s"] / big["floor_s"]
    return (f"{_x(ratio)} ({big['ingest_s']} s + {big['metrics_s']} s against "
            f"{big['floor_s']} s){_size(big, 1_000_000)}", ratio <= 6)


def _peak_rss(big: dict, config: dict | None) -> Verdict:
    steps = {k.removesuffix("_rss_mib"): v for k, v in big.items() if k.endswith("_rss_mib")}
    if "ingest_s" in big.get("reload", {}):
        steps["reload"] = big["reload"]["ingest_rss_mib"]
    if not steps:
        return None
    worst = max(steps, key=lambda k: steps[k])
    limit = "not recorded" if config is None else config.get("memory_limit", "DuckDB's default")
    return (f"{steps[worst] / GIB:.2f} GiB ({worst}; memory_limit {limit}){_size(big, 1_000_000)}",
            steps[worst] <= 4 * GIB)


def _metrics_json(big: dict) -> Verdict:
    if "metrics_json_bytes" not in big:
        return None
    size = big["metrics_json_bytes"]
    return f"{size / MB:.3f} MB{_size(big, 1_000_000)}", size <= 5 * MB


def _reports(r: dict | None, nominal: int, limit: float) -> Verdict:
    if r is None or not {"monthly_s", "evidence_s"} <= r.keys():
        return None
    return (f"{r['monthly_s']} s, {r['evidence_s']} s{_size(r, nominal)}",
            max(r["monthly_s"], r["evidence_s"]) <= limit)


def _reload(big: dict) -> Verdict:
    reload = big.get("reload", {})
    if "ingest_s" not in reload or "ingest_s" not in big:
        return None
    ratio = reload["ingest_s"] / big["ingest_s"]
    return (f"{_x(ratio, 2)} ({reload['ingest_s']} s against {big['ingest_s']} s)"
            f"{_size(big, 1_000_000)}", ratio <= 1.5)


def _payer(payer: dict) -> Verdict:
    runs = [r["speedup_jobs2_vs_bare"] for r in payer.get("runs", []) if "speedup_jobs2_vs_bare" in r]
    rates = payer.get("rates", {})  # an earlier bench.json: one run, packets/s by printed label
    bare = "bare WeasyPrint, sequential, one process"
    if not runs and {"jobs=2", bare} <= rates.keys():
        runs = [rates["jobs=2"] / rates[bare]]
    if not runs:
        return None
    median = statistics.median(runs)
    spread = f"; runs {', '.join(_x(s, 2) for s in runs)}" if len(runs) > 1 else ""
    return f"{median:.2f}× (median of {len(runs)}{spread})", median >= 1.8


def _growth(mid: dict, big: dict) -> Verdict:
    if "ingest_plus_metrics_s" not in mid or "ingest_plus_metrics_s" not in big:
        return None
    growth = big["ingest_plus_metrics_s"] / mid["ingest_plus_metrics_s"]
    data = big["patients"] / mid["patients"]
    where = "" if (mid["patients"], big["patients"]) == (100_000, 1_000_000) else (
        f" ({mid['patients']:,} → {big['patients']:,} patients, {data:g}× the data)")
    return f"{_x(growth)} (ingest + metrics){where}", growth <= data


def targets(results: dict) -> list[tuple[str, str, str, str, str]]:
    """(figure, before, target, measured, verdict): the issue's rows, in its order."""
    big, mid = _roles(results)

    def on(r: dict | None, fn: Callable[[dict], Verdict]) -> Verdict:
        return None if r is None else fn(r)

    rows: list[tuple[str, str, str, Verdict]] = [
        ("1M: ingest + metrics, × DuckDB `count(*)` over `read_csv` of the same files", "52–75×",
         "≤ 6×", on(big, _ingest_metrics)),
        ("1M: peak RSS of any step", "16.4–16.9 GiB",
         "≤ 4 GiB (with `[database] memory_limit = \"3GB\"`)",
         on(big, lambda r: _peak_rss(r, results.get("config")))),
        ("1M: `metrics.json`", "3.4 GB", "≤ 5 MB", on(big, _metrics_json)),
        ("100k: monthly report, evidence report", "16 s each", "≤ 5 s each",
         _reports(mid, 100_000, 5)),
        ("1M: monthly report, evidence report", "81 s, 70 s", "≤ 20 s each",
         _reports(big, 1_000_000, 20)),
        ("1M: snapshot reload with 1% of rows changed", "—", "≤ 1.5× a first load",
         on(big, _reload)),
        ("payer, `--jobs 2` vs bare sequential WeasyPrint on the same HTML", "1.2–1.6×", "≥ 1.8×",
         _payer(results.get("payer", {}))),
        ("growth 100k → 1M", "9.2×", "≤ 10×",
         None if big is None or mid is None else _growth(mid, big)),
    ]
    return [(figure, before, target, *(("not measured in this run", "—") if v is None else
                                       (v[0], "**met**" if v[1] else "**missed**")))
            for figure, before, target, v in rows]


def _with_ratio(r: dict, key: str) -> str:
    if f"{key}_error" in r:
        return "failed"
    if f"{key}_s" not in r:
        return "—"
    return f"{r[f'{key}_s']} ({_x(r[f'{key}_s'] / r['floor_s'])})"


def _cell(r: dict, key: str) -> str:
    return f"{r[key]:,}" if key in r else "—"


def size_table(results: dict) -> list[str]:
    lines = [
        "| patients | CSV MiB | floor s | ingest s (× floor) | ingest peak RSS MiB "
        "| metrics s (× floor) | metrics peak RSS MiB | ingest + metrics s (× floor) "
        "| metrics.json | monthly s (× floor) | evidence s (× floor) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["sizes"]:
        plus = r.get("ingest_plus_metrics_s")
        both = "—" if plus is None else f"{plus} ({_x(plus / r['floor_s'])})"
        json_size = (f"{r['metrics_json_bytes'] / MB:,.3f} MB" if "metrics_json_bytes" in r
                     else "—")
        lines.append(
            f"| {r['patients']:,} | {r['csv_mib']} | {r['floor_s']} | {_with_ratio(r, 'ingest')} | "
            f"{_cell(r, 'ingest_rss_mib')} | {_with_ratio(r, 'metrics')} | "
            f"{_cell(r, 'metrics_rss_mib')} | "
            f"{both} | {json_size} | "
            f"{_with_ratio(r, 'monthly')} | {_with_ratio(r, 'evidence')} |")
    errors = [f"- {r['patients']:,} patients, {k.removesuffix('_error')}: {v}"
              for r in results["sizes"] for k, v in r.items() if k.endswith("_error")]
    return lines + ([""] + errors if errors else [])


def reload_lines(results: dict) -> list[str]:
    big, _ = _roles(results)
    reload = (big or {}).get("reload")
    if not reload:
        return []
    head = [f"## Snapshot reload at {big['patients']:,} patients", ""]
    if "ingest_s" not in reload:
        return [*head, f"The reload failed: {reload.get('ingest_error', 'not run')}."]
    load = reload.get("load", {})
    changes = ", ".join(f"{v:,} {k}" for k, v in reload["changes"].items())
    return [*head,
            f"The export was revised with `revise_export` (`pipeline/demo/revisions.py`, seed 2: "
            f"{changes}; {reload['revise_s']} s) and loaded into the database of the first load "
            f"(after its metrics and reports): {reload['ingest_s']} s, peak RSS "
            f"{reload['ingest_rss_mib']:,} MiB, against {big['ingest_s']} s and "
            f"{big['ingest_rss_mib']:,} MiB for the first load "
            f"({_x(reload['ingest_s'] / big['ingest_s'], 2)}).",
            *([""] + [f"The reload read {load['read']:,} rows: {load['added']:,} added, "
                      f"{load['corrected']:,} corrected, {load['unchanged']:,} unchanged, "
                      f"{load['retired']:,} retired; the database keeps {load['versions']:,} row "
                      f"versions for {load['current']:,} current rows."] if load else [])]


def payer_lines(payer: dict) -> list[str]:
    if not payer:
        return []
    head = ["## Payer packets", ""]
    if "runs" not in payer:
        return [*head, f"The payer benchmark failed: {payer.get('error')}"]
    if not payer["runs"]:
        return [*head, "No repeat was run."]
    jobs = [k for k in payer["runs"][0] if k.startswith("jobs=")]
    lines = [*head,
             f"{payer['patients']}-patient demo, month {payer['month']}, "
             f"{payer['runs'][0][jobs[0]]['packets']} packets. `outcomes report payer --jobs N "
             "--html` is the whole command in its own process; the bare render is WeasyPrint "
             "alone turning the same HTML files into PDF/A-3b one after another in one process.",
             "", "| repeat | " + " | ".join(f"`--{j.replace('=', ' ')}` s (packets/s)" for j in jobs)
             + " | bare WeasyPrint s (packets/s) | `--jobs 2` ÷ bare |",
             "|---:|" + "---:|" * (len(jobs) + 2)]
    for i, r in enumerate(payer["runs"], 1):
        cells = [f"{r[j]['seconds']} ({r[j]['packets_per_s']})" for j in jobs]
        lines.append(f"| {i} | {' | '.join(cells)} | {r['bare']['seconds']} "
                     f"({r['bare']['packets_per_s']}) | {r.get('speedup_jobs2_vs_bare', '—')} |")
    return lines


def _old_payer(payer: dict) -> list[str]:
    """The payer figures of an earlier bench.json (printed lines)."""
    return ["## Payer packets", "", "```", *payer["lines"], "```"] if payer.get("lines") else []


def _normalized(results: dict) -> dict:
    """The same keys for an earlier bench.json (`monthly_report_s` was `monthly_s`)."""
    sizes = [{**r, **{f"{k.removesuffix('_report_s')}_s": v for k, v in r.items()
                      if k.endswith("_report_s") and isinstance(v, int | float)}}
             for r in results["sizes"]]
    return {**results, "sizes": sizes}


def render(results: dict) -> str:
    results = _normalized(results)
    m = results["machine"]
    config = results.get("config", {})
    settings = ", ".join(f"{k} = {v!r}" for k, v in config.items() if k != "file")
    floor = ("the query alone, timed inside its process (best of three)"
             if results.get("floor_method") == "query" else "that child process's wall time")
    lines = [
        MARK_START,
        "<!-- Written by bench/run_bench.py from one run; do not edit between these markers. -->",
        "",
        f"One run of `{results.get('command', 'make bench')}` on {m['date']}: {m['cores']} cores, "
        f"{m['memory_gib']} GiB, Python {m['python']}, DuckDB {m['duckdb']}, polars {m['polars']}."
        + (f" Every step of every size ran with `--config {config['file']}` ([database] "
           f"{settings})." if config else ""),
        "Each step is the real CLI in its own process; its peak RSS is that process's own "
        "(os.wait4). Floor = DuckDB `SELECT count(*) FROM read_csv(...)` over the same CSVs: "
        f"{floor}.",
        "",
        "## Targets",
        "",
        "| figure | before | target | measured | verdict |",
        "|---|---|---|---|---|",
        *[f"| {' | '.join(row)} |" for row in targets(results)],
        "",
        "## Per size",
        "",
        *size_table(results),
    ]
    sizes = results["sizes"]
    growth = [f"{a['patients']:,} → {b['patients']:,}: "
              f"{_x(b['ingest_plus_metrics_s'] / a['ingest_plus_metrics_s'])}"
              for a, b in zip(sizes, sizes[1:], strict=False)
              if "ingest_plus_metrics_s" in a and "ingest_plus_metrics_s" in b]
    if growth:
        lines += ["", "Growth of ingest + metrics: " + "; ".join(growth) + "."]
    for part in (reload_lines(results),
                 payer_lines(results["payer"]) if "runs" in results.get("payer", {})
                 else _old_payer(results.get("payer", {}))):
        lines += ["", *part] if part else []
    s = results["startup"]
    lines += ["", f"Start-up: `outcomes --help` {s['outcomes_help_s']} s; `import pipeline.cli` "
              f"{s['import_cli_s']} s.", "", "<details><summary>Raw figures</summary>", "",
              "```json", json.dumps(results, indent=2), "```", "", "</details>", MARK_END]
    return "\n".join(lines)


def write_markdown(results: dict, target: Path) -> None:
    replace_marked(render(results), MARK_START, MARK_END, target, at_top=True)
