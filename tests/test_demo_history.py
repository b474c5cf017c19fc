"""The demo's treatment_history: payer packets see the resistance criterion met, not met and not
documented (README "Quickstart"; the rule in pipeline/reports/payer/criteria.py)."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from pathlib import Path

import duckdb

from pipeline.config import load_config
from pipeline.demo import write_demo
from pipeline.ingest import ingest
from pipeline.reports.payer.criteria import ResistanceRule, evaluate_resistance

END = dt.date(2026, 10, 31)


def test_demo_trials_give_every_resistance_verdict(tmp_path: Path) -> None:
    summary = write_demo(tmp_path / "demo", patients=200, seed=7, end=END)
    db = tmp_path / "clinic.duckdb"
    report = ingest(tmp_path / "demo", db, load_config(), today=dt.date(2026, 11, 28))
    trials_file = next(f for f in report.files if f.file == "treatment_history.csv")
    assert trials_file.rejected == 0 and trials_file.read > 200
    con = duckdb.connect(str(db), read_only=True)
    try:
        first = dict(con.execute("SELECT patient_id, min(started_at)::DATE FROM sessions "
                                 "GROUP BY ALL").fetchall())
        rows = con.execute("SELECT patient_id, medication, drug_class, start_date, end_date, "
                           "adequate_dose, improvement_pct, episode FROM treatment_history").fetchall()
        ended_before = con.execute("SELECT count(*) FROM treatment_history t JOIN (SELECT "
                                   "patient_id, min(started_at) AS s FROM sessions GROUP BY ALL) "
                                   "USING (patient_id) WHERE coalesce(t.end_date, t.start_date) "
                                   ">= s").fetchall()[0][0]
    finally:
        con.close()
    assert ended_before == 0  # every trial ended (or started, when open) before infusion 1
    keys = ("medication", "drug_class", "start_date", "end_date", "adequate_dose",
            "improvement_pct", "episode")
    trials: dict[str, list[dict]] = {p: [] for p in first}
    for patient, *values in rows:
        trials[patient].append(dict(zip(keys, values, strict=True)))
    verdicts = Counter(evaluate_resistance(trials[p], first[p], ResistanceRule())[0]["verdict"]
                       for p in first)
    # the payer rule itself gives the mix the demo announces
    announced = re.search(r"treatment resistance (\d+) met, (\d+) not met, (\d+) not documented",
                          summary)
    assert announced is not None
    assert (verdicts["met"], verdicts["not met"], verdicts["not documented"]) == tuple(
        int(n) for n in announced.groups())
    assert min(verdicts.values()) >= 20 and sum(verdicts.values()) == 200
    # some documented trials lack dose adequacy, some an end date
    assert sum(t["adequate_dose"] is None for ts in trials.values() for t in ts) > 5
    assert sum(t["end_date"] is None for ts in trials.values() for t in ts) > 5
