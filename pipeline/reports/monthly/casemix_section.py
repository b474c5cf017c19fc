"""The monthly report's case-mix adjusted comparison of sites and providers (docs/case-mix.md):
the model of pipeline/casemix.py over the rolling 12 months, as printed cells.

Per site and provider: courses in the model, observed responders O (a count like any other),
the raw response rate, expected responders E, O/E with its 95% interval, the adjusted rate and
where the interval lies against 1. Under small-cell suppression (docs/suppression.md, "Case
mix"): O and the unit's courses are ledger counts; E, O/E, its interval, the adjusted rate and
the position are printed only when O and the model's responders and courses are shown and E is
above small_cell_max (an E of 1..k prints as "<11"), since O = O/E x E, the interval gives O
back from E and the adjusted rate gives the overall rate (responders / courses) from O/E.
"""

from __future__ import annotations

import math
from typing import Any

from pipeline.casemix import CaseMix, ModelSummary, UnitComparison, case_mix
from pipeline.formatting import Suppressed
from pipeline.months import Month
from pipeline.reports.monthly.data import MonthlyData
from pipeline.reports.monthly.periods import ALL, KEEP_DENOMINATOR, KEEP_TOTAL, Period
from pipeline.reports.payer.criteria import payer_rules
from pipeline.reports.suppression import CountRef, GuardRef, Ledger
from pipeline.results import Results

UNITS = (("site", "sites"), ("provider", "providers"))
BELOW, WITHIN, ABOVE = "below", "within", "above"


def compute_case_mix(results: Results, data: MonthlyData, month: Month,
                     instrument: str | None) -> CaseMix:
    """The adjustment for the 12 months ending with `month` (the monthly report's rolling
    period), on its headline instrument first, over the evaluable course rows of those 12
    months, their sites and providers and the model's inputs (reports/monthly/data.py)."""
    return case_mix(data.case_rows, data.units, data.case_mix_inputs, results.config.instruments,
                    month.text, payer_rules(results.config).resistance, instrument)


def position(low: float, high: float) -> str:
    """Where the O/E interval lies against 1: wholly below, wholly above, or around it."""
    return BELOW if high < 1 else ABOVE if low > 1 else WITHIN


def _link(cells: Ledger, part_of: CountRef, key: tuple[Any, ...], name: str) -> None:
    """A count of the model = the same count in the breakdown table (headline instrument) + the
    courses evaluable only on another instrument (a part of their own, never printed)."""
    if cells.has(key) and cells.value(part_of) >= cells.value(key):
        cells.split(part_of, [key], ("case_mix other instrument", name, *part_of.key))


def _unit_row(cells: Ledger, result: UnitComparison, kind: str, model: dict[str, CountRef],
              per: str, instrument: str | None) -> dict[str, Any]:
    where = (kind, result.name)
    evaluable = cells.count(("case_mix", *where, "evaluable"), result.evaluable, KEEP_DENOMINATOR)
    observed = cells.count(("case_mix", *where, "observed"), result.observed)
    _link(cells, evaluable, ("evaluable", per, instrument, where), "evaluable")
    _link(cells, observed, ("responders", per, instrument, where), "responders")
    small_expected = cells.small(math.ceil(result.expected))

    def guarded(value: Any) -> Any:
        if small_expected:
            return None
        return GuardRef(value, (observed.key, model["responders"].key, model["n"].key))

    return {
        kind: result.name,
        "evaluable": evaluable,
        "observed": observed,
        "raw_rate": cells.rate(observed, evaluable),
        "expected": Suppressed(cells.small_cell_max) if small_expected
        else guarded(result.expected),
        "oe": guarded(result.oe),
        "oe_ci_low": guarded(result.oe_ci_low),
        "oe_ci_high": guarded(result.oe_ci_high),
        "adjusted_rate": guarded(result.adjusted_rate),
        "position": guarded(position(result.oe_ci_low, result.oe_ci_high)),
    }


def _model(summary: ModelSummary, model: dict[str, CountRef]) -> dict[str, Any]:
    keys = (model["responders"].key, model["n"].key)
    return {
        "n": model["n"],
        "responders": model["responders"],
        "overall_rate": GuardRef(summary.overall_rate, keys),
        "coefficients": {name: {"estimate": c.estimate, "se": c.se,
                                "odds_ratio": math.exp(c.estimate)}
                         for name, c in summary.coefficients.items()},
        "c_statistic": summary.c_statistic,
        "reference_levels": dict(summary.reference_levels),
        "notes": list(summary.notes),
    }


def case_mix_section(cells: Ledger, result: CaseMix, rolling: Period,
                     instrument: str | None) -> dict[str, Any]:
    """The `case_mix` object of the monthly JSON: status, period, sites, providers, model.

    The model's courses and responders are the sites' (and the providers') sum, and contain
    the rolling headline figures of the same sites and providers."""
    section: dict[str, Any] = {
        "status": result.status,
        "period": {"start": result.start.isoformat(), "end": result.end.isoformat()},
        "instrument": instrument,
        "sites": [], "providers": [], "model": None,
    }
    per = rolling.per
    n = section["n"] = cells.count(("case_mix", "model", "evaluable"), result.n, KEEP_TOTAL)
    _link(cells, n, ("evaluable", per, instrument, ALL), "evaluable")
    if not result.adjusted or result.model is None:
        return section
    model = {"n": n, "responders": cells.count(("case_mix", "model", "responders"),
                                               result.model.responders, KEEP_TOTAL)}
    _link(cells, model["responders"], ("responders", per, instrument, ALL), "responders")
    cells.complement(model["responders"], model["n"])
    for kind, plural in UNITS:
        rows = [_unit_row(cells, unit, kind, model, per, instrument)
                for unit in (result.sites if kind == "site" else result.providers)]
        cells.add(model["n"], [row["evaluable"] for row in rows])
        cells.add(model["responders"], [row["observed"] for row in rows])
        section[plural] = rows
    section["model"] = _model(result.model, model)
    return section
