"""The instrument registry (docs/definitions.md "Instruments"): ranges, items, cut-offs, severity
bands, LOINC codes.

One place answers "what is a valid PHQ-9?" for ingest, outcomes and reports. Config may
override any field of a built-in instrument or add new instruments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any


@dataclass(frozen=True)
class SeverityBand:
    low: float
    high: float
    label: str


@dataclass(frozen=True)
class Instrument:
    name: str
    total_min: float
    total_max: float
    item_count: int
    item_min: int
    item_max: int
    remission: float | None  # endpoint <= remission
    caseness: float | None  # baseline >= caseness
    reliable_change: float | None  # points; None = not defined
    loinc: str | None = None
    # "sum": total = sum of items; "qids": QIDS-SR16 domain scoring; "none": no item check
    scoring: str = "sum"
    severity_bands: tuple[SeverityBand, ...] = ()
    aliases: tuple[str, ...] = field(default=())

    def item_total(self, items: list[int]) -> int | None:
        """Total implied by a complete item list, per the instrument's scoring rule."""
        if self.scoring == "none" or len(items) != self.item_count:
            return None
        if self.scoring == "qids":
            i = items
            return (max(i[0:4]) + i[4] + max(i[5:9]) + sum(i[9:14]) + max(i[14:16]))
        return sum(items)


def _bands(*spec: tuple[float, float, str]) -> tuple[SeverityBand, ...]:
    return tuple(SeverityBand(lo, hi, label) for lo, hi, label in spec)


BUILTIN: dict[str, Instrument] = {
    i.name: i
    for i in (
        Instrument(
            "PHQ-9", 0, 27, 9, 0, 3, remission=4, caseness=10, reliable_change=6,
            loinc="44261-6",
            severity_bands=_bands((0, 4, "minimal"), (5, 9, "mild"), (10, 14, "moderate"),
                                  (15, 19, "moderately severe"), (20, 27, "severe")),
        ),
        Instrument(
            "GAD-7", 0, 21, 7, 0, 3, remission=4, caseness=8, reliable_change=4,
            loinc="70274-6",
            severity_bands=_bands((0, 4, "minimal"), (5, 9, "mild"), (10, 14, "moderate"),
                                  (15, 21, "severe")),
        ),
        Instrument(
            "MADRS", 0, 60, 10, 0, 6, remission=10, caseness=20, reliable_change=None,
            severity_bands=_bands((0, 6, "normal"), (7, 19, "mild"), (20, 34, "moderate"),
                                  (35, 60, "severe")),
        ),
        Instrument(
            "QIDS-SR16", 0, 27, 16, 0, 3, remission=5, caseness=11, reliable_change=None,
            scoring="qids", aliases=("QIDS", "QIDS-SR", "QIDS-SR-16"),
            severity_bands=_bands((0, 5, "none"), (6, 10, "mild"), (11, 15, "moderate"),
                                  (16, 20, "severe"), (21, 27, "very severe")),
        ),
        Instrument(
            "BDI-II", 0, 63, 21, 0, 3, remission=13, caseness=20, reliable_change=None,
            aliases=("BDI2", "BDI-2", "BDI"),
            severity_bands=_bands((0, 13, "minimal"), (14, 19, "mild"), (20, 28, "moderate"),
                                  (29, 63, "severe")),
        ),
        Instrument(
            # Items are 0-4 or 0-2 depending on the item; the registry checks 0-4 and the sum.
            "HAM-D17", 0, 52, 17, 0, 4, remission=7, caseness=17, reliable_change=None,
            aliases=("HAMD", "HAM-D", "HDRS17", "HDRS", "HRSD17", "HAMD-17"),
            severity_bands=_bands((0, 7, "none"), (8, 16, "mild"), (17, 23, "moderate"),
                                  (24, 52, "severe")),
        ),
        Instrument(
            "PCL-5", 0, 80, 20, 0, 4, remission=32, caseness=33, reliable_change=None,
            aliases=("PCL5",),
        ),
    )
}

_FIELD_NAMES = {f.name for f in fields(Instrument)}


def normalize_key(name: str) -> str:
    """Loose matching key: `PHQ9`, `phq-9`, `PHQ 9` all become `PHQ9`."""
    return re.sub(r"[^0-9A-Z]", "", name.upper())


def build_registry(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, Instrument]:
    """Built-in registry with config overrides applied; unknown names are new instruments."""
    registry = dict(BUILTIN)
    for name, values in (overrides or {}).items():
        unknown = set(values) - _FIELD_NAMES
        if unknown:
            raise ValueError(
                f'[instruments."{name}"]: unknown setting(s) {sorted(unknown)}; '
                f"known settings are {sorted(_FIELD_NAMES - {'name'})}"
            )
        values = dict(values)
        if "severity_bands" in values:
            values["severity_bands"] = _bands(*(tuple(b) for b in values["severity_bands"]))
        if "aliases" in values:
            values["aliases"] = tuple(values["aliases"])
        canonical = resolve_name(name, registry) or name
        if canonical in registry:
            registry[canonical] = replace(registry[canonical], **values)
        else:
            missing = {"total_min", "total_max", "item_count", "item_min", "item_max"} - set(values)
            if missing:
                raise ValueError(
                    f'[instruments."{name}"] is a new instrument and needs {sorted(missing)}'
                )
            values.setdefault("remission", None)
            values.setdefault("caseness", None)
            values.setdefault("reliable_change", None)
            registry[name] = Instrument(name=name, **values)
    return registry


def alias_table(registry: dict[str, Instrument]) -> dict[str, str]:
    """normalize_key(alias or name) -> canonical name."""
    table: dict[str, str] = {}
    for inst in registry.values():
        for alias in (inst.name, *inst.aliases):
            table[normalize_key(alias)] = inst.name
    return table


def resolve_name(raw: str, registry: dict[str, Instrument]) -> str | None:
    return alias_table(registry).get(normalize_key(raw))
