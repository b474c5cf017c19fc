"""REDCap files: the flat CSV export (raw values) and the data dictionary, read as plain data.

Every export cell is text (None when empty) with the physical line its record starts on; a line
with the wrong number of fields is kept as a reject for the adapter to report.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.errors import InputError
from pipeline.ingest.adapters.common import Reject
from pipeline.ingest.contract import normalize_column
from pipeline.ingest.csv_text import _sha256, detect_encoding, sniff_delimiter
from pipeline.ingest.readers import STRUCTURAL_REASONS

CHOICE_TYPES = {"dropdown", "radio", "checkbox", "yesno", "truefalse"}
BUILTIN_CHOICES = {"yesno": {"1": "Yes", "0": "No"}, "truefalse": {"1": "True", "0": "False"}}
DICTIONARY_COLUMNS = {
    "field": "variable / field name",
    "form": "form name",
    "type": "field type",
    "choices": "choices, calculations, or slider labels",
}

@dataclass(frozen=True)
class Field:
    name: str
    form: str
    type: str
    choices: dict[str, str]  # raw code -> label


@dataclass(frozen=True)
class Export:
    path: Path
    frame: pl.DataFrame  # __line + every export column as text (None for an empty cell)
    malformed: list[Reject]
    sha256: str


# ---------------------------------------------------------------- files


def _read_csv_text(path: Path) -> tuple[str, str]:
    encoding = detect_encoding(path)
    data = path.read_bytes().decode(encoding)
    return data.lstrip("\ufeff"), encoding


def _header(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
        first = f.readline().rstrip("\r\n")
    return [normalize_column(h) for h in next(csv.reader([first], delimiter=sniff_delimiter(first)))]


def _parse_choices(raw: str | None, field_type: str) -> dict[str, str]:
    """`1, Completed | 2, Aborted` -> {"1": "Completed", "2": "Aborted"} (labels may hold commas)."""
    if field_type in BUILTIN_CHOICES:
        return dict(BUILTIN_CHOICES[field_type])
    choices: dict[str, str] = {}
    for part in (raw or "").split("|"):
        if part.strip():
            code, _, label = part.partition(",")
            choices[code.strip()] = label.strip() or code.strip()
    return choices


def read_dictionary(path: Path) -> dict[str, Field]:
    text, _ = _read_csv_text(path)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(text.split("\n")[0])))
    if not rows:
        raise InputError(f"{path.name}: the data dictionary is empty")
    header = [normalize_column(h) for h in rows[0]]
    missing = [v for k, v in DICTIONARY_COLUMNS.items() if v not in header and k != "choices"]
    if missing:
        raise InputError(f"{path.name}: not a REDCap data dictionary; missing column(s) "
                         f"{', '.join(repr(m) for m in missing)}")
    at = {k: header.index(v) if v in header else None for k, v in DICTIONARY_COLUMNS.items()}
    fields: dict[str, Field] = {}
    for row in rows[1:]:
        if not any(c.strip() for c in row):
            continue
        cell = {k: (row[i].strip() if i is not None and i < len(row) else "") for k, i in at.items()}
        kind = cell["type"].lower()
        fields[cell["field"].lower()] = Field(
            cell["field"].lower(), cell["form"].lower(), kind,
            _parse_choices(cell["choices"], kind) if kind in CHOICE_TYPES else {},
        )
    if not fields:
        raise InputError(f"{path.name}: the data dictionary lists no fields")
    return fields


def read_export(path: Path) -> Export:
    """Every cell as text with the physical line each record starts on (header = line 1)."""
    text, _ = _read_csv_text(path)
    first = text.split("\n", 1)[0].rstrip("\r")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(first), strict=True)
    try:
        header = [normalize_column(h) for h in next(reader)]
    except StopIteration as exc:
        raise InputError(f"{path.name}: the export is empty; export it again with its header") from exc
    width = len(header)
    lines: list[int] = []
    rows: list[list[str | None]] = []
    malformed: list[Reject] = []
    start = reader.line_num + 1
    try:
        for row in reader:
            if row:
                if len(row) == width:
                    lines.append(start)
                    rows.append([v if v.strip() != "" else None for v in row])
                else:
                    kind = "MISSING COLUMNS" if len(row) < width else "TOO MANY COLUMNS"
                    malformed.append((start, None, ",".join(row)[:200], STRUCTURAL_REASONS[kind]))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"{path.name}: line {start}: {exc}; a quoted field that opens here is "
                         "never closed, so every later line would be lost") from exc
    columns = {"__line": pl.Series(lines, dtype=pl.Int64)}
    for i, name in enumerate(header):
        columns[name] = pl.Series([r[i] for r in rows], dtype=pl.String)
    return Export(path, pl.DataFrame(columns), malformed, _sha256(path))


def find_files(data_dir: Path, settings: dict[str, Any], mapping_path: Path) -> tuple[Path, Path]:
    def named(key: str) -> Path | None:
        if key not in settings:
            return None
        path = data_dir / str(settings[key])
        if not path.is_file():
            raise InputError(f"{mapping_path}: [redcap] {key} = {settings[key]!r} is not a file in "
                             f"{data_dir}")
        return path

    csvs = [p for p in sorted(data_dir.iterdir()) if p.is_file() and p.suffix.lower() == ".csv"]
    dictionary = named("dictionary")
    if dictionary is None:
        found = [p for p in csvs if DICTIONARY_COLUMNS["field"] in _header(p)]
        if len(found) != 1:
            raise InputError(f"{data_dir}: {'no' if not found else 'more than one'} REDCap data "
                             "dictionary (a CSV with a 'Variable / Field Name' column); name it "
                             "as dictionary under [redcap] in the mapping")
        dictionary = found[0]
    export = named("export")
    if export is None:
        found = [p for p in csvs if p != dictionary and p.stem.lower() != "protocols"
                 and DICTIONARY_COLUMNS["field"] not in _header(p)
                 and ({"redcap_event_name", "redcap_repeat_instrument"} & set(_header(p))
                      or _header(p)[:1] == [next(iter(read_dictionary(dictionary)))])]
        if len(found) != 1:
            raise InputError(f"{data_dir}: {'no' if not found else 'more than one'} REDCap export "
                             "CSV found; name it as export under [redcap] in the mapping")
        export = found[0]
    return dictionary, export
