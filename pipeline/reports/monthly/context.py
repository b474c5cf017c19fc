"""The monthly quality report's context (docs/definitions.md "Reporting month"): one `Results`
as of the last day of the month -> plain dicts of every figure the report prints. The JSON file
is this context, so it holds exactly the printed figures (suppressed ones as "<11" / "*").

Small-cell suppression (`suppress_small_cells`): every count goes through one `Ledger`
(pipeline/reports/suppression.py) and every additive relation a reader could use is declared
where the counts are made (docs/suppression.md lists them). The ledger decides which cells
print as "<11" or "*" only once the whole report is known; sections return references that
`Ledger.resolve` turns into printed values. Charts are drawn from the resolved context.

Determinism: nothing here reads the clock; provenance is the load id and the input files'
SHA-256.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import polars as pl

import pipeline
from pipeline.formatting import Suppressed, fmt_month
from pipeline.methods import methods_sentences
from pipeline.months import Month, data_end_note
from pipeline.reports.monthly.casemix_section import case_mix_section, compute_case_mix
from pipeline.reports.monthly.curves import control_chart, km_curves
from pipeline.reports.monthly.data import MonthlyData, read_monthly
from pipeline.reports.monthly.periods import (
    ACTIVITY_PERIODS,
    KEEP_DENOMINATOR,
    Period,
    headline_instrument,
    period_bounds,
    register_period,
)
from pipeline.reports.monthly.sections import (
    activity,
    attrition_rows,
    completeness_rows,
    courses_ended,
    headline,
    outcome_rows,
    safety_section,
    severity_distribution,
    timing_rows,
)
from pipeline.reports.monthly.units import breakdown
from pipeline.reports.suppression import Ledger
from pipeline.results import Results

# counts that do not add up across months (a patient flagged in two months is one patient)
NOT_ADDITIVE = {"item9_patients"}
LOAD_PARTS = ("added", "corrected", "unchanged", "duplicates", "rejected")
REJECT_REASONS_SHOWN = 8


def latest_load(cells: Ledger, loads: pl.DataFrame, reject_reasons: pl.DataFrame
                ) -> dict[str, Any]:
    """The latest load's reconciliation per file (rows read = added + corrected + unchanged +
    duplicates + rejected; retired apart) and its most frequent reject reasons. Identified by
    load id and SHA-256, never by time."""
    latest = loads.to_dicts()
    files = []
    for r in latest:
        read = cells.count(("load", r["file"], "rows_read"), int(r["rows_read"]),
                           KEEP_DENOMINATOR)
        parts = {name: cells.count(("load", r["file"], name), int(r[name]))
                 for name in LOAD_PARTS}
        cells.add(read, list(parts.values()))
        retired = cells.count(("load", r["file"], "retired"), int(r["retired"]))
        files.append({"file": r["file"], "sha256": r["sha256"], "rows_read": read, **parts,
                      "retired": retired})
    mode = latest[0]["mode"] if latest else None
    return {
        "load_id": latest[0]["load_id"] if latest else None,
        "mode": mode,
        "statement": load_statement(latest[0]["load_id"], mode) if latest else None,
        "files": files,
        "reasons": [{"file": r["file"], "column": r["column_name"], "reason": r["reason"],
                     "problems": cells.count(None, int(r["problems"]))}
                    for r in reject_reasons.head(REJECT_REASONS_SHOWN).to_dicts()],
        "reasons_total": reject_reasons.height,
    }


def load_statement(load_id: int, mode: str | None) -> str:
    """Which state of the database the figures come from (README "Exports over time")."""
    kind = {"snapshot": "a snapshot load: each file replaced its table's rows",
            "append": "an append load: rows added or corrected by id",
            }.get(mode or "", "a load made before load history existed")
    return (f"The figures come from the database as it stood right after load {load_id} "
            f"({kind}). Later loads do not change them: `outcomes report monthly --load "
            f"{load_id}` rebuilds this report byte for byte.")


def link_periods(cells: Ledger, rolling: Period, parts: list[Period]) -> None:
    """A count of the 12 months = the same count in the month (and previous month) + the rest:
    declared for every quantity registered in both, so "rolling minus month" is protected.

    Every difference a reader can form is a cell of its own: with the month M and M−1 both
    registered, the 12 months less M (= M−1 + the rest) and less M−1 (= M + the rest) as well
    as the rest, since any of them can be a count of 1..k even when none of its parts is
    determined (docs/suppression.md, "Across periods")."""
    for key in cells.keys():
        if len(key) < 2 or key[1] != rolling.per or key[0] in NOT_ADDITIVE:
            continue
        inside = [(key[0], p.per, *key[2:]) for p in parts]
        inside = [k for k in inside if cells.has(k)]
        if not inside:
            continue
        rest = cells.split(key, inside, ("rest of the 12 months", *key))
        if len(inside) < 2:
            continue
        for part in inside:
            others = [k for k in inside if k != part]
            less = cells.split(key, [part], ("12 months less", part[1], *key))
            cells.add(less, [*others, rest])


def input_fingerprint(loads: pl.DataFrame) -> str | None:
    """A short, stable provenance id: SHA-256 over the latest load's file names and hashes."""
    if loads.height == 0:
        return None
    text = "\n".join(f"{r['file']} {r['sha256']}" for r in
                     loads.sort("file").select("file", "sha256").to_dicts())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# The context


