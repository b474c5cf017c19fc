"""Evidence comparison report (SPEC §1.2, §2 "Comparison with published evidence").

metrics (compute_outcomes + compute_metrics as of one day) -> context (plain dicts, every number
computed here) -> report_templates/evidence.html.j2 (formats only) -> PDF, and the same context
as JSON. Small cells are always suppressed in this report (it may leave the clinic), whatever
`suppress_small_cells` says. No patient or course identifier enters the context.

Suppression goes through the same `Ledger` as the monthly report (monthly_cells.py):
`register_cells` declares every count the report prints (a rate prints its numerator and
denominator: a Wilson interval with its n gives both away) and the relations among them
(docs/suppression.md, "Evidence report"); the ledger is solved before the context is built, so
each rate entry knows whether it may print, and verdicts use only what is printed.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

import pipeline
from pipeline.config import Config
from pipeline.db import connect
from pipeline.errors import InputError
from pipeline.formatting import Suppressed, finite, json_ready
from pipeline.methods import methods_sentences
from pipeline.metrics import compute_metrics, rated_courses
from pipeline.outcomes import compute_outcomes
from pipeline.reports.evidence.compare import (
    NOT_MEASURABLE,
    VERDICT_RULES,
    FunnelResult,
    KMPoint,
    Verdict,
    funnel_result,
    is_small,
    km_at,
    mix_verdict,
    pooled_rate,
    range_verdict,
    rate_withheld,
    wilson_from_rate,
)
from pipeline.reports.evidence.families import MATCH_RULE, EvidenceSettings, Family, evidence_settings
from pipeline.reports.evidence.registry import EXCLUDED_SOURCE_ROWS, Study
from pipeline.reports.files import report_timestamp, w3c, write_report_files
from pipeline.reports.suppression import CountRef, Ledger
from pipeline.stats import wilson

TEMPLATE = "evidence.html.j2"
DURABILITY_DAYS = 28  # "relief lasts weeks to months": still responding 4 weeks after endpoint
CLAIM_INFUSIONS = 4  # "better after 3-4 infusions"
MOST = (0.5, 1.0)  # "most patients"
NON_RESPONSE_CLAIM = (0.2, 0.3)  # "about 20-30% do not respond"


# ---------------------------------------------------------------------------------------------
# Rates with suppression


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
            "reason": reason or "fewer than 11 courses in a cell",
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


def outcome_counts(course_outcomes: pl.DataFrame, instruments: dict[str, Any]) -> pl.DataFrame:
    """Counts behind every clinic rate (SPEC §2 "Rates"), per protocol x instrument.

    Evaluable = evaluable and not in progress. ITT = not in progress with baseline > 0 (no
    endpoint counts as not responding). `_case` columns restrict to baseline >= caseness.
    """
    cutoffs = pl.DataFrame({
        "instrument": list(instruments),
        "remission_cutoff": [instruments[i].remission for i in instruments],
        "caseness_cutoff": [instruments[i].caseness for i in instruments],
    }, schema={"instrument": pl.String, "remission_cutoff": pl.Float64,
               "caseness_cutoff": pl.Float64})
    frame = course_outcomes.join(cutoffs, on="instrument", how="left")
    nip = pl.col("status") != "in_progress"
    rated = pl.col("evaluable") & nip
    itt = nip & (pl.col("baseline_score") > 0).fill_null(False)
    category = pl.col("category")
    case = (pl.col("baseline_score") >= pl.col("caseness_cutoff")).fill_null(False)
    above_remission = (pl.col("baseline_score") > pl.col("remission_cutoff")).fill_null(False)
    remitted = pl.col("remission").fill_null(False)

    def both(prefix: str, cond: pl.Expr) -> dict[str, pl.Expr]:
        return {
            f"{prefix}evaluable": (rated & cond).sum(),
            f"{prefix}responders": (rated & cond & (category == "response")).sum(),
            f"{prefix}partial": (rated & cond & (category == "partial_response")).sum(),
            f"{prefix}non_responders": (rated & cond & (category == "non_response")).sum(),
            f"{prefix}remitters": (rated & cond & remitted).sum(),
            f"{prefix}remission_evaluable": (rated & cond & pl.col("remission").is_not_null()).sum(),
            f"{prefix}itt": (itt & cond).sum(),
            f"{prefix}itt_remission": (itt & cond & above_remission).sum(),
        }

    timing = pl.col("response_timing")
    return frame.group_by(["protocol_id", "instrument"]).agg(
        in_progress=(~nip).sum(),
        courses_not_in_progress=nip.sum(),
        **both("", pl.lit(True)),
        **both("case_", case),
        case_share_10=(rated & case).sum(),
        severe_15=(rated & (pl.col("baseline_score") >= 15)).sum(),
        severe_20=(rated & (pl.col("baseline_score") >= 20)).sum(),
        median_baseline=pl.col("baseline_score").filter(rated).median(),
        q1_baseline=pl.col("baseline_score").filter(rated).quantile(0.25, "nearest"),
        q3_baseline=pl.col("baseline_score").filter(rated).quantile(0.75, "nearest"),
        ever_responded=(rated & timing.is_in(["early", "gradual", "late"])).sum(),
        early=(rated & (timing == "early")).sum(),
        gradual=(rated & (timing == "gradual")).sum(),
        late=(rated & (timing == "late")).sum(),
    ).sort(["protocol_id", "instrument"])


# ---------------------------------------------------------------------------------------------
# Cells of the report and the relations among them (registered before anything is printed)

RATE_COUNTS = ["evaluable", "responders", "partial", "non_responders", "remitters",
               "remission_evaluable", "itt", "itt_remission"]
RATE_ROWS = [  # key, label, (numerator, denominator) for evaluable and for ITT
    ("response", "Response (≥50% reduction)", ("responders", "evaluable"),
     ("responders", "itt")),
    ("remission", "Remission (endpoint at or below the cut-off)",
     ("remitters", "remission_evaluable"), ("remitters", "itt_remission")),
    ("non_response", "Non-response (<25% reduction)", ("non_responders", "evaluable"),
     ("itt_non_response", "itt")),
    ("not_response", "Did not reach response (<50% reduction)", ("not_responding", "evaluable"),
     ("itt_not_responding", "itt")),
]
GAP_REASON = "withheld: would reveal fewer than 11 courses without an endpoint"


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
    c = {name: cells.virtual(ek(pid, instrument, prefix + name), int(row[prefix + name]))
         for name in RATE_COUNTS}
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
    for key, _, evaluable, itt in RATE_ROWS[:rows]:
        # the response rate is the figure set against the published benchmark: its
        # responders give way after every other numerator
        numerator_keep = keep + 1 if key == "response" and keep else keep
        print_rate(cells, c[evaluable[0]], c[evaluable[1]], numerator_keep,
                   keep + 2 if evaluable[1] == "evaluable" else keep + 1)
        print_rate(cells, c[itt[0]], c[itt[1]], 0, keep + 1)


def clinic_rates(cells: Ledger, c: dict[str, CountRef]) -> dict[str, Any]:
    """Response, remission, non-response, did-not-reach-response (evaluable and ITT)."""
    gap_small = cells.small(cells.value(c["gap"]))
    rows = []
    for key, label, evaluable, itt in RATE_ROWS:
        itt_entry = ledger_entry(cells, c[itt[0]], c[itt[1]])
        if itt_entry["suppressed"] and gap_small:
            itt_entry["reason"] = GAP_REASON
        row = {"key": key, "label": label,
               "evaluable": ledger_entry(cells, c[evaluable[0]], c[evaluable[1]]),
               "itt": itt_entry}
        if key == "non_response":
            row["itt_note"] = "ITT counts a course without an endpoint as non-response"
        rows.append(row)
    return {"evaluable": cells.printed(c["evaluable"]), "itt": cells.printed(c["itt"]),
            "rows": rows}


def km_frames(metrics: dict[str, pl.DataFrame], pid: str, instrument: str
              ) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rated courses with infusions to response (or last scored infusion) and the durability
    courses of one protocol x instrument: the Kaplan-Meier inputs of two claims."""
    rated = rated_courses(metrics["course_outcomes"]).filter(
        (pl.col("protocol_id") == pid) & (pl.col("instrument") == instrument)
    ).with_columns(
        responded=pl.col("infusions_to_response").is_not_null(),
        infusion_number=pl.coalesce("infusions_to_response", "last_scored_infusion"),
    ).filter(pl.col("infusion_number").is_not_null())
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
                   protocol_rows: list[dict[str, Any]], config: Config,
                   settings: EvidenceSettings) -> dict[tuple[str, str], dict[str, CountRef]]:
    """Every count the report prints, with the relations a reader could use (before solve)."""
    instrument = settings.primary_instrument
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
                for _, _, (k, n), _ in RATE_ROWS[:3]:
                    print_rate(cells, c[k], c[n])
        c = registered[(pid, instrument)]
        print_rates(cells, c, keep=1)  # the protocol's own rates: withheld last
        # case mix: baseline at or above caseness, >= 15, >= 20, and rates restricted to caseness
        case = register_rates(cells, pid, instrument, row, prefix="case_")
        registered[(pid, "case")] = case
        for name in [*RATE_COUNTS, "not_responding", "itt_non_response", "itt_not_responding"]:
            cells.split(c[name], [case[name]], ek(pid, instrument, f"below caseness {name}"))
        severe = {limit: cells.count(ek(pid, instrument, f"baseline >= {limit}"),
                                     int(row[f"severe_{limit}"])) for limit in (15, 20)}
        cells.split(severe[15], [severe[20]], ek(pid, instrument, "baseline 15-19"))
        caseness = float(config.instruments[instrument].caseness or 0)
        for limit, cell in severe.items():
            if caseness <= limit:
                cells.split(case["evaluable"], [cell], ek(pid, instrument, f"caseness to {limit}"))
            else:
                cells.split(cell, [case["evaluable"]], ek(pid, instrument, f"{limit} to caseness"))
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
        classes = [cells.count(ek(pid, instrument, cls), int(row[cls]))
                   for cls in ("early", "gradual", "late")]
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


