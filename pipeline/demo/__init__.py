"""Synthetic clinic export for demos, tests and benchmarks (`outcomes demo`).

`write_demo` writes the canonical files (protocols, patients, sessions, assessments and
treatment_history) for a made-up three-site clinic: about 18 months of inductions (IND6, TW4,
SINGLE), maintenance (MAINT) and repeat inductions ending on `end`, with PHQ-9, GAD-7 and
MADRS scores driven by latent response trajectories, drop-outs, missing scores, and a
handful of deliberately flawed rows, and prior antidepressant trials that meet, miss or leave
undocumented the payer packets' treatment-resistance criterion. Same arguments ->
byte-identical files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from pipeline.demo import export, flaws, history, schedule, scores
from pipeline.demo.catalogue import CANCELLED, GAD7, MADRS, PHQ9

__all__ = ["write_demo"]


def write_demo(data_dir: Path, patients: int, seed: int, end: dt.date) -> str:
    """Write protocols.csv, patients.csv, sessions.csv, assessments.csv and
    treatment_history.csv into data_dir (created if missing) and return a short summary:
    counts, date range, planted flaws."""
    if patients < 1:
        raise ValueError("the demo needs at least one patient")
    rng = np.random.default_rng(seed)
    people = schedule.make_patients(rng, patients, end)
    courses, sessions = schedule.plan(rng, people)
    end_day = np.datetime64(end, "D")
    sessions = schedule.take(sessions, np.flatnonzero(sessions["day"] <= end_day))
    clinical = schedule.clinical_fields(rng, sessions, courses, people)
    rows = scores.visits(rng, courses, sessions, people)
    rows = schedule.take(rows, np.flatnonzero(rows["day"] <= end_day))
    rows = scores.score(rng, rows, courses)

    scored = np.zeros(len(sessions["day"]), dtype=bool)
    scored[rows["session"][rows["session"] >= 0]] = True
    session_frame, session_number = export.sessions_frame(sessions, clinical, courses, people,
                                                          scored)
    assessment_frame = export.assessments_frame(rows, courses, patients, session_number)
    assessment_frame, planted = flaws.plant_assessment_flaws(rng, assessment_frame)
    session_frame, planted_sessions = flaws.plant_session_flaws(rng, session_frame)
    # an own stream: adding trials leaves every other file as it was
    trials, histories = history.trials(np.random.default_rng([seed, 1]), people,
                                       export.patient_width(patients))

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    export.protocols_frame().write_csv(data_dir / "protocols.csv")
    export.patients_frame(people).write_csv(data_dir / "patients.csv")
    session_frame.write_csv(data_dir / "sessions.csv")
    assessment_frame.write_csv(data_dir / "assessments.csv")
    trials.write_csv(data_dir / "treatment_history.csv")

    status = sessions["status"]
    instrument = rows["instrument"]
    first_day = min(sessions["day"].min(), rows["day"].min())
    lines = [
        f"Demo export written to {data_dir}",
        f"  patients     {patients:,}",
        f"  sessions     {len(status):,} ({int((status != CANCELLED).sum()):,} infusions, "
        f"{int((status == CANCELLED).sum()):,} cancelled, "
        f"{int((status == 1).sum()):,} aborted)",
        f"  scores       {len(instrument):,} (PHQ-9 {int((instrument == PHQ9).sum()):,}, "
        f"GAD-7 {int((instrument == GAD7).sum()):,}, MADRS {int((instrument == MADRS).sum()):,})",
        f"  dates        {first_day} to {end_day}",
        f"  trials       {trials.height:,} prior antidepressant trials (treatment resistance "
        f"{histories['met']} met, {histories['not met']} not met, "
        f"{histories['not documented'] + histories['no history']} not documented)",
        f"  planted flaws {sum(f.rows for f in planted + planted_sessions)} rows "
        "(the loader should reject or count each):",
        *(f"    {f.file}: {f.rows} x {f.kind}" for f in planted + planted_sessions),
    ]
    return "\n".join(lines)
