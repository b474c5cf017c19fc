"""Printed cells of the aggregate reports with small-cell suppression (docs/suppression.md; the
CMS cell-size rule).

Both aggregate reports (monthly with `suppress_small_cells`, evidence always) decide here, once,
which counts they may print. The rule (domain notes, "CMS cell-size suppression"): no count of
1..small_cell_max is printed, and none may be *derived* from other printed cells, percentages or
text. The relations a reader can use are declared beside the numbers (docs/suppression.md has
the inventory), so suppression is checked against what the report really prints:

- `Ledger.count(key, n)` registers a printed count; `Ledger.virtual(key, n)` a count that is not
  printed but is a part of printed ones (courses without an endpoint = ITT − evaluable);
- `Ledger.add(total, parts)` declares total = sum(parts); `Ledger.at_least(big, parts)` declares
  big >= sum(parts) (an infusion with two event types counts once in "any event");
- `Ledger.atomic(keys)`: cells printed together or not at all (the steps of a curve);
- `Ledger.rate(k, n)` / `share(k, n)`: a rate printed beside its counts is printed only when both
  are; it declares n = k + (n − k), so a small difference n − k is protected as well.

`solve()` then works like a disclosure auditor. Primary suppression: every printed count 1..k
becomes `Suppressed` ("<11"). Then, until nothing more can be derived: it propagates what a
reader knows (a shown count exactly; "<11" is 1..k; "*" is more than k; anything unprinted is
>= 0) through every relation (interval bounds, equalities and inequalities alike) and through
linear combinations of the equalities (Gaussian elimination, so a cell fixed only by adding a
row and a column is found too). When a count of 1..k that is not shown becomes determined, the
smallest other shown non-zero count of a relation it sits in is withheld (`Withheld`, "*"),
preferring cells with a lower `keep` (totals and denominators are kept longest), and the check
runs again. Templates only format what arrives; the JSON carries the same printed cells.

With suppression off every count is shown and `solve()` does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.formatting import Suppressed, Withheld
from pipeline.reports.derivable import Derivation
from pipeline.stats import wilson

Key = tuple[Any, ...]
Cell = int | Suppressed | Withheld

SHOWN, PRIMARY, SECONDARY, UNPRINTED = "shown", "primary", "secondary", "unprinted"
INF = float("inf")
_MAX_ROUNDS = 2000


@dataclass
class _Cell:
    key: Key
    value: int
    printed: bool
    keep: int
    order: int
    state: str = SHOWN


@dataclass(frozen=True)
class CountRef:
    """A printed count in a context under construction; resolves to int / "<11" / "*"."""

    key: Key


@dataclass(frozen=True)
class RateRef:
    """A rate printed with its numerator and denominator (templates' rate macros)."""

    numerator: Key
    denominator: Key
    value: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class ShareRef:
    """A count's share of n printed beside it ("12 (48%)"); None when either is not shown."""

    numerator: Key
    denominator: Key


@dataclass(frozen=True)
class GuardRef:
    """Any value (a median, a limit) printed only when every count it rests on is shown;
    `fallback` (None, or a word such as "withheld") otherwise."""

    value: Any
    keys: tuple[Key, ...]
    fallback: Any = None


@dataclass(frozen=True)
class Deferred:
    """A piece of context built after `solve()` (it reads which cells are shown)."""

    build: Callable[[], Any]


@dataclass
class Ledger:
    """Every count a report prints, the relations among them, and the suppression decision."""

    on: bool
    small_cell_max: int = 10
    conflicts: list[str] = field(default_factory=list)  # one key, two values: a report bug
    violations: list[str] = field(default_factory=list)  # a declared relation that is false
    unresolved: list[Key] = field(default_factory=list)  # leaks no withholding could close
    because: dict[Key, Key] = field(default_factory=dict)  # withheld cell -> the leak it closed
    _cells: dict[Key, _Cell] = field(default_factory=dict)
    _eq: list[tuple[tuple[Key, int], ...]] = field(default_factory=list)
    _ge: list[tuple[tuple[Key, int], ...]] = field(default_factory=list)
    _atomic: list[tuple[Key, ...]] = field(default_factory=list)
    _relation_keys: set[tuple[str, tuple[tuple[Key, int], ...]]] = field(default_factory=set)
    _anonymous: int = 0
    solved: bool = False

    # -- registering ---------------------------------------------------------------------------

    def small(self, n: int) -> bool:
        return self.on and 1 <= n <= self.small_cell_max

    def _register(self, key: Key | None, value: int, printed: bool, keep: int) -> Key:
        if self.solved:
            raise RuntimeError("cells registered after solve()")
        value = int(value)
        if key is None:
            self._anonymous += 1
            key = ("anonymous", self._anonymous)
        cell = self._cells.get(key)
        if cell is not None and cell.value != value:
            self.conflicts.append(f"{key}: {cell.value} and {value}")
            self._anonymous += 1
            key = (*key, "conflict", self._anonymous)
            cell = None
        if cell is None:
            self._cells[key] = _Cell(key, value, printed, keep, len(self._cells))
        else:
            cell.printed = cell.printed or printed
            cell.keep = max(cell.keep, keep)
        return key

    def count(self, key: Key | None, value: int, keep: int = 0) -> CountRef:
        """A printed count (the same key twice is the same figure printed twice)."""
        return CountRef(self._register(key, value, True, keep))

    def virtual(self, key: Key | None, value: int) -> CountRef:
        """A count not printed itself, but a part of printed ones."""
        return CountRef(self._register(key, value, False, 0))

    def has(self, key: Key) -> bool:
        return key in self._cells

    def value(self, ref: CountRef | Key) -> int:
        return self._cells[_key(ref)].value

    def _relation(self, kind: str, terms: tuple[tuple[Key, int], ...]) -> None:
        merged: dict[Key, int] = {}
        for key, coefficient in terms:
            merged[key] = merged.get(key, 0) + coefficient
        terms = tuple([(k, c) for k, c in merged.items() if c])
        if len(terms) < 2:
            return
        known = len(self._relation_keys)
        self._relation_keys.add((kind, terms))
        if len(self._relation_keys) > known:  # not declared before
            (self._eq if kind == "eq" else self._ge).append(terms)

    def add(self, total: CountRef | Key, parts: Sequence[CountRef | Key]) -> None:
        """Declare total = sum(parts)."""
        t, ps = _key(total), [_key(p) for p in parts]
        cells = self._cells
        if cells[t].value != sum([cells[p].value for p in ps]):
            self.violations.append(f"{t} = sum{ps}")
            return
        self._relation("eq", ((t, 1), *((p, -1) for p in ps)))

    def at_least(self, big: Sequence[CountRef | Key], small: Sequence[CountRef | Key]) -> None:
        """Declare sum(big) >= sum(small)."""
        bs, ss = [_key(b) for b in big], [_key(s) for s in small]
        cells = self._cells
        if sum([cells[b].value for b in bs]) < sum([cells[s].value for s in ss]):
            self.violations.append(f"sum{bs} >= sum{ss}")
            return
        self._relation("ge", (*((b, 1) for b in bs), *((s, -1) for s in ss)))

    def split(self, total: CountRef | Key, parts: Sequence[CountRef | Key],
              rest_key: Key) -> CountRef:
        """Declare total = sum(parts) + rest, with rest a virtual count; returns rest."""
        rest_value = self.value(total) - sum(self.value(p) for p in parts)
        rest = self.virtual(rest_key, rest_value)
        self.add(total, [*parts, rest])
        return rest

    def atomic(self, refs: Iterable[CountRef | Key]) -> None:
        """Cells printed all together or not at all (when one is withheld, none is printed)."""
        keys = tuple(_key(r) for r in refs)
        if len(keys) > 1:
            self._atomic.append(keys)

    def rate(self, numerator: CountRef, denominator: CountRef, value: float | None = None,
             low: float | None = None, high: float | None = None) -> RateRef:
        """A rate printed with its counts; n − k becomes a (virtual) cell of its own."""
        self._complement(numerator, denominator)
        return RateRef(numerator.key, denominator.key, value, low, high)

    def share(self, numerator: CountRef, denominator: CountRef) -> ShareRef:
        self._complement(numerator, denominator)
        return ShareRef(numerator.key, denominator.key)

    def _complement(self, numerator: CountRef, denominator: CountRef) -> None:
        k, n = self.value(numerator), self.value(denominator)
        if 0 <= k <= n:
            self.split(denominator, [numerator], ("complement", numerator.key, denominator.key))

    def complement(self, numerator: CountRef, denominator: CountRef) -> CountRef:
        """n − k of a rate, as a cell (virtual unless a report prints a bound on it)."""
        self._complement(numerator, denominator)
        return CountRef(("complement", numerator.key, denominator.key))

    def guard(self, value: Any, *refs: CountRef | Key, fallback: Any = None) -> GuardRef:
        return GuardRef(value, tuple(_key(r) for r in refs), fallback)

    def show(self, ref: CountRef | Key, keep: int = 0) -> CountRef:
        """Mark a registered (virtual) count as printed."""
        key = _key(ref)
        return self.count(key, self._cells[key].value, keep)

    def keys(self) -> list[Key]:
        return list(self._cells)

    def relations(self) -> tuple[list[tuple[tuple[Key, int], ...]], list[tuple[tuple[Key, int], ...]]]:
        """(equalities, inequalities): each a tuple of (key, coefficient); sum = 0 or >= 0."""
        return self._eq, self._ge

    def hidden_small(self, key: Key) -> bool:
        """A count of 1..small_cell_max that is not shown (a reader must not derive it)."""
        cell = self._cells[key]
        return cell.state != SHOWN and self.small(cell.value)

    # -- deciding ------------------------------------------------------------------------------

    def solve(self) -> None:
        """Primary and complementary suppression until no small count can be derived."""
        if self.solved:
            return
        self.solved = True
        if not self.on:
            return
        for cell in self._cells.values():
            if not cell.printed:
                cell.state = UNPRINTED
            elif self.small(cell.value):
                cell.state = PRIMARY
        self._apply_atomic()
        system = Derivation(self)
        search = _CellSearch(self, system)
        given_up: set[Key] = set()
        for _ in range(_MAX_ROUNDS):
            determined = system.determined_small()
            leaks = [key for key in determined if key not in given_up]
            if not leaks:
                # a leak given up on may have been closed by a later withholding
                self.unresolved = [key for key in determined if key in given_up]
                return
            # Several leaks are closed per round, but never two through one relation: the
            # first withheld cell may already protect the second leak.
            touched: set[int] = set()
            for leak in leaks:
                rows = system.rows_of(leak)
                if rows & touched:
                    continue
                target = self._complement_for(leak, search)
                if target is None:
                    blank = self._blank_for(leak, system)
                    if blank is None:
                        given_up.add(leak)
                        continue
                    self._cells[blank].state = UNPRINTED
                    self.because[blank] = leak
                    touched |= rows | system.rows_of(blank)
                    continue
                self._cells[target].state = SECONDARY
                self.because[target] = leak
                touched |= rows | system.rows_of(target)
            self._apply_atomic()
        raise RuntimeError("small-cell suppression did not converge")

    def _apply_atomic(self) -> None:
        changed = True
        while changed:
            changed = False
            for group in self._atomic:
                cells = [self._cells[k] for k in group]
                if any(c.state in (PRIMARY, SECONDARY) or (c.printed and c.state == UNPRINTED)
                       for c in cells):
                    for c in cells:
                        if c.printed and c.state != UNPRINTED:
                            c.state = UNPRINTED
                            changed = True

    def all_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """What a reader knows of each cell from its print alone, in the order of `keys()`
        as (lows, highs): a shown count exactly (every count when suppression is off), "<11"
        1..k, "*" more than k, anything not printed only that it is >= 0."""
        cells = self._cells.values()
        values = np.array([cell.value for cell in cells], dtype=float)
        if not self.on:
            return values, values.copy()
        k = self.small_cell_max
        # by state: shown (its value), "<11", "*", not printed
        code = {SHOWN: 0, PRIMARY: 1, SECONDARY: 2}
        states = np.array([code.get(cell.state, 3) for cell in cells], dtype=np.int64)
        lows = np.array([0, 1, k + 1, 0], dtype=float)[states]
        highs = np.array([0, k, INF, INF], dtype=float)[states]
        shown = states == 0
        lows[shown] = highs[shown] = values[shown]
        return lows, highs

    def _complement_for(self, leak: Key, search: _CellSearch) -> Key | None:
        """The cell to withhold so that `leak` cannot be derived.

        Follow the derivation back: in an equality that fixes the leak (all its other cells
        are known or derivable), withhold the shown non-zero cell with the lowest (keep,
        value); when that equality holds no shown cell, break the derivation of one of its
        derivable hidden cells the same way. Leaks found only by combining relations fall
        back to the nearest shown cell around the leak (`_CellSearch`)."""
        system = search.system
        leak_index = system.index[leak]
        found = search.break_derivation(leak_index, set(), 0)
        if found is None:
            found = search.nearest(leak_index)
        return None if found is None else system.keys[found]

    def _blank_for(self, leak: Key, system: Derivation) -> Key | None:
        """When no shown cell is left to withhold (a month of small counts, where "<11"
        meaning "at least 1" in many parts pins a total): the "<11" cell beside the leak to
        leave blank (not printed at all), so that its "at least 1" no longer counts."""
        near = {k for r in system.rows_of(leak) for k in system.row_keys(r)}
        candidates = [k for k in near - {leak} if self._cells[k].state == PRIMARY]
        if not candidates and self._cells[leak].state == PRIMARY:
            candidates = [leak]
        return min(candidates, key=self._rank) if candidates else None

    def _rank(self, key: Key) -> tuple[int, int, int]:
        cell = self._cells[key]
        return cell.keep, cell.value, cell.order

    # -- reading -------------------------------------------------------------------------------

    def shown(self, ref: CountRef | Key) -> bool:
        return not self.on or self._cells[_key(ref)].state == SHOWN

    def printed(self, ref: CountRef | Key) -> Cell | None:
        """The count as printed: the number, "<11", "*", or None when not printed at all."""
        cell = self._cells[_key(ref)]
        if not self.on or cell.state == SHOWN:
            return cell.value
        if cell.state == PRIMARY:
            return Suppressed(self.small_cell_max)
        if cell.state == SECONDARY:
            return Withheld()
        return None

    def rate_dict(self, ref: RateRef) -> dict[str, Any]:
        """The rate dict of the templates' rate macros: rate, low, high, numerator, denominator,
        suppressed. Rate and interval are None when the denominator is 0 or a count is hidden."""
        k, n = self._cells[ref.numerator].value, self._cells[ref.denominator].value
        k_cell, n_cell = self.printed(ref.numerator), self.printed(ref.denominator)
        suppressed = not (self.shown(ref.numerator) and self.shown(ref.denominator))
        if n == 0 or suppressed:
            return {"rate": None, "low": None, "high": None, "numerator": k_cell,
                    "denominator": n_cell, "suppressed": suppressed}
        value, low, high = ref.value, ref.low, ref.high
        if value is None or low is None or high is None:
            interval = wilson(k, n)
            assert interval is not None
            value, (low, high) = k / n, interval
        return {"rate": float(value), "low": float(low), "high": float(high),
                "numerator": k_cell, "denominator": n_cell, "suppressed": False}

    def resolve(self, value: Any) -> Any:
        """The context with every reference replaced by what is printed (after solve())."""
        if not self.solved:
            raise RuntimeError("resolve() before solve()")
        if isinstance(value, CountRef):
            return self.printed(value)
        if isinstance(value, RateRef):
            return self.rate_dict(value)
        if isinstance(value, ShareRef):
            n = self._cells[value.denominator].value
            if n == 0 or not (self.shown(value.numerator) and self.shown(value.denominator)):
                return None
            return self._cells[value.numerator].value / n
        if isinstance(value, GuardRef):
            if all(self.shown(k) for k in value.keys):
                return self.resolve(value.value)
            return value.fallback
        if isinstance(value, Deferred):
            return self.resolve(value.build())
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.resolve(v) for v in value]
        return value


