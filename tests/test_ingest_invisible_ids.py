"""Ids holding invisible or format characters (issue 15, item 7): one rule refuses every class,
in CSV and in Parquet alike (docs/bad-input-values.md, "Invisible characters in ids").

Each format is loaded once with every case on its own line, so the whole corpus costs two
ingests. The day of the load is 2026-11-28 (tests/conftest.py); patients P1 and P2 exist.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import load, query
from tests.test_ingest_corpus_values import INVISIBLE_ID, reconcile, rejected

# (what it is, the session_id written). Each id looks like an ordinary one, or like nothing.
REFUSED = [
    ("U+061C arabic letter mark (Cf)", "S\u061c1"),
    ("U+3164 hangul filler", "S\u31641"),
    ("U+FE0F variation selector-16", "S1\ufe0f"),
    ("U+034F combining grapheme joiner", "S\u034f1"),
    ("U+E0001 language tag", "S\U000e00011"),
    ("U+E0041 tag latin capital A", "S1\U000e0041"),
    ("U+115F hangul choseong filler", "S\u115f1"),
    ("U+FFA0 halfwidth hangul filler", "S\uffa01"),
    ("U+2800 braille pattern blank", "S\u28001"),
    ("U+1160 hangul jungseong filler", "\u1160"),
    ("U+E0100 variation selector-17", "S1\U000e0100"),
    ("U+180B mongolian free variation selector", "S\u180b1"),
    ("U+2066 left-to-right isolate (Cf)", "S\u20661"),
    ("U+00AD soft hyphen (Cf)", "S\u00ad1"),
    ("U+200B zero-width space (Cf)", "S\u200b1"),
    ("U+2028 line separator", "S\u20281"),
    ("U+0301 only combining marks", "\u0301\u0301"),
    ("U+20DD only an enclosing mark", "\u20dd"),
]
# Visible ids that share a code point class with the refused ones: they load.
ACCEPTED = [
    ("e + U+0301 combining acute (decomposed é)", "Jose\u0301"),
    ("hangul syllables", "\ud658\uc7901"),
    ("CJK", "\u60a3\u80051"),
    ("a plain space inside", "S 1"),
]
HEADER = ["session_id", "patient_id", "protocol_id", "started_at"]


def _rows() -> list[list[str]]:
    """Line 2 on: every refused id, then every accepted one, each its own session of P1; last
    a patient_id holding a braille blank (refused once, not also as an unknown patient)."""
    ids = [sid for _, sid in REFUSED + ACCEPTED]
    rows = [[sid, "P1", "IND6", f"2026-02-{day:02d}T09:00"] for day, sid in enumerate(ids, 1)]
    rows.append(["S-last", "P\u28001", "IND6", "2026-03-01T09:00"])
    return rows


def _expected_rejects() -> list[tuple[int, str, str, str]]:
    lines = [(line, "session_id", sid, INVISIBLE_ID) for line, (_, sid) in enumerate(REFUSED, 2)]
    last = len(_rows()) + 1
    return [*lines, (last, "patient_id", "P\u28001", INVISIBLE_ID)]


def _write_csv(folder: Path) -> Path:
    text = ",".join(HEADER) + "\n" + "".join(",".join(r) + "\n" for r in _rows())
    (folder / "sessions.csv").write_text(text, encoding="utf-8")
    return folder


def _write_parquet(folder: Path) -> Path:
    rows = _rows()
    frame = pl.DataFrame({name: [r[i] for r in rows] for i, name in enumerate(HEADER)})
    frame = frame.with_columns(pl.col("started_at").str.to_datetime("%Y-%m-%dT%H:%M"))
    frame.write_parquet(folder / "sessions.parquet")
    return folder


@pytest.mark.parametrize("writer", [_write_csv, _write_parquet], ids=["csv", "parquet"])
def test_every_class_of_invisible_character_in_an_id_is_refused(export, db, writer):
    file = "sessions.csv" if writer is _write_csv else "sessions.parquet"
    report = load(writer(export), db)
    assert rejected(db, file) == _expected_rejects()
    loaded = {r[0] for r in query(db, "SELECT session_id FROM sessions")}
    assert loaded == {sid for _, sid in ACCEPTED}
    read = len(_rows())
    assert reconcile(report, db, file) == (read, len(ACCEPTED), 0, len(REFUSED) + 1)


def test_the_rule_is_the_same_for_other_id_columns_and_tables(export, db, tmp_path):
    # One case per class in an assessment id, a protocol id and a member id: the same macro.
    shutil.rmtree(export)
    export.mkdir()
    (export / "protocols.csv").write_text(
        "protocol_id,name,planned_infusions,planned_days\n"
        "IND6,Six,6,12\n"
        "IND\u31646,Filler,6,12\n", encoding="utf-8")
    (export / "patients.csv").write_text(
        "patient_id,member_id\nP1,M1\nP2,M\U000e00412\n", encoding="utf-8")
    (export / "sessions.csv").write_text(
        "session_id,patient_id,protocol_id,started_at\nS1,P1,IND6,2026-02-02T09:00\n",
        encoding="utf-8")
    (export / "assessments.csv").write_text(
        "assessment_id,patient_id,instrument,administered_at,total_score\n"
        "A1\u061c,P1,PHQ-9,2026-02-02,10\n"
        "\u0301,P1,PHQ-9,2026-02-03,10\n", encoding="utf-8")
    load(export, db)
    assert rejected(db, "protocols.csv") == [(3, "protocol_id", "IND\u31646", INVISIBLE_ID)]
    assert rejected(db, "patients.csv") == [(3, "member_id", "M\U000e00412", INVISIBLE_ID)]
    assert rejected(db, "assessments.csv") == [
        (2, "assessment_id", "A1\u061c", INVISIBLE_ID),
        (3, "assessment_id", "\u0301", INVISIBLE_ID),
    ]
