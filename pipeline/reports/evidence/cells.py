"""Every count the evidence report prints, registered in the `Ledger` with the relations a
reader could use (docs/suppression.md "Evidence report"), before anything is printed: the rate
table, the case mix, the claims' counts and their Kaplan-Meier estimates, completion.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
import polars as pl

from pipeline.config import Config
from pipeline.metrics import rated_courses
from pipeline.outcomes import TIMING_CLASSES
from pipeline.paths import sql
from pipeline.reports.evidence.compare import KMPoint, km_at, rate_withheld
from pipeline.reports.evidence.rates import (
    RATE_COUNTS,
    RATE_ROWS,
    ek,
    print_rate,
    print_rates,
    register_rates,
)
from pipeline.reports.suppression import CountRef, Ledger

DURABILITY_DAYS = 28  # "relief lasts weeks to months": still responding 4 weeks after endpoint
CLAIM_INFUSIONS = 4  # "better after 3-4 infusions"


KM_COURSES = "km_courses"  # the key of km_courses in the tables handed to register_cells


def km_courses(course_outcomes: pl.DataFrame) -> pl.DataFrame:
    """Rated courses with infusions to response (or last scored infusion): the Kaplan-Meier
    input of the "better after 3-4 infusions" claim, taken once for every protocol."""
    return rated_courses(course_outcomes).select(
        "protocol_id", "instrument",
        responded=pl.col("infusions_to_response").is_not_null(),
        infusion_number=pl.coalesce("infusions_to_response", "last_scored_infusion"),
    ).filter(pl.col("infusion_number").is_not_null())


def km_frames(metrics: dict[str, pl.DataFrame], pid: str, instrument: str
              ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rated courses with infusions to response (or last scored infusion) and the durability
    courses of one protocol x instrument: the Kaplan-Meier inputs of two claims. `metrics`
    holds km_courses under KM_COURSES."""
    rated = metrics[KM_COURSES].filter(
        (pl.col("protocol_id") == pid) & (pl.col("instrument") == instrument))
    durable = metrics["durability_courses"].filter(
        (pl.col("protocol_id") == pid) & (pl.col("instrument") == instrument))
    return rated, durable


def km_point(frame: pl.DataFrame, duration: str, event: str, at: float) -> KMPoint | None:
    return km_at([float(d) for d in frame[duration].to_list()],
                 [bool(e) for e in frame[event].to_list()], at)


def register_km(cells: Ledger, pid: str, instrument: str, name: str, point: KMPoint | None,
                total: CountRef) -> None:
    """A Kaplan-Meier estimate printed with its interval gives away the events and the
    censored courses up to its time: those are its cells (all printed or none), adding up
    with the courses still at risk to its subjects, which are part of `total`."""
    if point is None:
        return
    subjects = cells.count(ek(pid, instrument, f"{name} subjects"), point.subjects, keep=2)
    events = cells.count(ek(pid, instrument, f"{name} events"), point.events_by_time)
    censored = cells.count(ek(pid, instrument, f"{name} censored"),
                           point.subjects - point.events_by_time - point.at_risk_after)
    cells.split(subjects, [events, censored], ek(pid, instrument, f"{name} still at risk"))
    cells.split(total, [subjects], ek(pid, instrument, f"{name} not counted"))
    cells.atomic([subjects, events, censored])


