"""The instrument registry (docs/definitions.md "Instruments"): ranges, items, cut-offs, severity
bands, LOINC codes.

One place answers "what is a valid PHQ-9?" for ingest, outcomes and reports. Config may
override any field of a built-in instrument or add new instruments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.config_rules import (
    Choice,
    Names,
    Number,
    Rule,
    Text,
    Unchecked,
    Whole,
    check_table,
    is_number,
    number_text,
    show,
)


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

SCORINGS = ("sum", "qids", "none")
QIDS_ITEMS = 16  # item_total's domain rule reads items 1-16

# The rule each [instruments."NAME"] setting must meet (README "Configuration").
_RULES: dict[str, Rule] = {
    "total_min": Number(), "total_max": Number(),
    "item_count": Whole(0), "item_min": Whole(), "item_max": Whole(),
    "remission": Number(), "caseness": Number(), "reliable_change": Number(0, open_low=True),
    "loinc": Text("a LOINC code"), "scoring": Choice(SCORINGS),
    "severity_bands": Unchecked(), "aliases": Names(),
}
_NEW_NEEDS = ("total_min", "total_max", "item_count", "item_min", "item_max")


class RegistryError(ValueError):
    """Config settings that make no instrument; one line per problem, each naming the
    `[instruments."NAME"]` table, the key, the value and what is allowed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def normalize_key(name: str) -> str:
    """Loose matching key: `PHQ9`, `phq-9`, `PHQ 9` all become `PHQ9`."""
    return re.sub(r"[^0-9A-Z]", "", name.upper())


def _band_problems(label: str, value: Any) -> tuple[tuple[SeverityBand, ...], list[str]]:
    bands: list[SeverityBand] = []
    shape = 'must be a list of [low, high, "label"], e.g. [[0, 4, "minimal"], [5, 9, "mild"]]'
    if not isinstance(value, list):
        return (), [f"{label} severity_bands = {show(value)}: {shape}"]
    for band in value:
        if not (isinstance(band, list) and len(band) == 3 and is_number(band[0])
                and is_number(band[1]) and isinstance(band[2], str) and band[2].strip()):
            return (), [f"{label} severity_bands: the band {show(band)} {shape}"]
        bands.append(SeverityBand(band[0], band[1], band[2]))
    return tuple(bands), []


def _range(inst: Instrument) -> str:
    return f"{number_text(inst.total_min)}–{number_text(inst.total_max)}"


def instrument_problems(label: str, inst: Instrument) -> list[str]:
    """Settings of one instrument that contradict each other (ranges, cut-offs, items)."""
    problems = []
    lo, hi = inst.total_min, inst.total_max
    if lo >= hi:
        return [f"{label} total_min = {show(lo)}, total_max = {show(hi)}: total_min must be "
                "below total_max"]
    for key in ("remission", "caseness"):
        cut = getattr(inst, key)
        if cut is not None and not lo <= cut <= hi:
            problems.append(f"{label} {key} = {show(cut)}: must be within the {inst.name} total "
                            f"range {_range(inst)}")
    if (inst.remission is not None and inst.caseness is not None and not problems
            and inst.remission >= inst.caseness):
        problems.append(f"{label} remission = {show(inst.remission)}: must be below caseness "
                        f"({show(inst.caseness)}); a score cannot be both remitted and a case")
    if inst.reliable_change is not None and inst.reliable_change > hi - lo:
        problems.append(f"{label} reliable_change = {show(inst.reliable_change)}: must be at most "
                        f"the width of the total range {_range(inst)} ({number_text(hi - lo)})")
    if inst.item_min > inst.item_max:
        problems.append(f"{label} item_min = {inst.item_min}, item_max = {inst.item_max}: "
                        "item_min must be at most item_max")
    elif inst.scoring != "none" and inst.item_count < 1:
        problems.append(f"{label} item_count = {inst.item_count}: must be at least 1 when items "
                        f'are scored (scoring = "{inst.scoring}"); use scoring = "none" for a '
                        "total without items")
    elif inst.scoring == "qids" and inst.item_count != QIDS_ITEMS:
        problems.append(f"{label} item_count = {inst.item_count}: QIDS scoring reads "
                        f"{QIDS_ITEMS} items")
    elif inst.scoring == "sum" and not (inst.item_count * inst.item_min <= lo
                                        and inst.item_count * inst.item_max >= hi):
        problems.append(
            f"{label} item_count = {inst.item_count}, item_min = {inst.item_min}, item_max = "
            f"{inst.item_max}: the items add up to {inst.item_count * inst.item_min}–"
            f"{inst.item_count * inst.item_max}, which does not cover the total range "
            f'{_range(inst)} (scoring = "sum"); correct the item range, or use scoring = "none"')
    for band in inst.severity_bands:
        if not lo <= band.low <= band.high <= hi:
            problems.append(f"{label} severity_bands: the band [{show(band.low)}, "
                            f"{show(band.high)}, {show(band.label)}] must lie within the total "
                            f"range {_range(inst)} with low <= high")
    for before, after in zip(inst.severity_bands, inst.severity_bands[1:], strict=False):
        if after.low <= before.high:
            problems.append(f"{label} severity_bands: the band {show(after.label)} must start "
                            f"above the end of {show(before.label)} ({show(before.high)})")
    return problems