# ---------------------------------------------------------------------------------------------
# Published comparison


def study_row(study: Study, ref: int, pooled: bool) -> dict[str, Any]:
    rate = study.response_rate
    low, high = wilson_from_rate(rate, study.n) if rate is not None else (None, None)
    if pooled:
        why = None
    elif not study.benchmark:
        why = "no DOI/PMID retrieved"
    elif "cumulative" in (study.design + (study.notes or "")).lower():
        why = "cumulative estimate"
    elif "same patients" in (study.notes or ""):
        why = "same patients as a pooled row"
    else:
        why = "overlapping or non-IV studies" if study.design_class == "meta-analysis" else \
            "other timepoint"
    return {
        "study_id": study.study_id, "ref": ref, "label": f"{study.short_label} [{ref}]",
        "design_class": study.design_class, "population": study.population, "n": study.n,
        "n_note": study.n_note, "instrument": study.instrument or "not stated",
        "timepoint": study.timepoint, "protocol": _study_protocol(study),
        "response_rate": rate, "response_low": low, "response_high": high,
        "remission_rate": study.remission_rate, "remission_n": study.remission_n,
        "remission_definition": study.remission_definition, "pooled": pooled,
        "not_pooled_reason": why, "note": study.notes,
    }


def _study_protocol(study: Study) -> str:
    parts = []
    if study.protocol_infusions:
        parts.append(f"{study.protocol_infusions} infusion(s)")
    if study.protocol_days:
        parts.append(f"over {study.protocol_days} days")
    if study.dose_mg_per_kg:
        parts.append(f"{study.dose_mg_per_kg} mg/kg")
    if study.infusion_minutes:
        parts.append(f"{study.infusion_minutes} min")
    return ", ".join(parts) or "not stated"


