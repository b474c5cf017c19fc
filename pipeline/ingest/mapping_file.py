"""The mapping file of an EHR export (README "Loading your EHR's export"), read and checked.

`mapping.toml` says which file holds which canonical table (`[files]`), which export column(s)
fill each canonical column (`[<table>.columns]`), the strptime format of date columns
(`[<table>.formats]`), export values -> canonical values (`[<table>.values.<column>]`) and, for
scores, a wide sheet with one column per instrument (`[assessments.wide]`). Every mistake in the
file stops the load with one line naming the key and what to write instead.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipeline.config import Config
from pipeline.errors import InputError
from pipeline.ingest.adapters.common import load_mapping
from pipeline.ingest.contract import CONTRACTS, ITEM_COLUMN, TABLES
from pipeline.instruments import alias_table, normalize_key

MAPPING_NAME = "mapping.toml"
SECTION_KEYS = ("columns", "formats", "values", "wide")
WIDE_KEYS = ("patient_id", "administered_at", "session_id", "timing", "scores")
DATE_COLUMNS = {
    "protocols": (),
    "patients": ("birth_date",),
    "sessions": ("started_at",),
    "assessments": ("administered_at",),
    "treatment_history": ("start_date", "end_date"),
}
# Canonical values a value map may write for coded columns (the loader's own spellings).
CHOICES = {
    ("sessions", "status"): ("completed", "aborted", "cancelled"),
    ("assessments", "timing"): ("pre", "post", "followup"),
    ("treatment_history", "episode"): ("current", "prior"),
    ("treatment_history", "adequate_dose"): ("yes", "no"),
}
YEAR = re.compile(r"%[YyG]")
TIME = re.compile(r"%[HIMSpTRrXc]")


@dataclass(frozen=True)
class Source:
    """The export column(s) that fill one canonical column; several are joined with a space."""

    columns: tuple[str, ...]

    @property
    def label(self) -> str:
        """How rejects name it: the export's own column name(s)."""
        return " + ".join(c.strip() for c in self.columns)


@dataclass(frozen=True)
class Wide:
    """A score sheet: one row per visit, one column per instrument (empty cell = not given)."""

    columns: dict[str, Source]  # patient_id, administered_at, optional session_id, timing
    scores: dict[str, str]  # registry instrument name -> export column


@dataclass(frozen=True)
class TableMapping:
    table: str
    files: str | None  # glob in DATA_DIR; None = the table's canonical file name
    columns: dict[str, Source] = field(default_factory=dict)  # canonical column -> source
    formats: dict[str, tuple[str, ...]] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)  # column -> {key: value}
    wide: Wide | None = None
    has_columns: bool = False  # a [<table>.columns] section was given


@dataclass(frozen=True)
class Mapping:
    path: Path
    tables: dict[str, TableMapping]
    spec: dict[str, Any]  # the TOML as read ([[protocols]] entries are taken from it)


def value_key(value: str) -> str:
    """Export values are matched without surrounding spaces and case ("checked out")."""
    return value.strip().lower()


def _fail(path: Path, where: str, message: str) -> InputError:
    return InputError(f"{path}: {where}: {message}")


def _unknown(path: Path, where: str, key: str, known: list[str] | tuple[str, ...]) -> InputError:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return _fail(path, where, f"unknown key {key!r}; {hint}known keys: {', '.join(known)}")


