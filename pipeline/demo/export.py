"""The four canonical export files (README "Input") as polars frames, rows in a fixed order."""

from __future__ import annotations

import numpy as np
import polars as pl

from pipeline.demo.catalogue import (
    AE_TYPES,
    CANCELLED,
    DIAGNOSES,
    INSTRUMENTS,
    ITEM_COLUMNS,
    MEMBER_PREFIX,
    PAYERS,
    POST,
    PROTOCOL_IDS,
    PROTOCOLS,
    PROVIDER_NAMES,
    SELF_PAY,
    SITES,
    STATUSES,
    TIMINGS,
)
from pipeline.demo.schedule import Table

SPELLINGS = {  # instrument names as different exporting systems write them
    0: ("PHQ-9", "PHQ9", "phq-9"),
    1: ("GAD-7", "GAD7", "gad-7"),
    2: ("MADRS", "MADRS", "MADRS"),
}
assert tuple(s[0] for s in SPELLINGS.values()) == INSTRUMENTS


def _id(prefix: str, number: pl.Expr, width: int) -> pl.Expr:
    return pl.lit(prefix) + number.cast(pl.String).str.zfill(width)


def _id_width(count: int, minimum: int) -> int:
    return max(minimum, len(str(count)))


def _timestamp(day: np.ndarray, minute: np.ndarray) -> pl.Series:
    """ISO date-time text, or the date alone where minute is -1 (recorded without a time)."""
    seconds = day.astype("datetime64[s]").astype(np.int64) + np.maximum(minute, 0) * 60
    frame = pl.DataFrame({"s": seconds, "date_only": minute < 0})
    return frame.select(
        pl.when(pl.col("date_only"))
        .then(pl.from_epoch("s", time_unit="s").dt.strftime("%Y-%m-%d"))
        .otherwise(pl.from_epoch("s", time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S"))
    ).to_series()


def _lookup(codes: np.ndarray, names: tuple[str, ...] | list[str]) -> pl.Series:
    return pl.Series(codes, dtype=pl.UInt32).replace_strict(
        list(range(len(names))), list(names), return_dtype=pl.String)


def protocols_frame() -> pl.DataFrame:
    return pl.DataFrame(PROTOCOLS)


def patient_width(count: int) -> int:
    return _id_width(count, 5)


def patients_frame(patients: Table) -> pl.DataFrame:
    n = len(patients["first_day"])
    payer = patients["payer"]
    return pl.DataFrame({
        "number": np.arange(1, n + 1),
        "birth_date": patients["birth_date"],
        "sex": np.where(patients["female"], "F", "M"),
        "diagnosis_code": _lookup(patients["diagnosis"], DIAGNOSES),
        "payer": _lookup(payer, PAYERS),
        "prefix": _lookup(payer, MEMBER_PREFIX),
        "member_number": patients["member_number"],
        "self_pay": payer == SELF_PAY,
        "site": _lookup(patients["site"], SITES),
    }).select(
        _id("P", pl.col("number"), patient_width(n)).alias("patient_id"),
        pl.col("birth_date").dt.strftime("%Y-%m-%d"),
        "sex",
        "diagnosis_code",
        "payer",
        pl.when(~pl.col("self_pay"))
        .then(pl.col("prefix") + pl.col("member_number").cast(pl.String))
        .alias("member_id"),
        "site",
    )


def sessions_frame(sessions: Table, clinical: Table, courses: Table, patients: Table,
                   scored: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
    """Sessions sorted by patient and start time, numbered in that order; also returns each
    input row's session number."""
    patient = courses["patient"][sessions["course"]]
    order = np.lexsort((np.arange(len(patient)), sessions["minute"], sessions["day"], patient))
    number = np.empty(len(order), dtype=np.int64)
    number[order] = np.arange(1, len(order) + 1)
    events = clinical["events"].astype(np.int64) @ (1 << np.arange(len(AE_TYPES)))
    event_names = ["" if code == 0 else ";".join(
        name for bit, name in enumerate(AE_TYPES) if code >> bit & 1)
        for code in range(1 << len(AE_TYPES))]
    given = pl.col("status") != STATUSES[CANCELLED]
    frame = pl.DataFrame({
        "number": number,
        "patient": patient + 1,
        "protocol_id": _lookup(courses["protocol"][sessions["course"]], PROTOCOL_IDS),
        "started_at": _timestamp(sessions["day"], sessions["minute"]),
        "status": _lookup(sessions["status"], STATUSES),
        "dose_mg_per_kg": clinical["dose_mg_per_kg"],
        "weight_kg": clinical["weight_kg"],
        "dose_mg": clinical["dose_mg"],
        "duration_minutes": clinical["duration_minutes"],
        "site": _lookup(patients["site"][patient], SITES),
        "provider": _lookup(clinical["provider"], PROVIDER_NAMES),
        "bp_systolic_max": clinical["bp_systolic_max"],
        "bp_diastolic_max": clinical["bp_diastolic_max"],
        "events": _lookup(events, event_names),
        "scored": scored,
    }).sort("number").select(
        _id("S", pl.col("number"), _id_width(len(order), 7)).alias("session_id"),
        _id("P", pl.col("patient"), patient_width(len(patients["first_day"]))).alias("patient_id"),
        "protocol_id",
        "started_at",
        pl.lit(None, dtype=pl.String).alias("course_id"),
        "status",
        *(pl.when(given).then(pl.col(name)).alias(name) for name in (
            "dose_mg_per_kg", "weight_kg", "dose_mg", "duration_minutes")),
        "site",
        "provider",
        *(pl.when(given).then(pl.col(name)).alias(name) for name in (
            "bp_systolic_max", "bp_diastolic_max")),
        pl.when(given & (pl.col("events") != "")).then(pl.col("events")).alias("adverse_events"),
        pl.when(given).then(pl.concat_str(
            pl.lit("96365"),
            pl.when(pl.col("duration_minutes") > 90).then(pl.lit(";96366")).otherwise(pl.lit("")),
            pl.when(pl.col("scored")).then(pl.lit(";96127")).otherwise(pl.lit("")),
        )).alias("cpt_codes"),
    )
    return frame, number


def assessments_frame(rows: Table, courses: Table, patient_count: int,
                      session_number: np.ndarray) -> pl.DataFrame:
    """Scores sorted by patient and time, numbered in that order."""
    patient = courses["patient"][rows["course"]]
    # a date-only `post` score belongs at the end of its day (docs/definitions.md "Baseline"),
    # other date-only first
    minute = np.where(rows["minute"] >= 0, rows["minute"],
                      np.where(rows["timing"] == POST, 24 * 60, -1))
    order = np.lexsort((np.arange(len(patient)), rows["instrument"], minute, rows["day"], patient))
    session = rows["session"]
    linked = np.where(session >= 0, session_number[np.maximum(session, 0)], 0)
    labels = [name for code in sorted(SPELLINGS) for name in SPELLINGS[code]]
    rows = {key: values[order] for key, values in rows.items()}
    items = rows["items"]
    frame = pl.DataFrame({
        "patient": patient[order] + 1,
        "instrument": _lookup(rows["instrument"] * 3 + rows["spelling"], labels),
        "administered_at": _timestamp(rows["day"], rows["minute"]),
        "total_score": rows["total"],
        "session": linked[order],
        "timing": _lookup(rows["timing"], TIMINGS),
        **{f"item_{i + 1}": items[:, i] for i in range(ITEM_COLUMNS)},
    })
    return frame.select(
        _id("A", pl.int_range(1, pl.len() + 1), _id_width(2 * len(order), 8))
        .alias("assessment_id"),
        _id("P", pl.col("patient"), patient_width(patient_count)).alias("patient_id"),
        "instrument",
        "administered_at",
        "total_score",
        pl.when(pl.col("session") > 0)
        .then(_id("S", pl.col("session"), _id_width(len(session_number), 7)))
        .alias("session_id"),
        "timing",
        *(pl.when(pl.col(f"item_{i + 1}") >= 0).then(pl.col(f"item_{i + 1}"))
          .alias(f"item_{i + 1}") for i in range(ITEM_COLUMNS)),
    )
