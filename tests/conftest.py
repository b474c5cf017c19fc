"""Shared fixtures: tiny exports written as real files, loaded into real DuckDB files."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import duckdb
import pytest

from pipeline.config import load_config
from pipeline.ingest import LoadReport, ingest

LOAD_DAY = date(2026, 11, 28)

PROTOCOLS = """\
protocol_id,name,planned_infusions,planned_days,dose_mg_per_kg,infusion_minutes,phase
IND6,6 infusions over 12 days,6,12,0.5,40,induction
"""
PATIENTS = """\
patient_id,birth_date,sex,diagnosis_code,payer,member_id,site
P1,1980-03-04,F,F33.2,Acme Health,M100,North
P2,1975-06-30,M,F32.2,Self-pay,,North
"""


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(textwrap.dedent(text).encode(encoding))
    return path


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """A folder holding valid protocols and patients files; tests add the rest."""
    folder = tmp_path / "export"
    write(folder, "protocols.csv", PROTOCOLS)
    write(folder, "patients.csv", PATIENTS)
    return folder


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "clinic.duckdb"


def load(folder: Path, db_path: Path, today: date = LOAD_DAY, **options: bool) -> LoadReport:
    """ingest() with the default config; options: append, allow_retire."""
    return ingest(folder, db_path, load_config(), today=today, **options)


def query(db_path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def rejects(db_path: Path, file: str | None = None) -> list[tuple]:
    """(file, line, column, reason) of every reject, in file/line order."""
    rows = query(
        db_path, 'SELECT file, line, "column", reason FROM rejects ORDER BY file, line, "column"'
    )
    return [r for r in rows if file is None or r[0] == file]


def result(report: LoadReport, file: str):  # type: ignore[no-untyped-def]
    return next(f for f in report.files if f.file == file)
