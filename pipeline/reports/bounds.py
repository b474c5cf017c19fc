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
        # entries grouped by cell, for the per-cell maximum / minimum of what the rows say
        self.by_col = np.argsort(self.col, kind="stable")
        cols = self.col[self.by_col]
        self.col_start = np.flatnonzero(np.r_[True, cols[1:] != cols[:-1]]) if cols.size else cols
        self.col_of_group = cols[self.col_start] if cols.size else cols

    def propagate(self, lo: np.ndarray, hi: np.ndarray, sweeps: int = 10_000) -> bool:
        """Tighten `lo` / `hi` in place to the fixed point; False if `sweeps` ran out first."""
        if not self.col.size:
            return True
        row, col, coef, up, equality = self.row, self.col, self.coef, self.up, self.equality
        for _ in range(sweeps):
            low, high = lo[col], hi[col]
            mins = np.where(up, coef * low, coef * high)  # the least c_j x_j can be
            maxs = np.where(up, coef * high, coef * low)  # the most
            min_inf = mins == -INF
            max_inf = maxs == INF
            min_fin = np.where(min_inf, 0.0, mins)
            max_fin = np.where(max_inf, 0.0, maxs)
            row_min_inf = np.bincount(row, min_inf, self.rows)
            row_max_inf = np.bincount(row, max_inf, self.rows)
            row_min = np.bincount(row, min_fin, self.rows)
            row_max = np.bincount(row, max_fin, self.rows)
            # the others of the entry's row: the row's sum less the entry (infinite parts apart)
            others_max = np.where(row_max_inf[row] - max_inf > 0, INF, row_max[row] - max_fin)
            others_min = np.where(row_min_inf[row] - min_inf > 0, -INF, row_min[row] - min_fin)
            # c x >= -others_max always (sum >= 0); c x <= -others_min for equalities; dividing
            # by a negative c turns each side over
            by_max, by_min = -others_max / coef, -others_min / coef
            new_lo = np.where(up, np.ceil(by_max), np.where(equality, np.ceil(by_min), -INF))
            new_hi = np.where(up, np.where(equality, np.floor(by_min), INF), np.floor(by_max))
            said_lo = np.maximum.reduceat(new_lo[self.by_col], self.col_start)
            said_hi = np.minimum.reduceat(new_hi[self.by_col], self.col_start)
            cells = self.col_of_group
            tighter_lo = said_lo > lo[cells]
            tighter_hi = said_hi < hi[cells]
            if not (tighter_lo.any() or tighter_hi.any()):
                return True
            lo[cells[tighter_lo]] = said_lo[tighter_lo]
            hi[cells[tighter_hi]] = said_hi[tighter_hi]
        return False
