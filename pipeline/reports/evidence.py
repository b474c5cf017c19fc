"""Evidence comparison report (SPEC §1.2, §2 "Comparison with published evidence").

metrics (compute_outcomes + compute_metrics as of one day) -> context (plain dicts, every number
computed here) -> report_templates/evidence.html.j2 (formats only) -> PDF, and the same context
as JSON. Small cells are always suppressed in this report (it may leave the clinic), whatever
`suppress_small_cells` says. No patient or course identifier enters the context.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

import pipeline
from pipeline.config import Config
from pipeline.db import connect
from pipeline.errors import InputError
from pipeline.evidence.compare import (
    NOT_MEASURABLE,
    VERDICT_RULES,
    FunnelResult,
    Verdict,
    funnel_result,
    is_small,
    km_at,
    mix_verdict,
    pooled_rate,
    range_verdict,
    rate_withheld,
    suppress_partition,
    wilson_from_rate,
)
from pipeline.evidence.families import MATCH_RULE, EvidenceSettings, Family, evidence_settings
from pipeline.evidence.registry import EXCLUDED_SOURCE_ROWS, Study
from pipeline.formatting import Suppressed, finite, json_ready
from pipeline.methods import methods_sentences
from pipeline.metrics import compute_metrics, rated_courses
from pipeline.outcomes import compute_outcomes
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
    (complementary suppression decided by the caller).
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


def complement_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """1 - rate with the flipped interval (same withholding)."""
    if entry["rate"] is None:
        flipped = {key: value for key, value in entry.items()
                   if key not in ("ceiling", "ceiling_high", "floor", "floor_low")}
        if "ceiling" in entry:
            flipped["floor"], flipped["floor_low"] = 1 - entry["ceiling"], 1 - entry["ceiling_high"]
        if "floor" in entry:
            flipped["ceiling"], flipped["ceiling_high"] = 1 - entry["floor"], 1 - entry["floor_low"]
        flipped["numerator"] = None
        return flipped
    numerator = entry["denominator"] - entry["numerator"]
    return {**entry, "rate": 1 - entry["rate"], "low": 1 - entry["high"],
            "high": 1 - entry["low"], "numerator": numerator}


def count_entry(count: int, k: int) -> int | Suppressed:
    return Suppressed(k) if is_small(count, k) else int(count)


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


def clinic_rates(row: dict[str, Any], k: int, prefix: str = "") -> dict[str, Any]:
    """Response, remission, non-response, did-not-reach-response (evaluable and ITT)."""
    p = prefix
    evaluable = int(row[f"{p}evaluable"])
    cells = {"response": int(row[f"{p}responders"]), "partial": int(row[f"{p}partial"]),
             "non_response": int(row[f"{p}non_responders"])}
    hidden = suppress_partition(cells, k, protect=("response",))

    def complementary(name: str) -> bool:
        return name in hidden and not is_small(cells[name], k)

    response = rate_entry(cells["response"], evaluable, k, complementary("response"))
    non_response = rate_entry(cells["non_response"], evaluable, k, complementary("non_response"))
    if complementary("non_response") and is_small(cells["partial"], k) and evaluable > k:
        # Printed response and "<11" partial responders bound non-response from below.
        least = max(evaluable - cells["response"] - k, 0)
        non_response["floor"] = least / evaluable
        non_response["floor_low"] = (wilson(least, evaluable) or (0, 1))[0]
    remission = rate_entry(int(row[f"{p}remitters"]), int(row[f"{p}remission_evaluable"]), k)
    # ITT: the gap between ITT and evaluable denominators (courses without an endpoint) must
    # not be a small cell, or the ITT rates would reveal it.
    itt_n = int(row[f"{p}itt"])
    gap = itt_n - evaluable
    remission_gap = int(row[f"{p}itt_remission"]) - int(row[f"{p}remission_evaluable"])
    gap_reason = "withheld: would reveal fewer than 11 courses without an endpoint"
    itt_response = rate_entry(cells["response"], itt_n, k, is_small(gap, k) or response["suppressed"],
                              gap_reason if is_small(gap, k) else None)
    itt_remission = rate_entry(int(row[f"{p}remitters"]), int(row[f"{p}itt_remission"]),
                               k, is_small(remission_gap, k) or remission["suppressed"],
                               gap_reason if is_small(remission_gap, k) else None)
    itt_non = rate_entry(cells["non_response"] + gap, itt_n, k,
                         is_small(gap, k) or non_response["suppressed"],
                         gap_reason if is_small(gap, k) else None)
    return {
        "evaluable": count_entry(evaluable, k),
        "itt": count_entry(itt_n, k),
        "rows": [
            {"key": "response", "label": "Response (≥50% reduction)",
             "evaluable": response, "itt": itt_response},
            {"key": "remission", "label": "Remission (endpoint at or below the cut-off)",
             "evaluable": remission, "itt": itt_remission},
            {"key": "non_response", "label": "Non-response (<25% reduction)",
             "evaluable": non_response, "itt": itt_non,
             "itt_note": "ITT counts a course without an endpoint as non-response"},
            {"key": "not_response", "label": "Did not reach response (<50% reduction)",
             "evaluable": complement_entry(response), "itt": complement_entry(itt_response)},
        ],
    }


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


def _km_estimate(frame: pl.DataFrame, duration: str, event: str, at: float, k: int,
                 cumulative: bool) -> dict[str, Any]:
    """KM estimate at `at` (1 - S when cumulative) with a 95% interval, or a withheld marker."""
    point = km_at([float(d) for d in frame[duration].to_list()],
                  [bool(e) for e in frame[event].to_list()], at)
    if point is None or point.subjects <= k:
        return {"rate": None, "low": None, "high": None, "suppressed": point is not None,
                "subjects": count_entry(point.subjects if point else 0, k),
                "reason": "fewer than 11 courses" if point else "no courses"}
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


def claims_for(protocol: dict[str, Any], counts: dict[str, Any] | None,
               metrics: dict[str, pl.DataFrame], completion: dict[str, Any],
               instrument: str, settings: EvidenceSettings, k: int,
               refs: dict[str, int]) -> list[dict[str, Any]]:
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
    measured = int(same[0]["measured"]) if same else 0
    halved = int(same[0]["reduced_by_half"]) if same else 0
    entry = rate_entry(halved, measured, k) if measured else None
    mean_change = same[0]["mean_change"] if same and measured > k else None
    add("relief_hour", "Relief within about an hour",
        "Share with a ≥50% same-day reduction after infusion 1 (pre and same-day post score)",
        "most patients: 50–100%", entry,
        judge(entry, *MOST, "no infusion 1 with a pre and a same-day post score"),
        extra=(f"mean same-day change {_signed(mean_change)} points"
               if mean_change is not None else None),
        needs="a pre score and a post score on the day of infusion 1 (timing pre/post)")

    # 2. Most people better after 3-4 infusions -> KM cumulative response after 4
    rated = rated_courses(metrics["course_outcomes"]).filter(
        (pl.col("protocol_id") == pid) & (pl.col("instrument") == instrument)
    ).with_columns(
        responded=pl.col("infusions_to_response").is_not_null(),
        infusion_number=pl.coalesce("infusions_to_response", "last_scored_infusion"),
    ).filter(pl.col("infusion_number").is_not_null())
    summary = metrics["protocol_summary"].filter(
        (pl.col("protocol_id") == pid) & (pl.col("instrument") == instrument)).to_dicts()
    median = summary[0]["median_infusions_to_response"] if summary else None
    if planned < CLAIM_INFUSIONS:
        add("better_3_4", "Most people feel significantly better after 3–4 infusions",
            f"Kaplan–Meier cumulative response after {CLAIM_INFUSIONS} infusions", "50–100%", None,
            Verdict(NOT_MEASURABLE, None, f"the plan has {planned} infusion(s)"),
            needs="a protocol with at least 4 infusions")
    else:
        km = _km_estimate(rated, "infusion_number", "responded", CLAIM_INFUSIONS, k, True)
        add("better_3_4", "Most people feel significantly better after 3–4 infusions",
            f"Kaplan–Meier cumulative response after {CLAIM_INFUSIONS} infusions", "50–100%",
            km, judge(km, *MOST, "no rated courses"),
            extra=(f"median infusions to response: {median}" if median is not None
                   else "median infusions to response: not reached") if km["rate"] is not None
            else None, needs="scores between infusions (before infusion n+1)")

    # 3. Early / gradual / late mix
    if counts is None or planned < 5:
        add("timing_mix", "Early responders after 1–2 infusions, late responders after 4–5",
            "Responders by infusions to response: early 1–2, gradual 3–4, late ≥5",
            "each of early and late ≥10% of responders", None,
            Verdict(NOT_MEASURABLE, None, f"the plan has {planned} infusion(s), fewer than 5"
                    if planned < 5 else "no rated courses"),
            needs="a protocol with at least 5 infusions and scores between infusions")
    else:
        n = int(counts["ever_responded"])
        cells = {c: int(counts[c]) for c in ("early", "gradual", "late")}
        hidden = suppress_partition(cells, k)
        shares = {c: rate_entry(v, n, k, c in hidden and not is_small(v, k))
                  for c, v in cells.items()}
        early, late = shares["early"], shares["late"]
        verdict = mix_verdict(_mix_share(early), _mix_share(late),
                              missing_reason="a class is withheld (fewer than 11 courses)")
        add("timing_mix", "Early responders after 1–2 infusions, late responders after 4–5",
            "Responders by infusions to response: early 1–2, gradual 3–4, late ≥5",
            "each of early and late ≥10% of responders", None, verdict,
            needs="scores between infusions")
        claims[-1]["mix"] = [{"label": lbl, **shares[c]} for c, lbl in
                             (("early", "early (1–2)"), ("gradual", "gradual (3–4)"),
                              ("late", "late (≥5)"))]
        claims[-1]["mix_n"] = count_entry(n, k)

    # 4. "About 20-30% do not respond" -> non-response, and did not reach response
    rates = clinic_rates(counts, k) if counts is not None else None
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
    durable = metrics["durability_courses"].filter(
        (pl.col("protocol_id") == pid) & (pl.col("instrument") == instrument))
    dsum = metrics["durability_summary"].filter(
        (pl.col("protocol_id") == pid) & (pl.col("instrument") == instrument)).to_dicts()
    km_d = _km_estimate(durable, "days", "relapsed", DURABILITY_DAYS, k, False)
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
    entry = completion.get("completed")
    add("completion", "The standard course is six infusions over 12 days"
        if (planned, protocol.get("planned_days")) == (6, 12)
        else f"The course is the planned series ({plan})",
        f"Share of courses (not in progress) completing the planned {planned} infusions",
        "most courses: 50–100%", entry, judge(entry, *MOST, "no finished courses"),
        extra=_within_days_text(completion.get("within_days"), protocol.get("planned_days")))
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


def completion_rates(courses: pl.DataFrame, protocols: pl.DataFrame, k: int) -> dict[str, Any]:
    """Per protocol: share of finished courses completing the plan, and within planned days."""
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
    result = {}
    for row in counts.to_dicts():
        result[row["protocol_id"]] = {
            "finished": count_entry(row["finished"], k),
            "completed": rate_entry(row["completed"], row["finished"], k),
            "within_days": rate_entry(row["within"], row["finished"], k),
        }
    return result


# ---------------------------------------------------------------------------------------------
# The whole context


def _case_mix(row: dict[str, Any], instrument: Any, k: int) -> dict[str, Any]:
    evaluable = int(row["evaluable"])
    share10 = rate_entry(int(row["case_share_10"]), evaluable, k)
    restricted_hidden = share10["suppressed"]
    rates = clinic_rates(row, k, prefix="case_")
    if restricted_hidden:
        for r in rates["rows"]:
            for key in ("evaluable", "itt"):
                r[key] = {**r[key], "rate": None, "low": None, "high": None, "numerator": None,
                          "denominator": None, "suppressed": True,
                          "reason": "withheld: would reveal fewer than 11 courses below caseness"}
        rates["evaluable"] = rates["itt"] = None
    return {
        "restricted_withheld": restricted_hidden,
        "caseness": instrument.caseness,
        "median_baseline": row["median_baseline"] if evaluable > k else None,
        "q1_baseline": row["q1_baseline"] if evaluable > k else None,
        "q3_baseline": row["q3_baseline"] if evaluable > k else None,
        "share_caseness": share10,
        "share_15": rate_entry(int(row["severe_15"]), evaluable, k),
        "share_20": rate_entry(int(row["severe_20"]), evaluable, k),
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
    k = config.definitions.small_cell_max
    instrument = settings.primary_instrument
    counts = {(r["protocol_id"], r["instrument"]): r
              for r in outcome_counts(metrics["course_outcomes"], config.instruments).to_dicts()}
    completion = completion_rates(courses, protocols, k)
    protocol_rows = protocols.sort("protocol_id").to_dicts()
    # Order: induction protocols first, by plan; maintenance last.
    protocol_rows.sort(key=lambda p: ((p.get("phase") or "") == "maintenance",
                                      p.get("planned_infusions") != 6, p["protocol_id"]))

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
            "in_progress": count_entry(int(row["in_progress"]), k) if row else 0,
            "courses_not_in_progress": count_entry(int(row["courses_not_in_progress"]), k)
            if row else 0,
        }
        if row is None:
            section["rates"] = None
            section["case_mix"] = None
        else:
            section["rates"] = clinic_rates(row, k)
            section["case_mix"] = _case_mix(row, config.instruments[instrument], k)
            response = section["rates"]["rows"][0]["evaluable"]
            remission = section["rates"]["rows"][1]["evaluable"]
            case_response = section["case_mix"]["restricted"]["rows"][0]["evaluable"]
            section["families"] = [
                family_comparison(f, settings, refs, response, remission, case_response)
                for f in families]
        section["populations"] = sorted({settings.registry[sid].population
                                         for f in families for sid in f.pooled})
        section["other_instruments"] = [
            {"instrument": inst, **clinic_rates(counts[(pid, inst)], k)}
            for inst in config.instruments
            if inst != instrument and (pid, inst) in counts and counts[(pid, inst)]["evaluable"] > 0
        ]
        if (p.get("phase") or "") != "maintenance":
            section["claims"] = claims_for(p, row, metrics, completion.get(pid, {}), instrument,
                                           settings, k, refs)
        sections.append(section)

    summary = [_summary_row(s) for s in sections]
    claim_keys = [c["key"] for s in sections for c in s["claims"]]
    claim_matrix = []
    for key in dict.fromkeys(claim_keys):
        cells = []
        label = None
        for s in sections:
            found = next((c for c in s["claims"] if c["key"] == key), None)
            if found:
                label = label or found["claim"]
            cells.append(found["verdict"]["text"] if found else "not assessed")
        claim_matrix.append({"key": key, "claim": label, "cells": cells})

    caveats = _caveats(settings, refs)
    return {
        "report": "evidence",
        "as_of": as_of.isoformat(),
        "clinic_name": config.clinic.name,
        "version": pipeline.__version__,
        "primary_instrument": instrument,
        "small_cell_max": k,
        "registry_path": settings.registry_path,
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
    }


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
         "complement is 1–10. Complementary suppression: within response / partial / non-response "
         "(and early / gradual / late) a second cell is withheld when one alone would be "
         "derivable; ITT rates are withheld when the courses without an endpoint number 1–10; "
         "rates restricted to baseline ≥ caseness are withheld when the courses below caseness "
         "number 1–10."},
    ]


# ---------------------------------------------------------------------------------------------
# Writing


def load_inputs(db_path: Path, as_of: date, config: Config
                ) -> tuple[dict[str, pl.DataFrame], pl.DataFrame, pl.DataFrame]:
    """Metrics as of `as_of` (recomputed, read-only), courses and protocols."""
    if not db_path.is_file():
        raise InputError(f"database {db_path} not found; load an export first with "
                         f"`outcomes ingest DATA_DIR --db {db_path}`")
    try:
        con = connect(db_path, config, read_only=True)
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


def write_evidence_report(db_path: str | Path, as_of: date, out_dir: Path,
                          config: Config) -> list[Path]:
    """SPEC §3 `outcomes report evidence`: evidence-YYYY-MM-DD.pdf and .json in out_dir."""
    from pipeline.render import Renderer
    from pipeline.reports.evidence_charts import forest_plot, funnel_plot

    settings = evidence_settings(config)  # config errors first, before any work
    metrics, courses, protocols = load_inputs(Path(db_path), as_of, config)
    context = finite(build_context(metrics, courses, protocols, config, settings, as_of))
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
    created = datetime.combine(as_of, time(0, 0))
    doc = {
        "title": f"Evidence comparison as of {as_of.isoformat()}",
        "author": config.clinic.name,
        "subject": "Clinic outcomes per protocol compared with published IV-ketamine studies and "
                   "with common patient-facing claims",
        "keywords": "ketamine, outcomes, evidence, funnel plot, PHQ-9",
        "version": pipeline.__version__,
        "created": created.strftime("%Y-%m-%dT%H:%M:%S"),
        "clinic_name": config.clinic.name,
        "header_right": f"Evidence comparison · as of {as_of.isoformat()}",
        "footer": "Aggregate figures only; counts of 1–10 are printed as <11. "
                  "No patient identifiers.",
    }
    renderer = Renderer(page_size=config.clinic.page_size)
    html = renderer.html(TEMPLATE, {"doc": doc, "ctx": context, "charts": charts})
    renderer.pdf(html, pdf_path, created=created)
    json_path.write_text(
        json.dumps(json_ready(context), indent=2, ensure_ascii=False) + "\n",
        encoding="utf-8")
    return [pdf_path, json_path]

