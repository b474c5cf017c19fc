"""Mood-scale scores of the synthetic clinic: PHQ-9, GAD-7 and MADRS.

PHQ-9 is taken at intake (within 14 days before infusion 1, for most first courses), `pre`
10-30 minutes before most infusions, `post` the same day after some, and as follow-ups
about 7 and 14 days after a course's last infusion (some later, at 4-8 and 9-14 weeks,
where relapse shows). GAD-7 follows the same visits for most patients; MADRS (clinician-rated,
total only) is taken at infusion 1 and about a week after the course for some.
"""

from __future__ import annotations

import numpy as np

from pipeline.demo import trajectory as tj
from pipeline.demo.catalogue import (
    CANCELLED,
    COMPLETED,
    FOLLOWUP,
    GAD7,
    ITEM_COLUMNS,
    MADRS,
    PHQ9,
    PLANNED,
    POST,
    PRE,
)
from pipeline.demo.schedule import FIRST_INDUCTION, MAINTENANCE, Table, concat

PHQ9_ITEM_WEIGHTS = (1.2, 1.3, 1.1, 1.3, 0.9, 1.0, 0.9, 0.6, 0.12)  # item 9: self-harm
GAD7_ITEM_WEIGHTS = (1.2, 1.0, 1.2, 1.0, 0.8, 1.0, 0.8)
DATE_ONLY = -1  # minute of day for a score recorded without a time


def _rows(course: np.ndarray, instrument: int, day: np.ndarray, minute: np.ndarray,
          timing: int, session: np.ndarray | int = -1, state: np.ndarray | float = 0.0,
          days_after: np.ndarray | float = np.nan) -> Table:
    n = len(course)
    return {
        "course": course,
        "instrument": np.full(n, instrument),
        "day": day,
        "minute": minute,
        "timing": np.full(n, timing),
        "session": np.broadcast_to(session, (n,)).astype(np.int64),
        "state": np.broadcast_to(state, (n,)).astype(float),
        "days_after": np.broadcast_to(days_after, (n,)).astype(float),
    }


def _same_visit(rows: Table, keep: np.ndarray, instrument: int) -> Table:
    copy = {key: values[keep] for key, values in rows.items()}
    copy["instrument"] = np.full(int(keep.sum()), instrument)
    return copy


def _either(rng: np.random.Generator, n: int, date_only_p: float, timed: np.ndarray) -> np.ndarray:
    return np.where(rng.random(n) < date_only_p, DATE_ONLY, timed)


def visits(rng: np.random.Generator, courses: Table, sessions: Table, patients: Table) -> Table:
    """Every score row (course, instrument, day, minute, timing, session, infusions so far)."""
    n = len(courses["k"])
    patient = courses["patient"]
    induction = courses["rank"] != MAINTENANCE
    gad = patients["has_gad"][patient]
    madrs = patients["has_madrs"][patient] & induction
    parts: list[Table] = []

    # intake, within 14 days before infusion 1 (a few just outside the window)
    c = np.flatnonzero(induction & (rng.random(n) < np.where(
        courses["rank"] == FIRST_INDUCTION, 0.88, 0.6)))
    back = np.where(rng.random(len(c)) < 0.92, rng.integers(1, 15, len(c)),
                    rng.integers(15, 22, len(c)))
    day = np.busday_offset(courses["first_day"][c] - back, 0, roll="backward")
    intake = _rows(c, PHQ9, day, _either(rng, len(c), 0.25, 540 + rng.integers(0, 480, len(c))),
                   PRE)
    parts += [intake, _same_visit(intake, gad[c] & (rng.random(len(c)) < 0.9), GAD7)]

    # infusion days: `pre` before the start, `post` after it (cancelled bookings have none)
    s = np.flatnonzero(sessions["status"] != CANCELLED)
    c, number = sessions["course"][s], sessions["number"][s]
    start = sessions["minute"][s]
    first = number == 1
    m = len(s)
    pre = rng.random(m) < np.where(first, 0.97, 0.93)
    parts.append(_rows(c[pre], PHQ9, sessions["day"][s][pre],
                       (start - rng.integers(10, 31, m))[pre], PRE, s[pre], number[pre] - 1.0))
    pick = gad[c] & (rng.random(m) < np.where(first, 0.6, 0.25))
    parts.append(_rows(c[pick], GAD7, sessions["day"][s][pick],
                       (start - rng.integers(10, 31, m))[pick], PRE, s[pick],
                       number[pick] - 1.0))
    pick = madrs[c] & first & (rng.random(m) < 0.95)
    parts.append(_rows(c[pick], MADRS, sessions["day"][s][pick],
                       (start - rng.integers(20, 46, m))[pick], PRE, s[pick], 0.0))
    pick = (sessions["status"][s] == COMPLETED) & (rng.random(m) < np.where(first, 0.35, 0.12))
    post_minute = _either(rng, m, 0.5, start + rng.integers(60, 121, m))
    parts.append(_rows(c[pick], PHQ9, sessions["day"][s][pick], post_minute[pick], POST,
                       s[pick], number[pick].astype(float)))

    # follow-ups after the last infusion; fewer after a drop-out
    dropped = courses["k"] < PLANNED[courses["protocol"]]
    responder = np.isin(courses["klass"], tj.RESPONDERS)
    plans = (
        (np.where(dropped, 0.35, 0.72), 5, 10),
        (np.where(dropped, 0.25, 0.55), 12, 16),
        (np.where(responder, 0.6, 0.25), 28, 57),
        (np.where(responder, 0.35, 0.1), 60, 101),
    )
    for p, low, high in plans:
        c = np.flatnonzero(rng.random(n) < np.where(induction, p, 0.15))
        after = rng.integers(low, high, len(c))
        minute = _either(rng, len(c), 0.45, 480 + rng.integers(0, 780, len(c)))
        rows = _rows(c, PHQ9, courses["last_day"][c] + after, minute, FOLLOWUP,
                     state=courses["k"][c].astype(float), days_after=after)
        parts += [rows, _same_visit(rows, gad[c] & (rng.random(len(c)) < 0.8), GAD7)]
    c = np.flatnonzero(madrs & (rng.random(n) < 0.85))
    after = rng.integers(5, 11, len(c))
    day = np.busday_offset(courses["last_day"][c] + after, 0, roll="forward")
    parts.append(_rows(c, MADRS, day, 540 + 15 * rng.integers(0, 28, len(c)), FOLLOWUP,
                       state=courses["k"][c].astype(float), days_after=after))

    rows = concat(parts)
    # a follow-up is only taken before the patient's next course begins
    keep = (rows["timing"] != FOLLOWUP) | (rows["day"] < courses["next_first_day"][rows["course"]])
    return {key: values[keep] for key, values in rows.items()}


