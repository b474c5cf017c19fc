"""Shared by the REDCap and FHIR adapters: the mapping file, protocol units, and arrow-built units.

An adapter turns source records into rows with canonical column names, each carrying the line
of the source file it came from (`__line`), and hands them to `readers.stage_arrow`. Rows it
cannot map at all become stage rejects at their line; what it skips on purpose (unknown
resource types, forms not in the mapping) is counted in the unit's notes.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from pipeline.errors import InputError
from pipeline.ingest.contract import CONTRACTS, FORMATS, TableContract, contract_header
from pipeline.ingest.csv_text import _sha256
from pipeline.ingest.readers import Staged, stage_arrow, stage_file
from pipeline.ingest.units import LoadUnit

Reject = tuple[int, str | None, str | None, str]  # line, column, value, reason


def load_mapping(path: Path | None, label: str) -> dict[str, Any]:
    """The mapping TOML as a dict ({} when there is none); a broken file stops the load."""
    if path is None:
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except OSError as exc:
        raise InputError(f"{path}: the {label} mapping cannot be read ({exc.strerror})") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: the {label} mapping is not valid TOML ({exc})") from exc


def check_keys(section: dict[str, Any], known: Iterable[str], where: str, source: Path | None) -> None:
    """Unknown keys are an error, as in the config: a typo must not silently map nothing."""
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise InputError(
            f"{source or 'mapping'}: {where} has unknown key(s) {', '.join(unknown)}; "
            f"known keys: {', '.join(sorted(known))}"
        )


def default_mapping(data_dir: Path, mapping: Path | None, default_name: str) -> Path | None:
    """--mapping wins; else `default_name` in DATA_DIR when it exists."""
    if mapping is not None:
        return mapping
    candidate = data_dir / default_name
    return candidate if candidate.is_file() else None


@dataclass
class Rows:
    """Canonical rows for one unit: `__line` (line in the source file) + values as text."""

    contract: TableContract
    lines: list[int] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, line: int, row: dict[str, Any]) -> None:
        self.lines.append(line)
        self.records.append(row)

    def __len__(self) -> int:
        return len(self.lines)

    def table(self) -> pa.Table:
        present = {name for record in self.records for name in record}
        names = [c for c in self.contract.columns if c in present or c in self.contract.required]
        items = sorted((c for c in present if c.startswith("item_")), key=lambda c: int(c[5:]))
        data: dict[str, pa.Array] = {"__line": pa.array(self.lines, pa.int64())}
        for name in [*names, *items]:
            data[name] = pa.array(
                [None if (v := r.get(name)) is None else text(v) for r in self.records], pa.string()
            )
        return pa.table(data)


def text(value: Any) -> str:
    """A value as the text a canonical CSV would hold (whole floats without `.0`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def arrow_unit(
    label: str,
    contract: TableContract,
    table: pa.Table,
    source_format: str,
    sha256: str,
    rejects: Sequence[Reject] = (),
    notes: Sequence[str] = (),
) -> LoadUnit:
    """A unit whose rows the adapter already built; notes land in the load report."""

    def stage(con: duckdb.DuckDBPyConnection, work_dir: Path) -> Staged:
        staged = stage_arrow(
            con, table, contract, label, source_format, sha256, rejects=list(rejects)
        )
        staged.notes.extend(notes)
        return staged

    return LoadUnit(label, contract, stage)


def rows_unit(
    label: str,
    rows: Rows,
    source_format: str,
    sha256: str,
    rejects: Sequence[Reject] = (),
    notes: Sequence[str] = (),
) -> LoadUnit:
    return arrow_unit(label, rows.contract, rows.table(), source_format, sha256, rejects, notes)


# ---------------------------------------------------------------- protocols

PROTOCOL_KEYS = ("protocol_id", "name", "planned_infusions", "planned_days", "dose_mg_per_kg",
                 "infusion_minutes", "phase", "indication")


def _stage_file(
    con: duckdb.DuckDBPyConnection, work_dir: Path, *, path: Path, contract: TableContract
) -> Staged:
    return stage_file(con, path, contract_header(contract), path.name, work_dir, tag=contract.name,
                      direct=True)


def protocols_file(data_dir: Path) -> Path | None:
    """A canonical protocols file (protocols.csv/.parquet/.xlsx) beside the export, if any."""
    found = [
        p for p in sorted(data_dir.iterdir())
        if p.is_file() and p.stem.lower() == "protocols" and p.suffix.lower() in FORMATS
    ]
    if len(found) > 1:
        raise InputError(f"{data_dir}: {', '.join(p.name for p in found)} are all protocols files; "
                         "keep one of them and load again")
    return found[0] if found else None


def protocol_units(
    data_dir: Path, mapping: dict[str, Any], mapping_path: Path | None, source_format: str
) -> tuple[list[LoadUnit], Path | None]:
    """Protocols from a canonical protocols file in DATA_DIR, else `[[protocols]]` in the mapping.

    The protocols file is staged exactly as in a canonical load. Mapping entries are rows of
    the mapping file; a reject names the line of their `[[protocols]]` header.
    """
    contract = CONTRACTS["protocols"]
    path = protocols_file(data_dir)
    entries = mapping.get("protocols", [])
    if path is not None:
        if entries:
            raise InputError(f"{data_dir}: protocols are both in {path.name} and in the mapping "
                             f"{mapping_path}; keep one list")
        return [LoadUnit(path.name, contract, partial(_stage_file, path=path, contract=contract))], path
    if not entries:
        return [], None
    assert mapping_path is not None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise InputError(f"{mapping_path}: protocols must be written as [[protocols]] tables")
    headers = [
        number for number, line in
        enumerate(mapping_path.read_text(encoding="utf-8-sig").splitlines(), start=1)
        if re.fullmatch(r"\s*\[\[\s*protocols\s*\]\]\s*(#.*)?", line)
    ]
    rows = Rows(contract)
    for index, entry in enumerate(entries):
        check_keys(entry, PROTOCOL_KEYS, "[[protocols]]", mapping_path)
        line = headers[index] if index < len(headers) else 0
        rows.add(line, {k: entry.get(k) for k in PROTOCOL_KEYS})
    unit = rows_unit(mapping_path.name, rows, source_format, _sha256(mapping_path),
                     notes=["protocols from the mapping file; line = its [[protocols]] header"])
    return [unit], None
