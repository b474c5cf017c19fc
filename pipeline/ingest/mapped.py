"""EHR exports read through a mapping file (README "Loading your EHR's export").

A mapped file is read by its own header (`readers.stage_file` with a HeaderSpec naming the
export's columns). One set-based step over whole columns (DuckDB SQL, sql/mapping/) then joins
multi-column sources, applies value maps and strptime formats, and leaves `raw` holding the
canonical columns by position, as a canonical file would. A value missing from its value map, or
not matching its format, is rejected at its line naming the export's column; every other row
meets the canonical validation, duplicate, snapshot and reject rules, and those rejects are
relabelled with the export's column names and original values (`name_source_columns`).

A wide score sheet becomes one load unit per instrument column (like a REDCap form): the rows
whose cell for that instrument is filled. The file is read once and shared by its units.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from fnmatch import fnmatch
from functools import partial
from pathlib import Path

import duckdb
import pyarrow as pa

from pipeline.config import Config
from pipeline.db import run
from pipeline.errors import InputError
from pipeline.ingest.adapters.common import protocol_units
from pipeline.ingest.contract import (
    CONTRACTS,
    FORMATS,
    ITEM_COLUMN,
    TABLES,
    ColumnMap,
    HeaderSpec,
    contract_header,
    normalize_column,
)
from pipeline.ingest.mapping_file import Mapping, Source, TableMapping, has_time, read_mapping, value_key
from pipeline.ingest.readers import Staged, stage_file
from pipeline.ingest.units import LoadUnit
from pipeline.paths import sql

ISO_DATE, ISO_TIME = "%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"
LISTED = 8  # export values a reject reason lists
_tags = itertools.count(1)


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Output:
    """One column of the staged rows: a canonical column and the export column(s) filling it."""

    column: str
    source: Source
    positions: tuple[int, ...] = ()


@dataclass
class FilePlan:
    """What to read from one mapped file; `match` resolves the export header to positions."""

    path: Path
    mapping: Mapping
    table: TableMapping
    sources: dict[str, Source]  # output name -> export column(s)
    fallback: bool  # unmapped canonical columns are read by their canonical names
    outputs: list[Output] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)  # export columns nothing reads

    @property
    def where(self) -> str:
        return f"[{self.table.table}.wide]" if self.table.wide else f"[{self.table.table}.columns]"

    def header(self) -> HeaderSpec:
        names = tuple(dict.fromkeys(normalize_column(c) for s in self.sources.values()
                                    for c in s.columns))
        numeric = CONTRACTS[self.table.table].numeric
        number_names = tuple(normalize_column(c) for out, s in self.sources.items()
                             if out in numeric or out.startswith(("item_", "score:"))
                             for c in s.columns)
        return HeaderSpec(names, number_names, self.match)

    def match(self, label: str, header: list[str]) -> ColumnMap:
        names = [normalize_column(h) if h is not None else "" for h in header]
        positions: dict[str, int] = {}
        for pos, name in enumerate(names):
            positions.setdefault(name, pos)
        wanted = {normalize_column(c) for s in self.sources.values() for c in s.columns}
        for name in wanted:
            if names.count(name) > 1:
                first, second = [i for i, n in enumerate(names) if n == name][:2]
                raise InputError(
                    f"{label}: columns {first + 1} and {second + 1} are both named {name!r}, which "
                    f"{self.mapping.path.name} maps; rename one of them and load again")
        missing = [(out, c) for out, s in self.sources.items() for c in s.columns
                   if normalize_column(c) not in positions]
        if missing:
            out, column = missing[0]
            if len(missing) == len(wanted):
                seen = "(the first line names none of the mapped columns: is the header row missing?)"
            else:
                seen = f"(found: {', '.join(h.strip() for h in header if h) or 'nothing'})"
            key = f'scores."{out[6:]}"' if out.startswith("score:") else out
            raise InputError(
                f"{label}: column {column.strip()!r} is not in the file's header, but "
                f"{self.mapping.path.name} {self.where} {key} names it {seen}; correct the "
                "mapping or export that column")
        sources = dict(self.sources)
        if self.fallback:
            contract = CONTRACTS[self.table.table]
            used = {normalize_column(c) for s in sources.values() for c in s.columns}
            for pos, name in enumerate(names):
                item = ITEM_COLUMN.fullmatch(name) if contract.has_items else None
                if ((name in contract.columns or item) and name not in sources and name not in used
                        and positions.get(name) == pos):
                    sources[name] = Source((header[pos],))
            absent = [c for c in contract.required if c not in sources]
            if absent:
                raise InputError(
                    f"{label}: required column{'s' if len(absent) > 1 else ''} "
                    f"{', '.join(absent)} missing: the file has no column of that name and "
                    f"{self.mapping.path.name} maps none; add "
                    + ", ".join(f'{c} = "<export column>"' for c in absent)
                    + f" under [{self.table.table}.columns]")
        self.outputs = [Output(out, s, tuple(positions[normalize_column(c)] for c in s.columns))
                        for out, s in sources.items()]
        read = {p for o in self.outputs for p in o.positions}
        self.unused = [header[pos].strip() for pos, n in enumerate(names) if n and pos not in read]
        return ColumnMap(positions, {}, ())

    def unused_note(self) -> list[str]:
        if not self.unused:
            return []
        return [f"columns not in {self.mapping.path.name}, not loaded: {', '.join(self.unused)}"]


# ---------------------------------------------------------------- the set-based mapping step


def _reason_value(tm: TableMapping, column: str, mapping_name: str) -> str:
    listed = list(tm.values[column])
    shown = ", ".join(listed[:LISTED]) + (f" and {len(listed) - LISTED} more"
                                          if len(listed) > LISTED else "")
    return (f"value not listed under [{tm.table}.values.{column}] in {mapping_name}; add it "
            f"there with its canonical value (listed: {shown})")


def _reason_format(tm: TableMapping, column: str, mapping_name: str) -> str:
    return (f"does not match the date format that {mapping_name} gives for {column} "
            f"([{tm.table}.formats]); correct the value or the format "
            f"({' or '.join(tm.formats[column])})")


def _expressions(o: Output, j: int, tm: TableMapping) -> tuple[str, str, str]:
    """(source text, after the value map, after the format) for output j, as SQL."""
    if len(o.positions) == 1:
        src = f"c{o.positions[0]}"
    else:
        src = "nullif(concat_ws(' ', " + ", ".join(f"clean(c{p})" for p in o.positions) + "), '')"
    mapped = f"s{j}"
    if o.column in tm.values:
        cases = " ".join(f"WHEN {_lit(value_key(k))} THEN {_lit(v)}"
                         for k, v in tm.values[o.column].items())
        mapped = f"CASE WHEN blank(s{j}) THEN NULL ELSE CASE lower(strip(s{j})) {cases} END END"
    parsed = f"m{j}"
    if o.column in tm.formats:
        cases = " ".join(
            f"WHEN try_strptime(strip(m{j}), {_lit(f)}) IS NOT NULL "
            f"THEN strftime(try_strptime(strip(m{j}), {_lit(f)}), "
            f"{_lit(ISO_TIME if has_time(f) else ISO_DATE)})"
            for f in tm.formats[o.column])
        parsed = f"CASE {cases} END"
    return src, mapped, parsed


def apply_mapping(con: duckdb.DuckDBPyConnection, outputs: list[Output], tm: TableMapping,
                  mapping_name: str) -> None:
    """raw (export columns) -> mapped_rows (s/m/v per output), mapping_rejects, mapped_original."""
    exprs = [_expressions(o, j, tm) for j, o in enumerate(outputs)]
    src = ", ".join(f"{e[0]} AS s{j}" for j, e in enumerate(exprs))
    mapped = ", ".join(f"{e[1]} AS m{j}" for j, e in enumerate(exprs))
    parsed = ", ".join(f"{e[2]} AS v{j}" for j, e in enumerate(exprs))
    run(con, f"CREATE OR REPLACE TEMP TABLE mapped_rows AS "
             f"WITH src AS (SELECT __line, {src} FROM raw), "
             f"coded AS (SELECT *, {mapped} FROM src) "
             f"SELECT *, {parsed} FROM coded")
    checks, originals = [], []
    for j, o in enumerate(outputs):
        label = _lit(o.source.label)
        if o.column in tm.values:
            checks.append(f"SELECT __line, {label}, s{j}, {_lit(_reason_value(tm, o.column, mapping_name))} "
                          f"FROM mapped_rows WHERE NOT blank(s{j}) AND m{j} IS NULL")
        if o.column in tm.formats:
            checks.append(f"SELECT __line, {label}, s{j}, {_lit(_reason_format(tm, o.column, mapping_name))} "
                          f"FROM mapped_rows WHERE NOT blank(m{j}) AND v{j} IS NULL")
        if o.column in tm.values or o.column in tm.formats or len(o.positions) > 1:
            originals.append(f"SELECT __line, {_lit(o.column)}, s{j} FROM mapped_rows "
                             f"WHERE s{j} IS DISTINCT FROM v{j} AND s{j} IS NOT NULL")
    run(con, sql("mapping/tables.sql"))
    if checks:
        run(con, "INSERT INTO mapping_rejects " + " UNION ALL ".join(checks))
    if originals:
        run(con, "INSERT INTO mapped_original " + " UNION ALL ".join(originals))


def name_source_columns(con: duckdb.DuckDBPyConnection, staged: Staged) -> None:
    """Rejects of a mapped file name the export's columns and show its values as written."""
    names = staged.source_columns
    con.register("source_names_arrow", pa.table({"canonical": list(names),
                                                 "source": list(names.values())}))
    run(con, "CREATE OR REPLACE TEMP TABLE source_names AS SELECT * FROM source_names_arrow")
    con.unregister("source_names_arrow")
    run(con, sql("mapping/name_columns.sql"))


