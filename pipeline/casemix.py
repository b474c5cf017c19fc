"""Case-mix adjusted comparison of sites and providers (docs/case-mix.md).

A logistic regression (statsmodels GLM, binomial) fitted on the clinic's own evaluable courses
of a 12-month window gives each course an expected probability of response from its case mix
alone — never from its site or provider. Per site and provider: observed responders O,
expected E = sum of those probabilities, O/E with an exact Poisson 95% interval, and the
adjusted rate O/E x the overall response rate of the fitted courses. Under 50 evaluable
courses nothing is adjusted.

Inputs are polars frames (see `case_mix`); casemix_predictors.py builds the model's rows and
casemix_stats.py holds the interval, funnel and C-statistic arithmetic.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from pipeline.casemix_predictors import (
    CaseMixInputs,
    Predictor,
    case_mix_courses,
    predictors_of,
)
from pipeline.casemix_stats import c_statistic, poisson_oe_interval
from pipeline.instruments import Instrument
from pipeline.months import parse_month

if TYPE_CHECKING:
    from pipeline.reports.payer.criteria import ResistanceRule

MIN_COURSES = 50
MIN_LEVEL_OUTCOMES = 5  # responders and non-responders each a level needs to stand alone
MAX_SE = 5.0  # a log-odds standard error above this means the coefficient is not estimable
ADJUSTED = "adjusted"
TOO_FEW = "not adjusted: too few courses"
NO_VARIATION = "not adjusted: every course had the same outcome"
POOLED = "pooled rare levels"
INTERCEPT = "intercept"


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class UnitComparison:
    """One site or provider: O, E, O/E with its 95% interval, adjusted rate."""

    name: str
    evaluable: int
    observed: int
    expected: float
    oe: float
    oe_ci_low: float
    oe_ci_high: float
    adjusted_rate: float

    def as_json(self, unit: str) -> dict[str, Any]:
        return {unit: self.name, "evaluable": self.evaluable, "observed": self.observed,
                "expected": self.expected, "oe": self.oe, "oe_ci_low": self.oe_ci_low,
                "oe_ci_high": self.oe_ci_high, "adjusted_rate": self.adjusted_rate}


@dataclass(frozen=True)
class Coefficient:
    estimate: float  # log-odds
    se: float


@dataclass(frozen=True)
class ModelSummary:
    n: int
    responders: int
    overall_rate: float
    coefficients: dict[str, Coefficient]
    c_statistic: float | None
    reference_levels: dict[str, str]
    notes: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "n": self.n, "responders": self.responders, "overall_rate": self.overall_rate,
            "coefficients": {name: {"estimate": c.estimate, "se": c.se}
                             for name, c in self.coefficients.items()},
            "c_statistic": self.c_statistic, "reference_levels": dict(self.reference_levels),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, eq=False)
class CaseMix:
    """The adjustment of one window; `courses` holds each fitted course with `expected` (p-hat)."""

    status: str  # ADJUSTED, TOO_FEW or NO_VARIATION
    start: date
    end: date
    n: int
    sites: tuple[UnitComparison, ...] = ()
    providers: tuple[UnitComparison, ...] = ()
    model: ModelSummary | None = None
    courses: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def adjusted(self) -> bool:
        return self.status == ADJUSTED

    def as_json(self) -> dict[str, Any]:
        """The report JSON's `case_mix` object."""
        return {
            "status": self.status, "n": self.n,
            "period": {"start": self.start.isoformat(), "end": self.end.isoformat()},
            "sites": [u.as_json("site") for u in self.sites],
            "providers": [u.as_json("provider") for u in self.providers],
            "model": self.model.as_json() if self.model else None,
        }


# ---------------------------------------------------------------------------------------------
# Rare levels


def _outcomes(stats: dict[str, tuple[int, int]], levels: list[str]) -> tuple[int, int]:
    return (sum(stats[lv][0] for lv in levels), sum(stats[lv][1] for lv in levels))


