"""`make bench` (part): 12 monthly snapshots of one clinic, each ~1% different from the last.

Month 1 is the demo export; each later month is `revise_export` of the month before (about 1%
of sessions and scores deleted and 1% corrected, 0.5% of payers corrected). Every snapshot is
loaded into one database with the real CLI in its own process; after each load the database
file's size, the load's time and peak RSS, and what the load did are recorded. For scale, the
same final snapshot is also loaded alone into a fresh database. Results go to
BENCHMARKS.md (between the snapshots markers; the rest of the file is left as it is) and
bench-out/snapshots.json.

usage: python bench/snapshot_bench.py [--patients 100000] [--months 12] [--out bench-out]
                                     [--markdown BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from common import (  # bench/ is the script's folder
    BENCHMARKS,
    OUTCOMES,
    ROOT,
    load_counts,
    machine,
    measure,
    replace_marked,
)

from pipeline.demo.revisions import revise_export

MARK_START, MARK_END = "<!-- snapshots -->", "<!-- /snapshots -->"


def run(patients: int, months: int, out: Path) -> dict:
    work = out / f"snapshots-p{patients}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    db = work / "clinic.duckdb"
    export = work / "month-01"
    measure([OUTCOMES, "demo", str(export), "--patients", str(patients), "--seed", "7"])
    rows = []
    for month in range(1, months + 1):
        if month > 1:
            previous, export = export, work / f"month-{month:02d}"
            revise_export(previous, export, seed=month)
            if month > 2:  # keep month 1 and the latest only
                shutil.rmtree(previous)
        m = measure([OUTCOMES, "ingest", str(export), "--db", str(db)])
        rows.append({"month": month, "seconds": round(m.seconds, 2),
                     "peak_rss_mib": round(m.peak_rss_mib),
                     "db_mib": round(db.stat().st_size / 2**20, 1), **load_counts(db, month)})
        print(json.dumps(rows[-1]), flush=True)
    fresh = work / "fresh.duckdb"
    alone = measure([OUTCOMES, "ingest", str(export), "--db", str(fresh)])
    return {"patients": patients, "months": rows,
            "fresh": {"seconds": round(alone.seconds, 2),
                      "db_mib": round(fresh.stat().st_size / 2**20, 1)}}


def markdown(result: dict, when: dict) -> str:
    months = result["months"]
    first, last = months[0], months[-1]
    growth = [b["db_mib"] - a["db_mib"] for a, b in zip(months, months[1:], strict=False)]
    lines = [
        MARK_START,
        f"## Exports over time: {len(months)} monthly snapshots of {result['patients']:,} patients",
        "",
        f"`python bench/snapshot_bench.py` on {when['date']} (part of `make bench`). Month 1 is the "
        "demo export; each later month deletes ~1% of sessions and scores, corrects ~1% of doses "
        "and PHQ-9 totals and ~0.5% of payers (`pipeline/demo/revisions.py`), and is loaded as a "
        "snapshot into the same database with `outcomes ingest`.",
        "",
        "| month | load s | peak RSS MiB | rows read | added | corrected | unchanged | retired "
        "| versions kept | current rows | database MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['month']} | {r['seconds']} | {r['peak_rss_mib']:,} | {r['read']:,} | "
              f"{r['added']:,} | {r['corrected']:,} | {r['unchanged']:,} | {r['retired']:,} | "
              f"{r['versions']:,} | {r['current']:,} | {r['db_mib']} |" for r in months]
    reloads = [r["seconds"] for r in months[1:]]
    lines += [
        "",
        f"- The final snapshot loaded alone into a fresh database: {result['fresh']['seconds']} s, "
        f"{result['fresh']['db_mib']} MiB. After {len(months)} loads the database is "
        f"{last['db_mib']} MiB ({last['db_mib'] / result['fresh']['db_mib']:.2f}× the fresh one); "
        f"a copy per load would be about {len(months)}× ({len(months) * first['db_mib']:.0f} MiB).",
        f"- Growth per monthly load: {min(growth):.1f} to {max(growth):.1f} MiB "
        f"(mean {sum(growth) / len(growth):.1f} MiB), with about "
        f"{sum(r['corrected'] + r['retired'] for r in months[1:]) // max(1, len(months) - 1):,} "
        "rows corrected or retired per month.",
        f"- A reload with ~1% changed takes {min(reloads)}–{max(reloads)} s against "
        f"{first['seconds']} s for the first load ({max(reloads) / first['seconds']:.2f}× at most).",
        MARK_END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--out", default=str(ROOT / "bench-out"))
    parser.add_argument("--markdown", default=str(BENCHMARKS))
    args = parser.parse_args()
    out = Path(args.out)
    result = run(args.patients, args.months, out)
    text = markdown(result, machine())
    (out / "snapshots.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    replace_marked(text, MARK_START, MARK_END, Path(args.markdown))
    print(text)


if __name__ == "__main__":
    main()
