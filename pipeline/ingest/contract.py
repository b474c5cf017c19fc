"""The input contract (README "Input: the canonical export"): which files, which columns,
which id makes a row unique."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import InputError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".xlsx": "xlsx"}
ITEM_COLUMN = re.compile(r"item_(\d+)")


@dataclass(frozen=True)
class TableContract:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    id_column: str
    has_items: bool = False
    numeric: tuple[str, ...] = ()  # number columns (a decimal comma is read in ;/tab files)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


# Load order matters: references (protocol, patient) are checked against what loaded before.
TABLES: tuple[TableContract, ...] = (
    TableContract(
        "protocols",
        ("protocol_id", "name", "planned_infusions", "planned_days"),
        ("dose_mg_per_kg", "infusion_minutes", "phase", "indication"),
        "protocol_id",
        numeric=("planned_infusions", "planned_days", "dose_mg_per_kg", "infusion_minutes"),
    ),
    TableContract(
        "patients",
        ("patient_id",),
        ("birth_date", "sex", "diagnosis_code", "payer", "member_id", "site"),
        "patient_id",
    ),
    TableContract(
        "sessions",
        ("session_id", "patient_id", "protocol_id", "started_at"),
        (
            "course_id",
            "status",
            "dose_mg_per_kg",
            "weight_kg",
            "dose_mg",
            "duration_minutes",
            "site",
            "provider",
            "bp_systolic_max",
            "bp_diastolic_max",
            "adverse_events",
            "cpt_codes",
        ),
        "session_id",
        numeric=(
            "dose_mg_per_kg",
            "weight_kg",
            "dose_mg",
            "duration_minutes",
            "bp_systolic_max",
            "bp_diastolic_max",
        ),
    ),
    TableContract(
        "assessments",
        ("patient_id", "instrument", "administered_at", "total_score"),
        ("assessment_id", "session_id", "timing"),
        "assessment_id",
        has_items=True,
        numeric=("total_score",),  # and every item_N
    ),
    TableContract(
        "treatment_history",
        ("patient_id", "medication", "start_date"),
        ("trial_id", "drug_class", "end_date", "adequate_dose", "improvement_pct", "episode"),
        "trial_id",
        numeric=("improvement_pct",),
    ),
)
CONTRACTS = {t.name: t for t in TABLES}


def normalize_column(name: str) -> str:
    """Column names are case-insensitive; surrounding spaces and a BOM are ignored."""
    return name.replace("\ufeff", "").strip().lower()


def discover(data_dir: Path) -> tuple[dict[str, Path], list[str]]:
    """Map each table to its file in data_dir (name case-insensitive); list ignored files."""
    found: dict[str, list[Path]] = {}
    ignored: list[str] = []
    for path in sorted(data_dir.iterdir()):
        stem, suffix = path.stem.lower(), path.suffix.lower()
        if path.is_file() and stem in CONTRACTS and suffix in FORMATS:
            found.setdefault(stem, []).append(path)
        elif path.is_file() and not path.name.startswith("."):
            ignored.append(path.name)
    for table, paths in found.items():
        if len(paths) > 1:
            names = ", ".join(p.name for p in paths)
            raise InputError(
                f"{data_dir}: {names} are all '{table}' files; keep one of them and load again"
            )
    if not found:
        raise InputError(
            f"{data_dir}: no export files found; expected protocols, patients, sessions and/or "
            "assessments as .csv, .parquet or .xlsx"
        )
    return {t: paths[0] for t, paths in found.items()}, ignored


@dataclass(frozen=True)
class ColumnMap:
    """How a file's columns (by position) map onto the contract."""

    positions: dict[str, int]  # contract column -> position in the file
    items: dict[int, int]  # item number -> position in the file
    ignored: tuple[str, ...]  # columns not in the contract (reported, not loaded)


def map_columns(file_label: str, header: list[str], contract: TableContract) -> ColumnMap:
    """Match a header to the contract; a missing or doubled required column stops the load.

    Messages quote header names only when the line looks like a header (it names at least one
    contract column): a file without a header row would otherwise echo patient data.
    """
    positions: dict[str, int] = {}
    items: dict[int, int] = {}
    ignored: list[str] = []
    raw_names = [str(raw) if raw is not None else "" for raw in header]
    for pos, raw in enumerate(raw_names):
        name = normalize_column(raw)
        item = ITEM_COLUMN.fullmatch(name) if contract.has_items else None
        first = positions.get(name) if not item else items.get(int(item.group(1)))
        if first is not None:
            raise InputError(
                f"{file_label}: columns {first + 1} ('{raw_names[first].strip()}') and {pos + 1} "
                f"('{raw.strip()}') have the same name (column names are case-insensitive), so "
                "one would be lost; remove or rename one of them and load again"
            )
        if name in contract.columns:
            positions[name] = pos
        elif item and int(item.group(1)) >= 1:
            items[int(item.group(1))] = pos
        elif name:
            ignored.append(name)
    missing = [c for c in contract.required if c not in positions]
    if missing:
        if positions or items:
            found = ", ".join(normalize_column(h) for h in raw_names if h) or "nothing"
            seen = f"(found: {found})"
        else:
            seen = "(the first line names none of them: is the header row missing?)"
        raise InputError(
            f"{file_label}: required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} missing from the header {seen}; "
            f"a {contract.name} file needs {', '.join(contract.required)}"
        )
    return ColumnMap(positions, items, tuple(ignored))


@dataclass(frozen=True)
class HeaderSpec:
    """How a reader recognises a file's header row and maps it to positions.

    A canonical file's spec comes from its contract (`contract_header`); a mapped export's
    from the mapping (pipeline/ingest/mapped.py), naming the export's own columns.
    """

    names: tuple[str, ...]  # normalized names the header row holds (the XLSX header search)
    numeric: tuple[str, ...]  # normalized names of number columns (decimal commas in ;/tab files)
    match: Callable[[str, list[str]], ColumnMap]  # (file label, header) -> ColumnMap
    min_cells: int = 1  # a header row has at least this many non-empty cells

    def is_header(self, names: list[str]) -> bool:
        found = {normalize_column(n) for n in names if n and n.strip()}
        return len(found) >= self.min_cells and set(self.names) <= found


def contract_header(contract: TableContract) -> HeaderSpec:
    """The header of a canonical file: the contract's column names."""

    def match(label: str, header: list[str]) -> ColumnMap:
        return map_columns(label, header, contract)

    return HeaderSpec(contract.required, contract.numeric, match)
