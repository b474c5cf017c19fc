"""What a reader can work out from a report's printed cells: the relations of a `Ledger`
(pipeline/reports/suppression.py) over integer cell indexes, with interval bounds propagated
through every relation and linear combinations of the equalities found by exact elimination
modulo a large prime. `Ledger.solve` asks it, after each withholding, which hidden small
counts are still determined.
"""

from __future__ import annotations

import heapq
import random
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.reports.bounds import Bounds

if TYPE_CHECKING:
    from pipeline.reports.suppression import Ledger

Key = tuple[Any, ...]
_PRIME = (1 << 61) - 1  # elimination modulo a large prime: exact ranks for these small systems
_SEED = 20261202  # the random solution of `eliminate`: fixed, so a report is reproducible


class Derivation:
    """The ledger's relations over integer cell indexes, for the derivability check."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.keys = ledger.keys()
        self.index = {key: i for i, key in enumerate(self.keys)}
        equalities, inequalities = ledger.relations()
        self.rows: list[tuple[list[int], list[int], bool]] = [
            ([self.index[k] for k, _ in terms], [c for _, c in terms], True)
            for terms in equalities
        ] + [([self.index[k] for k, _ in terms], [c for _, c in terms], False)
             for terms in inequalities]
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.bounds = Bounds(self.rows)
        self.touching: list[list[int]] = [[] for _ in self.keys]
        for r, (cols, _, _) in enumerate(self.rows):
            for i in cols:
                self.touching[i].append(r)

    def known(self, key: Key) -> bool:
        """Determined in the last check (shown, or derivable)."""
        i = self.index[key]
        return bool(self.lo[i] == self.hi[i])

    def witnesses(self, key: Key) -> list[int]:
        """Equalities holding `key` whose other cells were all determined in the last check."""
        i = self.index[key]
        return [r for r in self.touching[i] if self.rows[r][2]
                and all(j == i or self.lo[j] == self.hi[j] for j in self.rows[r][0])]

    def rows_of(self, key: Key) -> set[int]:
        return set(self.touching[self.index[key]])

    def row_keys(self, row: int) -> list[Key]:
        return [self.keys[i] for i in self.rows[row][0]]

    def determined_small(self) -> list[Key]:
        """Cells of 1..k that are not shown but that a reader can work out exactly."""
        ledger = self.ledger
        bounds = [ledger.bounds(k) for k in self.keys]
        lo = np.array([b[0] for b in bounds], dtype=float)
        hi = np.array([b[1] for b in bounds], dtype=float)
        fixed_by_elimination = -1
        for _ in range(10):
            self.bounds.propagate(lo, hi)
            if int(np.count_nonzero(lo == hi)) == fixed_by_elimination:
                # elimination depends only on which cells are fixed, and the cells it fixed
                # lie in the span it used: with nothing new fixed it finds nothing more
                break
            if not self.eliminate(lo, hi):
                break
            fixed_by_elimination = int(np.count_nonzero(lo == hi))
        self.lo, self.hi = lo.tolist(), hi.tolist()
        return [k for i, k in enumerate(self.keys)
                if self.lo[i] == self.hi[i] and ledger.hidden_small(k)]

    def eliminate(self, lo: np.ndarray, hi: np.ndarray) -> list[int]:
        """Fix cells that linear combinations of the equalities determine; the cells fixed.

        A cell not fixed by its bounds is determined by the equalities exactly when it is zero
        in every solution of the homogeneous system (the equalities over the unknown cells,
        the known ones moved to the constant side). One solution drawn at random from all of
        them (modulo a 61-bit prime, from a fixed seed) shows this: a cell that is not
        determined is zero in it with probability 1 in 2**61 - 1, and such a miss would only
        withhold one cell more, never print one that should be hidden.

        Rows with a cell found in no other row are peeled first (that cell absorbs any change:
        its value follows from the others of its row); the rest is brought to echelon form
        (Gaussian elimination modulo the prime), its free cells drawn at random, its pivot
        cells solved back, then the peeled cells in reverse order.
        """
        unknown = (lo != hi).tolist()
        active: dict[int, dict[int, int]] = {}
        col_rows: dict[int, set[int]] = {}
        for r, (cols, coefs, equality) in enumerate(self.rows):
            if not equality:
                continue
            row = {i: c for i, c in zip(cols, coefs, strict=True) if unknown[i]}
            if len(row) >= 2:
                active[r] = row
                for i in row:
                    col_rows.setdefault(i, set()).add(r)
        peeled: list[tuple[int, dict[int, int]]] = []
        stack = [i for i, rs in col_rows.items() if len(rs) == 1]
        while stack:
            i = stack.pop()
            if len(col_rows.get(i, ())) != 1:
                continue
            r = next(iter(col_rows[i]))
            row = active.pop(r)
            peeled.append((i, row))
            for j in row:
                col_rows[j].discard(r)
                if len(col_rows[j]) == 1:
                    stack.append(j)
        pivots = _echelon([active[r] for r in sorted(active)])
        draw = random.Random(_SEED)
        value: dict[int, int] = {}
        pivot_columns = {p for p, _ in pivots}
        for i in sorted({i for row in active.values() for i in row} - pivot_columns):
            value[i] = draw.randrange(_PRIME)
        for p, row in reversed(pivots):  # a pivot row holds only pivots found after it
            value[p] = -sum(c * value[i] for i, c in row.items() if i != p) % _PRIME
        for i, row in reversed(peeled):
            for j in row:
                if j != i and j not in value:  # in peeled rows only: free
                    value[j] = draw.randrange(_PRIME)
            inverse = pow(row[i] % _PRIME, _PRIME - 2, _PRIME)
            value[i] = -inverse * sum(c * value[j] for j, c in row.items() if j != i) % _PRIME
        newly = sorted(i for i, v in value.items() if v == 0 and unknown[i])
        for i in newly:
            lo[i] = hi[i] = self.ledger.value(self.keys[i])
        return newly


def _echelon(rows: list[dict[int, int]]) -> list[tuple[int, dict[int, int]]]:
    """Gaussian elimination modulo the prime: (pivot column, its row with pivot coefficient 1),
    in the order found; a row holds no pivot column found before its own. A row is reduced by
    the pivots it holds, oldest first, and pivots on its cell found in the fewest rows (less
    fill-in; any order spans the same rows)."""
    found: dict[int, int] = {}  # pivot column -> position in `pivots`
    pivots: list[tuple[int, dict[int, int]]] = []
    count: dict[int, int] = {}
    for source in rows:
        for i in source:
            count[i] = count.get(i, 0) + 1
    for source in sorted(rows, key=len):
        row = {i: c % _PRIME for i, c in source.items() if c % _PRIME}
        hits = [(found[i], i) for i in row if i in found]
        heapq.heapify(hits)
        while hits:
            _, col = heapq.heappop(hits)
            factor = row.pop(col, 0)
            if not factor:
                continue
            for i, v in pivots[found[col]][1].items():
                if i == col:
                    continue
                new = (row.get(i, 0) - factor * v) % _PRIME
                if new:
                    if i not in row and i in found:
                        heapq.heappush(hits, (found[i], i))
                    row[i] = new
                else:
                    row.pop(i, None)
        if row:
            pivot = min(row, key=lambda i: (count[i], i))
            inverse = pow(row[pivot], _PRIME - 2, _PRIME)
            found[pivot] = len(pivots)
            pivots.append((pivot, {i: v * inverse % _PRIME for i, v in row.items()}))
    return pivots
