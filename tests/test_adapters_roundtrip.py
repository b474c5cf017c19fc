"""The demo export written as REDCap and as FHIR Bulk Data gives the same course outcomes.

Fair comparison: the demo plants flawed rows (SPEC §1 "Bad input"); the writers get only the
rows the canonical load accepted (rejected lines and exact duplicate rows dropped), so every
adapter row must load, and course_outcomes.csv must be byte-identical to the canonical run.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.demo import write_demo
from pipeline.ingest import ingest
from pipeline.metrics_files import run_metrics
from tests.adapter_writers import accepted_rows, write_fhir, write_redcap
from tests.conftest import LOAD_DAY, query

AS_OF = date(2026, 10, 31)
SESSION_COLUMNS = ("patient_id, protocol_id, started_at, started_date_only, course_id, status, "
                   "dose_mg_per_kg, weight_kg, dose_mg, duration_minutes, site, provider, "
                   "bp_systolic_max, bp_diastolic_max, list_sort(adverse_events), cpt_codes")
ASSESSMENT_COLUMNS = "patient_id, instrument, administered_at, date_only, total_score, timing, items"


@pytest.fixture(scope="module")
def canonical(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("roundtrip")
    write_demo(root / "demo", patients=60, seed=7, end=AS_OF)
    config = load_config()
    ingest(root / "demo", root / "canonical.duckdb", config, today=LOAD_DAY)
    run_metrics(root / "canonical.duckdb", AS_OF, root / "out_canonical", config)
    rows = accepted_rows(root / "demo", root / "canonical.duckdb")
    return {"root": root, "rows": rows, "config": config}


def _adapter_run(canonical: dict, source_format: str, writer) -> tuple[Path, Path, object]:  # type: ignore[no-untyped-def]
    root: Path = canonical["root"]
    folder = root / source_format
    writer(canonical["rows"], folder)
    db = root / f"{source_format}.duckdb"
    report = ingest(folder, db, canonical["config"], today=LOAD_DAY, source_format=source_format)
    run_metrics(db, AS_OF, root / f"out_{source_format}", canonical["config"])
    return db, root / f"out_{source_format}", report


@pytest.mark.parametrize("source_format, writer", [("redcap", write_redcap), ("fhir", write_fhir)])
def test_adapter_export_gives_identical_course_outcomes(canonical, source_format, writer):
    db, out, report = _adapter_run(canonical, source_format, writer)
    root: Path = canonical["root"]
    # every written row loads: the writers only got rows the canonical load accepted
    assert all(f.adds_up and f.rejected == 0 and f.duplicates == 0 for f in report.files)  # type: ignore[attr-defined]
    expected = (root / "out_canonical" / "course_outcomes.csv").read_bytes()
    assert (out / "course_outcomes.csv").read_bytes() == expected
    assert expected.count(b"\n") > 50  # the comparison is not vacuous
    # the canonical tables agree too, ids aside (REDCap ids are record:event:form:instance)
    canon = root / "canonical.duckdb"
    for table, columns in (("sessions", SESSION_COLUMNS), ("assessments", ASSESSMENT_COLUMNS),
                           ("patients", "patient_id, birth_date, sex, diagnosis_code, payer, "
                                        "member_id, site")):
        sql = f"SELECT {columns} FROM {table} ORDER BY ALL"
        assert query(db, sql) == query(canon, sql), table

    # scores stay linked to their infusion (REDCap through the infusion's instance number)
    linked = ("SELECT a.patient_id, a.instrument, a.administered_at, s.started_at FROM assessments a "
              "JOIN sessions s USING (session_id) ORDER BY ALL")
    assert query(db, linked) == query(canon, linked)
    if source_format == "fhir":  # FHIR resource ids are the canonical ids
        ids = "SELECT assessment_id, session_id FROM assessments ORDER BY ALL"
        assert query(db, ids) == query(canon, ids)