def funnel_dict(result: FunnelResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"p0": result.p0, "n": result.n, "observed": result.observed,
            "limits95": list(result.limits95), "limits998": list(result.limits998),
            "position": result.position, "beyond_998": result.beyond_998, "label": result.label}


def family_comparison(family: Family, settings: EvidenceSettings, refs: dict[str, int],
                      response: dict[str, Any], remission: dict[str, Any],
                      case_response: dict[str, Any]) -> dict[str, Any]:
    registry = settings.registry
    studies = [study_row(registry[s], refs[s], True) for s in family.pooled]
    studies += [study_row(registry[s], refs[s], False) for s in family.context]
    pooled = pooled_rate([(rate, registry[s].n) for s in family.pooled
                          if (rate := registry[s].response_rate) is not None])
    pooled_remission = pooled_rate([(rate, registry[s].remission_n) for s in family.pooled
                                    if (rate := registry[s].remission_rate) is not None])
    p0, p0_n = pooled if pooled else (None, 0)

    def place(entry: dict[str, Any], benchmark: float | None) -> dict[str, Any] | None:
        if benchmark is None or entry["rate"] is None:
            return None
        return funnel_dict(funnel_result(entry["numerator"], entry["denominator"], benchmark))

    return {
        "key": family.key, "label": family.label, "comparable": family.comparable,
        "p0": p0, "p0_n": p0_n, "p0_studies": len(family.pooled),
        "p0_remission": pooled_remission[0] if pooled_remission else None,
        "p0_remission_n": pooled_remission[1] if pooled_remission else 0,
        "p0_remission_studies": sum(1 for s in family.pooled
                                    if registry[s].remission_rate is not None),
        "studies": studies,
        "populations": sorted({registry[s].population for s in family.pooled}),
        "funnel": place(response, p0),
        "remission_funnel": place(remission, pooled_remission[0] if pooled_remission else None),
        "case_funnel": place(case_response, p0),
    }


# ---------------------------------------------------------------------------------------------
# Claims


def _verdict_dict(v: Verdict) -> dict[str, Any]:
    return {"verdict": v.verdict, "strength": v.strength, "text": v.text, "reason": v.reason}


def _km_estimate(cells: Ledger, pid: str, instrument: str, name: str,
                 point: KMPoint | None, at: float, cumulative: bool) -> dict[str, Any]:
    """KM estimate at `at` (1 - S when cumulative) with a 95% interval, or a withheld marker
    (when its events, censored courses or subjects are withheld: see register_km)."""
    if point is None:
        return {"rate": None, "low": None, "high": None, "suppressed": False, "subjects": 0,
                "reason": "no courses"}
    members = [ek(pid, instrument, f"{name} {what}") for what in ("subjects", "events",
                                                                 "censored")]
    subjects = cells.printed(members[0])
    if not all(cells.shown(m) for m in members):
        return {"rate": None, "low": None, "high": None, "suppressed": True,
                "subjects": subjects if isinstance(subjects, Suppressed) else None,
                "reason": "fewer than 11 courses in a cell"}
    if not point.followed_to_time:
        return {"rate": None, "low": None, "high": None, "suppressed": False,
                "subjects": point.subjects, "reason": f"no course followed to {at:g}"}
    s, lo, hi = point.survival, point.low, point.high
    if cumulative:
        s, lo, hi = 1 - s, (1 - hi if hi is not None else None), (1 - lo if lo is not None else None)
    return {"rate": s, "low": lo, "high": hi, "suppressed": False, "subjects": point.subjects,
            "reason": None}


def _mix_share(entry: dict[str, Any]) -> tuple[float, float, float] | None:
    """(share, low, high) for mix_verdict; a withheld small class gives (ceiling, 0, its high)."""
    if entry["rate"] is not None:
        return entry["rate"], entry["low"], entry["high"]
    if "ceiling" in entry:
        return entry["ceiling"], 0.0, entry["ceiling_high"]
    return None


