"""A canonical export rewritten the way an EHR exports it, with the mapping that loads it back.

US dates with 12-hour times in separate columns, the EHR's own column names, status words
("Checked Out", "No Show"), service names instead of protocol ids, and the scores as a wide
sheet (one row per visit, one column per questionnaire; items are not in such sheets). Written
with polars from the rows a canonical load accepted (tests/adapter_writers.accepted_rows), so
loading it through EHR_MAPPING must give the same course outcomes. examples/ehr-csv/ was
written by this module from a small demo export.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

SERVICES = {
    "IND6": "Ketamine IV - Induction (6)",
    "TW4": "Ketamine IV - Twice Weekly x4",
    "SINGLE": "Ketamine IV - Single Infusion",
    "MAINT": "Ketamine IV - Maintenance",
}
TIMING = {"pre": "Pre-infusion", "post": "Post-infusion", "followup": "Follow-up"}
SEX = {"F": "Female", "M": "Male", "X": "Other"}
SCORES = {"PHQ-9": "PHQ9 Total", "GAD-7": "GAD7 Score", "MADRS": "MADRS Total"}

EHR_MAPPING = """\
# An EHR's export (US dates, status words, service names, a wide score sheet) mapped onto the
# canonical tables; README "Loading your EHR's export". protocols.csv is canonical already.
# Load with: outcomes ingest examples/ehr-csv --db clinic.duckdb (this file is found by its name)
[files]
patients = "Patients.csv"
sessions = "Appointments*.csv"
assessments = "Measures.csv"

[patients.columns]
patient_id = "Patient MRN"
birth_date = "DOB"
sex = "Gender"
diagnosis_code = "Primary Dx"
payer = "Insurance"
member_id = "Member ID"
site = "Home Clinic"

[patients.formats]
birth_date = "%m/%d/%Y"

[patients.values.sex]
"Female" = "F"
"Male" = "M"
"Other" = "X"

[sessions.columns]   # in the order of the canonical columns
session_id = "Appointment ID"
patient_id = "Patient MRN"
protocol_id = "Service"
started_at = ["Date of Service", "Start Time"]   # joined with a space, then parsed
status = "Appointment Status"
weight_kg = "Weight (kg)"
dose_mg = "Ketamine Dose (mg)"
dose_mg_per_kg = "Dose (mg/kg)"
duration_minutes = "Infusion Minutes"
site = "Location"
provider = "Provider"
bp_systolic_max = "Max BP Systolic"
bp_diastolic_max = "Max BP Diastolic"
adverse_events = "Side Effects"
cpt_codes = "CPT Codes"

[sessions.formats]   # a visit recorded without a time has the date alone
started_at = ["%m/%d/%Y %I:%M %p", "%m/%d/%Y"]

[sessions.values.status]
"Checked Out" = "completed"
"Stopped Early" = "aborted"
"No Show" = "cancelled"
"Canceled" = "cancelled"

[sessions.values.protocol_id]
"Ketamine IV - Induction (6)" = "IND6"
"Ketamine IV - Twice Weekly x4" = "TW4"
"Ketamine IV - Single Infusion" = "SINGLE"
"Ketamine IV - Maintenance" = "MAINT"

[assessments.wide]   # one row per visit, one column per questionnaire; empty = not given
patient_id = "Patient MRN"
administered_at = ["Visit Date", "Visit Time"]
session_id = "Appointment ID"
timing = "Timing"
scores = { "PHQ-9" = "PHQ9 Total", "GAD-7" = "GAD7 Score", "MADRS" = "MADRS Total" }

[assessments.formats]
administered_at = ["%m/%d/%Y %I:%M %p", "%m/%d/%Y"]

