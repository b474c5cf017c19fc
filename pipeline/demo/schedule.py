"""Patients, treatment courses and infusion sessions of the synthetic clinic.

Courses are generated in three rounds, each vectorised over all patients: a first
induction for everyone; maintenance (MAINT) for a share of induction responders, starting
1-4 weeks after the induction; a second induction for some (mostly relapsers), more than
30 days after the previous course, so that the course rule (docs/definitions.md "Course") splits it off.
Sessions fall on weekdays between 08:00 and 15:45.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from pipeline.demo import trajectory as tj
from pipeline.demo.catalogue import (
    ABORTED,
    CANCELLED,
    COMPLETED,
    DIAGNOSIS_P,
    IND6,
    INDUCTION_P,
    MAINT,
    MINUTES,
    PAYER_P,
    PLANNED,
    PROVIDER_COUNT,
    PROVIDER_FIRST,
    REPEAT_INDUCTION_P,
    SINGLE,
    SITE_P,
    TW4,
)

Table = dict[str, np.ndarray]

HISTORY_DAYS = 548  # first infusions spread over the 18 months before the end date
FIRST_INDUCTION, MAINTENANCE, REPEAT_INDUCTION = 1, 2, 3
MAINTENANCE_P = 0.5  # completed responders who go on to maintenance
RESCHEDULE_P = 0.035  # a booking cancelled and the infusion given a little later
TRAILING_CANCEL_P = 0.25  # a drop-out whose last booking is a cancellation


def concat(tables: list[Table]) -> Table:
    return {key: np.concatenate([t[key] for t in tables]) for key in tables[0]}


def take(table: Table, rows: np.ndarray) -> Table:
    return {key: values[rows] for key, values in table.items()}


def make_patients(rng: np.random.Generator, n: int, end: dt.date) -> Table:
    """One row per patient, numbered in order of their first infusion day."""
    end_day = np.datetime64(end, "D")
    first = np.busday_offset(end_day - rng.integers(0, HISTORY_DAYS, n), 0, roll="forward")
    first = np.sort(np.minimum(first, np.busday_offset(end_day, 0, roll="backward")))
    female = rng.random(n) < 0.62
    age_days = (np.clip(rng.normal(44, 13, n), 18.5, 79.5) * 365.25).astype(np.int64)
    site = rng.choice(len(SITE_P), n, p=SITE_P)
    return {
        "first_day": first,
        "birth_date": first - age_days,
        "female": female,
        "diagnosis": rng.choice(len(DIAGNOSIS_P), n, p=DIAGNOSIS_P),
        "payer": rng.choice(len(PAYER_P), n, p=PAYER_P),
        "member_number": rng.integers(100_000_000, 1_000_000_000, n),
        "site": site,
        "provider": PROVIDER_FIRST[site] + rng.integers(0, PROVIDER_COUNT[site]),
        "weight_kg": np.clip(np.where(female, rng.normal(77, 17, n), rng.normal(90, 16, n)),
                             45, 170),
        "has_gad": rng.random(n) < 0.8,
        # MADRS is clinician-rated: mostly done at one site
        "has_madrs": rng.random(n) < np.where(site == 2, 0.7, 0.12),
    }


def _course_table(rng: np.random.Generator, patient: np.ndarray, protocol: np.ndarray,
                  first_day: np.ndarray, rank: int, baseline: np.ndarray,
                  klass: np.ndarray, curve: Table) -> Table:
    n = len(patient)
    k = (tj.administered_count(rng, protocol, klass) if rank != MAINTENANCE
         else np.where(rng.random(n) < 0.35, rng.integers(1, 6, n), PLANNED[MAINT]))
    return {
        "patient": patient,
        "protocol": protocol,
        "rank": np.full(n, rank),
        "first_day": first_day,
        "k": k,
        "klass": klass,
        "baseline": baseline,
        "gad_baseline": np.clip(rng.normal(12.5, 3.5, n), 4, 21),
        "madrs_baseline": np.clip(baseline * 1.5 + rng.normal(3, 3, n), 12, 60),
        **curve,
    }


def _gaps(rng: np.random.Generator, protocol: np.ndarray) -> np.ndarray:
    """Gap before an infusion: business days (inductions) or calendar days (maintenance)."""
    n = len(protocol)
    ind6 = np.where(rng.random(n) < 0.8, 2, 1) + 3 * (rng.random(n) < 0.03)
    return np.select([protocol == IND6, protocol == TW4, protocol == MAINT],
                     [ind6, rng.integers(2, 4, n), rng.integers(21, 27, n)], default=1)


def _shift(protocol: np.ndarray, day: np.ndarray, gap: np.ndarray) -> np.ndarray:
    return np.where(protocol == MAINT,
                    np.busday_offset(day + np.where(protocol == MAINT, gap, 0), 0,
                                     roll="forward"),
                    np.busday_offset(day, np.where(protocol == MAINT, 0, gap), roll="forward"))


def expand_sessions(rng: np.random.Generator, courses: Table, offset: int) -> tuple[Table,
                                                                                     np.ndarray]:
    """Session rows (infusions and cancelled bookings) of the courses, and each course's
    last infusion day. `offset` is the index of the first course in the global table."""
    n, k, protocol = len(courses["k"]), courses["k"], courses["protocol"]
    course = np.repeat(np.arange(n), k)
    head = np.cumsum(k) - k
    number = np.arange(len(course)) - head[course] + 1
    proto = protocol[course]
    gap = np.where(number == 1, 0, _gaps(rng, proto))
    cumulative = np.cumsum(gap)
    offsets = cumulative - cumulative[head[course]]
    day = _shift(proto, courses["first_day"][course], offsets)
    # maintenance steps from the previous (weekday-rolled) infusion: always 21-28 days apart
    maintenance = np.flatnonzero((proto == MAINT) & (number > 1))
    for step in range(2, int(number.max(initial=1)) + 1):
        rows = maintenance[number[maintenance] == step]
        day[rows] = np.busday_offset(day[rows - 1] + gap[rows], 0, roll="forward")
    last_day = day[head + k - 1]

    # a cancelled booking shortly before some infusions (never on an infusion day)
    back = np.where(proto == MAINT, rng.integers(1, 4, len(day)), 0)
    cancel_day = np.where(proto == MAINT,
                          np.busday_offset(day - back, 0, roll="backward"),
                          np.busday_offset(day, np.where(proto == MAINT, 0, -1)))
    previous = np.concatenate([day[:1], day[:-1]])
    rescheduled = (rng.random(len(day)) < RESCHEDULE_P) & ((number == 1) | (cancel_day > previous))
    # a drop-out's next booking, cancelled
    trailing = (k < PLANNED[protocol]) & (rng.random(n) < TRAILING_CANCEL_P)
    trailing_day = _shift(protocol, last_day, _gaps(rng, protocol))[trailing]

    hypertensive = rng.random(len(day)) < 0.025
    aborted = rng.random(len(day)) < 0.011 + 0.2 * hypertensive
    cancelled_course = np.concatenate([course[rescheduled], np.flatnonzero(trailing)])
    rows = {
        "course": np.concatenate([course, cancelled_course]) + offset,
        "number": np.concatenate([number, number[rescheduled], k[trailing] + 1]),
        "day": np.concatenate([day, cancel_day[rescheduled], trailing_day]),
        "status": np.concatenate([np.where(aborted, ABORTED, COMPLETED),
                                  np.full(len(cancelled_course), CANCELLED)]),
        "hypertensive": np.concatenate([hypertensive, np.zeros(len(cancelled_course), bool)]),
    }
    rows["minute"] = 480 + 15 * rng.integers(0, 32, len(rows["day"]))
    return rows, last_day


def plan(rng: np.random.Generator, patients: Table) -> tuple[Table, Table]:
    """All courses and session rows, before anything after the end date is cut off."""
    n = len(patients["first_day"])
    # round 1: everyone's first induction
    protocol = rng.choice(3, n, p=INDUCTION_P)
    klass = tj.draw_classes(rng, protocol)
    baseline = np.clip(rng.normal(18.5, 3.6, n), 10, 27)
    first = _course_table(rng, np.arange(n), protocol, patients["first_day"], FIRST_INDUCTION,
                          baseline, klass, tj.induction_curves(rng, klass, protocol))
    first_sessions, first["last_day"] = expand_sessions(rng, first, 0)
    level_end = tj.level(first, np.arange(n), first["k"].astype(float))

    # round 2: maintenance for completed responders (and a few partial responders)
    completed = first["k"] >= PLANNED[first["protocol"]]
    eligible = completed * np.where(np.isin(first["klass"], tj.RESPONDERS) & (level_end <= 0.5),
                                    MAINTENANCE_P, np.where(first["klass"] == tj.PARTIAL,
                                                            0.15, 0.0))
    maintained = np.flatnonzero(rng.random(n) < eligible)
    first["relapse_day"][maintained] = np.inf
    start = np.busday_offset(first["last_day"][maintained] + rng.integers(7, 29, len(maintained)),
                             0, roll="forward")
    maint = _course_table(rng, maintained, np.full(len(maintained), MAINT), start, MAINTENANCE,
                          first["baseline"][maintained],
                          np.full(len(maintained), tj.MAINTAINED),
                          tj.maintenance_curves(rng, level_end[maintained]))
    maint_sessions, maint["last_day"] = expand_sessions(rng, maint, n)

    # round 3: a second induction, mostly for relapsers
    latest_end = first["last_day"].copy()
    latest_end[maintained] = maint["last_day"]
    relapsed = np.isfinite(first["relapse_day"])
    repeat_p = np.select([relapsed, np.isin(first["klass"], (tj.PARTIAL, tj.NON))],
                         [0.4, 0.10], default=0.06)
    repeat_p[first["protocol"] == SINGLE] *= 1.5
    again = np.flatnonzero(rng.random(n) < repeat_p)
    start = np.busday_offset(latest_end[again] + rng.integers(35, 121, len(again)), 0,
                             roll="forward")
    protocol = np.where(rng.random(len(again)) < REPEAT_INDUCTION_P[0], IND6, TW4)
    klass = tj.draw_classes(rng, protocol)
    baseline = np.clip(first["baseline"][again] * rng.uniform(0.85, 1.1, len(again)), 10, 27)
    repeat = _course_table(rng, again, protocol, start, REPEAT_INDUCTION, baseline, klass,
                           tj.induction_curves(rng, klass, protocol))
    repeat_sessions, repeat["last_day"] = expand_sessions(rng, repeat, n + len(maintained))

    courses = concat([first, maint, repeat])
    sessions = concat([first_sessions, maint_sessions, repeat_sessions])
    # the next course's first day bounds each course's follow-up scores
    order = np.lexsort((courses["first_day"], courses["patient"]))
    following = np.full(len(order), np.datetime64("9999-12-31"), dtype="datetime64[D]")
    same = courses["patient"][order[1:]] == courses["patient"][order[:-1]]
    following[order[:-1][same]] = courses["first_day"][order[1:][same]]
    courses["next_first_day"] = following
    return courses, sessions


def clinical_fields(rng: np.random.Generator, sessions: Table, courses: Table,
                    patients: Table) -> Table:
    """Dose, weight, duration, vital signs and adverse events of administered sessions."""
    n = len(sessions["day"])
    course = sessions["course"]
    protocol = courses["protocol"][course]
    patient = courses["patient"][course]
    status = sessions["status"]
    u = rng.random((12, n))
    # some inductions titrate up from infusion 3; maintenance keeps one dose per course
    titrate = (rng.random(len(courses["k"])) < 0.3)[course]
    course_dose = rng.choice([0.5, 0.6, 0.75], len(courses["k"]), p=[0.6, 0.25, 0.15])
    stepped = np.where(u[0] < 0.6, 0.6, 0.75)
    dose = np.select(
        [protocol == MAINT, (protocol != SINGLE) & titrate & (sessions["number"] >= 3)],
        [course_dose[course], stepped], default=0.5)
    weight = np.rint((patients["weight_kg"][patient] + rng.normal(0, 0.7, n)) * 10) / 10
    minutes = MINUTES[protocol] + np.rint(
        rng.normal(0, np.where(protocol == TW4, 6, 3), n)).astype(int)
    minutes = np.where(status == ABORTED, rng.integers(8, 31, n), minutes)
    hyper = sessions["hypertensive"]
    systolic = np.clip(rng.normal(137, 13, n) + 42 * hyper, 96, 228).astype(int)
    diastolic = np.clip(rng.normal(83, 8, n) + 26 * hyper, 52, 132).astype(int)
    high_bp = (systolic >= 180) | (diastolic >= 110)
    aborted = status == ABORTED
    events = np.stack([
        u[1] < 0.07 + 0.25 * aborted,                  # nausea
        u[2] < 0.10 + 0.30 * aborted,                  # dissociation
        (high_bp & (u[3] < 0.8)) | (u[3] < 0.004),     # hypertension
        u[4] < 0.05,                                   # dizziness
        u[5] < 0.04,                                   # headache
    ], axis=1)
    return {
        "dose_mg_per_kg": dose,
        "weight_kg": weight,
        "dose_mg": np.rint(dose * weight * 10) / 10,
        "duration_minutes": minutes,
        "bp_systolic_max": systolic,
        "bp_diastolic_max": diastolic,
        "events": events,
        "provider": np.where(u[6] < 0.8, patients["provider"][patient],
                             PROVIDER_FIRST[patients["site"][patient]]
                             + (u[7] * PROVIDER_COUNT[patients["site"][patient]]).astype(int)),
    }