def bound_verdict(entry: dict[str, Any], claim_low: float, claim_high: float) -> Verdict:
    """Verdict for a withheld rate from what "<11" implies: rate <= ceiling or >= floor."""
    if "ceiling" in entry:
        if entry["ceiling"] < claim_low:
            firm = entry["ceiling_high"] < claim_low
            return Verdict("not supported", "firm" if firm else "tentative",
                           "fewer than 11 courses: the rate is below the claimed range")
    elif entry["floor"] > claim_high:
        firm = entry["floor_low"] > claim_high
        return Verdict("not supported", "firm" if firm else "tentative",
                       "all but fewer than 11 courses: the rate is above the claimed range")
    return Verdict(NOT_MEASURABLE, None, "withheld: fewer than 11 courses in a cell")


def claims_for(protocol: dict[str, Any], c: dict[str, CountRef] | None,
               metrics: dict[str, pl.DataFrame], cells: Ledger, instrument: str,
               settings: EvidenceSettings, refs: dict[str, int]) -> list[dict[str, Any]]:
    pid = protocol["protocol_id"]
    planned = int(protocol.get("planned_infusions") or 0)
    claims: list[dict[str, Any]] = []

    def add(key: str, claim: str, measure: str, claim_range: str, estimate: dict[str, Any] | None,
            verdict: Verdict, extra: str | None = None, needs: str | None = None) -> None:
        claims.append({"key": key, "claim": claim, "measure": measure, "claim_range": claim_range,
                       "estimate": estimate, "verdict": _verdict_dict(verdict), "extra": extra,
                       "needs": needs if verdict.verdict == NOT_MEASURABLE else None})

    def judge(entry: dict[str, Any] | None, lo: float, hi: float, missing: str) -> Verdict:
        if entry is not None and entry.get("rate") is None and ("ceiling" in entry
                                                                or "floor" in entry):
            return bound_verdict(entry, lo, hi)
        if entry is None or entry.get("rate") is None:
            reason = (entry or {}).get("reason") or missing
            return range_verdict(None, None, None, lo, hi, reason)
        return range_verdict(entry["rate"], entry["low"], entry["high"], lo, hi)

    # 1. Relief within about an hour -> same-session effect of infusion 1
    same = metrics["same_session_effect"].filter(
        (pl.col("protocol_id") == pid) & (pl.col("instrument") == instrument)).to_dicts()
    measured = ek(pid, instrument, "same-session measured")
    entry = (ledger_entry(cells, CountRef(ek(pid, instrument, "same-session halved")),
                          CountRef(measured))
             if cells.has(measured) and cells.value(measured) else None)
    mean_change = (same[0]["mean_change"] if same and entry is not None
                   and cells.shown(measured) else None)
    add("relief_hour", "Relief within about an hour",
        "Share with a ≥50% same-day reduction after infusion 1 (pre and same-day post score)",
        "most patients: 50–100%", entry,
        judge(entry, *MOST, "no infusion 1 with a pre and a same-day post score"),
        extra=(f"mean same-day change {_signed(mean_change)} points"
               if mean_change is not None else None),
        needs="a pre score and a post score on the day of infusion 1 (timing pre/post)")

    # 2. Most people better after 3-4 infusions -> KM cumulative response after 4
    rated, durable = km_frames(metrics, pid, instrument)
    summary = metrics["protocol_summary"].filter(
        (pl.col("protocol_id") == pid) & (pl.col("instrument") == instrument)).to_dicts()
    median = summary[0]["median_infusions_to_response"] if summary else None
    if planned < CLAIM_INFUSIONS:
        add("better_3_4", "Most people feel significantly better after 3–4 infusions",
            f"Kaplan–Meier cumulative response after {CLAIM_INFUSIONS} infusions", "50–100%", None,
            Verdict(NOT_MEASURABLE, None, f"the plan has {planned} infusion(s)"),
            needs="a protocol with at least 4 infusions")
    else:
        km = _km_estimate(cells, pid, instrument, "km4",
                          km_point(rated, "infusion_number", "responded", CLAIM_INFUSIONS),
                          CLAIM_INFUSIONS, True)
        add("better_3_4", "Most people feel significantly better after 3–4 infusions",
            f"Kaplan–Meier cumulative response after {CLAIM_INFUSIONS} infusions", "50–100%",
            km, judge(km, *MOST, "no rated courses"),
            extra=(f"median infusions to response: {median}" if median is not None
                   else "median infusions to response: not reached") if km["rate"] is not None
            else None, needs="scores between infusions (before infusion n+1)")

    # 3. Early / gradual / late mix
    if c is None or planned < 5:
        add("timing_mix", "Early responders after 1–2 infusions, late responders after 4–5",
            "Responders by infusions to response: early 1–2, gradual 3–4, late ≥5",
            "each of early and late ≥10% of responders", None,
            Verdict(NOT_MEASURABLE, None, f"the plan has {planned} infusion(s), fewer than 5"
                    if planned < 5 else "no rated courses"),
            needs="a protocol with at least 5 infusions and scores between infusions")
    else:
        ever = CountRef(ek(pid, instrument, "ever responded"))
        shares = {cls: ledger_entry(cells, CountRef(ek(pid, instrument, cls)), ever)
                  for cls in ("early", "gradual", "late")}
        early, late = shares["early"], shares["late"]
        verdict = mix_verdict(_mix_share(early), _mix_share(late),
                              missing_reason="a class is withheld (fewer than 11 courses)")
        add("timing_mix", "Early responders after 1–2 infusions, late responders after 4–5",
            "Responders by infusions to response: early 1–2, gradual 3–4, late ≥5",
            "each of early and late ≥10% of responders", None, verdict,
            needs="scores between infusions")
        claims[-1]["mix"] = [{"label": lbl, **shares[cls]} for cls, lbl in
                             (("early", "early (1–2)"), ("gradual", "gradual (3–4)"),
                              ("late", "late (≥5)"))]
        claims[-1]["mix_n"] = cells.printed(ever)

    # 4. "About 20-30% do not respond" -> non-response, and did not reach response
    rates = clinic_rates(cells, c) if c is not None else None
    non = rates["rows"][2]["evaluable"] if rates else None
    not_resp = rates["rows"][3]["evaluable"] if rates else None
    add("non_response", "About 20–30% do not respond",
        "Non-response: <25% reduction at endpoint (evaluable courses)", "20–30%", non,
        judge(non, *NON_RESPONSE_CLAIM, "no rated courses"))
    add("not_response", "About 20–30% do not respond (read as: did not reach response)",
        "Did not reach response: <50% reduction (non-response plus partial response)", "20–30%",
        not_resp, judge(not_resp, *NON_RESPONSE_CLAIM, "no rated courses"),
        extra="the reading used by published trials (the complement of response)")

    # 5. Sustained relief for weeks to months -> durability among endpoint responders
    dsum = metrics["durability_summary"].filter(
        (pl.col("protocol_id") == pid) & (pl.col("instrument") == instrument)).to_dicts()
    km_d = _km_estimate(cells, pid, instrument, "durability",
                        km_point(durable, "days", "relapsed", DURABILITY_DAYS),
                        DURABILITY_DAYS, False)
    median_days = dsum[0]["median_days_to_relapse"] if dsum else None
    murrough = settings.registry.get("murrough2013_biolpsych")
    published = (f"published: median {murrough.median_days_to_relapse:g} days to relapse after 6 "
                 f"infusions, {murrough.short_label} [{refs[murrough.study_id]}]"
                 if murrough and murrough.median_days_to_relapse and murrough.study_id in refs
                 else None)
    median_text = None
    if km_d["rate"] is not None:
        median_text = (f"median days to relapse: {median_days}" if median_days is not None
                       else "median days to relapse: not reached")
    add("durability", "Relief lasts weeks to months",
        f"Share of endpoint responders still responding {DURABILITY_DAYS} days after the endpoint "
        "(Kaplan–Meier)", "most responders: 50–100%", km_d,
        judge(km_d, *MOST, "no endpoint responders"),
        extra="; ".join(x for x in (median_text, published) if x) or None,
        needs="scores after the endpoint (follow-up), at least 4 weeks out")

    # 6. Standard course (six infusions over 12 days) -> completion of the planned series
    if planned <= 1:
        return claims
    plan = f"{planned} infusions over {protocol.get('planned_days')} days"
    finished = ek(pid, None, "finished")
    completed = within = None
    if cells.has(finished):
        completed = ledger_entry(cells, CountRef(ek(pid, None, "completed")), CountRef(finished))
        within = ledger_entry(cells, CountRef(ek(pid, None, "completed within planned days")),
                              CountRef(finished))
    add("completion", "The standard course is six infusions over 12 days"
        if (planned, protocol.get("planned_days")) == (6, 12)
        else f"The course is the planned series ({plan})",
        f"Share of courses (not in progress) completing the planned {planned} infusions",
        "most courses: 50–100%", completed, judge(completed, *MOST, "no finished courses"),
        extra=_within_days_text(within, protocol.get("planned_days")))
    claims[-1]["within_days"] = within  # printed in `extra`; here as numbers too
    return claims