[assessments.values.timing]
"Pre-infusion" = "pre"
"Post-infusion" = "post"
"Follow-up" = "followup"
"""


def _us_date(column: str) -> pl.Expr:
    return pl.col(column).str.slice(0, 10).str.to_date("%Y-%m-%d").dt.strftime("%m/%d/%Y")


def _us_time(column: str) -> pl.Expr:
    """"14:05" -> "2:05 PM"; nothing for a date recorded without a time."""
    stamp = pl.col(column).str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False)
    return pl.when(pl.col(column).str.len_chars() > 10).then(stamp.dt.strftime("%-I:%M %p"))


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, infer_schema_length=None)


def write_ehr(rows: dict[str, list[dict]], out: Path, monthly: bool = False) -> None:
    """protocols.csv (canonical), Patients.csv, Appointments*.csv, Measures.csv and mapping.toml.

    monthly: appointments in one file per year (Appointments-2025.csv, ...), as some EHRs
    export them; the mapping's pattern reads them all as one snapshot."""
    out.mkdir(parents=True, exist_ok=True)
    _frame(rows["protocols"]).write_csv(out / "protocols.csv")
    _frame(rows["patients"]).select(
        pl.col("patient_id").alias("Patient MRN"),
        _us_date("birth_date").alias("DOB"),
        pl.col("sex").replace_strict(SEX, default=None).alias("Gender"),
        pl.col("diagnosis_code").alias("Primary Dx"),
        pl.col("payer").alias("Insurance"),
        pl.col("member_id").alias("Member ID"),
        pl.col("site").alias("Home Clinic"),
    ).write_csv(out / "Patients.csv")
    sessions = _frame(rows["sessions"]).select(
        pl.col("session_id").alias("Appointment ID"),
        pl.col("patient_id").alias("Patient MRN"),
        _us_date("started_at").alias("Date of Service"),
        _us_time("started_at").alias("Start Time"),
        pl.col("protocol_id").replace_strict(SERVICES).alias("Service"),
        pl.when(pl.col("status") == "cancelled")
        .then(pl.when(pl.col("session_id").str.slice(-1).cast(pl.Int64) % 2 == 0)
              .then(pl.lit("No Show")).otherwise(pl.lit("Canceled")))
        .when(pl.col("status") == "aborted").then(pl.lit("Stopped Early"))
        .otherwise(pl.lit("Checked Out")).alias("Appointment Status"),
        pl.col("provider").alias("Provider"),
        pl.col("site").alias("Location"),
        pl.col("weight_kg").alias("Weight (kg)"),
        pl.col("dose_mg").alias("Ketamine Dose (mg)"),
        pl.col("dose_mg_per_kg").alias("Dose (mg/kg)"),
        pl.col("duration_minutes").alias("Infusion Minutes"),
        pl.col("bp_systolic_max").alias("Max BP Systolic"),
        pl.col("bp_diastolic_max").alias("Max BP Diastolic"),
        pl.col("adverse_events").alias("Side Effects"),
        pl.col("cpt_codes").alias("CPT Codes"),
        pl.col("started_at").str.slice(0, 4).alias("__year"),
    )
    if monthly:
        for (year,), part in sessions.group_by("__year", maintain_order=True):
            part.drop("__year").write_csv(out / f"Appointments-{year}.csv")
    else:
        sessions.drop("__year").write_csv(out / "Appointments.csv")
    scores = _frame(rows["assessments"])
    visit = ["patient_id", "administered_at", "session_id", "timing"]
    wide = scores.pivot(on="instrument", index=visit, values="total_score",
                        aggregate_function=None, sort_columns=True)
    wide.select(
        pl.col("patient_id").alias("Patient MRN"),
        _us_date("administered_at").alias("Visit Date"),
        _us_time("administered_at").alias("Visit Time"),
        pl.col("session_id").alias("Appointment ID"),
        pl.col("timing").replace_strict(TIMING, default=None).alias("Timing"),
        *(pl.col(name).alias(column) if name in wide.columns
          else pl.lit(None, dtype=pl.String).alias(column) for name, column in SCORES.items()),
    ).write_csv(out / "Measures.csv")
    (out / "mapping.toml").write_text(EHR_MAPPING, encoding="utf-8")
