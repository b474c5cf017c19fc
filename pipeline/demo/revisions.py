"""A later export of the same clinic: the next monthly snapshot, with corrections and deletions.

`revise_export` reads a canonical export and writes what the clinic's system would export a
month later for the same history (README "Exports over time"): a share of sessions and scores
deleted (entered by mistake), doses and PHQ-9 totals corrected, payers corrected. Values are
edited as text, so every untouched cell is byte for byte what the earlier export had. Used by
the tests of snapshot loads and by `make bench` (12 monthly snapshots).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import polars as pl


def _pick(rng: random.Random, frame: pl.DataFrame, share: float, where: pl.Expr,
          avoid: set[int] | frozenset[int] = frozenset()) -> set[int]:
    candidates = [i for i in frame.with_row_index("i").filter(where)["i"].to_list()
                  if i not in avoid]
    return set(rng.sample(candidates, min(len(candidates), max(1, round(len(candidates) * share)))))


def _apply(frame: pl.DataFrame, deleted: set[int], edits: dict[str, pl.Expr],
           changed: set[int]) -> pl.DataFrame:
    row = pl.col("__i")
    return (
        frame.with_row_index("__i")
        .with_columns(**{name: pl.when(row.is_in(list(changed))).then(expr)
                         .otherwise(pl.col(name)) for name, expr in edits.items()})
        .filter(~row.is_in(list(deleted)))
        .drop("__i")
    )


def revise_export(source: Path, target: Path, seed: int, share: float = 0.01) -> dict[str, int]:
    """Write into `target` the next snapshot of the export in `source`.

    About `share` of the session and score rows are deleted and as many corrected (doses +5 mg;
    PHQ-9 totals −1 with the items cleared, as when only the total is re-entered), and about
    `share` / 2 of patients get another payer. Returns how many rows of each kind changed.
    """
    rng = random.Random(seed)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("protocols.csv", "treatment_history.csv"):
        if (source / name).is_file():
            shutil.copy(source / name, target / name)

    patients = pl.read_csv(source / "patients.csv", infer_schema_length=0)
    repaid = _pick(rng, patients, share / 2, pl.col("payer").is_not_null())
    payers = sorted(set(patients["payer"].drop_nulls().to_list()))
    other_payer = pl.col("payer").replace_strict(
        {p: payers[(i + 1) % len(payers)] for i, p in enumerate(payers)}, default=None)
    _apply(patients, set(), {"payer": other_payer}, repaid).write_csv(target / "patients.csv")

    sessions = pl.read_csv(source / "sessions.csv", infer_schema_length=0)
    deleted = _pick(rng, sessions, share, pl.lit(True))
    dosed = _pick(rng, sessions, share, pl.col("dose_mg").str.contains(r"^\d+(\.\d+)?$"),
                  avoid=deleted)
    new_dose = (pl.col("dose_mg").cast(pl.Float64, strict=False) + 5).round(1).cast(pl.String)
    _apply(sessions, deleted, {"dose_mg": new_dose}, dosed).write_csv(target / "sessions.csv")

    scores = pl.read_csv(source / "assessments.csv", infer_schema_length=0)
    total = pl.col("total_score")
    phq9 = ((pl.col("instrument") == "PHQ-9") & total.str.contains(r"^\d+$")
            & (total.cast(pl.Int64, strict=False) > 0))
    gone = _pick(rng, scores, share, pl.lit(True))
    rescored = _pick(rng, scores, share, phq9, avoid=gone)
    edits = {"total_score": (total.cast(pl.Int64, strict=False) - 1).cast(pl.String),
             **{c: pl.lit(None, pl.String) for c in scores.columns if c.startswith("item_")}}
    _apply(scores, gone, edits, rescored).write_csv(target / "assessments.csv")
    return {"payers corrected": len(repaid), "sessions deleted": len(deleted),
            "doses corrected": len(dosed), "scores deleted": len(gone),
            "scores corrected": len(rescored)}
