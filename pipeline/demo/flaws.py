"""Deliberately flawed rows, as real exports have them (about 0.3% of scores, a few sessions).

The validating loader must reject or count every one (docs/bad-input-values.md,
docs/bad-input-files.md); everything else in the demo export is clean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

ASSESSMENT_SHARE = 0.0005  # per kind of flaw; six kinds -> about 0.3% of scores
SESSION_SHARE = 0.0003


@dataclass(frozen=True)
class Flaw:
    file: str
    kind: str
    rows: int


def _impossible_date(column: str) -> pl.Expr:
    """The same timestamp on 30 February of its year."""
    return (pl.col(column).str.slice(0, 4) + pl.lit("-02-30") + pl.col(column).str.slice(10)
            ).alias(column)


def _patch(frame: pl.DataFrame, rows: np.ndarray, *exprs: pl.Expr) -> pl.DataFrame:
    mask = np.zeros(frame.height, dtype=bool)
    mask[rows] = True
    hit = pl.lit(pl.Series(mask))
    return frame.with_columns(
        pl.when(hit).then(expr).otherwise(pl.col(expr.meta.output_name())).alias(
            expr.meta.output_name())
        for expr in exprs)


def _insert_after(frame: pl.DataFrame, copies: list[tuple[np.ndarray, pl.DataFrame]],
                  appended: pl.DataFrame | None = None) -> pl.DataFrame:
    """Each copy right after the row it was made from (ids stay in order); `appended` last."""
    parts = [frame.with_columns(__position=pl.int_range(pl.len(), dtype=pl.Int64) * 2)]
    parts += [copy.with_columns(__position=pl.Series(rows * 2 + 1, dtype=pl.Int64))
              for rows, copy in copies]
    if appended is not None:
        parts.append(appended.with_columns(
            __position=(pl.int_range(pl.len(), dtype=pl.Int64) + frame.height) * 2))
    return pl.concat(parts).sort("__position", maintain_order=True).drop("__position")


def plant_assessment_flaws(rng: np.random.Generator,
                           assessments: pl.DataFrame) -> tuple[pl.DataFrame, list[Flaw]]:
    each = max(1, round(assessments.height * ASSESSMENT_SHARE))
    candidates = (assessments.with_row_index("row")
                  .filter((pl.col("instrument") == "PHQ-9") & pl.col("item_1").is_not_null())
                  ["row"].to_numpy())
    each = min(each, len(candidates) // 6)
    if each == 0:
        return assessments, []
    picked = rng.choice(candidates, 6 * each, replace=False).reshape(6, each)
    range_rows, date_rows, sum_rows, phq2_rows, exact_rows, conflict_rows = map(np.sort, picked)
    items = [f"item_{i}" for i in range(1, 10)]

    frame = _patch(assessments, range_rows, pl.lit(31, dtype=pl.Int64).alias("total_score"),
                   *(pl.lit(None, dtype=pl.Int8).alias(item) for item in items))
    frame = _patch(frame, date_rows, _impossible_date("administered_at"))
    frame = _patch(frame, sum_rows, pl.when(pl.col("item_1") < 3).then(pl.col("item_1") + 1)
                   .otherwise(pl.col("item_1") - 1).cast(pl.Int8).alias("item_1"))
    next_id = frame.height + 1
    width = len(frame["assessment_id"][0]) - 1
    phq2 = frame[phq2_rows].with_columns(
        (pl.lit("A") + (pl.int_range(pl.len()) + next_id).cast(pl.String).str.zfill(width))
        .alias("assessment_id"),
        pl.lit("PHQ-2").alias("instrument"),
        (pl.col("item_1") + pl.col("item_2")).cast(pl.Int64).alias("total_score"),
        *(pl.lit(None, dtype=pl.Int8).alias(item) for item in items[2:]),
    )
    exact = frame[exact_rows]
    conflict = frame[conflict_rows].with_columns(
        pl.when(pl.col("total_score") <= 25).then(pl.col("total_score") + 2)
        .otherwise(pl.col("total_score") - 2).alias("total_score"),
        *(pl.lit(None, dtype=pl.Int8).alias(item) for item in items),
    )
    frame = _insert_after(frame, [(exact_rows, exact), (conflict_rows, conflict)], phq2)
    return frame, [
        Flaw("assessments.csv", "PHQ-9 total out of range (31)", each),
        Flaw("assessments.csv", "impossible date (30 February)", each),
        Flaw("assessments.csv", "items do not sum to the total", each),
        Flaw("assessments.csv", "unknown instrument (PHQ-2)", each),
        Flaw("assessments.csv", "exact duplicate row", each),
        Flaw("assessments.csv", "conflicting duplicate assessment_id", each),
    ]


def plant_session_flaws(rng: np.random.Generator,
                        sessions: pl.DataFrame) -> tuple[pl.DataFrame, list[Flaw]]:
    each = max(1, round(sessions.height * SESSION_SHARE))
    rows = sessions.with_row_index("row")
    given = rows.filter(pl.col("status") != "cancelled")["row"].to_numpy()
    cancelled = rows.filter(pl.col("status") == "cancelled")["row"].to_numpy()
    flaws = []
    frame = sessions
    # a cancelled booking carries no infusion or score, so rejecting it loses nothing else
    bad_date = np.sort(rng.choice(cancelled, min(each, len(cancelled)), replace=False))
    if len(bad_date):
        frame = _patch(frame, bad_date, _impossible_date("started_at"))
        flaws.append(Flaw("sessions.csv", "impossible date (30 February)", len(bad_date)))
    exact = np.sort(rng.choice(given, min(each, len(given)), replace=False))
    if len(exact):
        frame = _insert_after(frame, [(exact, frame[exact])])
        flaws.append(Flaw("sessions.csv", "exact duplicate row", len(exact)))
    return frame, flaws
