"""The clinic's rates in the evidence report, with small-cell suppression: the counts behind
every rate (the same counts as protocol_summary, docs/definitions.md "Rates"), their cells in
the `Ledger` with the relations among them (docs/suppression.md "Evidence report"), and the
rate entries the templates print.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import polars as pl

from pipeline.config import Config
from pipeline.formatting import Suppressed
from pipeline.instruments import Instrument
from pipeline.methods import Labels
from pipeline.methods import labels as config_labels
from pipeline.metrics import GROUP, protocol_summary
from pipeline.outcomes import TIMING_CLASSES, instrument_frame
from pipeline.reports.evidence.compare import is_small, rate_withheld
from pipeline.reports.suppression import CountRef, Ledger
from pipeline.stats import wilson

# The evidence report leaves the clinic: it always suppresses counts of 1-10 (the CMS rule),
# whatever `suppress_small_cells` says, and a larger `small_cell_max` suppresses more. A
# smaller one (even 0) never suppresses less (README "Evidence").
SMALL_CELL_FLOOR = 10


def evidence_small_cell_max(config: Config) -> int:
    """The largest count the evidence report suppresses: small_cell_max, at least 10."""
    return max(config.definitions.small_cell_max, SMALL_CELL_FLOOR)


def evidence_labels(config: Config) -> Labels:
    """The config's labels with the evidence report's suppression ("<11" at least)."""
    k = evidence_small_cell_max(config)
    return replace(config_labels(config.definitions), small_cell_max=k, marker=str(Suppressed(k)))


def severe_limits(instrument: Instrument) -> tuple[tuple[float, str], ...]:
    """(lower bound, label) of the instrument's two most severe bands, from its configured
    severity bands (PHQ-9: 15 "moderately severe", 20 "severe"); the case mix prints the share
    of courses starting at or above each. Empty without at least two bands."""
    bands = sorted(instrument.severity_bands, key=lambda band: band.low)[1:]
    return tuple((band.low, band.label) for band in bands[-2:])


def rate_entry(numerator: int, denominator: int, k: int, hide: bool = False,
               reason: str | None = None) -> dict[str, Any]:
    """A rate dict for templates/_macros (rate, low, high, numerator, denominator, suppressed).

    Withheld when the numerator, its complement or the denominator is 1..k, or `hide` is set
    (complementary suppression decided by the ledger).
    """
    numerator, denominator = int(numerator), int(denominator)
    if denominator == 0:
        return {"rate": None, "low": None, "high": None, "numerator": 0, "denominator": 0,
                "suppressed": False, "reason": reason or "no courses"}
    if hide or rate_withheld(numerator, denominator, k):
        entry: dict[str, Any] = {
            "rate": None, "low": None, "high": None,
            "numerator": Suppressed(k) if is_small(numerator, k) else None,
            "denominator": Suppressed(k) if is_small(denominator, k) else denominator,
            "suppressed": True,
            "reason": reason or f"fewer than {k + 1} courses in a cell",
        }
        # What "<11 of n" already tells (the rate is at most k/n, or at least (n-k)/n): enough to
        # judge a claim far from it without printing the count.
        if not hide and not is_small(denominator, k) and is_small(numerator, k):
            entry["ceiling"] = k / denominator
            entry["ceiling_high"] = (wilson(k, denominator) or (0, 1))[1]
        elif not hide and not is_small(denominator, k) and is_small(denominator - numerator, k):
            entry["floor"] = (denominator - k) / denominator
            entry["floor_low"] = (wilson(denominator - k, denominator) or (0, 1))[0]
        return entry
    low, high = wilson(numerator, denominator) or (None, None)
    return {"rate": numerator / denominator, "low": low, "high": high, "numerator": numerator,
            "denominator": denominator, "suppressed": False, "reason": None}


def ledger_entry(cells: Ledger, numerator: CountRef, denominator: CountRef,
                 reason: str | None = None) -> dict[str, Any]:
    """The rate entry of a printed rate after the ledger decided: printed when both counts
    are shown; otherwise withheld, with "<11" and the bound it implies when the numerator (or
    its complement) is a small cell, and the denominator only as printed ("*" if withheld)."""
    k, n = cells.value(numerator), cells.value(denominator)
    shown = cells.shown(numerator) and cells.shown(denominator)
    primary = rate_withheld(k, n, cells.small_cell_max)
    entry = rate_entry(k, n, cells.small_cell_max, hide=not shown and not primary,
                       reason=reason)
    if entry["suppressed"] and not cells.shown(denominator):
        entry["denominator"] = cells.printed(denominator)
        for bound in ("ceiling", "ceiling_high", "floor", "floor_low"):
            entry.pop(bound, None)
    return entry


# ---------------------------------------------------------------------------------------------
# Clinic outcome counts per protocol x instrument (over whole frames)

# cell name -> protocol_summary column (the counts of every rate, as metrics counts them)
RATE_COUNTS = {"evaluable": "evaluable", "responders": "responders",
               "partial": "partial_responders", "non_responders": "non_responders",
               "remitters": "remitters", "remission_evaluable": "remission_evaluable",
               "itt": "itt_courses", "itt_remission": "itt_remission"}


def outcome_counts(course_outcomes: pl.DataFrame, instruments: dict[str, Any],
                   severe: tuple[float, ...] = ()) -> pl.DataFrame:
    """Counts behind every clinic rate per protocol x instrument: protocol_summary's counts
    (docs/definitions.md "Rates") over all courses and, prefixed `case_`, over the courses with
    a baseline at or above caseness; ITT remission (ITT courses with a baseline above the
    remission cutoff); baseline severity (`severe_0`, `severe_1`: rated courses with a baseline
    at or above each of `severe`) and the response timing classes of rated courses.
    """
    frame = course_outcomes.join(instrument_frame(instruments), on="instrument", how="left")
    case = (pl.col("baseline_score") >= pl.col("caseness_cutoff")).fill_null(False)
    nip = pl.col("status") != "in_progress"
    rated = pl.col("evaluable") & nip
    itt_remission = (nip & (pl.col("baseline_score") > 0).fill_null(False)
                     & (pl.col("baseline_score") > pl.col("remission_cutoff")).fill_null(False))
    columns = [c for c in RATE_COUNTS.values() if c != "itt_remission"]
    timing = pl.col("response_timing")
    extra = frame.group_by(GROUP).agg(
        itt_remission=itt_remission.sum(),
        case_itt_remission=(itt_remission & case).sum(),
        **{f"severe_{i}": (rated & (pl.col("baseline_score") >= limit)).sum()
           for i, limit in enumerate(severe)},
        median_baseline=pl.col("baseline_score").filter(rated).median(),
        q1_baseline=pl.col("baseline_score").filter(rated).quantile(0.25, "nearest"),
        q3_baseline=pl.col("baseline_score").filter(rated).quantile(0.75, "nearest"),
        ever_responded=(rated & timing.is_in([c.key for c in TIMING_CLASSES])).sum(),
        **{cls.key: (rated & (timing == cls.key)).sum() for cls in TIMING_CLASSES},
    )
    everyone = protocol_summary(course_outcomes).select(
        *GROUP, "in_progress", *columns,
        courses_not_in_progress=pl.col("courses") - pl.col("in_progress"))
    case_rows = frame.filter(case).select(course_outcomes.columns)
    at_caseness = protocol_summary(case_rows).select(
        *GROUP, *[pl.col(c).alias(f"case_{c}") for c in columns])
    return (everyone.join(extra, on=GROUP, how="left")
            .join(at_caseness, on=GROUP, how="left")
            .with_columns(pl.col([f"case_{c}" for c in columns]).fill_null(0))
            .sort(GROUP))


# ---------------------------------------------------------------------------------------------
# Cells of the report and the relations among them (registered before anything is printed)

RATE_ROWS = [  # key, (numerator, denominator) for evaluable and for ITT
    ("response", ("responders", "evaluable"), ("responders", "itt")),
    ("remission", ("remitters", "remission_evaluable"), ("remitters", "itt_remission")),
    ("non_response", ("non_responders", "evaluable"), ("itt_non_response", "itt")),
    ("not_response", ("not_responding", "evaluable"), ("itt_not_responding", "itt")),
]


def rate_labels(labels: Labels, remission: float | None = None) -> dict[str, str]:
    """The rate table's row labels, with the configured cut-offs (`remission`: the
    instrument's remission cut-off)."""
    return {
        "response": f"Response (≥{labels.response_pct}% reduction)",
        "remission": f"Remission (endpoint ≤ {remission:g})" if remission is not None
        else "Remission (endpoint at or below the cut-off)",
        "non_response": f"Non-response (<{labels.partial_pct}% reduction)",
        "not_response": f"Did not reach response (<{labels.response_pct}% reduction)",
    }