def build_context(results: Results, month: Month) -> dict[str, Any]:
    """Plain dicts of every figure the report prints (pure: no I/O, no clock)."""
    return build_ledger_context(results, month)[0]


def build_ledger_context(results: Results, month: Month) -> tuple[dict[str, Any], Ledger]:
    """The context and the solved ledger behind it (tests read the ledger's self-checks).

    `results` must be as of the last day of `month`, read with the monthly reader
    (reports/monthly/data.py): the month, the previous month, the rolling 12 months and every
    p-chart month are the courses whose outcome date falls in them, all in that one
    computation."""
    if results.as_of != month.last:
        raise ValueError(f"monthly report for {month.text} needs results as of {month.last}, "
                         f"not {results.as_of}")
    config = results.config
    data: MonthlyData = results.read(read_monthly)
    loads = results.input("monthly_loads")
    protocols = {r["protocol_id"]: r["name"] for r in results.input("protocols").to_dicts()}
    cells = Ledger(config.definitions.suppress_small_cells, config.definitions.small_cell_max)
    bounds = period_bounds(month)
    start, end = bounds["month"]
    previous = month.shift(-1)
    label = fmt_month(month.text)
    labels = {"month": label, "previous": fmt_month(previous.text),
              "rolling": f"12 months to {label}"}
    this, prev, rolling = (Period(key, labels[key], *bounds[key], data.periods[key])
                           for key in ("month", "previous", "rolling"))
    instrument = headline_instrument(rolling.course_counts)
    planned = data.planned
    max_columns = min(max(planned.values(), default=1), 10)
    used = data.instruments_used
    periods = {p.key: p for p in (this, prev, rolling)}
    outcome_cells = {key: register_period(cells, p) for key, p in periods.items()}

    def period_info(p: Period) -> dict[str, Any]:
        return {"key": p.key, "label": p.label, "start": p.start.isoformat(),
                "end": p.end.isoformat(), "courses": courses_ended(cells, p)}

    fingerprint = input_fingerprint(loads)
    draft = {
        "month": month.text,
        "month_label": label,
        "as_of": end.isoformat(),
        # the data end before the month does (an export of one month, or taken mid-month)
        "data_end_note": data_end_note(month, results.input("latest_data_day")[0, 0]),
        "suppression": {"on": config.definitions.suppress_small_cells,
                        "small_cell_max": config.definitions.small_cell_max,
                        "marker": str(Suppressed(config.definitions.small_cell_max))},
        "headline_instrument": instrument,
        "periods": {key: period_info(p) for key, p in periods.items()},
        "headline": {key: headline(cells, p, instrument, outcome_cells[key])
                     for key, p in periods.items()},
        "activity": {key: activity(cells, data.activity[key], *bounds[key])
                     for key in ACTIVITY_PERIODS},
        "outcomes": {key: outcome_rows(cells, periods[key], protocols, outcome_cells[key])
                     for key in ("month", "rolling")},
        "instruments_not_used": sorted(set(config.instruments) - used),
        "timing": {key: timing_rows(cells, periods[key], instrument, outcome_cells[key])
                   for key in ("month", "rolling")},
        "attrition": {key: attrition_rows(cells, periods[key], planned, max_columns)
                      for key in ("month", "rolling")},
        "attrition_columns": list(range(1, max_columns + 1)),
        "safety": {key: safety_section(cells, periods[key]) for key in ("month", "rolling")},
        "completeness": {key: completeness_rows(cells, periods[key])
                         for key in ("month", "rolling")},
        "latest_load": latest_load(cells, loads, results.input("monthly_reject_reasons")),
        "breakdown": {key: [breakdown(cells, periods[key], unit, instrument)
                            for unit in ("site", "provider")]
                      for key in ("month", "rolling")},
        "control_chart": control_chart(cells, data.months, month, instrument, rolling),
        "cumulative_response": km_curves(cells, rolling, instrument, outcome_cells["rolling"]),
        "severity": severity_distribution(cells, rolling, config),
        "case_mix": case_mix_section(cells, compute_case_mix(results, data, month, instrument),
                                     rolling, instrument),
        "methods": methods_sentences(config),
        "provenance": {
            "package_version": pipeline.__version__,
            "as_of": end.isoformat(),
            "load_id": int(loads["load_id"][0]) if loads.height else None,
            "input_fingerprint": fingerprint,
            "config": {"path": Path(config.source).name if config.source else None,
                       "sha256": config.sha256},
            "inputs": [{"file": r["file"], "sha256": r["sha256"]} for r in loads.to_dicts()],
        },
    }
    link_periods(cells, rolling, [this, prev])
    cells.solve()
    context: dict[str, Any] = cells.resolve(draft)
    context["suppression"]["withheld_curves"] = sum(
        1 for c in context["cumulative_response"] if c["withheld"])
    return context, cells
