"""Does a change to ingest leave the database exactly as before? Load the same exports, in
order, with a reference revision and with this checkout, and compare every table.

Each export is loaded on top of the previous one (a snapshot sequence), with the same day
of load, into two fresh databases: one written by the reference revision (extracted with
`git archive` into a temporary folder, run with this checkout's Python environment), one by
this checkout. Then every table is compared: the canonical tables, history.<table>_retired,
`changes`, `rejects` and `loads` (without the wall-clock `loaded_at`), by row count and an
order-free hash of every row; the canonical and history tables also by an ordered hash (row
order as stored), reported separately. Exit status 1 when anything differs.

usage: python bench/ingest_regression.py EXPORT [EXPORT ...] [--ref main] [--out DIR]
           [--format canonical|redcap|fhir] [--mapping FILE]
       python bench/ingest_regression.py --compare DB_A DB_B
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
CANONICAL = ("protocols", "patients", "sessions", "assessments", "treatment_history")
ORDERED = (*CANONICAL, *(f"history.{t}_retired" for t in CANONICAL))
TABLES = (*ORDERED, "changes", "rejects", "loads")
LOAD_DAY = "2026-11-28"
LOADER = (
    "import sys; from datetime import date; from pathlib import Path; "
    "from pipeline.config import load_config; from pipeline.ingest.load import ingest; "
    "import pipeline; assert Path(pipeline.__file__).resolve().is_relative_to(Path(sys.argv[3]).resolve()); "
    "ingest(Path(sys.argv[1]), Path(sys.argv[2]), load_config(), today=date.fromisoformat(sys.argv[4]), "
    "source_format=sys.argv[5], mapping=Path(sys.argv[6]) if sys.argv[6] else None)"
)


def fingerprint(db: Path) -> dict[str, tuple[int, int, int]]:
    """Per table: rows, order-free hash of the rows, hash of the rows in stored order
    (0 for tables whose order is not compared)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for table in TABLES:
            columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()
                       if r[0] != "loaded_at"]
            row = "row(" + ", ".join(f'"{c}"' for c in columns) + ")"
            ordered = (f"hash(list(hash({row}) ORDER BY rowid))" if table in ORDERED else "0")
            n, free, order = con.execute(
                f"SELECT count(*), coalesce(sum(hash({row})), 0), {ordered} FROM {table}"
            ).fetchall()[0]
            out[table] = (int(n), int(free), int(order or 0))
        return out
    finally:
        con.close()


def compare(a: Path, b: Path) -> bool:
    fa, fb = fingerprint(a), fingerprint(b)
    same = True
    print(f"{'table':<34} {'rows':>10}  contents  order")
    for table in TABLES:
        (na, ha, oa), (nb, hb, ob) = fa[table], fb[table]
        rows = f"{na}" if na == nb else f"{na}≠{nb}"
        contents = "same" if (na, ha) == (nb, hb) else "DIFFERENT"
        order = "" if table not in ORDERED else ("same" if oa == ob else "different")
        same = same and contents == "same"
        print(f"{table:<34} {rows:>10}  {contents:<9} {order}")
    return same


def reference_tree(rev: str, where: Path) -> Path:
    """The files of revision `rev` (pipeline/, sql/, config), extracted into `where`."""
    archive = where / "ref.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(archive), rev, "pipeline", "sql",
                    "pyproject.toml"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(where / "ref", filter="data")
    return where / "ref"


def load_all(tree: Path, exports: list[Path], db: Path, day: str, source_format: str = "canonical",
             mapping: Path | None = None) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    for export in exports:
        subprocess.run([sys.executable, "-c", LOADER, str(export.resolve()), str(db), str(tree), day,
                        source_format, str(mapping.resolve()) if mapping else ""],
                       check=True, cwd=tree, env=env)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exports", nargs="*", type=Path)
    parser.add_argument("--ref", default="main", help="git revision to compare against")
    parser.add_argument("--out", type=Path, help="keep the two databases in this folder")
    parser.add_argument("--day", default=LOAD_DAY, help="day of load for every load")
    parser.add_argument("--compare", nargs=2, type=Path, metavar="DB", help="only compare")
    parser.add_argument("--format", default="canonical", choices=("canonical", "redcap", "fhir"),
                        help="source format of every export")
    parser.add_argument("--mapping", type=Path, help="mapping file (default: found in the export)")
    args = parser.parse_args()
    if args.compare:
        return 0 if compare(*args.compare) else 1
    if not args.exports:
        parser.error("give at least one export folder")
    with tempfile.TemporaryDirectory(prefix="ingest-regression-") as tmp:
        work = args.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        ref_db, new_db = work / "reference.duckdb", work / "this.duckdb"
        for db in (ref_db, new_db):
            db.unlink(missing_ok=True)
        tree = reference_tree(args.ref, Path(tmp))
        seconds_ref = load_all(tree, args.exports, ref_db, args.day, args.format, args.mapping)
        seconds_new = load_all(ROOT, args.exports, new_db, args.day, args.format, args.mapping)
        print(f"loaded {len(args.exports)} export(s): reference {args.ref} {seconds_ref:.1f} s, "
              f"this checkout {seconds_new:.1f} s")
        same = compare(ref_db, new_db)
    print("identical" if same else "DIFFERENT")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