def ek(protocol: str, instrument: str | None, what: str) -> tuple[str, str, str | None, str]:
    """The ledger key of one count of the evidence report."""
    return ("evidence", protocol, instrument, what)


def register_rates(cells: Ledger, pid: str, instrument: str, row: dict[str, Any],
                   prefix: str = "") -> dict[str, CountRef]:
    """The counts behind clinic_rates with their relations: evaluable = responders + partial +
    non-responders = responders + not responding; not responding = partial + non-responders;
    ITT = evaluable + no endpoint; ITT non-response = non-responders + no endpoint; ITT not
    responding = ITT − responders = not responding + no endpoint; evaluable = remission-
    evaluable + baseline at or below the cutoff; ITT remission = remission-evaluable + no
    endpoint among those."""
    c = {name: cells.virtual(ek(pid, instrument, prefix + name), int(row[prefix + column]))
         for name, column in RATE_COUNTS.items()}
    evaluable, responders = c["evaluable"], c["responders"]
    cells.add(evaluable, [responders, c["partial"], c["non_responders"]])
    c["not_responding"] = cells.split(evaluable, [responders],
                                      ek(pid, instrument, prefix + "not_responding"))
    cells.add(c["not_responding"], [c["partial"], c["non_responders"]])
    gap = cells.split(c["itt"], [evaluable], ek(pid, instrument, prefix + "no endpoint"))
    c["itt_non_response"] = cells.virtual(ek(pid, instrument, prefix + "itt_non_response"),
                                          cells.value(c["non_responders"]) + cells.value(gap))
    cells.add(c["itt_non_response"], [c["non_responders"], gap])
    c["itt_not_responding"] = cells.split(c["itt"], [responders],
                                          ek(pid, instrument, prefix + "itt_not_responding"))
    cells.add(c["itt_not_responding"], [c["not_responding"], gap])
    cells.split(evaluable, [c["remission_evaluable"]],
                ek(pid, instrument, prefix + "remission not evaluable"))
    cells.split(c["itt_remission"], [c["remission_evaluable"]],
                ek(pid, instrument, prefix + "remission no endpoint"))
    c["gap"] = gap
    return c