def register_cells(cells: Ledger, counts: dict[tuple[str, str], dict[str, Any]],
                   metrics: dict[str, pl.DataFrame], completion: dict[str, dict[str, int]],
                   protocol_rows: list[dict[str, Any]], config: Config, instrument: str,
                   severe: tuple[float, ...]) -> dict[tuple[str, str], dict[str, CountRef]]:
    """Every count the report prints, with the relations a reader could use (before solve).
    `instrument`: the one compared with the studies; `severe`: its case-mix severity limits."""
    registered: dict[tuple[str, str], dict[str, CountRef]] = {}
    for p in protocol_rows:
        pid = p["protocol_id"]
        planned = int(p.get("planned_infusions") or 0)
        row = counts.get((pid, instrument))
        finished = completion.get(pid)
        if row is None:
            continue
        nip = cells.count(ek(pid, None, "not in progress"), int(row["courses_not_in_progress"]),
                          keep=3)
        cells.count(ek(pid, None, "in progress"), int(row["in_progress"]))
        for (cpid, inst), crow in counts.items():
            if cpid != pid:
                continue
            c = registered[(pid, inst)] = register_rates(cells, pid, inst, crow)
            cells.split(nip, [c["itt"]], ek(pid, inst, "no baseline"))
            if inst != instrument and int(crow["evaluable"]) > 0:
                cells.show(c["evaluable"], keep=2)
                for _, (k, n), _ in RATE_ROWS[:3]:
                    print_rate(cells, c[k], c[n])
        c = registered[(pid, instrument)]
        print_rates(cells, c, keep=1)  # the protocol's own rates: withheld last
        # case mix: baseline at or above caseness and each severity limit (PHQ-9: >= 15,
        # >= 20), and rates restricted to caseness
        case = register_rates(cells, pid, instrument, row, prefix="case_")
        registered[(pid, "case")] = case
        for name in [*RATE_COUNTS, "not_responding", "itt_non_response", "itt_not_responding"]:
            cells.split(c[name], [case[name]], ek(pid, instrument, f"below caseness {name}"))
        at = {limit: cells.count(ek(pid, instrument, f"baseline >= {limit:g}"),
                                 int(row[f"severe_{i}"])) for i, limit in enumerate(severe)}
        for low, high in zip(severe, severe[1:], strict=False):
            cells.split(at[low], [at[high]], ek(pid, instrument, f"baseline {low:g} to {high:g}"))
        caseness = float(config.instruments[instrument].caseness or 0)
        for limit, cell in at.items():
            if caseness <= limit:
                cells.split(case["evaluable"], [cell],
                            ek(pid, instrument, f"caseness to {limit:g}"))
            else:
                cells.split(cell, [case["evaluable"]],
                            ek(pid, instrument, f"{limit:g} to caseness"))
            print_rate(cells, cell, c["evaluable"])
        print_rate(cells, case["evaluable"], c["evaluable"])
        if not rate_withheld(cells.value(case["evaluable"]), cells.value(c["evaluable"]),
                             cells.small_cell_max):
            # the restricted rates print only when the share at caseness does (_case_mix)
            print_rates(cells, case, rows=3)
        # claims
        same = metrics["same_session_effect"].filter(
            (pl.col("protocol_id") == pid) & (pl.col("instrument") == instrument)).to_dicts()
        measured = cells.count(ek(pid, instrument, "same-session measured"),
                               int(same[0]["measured"]) if same else 0)
        halved = cells.count(ek(pid, instrument, "same-session halved"),
                             int(same[0]["reduced_by_half"]) if same else 0)
        print_rate(cells, halved, measured)
        ever = cells.count(ek(pid, instrument, "ever responded"), int(row["ever_responded"]))
        classes = [cells.count(ek(pid, instrument, cls.key), int(row[cls.key]))
                   for cls in TIMING_CLASSES]
        cells.add(ever, classes)
        cells.split(c["evaluable"], [ever], ek(pid, instrument, "never responded"))
        if planned >= 5:
            for cell in classes:
                print_rate(cells, cell, ever)
        rated, durable = km_frames(metrics, pid, instrument)
        if planned >= CLAIM_INFUSIONS:
            point = km_point(rated, "infusion_number", "responded", CLAIM_INFUSIONS)
            register_km(cells, pid, instrument, "km4", point, c["evaluable"])
            if point is not None:
                # responses by infusion 4 are the early and gradual responders
                cells.add(ek(pid, instrument, "km4 events"), classes[:2])
        register_km(cells, pid, instrument, "durability",
                    km_point(durable, "days", "relapsed", DURABILITY_DAYS), c["responders"])
        if finished and planned > 1:
            done = cells.count(ek(pid, None, "finished"), finished["finished"], keep=3)
            cells.add(nip, [done])  # the same courses, counted from the course table
            completed = cells.count(ek(pid, None, "completed"), finished["completed"])
            within = cells.count(ek(pid, None, "completed within planned days"),
                                 finished["within"])
            cells.split(done, [completed], ek(pid, None, "not completed"))
            cells.split(completed, [within], ek(pid, None, "completed late"))
            print_rate(cells, completed, done)
            print_rate(cells, within, done)
    return registered


def read_course_spans(con: duckdb.DuckDBPyConnection, as_of: date, config: Config
                      ) -> pl.DataFrame:
    """The evidence report's reader (pipeline/results.py `Reader`): courses per protocol,
    status and span in days (sql/reports/evidence/course_spans.sql)."""
    return con.sql(sql("reports/evidence/course_spans.sql")).pl()


def completion_counts(spans: pl.DataFrame, protocols: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Per protocol: finished courses, those completing the plan, and within planned days.
    spans: read_course_spans."""
    frame = spans.filter(pl.col("status") != "in_progress").join(
        protocols.select("protocol_id", "planned_days"), on="protocol_id", how="left")
    completed = pl.col("status") == "completed"
    counts = frame.group_by("protocol_id").agg(
        finished=pl.col("courses").sum(),
        completed=pl.col("courses").filter(completed).sum(),
        within=pl.col("courses").filter(completed
                                        & (pl.col("span_days") <= pl.col("planned_days"))).sum(),
    ).sort("protocol_id")
    return {row["protocol_id"]: {key: int(row[key]) for key in ("finished", "completed", "within")}
            for row in counts.to_dicts()}
