"""Claims commonly made to patients, each measured on the clinic's courses and judged against
its claimed range with a verdict (pipeline/reports/evidence/compare.py VERDICT_RULES).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from pipeline.config import Definitions
from pipeline.formatting import Suppressed
from pipeline.methods import Labels
from pipeline.outcomes import TIMING_CLASSES
from pipeline.reports.evidence.cells import CLAIM_INFUSIONS, DURABILITY_DAYS, km_frames, km_point
from pipeline.reports.evidence.compare import (
    NOT_MEASURABLE,
    KMPoint,
    Verdict,
    mix_verdict,
    range_verdict,
)
from pipeline.reports.evidence.families import (
    PUBLISHED_PARTIAL_PCT,
    PUBLISHED_RESPONSE_PCT,
    EvidenceSettings,
)
from pipeline.reports.evidence.rates import clinic_rates, ek, ledger_entry
from pipeline.reports.suppression import CountRef, Ledger

MOST = (0.5, 1.0)  # "most patients"
NON_RESPONSE_CLAIM = (0.2, 0.3)  # "about 20-30% do not respond"
TIMING_MEASURE = "Responders by infusions to response: " + ", ".join(
    f"{cls.key} {cls.span('≥{}')}" for cls in TIMING_CLASSES)


NOT_COMPARABLE = "not comparable"
# The claims resting on the response definition (all but completion); "non_response" also on
# the partial-response one (docs/benchmarks.md, "Same definitions on both sides").
RESPONSE_CLAIMS = ("relief_hour", "better_3_4", "timing_mix", "non_response", "not_response",
                   "durability")


def _verdict_dict(v: Verdict) -> dict[str, Any]:
    kind = NOT_COMPARABLE if v.verdict.startswith(NOT_COMPARABLE) else v.verdict
    return {"verdict": v.verdict, "strength": v.strength, "text": v.text, "reason": v.reason,
            "kind": kind}


def not_comparable_verdict(key: str, definitions: Definitions, labels: Labels) -> Verdict | None:
    """'not comparable: response defined as ≥ 40%' for a claim resting on a definition the
    clinic sets differently from the studies and the claim; None when comparable."""
    if key not in RESPONSE_CLAIMS:
        return None
    if definitions.response_pct != PUBLISHED_RESPONSE_PCT:
        return Verdict(f"{NOT_COMPARABLE}: response defined as ≥ {labels.response_pct}%", None,
                       "the claim and the studies mean a score at least halved")
    if key == "non_response" and definitions.partial_response_pct != PUBLISHED_PARTIAL_PCT:
        return Verdict(f"{NOT_COMPARABLE}: non-response defined as < {labels.partial_pct}%",
                       None, "the studies mean a reduction of less than a quarter")
    return None


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
                "reason": f"fewer than {cells.small_cell_max + 1} courses in a cell"}
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


def bound_verdict(entry: dict[str, Any], claim_low: float, claim_high: float,
                  small_cell_max: int) -> Verdict:
    """Verdict for a withheld rate from what "<11" implies: rate <= ceiling or >= floor."""
    fewer = f"fewer than {small_cell_max + 1} courses"
    if "ceiling" in entry:
        if entry["ceiling"] < claim_low:
            firm = entry["ceiling_high"] < claim_low
            return Verdict("not supported", "firm" if firm else "tentative",
                           f"{fewer}: the rate is below the claimed range")
    elif entry["floor"] > claim_high:
        firm = entry["floor_low"] > claim_high
        return Verdict("not supported", "firm" if firm else "tentative",
                       f"all but {fewer}: the rate is above the claimed range")
    return Verdict(NOT_MEASURABLE, None, f"withheld: {fewer} in a cell")


def claims_for(protocol: dict[str, Any], c: dict[str, CountRef] | None,
               metrics: dict[str, pl.DataFrame], cells: Ledger, instrument: str,
               settings: EvidenceSettings, refs: dict[str, int], labels: Labels,
               definitions: Definitions) -> list[dict[str, Any]]:
    pid = protocol["protocol_id"]
    planned = int(protocol.get("planned_infusions") or 0)
    claims: list[dict[str, Any]] = []

    def add(key: str, claim: str, measure: str, claim_range: str, estimate: dict[str, Any] | None,
            verdict: Verdict, extra: str | None = None, needs: str | None = None) -> None:
        verdict = not_comparable_verdict(key, definitions, labels) or verdict
        claims.append({"key": key, "claim": claim, "measure": measure, "claim_range": claim_range,
                       "estimate": estimate, "verdict": _verdict_dict(verdict), "extra": extra,
                       "needs": needs if verdict.verdict == NOT_MEASURABLE else None})

    def judge(entry: dict[str, Any] | None, lo: float, hi: float, missing: str) -> Verdict:
        if entry is not None and entry.get("rate") is None and ("ceiling" in entry
                                                                or "floor" in entry):
            return bound_verdict(entry, lo, hi, cells.small_cell_max)
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
        f"Share with a ≥{labels.response_pct}% same-day reduction after infusion 1 (pre and "
        "same-day post score)",
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
            TIMING_MEASURE,
            "each of early and late ≥10% of responders", None,
            Verdict(NOT_MEASURABLE, None, f"the plan has {planned} infusion(s), fewer than 5"
                    if planned < 5 else "no rated courses"),
            needs="a protocol with at least 5 infusions and scores between infusions")
    else:
        ever = CountRef(ek(pid, instrument, "ever responded"))
        shares = {cls.key: ledger_entry(cells, CountRef(ek(pid, instrument, cls.key)), ever)
                  for cls in TIMING_CLASSES}
        early, late = shares["early"], shares["late"]
        verdict = mix_verdict(_mix_share(early), _mix_share(late),
                              missing_reason=f"a class is withheld ({labels.fewer_than()} "
                                             "courses)")
        add("timing_mix", "Early responders after 1–2 infusions, late responders after 4–5",
            TIMING_MEASURE,
            "each of early and late ≥10% of responders", None, verdict,
            needs="scores between infusions")
        claims[-1]["mix"] = [{"label": f"{cls.key} ({cls.span('≥{}')})", **shares[cls.key]}
                             for cls in TIMING_CLASSES]
        claims[-1]["mix_n"] = cells.printed(ever)

    # 4. "About 20-30% do not respond" -> non-response, and did not reach response
    rates = clinic_rates(cells, c, labels) if c is not None else None
    non = rates["rows"][2]["evaluable"] if rates else None
    not_resp = rates["rows"][3]["evaluable"] if rates else None
    add("non_response", "About 20–30% do not respond",
        f"Non-response: <{labels.partial_pct}% reduction at endpoint (evaluable courses)",
        "20–30%", non,
        judge(non, *NON_RESPONSE_CLAIM, "no rated courses"))
    add("not_response", "About 20–30% do not respond (read as: did not reach response)",
        f"Did not reach response: <{labels.response_pct}% reduction (non-response plus "
        "partial response)", "20–30%",
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
