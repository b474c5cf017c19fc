"""Prior antidepressant trials of the synthetic clinic: the optional `treatment_history` file.

Payer packets judge treatment resistance from these rows (pipeline/reports/payer/criteria.py,
README "Configuration" [payer.resistance]): at least 2 failed adequate trials (adequate dose,
at least 6 weeks, at most 25 % improvement) in the current episode. Each patient is given one
of four histories, so the demo's packets show the criterion met, not met, and not documented
(a trial missing its dose adequacy or end date, or no history at all). Trials end before the
patient's first infusion. Drawn from their own random stream, so the other files do not change.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from pipeline.demo.schedule import Table

ANTIDEPRESSANTS = (
    ("sertraline", "SSRI"), ("escitalopram", "SSRI"), ("fluoxetine", "SSRI"),
    ("venlafaxine", "SNRI"), ("duloxetine", "SNRI"), ("bupropion", "atypical"),
    ("mirtazapine", "atypical"), ("nortriptyline", "TCA"),
)
AUGMENTATION = (("aripiprazole", "augmentation"), ("lithium", "augmentation"),
                ("quetiapine", "augmentation"))

# Kinds of trial. COUNTS qualifies; the others are excluded by the rule or lack a value it needs.
NONE, COUNTS, RESPONDED, SHORT, LOW_DOSE, NO_DOSE, NO_END, AUGMENT, PRIOR = range(9)
SLOTS = 3
# history -> trial kinds, oldest first (right-aligned in SLOTS); the verdict each gives
HISTORIES = {
    "met": ((NONE, COUNTS, COUNTS), (PRIOR, COUNTS, COUNTS), (COUNTS, AUGMENT, COUNTS),
            (COUNTS, COUNTS, COUNTS)),
    "not met": ((NONE, NONE, COUNTS), (NONE, COUNTS, RESPONDED), (NONE, SHORT, COUNTS),
                (NONE, LOW_DOSE, COUNTS)),
    "not documented": ((NONE, COUNTS, NO_DOSE), (NONE, NO_END, COUNTS), (NONE, NO_DOSE, NO_END)),
    "no history": ((NONE, NONE, NONE),),
}
HISTORY_P = (0.45, 0.2, 0.2, 0.15)
# per kind: weeks (low, high), improvement % (low, high), adequate dose ("" = not recorded)
WEEKS = {COUNTS: (8, 16), RESPONDED: (8, 14), SHORT: (2, 4), LOW_DOSE: (8, 12), NO_DOSE: (8, 12),
         NO_END: (8, 12), AUGMENT: (6, 12), PRIOR: (10, 20)}
IMPROVEMENT = {RESPONDED: (40, 70)}  # others: -10 to 20
ADEQUATE = {LOW_DOSE: "no", NO_DOSE: ""}  # others: yes


def _table(values: Mapping[int, object], kinds: np.ndarray, default: object) -> np.ndarray:
    out = np.array([values.get(int(k), default) for k in range(PRIOR + 1)], dtype=object)
    return out[kinds]


def trials(rng: np.random.Generator, patients: Table, patient_width: int) -> tuple[pl.DataFrame,
                                                                                   dict[str, int]]:
    """treatment_history rows for every patient; and how many patients got each history."""
    n = len(patients["first_day"])
    names = list(HISTORIES)
    history = rng.choice(len(names), n, p=HISTORY_P)
    templates = [np.array(HISTORIES[name]) for name in names]
    pick = rng.random(n)
    kinds = np.zeros((n, SLOTS), dtype=np.int64)
    for h, table in enumerate(templates):
        rows = history == h
        kinds[rows] = table[(pick[rows] * len(table)).astype(np.int64)]
    low = np.array([WEEKS.get(k, (0, 0))[0] for k in range(PRIOR + 1)])[kinds]
    high = np.array([WEEKS.get(k, (0, 0))[1] for k in range(PRIOR + 1)])[kinds]
    days = (rng.uniform(low, high + 1) * 7).astype(np.int64)
    gap = np.where(kinds == PRIOR, rng.integers(365, 1460, (n, SLOTS)),
                   rng.integers(14, 56, (n, SLOTS)))
    start = np.zeros((n, SLOTS), dtype="datetime64[D]")
    end = np.zeros((n, SLOTS), dtype="datetime64[D]")
    cursor = patients["first_day"] - rng.integers(14, 84, n)  # the last trial ends before infusion 1
    for j in range(SLOTS - 1, -1, -1):  # newest first, over slot positions (not rows)
        filled = kinds[:, j] != NONE
        end[:, j] = cursor
        start[:, j] = cursor - days[:, j]
        cursor = np.where(filled, start[:, j] - gap[:, j], cursor)
    improve_low = _table({k: v[0] for k, v in IMPROVEMENT.items()}, kinds, -10).astype(np.int64)
    improve_high = _table({k: v[1] for k, v in IMPROVEMENT.items()}, kinds, 20).astype(np.int64)
    improvement = rng.integers(improve_low, improve_high + 1)
    offset = rng.integers(0, len(ANTIDEPRESSANTS), n)[:, None] + np.arange(SLOTS)
    drug = np.where(kinds == AUGMENT, offset % len(AUGMENTATION), offset % len(ANTIDEPRESSANTS))
    meds = np.array(ANTIDEPRESSANTS + AUGMENTATION, dtype=object)
    drug = np.where(kinds == AUGMENT, drug + len(ANTIDEPRESSANTS), drug)
    keep = kinds != NONE
    frame = pl.DataFrame({
        "patient": np.broadcast_to(np.arange(1, n + 1)[:, None], (n, SLOTS))[keep],
        "medication": meds[drug[keep], 0].astype(str),
        "drug_class": meds[drug[keep], 1].astype(str),
        "start_date": start[keep],
        "end_date": np.where(kinds == NO_END, np.datetime64("NaT"), end)[keep],
        "adequate_dose": _table(ADEQUATE, kinds, "yes")[keep].astype(str),
        "improvement_pct": improvement[keep],
        "episode": np.where(kinds == PRIOR, "prior", "current")[keep],
    })
    width = max(5, len(str(frame.height)))
    frame = frame.select(
        (pl.lit("T") + pl.int_range(1, pl.len() + 1).cast(pl.String).str.zfill(width))
        .alias("trial_id"),
        (pl.lit("P") + pl.col("patient").cast(pl.String).str.zfill(patient_width))
        .alias("patient_id"),
        "medication",
        "drug_class",
        pl.col("start_date").dt.strftime("%Y-%m-%d"),
        pl.col("end_date").dt.strftime("%Y-%m-%d"),
        pl.when(pl.col("adequate_dose") != "").then(pl.col("adequate_dose")).alias("adequate_dose"),
        "improvement_pct",
        "episode",
    )
    counts = {name: int((history == h).sum()) for h, name in enumerate(names)}
    return frame, counts
