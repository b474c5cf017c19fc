"""Kinds of config value and the one line that says what is wrong with one (README
"Configuration", "How the config is checked").

A rule's `problem(value)` returns None for a good value, else the end of an error line such as
"must be a whole number of at least 1"; `value(raw)` gives the value to keep (a whole-number
float such as 30.0 becomes 30). Config sections declare a rule per key with `setting()`.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def show(value: Any) -> str:
    """A config value as it would be written in TOML: "A4", 30, true, ["PHQ-9"]."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {show(v)}" for k, v in value.items()) + " }"
    return str(value)


def number_text(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def is_number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


class Rule:
    def problem(self, value: Any) -> str | None:
        raise NotImplementedError

    def value(self, raw: Any) -> Any:
        return raw


@dataclass(frozen=True)
class Whole(Rule):
    minimum: int | None = None

    def problem(self, value: Any) -> str | None:
        whole = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
        if whole and (self.minimum is None or value >= self.minimum):
            return None
        bound = "" if self.minimum is None else f" of at least {self.minimum}"
        return f"must be a whole number{bound}"

    def value(self, raw: Any) -> Any:
        return int(raw)


@dataclass(frozen=True)
class Number(Rule):
    """A finite number between low and high; `open_low` / `open_high` exclude the bound."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def problem(self, value: Any) -> str | None:
        if is_number(value) and not (
                self.low is not None and (value < self.low or (self.open_low and value == self.low))
        ) and not (
                self.high is not None
                and (value > self.high or (self.open_high and value == self.high))):
            return None
        return "must be " + self.allowed()

    def allowed(self) -> str:
        low = None if self.low is None else number_text(self.low)
        high = None if self.high is None else number_text(self.high)
        if low is not None and high is not None and not (self.open_low or self.open_high):
            return f"a number from {low} to {high}"
        parts = []
        if low is not None:
            parts.append(f"above {low}" if self.open_low else f"of at least {low}")
        if high is not None:
            parts.append(f"below {high}" if self.open_high else f"at most {high}")
        return "a number" + (" " + " and ".join(parts) if parts else "")


@dataclass(frozen=True)
class Flag(Rule):
    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else "must be true or false"


@dataclass(frozen=True)
class Text(Rule):
    what: str = "text"

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str) and value.strip():
            return None
        return f"must be {self.what} in quotes, not empty"


@dataclass(frozen=True)
class Folder(Rule):
    """A folder path; it need not exist yet, but if it does it must be a folder."""

    def problem(self, value: Any) -> str | None:
        if not (isinstance(value, str) and value.strip()):
            return "must be a folder path in quotes"
        if Path(value).exists() and not Path(value).is_dir():
            return "is a file, not a folder; name a folder (it is created when needed)"
        return None


@dataclass(frozen=True)
class Choice(Rule):
    """One of a few names, compared without regard to case."""

    options: tuple[str, ...]

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str) and value.lower() in {o.lower() for o in self.options}:
            return None
        return "must be one of " + ", ".join(show(o) for o in self.options)

    def value(self, raw: Any) -> Any:
        return next(o for o in self.options if o.lower() == raw.lower())


@dataclass(frozen=True)
class Unchecked(Rule):
    """Any value: the caller checks its shape (a nested list or table)."""

    def problem(self, value: Any) -> str | None:
        return None


@dataclass(frozen=True)
class Names(Rule):
    """A list of non-empty strings."""

    def problem(self, value: Any) -> str | None:
        if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
            return None
        return 'must be a list of names in quotes, e.g. ["PHQ9"]'


# DuckDB's memory_limit syntax (units of 1000 or 1024, case-insensitive, space allowed) or a
# share of the machine's memory. Below MIN_MEMORY DuckDB fails on a small export (README).
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*", re.IGNORECASE)
_PERCENT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*%\s*")
_UNITS = {
    "b": 1, "byte": 1, "bytes": 1,
    "k": 10**3, "kb": 10**3, "kilobyte": 10**3, "kilobytes": 10**3,
    "m": 10**6, "mb": 10**6, "megabyte": 10**6, "megabytes": 10**6,
    "g": 10**9, "gb": 10**9, "gigabyte": 10**9, "gigabytes": 10**9,
    "t": 10**12, "tb": 10**12, "terabyte": 10**12, "terabytes": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
MIN_MEMORY = 128 * 10**6
MIN_MEMORY_TEXT = "128MB"


def machine_memory() -> int:
    """Physical memory in bytes (what DuckDB takes a percentage of)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def memory_bytes(text: str) -> int | None:
    """Bytes meant by a DuckDB memory_limit such as "4GB", "512MiB" or "50%"; None if unreadable."""
    percent = _PERCENT.fullmatch(text)
    if percent:
        share = float(percent.group(1))
        return int(share / 100 * machine_memory()) if 0 < share <= 100 else None
    size = _SIZE.fullmatch(text)
    if not size or size.group(2).lower() not in _UNITS:
        return None
    return int(float(size.group(1)) * _UNITS[size.group(2).lower()])


@dataclass(frozen=True)
class MemorySize(Rule):
    def problem(self, value: Any) -> str | None:
        amount = memory_bytes(value) if isinstance(value, str) else None
        if amount is None:
            return ('must be a size such as "4GB" or "512MiB" (units KB, MB, GB, TB or KiB, MiB, '
                    'GiB, TiB) or a share of the memory such as "50%"; leave it out for '
                    "DuckDB's default (80% of the memory)")
        if amount < MIN_MEMORY:
            return (f"must be at least {MIN_MEMORY_TEXT}: below that DuckDB runs out of memory "
                    "even on a small export; leave it out for DuckDB's default (80% of the memory)")
        return None


def setting(default: T, rule: Rule) -> T:
    """A dataclass field with its default and the rule its config value must meet."""
    return field(default=default, metadata={"rule": rule})  # type: ignore[no-any-return]


def check_table(label: str, values: dict[str, Any], rules: dict[str, Rule],
                ) -> tuple[dict[str, Any], list[str]]:
    """The good values of one table (converted), and one line per unknown key or bad value.

    `label` is how the table is written in the file, e.g. `[definitions]`.
    """
    good: dict[str, Any] = {}
    problems = []
    for key, value in values.items():
        rule = rules.get(key)
        if rule is None:
            problems.append(f"{label} has unknown key '{key}'; known keys: {', '.join(rules)}")
            continue
        problem = rule.problem(value)
        if problem:
            problems.append(f"{label} {key} = {show(value)}: {problem}")
        else:
            good[key] = rule.value(value)
    return good, problems
