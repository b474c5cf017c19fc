"""The derivation engine of small-cell suppression (pipeline/reports/derivable.py, bounds.py)
against references written here: interval bounds applied one relation at a time, and which
cells the equalities determine by exact rational arithmetic (fractions.Fraction ranks).

The systems are random but built so that every relation holds for the true counts, as a
report's do: totals are sums of parts, and some parts are compared with "at least" relations.
"""

from __future__ import annotations

import random
from fractions import Fraction

import numpy as np
import pytest

from pipeline.reports.bounds import Bounds
from pipeline.reports.derivable import Derivation
from pipeline.reports.suppression import PRIMARY, SECONDARY, UNPRINTED, Ledger

INF = float("inf")


def random_ledger(seed: int, leaves: int = 14, totals: int = 10) -> Ledger:
    """Counts 0..25 and totals of 2-4 earlier cells; a few `at_least` relations; each cell
    shown, "<11", "*" or not printed at random."""
    draw = random.Random(seed)
    ledger = Ledger(on=True)
    keys = []
    for i in range(leaves):
        keys.append(ledger.count(("leaf", i), draw.randint(0, 25)).key)
    for i in range(totals):
        parts = draw.sample(keys, draw.randint(2, 4))
        total = ledger.count(("total", i), sum(ledger.value(p) for p in parts)).key
        ledger.add(total, parts)
        keys.append(total)
    for _ in range(3):
        a, b = draw.sample(keys, 2)
        big, small = (a, b) if ledger.value(a) >= ledger.value(b) else (b, a)
        ledger.at_least([big], [small])
    for key in keys:
        value = ledger.value(key)
        roll = draw.random()
        if 1 <= value <= 10 and roll < 0.6:
            ledger._cells[key].state = PRIMARY
        elif value > 10 and roll < 0.2:
            ledger._cells[key].state = SECONDARY
        elif roll < 0.15:
            ledger._cells[key].state = UNPRINTED
    return ledger


def sequential_bounds(rows: list[tuple[list[int], list[int], bool]], lo: list[float],
                      hi: list[float]) -> None:
    """Each relation in turn, again and again, until none tightens anything (coefficients
    +-1, as the reports declare them)."""
    changed = True
    while changed:
        changed = False
        for cols, coefs, equality in rows:
            for i, c in zip(cols, coefs, strict=True):
                new_lo, new_hi = relation_bounds(cols, coefs, equality, i, c, lo, hi)
                if new_lo > lo[i] or new_hi < hi[i]:
                    lo[i], hi[i] = max(lo[i], new_lo), min(hi[i], new_hi)
                    changed = True


def relation_bounds(cols: list[int], coefs: list[int], equality: bool, i: int, c: int,
                    lo: list[float], hi: list[float]) -> tuple[float, float]:
    """What one relation says of its cell i (coefficient c, +-1) from the others' bounds."""
    others = [(j, d) for j, d in zip(cols, coefs, strict=True) if j != i]
    most = sum(hi[j] if d > 0 else -lo[j] for j, d in others)
    least = sum(lo[j] if d > 0 else -hi[j] for j, d in others)
    # c x + others = 0 (or >= 0)
    if c > 0:
        return -most, (-least if equality else INF)
    return (least if equality else -INF), most


def rank(rows: list[list[Fraction]]) -> int:
    """Rank over the rationals (plain Gaussian elimination)."""
    rows = [list(r) for r in rows]
    found = 0
    for col in range(len(rows[0]) if rows else 0):
        pivot = next((r for r in range(found, len(rows)) if rows[r][col] != 0), None)
        if pivot is None:
            continue
        rows[found], rows[pivot] = rows[pivot], rows[found]
        for r in range(len(rows)):
            if r != found and rows[r][col] != 0:
                factor = rows[r][col] / rows[found][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[found], strict=True)]
        found += 1
    return found


def determined_by_equalities(system: Derivation, unknown: list[int]) -> set[int]:
    """Cells among `unknown` that the equalities fix once every other cell is known: e_i lies
    in the row space of the equalities restricted to the unknown cells."""
    position = {i: n for n, i in enumerate(unknown)}
    matrix = []
    for cols, coefs, equality in system.rows:
        if equality:
            row = [Fraction(0)] * len(unknown)
            for i, c in zip(cols, coefs, strict=True):
                if i in position:
                    row[position[i]] += c
            matrix.append(row)
    base = rank(matrix)
    found = set()
    for i in unknown:
        unit = [Fraction(int(position[i] == n)) for n in range(len(unknown))]
        if rank([*matrix, unit]) == base:
            found.add(i)
    return found


