"""Every reject reason of SPEC §1 / issue "Foundation", each at the exact line it should name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PATIENTS, PROTOCOLS, copy_db, load, query, rejects, result, write

SESSIONS_OK = """\
session_id,patient_id,protocol_id,started_at,status
S1,P1,IND6,2026-02-02T09:00,completed
"""


# A case loads only the files it is about. What its rows refer to (protocols and patients of
# tests/conftest.py; for scores, also the session of SESSIONS_OK) comes from an earlier load,
# made once per module and copied: the load under test is load 2.


@pytest.fixture
def export(tmp_path: Path) -> Path:
    """Empty (unlike tests/conftest.py `export`): the case writes the files it is about."""
    (tmp_path / "export").mkdir()
    return tmp_path / "export"


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory, references_db: Path) -> dict[str, Path]:
    """Databases after an earlier load (copy them, do not write): "references" of protocols
    and patients (tests/conftest.py `references_db`), "with_session" of protocols, patients
    and SESSIONS_OK."""
    folder = tmp_path_factory.mktemp("with_session")
    for file, text in {"protocols.csv": PROTOCOLS, "patients.csv": PATIENTS,
                       "sessions.csv": SESSIONS_OK}.items():
        write(folder / "export", file, text)
    load(folder / "export", folder / "clinic.duckdb")
    return {"references": references_db, "with_session": folder / "clinic.duckdb"}


@pytest.fixture
def db(tmp_path: Path, earlier: dict[str, Path]) -> Path:
    """A copy of the earlier load of protocols and patients (load 1)."""
    return copy_db(earlier["references"], tmp_path / "clinic.duckdb")


@pytest.fixture
def scored_db(tmp_path: Path, earlier: dict[str, Path]) -> Path:
    """A copy of the earlier load of protocols, patients and SESSIONS_OK (load 1)."""
    return copy_db(earlier["with_session"], tmp_path / "clinic.duckdb")


def assessments(export, body: str):  # type: ignore[no-untyped-def]
    """assessments.csv of these rows, padded to the item columns; load it into `scored_db`."""
    header = "patient_id,instrument,administered_at,total_score,timing," + ",".join(
        f"item_{i}" for i in range(1, 10)
    )
    width = header.count(",") + 1
    padded = "".join(
        line + "," * (width - 1 - line.count(",")) + "\n" for line in body.splitlines()
    )
    return write(export, "assessments.csv", header + "\n" + padded)


def test_score_outside_instrument_range_is_rejected_at_its_line(export, scored_db):
    # line 1 header, line 2 fine, line 3 PHQ-9 total 31 > 27, line 4 GAD-7 22 > 21
    assessments(
        export,
        "P1,PHQ-9,2026-02-02T08:30,18,pre\nP1,PHQ-9,2026-02-03,31,\nP1,GAD-7,2026-02-03,22,\n",
    )
    load(export, scored_db)
    assert rejects(scored_db, "assessments.csv") == [
        ("assessments.csv", 3, "total_score", "score outside the PHQ-9 range 0–27"),
        ("assessments.csv", 4, "total_score", "score outside the GAD-7 range 0–21"),
    ]


def test_item_value_outside_item_range_is_rejected(export, scored_db):
    # line 2: item_4 = 4 but PHQ-9 items are 0-3 (the total 13 is their sum, so only the range fails)
    assessments(export, "P1,PHQ-9,2026-02-02T08:30,13,pre,1,1,1,4,1,1,1,2,1\n")
    load(export, scored_db)
    assert rejects(scored_db, "assessments.csv") == [
        ("assessments.csv", 2, "item_4", "item outside the PHQ-9 item range 0–3"),
    ]


def test_items_that_do_not_sum_to_total_are_rejected(export, scored_db):
    # line 2 items sum to 9 (all 1) but total says 12; line 3 sums to 9 = total: fine
    assessments(
        export,
        "P1,PHQ-9,2026-02-02T08:30,12,pre,1,1,1,1,1,1,1,1,1\n"
        "P1,PHQ-9,2026-02-03T08:30,9,pre,1,1,1,1,1,1,1,1,1\n",
    )
    report = load(export, scored_db)
    assert rejects(scored_db, "assessments.csv") == [
        (
            "assessments.csv",
            2,
            "total_score",
            "items do not add up to the total; correct the items or the total (items add up to 9)",
        ),
    ]
    assert result(report, "assessments.csv").loaded == 1


def test_qids_total_uses_domain_scoring_not_the_item_sum(export, scored_db):
    # QIDS-SR16 items: 1-4 = 3,1,0,0 (max 3) + 5 = 2 + 6-9 = 1,2,0,0 (max 2) + 10-14 = 1,1,1,1,1 (5)
    # + 15-16 = 0,3 (max 3) -> 3 + 2 + 2 + 5 + 3 = 15; the plain item sum would be 21.
    items = [3, 1, 0, 0, 2, 1, 2, 0, 0, 1, 1, 1, 1, 1, 0, 3]
    header = "patient_id,instrument,administered_at,total_score," + ",".join(
        f"item_{i}" for i in range(1, 17)
    )
    write(
        export,
        "assessments.csv",
        header
        + "\n"
        + "P1,QIDS-SR16,2026-02-02T08:00,15,"
        + ",".join(map(str, items))
        + "\n"
        + "P1,QIDS-SR16,2026-02-03T08:00,21,"
        + ",".join(map(str, items))
        + "\n",
    )
    load(export, scored_db)
    assert [(r[1], r[2]) for r in rejects(scored_db, "assessments.csv")] == [(3, "total_score")]
    assert "(items add up to 15, by QIDS-SR16 domain scoring)" in rejects(scored_db)[0][3]


def test_unparseable_impossible_and_future_dates_are_rejected(export, scored_db):
    assessments(
        export,
        "P1,PHQ-9,02/03/2026,10,\n"  # line 2: not ISO
        "P1,PHQ-9,2026-02-30,10,\n"  # line 3: no such day
        "P1,PHQ-9,2026-11-29T08:00,10,\n"  # line 4: day after the load day
        "P1,PHQ-9,2026-11-28T23:59,10,\n",
    )  # line 5: the load day itself: fine
    report = load(export, scored_db)
    got = rejects(scored_db, "assessments.csv")
    assert [(r[1], r[2]) for r in got] == [
        (2, "administered_at"),
        (3, "administered_at"),
        (4, "administered_at"),
    ]
    assert got[0][3].startswith("unparseable date")
    assert got[1][3].startswith("impossible date")
    assert got[2][3].startswith("date is later than the day of the load (2026-11-28)")
    assert result(report, "assessments.csv").loaded == 1


def test_unknown_instrument_is_rejected_and_loose_names_are_matched(export, scored_db):
    assessments(
        export,
        "P1,PHQ9,2026-02-02,10,\n"  # line 2 loose spelling: PHQ-9
        "P1,phq 9,2026-02-03,11,\n"  # line 3 loose spelling: PHQ-9
        "P1,PHQ-2,2026-02-04,3,\n",
    )  # line 4 unknown instrument
    load(export, scored_db)
    got = rejects(scored_db, "assessments.csv")
    assert [(r[1], r[2]) for r in got] == [(4, "instrument")]
    assert got[0][3].startswith("unknown instrument; correct the name or add the instrument under "
                                "[instruments] in the config (known: BDI-II, GAD-7, HAM-D17, MADRS")
    from tests.conftest import query

    assert query(scored_db, "SELECT DISTINCT instrument FROM assessments") == [("PHQ-9",)]


def test_unknown_patient_is_rejected_when_patients_file_present(export, db):
    write(export, "sessions.csv", SESSIONS_OK + "S2,P9,IND6,2026-02-04T09:00,completed\n")
    assessments_body = "P9,PHQ-9,2026-02-02,10,\n"
    header = "patient_id,instrument,administered_at,total_score"
    write(export, "assessments.csv", header + "\n" + assessments_body.rstrip(",\n") + "\n")
    load(export, db)
    assert [(r[0], r[1], r[2]) for r in rejects(db)] == [
        ("assessments.csv", 2, "patient_id"),
        ("sessions.csv", 3, "patient_id"),
    ]
    assert all(r[3].startswith("unknown patient") for r in rejects(db))


def test_patients_are_derived_when_no_patients_file(export, tmp_path):
    db = tmp_path / "fresh.duckdb"  # a new database: no earlier load
    write(export, "protocols.csv", PROTOCOLS)  # and no patients file
    write(export, "sessions.csv", SESSIONS_OK + "S2,P9,IND6,2026-02-04T09:00,completed\n")
    report = load(export, db)
    assert result(report, "sessions.csv").loaded == 2
    from tests.conftest import query

    assert query(db, "SELECT patient_id, source FROM patients ORDER BY 1") == [
        ("P1", "derived"),
        ("P9", "derived"),
    ]


def test_unknown_protocol_is_rejected(export, db):
    write(export, "sessions.csv", SESSIONS_OK + "S2,P1,TW4,2026-02-04T09:00,completed\n")
    load(export, db)
    assert [r[1:] for r in rejects(db)] == [
        (3, "protocol_id", "unknown protocol: not in the protocols file; add it or correct the id")
    ]


def test_reference_to_a_rejected_patient_says_where_that_row_is(export, tmp_path):
    db = tmp_path / "fresh.duckdb"  # a new database: no earlier load
    # a first load: P2's own row is rejected in this load, not kept from an earlier one
    write(export, "protocols.csv", PROTOCOLS)
    write(export, "patients.csv", "patient_id,birth_date\nP1,1980-01-01\nP2,1980-02-31\n")
    write(export, "sessions.csv", SESSIONS_OK + "S2,P2,IND6,2026-02-04T09:00,completed\n")
    load(export, db)
    assert rejects(db, "sessions.csv") == [
        (
            "sessions.csv",
            3,
            "patient_id",
            "the patient's own row was rejected; fix that row first (patients.csv line 3)",
        )
    ]


def test_conflicting_duplicate_id_in_one_file_rejects_every_copy(export, db):
    write(
        export,
        "sessions.csv",
        SESSIONS_OK
        + "S2,P1,IND6,2026-02-04T09:00,completed\n"  # line 3
        + "S2,P1,IND6,2026-02-06T09:00,completed\n"  # line 4: same id, other date
        + "S1,P1,IND6,2026-02-02T09:00,completed\n",
    )  # line 5: exact copy of line 2
    report = load(export, db)
    got = rejects(db, "sessions.csv")
    assert [(r[1], r[2]) for r in got] == [(3, "session_id"), (4, "session_id")]
    assert got[0][3] == (
        "conflicting duplicate id: the same id is on other lines with different values; "
        "keep one and reload (lines 3, 4)")
    f = result(report, "sessions.csv")
    assert (f.read, f.loaded, f.duplicates, f.rejected) == (4, 1, 1, 2)


def test_an_id_loaded_before_with_other_values_is_a_correction_not_a_conflict(scored_db, tmp_path):
    # scored_db: SESSIONS_OK loaded before, with protocols and patients
    later = tmp_path / "later"
    write(
        later,
        "sessions.csv",
        "session_id,patient_id,protocol_id,started_at\nS1,P1,IND6,2026-02-03T09:00\n",
    )
    report = load(later, scored_db, allow_retire=True)
    assert rejects(scored_db, "sessions.csv") == []
    f = result(report, "sessions.csv")
    assert (f.read, f.added, f.corrected, f.rejected) == (1, 0, 1, 0)
    assert query(scored_db, "SELECT started_at::VARCHAR FROM sessions WHERE session_id = 'S1'") == [
        ("2026-02-03 09:00:00",)]


def test_exact_duplicate_rows_are_counted_not_rejected(export, scored_db):
    row = "P1,PHQ-9,2026-02-02T08:30,18,pre\n"
    assessments(export, row + row + row)
    report = load(export, scored_db)
    f = result(report, "assessments.csv")
    assert (f.read, f.loaded, f.duplicates, f.rejected) == (3, 1, 2, 0)
    assert rejects(scored_db) == []


def test_malformed_lines_are_rejected_with_their_physical_line(export, db):
    write(
        export,
        "sessions.csv",
        SESSIONS_OK
        + "\n"  # line 3: blank, skipped, not a row
        + "S2,P1,IND6\n"  # line 4: too few fields
        + "S3,P1,IND6,2026-02-06T09:00,completed,x\n"  # line 5: too many fields
        + "S4,P1,IND6,2026-02-09T09:00,nonsense\n",
    )  # line 6: unknown status
    report = load(export, db)
    got = rejects(db, "sessions.csv")
    assert [r[1] for r in got] == [4, 5, 6]
    assert got[0][3].startswith("the line has fewer fields than the header")
    assert got[1][3].startswith("the line has more fields than the header")
    assert got[2][2:] == ("status", "unknown status; use completed, aborted or cancelled")
    f = result(report, "sessions.csv")
    assert (f.read, f.loaded, f.rejected) == (4, 1, 3)


def test_field_spanning_lines_keeps_exact_line_numbers(export, db):
    # The quoted adverse_events field spans lines 3-4, so S3 starts on line 5 and is bad there.
    write(
        export,
        "sessions.csv",
        "session_id,patient_id,protocol_id,started_at,adverse_events\n"
        "S1,P1,IND6,2026-02-02T09:00,\n"
        'S2,P1,IND6,2026-02-04T09:00,"nausea;\ndissociation"\n'
        "S3,P1,IND6,2026-13-06T09:00,\n",
    )
    report = load(export, db)
    assert [(r[1], r[2]) for r in rejects(db, "sessions.csv")] == [(5, "started_at")]
    assert result(report, "sessions.csv").loaded == 2


def test_value_problems_on_a_line_are_all_listed_and_the_line_counts_once(export, db):
    write(
        export,
        "sessions.csv",
        "session_id,patient_id,protocol_id,started_at,bp_systolic_max,weight_kg\n"
        "S1,P1,IND6,2026-02-02T09:00,400,eighty\n",
    )
    report = load(export, db)
    got = rejects(db, "sessions.csv")
    assert [(r[1], r[2]) for r in got] == [(2, "bp_systolic_max"), (2, "weight_kg")]
    assert result(report, "sessions.csv").rejected == 1