def _key(ref: CountRef | Key) -> Key:
    return ref.key if isinstance(ref, CountRef) else ref


class _CellSearch:
    """`Ledger._complement_for`'s search for a cell to withhold, over the cells' indexes in a
    `Derivation` (its cells in the order of `Ledger.keys()`), as the ledger stands now."""

    def __init__(self, ledger: Ledger, system: Derivation) -> None:
        self.system = system
        self.cells = list(ledger._cells.values())  # their states change as cells are withheld
        self.cols = [cols for cols, _, _ in system.rows]
        # what does not change while solving: printed, printed and not zero, the rank
        self.printed = [cell.printed for cell in self.cells]
        self.positive = [cell.printed and cell.value > 0 for cell in self.cells]
        self.rank = [(cell.keep, cell.value, cell.order) for cell in self.cells].__getitem__

    def usable(self, i: int) -> bool:
        """Shown, printed and not zero: a cell that may be withheld."""
        return self.positive[i] and self.cells[i].state == SHOWN

    def break_derivation(self, target: int, seen: set[int], depth: int) -> int | None:
        """The cell to withhold for `target`: the best shown cell of an equality that fixes it
        from printed cells alone; else the best shown cell of an equality fixing it or fixing
        a derivable hidden cell of such an equality (one step back); further back only if
        neither has one."""
        system, cells, cols, rank = self.system, self.cells, self.cols, self.rank
        printed, positive = self.printed, self.positive
        seen.add(target)
        witnesses = system.witnesses_of(target)
        # An equality whose other cells are all printed must lose one of them, whatever
        # else is done: start there.
        direct = [k for r in witnesses
                  if all(k == target or printed[k] and cells[k].state == SHOWN
                         for k in cols[r])
                  for k in cols[r]
                  if k not in seen and positive[k] and cells[k].state == SHOWN]
        if direct:
            return min(direct, key=rank)
        near = {k for r in witnesses for k in cols[r]} - seen
        fixed = system.fixed
        usable = [k for k in near if positive[k] and cells[k].state == SHOWN]
        derived = sorted((k for k in near if fixed[k]
                          and not (positive[k] and cells[k].state == SHOWN)), key=rank)
        candidates = usable
        for key in derived:
            candidates += [k for r in system.witnesses_of(key) for k in cols[r]
                           if k not in seen and k != key and positive[k]
                           and cells[k].state == SHOWN]
        if candidates:
            return min(candidates, key=rank)
        if depth >= 6:
            return None
        for key in derived:
            found = self.break_derivation(key, seen, depth + 1)
            if found is not None:
                return found
        return None

    def nearest(self, leak: int) -> int | None:
        """The best shown cell of the relations around `leak`, then of theirs (4 steps)."""
        touching, cols = self.system.touching, self.cols
        seen = {leak}
        frontier = {leak}
        for _ in range(4):
            rows = set().union(*(touching[k] for k in frontier))
            near = {k for r in rows for k in cols[r]} - seen
            candidates = [k for k in near if self.usable(k)]
            if candidates:
                return min(candidates, key=self.rank)
            if not near:
                return None
            seen |= near
            frontier = near
        return None
