"""The evidence comparison report's context (docs/definitions.md "Comparison with published
evidence"): one `Results` -> plain dicts of every number the report prints, and the same
context as JSON. Small cells are always suppressed in this report (it may leave the clinic):
counts of 1 to `small_cell_max`, and never fewer than 1-10, whatever `suppress_small_cells` and
`small_cell_max` say (rates.py `evidence_small_cell_max`). No patient or course identifier
enters the context.

Suppression goes through the same `Ledger` as the monthly report
(pipeline/reports/suppression.py): `register_cells` declares every count the report prints (a
rate prints its numerator and denominator: a Wilson interval with its n gives both away) and the
relations among them (docs/suppression.md, "Evidence report"); the ledger is solved before the
context is built, so each rate entry knows whether it may print, and verdicts use only what is
printed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

import pipeline
from pipeline.config import Config
from pipeline.methods import Labels, methods_sentences
from pipeline.methods import labels as methods_labels
from pipeline.reports.evidence import texts
from pipeline.reports.evidence.cells import (
    KM_COURSES,
    completion_counts,
    km_courses,
    read_course_spans,
    register_cells,
)
from pipeline.reports.evidence.claims import claims_for
from pipeline.reports.evidence.compare import verdict_rules
from pipeline.reports.evidence.families import (
    MATCH_RULE,
    PUBLISHED_RESPONSE_PCT,
    EvidenceSettings,
)
from pipeline.reports.evidence.rates import (
    RATE_COUNTS,
    clinic_rates,
    ek,
    evidence_labels,
    evidence_small_cell_max,
    ledger_entry,
    outcome_counts,
    severe_limits,
)
from pipeline.reports.evidence.registry import EXCLUDED_SOURCE_ROWS
from pipeline.reports.evidence.studies import ClinicCounts, family_comparison, references_for
from pipeline.reports.monthly.periods import headline_instrument
from pipeline.reports.suppression import CountRef, Ledger
from pipeline.results import Results

# cited whenever the registry holds them (the caveats and the durability claim quote them)
ALWAYS_CITED = ("murrough2013_biolpsych", "lii2023_masked", "oliver2022_10inf")
DEFAULT_INSTRUMENT = "PHQ-9"


def report_instrument(results: Results, settings: EvidenceSettings) -> str:
    """The instrument compared with the studies: `[evidence] primary_instrument` when set,
    else the monthly report's rule (PHQ-9 when any course has it evaluable, else the
    instrument with most evaluable courses)."""
    if settings.primary_instrument is not None:
        return settings.primary_instrument
    rows = results.tables["course_outcomes"].group_by("instrument", "evaluable").agg(n=pl.len())
    return headline_instrument(rows) or DEFAULT_INSTRUMENT


def not_comparable(config: Config) -> str | None:
    """Why the clinic's response cannot be set against the studies' (None when it can)."""
    if config.definitions.response_pct != PUBLISHED_RESPONSE_PCT:
        return (f"not comparable: response defined as ≥ "
                f"{methods_labels(config.definitions).response_pct}%")
    return None


def report_protocols(results: Results) -> pl.DataFrame:
    """The protocols with at least one course as of the report day, with their plans."""
    used = results.read(read_course_spans).select("protocol_id").unique()
    return (results.input("protocols").drop("indication").sort("protocol_id")
            .join(used, on="protocol_id", how="semi"))


def _case_mix(cells: Ledger, pid: str, row: dict[str, Any], instrument: str,
              config: Config, labels: Labels, severe: tuple[tuple[float, str], ...]
              ) -> dict[str, Any]:
    c = CountRef(ek(pid, instrument, "evaluable"))
    case = {name: CountRef(ek(pid, instrument, "case_" + name)) for name in
            [*RATE_COUNTS, "not_responding", "itt_non_response", "itt_not_responding",
             "no endpoint"]}
    case["gap"] = case["no endpoint"]
    share10 = ledger_entry(cells, case["evaluable"], c)
    rates = clinic_rates(cells, case, labels, config.instruments[instrument].remission)
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
        "severity": [{"limit": limit, "band": band,
                      "share": ledger_entry(cells, CountRef(ek(pid, instrument,
                                                               f"baseline >= {limit:g}")), c)}
                     for limit, band in severe],
        "restricted": rates,
    }


def build_context(results: Results, settings: EvidenceSettings) -> dict[str, Any]:
    """Everything the report prints, computed here (pure: results in, plain dict out)."""
    return build_ledger_context(results, settings)[0]


def build_ledger_context(results: Results, settings: EvidenceSettings
                         ) -> tuple[dict[str, Any], Ledger]:
    """The context and the solved ledger behind it (tests read the ledger's self-checks)."""
    config, as_of = results.config, results.as_of
    course_outcomes = results.tables["course_outcomes"]
    metrics = {**results.tables, KM_COURSES: km_courses(course_outcomes)}
    protocols = report_protocols(results)
    k = evidence_small_cell_max(config)
    labels = evidence_labels(config)
    instrument = report_instrument(results, settings)
    remission = config.instruments[instrument].remission
    severe = severe_limits(config.instruments[instrument])
    why_not = not_comparable(config)
    counts = {(r["protocol_id"], r["instrument"]): r
              for r in outcome_counts(metrics["course_outcomes"], config.instruments,
                                      tuple(limit for limit, _ in severe)).to_dicts()}
    completion = completion_counts(results.read(read_course_spans), protocols)
    protocol_rows = protocols.sort("protocol_id").to_dicts()
    # Order: induction protocols first, by plan; maintenance last.
    protocol_rows.sort(key=lambda p: ((p.get("phase") or "") == "maintenance",
                                      p.get("planned_infusions") != 6, p["protocol_id"]))
    cells = Ledger(on=True, small_cell_max=k)  # always on: this report may leave the clinic
    registered = register_cells(cells, counts, metrics, completion, protocol_rows, config,
                                instrument, tuple(limit for limit, _ in severe))
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
            section["rates"] = clinic_rates(cells, c, labels, remission)
            section["case_mix"] = _case_mix(cells, pid, row, instrument, config, labels, severe)
            clinic = ClinicCounts(cells.printed(c["evaluable"]), cells.printed(c["responders"]),
                                  why_not is None, why_not)
            case = None
            if not section["case_mix"]["restricted_withheld"]:
                restricted = registered[(pid, "case")]
                case = ClinicCounts(cells.printed(restricted["evaluable"]),
                                    cells.printed(restricted["responders"]), why_not is None,
                                    why_not)
            section["families"] = [family_comparison(f, settings, refs, clinic, case, k)
                                   for f in families]
        section["populations"] = sorted({settings.registry[sid].population
                                         for f in families for sid in f.pooled})
        section["other_instruments"] = [
            {"instrument": inst, **clinic_rates(cells, registered[(pid, inst)], labels,
                                                config.instruments[inst].remission)}
            for inst in config.instruments
            if inst != instrument and (pid, inst) in counts and counts[(pid, inst)]["evaluable"] > 0
            and row is not None
        ]
        if (p.get("phase") or "") != "maintenance":
            section["claims"] = claims_for(p, c, metrics, cells, instrument, settings, refs,
                                           labels, config.definitions)
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

    caveats = texts.caveats(settings, refs, config, labels, instrument, why_not)
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
        "verdict_rules": verdict_rules(labels, why_not is None),
        "match_rule": MATCH_RULE,
        "caveats": caveats,
        "references": references,
        "excluded_source_rows": [{"study_id": s, "reason": r}
                                 for s, r in EXCLUDED_SOURCE_ROWS.items()],
        "comparable": why_not is None,
        "not_comparable": why_not,
        "benchmark_method": settings.method,
        # the evidence report's own small-cell sentence replaces the monthly one
        "methods": methods_sentences(replace(config, definitions=replace(
            config.definitions, suppress_small_cells=False))),
        "evidence_methods": texts.evidence_methods(labels, config, settings),
        "definitions_in_force": config.definitions_in_force(),
    }, cells


def _summary_row(section: dict[str, Any]) -> dict[str, Any]:
    rates = section["rates"]
    return {
        "protocol_id": section["protocol_id"], "name": section["name"],
        "response": rates["rows"][0]["evaluable"] if rates else None,
        "itt_response": rates["rows"][0]["itt"] if rates else None,
        "non_response": rates["rows"][2]["evaluable"] if rates else None,
        "families": [{key: f[key] for key in (
            "label", "p0", "p0_ci_low", "p0_ci_high", "single_benchmark", "range_low",
            "range_high", "k", "position", "position998", "position_text")}
            for f in section["families"]],
    }