def _signed(value: float) -> str:
    return f"{value:+.1f}".replace("-", "\u2212")


def _within_days_text(entry: dict[str, Any] | None, days: Any) -> str | None:
    if not entry:
        return None
    if entry["rate"] is None:
        return f"completed within {days} days: withheld"
    return (f"completed within {days} days: {100 * entry['rate']:.1f}% "
            f"({100 * entry['low']:.1f}–{100 * entry['high']:.1f}%)")


def completion_counts(courses: pl.DataFrame, protocols: pl.DataFrame) -> dict[str, dict[str, int]]:
    """Per protocol: finished courses, those completing the plan, and within planned days."""
    frame = courses.filter(pl.col("status") != "in_progress").join(
        protocols.select("protocol_id", "planned_days"), on="protocol_id", how="left"
    ).with_columns(
        span_days=(pl.col("last_infusion_day") - pl.col("first_infusion_day")).dt.total_days() + 1,
    )
    counts = frame.group_by("protocol_id").agg(
        finished=pl.len(),
        completed=(pl.col("status") == "completed").sum(),
        within=((pl.col("status") == "completed")
                & (pl.col("span_days") <= pl.col("planned_days"))).sum(),
    ).sort("protocol_id")
    return {row["protocol_id"]: {key: int(row[key]) for key in ("finished", "completed", "within")}
            for row in counts.to_dicts()}


# ---------------------------------------------------------------------------------------------
# The whole context


