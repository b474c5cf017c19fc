"""Synthetic clinics for the case-mix tests, written into real DuckDB files.

Each clinic is generated with seeded numpy from a known truth: the probability that a course
responds is logistic in the baseline severity share (and, where stated, in the prior adequate
trials and a provider's odds ratio); the endpoint score is then drawn so that the course is a
responder (endpoint <= 50% of baseline) exactly when that Bernoulli draw says so. Nothing is
taken from the code under test.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from pipeline.config import load_config
from pipeline.db import connect

MONTH = "2026-03"
AS_OF = date(2026, 3, 31)
INFUSION_DAYS = [0, 2, 4, 7, 9, 11]  # six infusions: an IND6 course is completed
FOLLOW_UP_DAY = 18  # last infusion + 7: inside the 14-day endpoint window
# Truth of every clinic: logit P(response) = 3.0 - 5.0 x (baseline / 27) [+ trial, provider terms]
TRUE_INTERCEPT, TRUE_SEVERITY = 3.0, -5.0


# ---------------------------------------------------------------------------------------------
# Synthetic clinics


def draw_courses(rng: np.random.Generator, n: int, *, site: np.ndarray, provider: np.ndarray,
                 baseline: np.ndarray, extra_logit: np.ndarray | float = 0.0,
                 trials: np.ndarray | None = None, first: int = 0) -> pl.DataFrame:
    """One course per patient, infusion 1 between 2025-03-07 and 2026-02-28, so every outcome
    date (infusion 1 + 25 days) falls in the 12 months to March 2026."""
    share = baseline / 27
    logit = TRUE_INTERCEPT + TRUE_SEVERITY * share + extra_logit
    responded = rng.random(n) < 1 / (1 + np.exp(-logit))
    half = np.floor(baseline / 2).astype(int)
    endpoint = np.where(responded, rng.integers(0, half + 1), rng.integers(half + 1, baseline + 1))
    start = [date(2025, 3, 7) + timedelta(days=int(d)) for d in rng.integers(0, 359, n)]
    age = rng.integers(19, 80, n)
    return pl.DataFrame({
        "patient_id": [f"P{first + i:04d}" for i in range(n)],
        "site": site, "provider": provider,
        "protocol_id": np.where(rng.random(n) < 0.6, "IND6", "KET6"),
        "baseline": baseline.astype(float), "endpoint": endpoint.astype(float),
        "responded": responded, "start": start,
        "birth_date": [s - timedelta(days=int(a * 365.25 + 40)) for s, a in zip(start, age, strict=True)],
        "sex": np.where(rng.random(n) < 0.6, "F", "M"),
        "trials": trials if trials is not None else np.zeros(n, dtype=int),
    })


def history_rows(courses: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """`trials` adequate failed SSRI trials before infusion 1, plus an augmentation (never
    counts) for some; 15% of patients have no history rows at all ("no record")."""
    keep = courses.filter(pl.Series(rng.random(courses.height) >= 0.15))
    trials = keep.select("patient_id", "start", "trials").with_columns(
        j=pl.int_ranges(0, pl.col("trials"))).explode("j").drop_nulls("j")
    counted = trials.select(
        "patient_id", medication=pl.format("drug{}", "j"), drug_class=pl.lit("SSRI"),
        start_date=pl.col("start") - pl.duration(days=400) + pl.duration(days=60) * pl.col("j"),
        improvement_pct=pl.lit(10.0))
    augment = keep.select("patient_id", medication=pl.lit("aripiprazole"),
                          drug_class=pl.lit("augmentation"),
                          start_date=pl.col("start") - pl.duration(days=100),
                          improvement_pct=pl.lit(5.0))
    return pl.concat([counted, augment]).with_columns(
        end_date=pl.col("start_date") + pl.duration(days=56), adequate_dose=pl.lit(True),
        episode=pl.lit("current"), row_hash=pl.lit(0, pl.UInt64), load_id=pl.lit(0, pl.Int32))


def write_clinic(db_path: Path, courses: pl.DataFrame, history: pl.DataFrame | None = None,
                 infusions: int = 6, with_follow_up: bool = True) -> None:
    """Canonical tables as ingest leaves them: protocols, patients, sessions, assessments."""
    con = connect(db_path, load_config(None))
    at = pl.col("start").cast(pl.Datetime("us"))
    protocols = pl.DataFrame({"protocol_id": ["IND6", "KET6"], "name": ["IND6", "KET6"],
                              "planned_infusions": [6, 6], "planned_days": [14, 14]})
    patients = courses.select("patient_id", "birth_date", "sex", source=pl.lit("patients"))
    sessions = courses.join(pl.DataFrame({"k": INFUSION_DAYS[:infusions]}), how="cross").select(
        "patient_id", "protocol_id", "site", "provider",
        session_id=pl.format("S{}-{}", "patient_id", "k"),
        started_at=at + pl.duration(days=pl.col("k"), hours=9),
        started_date_only=pl.lit(False), status=pl.lit("completed"))
    scores = [courses.select("patient_id", total_score="baseline", timing=pl.lit("pre"),
                             administered_at=at + pl.duration(hours=8, minutes=30))]
    if with_follow_up:
        scores.append(courses.select("patient_id", total_score="endpoint",
                                     timing=pl.lit("followup"),
                                     administered_at=at + pl.duration(days=FOLLOW_UP_DAY,
                                                                      hours=10)))
    assessments = pl.concat(scores).with_columns(
        instrument=pl.lit("PHQ-9"), date_only=pl.lit(False),
        assessment_id=pl.format("A{}-{}", "patient_id", "timing"))
    tables = {"protocols": protocols, "patients": patients, "sessions": sessions,
              "assessments": assessments}
    if history is not None:
        tables["treatment_history"] = history
    for table, frame in tables.items():
        frame = frame.with_columns(row_hash=pl.lit(0, pl.UInt64), load_id=pl.lit(0, pl.Int32))
        con.register("incoming", frame)
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
        con.unregister("incoming")
    con.close()


def severe_site_clinic(path: Path, extra: pl.DataFrame | None = None) -> pl.DataFrame:
    """Site A: baselines 19-27 (severe), site B: 10-18 (mild); no site effect in the truth.
    Writes the clinic (and the `extra` courses of draw_courses, if any) to `path`; returns its
    courses (with the truth column `responded`)."""
    rng = np.random.default_rng(20261202)
    n = 300
    a = draw_courses(rng, n, site=np.full(n, "A"), provider=rng.choice(["A1", "A2"], n),
                     baseline=rng.integers(19, 28, n))
    b = draw_courses(rng, n, site=np.full(n, "B"), provider=rng.choice(["B1", "B2"], n),
                     baseline=rng.integers(10, 19, n), first=n)
    courses = pl.concat([a, b] if extra is None else [a, b, extra])
    write_clinic(path, courses)
    return courses


def weak_provider_clinic(path: Path) -> pl.DataFrame:
    """Providers X, Y, Z alike in case mix; Z's patients respond at a quarter of the odds.
    Each prior adequate trial lowers the log-odds by 0.4 (truth), and the history is loaded."""
    rng = np.random.default_rng(7)
    n = 480
    provider = np.repeat(["X", "Y", "Z"], n // 3)
    trials = rng.integers(0, 5, n)
    extra = np.where(provider == "Z", math.log(0.25), 0.0) - 0.4 * np.minimum(trials, 3)
    courses = draw_courses(rng, n, site=np.full(n, "Main"), provider=provider,
                           baseline=rng.integers(10, 28, n), extra_logit=extra + 0.8,
                           trials=trials)
    write_clinic(path, courses, history_rows(courses, rng))
    return courses