def print_rate(cells: Ledger, numerator: CountRef, denominator: CountRef, keep: int = 0,
               denominator_keep: int = 2) -> None:
    """Mark a rate as printed (`keep`: how late a count is chosen for complementary
    suppression). When its complement is a small cell, the printed bound ("at least
    (n − 10)/n") says so: the complement then counts as a printed "<11"."""
    cells.rate(cells.show(numerator, keep), cells.show(denominator, denominator_keep))
    complement = cells.complement(numerator, denominator)
    if cells.small(cells.value(complement)):
        cells.show(complement)


def print_rates(cells: Ledger, c: dict[str, CountRef], rows: int = 4, keep: int = 0) -> None:
    """The rate table: evaluable-course rates are kept longest (the evaluable count last of
    all: every comparison with the studies rests on it), ITT rates give way first."""
    cells.show(c["evaluable"], keep=keep + 2)
    for key, evaluable, itt in RATE_ROWS[:rows]:
        # the response rate is the figure set against the published benchmark: its
        # responders give way after every other numerator
        numerator_keep = keep + 1 if key == "response" and keep else keep
        print_rate(cells, c[evaluable[0]], c[evaluable[1]], numerator_keep,
                   keep + 2 if evaluable[1] == "evaluable" else keep + 1)
        print_rate(cells, c[itt[0]], c[itt[1]], 0, keep + 1)


def clinic_rates(cells: Ledger, c: dict[str, CountRef], labels: Labels,
                 remission: float | None = None) -> dict[str, Any]:
    """Response, remission, non-response, did-not-reach-response (evaluable and ITT)."""
    gap_small = cells.small(cells.value(c["gap"]))
    names = rate_labels(labels, remission)
    rows = []
    for key, evaluable, itt in RATE_ROWS:
        itt_entry = ledger_entry(cells, c[itt[0]], c[itt[1]])
        if itt_entry["suppressed"] and gap_small:
            itt_entry["reason"] = (f"withheld: would reveal {labels.fewer_than()} courses "
                                   "without an endpoint")
        row = {"key": key, "label": names[key],
               "evaluable": ledger_entry(cells, c[evaluable[0]], c[evaluable[1]]),
               "itt": itt_entry}
        if key == "non_response":
            row["itt_note"] = "ITT counts a course without an endpoint as non-response"
        rows.append(row)
    return {"evaluable": cells.printed(c["evaluable"]), "itt": cells.printed(c["itt"]),
            "rows": rows}