@pytest.mark.parametrize("seed", range(40))
def test_bounds_reach_the_fixed_point_of_one_relation_at_a_time(seed: int) -> None:
    system = Derivation(random_ledger(seed))
    lo_array, hi_array = system.ledger.all_bounds()
    lo, hi = lo_array.tolist(), hi_array.tolist()
    sequential_bounds(system.rows, lo, hi)
    assert Bounds(system.rows).propagate(lo_array, hi_array)
    assert lo_array.tolist() == lo
    assert hi_array.tolist() == hi
    values = [system.ledger.value(k) for k in system.keys]
    assert all(a <= v <= b for a, v, b in zip(lo, values, hi, strict=True))


def sweep(rows: list[tuple[list[int], list[int], bool]], lo: list[float],
          hi: list[float]) -> bool:
    """One sweep of every relation at once: each bounds its cells from the bounds as they were
    before the sweep, and what all of them say is intersected. True if anything tightened."""
    new_lo, new_hi = list(lo), list(hi)
    for cols, coefs, equality in rows:
        for i, c in zip(cols, coefs, strict=True):
            low, high = relation_bounds(cols, coefs, equality, i, c, lo, hi)
            new_lo[i], new_hi[i] = max(new_lo[i], low), min(new_hi[i], high)
    changed = new_lo != lo or new_hi != hi
    lo[:], hi[:] = new_lo, new_hi
    return changed


@pytest.mark.parametrize("seed", range(20))
def test_bounds_after_each_sweep_are_those_of_every_relation_at_once(seed: int) -> None:
    # propagate applies only the relations of cells the last sweep tightened: stopped after
    # any number of sweeps, it must hold what sweeping every relation would
    system = Derivation(random_ledger(seed, leaves=12 + seed % 5, totals=8 + seed % 7))
    start = system.ledger.all_bounds()
    lo, hi = start[0].tolist(), start[1].tolist()
    sweeps = 0
    while sweep(system.rows, lo, hi):
        sweeps += 1
        lo_array, hi_array = start[0].copy(), start[1].copy()
        finished = Bounds(system.rows).propagate(lo_array, hi_array, sweeps=sweeps)
        assert lo_array.tolist() == lo
        assert hi_array.tolist() == hi
        assert not finished  # one more sweep is needed to see that nothing tightens
    assert Bounds(system.rows).propagate(start[0].copy(), start[1].copy(), sweeps=sweeps + 1)


def test_bounds_round_a_coefficient_of_two_inwards() -> None:
    # 2x = y with y in 5..9: x in 2.5..4.5, so 3..4 (whole counts), and then y in 6..8
    system = Bounds([([0, 1], [2, -1], True)])
    lo, hi = np.array([0.0, 5.0]), np.array([INF, 9.0])
    assert system.propagate(lo, hi)
    assert lo.tolist() == [3.0, 6.0]
    assert hi.tolist() == [4.0, 8.0]


@pytest.mark.parametrize("seed", range(60))
def test_elimination_fixes_exactly_the_cells_the_equalities_determine(seed: int) -> None:
    system = Derivation(random_ledger(seed, leaves=10 + seed % 7, totals=6 + seed % 9))
    draw = random.Random(1000 + seed)
    values = [system.ledger.value(k) for k in system.keys]
    hidden = set(draw.sample(range(len(values)), len(values) * 2 // 3))
    lo = np.array([0.0 if i in hidden else v for i, v in enumerate(values)])
    hi = np.array([INF if i in hidden else v for i, v in enumerate(values)])
    # the engine bounds first: a relation with one unknown cell fixes it there
    assert system.bounds.propagate(lo, hi)
    unknown = [i for i in range(len(values)) if lo[i] != hi[i]]
    fixed = system.eliminate(lo, hi)
    assert set(fixed) == determined_by_equalities(system, unknown)
    assert all(lo[i] == hi[i] == values[i] for i in fixed)


def test_a_total_less_its_shown_parts_is_found_however_many_relations_it_takes() -> None:
    # a = b + c, b = d + e, with a, c, d shown: e = a - c - d needs both relations
    ledger = Ledger(on=True)
    for name, value in {"a": 30, "b": 22, "c": 8, "d": 19, "e": 3}.items():
        ledger.count((name,), value)
    ledger.add(("a",), [("b",), ("c",)])
    ledger.add(("b",), [("d",), ("e",)])
    ledger._cells[("b",)].state = UNPRINTED
    ledger._cells[("e",)].state = PRIMARY
    assert Derivation(ledger).determined_small() == [("e",)]
    ledger._cells[("d",)].state = SECONDARY  # withheld: e is no longer determined
    assert Derivation(ledger).determined_small() == []
