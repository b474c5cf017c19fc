"""Interval bounds of report cells through their relations (pipeline/reports/derivable.py).

Each relation is a sum of cells with integer coefficients (+1 or -1 in the reports) that is
= 0 (an equality) or >= 0 (an inequality). What a reader knows of a cell (a whole count) is an
interval [lo, hi]; a relation bounds each of its cells by the bounds of the others: for
sum(c_j x_j) = 0, c_i x_i = -sum(others), so c_i x_i lies between minus the largest and minus
the smallest the others can add up to (an inequality gives only the first side), and x_i
between those divided by c_i, rounded inwards.

All relations are applied at once, as array operations, and the intersection of what they say
is taken, until nothing tightens (a fixed point). The bounds only ever shrink, always contain
the true counts and move in whole steps, so this ends, and at the same fixed point as applying
the relations one at a time in any order: the largest set of bounds that every relation
leaves as it is.
"""

from __future__ import annotations

import numpy as np

INF = float("inf")


class Bounds:
    """The relations as arrays: one entry per (relation, cell)."""

    def __init__(self, rows: list[tuple[list[int], list[int], bool]]) -> None:
        self.rows = len(rows)
        self.row = np.array([r for r, (cols, _, _) in enumerate(rows) for _ in cols], dtype=np.int64)
        self.col = np.array([i for cols, _, _ in rows for i in cols], dtype=np.int64)
        self.coef = np.array([c for _, coefs, _ in rows for c in coefs], dtype=float)
        self.up = self.coef > 0
        self.equality = np.array([eq for cols, _, eq in rows for _ in cols], dtype=bool)
        # an inequality bounds a cell on one side only: from below when its coefficient is
        # positive, from above when negative
        self.no_low = ~self.up & ~self.equality
        self.no_high = self.up & ~self.equality
        self.cells = int(self.col.max()) + 1 if self.col.size else 0

    def propagate(self, lo: np.ndarray, hi: np.ndarray, sweeps: int = 10_000) -> bool:
        """Tighten `lo` / `hi` in place to the fixed point; False if `sweeps` ran out first.

        Each sweep applies every relation to the bounds as they were at its start. A relation
        none of whose cells was tightened by the last sweep says what it said then, which
        that sweep applied, so after the first sweep only the relations of the cells just
        tightened are applied: the same bounds after every sweep, for less work."""
        if not self.col.size:
            return True
        rows = self.rows
        row, col, coef, up = self.row, self.col, self.coef, self.up
        no_low, no_high = self.no_low, self.no_high
        for _ in range(sweeps):
            low, high = lo[col], hi[col]
            mins = coef * np.where(up, low, high)  # the least c_j x_j can be
            maxs = coef * np.where(up, high, low)  # the most
            min_inf = mins == -INF
            max_inf = maxs == INF
            min_fin = np.where(min_inf, 0.0, mins)
            max_fin = np.where(max_inf, 0.0, maxs)
            row_min_inf = np.bincount(row, min_inf, rows)[row]
            row_max_inf = np.bincount(row, max_inf, rows)[row]
            row_min = np.bincount(row, min_fin, rows)[row]
            row_max = np.bincount(row, max_fin, rows)[row]
            # the others of the entry's row: the row's sum less the entry (infinite parts apart)
            others_max = np.where(row_max_inf > max_inf, INF, row_max - max_fin)
            others_min = np.where(row_min_inf > min_inf, -INF, row_min - min_fin)
            # c x >= -others_max always (sum >= 0); c x <= -others_min for equalities; dividing
            # by a negative c turns each side over
            new_lo = -np.where(up, others_max, others_min) / coef
            new_hi = -np.where(up, others_min, others_max) / coef
            new_lo[no_low] = -INF
            new_hi[no_high] = INF
            np.ceil(new_lo, out=new_lo)
            np.floor(new_hi, out=new_hi)
            tighter_lo = new_lo > low
            tighter_hi = new_hi < high
            if not (tighter_lo.any() or tighter_hi.any()):
                return True
            raised, lowered = col[tighter_lo], col[tighter_hi]
            np.maximum.at(lo, raised, new_lo[tighter_lo])
            np.minimum.at(hi, lowered, new_hi[tighter_hi])
            # the next sweep: the entries of the relations of the cells just tightened
            tightened = np.zeros(self.cells, dtype=bool)
            tightened[raised] = True
            tightened[lowered] = True
            again = np.zeros(rows, dtype=bool)
            again[self.row[tightened[self.col]]] = True
            entries = np.flatnonzero(again[self.row])
            row, col, coef, up = (self.row[entries], self.col[entries], self.coef[entries],
                                  self.up[entries])
            no_low, no_high = self.no_low[entries], self.no_high[entries]
        return False