def _case_mix(cells: Ledger, pid: str, row: dict[str, Any], instrument: str,
              config: Config) -> dict[str, Any]:
    c = CountRef(ek(pid, instrument, "evaluable"))
    case = {name: CountRef(ek(pid, instrument, "case_" + name)) for name in
            [*RATE_COUNTS, "not_responding", "itt_non_response", "itt_not_responding",
             "no endpoint"]}
    case["gap"] = case["no endpoint"]
    share10 = ledger_entry(cells, case["evaluable"], c)
    rates = clinic_rates(cells, case)
    restricted_hidden = share10["suppressed"] or all(
        r[key]["suppressed"] for r in rates["rows"][:3] for key in ("evaluable", "itt"))
    if restricted_hidden:
        for r in rates["rows"]:
            for key in ("evaluable", "itt"):
                r[key] = {**r[key], "rate": None, "low": None, "high": None, "numerator": None,
                          "denominator": None, "suppressed": True,
                          "reason": "withheld: would reveal fewer than 11 courses"}
                for bound in ("ceiling", "ceiling_high", "floor", "floor_low"):
                    r[key].pop(bound, None)
        rates["evaluable"] = rates["itt"] = None
    evaluable_shown = cells.shown(c)
    return {
        "restricted_withheld": restricted_hidden,
        "caseness": config.instruments[instrument].caseness,
        "median_baseline": row["median_baseline"] if evaluable_shown else None,
        "q1_baseline": row["q1_baseline"] if evaluable_shown else None,
        "q3_baseline": row["q3_baseline"] if evaluable_shown else None,
        "share_caseness": share10,
        "share_15": ledger_entry(cells, CountRef(ek(pid, instrument, "baseline >= 15")), c),
        "share_20": ledger_entry(cells, CountRef(ek(pid, instrument, "baseline >= 20")), c),
        "restricted": rates,
    }


def _references(settings: EvidenceSettings, cited: list[str]) -> tuple[dict[str, int], list[dict]]:
    """One reference number per publication (rows of one paper share it), in order of citation."""
    numbers: dict[str, int] = {}
    by_publication: dict[tuple, int] = {}
    references: list[dict[str, Any]] = []
    for sid in cited:
        study = settings.registry[sid]
        key = ((study.doi or study.pmid,) if (study.doi or study.pmid)
               else (study.authors, study.year, study.journal))
        if key not in by_publication:
            by_publication[key] = len(references) + 1
            references.append({
                "ref": by_publication[key],
                "citation": f"{study.authors} ({study.year}). {study.journal}.",
                "identifiers": study.identifiers,
                "note": study.citation_note,
                "study_ids": [],
            })
        numbers[sid] = by_publication[key]
        references[by_publication[key] - 1]["study_ids"].append(sid)
    return numbers, references


def build_context(metrics: dict[str, pl.DataFrame], courses: pl.DataFrame,
                  protocols: pl.DataFrame, config: Config, settings: EvidenceSettings,
                  as_of: date) -> dict[str, Any]:
    """Everything the report prints, computed here (pure: frames in, plain dict out)."""
    return build_ledger_context(metrics, courses, protocols, config, settings, as_of)[0]


def build_ledger_context(metrics: dict[str, pl.DataFrame], courses: pl.DataFrame,
                         protocols: pl.DataFrame, config: Config, settings: EvidenceSettings,
                         as_of: date) -> tuple[dict[str, Any], Ledger]:
    """The context and the solved ledger behind it (tests read the ledger's self-checks)."""
    k = config.definitions.small_cell_max
    instrument = settings.primary_instrument
    counts = {(r["protocol_id"], r["instrument"]): r
              for r in outcome_counts(metrics["course_outcomes"], config.instruments).to_dicts()}
    completion = completion_counts(courses, protocols)
    protocol_rows = protocols.sort("protocol_id").to_dicts()
    # Order: induction protocols first, by plan; maintenance last.
    protocol_rows.sort(key=lambda p: ((p.get("phase") or "") == "maintenance",
                                      p.get("planned_infusions") != 6, p["protocol_id"]))
    cells = Ledger(on=True, small_cell_max=k)  # always on: this report may leave the clinic
    registered = register_cells(cells, counts, metrics, completion, protocol_rows, config,
                                settings)
    cells.solve()

    cited: list[str] = []
    for p in protocol_rows:
        for fam in settings.families_for(p):
            cited += [s for s in (*fam.pooled, *fam.context) if s not in cited]
    for extra in ("murrough2013_biolpsych", "lii2023_masked", "oliver2022_10inf"):
        if extra in settings.registry and extra not in cited:
            cited.append(extra)
    refs, references = _references(settings, cited)

    sections = []
    for p in protocol_rows:
        pid = p["protocol_id"]
        row = counts.get((pid, instrument))
        families = settings.families_for(p)
        section: dict[str, Any] = {
            "protocol_id": pid, "name": p["name"], "phase": p.get("phase"),
            "planned_infusions": p.get("planned_infusions"), "planned_days": p.get("planned_days"),
            "dose_mg_per_kg": p.get("dose_mg_per_kg"), "infusion_minutes": p.get("infusion_minutes"),
            "instrument": instrument, "families": [], "claims": [],
            "in_progress": cells.printed(ek(pid, None, "in progress")) if row else 0,
            "courses_not_in_progress": cells.printed(ek(pid, None, "not in progress"))
            if row else 0,
        }
        c = registered.get((pid, instrument)) if row else None
        if row is None or c is None:
            section["rates"] = None
            section["case_mix"] = None
        else:
            section["rates"] = clinic_rates(cells, c)
            section["case_mix"] = _case_mix(cells, pid, row, instrument, config)
            response = section["rates"]["rows"][0]["evaluable"]
            remission = section["rates"]["rows"][1]["evaluable"]
            case_response = section["case_mix"]["restricted"]["rows"][0]["evaluable"]
            section["families"] = [
                family_comparison(f, settings, refs, response, remission, case_response)
                for f in families]
        section["populations"] = sorted({settings.registry[sid].population
                                         for f in families for sid in f.pooled})
        section["other_instruments"] = [
            {"instrument": inst, **clinic_rates(cells, registered[(pid, inst)])}
            for inst in config.instruments
            if inst != instrument and (pid, inst) in counts and counts[(pid, inst)]["evaluable"] > 0
            and row is not None
        ]
        if (p.get("phase") or "") != "maintenance":
            section["claims"] = claims_for(p, c, metrics, cells, instrument, settings, refs)
        sections.append(section)

    summary = [_summary_row(s) for s in sections]
    claim_keys = [c["key"] for s in sections for c in s["claims"]]
    claim_matrix = []
    for key in dict.fromkeys(claim_keys):
        verdicts = []
        label = None
        for s in sections:
            found = next((c for c in s["claims"] if c["key"] == key), None)
            if found:
                label = label or found["claim"]
            verdicts.append(found["verdict"]["text"] if found else "not assessed")
        claim_matrix.append({"key": key, "claim": label, "cells": verdicts})

    caveats = _caveats(settings, refs)
    registry = settings.registry_path
    return {
        "report": "evidence",
        "as_of": as_of.isoformat(),
        "clinic_name": config.clinic.name,
        "version": pipeline.__version__,
        "primary_instrument": instrument,
        "small_cell_max": k,
        # the file's name, not its path: a report must not depend on where it was run
        "registry_path": registry if registry == "built-in registry" else Path(registry).name,
        "registry_rows": len(settings.registry),
        "protocols": sections,
        "summary": summary,
        "claim_protocols": [s["protocol_id"] for s in sections],
        "claim_matrix": claim_matrix,
        "verdict_rules": VERDICT_RULES,
        "match_rule": MATCH_RULE,
        "caveats": caveats,
        "references": references,
        "excluded_source_rows": [{"study_id": s, "reason": r}
                                 for s, r in EXCLUDED_SOURCE_ROWS.items()],
        "methods": methods_sentences(config),
        "evidence_methods": _evidence_methods(k),
        "definitions_in_force": config.definitions_in_force(),
    }, cells