def collapse_levels(column: str, stats: dict[str, tuple[int, int]], ordered: tuple[str, ...]
                    ) -> tuple[dict[str, str], str | None, list[str]]:
    """Merge levels with fewer than MIN_LEVEL_OUTCOMES responders or non-responders.

    stats: level -> (responders, non-responders). Ordered levels merge with a neighbour (the
    smaller one); other levels pool as "pooled rare levels"; a group still too small joins the
    reference (the lowest ordered group, else the largest group). Returns (level -> group label,
    reference label or None when one group is left, notes).
    """
    def ok(group: list[str]) -> bool:
        return min(_outcomes(stats, group)) >= MIN_LEVEL_OUTCOMES

    def size(group: list[str]) -> int:
        return sum(_outcomes(stats, group))

    notes: list[str] = []
    groups = [[lv] for lv in ordered if lv in stats]
    while len(groups) > 1 and not all(ok(g) for g in groups):
        i = min((k for k, g in enumerate(groups) if not ok(g)), key=lambda k: size(groups[k]))
        neighbours = [k for k in (i - 1, i + 1) if 0 <= k < len(groups)]
        j = min(neighbours, key=lambda k: size(groups[k]))
        low, high = sorted((i, j))
        notes.append(f"{column}: {' / '.join(groups[low])} and {' / '.join(groups[high])} "
                     "combined")
        groups[low:high + 1] = [groups[low] + groups[high]]
    labels = {id(g): " / ".join(g) for g in groups}
    nominal = sorted((lv for lv in stats if lv not in ordered), key=lambda lv: (-size([lv]), lv))
    rare = [lv for lv in nominal if not ok([lv])]
    groups += [[lv] for lv in nominal if lv not in rare]
    labels.update({id(g): g[0] for g in groups if id(g) not in labels})
    if len(rare) > 1:
        groups.append(rare)
        labels[id(rare)] = POOLED
        notes.append(f"{column}: {', '.join(rare)} pooled as '{POOLED}'")
    elif rare:
        groups.append(rare)
        labels[id(rare)] = rare[0]
    passing = [g for g in groups if ok(g)]
    if len(passing) <= 1:
        notes.append(f"{column} left out: the same for every course" if len(stats) == 1 else
                     f"{column} left out: fewer than two levels with {MIN_LEVEL_OUTCOMES} "
                     "responders and non-responders each")
        return {lv: "" for lv in stats}, None, notes
    # ordinal: the lowest band (effects read "compared with the lowest"); nominal: the largest
    # level (max keeps the first of equal sizes)
    reference = passing[0] if ordered and passing[0][0] in ordered else max(passing, key=size)
    mapping: dict[str, str] = {}
    for group in groups:
        target = group if ok(group) else reference
        if target is reference and group is not reference:
            notes.append(f"{column}: {labels[id(group)]} counted with the reference level "
                         f"{labels[id(reference)]}")
        mapping.update({lv: labels[id(target)] for lv in group})
    return mapping, labels[id(reference)], notes


# ---------------------------------------------------------------------------------------------
# Design matrix and fit


@dataclass
class Design:
    names: list[str]  # coefficient names, intercept first
    owners: list[str]  # the predictor each column belongs to
    matrix: NDArray[np.float64]
    references: dict[str, str]
    notes: list[str]


def design(courses: pl.DataFrame, predictors: list[Predictor]) -> Design:
    """Intercept, the continuous predictors as they are, each categorical one as 0/1 columns
    against its reference level after rare levels are merged."""
    exprs: list[pl.Expr] = [pl.lit(1.0).alias(INTERCEPT)]
    owners, references, notes = [INTERCEPT], {}, []
    for p in predictors:
        if p.continuous:
            if courses[p.column].std() in (None, 0.0):
                notes.append(f"{p.column} left out: the same for every course")
                continue
            exprs.append(pl.col(p.column).cast(pl.Float64).alias(p.column))
            owners.append(p.column)
            continue
        rows = courses.group_by(p.column).agg(r=pl.col("responded").sum(), n=pl.len())
        stats = {str(r[p.column]): (int(r["r"]), int(r["n"] - r["r"])) for r in rows.to_dicts()}
        mapping, reference, level_notes = collapse_levels(p.column, stats, p.levels)
        notes += level_notes
        if reference is None:
            continue
        references[p.column] = reference
        mapped = pl.col(p.column).replace_strict(mapping, return_dtype=pl.String)
        ordered = list(dict.fromkeys(mapping[lv] for lv in p.levels if lv in mapping))
        others = sorted(set(mapping.values()) - set(ordered))
        for label in [*ordered, *others]:
            if label != reference:
                exprs.append((mapped == label).cast(pl.Float64).alias(f"{p.column}[{label}]"))
                owners.append(p.column)
    frame = courses.with_columns(exprs).select(e.meta.output_name() for e in exprs)
    return Design(frame.columns, owners, frame.to_numpy().astype(np.float64), references, notes)


def drop_dependent_columns(d: Design) -> Design:
    """Leave out a column that is a linear combination of the columns before it (e.g. a
    protocol only ever scored on one instrument)."""
    kept: list[int] = []
    notes = list(d.notes)
    for k in range(d.matrix.shape[1]):
        if np.linalg.matrix_rank(d.matrix[:, [*kept, k]]) == len(kept) + 1:
            kept.append(k)
        else:
            notes.append(f"{d.names[k]} left out: determined by the predictors before it")
    return Design([d.names[k] for k in kept], [d.owners[k] for k in kept], d.matrix[:, kept],
                  d.references, notes)