def _settings(label: str, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The good settings of one [instruments."NAME"] table, typed, and its problems."""
    good, problems = check_table(label, values, _RULES)
    if "severity_bands" in good:
        good["severity_bands"], band_problems = _band_problems(label, good["severity_bands"])
        problems += band_problems
    if "aliases" in good:
        good["aliases"] = tuple(good["aliases"])
    return good, problems


def build_registry(overrides: dict[str, Any] | None = None) -> dict[str, Instrument]:
    """Built-in registry with config overrides applied; unknown names are new instruments.

    Raises RegistryError listing every problem of every table at once.
    """
    registry = dict(BUILTIN)
    problems: list[str] = []
    if overrides is not None and not isinstance(overrides, dict):
        raise RegistryError(['[instruments] must be a table of instruments, e.g. '
                             '[instruments."PHQ-9"]'])
    touched: dict[str, str] = {}  # canonical name -> the table that set it
    for name, values in (overrides or {}).items():
        label = f'[instruments."{name}"]'
        if not isinstance(values, dict):
            problems.append(f"{label} must be a table of settings, not {show(values)}")
            continue
        if not normalize_key(name):
            problems.append(f"{label}: an instrument name needs a letter or a digit")
            continue
        canonical = resolve_name(name, registry) or name
        if canonical in touched:
            problems.append(f"{label} names the same instrument as {touched[canonical]} "
                            "(names are matched loosely); merge the two tables")
            continue
        good, found = _settings(label, values)
        problems += found
        if found:
            continue
        if canonical in registry:
            inst = replace(registry[canonical], **good)
        else:
            missing = [k for k in _NEW_NEEDS if k not in good]
            if missing:
                problems.append(f"{label} is a new instrument and needs {', '.join(missing)}")
                continue
            good.setdefault("remission", None)
            good.setdefault("caseness", None)
            good.setdefault("reliable_change", None)
            inst = Instrument(name=name, **good)
        touched[canonical] = label
        problems += instrument_problems(label, inst)
        registry[canonical] = inst
    problems += _alias_clashes(registry, touched)
    if problems:
        raise RegistryError(problems)
    return registry


def _alias_clashes(registry: dict[str, Instrument], touched: dict[str, str]) -> list[str]:
    """An alias of a configured instrument that loosely names another instrument."""
    problems = []
    for canonical, label in touched.items():
        others = {normalize_key(a): i.name for i in registry.values() if i.name != canonical
                  for a in (i.name, *i.aliases)}
        for alias in registry[canonical].aliases:
            other = others.get(normalize_key(alias))
            if other:
                problems.append(f"{label} aliases: {show(alias)} already names {other}")
    return problems


def alias_table(registry: dict[str, Instrument]) -> dict[str, str]:
    """normalize_key(alias or name) -> canonical name."""
    table: dict[str, str] = {}
    for inst in registry.values():
        for alias in (inst.name, *inst.aliases):
            table[normalize_key(alias)] = inst.name
    return table


def resolve_name(raw: str, registry: dict[str, Instrument]) -> str | None:
    return alias_table(registry).get(normalize_key(raw))