def score(rng: np.random.Generator, rows: Table, courses: Table) -> Table:
    """Totals from the latent trajectory plus noise; items that sum to them for most."""
    n = len(rows["course"])
    course, instrument = rows["course"], rows["instrument"]
    fraction = tj.level(courses, course, rows["state"])
    fraction = np.where(rows["timing"] == POST, fraction - courses["acute"][course], fraction)
    fraction = np.clip(tj.relapse(courses, course, fraction, rows["days_after"]), 0, 1.1)
    latent = np.select(
        [instrument == PHQ9, instrument == GAD7],
        [courses["baseline"][course] * fraction,
         courses["gad_baseline"][course] * (1 - 0.85 * (1 - fraction))],
        default=courses["madrs_baseline"][course] * fraction)
    noise = rng.normal(0, 1, n) * np.select([instrument == PHQ9, instrument == GAD7], [1.1, 1.0],
                                            default=2.5)
    top = np.select([instrument == PHQ9, instrument == GAD7], [27, 21], default=60)
    total = np.clip(np.rint(latent + noise), 0, top).astype(np.int64)

    items = np.full((n, ITEM_COLUMNS), -1, dtype=np.int8)
    with_items = rng.random(n) < np.select([instrument == PHQ9, instrument == GAD7], [0.88, 0.9],
                                           default=0.0)
    for code, weights in ((PHQ9, PHQ9_ITEM_WEIGHTS), (GAD7, GAD7_ITEM_WEIGHTS)):
        pick = np.flatnonzero(with_items & (instrument == code))
        items[pick, : len(weights)] = split_items(rng, total[pick], weights)
    spelling = np.where(rng.random(n) < 0.015, 1, 0) + np.where(rng.random(n) < 0.01, 2, 0)
    return {**rows, "total": total, "items": items, "spelling": np.minimum(spelling, 2)}


def split_items(rng: np.random.Generator, totals: np.ndarray, weights: tuple[float, ...],
                chunk: int = 200_000) -> np.ndarray:
    """Items of 0-3 summing exactly to each total: `total` of the 3 slots per item are drawn
    without replacement, a heavier item's slots more often (weighted random keys)."""
    slot_weights = np.repeat(np.asarray(weights), 3)
    slots = len(slot_weights)
    out = np.empty((len(totals), len(weights)), dtype=np.int8)
    for start in range(0, len(totals), chunk):
        wanted = totals[start : start + chunk]
        keys = rng.exponential(size=(len(wanted), slots)) / slot_weights
        order = np.argsort(keys, axis=1)
        chosen = np.zeros(keys.shape, dtype=bool)
        np.put_along_axis(chosen, order, np.arange(slots) < wanted[:, None], axis=1)
        out[start : start + chunk] = chosen.reshape(len(wanted), len(weights), 3).sum(axis=2)
    return out
