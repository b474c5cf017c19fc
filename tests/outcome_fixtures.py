"""Tiny hand-written exports inserted straight into a real DuckDB file made by pipeline.db.connect.

Rows get sensible defaults (status completed, dummy row_hash/load_id) so a test writes only what
its rule is about. Timestamps are ISO strings; a date without a time is stored as 00:00 and
flagged date-only, as ingest does.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime
from pathlib import Path

import duckdb

from pipeline.config import Config, load_config
from pipeline.db import connect
from pipeline.outcomes import OutcomeFrames, compute_outcomes

_ids = itertools.count(1)


def _timestamp(value: str) -> tuple[datetime, bool]:
    parsed = datetime.fromisoformat(value)
    date_only = len(value) <= 10 or (parsed.hour, parsed.minute, parsed.second) == (0, 0, 0)
    return parsed, date_only


class Clinic:
    """A fixture database: add protocols, sessions and scores, then compute outcomes."""

    def __init__(self, db_path: Path, config: Config | None = None) -> None:
        self.db_path = db_path
        self.config = config or load_config(None)
        self.con: duckdb.DuckDBPyConnection = connect(db_path, self.config)
        self.default_protocol = "IND6"  # the first protocol added becomes the default
        self._protocols = 0

    def protocol(self, protocol_id: str = "IND6", planned_infusions: int = 6,
                 planned_days: int = 14, name: str | None = None) -> Clinic:
        self.con.execute(
            "INSERT INTO protocols (protocol_id, name, planned_infusions, planned_days, "
            "row_hash, load_id) VALUES (?, ?, ?, ?, 0, 0)",
            [protocol_id, name or protocol_id, planned_infusions, planned_days],
        )
        if self._protocols == 0:
            self.default_protocol = protocol_id
        self._protocols += 1
        return self

    def session(self, started_at: str, patient_id: str = "X", protocol_id: str | None = None,
                status: str = "completed", course_id: str | None = None,
                session_id: str | None = None, bp_systolic_max: int | None = None,
                bp_diastolic_max: int | None = None,
                adverse_events: list[str] | None = None) -> Clinic:
        at, date_only = _timestamp(started_at)
        self.con.execute(
            "INSERT INTO sessions (session_id, patient_id, protocol_id, started_at, "
            "started_date_only, course_id, status, bp_systolic_max, bp_diastolic_max, "
            "adverse_events, row_hash, load_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)",
            [session_id or f"S{next(_ids)}", patient_id, protocol_id or self.default_protocol,
             at, date_only, course_id,
             status, bp_systolic_max, bp_diastolic_max, adverse_events],
        )
        return self

    def sessions(self, *started: str, **kwargs: object) -> Clinic:
        for value in started:
            self.session(value, **kwargs)  # type: ignore[arg-type]
        return self

    def score(self, administered_at: str, total_score: float, patient_id: str = "X",
              instrument: str = "PHQ-9", timing: str | None = None,
              items: list[int] | None = None, assessment_id: str | None = None) -> Clinic:
        at, date_only = _timestamp(administered_at)
        self.con.execute(
            "INSERT INTO assessments (assessment_id, patient_id, instrument, administered_at, "
            "date_only, total_score, timing, items, row_hash, load_id) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0)",
            [assessment_id or f"A{next(_ids)}", patient_id, instrument, at, date_only,
             total_score, timing, items],
        )
        return self

    def load(self, file: str = "sessions.csv", sha256: str = "ab" * 32) -> Clinic:
        """One `loads` row (load 1, loaded on 2026-04-01: an as-of up to that day is allowed)."""
        self.con.execute(
            "INSERT INTO loads (load_id, file, table_name, format, encoding, sha256, rows_read, "
            "rows_loaded, duplicates, rejected, loaded_at, mode, added, corrected, unchanged, "
            "retired) VALUES (1, ?, 'sessions', 'csv', 'utf-8', ?, 1, 1, 0, 0, "
            "TIMESTAMP '2026-04-01 10:00', 'snapshot', 1, 0, 0, 0)",
            [file, sha256],
        )
        return self

    def outcomes(self, as_of: str | date = "2026-03-31") -> OutcomeFrames:
        day = date.fromisoformat(as_of) if isinstance(as_of, str) else as_of
        return compute_outcomes(self.con, day, self.config)

    def rows(self, as_of: str | date = "2026-03-31", instrument: str = "PHQ-9") -> list[dict]:
        """Course outcome rows of one instrument as plain dicts, in course order."""
        frame = self.outcomes(as_of).course_outcomes
        return frame.filter(frame["instrument"] == instrument).to_dicts()

    def close(self) -> None:
        self.con.close()


def worked_example(clinic: Clinic) -> Clinic:
    """SPEC §2 worked example: patient X, protocol IND6 (6 planned), as-of 2026-03-31."""
    clinic.protocol("IND6", planned_infusions=6)
    clinic.sessions("2026-02-02 09:00", "2026-02-04 09:00", "2026-02-06 09:00",
                    "2026-02-09 09:00", "2026-02-11 09:00", "2026-02-13 09:00")
    clinic.score("2026-01-26", 22, timing="pre")
    clinic.score("2026-02-02 08:30", 18, timing="pre")
    clinic.score("2026-02-02", 12, timing="post")
    clinic.score("2026-02-06 08:45", 10, timing="pre")
    clinic.score("2026-02-09 08:50", 8, timing="pre")
    clinic.score("2026-02-27", 7, timing="followup")
    clinic.score("2026-02-28", 6, timing="followup")
    return clinic


def make_clinic(tmp_path: Path, config: Config | None = None) -> Clinic:
    return Clinic(tmp_path / "clinic.duckdb", config)
