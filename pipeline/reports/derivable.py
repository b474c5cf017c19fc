"""What a reader can work out from a report's printed cells: the relations of a `Ledger`
(pipeline/reports/suppression.py) over integer cell indexes, with interval bounds propagated
through every relation and linear combinations of the equalities found by exact elimination
modulo a large prime. `Ledger.solve` asks it, after each withholding, which hidden small
counts are still determined.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipeline.reports.suppression import Ledger

Key = tuple[Any, ...]
INF = float("inf")
_PRIME = (1 << 61) - 1  # elimination modulo a large prime: exact ranks for these small systems


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
        lo = [b[0] for b in bounds]
        hi = [b[1] for b in bounds]
        for _ in range(10):
            self.propagate(lo, hi)
            if not self.eliminate(lo, hi):
                break
        self.lo, self.hi = lo, hi
        return [k for i, k in enumerate(self.keys) if ledger.hidden_small(k) and lo[i] == hi[i]]

    def propagate(self, lo: list[float], hi: list[float]) -> None:
        """Interval bounds through every relation, to a fixed point (worklist)."""
        rows, touching = self.rows, self.touching
        # a row whose cells are all fixed tightens nothing: only the others start queued
        queue = [r for r, (cols, _, _) in enumerate(rows) if any(lo[i] != hi[i] for i in cols)]
        queued = [True] * len(rows)
        budget = 200 * len(rows) + 1000
        while queue and budget > 0:
            budget -= 1
            r = queue.pop()
            queued[r] = False
            cols, coefs, equality = rows[r]
            mins = [lo[i] if c > 0 else -hi[i] for i, c in zip(cols, coefs, strict=True)]
            maxs = [hi[i] if c > 0 else -lo[i] for i, c in zip(cols, coefs, strict=True)]
            min_inf = mins.count(-INF)
            max_inf = maxs.count(INF)
            min_fin = sum(m for m in mins if m != -INF)
            max_fin = sum(m for m in maxs if m != INF)
            for j, i in enumerate(cols):
                others_max = INF if max_inf - (maxs[j] == INF) > 0 else (
                    max_fin - (maxs[j] if maxs[j] != INF else 0))
                others_min = -INF if min_inf - (mins[j] == -INF) > 0 else (
                    min_fin - (mins[j] if mins[j] != -INF else 0))
                # c*x >= -others_max always (sum >= 0); c*x <= -others_min for equalities
                new_lo, new_hi = lo[i], hi[i]
                if coefs[j] > 0:
                    new_lo = max(new_lo, -others_max)
                    if equality:
                        new_hi = min(new_hi, -others_min)
                else:
                    new_hi = min(new_hi, others_max)
                    if equality:
                        new_lo = max(new_lo, others_min)
                if new_lo > lo[i] or new_hi < hi[i]:
                    lo[i], hi[i] = new_lo, new_hi
                    for other in touching[i]:
                        if not queued[other]:
                            queued[other] = True
                            queue.append(other)

    def eliminate(self, lo: list[float], hi: list[float]) -> bool:
        """Fix cells that linear combinations of the equalities determine; True if any.

        Rows with a cell found in no other row are peeled first (that cell absorbs any
        change, so the row tells nothing about the others); Gaussian elimination modulo a
        large prime runs on what remains, and a peeled cell is determined when the linear form
        of its row's other cells lies in the row space of that core.
        """
        unknown = [lo[i] != hi[i] for i in range(len(self.keys))]
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
        determined: set[int] = set()
        pivots: dict[int, dict[int, int]] = {}
        # column -> the pivots whose (fully reduced) row holds it: back-substitution touches
        # only those rows instead of scanning every pivot (same arithmetic, same result)
        holders: dict[int, set[int]] = {}

        def subtract(target: int, into: dict[int, int], factor: int, row: dict[int, int]) -> None:
            for i, v in row.items():
                value = (into.get(i, 0) - factor * v) % _PRIME
                if value:
                    if i not in into:
                        holders.setdefault(i, set()).add(target)
                    into[i] = value
                elif i in into:
                    del into[i]
                    holders[i].discard(target)

        for row in (dict(v) for _, v in sorted(active.items())):
            row = {i: c % _PRIME for i, c in row.items()}
            while True:
                hit = next((i for i in row if i in pivots), None)
                if hit is None:
                    break
                factor = row[hit]
                for i, v in pivots[hit].items():
                    value = (row.get(i, 0) - factor * v) % _PRIME
                    if value:
                        row[i] = value
                    else:
                        row.pop(i, None)
            if not row:
                continue
            pivot = min(row)
            inverse = pow(row[pivot], _PRIME - 2, _PRIME)
            row = {i: v * inverse % _PRIME for i, v in row.items()}
            for other in sorted(holders.get(pivot, ())):
                subtract(other, pivots[other], pivots[other][pivot], row)
            pivots[pivot] = row
            for i in row:
                holders.setdefault(i, set()).add(pivot)
        determined.update(i for i, row in pivots.items() if len(row) == 1)

        def reduced(form: dict[int, int]) -> dict[int, int]:
            # pivot rows are fully reduced: one pass leaves only non-pivot columns
            for col in [c for c in form if c in pivots]:
                factor = form.pop(col)
                for i, v in pivots[col].items():
                    if i != col:
                        value = (form.get(i, 0) - factor * v) % _PRIME
                        if value:
                            form[i] = value
                        else:
                            form.pop(i, None)
            return form

        # A peeled cell equals a linear form of the others of its row; it is determined when
        # that form is (reduces to nothing against the core), not only when each part is.
        expression: dict[int, dict[int, int]] = {}
        for i, row in reversed(peeled):
            scale = (-pow(row[i] % _PRIME, _PRIME - 2, _PRIME)) % _PRIME
            form: dict[int, int] = {}
            for j, c in row.items():
                if j == i:
                    continue
                for u, v in (expression[j].items() if j in expression else ((j, 1),)):
                    value = (form.get(u, 0) + scale * c * v) % _PRIME
                    if value:
                        form[u] = value
                    else:
                        form.pop(u, None)
            expression[i] = form
            if not reduced(dict(form)):
                determined.add(i)
        fixed = False
        for i in determined:
            if unknown[i]:
                lo[i] = hi[i] = self.ledger.value(self.keys[i])
                fixed = True
        return fixed