def fit(y: NDArray[np.float64], d: Design) -> tuple[Any, Design]:
    """GLM binomial fit; while it separates (no convergence, a separation warning or a standard
    error above MAX_SE) the predictor owning the largest of the coefficients with such a standard
    error (any but the intercept when none has one) is left out, and the model refitted."""
    # statsmodels (with pandas, ~1 s) only when a model is fitted, and only the GLM modules
    # (`statsmodels.api` would import every model and the datasets besides)
    from statsmodels.genmod.families import Binomial
    from statsmodels.genmod.generalized_linear_model import GLM
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    d = drop_dependent_columns(d)
    while True:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = GLM(y, d.matrix, family=Binomial()).fit()
        se = np.asarray(result.bse, dtype=float)
        separated = any(issubclass(w.category, (PerfectSeparationWarning, ConvergenceWarning))
                        for w in caught)
        bad_se = ~np.isfinite(se) | (se > MAX_SE)
        bad_se[0] = False
        if len(d.names) == 1 or not (separated or bad_se.any() or not result.converged):
            return result, d
        # separation drives its coefficient towards infinity (and every SE up with it)
        size = np.abs(np.nan_to_num(np.asarray(result.params, dtype=float), posinf=1e300))
        suspects = bad_se if bad_se.any() else np.arange(len(se)) > 0
        worst = int(np.argmax(np.where(suspects, size, -1.0)))
        owner = d.owners[worst]
        keep = [k for k, o in enumerate(d.owners) if o != owner]
        d = Design([d.names[k] for k in keep], [d.owners[k] for k in keep], d.matrix[:, keep],
                   {k: v for k, v in d.references.items() if k != owner},
                   [*d.notes, f"{owner} left out: not estimable (separation)"])


# ---------------------------------------------------------------------------------------------
# Units and the whole adjustment


def compare_units(fitted: pl.DataFrame, unit: str, overall_rate: float
                  ) -> tuple[UnitComparison, ...]:
    """O, E, O/E (exact Poisson 95% interval) and adjusted rate per value of `unit`."""
    table = fitted.group_by(unit).agg(
        evaluable=pl.len(), observed=pl.col("responded").sum(), expected=pl.col("expected")
    ).sort(unit)
    observed = table["observed"].to_numpy().astype(float)
    # E per unit as an exactly rounded sum (math.fsum, one per unit, not per course): polars'
    # float sum over a group adds partial sums from several threads in no fixed order, and
    # the last digits of E then changed from run to run at about 10,000 courses
    expected = np.array([math.fsum(values) for values in table["expected"].to_list()])
    low, high = poisson_oe_interval(observed, expected)
    oe = observed / expected
    return tuple(
        UnitComparison(str(name), int(n), int(o), float(e), float(r), float(lo), float(hi),
                       float(r * overall_rate))
        for name, n, o, e, r, lo, hi in zip(table[unit], table["evaluable"], table["observed"],
                                            expected, oe, low, high, strict=True)
    )


def adjust(courses: pl.DataFrame, start: date, end: date) -> CaseMix:
    """Fit the model on a case_mix_courses frame and compare sites and providers."""
    n = courses.height
    if n < MIN_COURSES:
        return CaseMix(TOO_FEW, start, end, n)
    y = courses["responded"].cast(pl.Float64).to_numpy()
    responders = int(y.sum())
    if responders in (0, n):
        return CaseMix(NO_VARIATION, start, end, n)
    result, d = fit(y, design(courses, predictors_of(courses)))
    expected = np.asarray(result.fittedvalues, dtype=float)
    fitted = courses.with_columns(expected=pl.Series(expected))
    overall = responders / n
    model = ModelSummary(
        n=n, responders=responders, overall_rate=overall,
        coefficients={name: Coefficient(float(b), float(s))
                      for name, b, s in zip(d.names, result.params, result.bse, strict=True)},
        c_statistic=c_statistic(y, expected),
        reference_levels=d.references, notes=tuple(d.notes),
    )
    return CaseMix(ADJUSTED, start, end, n, compare_units(fitted, "site", overall),
                   compare_units(fitted, "provider", overall), model, fitted)


def rolling_window(month: str) -> tuple[date, date]:
    """First and last day of the 12 months ending with `month` (YYYY-MM; pipeline/months.py)."""
    last = parse_month(month)
    return last.shift(-11).first, last.last


def case_mix(
    course_outcomes: pl.DataFrame,
    units: pl.DataFrame,
    inputs: CaseMixInputs,
    instruments: dict[str, Instrument],
    month: str,
    resistance: ResistanceRule,
    preferred_instrument: str | None = None,
) -> CaseMix:
    """The case-mix comparison for the 12 months ending with `month` (YYYY-MM).

    course_outcomes: course rows as of the month's last day (compute_outcomes(...).course_outcomes,
    or those the monthly report reads, reports/monthly/data.py), the 12 months among them;
    units: patient_id, course_id, site, provider of those courses (infusion 1's,
    sql/reports/monthly/course_units.sql);
    inputs: read_case_mix_inputs (patients, treatment_history); instruments: the registry in
    force; resistance: payer_rules(config).resistance (what an adequate trial is);
    preferred_instrument: the report's headline instrument.
    """
    start, end = rolling_window(month)
    courses = case_mix_courses(course_outcomes, units, inputs, instruments, start, end,
                               resistance, preferred_instrument)
    return adjust(courses, start, end)
