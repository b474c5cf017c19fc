"""Printed cells of the monthly report: counts and rates with SPEC §2 small-cell suppression.

Suppression is decided here, once, while the context is built; templates only format what
arrives (`Suppressed` prints "<11", `Withheld` prints "*"). With suppression on:

- a count from 1 to small_cell_max is `Suppressed`;
- a rate is withheld when its numerator, its denominator or their difference is such a count
  (the difference would be derivable from the two printed counts);
- complementary suppression: in a group of cells whose total is printed (sites adding up to the
  clinic, response + partial + non-response adding up to the evaluable courses), a lone
  suppressed cell is joined by the smallest other non-zero cell, marked `Withheld`, so that the
  suppressed value cannot be got back by subtraction.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import Definitions
from pipeline.formatting import Suppressed, Withheld, is_withheld
from pipeline.stats import wilson

Cell = int | Suppressed | Withheld


class Cells:
    """Turns raw counts into printed cells under one set of definitions."""

    def __init__(self, definitions: Definitions) -> None:
        self.on = definitions.suppress_small_cells
        self.small_cell_max = definitions.small_cell_max

    def small(self, n: int) -> bool:
        return self.on and 1 <= n <= self.small_cell_max

    def count(self, n: int) -> Cell:
        return Suppressed(self.small_cell_max) if self.small(n) else int(n)

    def group(self, counts: list[int], total_printed: bool = True) -> list[Cell]:
        """Cells of counts that add up to a printed total, with complementary suppression."""
        cells: list[Cell] = [self.count(n) for n in counts]
        if not self.on or not total_printed:
            return cells
        hidden = [i for i, c in enumerate(cells) if is_withheld(c)]
        if len(hidden) == 1:
            candidates = [(counts[i], i) for i, c in enumerate(cells)
                          if not is_withheld(c) and counts[i] > 0]
            if candidates:
                cells[min(candidates)[1]] = Withheld()
        return cells

    def derived(self, total: int, part: int) -> Cell:
        """The cell of `part` when `total` is printed elsewhere: withheld when total - part
        (e.g. courses without an endpoint = ITT courses - evaluable) would be a small cell."""
        if self.small(total - part) and not self.small(part) and part > 0:
            return Withheld()
        return self.count(part)

    def rate(
        self,
        numerator: int,
        denominator: int,
        *,
        numerator_cell: Cell | None = None,
        denominator_cell: Cell | None = None,
        value: float | None = None,
        low: float | None = None,
        high: float | None = None,
    ) -> dict[str, Any]:
        """A rate dict for the `rate` macros: rate, low, high, numerator, denominator, suppressed.

        value/low/high come from a metrics table when given (protocol_summary, safety), else
        from stats.wilson. Rate and interval are None when the denominator is 0 or withheld.
        """
        k, n = int(numerator), int(denominator)
        k_cell = numerator_cell if numerator_cell is not None else self.count(k)
        n_cell = denominator_cell if denominator_cell is not None else self.count(n)
        suppressed = self.on and (
            self.small(k) or self.small(n) or self.small(n - k)
            or is_withheld(k_cell) or is_withheld(n_cell)
        )
        if suppressed and not is_withheld(k_cell) and k > 0:
            # printing k beside n would give away the small difference n - k
            k_cell = Withheld()
        if n == 0 or suppressed:
            return {"rate": None, "low": None, "high": None, "numerator": k_cell,
                    "denominator": n_cell, "suppressed": bool(suppressed)}
        if value is None or low is None or high is None:
            interval = wilson(k, n)
            assert interval is not None
            value, (low, high) = k / n, interval
        return {"rate": float(value), "low": float(low), "high": float(high),
                "numerator": k_cell, "denominator": n_cell, "suppressed": False}


def share(cell: Cell, n: int, cells: Cells) -> float | None:
    """A count's share of n for an 'n (%)' cell; None when the count or n is withheld/0."""
    if is_withheld(cell) or n == 0 or cells.small(n):
        return None
    assert isinstance(cell, int)
    return cell / n
