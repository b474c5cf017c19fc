"""TOML config -> frozen dataclasses holding the default definitions (docs/definitions.md).

Every key is optional; a missing file section means the default. The config is checked as
a whole before anything runs (README "How the config is checked"): unknown keys at any level,
each value against its rule, settings that contradict each other, and instrument names, which
are matched loosely as ingest matches them. Every problem is reported at once, one line each.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pipeline.config_rules import (
    Choice,
    Flag,
    Folder,
    MemorySize,
    Number,
    Rule,
    Text,
    Whole,
    check_table,
    is_number,
    number_text,
    setting,
    show,
)
from pipeline.instruments import Instrument, RegistryError, build_registry, resolve_name


class ConfigError(Exception):
    """A config file that cannot be used; one line per problem, each naming the file and key."""


@dataclass(frozen=True)
class Definitions:
    course_gap_days: int = setting(30, Whole(1))
    baseline_window_days: int = setting(14, Whole(1))
    endpoint_window_days: int = setting(14, Whole(1))
    response_pct: float = setting(50, Number(0, 100, open_low=True))
    partial_response_pct: float = setting(25, Number(0, 100, open_low=True, open_high=True))
    suppress_small_cells: bool = setting(False, Flag())
    small_cell_max: int = setting(10, Whole(0))


@dataclass(frozen=True)
class Clinic:
    name: str = setting("Demo Ketamine Clinic", Text("a name"))
    page_size: str = setting("A4", Choice(("A4", "Letter")))


@dataclass(frozen=True)
class Database:
    memory_limit: str | None = setting(None, MemorySize())  # e.g. "4GB"; DuckDB default when unset
    temp_directory: str | None = setting(None, Folder())
    threads: int | None = setting(None, Whole(1))


@dataclass(frozen=True)
class Ingest:
    # A snapshot retiring more than this share of a table's current rows stops the load unless
    # --allow-retire is given (README "Exports over time").
    max_retired_share: float = setting(0.2, Number(0, 1))


@dataclass(frozen=True)
class Config:
    definitions: Definitions = field(default_factory=Definitions)
    clinic: Clinic = field(default_factory=Clinic)
    database: Database = field(default_factory=Database)
    ingest: Ingest = field(default_factory=Ingest)
    instruments: dict[str, Instrument] = field(default_factory=lambda: build_registry())
    # Report-specific sections: the instruments they name are checked and spelled as the
    # registry spells them here; the rest is validated by the report that reads them.
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


_SECTIONS: dict[str, type] = {"definitions": Definitions, "clinic": Clinic,
                              "database": Database, "ingest": Ingest}
_REPORT_SECTIONS = ("evidence", "payer")
_KNOWN = (*_SECTIONS, "instruments", *_REPORT_SECTIONS)


def _rules(cls: type) -> dict[str, Rule]:
    return {f.name: f.metadata["rule"] for f in fields(cls)}


def _section(name: str, values: dict[str, Any]) -> tuple[Any, list[str]]:
    """The section's dataclass from its good values, and one line per problem (a setting that
    is fine alone but contradicts another of the section included)."""
    cls = _SECTIONS[name]
    good, problems = check_table(f"[{name}]", values, _rules(cls))
    section = cls(**good)
    if isinstance(section, Definitions) and set(good) == set(values):
        problems += _contradictions(section)
    return section, problems


def _contradictions(definitions: Definitions) -> list[str]:
    """Settings of [definitions] that are each allowed but not together."""
    if definitions.partial_response_pct >= definitions.response_pct:
        return [f"[definitions] partial_response_pct = {show(definitions.partial_response_pct)}: "
                f"must be below response_pct ({show(definitions.response_pct)}); a partial "
                "response is a smaller reduction than a response"]
    return []


def _top_level_key(key: str, value: Any) -> str:
    home = [name for name, cls in _SECTIONS.items() if key in _rules(cls)]
    hint = (f"; it belongs under [{home[0]}]" if home
            else f"; known sections: {', '.join(f'[{k}]' for k in _KNOWN)}")
    return f"unknown key '{key}' = {show(value)} outside any [section]{hint}"


def _instrument(where: str, name: Any, registry: dict[str, Instrument],
                problems: list[str]) -> str | None:
    """The canonical name for an instrument named in a report section, matched loosely."""
    canonical = resolve_name(name, registry) if isinstance(name, str) else None
    if canonical is None:
        problems.append(f"{where}: {show(name)} is not a known instrument; known: "
                        f"{', '.join(sorted(registry))} (matched loosely: PHQ9, phq-9, PHQ 9)")
    return canonical


def _evidence_names(evidence: dict[str, Any], registry: dict[str, Instrument],
                    problems: list[str]) -> dict[str, Any]:
    """[evidence] with primary_instrument spelled as the registry spells it."""
    if "primary_instrument" not in evidence:
        return evidence
    name = _instrument("[evidence] primary_instrument", evidence["primary_instrument"],
                       registry, problems)
    return {**evidence, "primary_instrument": name or evidence["primary_instrument"]}


def _payer_names(payer: dict[str, Any], registry: dict[str, Instrument],
                 problems: list[str]) -> dict[str, Any]:
    """[payer] with the instruments of entry.thresholds and continuation.instruments spelled as
    the registry spells them, each threshold within its instrument's total range. The rest of
    the section is checked by the payer report (pipeline/reports/payer/criteria.py)."""
    payer = dict(payer)
    entry = payer.get("entry")
    if isinstance(entry, dict) and isinstance(entry.get("thresholds"), dict):
        thresholds: dict[str, Any] = {}
        for name, value in entry["thresholds"].items():
            where = f'[payer] entry.thresholds."{name}"'
            canonical = _instrument("[payer] entry.thresholds", name, registry, problems) or name
            if canonical in thresholds:
                problems.append(f"{where}: names {canonical} a second time (names are matched "
                                "loosely); keep one threshold per instrument")
            thresholds[canonical] = value
            inst = registry.get(canonical)
            if inst and is_number(value) and not inst.total_min <= value <= inst.total_max:
                problems.append(f"{where} = {show(value)}: must be within the {canonical} total "
                                f"range {number_text(inst.total_min)}–"
                                f"{number_text(inst.total_max)}")
        payer["entry"] = {**entry, "thresholds": thresholds}
    continuation = payer.get("continuation")
    if isinstance(continuation, dict) and isinstance(continuation.get("instruments"), list):
        names = [_instrument("[payer] continuation.instruments", n, registry, problems) or n
                 for n in continuation["instruments"]]
        payer["continuation"] = {**continuation, "instruments": names}
    return payer


def check_config(raw: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Config constructor arguments from a parsed TOML file, and every problem in it."""
    problems: list[str] = []
    parts: dict[str, Any] = {}
    for key, values in raw.items():
        if key not in _KNOWN:
            problems.append(f"unknown section [{key}]; known sections: "
                            f"{', '.join(f'[{k}]' for k in _KNOWN)}"
                            if isinstance(values, dict) else _top_level_key(key, values))
        elif not isinstance(values, dict):
            problems.append(f"[{key}] must be a table (a [{key}] header with keys below it), "
                            f"not {key} = {show(values)}")
        elif key in _SECTIONS:
            parts[key], found = _section(key, values)
            problems += found
    try:
        registry = build_registry(raw.get("instruments"))
    except RegistryError as exc:
        problems += exc.problems
        registry = build_registry()  # report section names are still checked
    parts["instruments"] = registry
    if isinstance(raw.get("evidence"), dict):
        parts["evidence"] = _evidence_names(raw["evidence"], registry, problems)
    if isinstance(raw.get("payer"), dict):
        parts["payer"] = _payer_names(raw["payer"], registry, problems)
    return parts, problems


def load_config(path: str | Path | None = None) -> Config:
    """Read a TOML config; None gives the defaults. Raises ConfigError listing every
    problem of the file, one line each."""
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
    parts, problems = check_config(raw)
    if problems:
        raise ConfigError("\n".join(f"{path}: {p}" for p in problems))
    return Config(**parts, source=str(path), sha256=hashlib.sha256(data).hexdigest(), raw=raw)