def _summary_row(section: dict[str, Any]) -> dict[str, Any]:
    rates = section["rates"]
    fam = section["families"][0] if section["families"] else None
    return {
        "protocol_id": section["protocol_id"], "name": section["name"],
        "response": rates["rows"][0]["evaluable"] if rates else None,
        "itt_response": rates["rows"][0]["itt"] if rates else None,
        "non_response": rates["rows"][2]["evaluable"] if rates else None,
        "family": fam["label"] if fam else None,
        "p0": fam["p0"] if fam else None,
        "position": fam["funnel"]["label"] if fam and fam["funnel"] else None,
        "others": [{"label": f["label"], "p0": f["p0"],
                    "position": f["funnel"]["label"] if f["funnel"] else None}
                   for f in section["families"][1:]],
    }


def _caveats(settings: EvidenceSettings, refs: dict[str, int]) -> list[str]:
    reg = settings.registry
    out = [
        "Instruments differ: most trials rate the MADRS (clinician) or QIDS-SR-16; the clinic's "
        "primary instrument is the self-rated PHQ-9. Response (≥50% reduction) is defined the same "
        "way, but scales are not interchangeable.",
        "Timepoints differ: many trials rate 24 hours after an infusion, and response rated then "
        "runs higher than response rated later (e.g. before the next infusion); the clinic's "
        "endpoint is the last score up to 14 days after the last infusion.",
        "Completer analyses run higher than intention-to-treat: the clinic's evaluable-course rate "
        "is compared with the studies; its ITT rate is printed beside it.",
    ]
    lii = reg.get("lii2023_masked")
    if lii and lii.comparator_response_rate is not None and lii.study_id in refs:
        out.append(
            f"Part of any observed response is non-specific: in the fully masked trial "
            f"{lii.short_label} [{refs[lii.study_id]}] the {lii.comparator} arm's response was "
            f"{100 * lii.comparator_response_rate:.0f}% against {100 * (lii.response_rate or 0):.0f}%"
            " with ketamine. A clinic's uncontrolled response rate cannot separate drug effect from"
            " expectancy.")
    oliver = reg.get("oliver2022_10inf")
    if oliver and oliver.study_id in refs:
        out.append(
            f"Cumulative Kaplan–Meier figures such as {oliver.short_label} [{refs[oliver.study_id]}]"
            f" ({100 * (oliver.response_rate or 0):.0f}% response after 10 infusions) are not "
            "comparable with fixed-timepoint rates and are not pooled.")
    out.append(
        "The funnel limits use only binomial sampling error around p0; the published studies "
        "themselves differ by more than that (different populations, scales and timepoints), so a "
        "position outside the 95% limits is a prompt to look, not proof of better or worse care.")
    return out


