"""The case-mix model's data (docs/case-mix.md): one row per evaluable course with its outcome,
its site and provider, and the predictors, built from the outcome engine's frames with polars.

Rows: courses whose reporting month (`course_outcome_date`) falls in the window, not in
progress, evaluable; each course once, on its first instrument in the preference order
(the caller's headline instrument first, then the instrument with most evaluable courses).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from pipeline.errors import InputError
from pipeline.instruments import Instrument
from pipeline.paths import sql

if TYPE_CHECKING:  # a rule object only: no import of the reports layer at run time
    from pipeline.reports.payer.criteria import ResistanceRule

COURSE_KEY = ["patient_id", "course_id"]
NOT_RECORDED = "not recorded"  # a course whose first infusion names no site/provider
UNKNOWN = "unknown"
NO_RECORD = "no record"  # the patient has no treatment_history rows at all
AGE_BANDS = ("< 25", "25–44", "45–64", "≥ 65")
TRIAL_LEVELS = ("0", "1", "2", "≥ 3")


@dataclass(frozen=True)
class Predictor:
    """One predictor: `levels` orders an ordinal one (other values are nominal extra levels)."""

    column: str
    continuous: bool = False
    levels: tuple[str, ...] = ()


SEVERITY = Predictor("baseline_severity_share", continuous=True)
INSTRUMENT = Predictor("instrument")
AGE_BAND = Predictor("age_band", levels=AGE_BANDS)
SEX = Predictor("sex")
PROTOCOL = Predictor("protocol")
PRIOR_TRIALS = Predictor("prior_adequate_trials", levels=TRIAL_LEVELS)


@dataclass(frozen=True)
class CaseMixInputs:
    """What the model needs beyond the outcome frames, read once from the database."""

    patients: pl.DataFrame  # patient_id, birth_date, sex
    treatment_history: pl.DataFrame  # patient_id, drug_class, start_date, end_date, ...


def read_case_mix_inputs(con: duckdb.DuckDBPyConnection, as_of: date) -> CaseMixInputs:
    """sql/casemix/*.sql as of one day (trials started after it are not yet known)."""
    return CaseMixInputs(
        patients=con.sql(sql("casemix/patients.sql")).pl(),
        treatment_history=con.sql(sql("casemix/treatment_history.sql"),
                                  params={"as_of": as_of}).pl(),
    )


def reporting_window(course_outcomes: pl.DataFrame, start: date, end: date) -> pl.DataFrame:
    """Evaluable, not-in-progress course rows whose outcome date falls in [start, end] (the rule
    the monthly report's rates use; docs/case-mix.md)."""
    return course_outcomes.filter(
        (pl.col("status") != "in_progress")
        & pl.col("course_outcome_date").is_between(start, end)
        & pl.col("evaluable")
    )


def one_row_per_course(rows: pl.DataFrame, preferred: str | None) -> pl.DataFrame:
    """Each course once: on `preferred` when evaluable there, else on the instrument with most
    evaluable courses in `rows` (ties: by name)."""
    counts = rows.group_by("instrument").agg(instrument_courses=pl.len())
    return (
        rows.join(counts, on="instrument", how="left")
        .with_columns(not_preferred=pl.col("instrument") != pl.lit(preferred or ""))
        .sort([*COURSE_KEY, "not_preferred", "instrument_courses", "instrument"],
              descending=[False, False, False, True, False])
        .unique(subset=COURSE_KEY, keep="first", maintain_order=True)
        .drop("not_preferred", "instrument_courses")
    )


def severity_share(rows: pl.DataFrame, instruments: dict[str, Instrument]) -> pl.Expr:
    """baseline_score / the registry's total_max; an instrument missing there is an input error."""
    missing = sorted(set(rows["instrument"].unique().to_list()) - set(instruments))
    if missing:
        raise InputError(f"instrument {missing[0]!r} is not in the instrument registry, so its "
                         f"maximum total is unknown; add [instruments.\"{missing[0]}\"] with "
                         "total_max to the config")
    maxima = {name: float(instruments[name].total_max) for name in rows["instrument"].unique()}
    if not maxima:  # no course in the window: an empty mapping would not be typed
        return pl.lit(None, pl.Float64)
    return pl.col("baseline_score") / pl.col("instrument").replace_strict(
        maxima, return_dtype=pl.Float64)


def age_band(birth: pl.Expr, on: pl.Expr) -> pl.Expr:
    """Completed years on the day of infusion 1, banded; no or a later birth date -> unknown."""
    before_birthday = (on.dt.month() * 100 + on.dt.day()) < (birth.dt.month() * 100 + birth.dt.day())
    age = on.dt.year().cast(pl.Int32) - birth.dt.year().cast(pl.Int32) - before_birthday.cast(
        pl.Int32)
    return (
        pl.when(age.is_null() | (age < 0)).then(pl.lit(UNKNOWN))
        .when(age < 25).then(pl.lit(AGE_BANDS[0]))
        .when(age < 45).then(pl.lit(AGE_BANDS[1]))
        .when(age < 65).then(pl.lit(AGE_BANDS[2]))
        .otherwise(pl.lit(AGE_BANDS[3]))
    )


def sex_level(sex: pl.Expr) -> pl.Expr:
    """f/female -> female, m/male -> male, missing -> unknown, anything else -> other."""
    value = sex.str.strip_chars().str.to_lowercase()
    return (
        pl.when(value.is_in(["f", "female"])).then(pl.lit("female"))
        .when(value.is_in(["m", "male"])).then(pl.lit("male"))
        .when(value.is_null() | (value == "")).then(pl.lit(UNKNOWN))
        .otherwise(pl.lit("other"))
    )


def counts_as_adequate_trial(rule: ResistanceRule) -> pl.Expr:
    """The payer packet's "counts" verdict (reports/payer/criteria.py classify_trial) as one expression:
    an antidepressant (class not excluded) started before infusion 1, in a listed episode, at an
    adequate dose (when required), lasting >= min_weeks, improving <= max_improvement_pct.
    A row lacking any of these values does not count (the payer packet calls it incomplete)."""
    drug_class = pl.col("drug_class").fill_null("").str.to_lowercase()
    weeks = (pl.col("end_date") - pl.col("start_date")).dt.total_days() / 7
    dose = pl.col("adequate_dose") if rule.require_adequate_dose else pl.lit(True)
    return (
        ~((drug_class != "") & drug_class.is_in(list(rule.excluded_classes)))
        & (pl.col("start_date") < pl.col("course_start"))
        & pl.col("episode").is_in(list(rule.episodes))
        & dose
        & (weeks >= rule.min_weeks)
        & (pl.col("improvement_pct") <= rule.max_improvement_pct)
    ).fill_null(False)


def prior_trials(courses: pl.DataFrame, history: pl.DataFrame,
                 rule: ResistanceRule) -> pl.DataFrame:
    """Per course: prior adequate trials banded 0 / 1 / 2 / ≥ 3, or "no record" for a patient
    without any treatment_history row."""
    counted = (
        courses.select(*COURSE_KEY, "course_start")
        .join(history, on="patient_id", how="inner")
        .group_by(COURSE_KEY)
        .agg(trials=counts_as_adequate_trial(rule).sum())
    )
    n = pl.col("trials")
    band = (
        pl.when(n.is_null()).then(pl.lit(NO_RECORD))
        .when(n >= 3).then(pl.lit(TRIAL_LEVELS[3]))
        .otherwise(n.cast(pl.String))
    )
    return courses.select(COURSE_KEY).join(counted, on=COURSE_KEY, how="left").select(
        *COURSE_KEY, prior_adequate_trials=band)


def case_mix_courses(
    course_outcomes: pl.DataFrame,
    units: pl.DataFrame,
    inputs: CaseMixInputs,
    instruments: dict[str, Instrument],
    start: date,
    end: date,
    resistance: ResistanceRule,
    preferred_instrument: str | None = None,
) -> pl.DataFrame:
    """One row per evaluable course of the window: `responded`, `site`, `provider` and the
    predictor columns (prior_adequate_trials only when treatment_history has rows).

    units: patient_id, course_id, site, provider — the monthly report's assignment
    (sql/reports/monthly/course_units.sql: the site and provider of infusion 1).
    """
    rows = one_row_per_course(reporting_window(course_outcomes, start, end), preferred_instrument)
    patients = inputs.patients.select("patient_id", "birth_date", "sex").unique(
        subset="patient_id", keep="first", maintain_order=True)
    frame = (
        rows.join(units.select(*COURSE_KEY, "site", "provider"), on=COURSE_KEY, how="left")
        .join(patients, on="patient_id", how="left")
        .with_columns(
            pl.col("site").fill_null(NOT_RECORDED),
            pl.col("provider").fill_null(NOT_RECORDED),
            responded=pl.col("category") == "response",
            baseline_severity_share=severity_share(rows, instruments),
            age_band=age_band(pl.col("birth_date"), pl.col("course_start")),
            sex=sex_level(pl.col("sex")),
            protocol=pl.col("protocol_id").fill_null(UNKNOWN),
        )
    )
    columns = [*COURSE_KEY, "site", "provider", "responded", SEVERITY.column, INSTRUMENT.column,
               AGE_BAND.column, SEX.column, PROTOCOL.column]
    if inputs.treatment_history.height:
        frame = frame.join(prior_trials(frame, inputs.treatment_history, resistance),
                           on=COURSE_KEY, how="left")
        columns.append(PRIOR_TRIALS.column)
    return frame.select(columns).sort(COURSE_KEY)


def predictors_of(courses: pl.DataFrame) -> list[Predictor]:
    """The predictors present in a case_mix_courses frame, in the model's order."""
    every = [SEVERITY, INSTRUMENT, AGE_BAND, SEX, PROTOCOL, PRIOR_TRIALS]
    return [p for p in every if p.column in courses.columns]