# ---------------------------------------------------------------- long files


def _stage_long(con: duckdb.DuckDBPyConnection, work_dir: Path, *, plan: FilePlan) -> Staged:
    name = plan.mapping.path.name
    inner = stage_file(con, plan.path, plan.header(), plan.path.name, work_dir,
                       tag=plan.table.table)
    outputs = plan.outputs
    apply_mapping(con, outputs, plan.table, name)
    run(con, "INSERT INTO stage_rejects SELECT * FROM mapping_rejects")
    # deleted rather than filtered by a join, which would not keep the line order (readers.py)
    run(con, "DELETE FROM mapped_rows WHERE __line IN (SELECT line FROM mapping_rejects)")
    select = ", ".join(f"v{j} AS c{j}" for j in range(len(outputs)))
    run(con, f"CREATE OR REPLACE TEMP VIEW raw AS SELECT __line, {select} FROM mapped_rows")
    items = {int(m.group(1)): j for j, o in enumerate(outputs)
             if (m := ITEM_COLUMN.fullmatch(o.column))}
    positions = {o.column: j for j, o in enumerate(outputs) if not ITEM_COLUMN.fullmatch(o.column)}
    columns = ColumnMap(positions, items, ())
    notes = [*inner.notes, f"columns mapped by {name}", *plan.unused_note()]
    return replace(inner, columns=columns, notes=notes,
                   source_columns={o.column: o.source.label for o in outputs},
                   source_values="mapped_original")