def _table(path: Path, where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(path, where, "must be a table ([...] section or { ... })")
    return value


def _source(path: Path, where: str, value: Any) -> Source:
    names = value if isinstance(value, list) else [value]
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise _fail(path, where, 'must name an export column ("Patient MRN") or a list of '
                    'columns joined with a space (["Date of Service", "Start Time"])')
    return Source(tuple(names))


def _check_format(path: Path, where: str, fmt: Any) -> str:
    if not isinstance(fmt, str) or not fmt.strip():
        raise _fail(path, where, 'must be a strptime format such as "%m/%d/%Y %I:%M %p"')
    if not YEAR.search(fmt):
        raise _fail(path, where, f"format {fmt!r} has no year (%Y or %y); a date needs one")
    if "%z" in fmt or "%Z" in fmt:
        raise _fail(path, where, f"format {fmt!r} reads a UTC offset or zone; leave it out: "
                    "times are clinic-local (README), write the offset part as literal text")
    try:
        duckdb.execute(f"SELECT try_strptime('', {_literal(fmt)})").fetchall()
    except duckdb.Error as exc:
        reason = str(exc).split(":", 1)[-1].strip()
        raise _fail(path, where, f"format {fmt!r} is not a strptime format ({reason})") from exc
    return fmt


def _literal(text: str) -> str:
    """A SQL string literal (the mapping's own text, quotes doubled)."""
    return "'" + text.replace("'", "''") + "'"


def has_time(fmt: str) -> bool:
    return bool(TIME.search(fmt))


def _formats(path: Path, table: str, section: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    out = {}
    for column, value in section.items():
        where = f"[{table}.formats] {column}"
        if column not in DATE_COLUMNS[table]:
            dates = ", ".join(DATE_COLUMNS[table]) or "none"
            raise _fail(path, where, f"only date columns take a format (in {table}: {dates})")
        formats = value if isinstance(value, list) else [value]
        if not formats:
            raise _fail(path, where, "give at least one format")
        out[column] = tuple(_check_format(path, where, f) for f in formats)
    return out


def _values(path: Path, table: str, section: dict[str, Any], columns: tuple[str, ...],
            instruments: dict[str, str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for column, table_of_values in section.items():
        where = f"[{table}.values.{column}]"
        if column not in columns:
            raise _unknown(path, f"[{table}.values]", column, columns)
        entries = _table(path, where, table_of_values)
        if not entries:
            raise _fail(path, where, "lists no values")
        seen: dict[str, str] = {}
        choices = CHOICES.get((table, column))
        for key, value in entries.items():
            if not isinstance(value, str) or not value.strip():
                hint = f" ({', '.join(choices)})" if choices else ""
                raise _fail(path, where, f"{key!r} = {value!r}: write the canonical value{hint} "
                            "in quotes")
            if choices and value.strip().lower() not in choices:
                raise _fail(path, where, f"{key!r} = {value!r} is not a {column}; use "
                            f"{', '.join(choices)}")
            if column == "instrument" and normalize_key(value) not in instruments:
                raise _fail(path, where, f"{key!r} = {value!r} is not in the instrument registry; "
                            "add it under [instruments] in the config")
            k = value_key(key)
            if k in seen and seen[k] != value:
                raise _fail(path, where, f"{key!r} is listed twice with different values (export "
                            "values are matched without case and surrounding spaces)")
            seen[k] = value
        out[column] = {str(k): v.strip() for k, v in entries.items()}
    return out


def _wide(path: Path, section: dict[str, Any], instruments: dict[str, str]) -> Wide:
    for key in section:
        if key not in WIDE_KEYS:
            raise _unknown(path, "[assessments.wide]", key, WIDE_KEYS)
    for key in ("patient_id", "administered_at", "scores"):
        if key not in section:
            raise _fail(path, "[assessments.wide]", f"needs {key} (a wide sheet has "
                        "patient_id, administered_at and scores = { \"PHQ-9\" = \"<column>\" })")
    columns = {k: _source(path, f"[assessments.wide] {k}", v)
               for k, v in section.items() if k != "scores"}
    scores_in = _table(path, "[assessments.wide] scores", section["scores"])
    if not scores_in:
        raise _fail(path, "[assessments.wide] scores", "names no instrument")
    scores: dict[str, str] = {}
    for name, column in scores_in.items():
        where = f'[assessments.wide] scores."{name}"'
        canonical = instruments.get(normalize_key(name))
        if canonical is None:
            raise _fail(path, where, "not in the instrument registry; add it under [instruments] "
                        "in the config")
        if canonical in scores:
            raise _fail(path, where, f"{canonical} is listed twice")
        if not isinstance(column, str) or not column.strip():
            raise _fail(path, where, "must name the export column holding its scores")
        scores[canonical] = column
    return Wide(columns, scores)


def _columns(path: Path, table: str, section: dict[str, Any]) -> dict[str, Source]:
    contract = CONTRACTS[table]
    known = contract.columns
    out = {}
    for column, value in section.items():
        item = ITEM_COLUMN.fullmatch(column) if contract.has_items else None
        if column not in known and not (item and int(item.group(1)) >= 1):
            listed = (*known, "item_1 … item_N") if contract.has_items else known
            raise _unknown(path, f"[{table}.columns]", column, listed)
        out[column] = _source(path, f"[{table}.columns] {column}", value)
    missing = [c for c in contract.required if c not in out]
    if missing:
        raise _fail(path, f"[{table}.columns]", f"lacks the required column"
                    f"{'s' if len(missing) > 1 else ''} {', '.join(missing)}; add "
                    + ", ".join(f'{c} = "<export column>"' for c in missing))
    return out


def _table_mapping(path: Path, table: str, section: dict[str, Any], files: dict[str, Any],
                   instruments: dict[str, str]) -> TableMapping:
    section = _table(path, f"[{table}]", section)
    known = SECTION_KEYS if table == "assessments" else SECTION_KEYS[:3]
    for key in section:
        if key not in known:
            raise _unknown(path, f"[{table}]", key, known)
    if "wide" in section and "columns" in section:
        raise _fail(path, "[assessments]", "a file is either long ([assessments.columns]) or a "
                    "wide score sheet ([assessments.wide]), not both")
    wide = _wide(path, _table(path, "[assessments.wide]", section["wide"]), instruments) \
        if "wide" in section else None
    columns = _columns(path, table, _table(path, f"[{table}.columns]", section["columns"])) \
        if "columns" in section else {}
    formats = _formats(path, table, _table(path, f"[{table}.formats]", section.get("formats", {})))
    value_columns = ("session_id", "timing") if wide else CONTRACTS[table].columns
    values = _values(path, table, _table(path, f"[{table}.values]", section.get("values", {})),
                     value_columns, instruments)
    return TableMapping(table, files.get(table), columns, formats, values, wide,
                        has_columns="columns" in section)


def read_mapping(path: Path, config: Config) -> Mapping:
    """The mapping file, checked against the contract and the instrument registry."""
    spec = load_mapping(path, "export")
    names = [t.name for t in TABLES]
    known = ("files", *names)
    for key in spec:
        if key not in known:
            raise _unknown(path, "the mapping", key, known)
    files = _table(path, "[files]", spec.get("files", {}))
    for table, glob in files.items():
        if table not in names:
            raise _unknown(path, "[files]", table, names)
        if not isinstance(glob, str) or not glob.strip():
            raise _fail(path, f"[files] {table}", 'must be a file name or pattern ("Appointments*.csv")')
        if "/" in glob or "\\" in glob:
            raise _fail(path, f"[files] {table}", f"{glob!r} is a path; name a file in the export "
                        "folder (patterns such as * are allowed)")
    if isinstance(spec.get("protocols"), list) and "protocols" in files:
        raise _fail(path, "[files] protocols", "protocols are also listed as [[protocols]] in the "
                    "mapping; keep one of the two")
    instruments = alias_table(config.instruments)
    tables: dict[str, TableMapping] = {}
    for table in names:
        section = spec.get(table)
        if table == "protocols" and isinstance(section, list):
            section = None  # [[protocols]] rows in the mapping (pipeline/ingest/adapters/common.py)
        if section is not None:
            tables[table] = _table_mapping(path, table, section, files, instruments)
        elif table in files:
            tables[table] = TableMapping(table, files[table])
    return Mapping(path, tables, spec)
