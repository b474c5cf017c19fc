"""The evidence comparison report's context (docs/definitions.md "Comparison with published
evidence"): one `Results` -> plain dicts of every number the report prints, and the same
context as JSON. Small cells are always suppressed in this report (it may leave the clinic),
whatever `suppress_small_cells` says. No patient or course identifier enters the context.

Suppression goes through the same `Ledger` as the monthly report
(pipeline/reports/suppression.py): `register_cells` declares every count the report prints (a
rate prints its numerator and denominator: a Wilson interval with its n gives both away) and the
relations among them (docs/suppression.md, "Evidence report"); the ledger is solved before the
context is built, so each rate entry knows whether it may print, and verdicts use only what is
printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

import pipeline
from pipeline.config import Config
from pipeline.methods import Labels, methods_sentences
from pipeline.methods import labels as methods_labels
from pipeline.reports.evidence.cells import (
    CLAIM_INFUSIONS,
    DURABILITY_DAYS,
    completion_counts,
    register_cells,
)
from pipeline.reports.evidence.claims import claims_for
from pipeline.reports.evidence.compare import VERDICT_RULES
from pipeline.reports.evidence.families import MATCH_RULE, EvidenceSettings
from pipeline.reports.evidence.rates import (
    RATE_COUNTS,
    SEVERE_BASELINES,
    clinic_rates,
    ek,
    ledger_entry,
    outcome_counts,
)
from pipeline.reports.evidence.registry import EXCLUDED_SOURCE_ROWS
from pipeline.reports.evidence.studies import family_comparison, references_for
from pipeline.reports.suppression import CountRef, Ledger
from pipeline.results import Results

STUDY_RESPONSE_PCT = "50"  # the published studies' response: a reduction of at least 50%
# cited whenever the registry holds them (the caveats and the durability claim quote them)
ALWAYS_CITED = ("murrough2013_biolpsych", "lii2023_masked", "oliver2022_10inf")


def report_protocols(results: Results) -> pl.DataFrame:
    """The protocols with at least one course as of the report day, with their plans."""
    used = results.frames.courses.select("protocol_id").unique()
    return (results.input("protocols").drop("indication").sort("protocol_id")
            .join(used, on="protocol_id", how="semi"))


def _case_mix(cells: Ledger, pid: str, row: dict[str, Any], instrument: str,
              config: Config, labels: Labels) -> dict[str, Any]:
    c = CountRef(ek(pid, instrument, "evaluable"))
    case = {name: CountRef(ek(pid, instrument, "case_" + name)) for name in
            [*RATE_COUNTS, "not_responding", "itt_non_response", "itt_not_responding",
             "no endpoint"]}
    case["gap"] = case["no endpoint"]
    share10 = ledger_entry(cells, case["evaluable"], c)
    rates = clinic_rates(cells, case, labels)
    restricted_hidden = share10["suppressed"] or all(
        r[key]["suppressed"] for r in rates["rows"][:3] for key in ("evaluable", "itt"))
    if restricted_hidden:
        for r in rates["rows"]:
            for key in ("evaluable", "itt"):
                r[key] = {**r[key], "rate": None, "low": None, "high": None, "numerator": None,
                          "denominator": None, "suppressed": True,
                          "reason": f"withheld: would reveal {labels.fewer_than()} courses"}
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
        **{f"share_{limit}": ledger_entry(cells, CountRef(ek(pid, instrument,
                                                              f"baseline >= {limit}")), c)
           for limit in SEVERE_BASELINES},
        "restricted": rates,
    }


def build_context(results: Results, settings: EvidenceSettings) -> dict[str, Any]:
    """Everything the report prints, computed here (pure: results in, plain dict out)."""
    return build_ledger_context(results, settings)[0]


def build_ledger_context(results: Results, settings: EvidenceSettings
                         ) -> tuple[dict[str, Any], Ledger]:
    """The context and the solved ledger behind it (tests read the ledger's self-checks)."""
    config, as_of, metrics = results.config, results.as_of, results.tables
    protocols = report_protocols(results)
    k = config.definitions.small_cell_max
    labels = methods_labels(config.definitions)
    instrument = settings.primary_instrument
    counts = {(r["protocol_id"], r["instrument"]): r
              for r in outcome_counts(metrics["course_outcomes"], config.instruments).to_dicts()}
    completion = completion_counts(results.frames.courses, protocols)
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
    for extra in ALWAYS_CITED:
        if extra in settings.registry and extra not in cited:
            cited.append(extra)
    refs, references = references_for(settings, cited)

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
            section["rates"] = clinic_rates(cells, c, labels)
            section["case_mix"] = _case_mix(cells, pid, row, instrument, config, labels)
            response = section["rates"]["rows"][0]["evaluable"]
            remission = section["rates"]["rows"][1]["evaluable"]
            case_response = section["case_mix"]["restricted"]["rows"][0]["evaluable"]
            section["families"] = [
                family_comparison(f, settings, refs, response, remission, case_response)
                for f in families]
        section["populations"] = sorted({settings.registry[sid].population
                                         for f in families for sid in f.pooled})
        section["other_instruments"] = [
            {"instrument": inst, **clinic_rates(cells, registered[(pid, inst)], labels)}
            for inst in config.instruments
            if inst != instrument and (pid, inst) in counts and counts[(pid, inst)]["evaluable"] > 0
            and row is not None
        ]
        if (p.get("phase") or "") != "maintenance":
            section["claims"] = claims_for(p, c, metrics, cells, instrument, settings, refs,
                                           labels)
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

    caveats = _caveats(settings, refs, config, labels)
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
        "evidence_methods": _evidence_methods(labels),
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


def _caveats(settings: EvidenceSettings, refs: dict[str, int], config: Config,
             labels: Labels) -> list[str]:
    reg = settings.registry
    primary = settings.primary_instrument
    primary_text = "the self-rated PHQ-9" if primary == "PHQ-9" else f"the {primary}"
    rp = labels.response_pct
    response = (f"Response (≥{rp}% reduction) is defined the same way" if rp == STUDY_RESPONSE_PCT
                else f"The clinic's response (≥{rp}% reduction) is not the studies' (≥"
                     f"{STUDY_RESPONSE_PCT}% reduction)")
    out = [
        "Instruments differ: most trials rate the MADRS (clinician) or QIDS-SR-16; the clinic's "
        f"primary instrument is {primary_text}. {response}, "
        "but scales are not interchangeable.",
        "Timepoints differ: many trials rate 24 hours after an infusion, and response rated then "
        "runs higher than response rated later (e.g. before the next infusion); the clinic's "
        "endpoint is the last score up to "
        f"{config.definitions.endpoint_window_days} days after the last infusion.",
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


def _evidence_methods(labels: Labels) -> list[dict[str, str]]:
    k, fewer, small = labels.small_cell_max, labels.fewer_than(), labels.small_range()
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
        {"definition": "Kaplan–Meier intervals", "text": "Cumulative response after "
         f"{CLAIM_INFUSIONS} infusions and durability at {DURABILITY_DAYS} days are Kaplan–Meier "
         "estimates with 95% Greenwood intervals on the log(−log) scale; they are withheld when "
         f"{fewer} courses contribute."},
        {"definition": "Small cells", "text": f"Always on in this report: counts from 1 to {k} "
         f"print as \"{labels.marker}\" and rates built on them are withheld, as are rates whose "
         f"complement is {small}. Complementary suppression: no count of {small} may be worked out "
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