def _evidence_methods(k: int) -> list[dict[str, str]]:
    return [
        {"definition": "Benchmark p0", "text": "For each family of comparable studies, p0 is the "
         "n-weighted mean of the pooled studies' published rates: p0 = Σ nᵢpᵢ / Σ nᵢ. Only rows "
         "with a DOI or PMID are printed at all; context rows are drawn but not pooled."},
        {"definition": "Published intervals", "text": "Each published rate carries a 95% Wilson "
         "score interval computed here from its rate and n (the papers' own intervals were not "
         "retrieved)."},
        {"definition": "Funnel plot", "text": "Control limits p0 ± z·√(p0(1 − p0)/n) with z = 1.96 "
         "(95%) and z = 3.09 (99.8%), normal approximation, clipped to 0–100%. The clinic's rate "
         "over its n evaluable courses is labelled above, within or below the 95% limits, and "
         "'outside 99.8%' is added when it is also beyond those."},
        {"definition": "Intention to treat", "text": "ITT rates divide by every course not in "
         "progress with a baseline above 0; a course without an endpoint counts as not responding "
         "(and, for ITT non-response, as non-response)."},
        {"definition": "Kaplan–Meier intervals", "text": "Cumulative response after 4 infusions and "
         "durability at 28 days are Kaplan–Meier estimates with 95% Greenwood intervals on the "
         "log(−log) scale; they are withheld when fewer than 11 courses contribute."},
        {"definition": "Small cells", "text": f"Always on in this report: counts from 1 to {k} "
         f"print as \"<{k + 1}\" and rates built on them are withheld, as are rates whose "
         "complement is 1–10. Complementary suppression: no count of 1–10 may be worked out "
         "from the printed ones either. Every printed rate counts as printing its numerator and "
         "denominator (its interval gives them away), and the relations among them are checked "
         "together: response + partial + non-response = evaluable courses; ITT = evaluable + "
         "courses without an endpoint; the caseness-restricted counts plus those below caseness "
         "= all; early + gradual + late = responders by infusions to response; a Kaplan–Meier "
         "estimate gives away the events and censored courses up to its time; completion "
         "within the planned days is part of completion. When a small count could be derived, "
         "a further rate is withheld (the smallest that closes the gap), and this repeats until "
         "none can (docs/suppression.md)."},
    ]


# ---------------------------------------------------------------------------------------------
# Writing


def load_inputs(db_path: Path, as_of: date, config: Config, load: int | None = None
                ) -> tuple[dict[str, pl.DataFrame], pl.DataFrame, pl.DataFrame]:
    """Metrics as of `as_of` (recomputed, read-only), courses and protocols."""
    if not db_path.is_file():
        raise InputError(f"database {db_path} not found; load an export first with "
                         f"`outcomes ingest DATA_DIR --db {db_path}`")
    try:
        con = connect(db_path, config, read_only=True, load=load)
    except duckdb.Error as exc:
        raise InputError(f"{db_path} cannot be opened as a DuckDB database: {exc}") from exc
    try:
        frames = compute_outcomes(con, as_of, config)
        if frames.courses.height == 0:
            raise InputError(f"{db_path} has no administered infusion on or before "
                             f"{as_of.isoformat()}; choose a later --as-of")
        protocols = con.sql(
            "SELECT protocol_id, name, planned_infusions, planned_days, dose_mg_per_kg, "
            "infusion_minutes, phase FROM protocols"
        ).pl().sort("protocol_id")
    finally:
        con.close()
    metrics = compute_metrics(frames, config)
    used = frames.courses.select("protocol_id").unique()
    protocols = protocols.join(used, on="protocol_id", how="semi")
    return metrics, frames.courses, protocols


def evidence_context(db_path: str | Path, as_of: date, config: Config,
                     load: int | None = None) -> dict[str, Any]:
    """The report's context (what the JSON holds), without rendering the PDF."""
    settings = evidence_settings(config)
    metrics, courses, protocols = load_inputs(Path(db_path), as_of, config, load=load)
    return finite(build_context(metrics, courses, protocols, config, settings, as_of))


def write_evidence_report(db_path: str | Path, as_of: date, out_dir: Path,
                          config: Config, load: int | None = None) -> list[Path]:
    """SPEC §3 `outcomes report evidence`: evidence-YYYY-MM-DD.pdf and .json in out_dir."""
    from pipeline.render import Renderer
    from pipeline.reports.evidence.charts import forest_plot, funnel_plot

    evidence_settings(config)  # config errors first, before any work
    context = evidence_context(db_path, as_of, config, load=load)
    charts = {}
    for section in context["protocols"]:
        if section["families"]:
            charts[section["protocol_id"]] = {
                "forest": forest_plot(section),
                "funnel": funnel_plot(section),
            }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf_path = out_dir / f"evidence-{as_of.isoformat()}.pdf"
    json_path = out_dir / f"evidence-{as_of.isoformat()}.json"
    created = report_timestamp(as_of)
    doc = {
        "title": f"Evidence comparison as of {as_of.isoformat()}",
        "author": config.clinic.name,
        "subject": "Clinic outcomes per protocol compared with published IV-ketamine studies and "
                   "with common patient-facing claims",
        "keywords": "ketamine, outcomes, evidence, funnel plot, PHQ-9",
        "version": pipeline.__version__,
        "created": w3c(created),
        "clinic_name": config.clinic.name,
        "header_right": f"Evidence comparison · as of {as_of.isoformat()}",
        "footer": "Aggregate figures only; counts of 1–10 are printed as <11. "
                  "No patient identifiers.",
    }
    renderer = Renderer(page_size=config.clinic.page_size)
    html = renderer.html(TEMPLATE, {"doc": doc, "ctx": context, "charts": charts})
    write_report_files(
        json_path,
        json.dumps(json_ready(context), indent=2, ensure_ascii=False, sort_keys=True) + "\n",
        lambda: renderer.pdf(html, pdf_path, created=created))
    return [pdf_path, json_path]