# ---------------------------------------------------------------- wide score sheets


class WideSheet:
    """One wide file: read and mapped once (by its first unit), then sliced per instrument."""

    def __init__(self, plan: FilePlan) -> None:
        self.plan = plan
        self.tag = f"wide_{next(_tags)}"
        self.inner: Staged | None = None
        self.empty_rows = 0

    def _read(self, con: duckdb.DuckDBPyConnection, work_dir: Path) -> Staged:
        plan = self.plan
        inner = stage_file(con, plan.path, plan.header(), plan.path.name, work_dir, tag="assessments")
        apply_mapping(con, plan.outputs, plan.table, plan.mapping.path.name)
        t = self.tag
        scores = [j for j, o in enumerate(plan.outputs) if o.column.startswith("score:")]
        run(con, f"CREATE OR REPLACE TEMP TABLE {t}_rows AS SELECT * FROM mapped_rows; "
                 f"CREATE OR REPLACE TEMP TABLE {t}_structural AS SELECT * FROM stage_rejects; "
                 f"CREATE OR REPLACE TEMP TABLE {t}_rejects AS SELECT * FROM mapping_rejects; "
                 f"CREATE OR REPLACE TEMP TABLE {t}_original AS SELECT * FROM mapped_original; "
                 # marked rather than filtered by a join, which would not keep the line order
                 f"ALTER TABLE {t}_rows ADD COLUMN __rejected BOOLEAN DEFAULT false; "
                 f"UPDATE {t}_rows SET __rejected = true "
                 f"WHERE __line IN (SELECT line FROM {t}_rejects)")
        none = " AND ".join(f"blank(s{j})" for j in scores)
        self.empty_rows = int(con.execute(f"SELECT count(*) FROM {t}_rows WHERE {none}")
                              .fetchall()[0][0])
        return inner

    def stage(self, con: duckdb.DuckDBPyConnection, work_dir: Path, *, instrument: str) -> Staged:
        first = self.inner is None
        if self.inner is None:
            self.inner = self._read(con, work_dir)
        plan, t = self.plan, self.tag
        q = next(j for j, o in enumerate(plan.outputs) if o.column == f"score:{instrument}")
        common = [(j, o) for j, o in enumerate(plan.outputs) if not o.column.startswith("score:")]
        cells = [f"v{j} AS c{k}" for k, (j, _) in enumerate(common)]
        n = len(common)
        run(con, f"CREATE OR REPLACE TEMP TABLE stage_rejects AS "
                 f"SELECT * FROM {t}_structural WHERE {str(first).lower()} UNION ALL "
                 f"SELECT r.* FROM {t}_rejects r JOIN {t}_rows w ON w.__line = r.line "
                 f"WHERE NOT blank(w.s{q}); "
                 f"CREATE OR REPLACE TEMP TABLE mapped_original AS SELECT * FROM {t}_original; "
                 f"CREATE OR REPLACE TEMP VIEW raw AS SELECT __line, {', '.join(cells)}, "
                 f"{_lit(instrument)} AS c{n}, s{q} AS c{n + 1} FROM {t}_rows "
                 f"WHERE NOT blank(s{q}) AND NOT __rejected")
        column = plan.sources[f"score:{instrument}"].label
        positions = {o.column: k for k, (_, o) in enumerate(common)}
        positions.update(instrument=n, total_score=n + 1)
        notes = [f"wide score sheet mapped by {plan.mapping.path.name}: column {column!r} -> "
                 f"{instrument} (an empty cell is a score not taken)"]
        if first:
            notes = [*self.inner.notes, *notes, *plan.unused_note()]
            if self.empty_rows:
                notes.append(f"{self.empty_rows} rows hold no score (every score cell empty); "
                             "nothing to load from them")
        names = {o.column: o.source.label for _, o in common}
        names.update(instrument=column, total_score=column)
        return replace(self.inner, columns=ColumnMap(positions, {}, ()), notes=notes,
                       source_columns=names, source_values="mapped_original")


