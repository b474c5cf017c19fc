"""What a reader can work out from a report's printed cells: the relations of a `Ledger`
(pipeline/reports/suppression.py) over integer cell indexes, with interval bounds propagated
through every relation and linear combinations of the equalities found by exact elimination
modulo a large prime. `Ledger.solve` asks it, after each withholding, which hidden small
counts are still determined.
"""

from __future__ import annotations

import bisect
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
    """The ledger's relations over integer cell indexes, for the derivability check.

    Built once per `Ledger.solve`; what does not change between its rounds (the rows, their
    keys, which rows touch a cell) is worked out here once."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.keys = ledger.keys()
        self.index = index = {key: i for i, key in enumerate(self.keys)}
        equalities, inequalities = ledger.relations()
        self.rows: list[tuple[list[int], list[int], bool]] = [
            ([index[k] for k, _ in terms], [c for _, c in terms], equality)
            for relations, equality in ((equalities, True), (inequalities, False))
            for terms in relations]
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.fixed: list[bool] = []  # by cell: determined in the last check
        self.bounds = Bounds(self.rows)
        self.touching: list[list[int]] = [[] for _ in self.keys]
        for r, (cols, _, _) in enumerate(self.rows):
            for i in cols:
                self.touching[i].append(r)
        self._touching_equalities = [rows[:bisect.bisect_left(rows, len(equalities))]
                                     for rows in self.touching]  # equalities come first
        self._small = [ledger.small(ledger.value(k)) for k in self.keys]
        self._witnesses: dict[int, list[int]] = {}  # of the last check, by cell
        # `eliminate`'s view of the equalities: each as {cell: coefficient} (the row when all
        # its cells are unknown; coefficients between -prime and prime, see `_echelon`), and
        # one entry per (equality, cell) as arrays
        self._equalities = [{i: c if -_PRIME < c < _PRIME else c % _PRIME
                             for i, c in zip(cols, coefs, strict=True)}
                            for cols, coefs, _ in self.rows[:len(equalities)]]
        self._sizes = np.array([len(row) for row in self._equalities], dtype=np.int64)
        self._entry_row = np.repeat(np.arange(len(equalities), dtype=np.int64), self._sizes)
        self._entry_col = np.array([i for row in self._equalities for i in row], dtype=np.int64)

    def witnesses_of(self, i: int) -> list[int]:
        """Equalities holding the cell of index i whose other cells were all determined in the
        last check (`fixed`)."""
        found = self._witnesses.get(i)
        if found is None:
            lo, hi, rows = self.lo, self.hi, self.rows
            found = [r for r in self._touching_equalities[i]
                     if all(j == i or lo[j] == hi[j] for j in rows[r][0])]
            self._witnesses[i] = found
        return found

    def rows_of(self, key: Key) -> set[int]:
        return set(self.touching[self.index[key]])

    def row_keys(self, row: int) -> list[Key]:
        return [self.keys[i] for i in self.rows[row][0]]

    def determined_small(self) -> list[Key]:
        """Cells of 1..k that are not shown but that a reader can work out exactly."""
        ledger = self.ledger
        lo, hi = ledger.all_bounds()
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
        fixed = lo == hi
        self.fixed = fixed.tolist()
        self._witnesses = {}
        small, keys = self._small, self.keys
        return [keys[i] for i in np.flatnonzero(fixed).tolist()
                if small[i] and ledger.hidden_small(keys[i])]

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
        unknown_cells = lo != hi
        unknown = unknown_cells.tolist()
        # the equalities with two unknown cells or more, over their unknown cells
        entry_unknown = unknown_cells[self._entry_col]
        per_row = np.bincount(self._entry_row, entry_unknown, len(self._equalities))
        taking = per_row >= 2
        whole = (per_row == self._sizes).tolist()
        active: dict[int, dict[int, int]] = {}  # the rows are only read, never changed
        for r in np.flatnonzero(taking).tolist():
            row = self._equalities[r]
            active[r] = row if whole[r] else {i: c for i, c in row.items() if unknown[i]}
        # a cell's active rows: how many, and (when one) which; the cells in one row only,
        # in the order they first appear
        entries = taking[self._entry_row] & entry_unknown
        cols, rows = self._entry_col[entries], self._entry_row[entries]
        counts = np.bincount(cols, minlength=len(unknown))
        col_count = counts.tolist()
        col_sum = np.bincount(cols, rows, len(unknown)).astype(np.int64).tolist()
        first = cols[np.sort(np.unique(cols, return_index=True)[1])]
        stack = first[counts[first] == 1].tolist()
        peeled: list[tuple[int, dict[int, int]]] = []
        while stack:
            i = stack.pop()
            if col_count[i] != 1:
                continue
            r = col_sum[i]
            row = active.pop(r)
            peeled.append((i, row))
            for j in row:
                col_count[j] -= 1
                col_sum[j] -= r
                if col_count[j] == 1:
                    stack.append(j)
        pivots, columns = _echelon(list(active.values()))  # `active` is in row order
        randrange = random.Random(_SEED).randrange
        value: dict[int, int] = {}
        for i in sorted(columns.keys() - {p for p, _, _ in pivots}):
            value[i] = randrange(_PRIME)
        for p, rest, sign in reversed(pivots):  # a pivot row holds only pivots found after it
            value[p] = -sign * sum([c * value[i] for i, c in rest.items()]) % _PRIME
        for i, row in reversed(peeled):
            for j in row:
                if j != i and j not in value:  # in peeled rows only: free
                    value[j] = randrange(_PRIME)
            inverse = pow(row[i], -1, _PRIME) if row[i] else 0  # as pow(0, prime - 2, prime)
            value[i] = -inverse * sum([c * value[j] for j, c in row.items() if j != i]) % _PRIME
        newly = sorted(i for i, v in value.items() if v == 0 and unknown[i])
        for i in newly:
            lo[i] = hi[i] = self.ledger.value(self.keys[i])
        return newly


def _echelon(rows: list[dict[int, int]]
             ) -> tuple[list[tuple[int, dict[int, int], int]], dict[int, int]]:
    """Gaussian elimination modulo the prime: (pivot column, the rest of its row, sign), the
    row with its pivot coefficient made 1 being sign * rest (a pivot coefficient of -1 is
    not divided out), in the order found, and how many rows hold each column. A row holds
    no pivot column found before its own. A row is reduced by the pivots it holds, oldest
    first, and pivots on its cell found in the fewest rows (less fill-in; any order spans the
    same rows).

    Coefficients are kept as whole numbers between -prime and prime, reduced modulo the prime
    only when they leave that range: equal modulo the prime to the reduced ones, and zero
    exactly when those are (the reports' small coefficients then stay small and quick)."""
    found: dict[int, int] = {}  # pivot column -> position in `pivots`
    pivots: list[tuple[int, dict[int, int], int]] = []
    count: dict[int, int] = {}
    for source in rows:
        for i in source:
            count[i] = count.get(i, 0) + 1
    # the pivot of a row: its cell in the fewest rows, then the lowest; as one number
    width = max(count, default=0) + 1
    fewest = {i: n * width + i for i, n in count.items()}.__getitem__
    heappush, heappop = heapq.heappush, heapq.heappop
    for source in sorted(rows, key=len):
        row = {i: c for i, c in source.items() if c}
        hits = [found[i] for i in row if i in found]  # positions: oldest pivot first
        heapq.heapify(hits)
        while hits:
            col, rest, sign = pivots[heappop(hits)]
            factor = row.pop(col, 0) * sign
            if not factor:
                continue
            for i, v in rest.items():
                new = row.get(i, 0) - factor * v
                if not -_PRIME < new < _PRIME:
                    new %= _PRIME
                if new:
                    if i not in row and i in found:
                        heappush(hits, found[i])
                    row[i] = new
                else:
                    row.pop(i, None)
        if row:
            pivot = min(row, key=fewest)
            lead = row.pop(pivot)
            if lead in (1, -1):
                rest, sign = row, lead
            else:
                inverse = pow(lead, -1, _PRIME)
                rest, sign = {i: v * inverse % _PRIME for i, v in row.items()}, 1
            found[pivot] = len(pivots)
            pivots.append((pivot, rest, sign))
    return pivots, count
