"""The published side of the evidence report: each study as printed, the random-effects
benchmark of a family with the clinic placed on its exact funnel (benchmarks.py,
docs/benchmarks.md), and the numbered references.

The clinic's n and responders arrive as the ledger prints them (a number, "<11" or "*"): the
funnel limits need the n printed, and a position is printed only when it tells nothing about a
withheld count of responders that its marker does not already tell (docs/benchmarks.md,
"The clinic's position under suppression").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.formatting import Suppressed, Withheld
from pipeline.reports.evidence.benchmarks import (
    FamilyEvidence,
    StudyInterval,
    family_evidence,
    study_interval,
)
from pipeline.reports.evidence.families import EvidenceSettings, Family
from pipeline.reports.evidence.pooling import METHOD_NAMES
from pipeline.reports.evidence.registry import Study
from pipeline.stats import ExactFunnel

Printed = int | Suppressed | Withheld | None  # a count as the ledger prints it

# Short forms of the registry's `pooling` reasons, for the forest plot's row labels.
SHORT_REASONS = {
    "kaplan_meier": "Kaplan–Meier", "meta_analytic": "meta-analysis", "pre_dose": "pre-dose",
    "secondary_source": "second-hand", "denominator_unknown": "no denominator",
}


@dataclass(frozen=True)
class ClinicCounts:
    """A clinic rate's n and responders as printed; `comparable` False when the clinic's
    response is not the studies' (then no limits and no position), with `why` saying so."""

    n: Printed
    responders: Printed
    comparable: bool = True
    why: str | None = None


def _interval(interval: StudyInterval | None) -> dict[str, Any] | None:
    if interval is None:
        return None
    return {"low": interval.low, "high": interval.high, "source": interval.source}


def study_row(study: Study, ref: int, entry: dict[str, Any], label: str) -> dict[str, Any]:
    """One published row as printed: the benchmark's entry (pooled, rate, binomial n, interval,
    reason) and what the table shows beside it."""
    return {
        **entry, "ref": ref, "label": label, "design_class": study.design_class,
        "population": study.population, "sample_n": study.n, "n_note": study.n_note,
        "instrument": study.instrument or "not stated", "timepoint": study.timepoint,
        "protocol": _study_protocol(study), "pooling": study.pooling,
        "short_reason": None if entry["pooled"] else SHORT_REASONS.get(
            study.pooling, "no DOI/PMID" if not study.benchmark else "context"),
        "remission_rate": study.remission_rate,
        "remission_interval": _interval(study_interval(study, "remission")),
        "remission_definition": study.remission_definition, "note": study.notes,
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


def _labels(studies: list[Study], refs: dict[str, int]) -> list[str]:
    """'Murrough 2013 [1]'; rows of one paper in a family also name their timepoint or, at
    the same timepoint, their instrument ('Anand 2023 [12], MADRS')."""
    plain = [f"{s.short_label} [{refs[s.study_id]}]" for s in studies]
    out = []
    for label, study in zip(plain, studies, strict=True):
        same = [s for s, other in zip(studies, plain, strict=True) if other == label]
        if len(same) > 1:
            field = "timepoint" if len({s.timepoint for s in same}) == len(same) else "instrument"
            label = f"{label}, {getattr(study, field) or 'not stated'}"
        out.append(label)
    return out


def place(funnel: ExactFunnel, responders: Printed, small_cell_max: int
          ) -> tuple[str | None, str | None]:
    """The clinic's position against the 95% and the 99.8% limits. A withheld count of
    responders is placed only when every count its marker allows ("<11": 1 to 10; "*": 11 to
    n) gets the same position, so the label tells nothing the marker does not (None otherwise).
    """
    if isinstance(responders, int):
        return funnel.place(responders)
    if isinstance(responders, Suppressed):
        low, high = 1, min(small_cell_max, funnel.n)
    elif isinstance(responders, Withheld):
        low, high = min(small_cell_max + 1, funnel.n), funnel.n
    else:
        return None, None
    # positions run below -> within -> above as the count grows: both ends decide
    ends = funnel.place(low), funnel.place(high)
    return tuple(a if a == b else None for a, b in zip(*ends, strict=True))  # type: ignore[return-value]


def position_text(position: str | None, position998: str | None) -> str | None:
    """'below', 'below (outside 99.8%)', 'within'."""
    if position is None:
        return None
    if position != "within" and position998 == position:
        return f"{position} (outside 99.8%)"
    return position


def _placement(evidence: FamilyEvidence, clinic: ClinicCounts, small_cell_max: int
               ) -> dict[str, Any]:
    """Limits for the clinic's n, its position and the sentence printed in its place."""
    funnel = evidence.funnel
    position = position998 = None
    benchmark = evidence.benchmark
    if not clinic.comparable:
        text = clinic.why
    elif benchmark is None:
        text = "not placed: no study of the family can be pooled"
    elif not benchmark.single:
        text = f"not placed: no single benchmark (I² = {100 * (benchmark.i2 or 0):.0f}%)"
    elif not isinstance(clinic.n, int):
        text = "not placed: withheld (small cells)" if clinic.n is not None else \
            "not placed: no evaluable courses"
    elif clinic.n == 0 or funnel is None:
        text = "not placed: no evaluable courses"
    else:
        position, position998 = place(funnel, clinic.responders, small_cell_max)
        text = position_text(position, position998) or \
            "not placed: the position would narrow a withheld count"
    return {
        "n": clinic.n, "responders": clinic.responders,
        "observed": clinic.responders / clinic.n if isinstance(clinic.responders, int)
        and isinstance(clinic.n, int) and clinic.n else None,
        "limit95_low": funnel.limits95[0] if funnel else None,
        "limit95_high": funnel.limits95[1] if funnel else None,
        "limit998_low": funnel.limits998[0] if funnel else None,
        "limit998_high": funnel.limits998[1] if funnel else None,
        "position": position, "position998": position998, "position_text": text,
    }


def _evidence(family: Family, settings: EvidenceSettings, clinic: ClinicCounts
              ) -> FamilyEvidence:
    n = clinic.n if clinic.comparable and isinstance(clinic.n, int) and clinic.n > 0 else None
    return family_evidence(family, settings.registry, n=n, method=settings.method)


def family_comparison(family: Family, settings: EvidenceSettings, refs: dict[str, int],
                      clinic: ClinicCounts, case: ClinicCounts | None,
                      small_cell_max: int) -> dict[str, Any]:
    """The family's evidence JSON object (docs/benchmarks.md: p0, p0_ci_low/high, tau2, i2, k,
    pi_low/high, method, n, responders, limit95_low/high, limit998_low/high, position), its
    studies as printed, and `case`: the rate restricted to caseness against the same limits."""
    evidence = _evidence(family, settings, clinic)
    out = evidence.to_json()
    registry = settings.registry
    studies = [registry[s["study_id"]] for s in out["studies"]]
    out["studies"] = [study_row(study, refs[study.study_id], entry, label) for study, entry, label
                      in zip(studies, out["studies"], _labels(studies, refs), strict=True)]
    benchmark = evidence.benchmark
    out.update(_placement(evidence, clinic, small_cell_max))
    out.update({
        "key": family.key, "label": family.label, "comparable": family.comparable,
        "method_name": METHOD_NAMES[benchmark.method] if benchmark else None,
        "populations": sorted({registry[s["study_id"]].population for s in out["studies"]
                               if s["pooled"]}),
        "case": _placement(_evidence(family, settings, case), case, small_cell_max)
        if case is not None else None,
    })
    return out


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