def _wide_units(plan: FilePlan) -> list[LoadUnit]:
    sheet = WideSheet(plan)
    contract = CONTRACTS["assessments"]
    return [LoadUnit(plan.path.name, contract, partial(sheet.stage, instrument=name))
            for name in plan.table.wide.scores] if plan.table.wide else []


# ---------------------------------------------------------------- files and units


def _plan(path: Path, mapping: Mapping, tm: TableMapping) -> FilePlan:
    if tm.wide is not None:
        sources = dict(tm.wide.columns)
        sources.update({f"score:{name}": Source((column,)) for name, column in tm.wide.scores.items()})
        return FilePlan(path, mapping, tm, sources, fallback=False)
    return FilePlan(path, mapping, tm, dict(tm.columns), fallback=True)


def _candidates(data_dir: Path, mapping: Mapping) -> list[Path]:
    return [p for p in sorted(data_dir.iterdir())
            if p.is_file() and not p.name.startswith(".")
            and p.resolve() != mapping.path.resolve()]


def _table_files(data_dir: Path, mapping: Mapping, table: str, entries: list[Path]) -> list[Path]:
    tm = mapping.tables.get(table)
    if tm is not None and tm.files is not None:
        hits = [p for p in entries if fnmatch(p.name.lower(), tm.files.lower())]
        if not hits:
            raise InputError(f"{mapping.path}: [files] {table} = {tm.files!r} matches no file in "
                             f"{data_dir}; correct the name or pattern")
        return hits
    hits = [p for p in entries if p.stem.lower() == table and p.suffix.lower() in FORMATS]
    if len(hits) > 1:
        raise InputError(f"{data_dir}: {', '.join(p.name for p in hits)} are all '{table}' files; "
                         "keep one of them and load again")
    if tm is not None and not hits:
        raise InputError(f"{mapping.path}: [{table}] maps the {table} table, but {data_dir} has no "
                         f"{table}.csv/.xlsx/.parquet; name its file under [files], e.g. "
                         f'{table} = "<file name>"')
    return hits


def mapped_units(data_dir: Path, config: Config, mapping_path: Path
                 ) -> tuple[list[LoadUnit], list[str]]:
    """Load units for an export read through `mapping_path`; and the names of files not used."""
    mapping = read_mapping(mapping_path, config)
    entries = _candidates(data_dir, mapping)
    taken: dict[Path, str] = {}
    units: list[LoadUnit] = []
    for contract in TABLES:
        table = contract.name
        if table == "protocols" and table not in mapping.tables:
            found, path = protocol_units(data_dir, mapping.spec, mapping.path, "toml")
            units += found
            if path is not None:
                taken[path] = table
            continue
        tm = mapping.tables.get(table)
        for path in _table_files(data_dir, mapping, table, entries):
            if path in taken:
                raise InputError(f"{mapping.path}: {path.name} is matched for both {taken[path]} "
                                 f"and {table}; make the [files] patterns name one table each")
            taken[path] = table
            if tm is None:
                header = contract_header(contract)
                units.append(LoadUnit(path.name, contract, partial(
                    _stage_canonical, path=path, header=header, tag=table)))
            elif tm.wide is not None:
                units += _wide_units(_plan(path, mapping, tm))
            else:
                units.append(LoadUnit(path.name, contract,
                                      partial(_stage_long, plan=_plan(path, mapping, tm))))
    if not units:
        raise InputError(f"{data_dir}: no export files found for {mapping.path.name}; check "
                         "[files] and the folder")
    ignored = [p.name for p in entries if p not in taken]
    return units, ignored


def _stage_canonical(con: duckdb.DuckDBPyConnection, work_dir: Path, *, path: Path,
                     header: HeaderSpec, tag: str) -> Staged:
    return stage_file(con, path, header, path.name, work_dir, tag=tag, direct=True)

