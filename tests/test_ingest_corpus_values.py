"""Bad-input corpus, value level (issue 9): every odd value loads as documented or is rejected.

Each case is a row of a tiny export written here. A test asserts what the analyst sees: the
typed value in the canonical table, or the reject row (line, column, value, reason), and the
reconciliation `read = loaded + duplicates + rejected` in `loads` against the lines in
`rejects`. The cases of one rule share one export, one row each (on its own line, with its own
id, day or score so that no two rows are duplicates), loaded once per module: a case reads its
own line. The rules are listed in docs/bad-input-values.md. The day of the load is 2026-11-28
(tests/conftest.py); patient P1 was born on 1980-03-04.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
import xlsxwriter

from pipeline.ingest import LoadReport
from tests import conftest
from tests.conftest import PATIENTS, PROTOCOLS, load, result, write

SESSIONS_OK = "session_id,patient_id,protocol_id,started_at\nS1,P1,IND6,2026-02-02T09:00\n"
SCORE_HEADER = "patient_id,instrument,administered_at,total_score"
ITEM_HEADER = SCORE_HEADER + ",timing," + ",".join(f"item_{i}" for i in range(1, 10))
PATIENT_IDS = ("P1", "P2")

NAN = (
    "not a number (NaN, written by the exporting system for a missing or failed value); "
    "{what} must be a number: correct it in the export"
)
INF = "infinite or too large to be a value (Inf, 1e400 …); {what} must be a finite number: check the export"
EXCEL = (
    "unparseable date: looks like an Excel serial date (a day count, not a date); format the "
    "column as a date (YYYY-MM-DD) in the workbook and export again (would be {date} in Excel's "
    "1900 date system)"
)
AMBIGUOUS = (
    "unparseable date: not an ISO date (YYYY-MM-DD); day-first and month-first dates cannot be "
    "told apart, so export the column as YYYY-MM-DD (could be {readings})"
)
BEFORE_BIRTH = (
    "dated before the patient's date of birth (patients file); check the year of this date and "
    "of the date of birth"
)
INVISIBLE_ID = (
    "the id contains an invisible or formatting character (zero-width, direction or variation "
    "mark, filler or blank, non-breaking space, tab or line break) or only combining marks; "
    "retype the id in the export"
)


# ---------------------------------------------------------------- helpers


# A read-only connection to each batch database (below), opened once: a batch is only read
# after its load, by many cases, and opening the file costs more than the queries.
READERS: dict[Path, duckdb.DuckDBPyConnection] = {}


@pytest.fixture(scope="module", autouse=True)
def close_readers() -> Iterator[None]:
    yield
    for con in READERS.values():
        con.close()
    READERS.clear()


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    """tests/conftest.py `query`; through the open connection for a batch database."""
    con = READERS.get(db)
    if con is None:
        return conftest.query(db, sql, params)
    return con.execute(sql, params or []).fetchall()


def scores(export: Path, *rows: str, header: str = SCORE_HEADER) -> Path:
    """assessments.csv with these rows (line 2 on); load it into `scored_db`, which holds the
    one good session of SESSIONS_OK."""
    write(export, "assessments.csv", header + "\n" + "".join(r + "\n" for r in rows))
    return export


def sessions(export: Path, header: str, *rows: str) -> Path:
    """sessions.csv with this header and these rows (line 2 on)."""
    write(export, "sessions.csv", header + "\n" + "".join(r + "\n" for r in rows))
    return export


def rejected(db: Path, file: str) -> list[tuple[int, str | None, str | None, str]]:
    """(line, column, value, reason) of the file's rejects in the latest load, in line order.

    Also pins the rule that a reason never names a patient (the value column may hold one).
    """
    rows = query(
        db,
        'SELECT line, "column", value, reason FROM rejects WHERE file = ? '
        "AND load_id = (SELECT max(load_id) FROM loads) ORDER BY line, \"column\"",
        [file],
    )
    for row in rows:
        assert not any(pid in row[3] for pid in PATIENT_IDS), row
    return rows


def rejected_at(db: Path, file: str, line: int) -> list[tuple[int, str | None, str | None, str]]:
    """The rejects of one line (one case of a batch)."""
    return [row for row in rejected(db, file) if row[0] == line]


# A load reads only the file its cases are about. What the rows refer to (protocols and patients
# of tests/conftest.py; for scores, also the one good session of SESSIONS_OK) comes from an
# earlier load, made once per module and copied: the load under test is load 2.


@dataclass(frozen=True)
class Earlier:
    """The databases after an earlier load, made once per module (copy them, do not write)."""

    tmp_path_factory: pytest.TempPathFactory
    references: Path  # protocols and patients
    with_session: Path  # protocols, patients and SESSIONS_OK


@pytest.fixture
def export(empty_export: Path) -> Path:
    """Empty (unlike tests/conftest.py `export`): the case writes the files it is about."""
    return empty_export


@pytest.fixture(scope="module")
def earlier(tmp_path_factory: pytest.TempPathFactory, references_db: Path) -> Earlier:
    """tests/conftest.py `references_db`, and a load of the same with SESSIONS_OK."""
    folder = tmp_path_factory.mktemp("earlier")
    for name, text in (("protocols.csv", PROTOCOLS), ("patients.csv", PATIENTS),
                       ("sessions.csv", SESSIONS_OK)):
        write(folder / "export", name, text)
    load(folder / "export", folder / "clinic.duckdb")
    return Earlier(tmp_path_factory, references_db, folder / "clinic.duckdb")


@pytest.fixture
def db(tmp_path: Path, earlier: Earlier) -> Path:
    """A copy of the earlier load of protocols and patients (load 1)."""
    return conftest.copy_db(earlier.references, tmp_path / "clinic.duckdb")


@pytest.fixture
def scored_db(tmp_path: Path, earlier: Earlier) -> Path:
    """A copy of the earlier load of protocols, patients and the session of SESSIONS_OK."""
    return conftest.copy_db(earlier.with_session, tmp_path / "clinic.duckdb")


@dataclass(frozen=True)
class Batch:
    """One export holding every case of a rule, loaded once."""

    db: Path
    report: LoadReport


def load_batch(earlier_db: Path, folder: Path, files: dict[str, str]) -> Batch:
    """`files` (name -> text) loaded into a copy of `earlier_db`."""
    for name, text in files.items():
        write(folder / "export", name, text)
    db = conftest.copy_db(earlier_db, folder / "clinic.duckdb")
    batch = Batch(db, load(folder / "export", db))
    READERS[db] = duckdb.connect(str(db), read_only=True)
    return batch


def score_batch(earlier: Earlier, rows: list[str], header: str = SCORE_HEADER) -> Batch:
    """assessments.csv with `rows` (line 2 on), loaded after the one good session."""
    folder = earlier.tmp_path_factory.mktemp("values")
    return load_batch(earlier.with_session, folder, {"assessments.csv": lines(header, rows)})


def session_batch(earlier: Earlier, header: str, rows: list[str]) -> Batch:
    """sessions.csv with `header` and `rows` (line 2 on)."""
    folder = earlier.tmp_path_factory.mktemp("values")
    return load_batch(earlier.references, folder, {"sessions.csv": lines(header, rows)})


def day(i: int) -> str:
    """A distinct day per case (2026-01-02 + i), so that no two rows of a batch are duplicates."""
    return (dt.date(2026, 1, 2) + dt.timedelta(days=i)).isoformat()


def lines(header: str, rows: list[str]) -> str:
    return header + "\n" + "".join(row + "\n" for row in rows)


def reconcile(report: LoadReport, db: Path, file: str) -> tuple[int, int, int, int]:
    """(read, loaded, duplicates, rejected) from `loads`, checked to add up and to agree with
    the printed report and with the lines in `rejects`."""
    [(read, loaded, unchanged, duplicates, rejects)] = query(
        db,
        "SELECT rows_read, rows_loaded, unchanged, duplicates, rejected FROM loads WHERE file = ? "
        "AND load_id = (SELECT max(load_id) FROM loads)",
        [file],
    )
    assert read == loaded + unchanged + duplicates + rejects
    [(lines,)] = query(
        db,
        "SELECT count(DISTINCT line) FROM rejects WHERE file = ? "
        "AND load_id = (SELECT max(load_id) FROM loads)",
        [file],
    )
    assert lines == rejects
    f = result(report, file)
    assert (f.read, f.loaded, f.duplicates, f.rejected) == (read, loaded, duplicates, rejects)
    return read, loaded, duplicates, rejects


# ---------------------------------------------------------------- 1 scores and numbers


TOTALS_NOT_SCORES = [
        ("NaN", NAN.format(what="the total score")),
        ("nan", NAN.format(what="the total score")),
        ("Inf", INF.format(what="the total score")),
        ("-inf", INF.format(what="the total score")),
        ("1e400", INF.format(what="the total score")),  # overflows a double: infinite
        ("-3", "score outside the PHQ-9 range 0–27"),
        (
            "12.5",
            "not a whole number; a PHQ-9 total is a sum of whole-number items "
            "(12.0 is read as 12, 12.5 is not a score)",
        ),
        ("", "required value is empty; fill it in the export"),
        ("twelve", "not a number; the total score must be a number"),
]


@pytest.fixture(scope="module")
def totals_not_scores(earlier: Earlier) -> Batch:
    # line 2 is a good score; lines 3 on hold the values under test
    return score_batch(earlier, ["P1,PHQ-9,2026-02-02T08:30,18"] + [
        f"P1,PHQ-9,2026-02-03,{total}" for total, _ in TOTALS_NOT_SCORES])


@pytest.mark.parametrize(("line", "total", "reason"),
                         [(i + 3, *case) for i, case in enumerate(TOTALS_NOT_SCORES)])
def test_total_score_that_is_not_a_score_is_rejected_at_its_line(totals_not_scores, line, total,
                                                                 reason):
    batch = totals_not_scores
    assert rejected_at(batch.db, "assessments.csv", line) == [
        (line, "total_score", total or None, reason)]
    n = len(TOTALS_NOT_SCORES)
    assert reconcile(batch.report, batch.db, "assessments.csv") == (n + 1, 1, 0, n)


LOOSE_TOTALS = ["12.0", "12 ", " 12", "\u00a012\u00a0", "+12", "012"]


@pytest.fixture(scope="module")
def loose_totals(earlier: Earlier) -> Batch:
    return score_batch(earlier, [f"P1,PHQ-9,{day(i)},{total}"
                                 for i, total in enumerate(LOOSE_TOTALS)])


@pytest.mark.parametrize(("i", "total"), list(enumerate(LOOSE_TOTALS)))
def test_whole_number_total_written_loosely_loads_as_that_number(loose_totals, i, total):
    batch = loose_totals
    assert query(batch.db, "SELECT total_score FROM assessments WHERE administered_at = ?",
                 [day(i)]) == [(12.0,)]
    n = len(LOOSE_TOTALS)
    assert reconcile(batch.report, batch.db, "assessments.csv") == (n, n, 0, 0)


def test_fractional_total_of_an_instrument_without_item_scoring_loads(export, scored_db, tmp_path):
    # A configured instrument with scoring = "none" (not a sum of items) may have any total.
    from pipeline.config import load_config
    from pipeline.ingest import ingest
    from tests.conftest import LOAD_DAY

    config_file = write(
        tmp_path,
        "config.toml",
        '[instruments."VAS"]\ntotal_min = 0\ntotal_max = 10\nitem_count = 0\nitem_min = 0\n'
        'item_max = 0\nremission = 2\ncaseness = 5\nreliable_change = 2\nscoring = "none"\n',
    )
    scores(export, "P1,VAS,2026-02-03,6.5")
    report = ingest(export, scored_db, load_config(config_file), today=LOAD_DAY)
    assert query(scored_db, "SELECT instrument, total_score FROM assessments") == [("VAS", 6.5)]
    assert reconcile(report, scored_db, "assessments.csv") == (1, 1, 0, 0)


ITEMS_NOT_SCORES = [
        ("NaN", NAN.format(what="an item")),
        ("nan", NAN.format(what="an item")),
        ("Inf", INF.format(what="an item")),
        ("-inf", INF.format(what="an item")),
        ("1e400", INF.format(what="an item")),
        ("-1", "item outside the PHQ-9 item range 0–3"),
        ("4", "item outside the PHQ-9 item range 0–3"),
        ("1.5", "item is not a whole number; PHQ-9 items are whole numbers 0–3"),
        ("two", "not a number; PHQ-9 items are whole numbers 0–3"),
]


@pytest.fixture(scope="module")
def items_not_scores(earlier: Earlier) -> Batch:
    # items 1,1,<item>,1,1,1,1,1,1; the total 9 would fit an item_3 of 1
    return score_batch(earlier, [f"P1,PHQ-9,{day(i)},9,pre,1,1,{item},1,1,1,1,1,1"
                                 for i, (item, _) in enumerate(ITEMS_NOT_SCORES)],
                       header=ITEM_HEADER)


@pytest.mark.parametrize(("line", "item", "reason"),
                         [(i + 2, *case) for i, case in enumerate(ITEMS_NOT_SCORES)])
def test_item_value_that_is_not_an_item_score_is_rejected_at_its_column(items_not_scores, line,
                                                                        item, reason):
    batch = items_not_scores
    assert rejected_at(batch.db, "assessments.csv", line) == [(line, "item_3", item, reason)]
    n = len(ITEMS_NOT_SCORES)
    assert reconcile(batch.report, batch.db, "assessments.csv") == (n, 0, 0, n)


LOOSE_ITEMS = ["1.0", " 1 ", "1\u00a0"]


@pytest.fixture(scope="module")
def loose_items(earlier: Earlier) -> Batch:
    return score_batch(earlier, [f"P1,PHQ-9,{day(i)},9,pre,1,1,{item},1,1,1,1,1,1"
                                 for i, item in enumerate(LOOSE_ITEMS)],
                       header=ITEM_HEADER)


@pytest.mark.parametrize(("i", "item"), list(enumerate(LOOSE_ITEMS)))
def test_whole_number_item_written_loosely_loads_as_that_number(loose_items, i, item):
    batch = loose_items
    assert query(batch.db, "SELECT items FROM assessments WHERE administered_at = ?",
                 [day(i)]) == [([1] * 9,)]
    n = len(LOOSE_ITEMS)
    assert reconcile(batch.report, batch.db, "assessments.csv") == (n, n, 0, 0)


SESSION_NUMBERS = {  # column: (plausible range, what the reason calls the value)
    "dose_mg_per_kg": ("0–5", "a ketamine dose in mg/kg"),
    "weight_kg": ("20–400", "weight in kg"),
    "dose_mg": ("0–2000", "a total dose in mg"),
    "duration_minutes": ("0–600", "infusion minutes"),
    "bp_systolic_max": ("50–300", "systolic blood pressure (mmHg)"),
    "bp_diastolic_max": ("20–200", "diastolic blood pressure (mmHg)"),
}


BAD_SESSION_NUMBERS = [(column, value) for column in SESSION_NUMBERS
                       for value in ("NaN", "nan", "Inf", "-inf", "1e400", "-1")]


# After the bad values (lines 3 to 38), lines 39-40: the edges of the plausible ranges (300.0 is
# the whole 300); line 41: a fractional blood pressure.
EDGE_SESSIONS = [
    "S37,P1,IND6,2026-03-02T09:00,0,20,0,0,50,20",
    "S38,P1,IND6,2026-03-04T09:00,5,400,2000,600,300.0,200",
    "S39,P1,IND6,2026-03-06T09:00,,,,,120.5,",
]
EDGE_LINE = len(BAD_SESSION_NUMBERS) + 3
# read = the empty line 2, the bad values, the edges and the fraction; loaded: line 2 and the
# edges; rejected: the bad values and the fraction
SESSION_NUMBER_COUNTS = (len(BAD_SESSION_NUMBERS) + 4, 3, 0, len(BAD_SESSION_NUMBERS) + 1)


@pytest.fixture(scope="module")
def session_numbers(earlier: Earlier) -> Batch:
    # line 2: every number column left empty is fine; lines 3 on: one bad value each
    columns = list(SESSION_NUMBERS)
    rows = ["S0,P1,IND6,2026-01-01T09:00" + "," * len(columns)]
    for i, (column, value) in enumerate(BAD_SESSION_NUMBERS):
        cells = [value if c == column else "" for c in columns]
        rows.append(f"S{i + 1},P1,IND6,{day(i)}T09:00," + ",".join(cells))
    return session_batch(earlier,
                         "session_id,patient_id,protocol_id,started_at," + ",".join(columns),
                         rows + EDGE_SESSIONS)


@pytest.mark.parametrize(("at", "column", "value"),
                         [(i + 3, *case) for i, case in enumerate(BAD_SESSION_NUMBERS)])
def test_non_finite_or_negative_session_number_is_rejected_naming_the_range(
    session_numbers, at, column, value
):
    batch = session_numbers
    plausible, what = SESSION_NUMBERS[column]
    [(line, col, raw, reason)] = rejected_at(batch.db, "sessions.csv", at)
    assert (line, col, raw) == (at, column, value)
    if value == "-1":
        assert reason.startswith(f"outside the plausible range {plausible} for {what}")
    elif value.lower().endswith("nan"):
        assert reason == NAN.format(what=what)
    else:
        assert reason == INF.format(what=what)
    assert reconcile(batch.report, batch.db, "sessions.csv") == SESSION_NUMBER_COUNTS


def test_session_numbers_at_the_edges_of_the_plausible_ranges_load(session_numbers):
    batch = session_numbers
    assert query(
        batch.db,
        "SELECT dose_mg_per_kg, weight_kg, dose_mg, duration_minutes, bp_systolic_max, "
        "bp_diastolic_max FROM sessions WHERE session_id IN ('S37', 'S38') ORDER BY session_id",
    ) == [(0.0, 20.0, 0.0, 0.0, 50, 20), (5.0, 400.0, 2000.0, 600.0, 300, 200)]
    assert reconcile(batch.report, batch.db, "sessions.csv") == SESSION_NUMBER_COUNTS


def test_fractional_blood_pressure_is_rejected_not_rounded(session_numbers):
    batch = session_numbers
    assert rejected_at(batch.db, "sessions.csv", EDGE_LINE + 2) == [
        (
            EDGE_LINE + 2,
            "bp_systolic_max",
            "120.5",
            "not a whole number; systolic blood pressure (mmHg) must be a whole number",
        )
    ]
    assert reconcile(batch.report, batch.db, "sessions.csv") == SESSION_NUMBER_COUNTS


def test_fractional_planned_infusions_is_rejected_not_rounded(export, tmp_path):
    db = tmp_path / "fresh.duckdb"  # a new database: no earlier load
    # A cast to INTEGER would have read 6.5 as 7; planned infusions are counted.
    write(
        export,
        "protocols.csv",
        "protocol_id,name,planned_infusions,planned_days\nIND6,six,6.0,12\nIND7,seven,6.5,14\n",
    )
    report = load(export, db)
    assert query(db, "SELECT protocol_id, planned_infusions FROM protocols") == [("IND6", 6)]
    assert rejected(db, "protocols.csv") == [
        (3, "planned_infusions", "6.5",
         "not a whole number; planned infusions must be a whole number")
    ]
    assert reconcile(report, db, "protocols.csv") == (2, 1, 0, 1)


# ---------------------------------------------------------------- 2 item columns on some rows


ITEM_SETS = [
    "P1,PHQ-9,2026-02-03,9,pre,1,1,1,1,1,1,1,1,1",  # line 2: every item
    "P1,PHQ-9,2026-02-04,14,pre,,,,,,,,,",  # line 3: no item
    "P1,PHQ-9,2026-02-05,7,pre,1,1,,1,1,1,,1,1",  # line 4: items 3 and 7 left empty
    "P1,GAD-7,2026-02-03,7,post,1,1,1,1,1,1,1,,",  # line 5: a GAD-7, 7 items of the 9 columns
]
# read 4 = loaded 3 (lines 2, 3, 5) + rejected 1 (line 4)
ITEM_SETS_COUNTS = (4, 3, 0, 1)


@pytest.fixture(scope="module")
def item_sets(earlier: Earlier) -> Batch:
    return score_batch(earlier, ITEM_SETS, header=ITEM_HEADER)


def test_rows_with_all_items_load_their_items(item_sets):
    assert query(item_sets.db, "SELECT items FROM assessments WHERE instrument = 'PHQ-9' "
                               "AND administered_at = ?", ["2026-02-03"]) == [([1] * 9,)]
    assert reconcile(item_sets.report, item_sets.db, "assessments.csv") == ITEM_SETS_COUNTS


def test_rows_with_no_items_load_the_total_with_items_null(item_sets):
    assert query(item_sets.db, "SELECT total_score, items FROM assessments "
                               "WHERE administered_at = ?", ["2026-02-04"]) == [(14.0, None)]
    assert reconcile(item_sets.report, item_sets.db, "assessments.csv") == ITEM_SETS_COUNTS


def test_rows_with_some_items_are_rejected_naming_the_missing_items(item_sets):
    # line 2 complete, line 3 none, line 4 items 3 and 7 left empty: only line 4 is rejected
    assert rejected(item_sets.db, "assessments.csv") == [
        (
            4,
            "item_3",
            None,
            "incomplete items: give all 9 PHQ-9 items or none; the total cannot be checked "
            "against a partial set (missing: items 3, 7)",
        )
    ]
    assert reconcile(item_sets.report, item_sets.db, "assessments.csv") == ITEM_SETS_COUNTS


def test_shorter_instrument_in_a_wider_item_file_loads_its_own_items(item_sets):
    # GAD-7 has 7 items; item_8 and item_9 of a 9-column file stay empty
    assert query(item_sets.db, "SELECT items FROM assessments WHERE instrument = 'GAD-7'") == [
        ([1] * 7,)]
    assert reconcile(item_sets.report, item_sets.db, "assessments.csv") == ITEM_SETS_COUNTS


def test_items_missing_because_the_file_lacks_their_columns_are_named(export, scored_db):
    # The file has item_1..item_7 (a GAD-7 layout): a PHQ-9 with items lacks items 8 and 9.
    header = SCORE_HEADER + "," + ",".join(f"item_{i}" for i in range(1, 8))
    report = load(
        scores(
            export,
            "P1,GAD-7,2026-02-03,7,1,1,1,1,1,1,1",
            "P1,PHQ-9,2026-02-03,7,1,1,1,1,1,1,1",
            "P1,PHQ-9,2026-02-04,12,,,,,,,",
            header=header,
        ),
        scored_db,
    )
    assert rejected(scored_db, "assessments.csv") == [
        (
            3,
            "item_8",
            None,
            "incomplete items: give all 9 PHQ-9 items or none; the total cannot be checked "
            "against a partial set (missing: items 8, 9)",
        )
    ]
    assert query(scored_db, "SELECT instrument, items FROM assessments ORDER BY administered_at") == [
        ("GAD-7", [1] * 7),
        ("PHQ-9", None),
    ]
    assert reconcile(report, scored_db, "assessments.csv") == (3, 2, 0, 1)


# ---------------------------------------------------------------- 3 Excel serial dates


EXCEL_SERIALS = [("46023", "2026-01-01"), ("46023.375", "2026-01-01 09:00")]


@pytest.fixture(scope="module")
def excel_serials(earlier: Earlier) -> Batch:
    return score_batch(earlier, [f"P1,PHQ-9,{serial},12" for serial, _ in EXCEL_SERIALS])


@pytest.mark.parametrize(("line", "serial", "date"),
                         [(i + 2, *case) for i, case in enumerate(EXCEL_SERIALS)])
def test_excel_serial_date_is_rejected_saying_what_date_it_would_be(excel_serials, line, serial,
                                                                   date):
    batch = excel_serials
    assert rejected_at(batch.db, "assessments.csv", line) == [
        (line, "administered_at", serial, EXCEL.format(date=date))
    ]
    assert query(batch.db, "SELECT count(*) FROM assessments") == [(0,)]  # never converted
    n = len(EXCEL_SERIALS)
    assert reconcile(batch.report, batch.db, "assessments.csv") == (n, 0, 0, n)
    # the printed report folds the specifics away: no date of a patient in the terminal
    assert "2026-01-01" not in batch.report.render()
    assert "looks like an Excel serial date" in batch.report.render()


def test_excel_serial_session_start_is_rejected(export, db):
    report = load(
        sessions(export, "session_id,patient_id,protocol_id,started_at", "S1,P1,IND6,46054.4"),
        db,
    )
    # 46054 = 2026-02-01; .4 of a day = 09:36
    assert rejected(db, "sessions.csv") == [
        (2, "started_at", "46054.4", EXCEL.format(date="2026-02-01 09:36"))
    ]
    assert reconcile(report, db, "sessions.csv") == (1, 0, 0, 1)


def test_excel_serial_birth_date_is_rejected(export, tmp_path):
    db = tmp_path / "fresh.duckdb"  # a new database: no earlier load
    serial = (dt.date(1980, 3, 4) - dt.date(1899, 12, 30)).days  # 29284
    write(export, "patients.csv", f"patient_id,birth_date\nP1,{serial}\n")
    report = load(export, db)
    assert rejected(db, "patients.csv") == [
        (2, "birth_date", str(serial), EXCEL.format(date="1980-03-04"))
    ]
    assert reconcile(report, db, "patients.csv") == (1, 0, 0, 1)


def test_number_cell_in_a_workbook_date_column_is_rejected_as_an_excel_serial(export, scored_db):
    # A date typed into a cell formatted as a number: the workbook holds the serial only.
    book = xlsxwriter.Workbook(str(export / "assessments.xlsx"))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, SCORE_HEADER.split(","))
    sheet.write_row(1, 0, ["P1", "PHQ-9"])
    sheet.write_number(1, 2, 46023.375)
    sheet.write_number(1, 3, 12)
    book.close()
    report = load(export, scored_db)
    assert rejected(scored_db, "assessments.xlsx") == [
        (2, "administered_at", "46023.375", EXCEL.format(date="2026-01-01 09:00"))
    ]
    assert reconcile(report, scored_db, "assessments.xlsx") == (1, 0, 0, 1)


# ---------------------------------------------------------------- 4 date formats


ISO_FORMS = [
        ("2026-03-04", dt.datetime(2026, 3, 4), True),
        ("2026-03-04T09:00", dt.datetime(2026, 3, 4, 9), False),
        ("2026-03-04 09:00:00", dt.datetime(2026, 3, 4, 9), False),
        ("2026-03-04T09:00:30.250", dt.datetime(2026, 3, 4, 9, 0, 30, 250000), False),
        ("2026-3-4", dt.datetime(2026, 3, 4), True),  # unpadded, still year-month-day
        ("2026-03-04 9:05", dt.datetime(2026, 3, 4, 9, 5), False),
        (" 2026-03-04T09:00 ", dt.datetime(2026, 3, 4, 9), False),
]


@pytest.fixture(scope="module")
def iso_forms(earlier: Earlier) -> Batch:
    # total 10 + i tells the rows apart (several forms give the same time)
    return score_batch(earlier, [f"P1,PHQ-9,{text},{10 + i}"
                                 for i, (text, _, _) in enumerate(ISO_FORMS)])


@pytest.mark.parametrize(("i", "text", "loaded", "date_only"),
                         [(i, *case) for i, case in enumerate(ISO_FORMS)])
def test_iso_date_forms_load(iso_forms, i, text, loaded, date_only):
    batch = iso_forms
    assert query(batch.db, "SELECT administered_at, date_only FROM assessments "
                           "WHERE total_score = ?", [10 + i]) == [(loaded, date_only)]
    n = len(ISO_FORMS)
    assert reconcile(batch.report, batch.db, "assessments.csv") == (n, n, 0, 0)


NOT_ISO = "unparseable date: not an ISO date (YYYY-MM-DD); "


NOT_ISO_DATES = [
        ("04/03/2026", AMBIGUOUS.format(readings="4 March or 3 April 2026")),
        ("03/04/2026", AMBIGUOUS.format(readings="3 April or 4 March 2026")),
        ("4.3.2026", AMBIGUOUS.format(readings="4 March or 3 April 2026")),
        ("04-03-2026 09:00", AMBIGUOUS.format(readings="4 March or 3 April 2026")),
        ("13/03/2026", NOT_ISO + "write it as YYYY-MM-DD (would be 13 March 2026, day first)"),
        ("03/13/2026", NOT_ISO + "write it as YYYY-MM-DD (would be 13 March 2026, month first)"),
        ("04/04/2026", NOT_ISO + "write it as YYYY-MM-DD (would be 4 April 2026)"),
        ("31/02/2026", NOT_ISO + "write dates as YYYY-MM-DD"),
        (
            "2026/03/04",
            'unparseable date: not an ISO date; separate year, month and day with "-" as in '
            "2026-02-02 (would be 2026-03-04)",
        ),
        ("20260304", "unparseable date: no separators; write it as YYYY-MM-DD (would be 2026-03-04)"),
        ("2026", "unparseable date: only a year; give the full date as YYYY-MM-DD"),
        ("4 March 2026", "unparseable date; use ISO 8601 such as 2026-02-02 or 2026-02-02T09:00"),
        ("2026-02-30", "impossible date or time (no such day or hour); correct it in the export"),
        ("2026-03-04T25:00", "impossible date or time (no such day or hour); correct it in the export"),
        (
            "2026-03-04 09:00 am",
            "unparseable date: the time or time zone after the date cannot be read; write the "
            "time as 09:00 or 09:00:00, optionally followed by Z or an offset such as +01:00 "
            "(zone names such as Europe/Berlin are not read)",
        ),
]


@pytest.fixture(scope="module")
def not_iso_dates(earlier: Earlier) -> Batch:
    # line 2 is a good score; lines 3 on hold the dates under test
    return score_batch(earlier, ["P1,PHQ-9,2026-03-01,12"] + [
        f"P1,PHQ-9,{text},12" for text, _ in NOT_ISO_DATES])


@pytest.mark.parametrize(("line", "text", "reason"),
                         [(i + 3, *case) for i, case in enumerate(NOT_ISO_DATES)])
def test_non_iso_date_is_rejected_with_a_reason_that_says_how_to_write_it(not_iso_dates, line,
                                                                          text, reason):
    batch = not_iso_dates
    assert rejected_at(batch.db, "assessments.csv", line) == [
        (line, "administered_at", text, reason)]
    n = len(NOT_ISO_DATES)
    assert reconcile(batch.report, batch.db, "assessments.csv") == (n + 1, 1, 0, n)


def test_one_column_of_mixed_date_formats_loads_the_iso_rows_only(export, scored_db):
    report = load(
        scores(
            export,
            "P1,PHQ-9,2026-03-04,10",  # line 2
            "P1,PHQ-9,2026-03-04T09:00,11",  # line 3
            "P1,PHQ-9,2026-03-04 09:30:00,12",  # line 4
            "P1,PHQ-9,04/03/2026,13",  # line 5
            "P1,PHQ-9,03/04/2026,14",  # line 6
            "P1,PHQ-9,4.3.2026,15",  # line 7
            "P1,PHQ-9,2026/03/04,16",  # line 8
        ),
        scored_db,
    )
    assert query(scored_db, "SELECT total_score FROM assessments ORDER BY administered_at") == [
        (10.0,), (11.0,), (12.0,)
    ]
    assert [r[:3] for r in rejected(scored_db, "assessments.csv")] == [
        (5, "administered_at", "04/03/2026"),
        (6, "administered_at", "03/04/2026"),
        (7, "administered_at", "4.3.2026"),
        (8, "administered_at", "2026/03/04"),
    ]
    assert reconcile(report, scored_db, "assessments.csv") == (7, 3, 0, 4)


# ---------------------------------------------------------------- 5 time zones


OFFSET_NOTE = (
    "{n} date-time value{s} with a UTC offset or zone (Z, +01:00, UTC …): the offset was "
    "dropped and the wall-clock time kept as clinic-local time"
)


UTC_OFFSETS = [
        "2026-03-04T09:00:00Z",
        "2026-03-04T09:00:00+01:00",
        "2026-03-04T09:00:00-05:00",
        "2026-03-04T09:00:00+0100",
        "2026-03-04 09:00:00 UTC",
        "2026-03-04T09:00Z",
        "2026-03-04T09:00:00.000+05:30",
        "2026-03-04 09:00 +01",
        "2026-03-04T09:00:00 GMT",
]


@pytest.fixture(scope="module")
def utc_offsets(earlier: Earlier) -> Batch:
    # total 10 + i tells the rows apart (every one is 09:00 wall-clock time)
    return score_batch(earlier, [f"P1,PHQ-9,{text},{10 + i}"
                                 for i, text in enumerate(UTC_OFFSETS)])


@pytest.mark.parametrize(("i", "text"), list(enumerate(UTC_OFFSETS)))
def test_utc_offset_is_dropped_and_the_wall_clock_time_kept(utc_offsets, i, text):
    batch = utc_offsets
    assert query(batch.db, "SELECT administered_at, date_only FROM assessments "
                           "WHERE total_score = ?", [10 + i]) == [
        (dt.datetime(2026, 3, 4, 9), False)
    ]
    n = len(UTC_OFFSETS)  # 9: every row of the file had an offset, each is counted once
    assert reconcile(batch.report, batch.db, "assessments.csv") == (n, n, 0, 0)
    assert OFFSET_NOTE.format(n=n, s="s") in result(batch.report, "assessments.csv").notes
    assert f"note: assessments.csv: {n} date-time values with a UTC offset" in \
        batch.report.render()


def test_offsets_are_counted_per_file_and_plain_times_are_not(export, db):
    write(
        export,
        "sessions.csv",
        "session_id,patient_id,protocol_id,started_at\n"
        "S1,P1,IND6,2026-02-02T09:00:00-05:00\n"
        "S2,P1,IND6,2026-02-04T09:00:00Z\n"
        "S3,P1,IND6,2026-02-06T09:00\n",
    )
    write(export, "assessments.csv", SCORE_HEADER + "\nP1,PHQ-9,2026-02-02T08:30,18\n")
    report = load(export, db)
    assert OFFSET_NOTE.format(n=2, s="s") in result(report, "sessions.csv").notes
    assert not any("offset" in n for n in result(report, "assessments.csv").notes)
    assert query(db, "SELECT started_at FROM sessions ORDER BY 1") == [
        (dt.datetime(2026, 2, 2, 9),), (dt.datetime(2026, 2, 4, 9),), (dt.datetime(2026, 2, 6, 9),)
    ]
    assert reconcile(report, db, "sessions.csv") == (3, 3, 0, 0)


ZONES = ["2026-03-04 09:00:00 Europe/Berlin", "2026-03-04T09:00:00 EST", "2026-03-04T09:00+25:00"]


@pytest.fixture(scope="module")
def zones(earlier: Earlier) -> Batch:
    return score_batch(earlier, [f"P1,PHQ-9,{text},12" for text in ZONES])


@pytest.mark.parametrize(("at", "text"), [(i + 2, text) for i, text in enumerate(ZONES)])
def test_zone_names_and_impossible_offsets_are_rejected_not_guessed(zones, at, text):
    [(line, column, value, reason)] = rejected_at(zones.db, "assessments.csv", at)
    assert (line, column, value) == (at, "administered_at", text)
    assert reason.startswith("unparseable date: the time or time zone after the date cannot be read")
    n = len(ZONES)
    assert reconcile(zones.report, zones.db, "assessments.csv") == (n, 0, 0, n)


# ---------------------------------------------------------------- 6 whitespace and case


STATUSES = [
        (" completed", "completed"),
        ("COMPLETED", "completed"),
        ("Aborted ", "aborted"),
        ("\u00a0cancelled\u00a0", "cancelled"),
        ("canceled", "cancelled"),  # US spelling
        ("complete", "completed"),
]


@pytest.fixture(scope="module")
def statuses(earlier: Earlier) -> Batch:
    return session_batch(earlier, "session_id,patient_id,protocol_id,started_at,status",
                         [f"S{i},P1,IND6,{day(i)}T09:00,{status}"
                          for i, (status, _) in enumerate(STATUSES)])


@pytest.mark.parametrize(("i", "status", "loaded"), [(i, *case) for i, case in enumerate(STATUSES)])
def test_status_ignores_case_and_surrounding_spaces(statuses, i, status, loaded):
    assert query(statuses.db, "SELECT status FROM sessions WHERE session_id = ?",
                 [f"S{i}"]) == [(loaded,)]
    n = len(STATUSES)
    assert reconcile(statuses.report, statuses.db, "sessions.csv") == (n, n, 0, 0)


TIMINGS = [("PRE", "pre"), (" post ", "post"), ("Follow-up", "followup")]


@pytest.fixture(scope="module")
def timings(earlier: Earlier) -> Batch:
    return score_batch(earlier, [f"P1,PHQ-9,{day(i)},12,{timing}"
                                 for i, (timing, _) in enumerate(TIMINGS)],
                       header=SCORE_HEADER + ",timing")


@pytest.mark.parametrize(("i", "timing", "loaded"), [(i, *case) for i, case in enumerate(TIMINGS)])
def test_timing_ignores_case_spaces_and_punctuation(timings, i, timing, loaded):
    assert query(timings.db, "SELECT timing FROM assessments WHERE administered_at = ?",
                 [day(i)]) == [(loaded,)]
    n = len(TIMINGS)
    assert reconcile(timings.report, timings.db, "assessments.csv") == (n, n, 0, 0)


PADDED_IDS = [" P1", "P1 ", "\u00a0P1\u00a0", '"\tP1\t"', "\u2003P1"]


@pytest.fixture(scope="module")
def padded_ids(earlier: Earlier) -> Batch:
    return session_batch(earlier, "session_id,patient_id,protocol_id,started_at",
                         [f" S{i} ,{patient}, IND6 ,{day(i)}T09:00"
                          for i, patient in enumerate(PADDED_IDS)])


@pytest.mark.parametrize(("i", "patient"), list(enumerate(PADDED_IDS)))
def test_ids_with_surrounding_whitespace_match_the_trimmed_id(padded_ids, i, patient):
    assert query(padded_ids.db, "SELECT session_id, patient_id, protocol_id FROM sessions "
                                "WHERE session_id = ?", [f"S{i}"]) == [
        (f"S{i}", "P1", "IND6")
    ]
    n = len(PADDED_IDS)
    assert reconcile(padded_ids.report, padded_ids.db, "sessions.csv") == (n, n, 0, 0)


INVISIBLE_IDS = ["P\u200b1", "P1\u200b", "\ufeffP1", "P\u00a01", "P\u20601", '"P\t1"']


@pytest.fixture(scope="module")
def invisible_ids(earlier: Earlier) -> Batch:
    # line 2 is a good session; lines 3 on hold the ids under test
    return session_batch(earlier, "session_id,patient_id,protocol_id,started_at",
                         ["S1,P1,IND6,2026-02-02T09:00"]
                         + [f"S{i + 2},{patient},IND6,{day(i)}T09:00"
                            for i, patient in enumerate(INVISIBLE_IDS)])


@pytest.mark.parametrize(("line", "patient"), [(i + 3, p) for i, p in enumerate(INVISIBLE_IDS)])
def test_id_with_an_invisible_character_is_rejected_once(invisible_ids, line, patient):
    # Reported as an invisible character, not also as an unknown patient.
    batch = invisible_ids
    assert rejected_at(batch.db, "sessions.csv", line) == [
        (line, "patient_id", patient.strip('"'), INVISIBLE_ID)]
    n = len(INVISIBLE_IDS)
    assert reconcile(batch.report, batch.db, "sessions.csv") == (n + 1, 1, 0, n)


def test_invisible_characters_in_other_id_columns_are_rejected(export, scored_db):
    write(
        export,
        "assessments.csv",
        "assessment_id,patient_id,instrument,administered_at,total_score,session_id\n"
        "A1\u200b,P1,PHQ-9,2026-02-02,10,S1\n"  # line 2
        "A2,P1,PHQ-9,2026-02-03,10,S\u200b1\n",  # line 3
    )
    report = load(export, scored_db)
    assert rejected(scored_db, "assessments.csv") == [
        (2, "assessment_id", "A1\u200b", INVISIBLE_ID),
        (3, "session_id", "S\u200b1", INVISIBLE_ID),
    ]
    assert reconcile(report, scored_db, "assessments.csv") == (2, 0, 0, 2)


def test_instrument_name_ignores_case_and_spaces(export, scored_db):
    report = load(scores(export, "P1, phq 9 ,2026-02-03,12", "P1,Phq-9,2026-02-04,12"), scored_db)
    assert query(scored_db, "SELECT instrument FROM assessments") == [("PHQ-9",), ("PHQ-9",)]
    assert reconcile(report, scored_db, "assessments.csv") == (2, 2, 0, 0)


# ---------------------------------------------------------------- 7 implausible dates


AFTER_LOAD_DAY = ["2226-03-04", "9999-12-31T23:59", "2026-11-29"]
# lines 2-4: after the day of the load; line 5: before 1900; line 6: before P1's birth
# (1980-03-04); line 7: a plausible date
IMPLAUSIBLE_DATES = [*AFTER_LOAD_DAY, "1899-12-31", "1979-12-31", "2026-02-03"]
# read 6 = loaded 1 (line 7) + rejected 5
IMPLAUSIBLE_DATES_COUNTS = (6, 1, 0, 5)


@pytest.fixture(scope="module")
def implausible_dates(earlier: Earlier) -> Batch:
    return score_batch(earlier, [f"P1,PHQ-9,{text},12" for text in IMPLAUSIBLE_DATES])


def test_date_before_1900_is_rejected(implausible_dates):
    batch = implausible_dates
    assert rejected_at(batch.db, "assessments.csv", 5) == [
        (5, "administered_at", "1899-12-31", "implausible date before 1900; check the year")
    ]
    assert reconcile(batch.report, batch.db, "assessments.csv") == IMPLAUSIBLE_DATES_COUNTS


@pytest.mark.parametrize(("line", "text"), [(i + 2, t) for i, t in enumerate(AFTER_LOAD_DAY)])
def test_date_after_the_day_of_the_load_is_rejected(implausible_dates, line, text):
    batch = implausible_dates
    assert rejected_at(batch.db, "assessments.csv", line) == [
        (
            line,
            "administered_at",
            text,
            "date is later than the day of the load (2026-11-28); check the year or the clock "
            "of the exporting system",
        )
    ]
    assert reconcile(batch.report, batch.db, "assessments.csv") == IMPLAUSIBLE_DATES_COUNTS


def test_session_before_the_patients_birth_is_rejected(export, db):
    # P1 was born on 1980-03-04: an infusion the day before cannot be.
    report = load(
        sessions(
            export,
            "session_id,patient_id,protocol_id,started_at",
            "S1,P1,IND6,1980-03-03T09:00",
            "S2,P2,IND6,1980-03-03T09:00",  # P2 was born in 1975: fine (if odd)
        ),
        db,
    )
    assert rejected(db, "sessions.csv") == [(2, "started_at", "1980-03-03T09:00", BEFORE_BIRTH)]
    assert reconcile(report, db, "sessions.csv") == (2, 1, 0, 1)


def test_score_before_the_patients_birth_is_rejected(implausible_dates):
    batch = implausible_dates
    assert rejected_at(batch.db, "assessments.csv", 6) == [
        (6, "administered_at", "1979-12-31", BEFORE_BIRTH)]
    assert rejected_at(batch.db, "assessments.csv", 7) == []  # after the birth: loaded
    assert reconcile(batch.report, batch.db, "assessments.csv") == IMPLAUSIBLE_DATES_COUNTS


def test_treatment_trial_before_the_patients_birth_is_rejected(export, db):
    write(
        export,
        "treatment_history.csv",
        "patient_id,medication,start_date\nP1,sertraline,1970-01-01\nP1,sertraline,2020-01-01\n",
    )
    report = load(export, db)
    assert rejected(db, "treatment_history.csv") == [(2, "start_date", "1970-01-01", BEFORE_BIRTH)]
    assert reconcile(report, db, "treatment_history.csv") == (2, 1, 0, 1)


def test_birth_date_after_a_session_loaded_earlier_is_rejected(export, tmp_path):
    db = tmp_path / "fresh.duckdb"  # a new database: no earlier load
    # Load 1 has no patients file (P1 derived); load 2 lists P1 born after that session.
    write(export, "protocols.csv", PROTOCOLS)
    write(export, "sessions.csv", SESSIONS_OK)
    load(export, db)
    later = tmp_path / "later"
    write(later, "patients.csv", "patient_id,birth_date\nP1,2026-03-01\nP2,1975-06-30\n")
    report = load(later, db)
    assert rejected(db, "patients.csv") == [
        (
            2,
            "birth_date",
            "2026-03-01",
            "date of birth after the patient's first session, score or trial already loaded; "
            "check the year",
        )
    ]
    assert reconcile(report, db, "patients.csv") == (2, 1, 0, 1)
    assert query(db, "SELECT patient_id, source FROM patients ORDER BY 1") == [
        ("P1", "derived"), ("P2", "patients")
    ]


def test_birth_date_in_the_future_is_rejected(export, tmp_path):
    db = tmp_path / "fresh.duckdb"  # a new database: no earlier load
    write(export, "patients.csv", "patient_id,birth_date\nP1,2027-01-01\nP2,1975-06-30\n")
    report = load(export, db)
    assert [r[:3] for r in rejected(db, "patients.csv")] == [(2, "birth_date", "2027-01-01")]
    assert reconcile(report, db, "patients.csv") == (2, 1, 0, 1)


def test_adverse_event_lists_split_over_lines_or_padded_are_trimmed(export, db):
    report = load(
        sessions(
            export,
            "session_id,patient_id,protocol_id,started_at,adverse_events",
            'S1,P1,IND6,2026-02-02T09:00,"Nausea;\r\ndissociation ;\u00a0headache;"',
        ),
        db,
    )
    assert query(db, "SELECT adverse_events FROM sessions") == \
        [(["nausea", "dissociation", "headache"],)]
    assert reconcile(report, db, "sessions.csv") == (1, 1, 0, 0)
