"""TOML config -> frozen dataclasses holding the default definitions (docs/definitions.md).

Every key is optional; a missing file section means the default. Unknown keys are an
error (a typo in `course_gap_dayz` must not silently fall back to 30).
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pipeline.instruments import Instrument, build_registry


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and key."""


@dataclass(frozen=True)
class Definitions:
    course_gap_days: int = 30
    baseline_window_days: int = 14
    endpoint_window_days: int = 14
    response_pct: float = 50
    partial_response_pct: float = 25
    suppress_small_cells: bool = False
    small_cell_max: int = 10


@dataclass(frozen=True)
class Clinic:
    name: str = "Demo Ketamine Clinic"
    page_size: str = "A4"  # A4 or Letter


@dataclass(frozen=True)
class Database:
    memory_limit: str | None = None  # e.g. "4GB"; DuckDB default when unset
    temp_directory: str | None = None
    threads: int | None = None


@dataclass(frozen=True)
class Ingest:
    # A snapshot retiring more than this share of a table's current rows stops the load unless
    # --allow-retire is given (README "Exports over time").
    max_retired_share: float = 0.2


@dataclass(frozen=True)
class Config:
    definitions: Definitions = field(default_factory=Definitions)
    clinic: Clinic = field(default_factory=Clinic)
    database: Database = field(default_factory=Database)
    ingest: Ingest = field(default_factory=Ingest)
    instruments: dict[str, Instrument] = field(default_factory=lambda: build_registry())
    # Report-specific sections, validated by the report that reads them (pipeline/reports/*).
    evidence: dict[str, Any] = field(default_factory=dict)
    payer: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # path of the TOML file, None for defaults
    sha256: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def definitions_in_force(self) -> dict[str, Any]:
        """Plain dict of every definition and instrument setting, for provenance."""
        return {
            "definitions": asdict(self.definitions),
            "instruments": {name: asdict(inst) for name, inst in self.instruments.items()},
        }


_SECTIONS = {"definitions": Definitions, "clinic": Clinic, "database": Database, "ingest": Ingest}
_REPORT_SECTIONS = ("evidence", "payer")


def _section(name: str, cls: type, values: Any, path: Path) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: [{name}] must be a table")
    known = {f.name: f for f in fields(cls)}
    for key, value in values.items():
        if key not in known:
            raise ConfigError(
                f"{path}: [{name}] has unknown key '{key}'; known keys: {', '.join(known)}"
            )
        default = known[key].default
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{path}: [{name}] {key} must be true or false, not {value!r}")
        if isinstance(default, int | float) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ConfigError(f"{path}: [{name}] {key} must be a number >= 0, not {value!r}")
    return cls(**values)


def load_config(path: str | Path | None = None) -> Config:
    """Read a TOML config; None gives the defaults."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    sections: dict[str, Any] = {}
    for key, values in raw.items():
        if key == "instruments":
            continue
        if key in _REPORT_SECTIONS:
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: [{key}] must be a table")
            sections[key] = values
            continue
        if key not in _SECTIONS:
            raise ConfigError(
                f"{path}: unknown section [{key}]; known sections: "
                f"{', '.join([*_SECTIONS, *_REPORT_SECTIONS, 'instruments'])}"
            )
        sections[key] = _section(key, _SECTIONS[key], values, path)
    try:
        registry = build_registry(raw.get("instruments"))
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    return Config(
        **sections,
        instruments=registry,
        source=str(path),
        sha256=hashlib.sha256(data).hexdigest(),
        raw=raw,
    )
