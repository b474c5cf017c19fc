"""The published side of the evidence report: each study as printed, the pooled benchmark
of a family with the clinic placed on its funnel, and the numbered references.
"""

from __future__ import annotations

from typing import Any

from pipeline.reports.evidence.compare import (
    FunnelResult,
    funnel_result,
    pooled_rate,
    wilson_from_rate,
)
from pipeline.reports.evidence.families import EvidenceSettings, Family
from pipeline.reports.evidence.registry import Study


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


def references_for(settings: EvidenceSettings, cited: list[str]) -> tuple[dict[str, int], list[dict]]:
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
