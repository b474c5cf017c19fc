"""What the evidence report prints for one family of published studies (docs/benchmarks.md):
each study's interval, the random-effects benchmark, and the clinic against exact funnel limits.

Pure: a Family, the registry's Study rows and the clinic's n and responders in; frozen
dataclasses and a JSON-ready dict out. Pooling is decided by the registry columns (`benchmark`,
`pooling`) and by the family's lists, never by words in a note.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.reports.evidence.compare import wilson_from_rate
from pipeline.reports.evidence.families import Family
from pipeline.reports.evidence.pooling import PAULE_MANDEL, Benchmark, random_effects
from pipeline.reports.evidence.registry import Study
from pipeline.stats import ExactFunnel, exact_funnel_limits, wilson

PUBLISHED, WILSON = "published 95% CI", "Wilson 95% on the evaluable n"
CONTEXT_BY_FAMILY = "listed for context by the family (e.g. the same patients as a pooled row)"


@dataclass(frozen=True)
class StudyInterval:
    low: float
    high: float
    source: str  # PUBLISHED or WILSON


def study_interval(study: Study, measure: str = "response") -> StudyInterval | None:
    """A published row's printed interval: its published CI where the registry holds one, else
    the Wilson interval on its evaluable (binomial) n; None for a row with no binomial n."""
    if measure not in ("response", "remission"):
        raise ValueError(f"measure must be response or remission, not {measure!r}")
    if measure == "response":
        rate, published, n = study.response_rate, study.response_ci, study.binomial_n
    else:
        rate, published, n = study.remission_rate, study.remission_ci, study.remission_binomial_n
    if rate is None:
        return None
    if published is not None:
        return StudyInterval(published[0], published[1], PUBLISHED)
    if n is None:
        return None
    counted = wilson(study.responders, n) if measure == "response" and study.responders else None
    low, high = counted if counted else wilson_from_rate(rate, n)
    return StudyInterval(low, high, WILSON)


@dataclass(frozen=True)
class StudyEntry:
    study_id: str
    pooled: bool
    rate: float | None  # published response rate
    n: int | None  # binomial n (None: not a responders / n proportion)
    interval: StudyInterval | None
    reason: str | None  # why not pooled (None when pooled)


@dataclass(frozen=True)
class FamilyEvidence:
    family: str
    benchmark: Benchmark | None  # None when no study is pooled
    funnel: ExactFunnel | None  # None without a single benchmark or without the clinic's n
    n: int | None
    responders: int | None
    position: str | None  # against the 95% limits
    position998: str | None  # against the 99.8% limits
    studies: tuple[StudyEntry, ...]

    @property
    def single(self) -> bool:
        return self.benchmark is not None and self.benchmark.single

    def to_json(self) -> dict[str, Any]:
        """The family's evidence JSON object; estimates are null where there is no single
        benchmark (tau2, I², k, method and the studies' range say why)."""
        b, single = self.benchmark, self.single

        def value(number: float | None) -> float | None:
            return number if single else None

        funnel = self.funnel
        return {
            "family": self.family,
            "p0": value(b.p0) if b else None,
            "p0_ci_low": value(b.p0_ci_low) if b else None,
            "p0_ci_high": value(b.p0_ci_high) if b else None,
            "tau2": b.tau2 if b else None,
            "i2": b.i2 if b else None,
            "k": b.k if b else 0,
            "pi_low": value(b.pi_low) if b else None,
            "pi_high": value(b.pi_high) if b else None,
            "method": b.method if b else None,
            "single_benchmark": single,
            "range_low": b.range_low if b else None,
            "range_high": b.range_high if b else None,
            "no_benchmark_reason": (b.reason if b else "no study in the family can be pooled")
            if not single else None,
            "n": self.n,
            "responders": self.responders,
            "limit95_low": funnel.limits95[0] if funnel else None,
            "limit95_high": funnel.limits95[1] if funnel else None,
            "limit998_low": funnel.limits998[0] if funnel else None,
            "limit998_high": funnel.limits998[1] if funnel else None,
            "position": self.position,
            "position998": self.position998,
            "studies": [
                {"study_id": s.study_id, "pooled": s.pooled, "rate": s.rate, "n": s.n,
                 "ci_low": s.interval.low if s.interval else None,
                 "ci_high": s.interval.high if s.interval else None,
                 "ci_source": s.interval.source if s.interval else None,
                 "reason": s.reason}
                for s in self.studies
            ],
        }


def _entry(study: Study, pooled: bool) -> StudyEntry:
    reason = None if pooled else (study.not_pooled_reason or CONTEXT_BY_FAMILY)
    return StudyEntry(study.study_id, pooled, study.response_rate, study.binomial_n,
                      study_interval(study), reason)


def family_evidence(family: Family, registry: Mapping[str, Study], n: int | None = None,
                    responders: int | None = None, method: str = PAULE_MANDEL) -> FamilyEvidence:
    """Benchmark, funnel limits for the clinic's n and the clinic's position for one family.

    Pooled: the family's `pooled` rows that the registry marks poolable (any other is listed
    with its reason, as are the `context` rows). No position without a single benchmark, without
    n, or without responders (e.g. withheld).
    """
    pooled = [registry[s] for s in family.pooled if registry[s].poolable]
    context = [registry[s] for s in family.pooled if not registry[s].poolable]
    context += [registry[s] for s in family.context]
    benchmark = None
    if pooled:
        rates = [s.response_rate for s in pooled]
        ns = [s.binomial_n for s in pooled]
        assert all(r is not None for r in rates) and all(m is not None for m in ns)
        benchmark = random_effects([float(r) for r in rates if r is not None],
                                   [m for m in ns if m is not None], method)
    funnel = None
    if benchmark is not None and benchmark.single and n:
        funnel = exact_funnel_limits(benchmark.p0, n, benchmark.tau2)
    position = position998 = None
    if funnel is not None and responders is not None:
        position, position998 = funnel.place(responders)
    studies = tuple([_entry(s, True) for s in pooled] + [_entry(s, False) for s in context])
    return FamilyEvidence(family.key, benchmark, funnel, n, responders, position, position998,
                          studies)
