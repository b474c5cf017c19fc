"""Bad-input corpus, file level (issue 9): every kind of damaged or unusual export file either
loads correctly or is rejected with a reason -- at its exact line for a row, with exit code 1
and a one-paragraph message naming the file for a whole file -- and never a traceback.
`read = loaded + duplicates + rejected` holds for every file that loads, in the report and in
`loads`; a file that stops the load leaves the database exactly as it was.

Every file is generated here, byte by byte; docs/bad-input-files.md lists what the user sees.
Cases already pinned elsewhere: Windows-1252 and Latin-1 files (test_ingest_loads.py
test_utf8_bom_and_windows_1252_files_load_with_encoding_recorded, test_latin1_file_with_bytes_
undefined_in_cp1252_loads); a blank line and fields spanning lines inside the data
(test_ingest_rejects.py test_malformed_lines_are_rejected_with_their_physical_line,
test_field_spanning_lines_keeps_exact_line_numbers).
"""

from __future__ import annotations

import datetime as dt
import io
import random
import zipfile
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
import xlsxwriter

from pipeline.ingest import LoadReport
from tests.conftest import (
    PATIENTS,
    PROTOCOLS,
    cli,
    copy_db,
    load,
    outcomes_process,
    query,
    query_each,
    rejects,
    result,
    write,
)

HEADER = "session_id,patient_id,protocol_id,started_at,status"
GOOD = "S1,P1,IND6,2026-02-02T09:00,completed"
BAD_DATE = "S2,P1,IND6,2026-02-30T09:00,completed"  # no such day: a row reject
TABLES = ("protocols", "patients", "sessions", "assessments", "loads", "rejects")
PATIENT_IDS = ("P1", "P2")


# ---------------------------------------------------------------- helpers


def state(db: Path) -> dict[str, list[tuple]]:
    """Every row of every canonical and audit table."""
    return query_each(db, {t: f"SELECT * FROM {t} ORDER BY ALL" for t in TABLES})


def reconciled(report: LoadReport, db: Path, file: str) -> tuple[int, int, int, int]:
    """(read, loaded, duplicates, rejected) of a file, after checking the report, the printed
    reconciliation and the `loads` table agree and add up."""
    f = result(report, file)
    counts = (f.read, f.loaded, f.duplicates, f.rejected)
    assert f.read == f.added + f.corrected + f.unchanged + f.duplicates + f.rejected
    assert query(
        db,
        "SELECT rows_read, rows_loaded, duplicates, rejected FROM loads "
        "WHERE load_id = ? AND file = ?",
        [report.load_id, file],
    ) == [counts]
    printed = (f.read, f.added, f.corrected, f.unchanged, f.duplicates, f.rejected, f.retired)
    assert [file, *map(str, printed), "ok"] in [ln.split() for ln in report.render().splitlines()]
    return counts


def notes(report: LoadReport, file: str) -> list[str]:
    return list(result(report, file).notes)


def sessions_csv(*rows: str, header: str = HEADER, newline: str = "\n") -> bytes:
    return newline.join([header, *rows, ""]).encode("utf-8")


def workbook_bytes(rows: list[list[object]]) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    sheet = book.add_worksheet()
    for r, values in enumerate(rows):
        sheet.write_row(r, 0, values)
    book.close()
    return buffer.getvalue()


def parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame(
        {
            "session_id": ["S1"],
            "patient_id": ["P1"],
            "protocol_id": ["IND6"],
            "started_at": [dt.datetime(2026, 2, 2, 9)],
        }
    ).write_parquet(buffer)
    return buffer.getvalue()


# ---------------------------------------------------------------- fixtures
# A case is about one file (mostly sessions.csv): its load reads that file only. The protocols
# and patients it refers to (tests/conftest.py; sessions need protocols loaded, in this load or
# before) come from an earlier load, made once and copied by each case.


@pytest.fixture
def export(empty_export: Path) -> Path:
    """Empty (unlike tests/conftest.py `export`): the case writes the files it is about."""
    return empty_export


@pytest.fixture
def db(tmp_path: Path, references_db: Path) -> Path:
    """A copy of tests/conftest.py `references_db`: protocols and patients loaded (load 1)."""
    return copy_db(references_db, tmp_path / "clinic.duckdb")


# ---------------------------------------------------------------- 1-2 encodings


def test_utf8_bom_file_loads_and_records_its_encoding(export, db):
    (export / "sessions.csv").write_bytes(b"\xef\xbb\xbf" + sessions_csv(GOOD, BAD_DATE))
    report = load(export, db)
    assert result(report, "sessions.csv").encoding == "utf-8-sig"
    assert reconciled(report, db, "sessions.csv") == (2, 1, 0, 1)
    assert [r[1:3] for r in rejects(db)] == [(3, "started_at")]


def excel_unicode_text(text: str, codec: str = "utf-16-le", bom: bool = True) -> bytes:
    """Excel's "Unicode text": UTF-16 with a byte-order mark, tabs, CRLF line ends."""
    return (("\ufeff" if bom else "") + text.replace("\n", "\r\n")).encode(codec)


UNICODE_TEXT = (
    "session_id\tpatient_id\tprotocol_id\tstarted_at\tprovider\n"
    "S1\tP1\tIND6\t2026-02-02T09:00\tDr. Müller – “lead”\n"
    "S2\tP1\tIND6\t2026-02-30T09:00\tDr. Øberg\n"  # line 3: no such day
    "S3\tP2\tIND6\t2026-02-04T09:00\t李医生\n"
)


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
def test_utf16_unicode_text_with_bom_loads_and_says_so(export, db, codec):
    (export / "sessions.csv").write_bytes(excel_unicode_text(UNICODE_TEXT, codec))
    report = load(export, db)
    f = result(report, "sessions.csv")
    assert f.encoding == codec
    assert f"not UTF-8; read as {codec}" in notes(report, "sessions.csv")
    assert reconciled(report, db, "sessions.csv") == (3, 2, 0, 1)
    assert [r[1:3] for r in rejects(db)] == [(3, "started_at")]
    assert query(db, "SELECT session_id, provider FROM sessions ORDER BY 1") == [
        ("S1", "Dr. Müller – “lead”"),
        ("S3", "李医生"),
    ]
    assert query(db, "SELECT encoding FROM loads WHERE file = 'sessions.csv'") == [(codec,)]


def test_utf16_without_bom_is_recognised_from_its_nul_bytes(export, db):
    (export / "sessions.csv").write_bytes(excel_unicode_text(UNICODE_TEXT, bom=False))
    report = load(export, db)
    assert result(report, "sessions.csv").encoding == "utf-16-le"
    assert (
        "not UTF-8; read as utf-16-le (no byte-order mark; recognised from its NUL bytes)"
        in notes(report, "sessions.csv")
    )
    assert reconciled(report, db, "sessions.csv") == (3, 2, 0, 1)


def test_utf16_file_through_the_cli_prints_the_encoding_and_reconciliation(export, db):
    (export / "sessions.csv").write_bytes(excel_unicode_text(UNICODE_TEXT))
    proc = cli("ingest", export, "--db", db)
    assert proc.exit_code == 0, proc.stderr
    assert "note: sessions.csv: not UTF-8; read as utf-16-le" in proc.stdout
    # read, added, corrected, unchanged, duplicates, rejected, retired
    assert ["sessions.csv", "3", "2", "0", "0", "0", "1", "0", "ok"] in [
        ln.split() for ln in proc.stdout.splitlines()]


# ---------------------------------------------------------------- 3 decimal commas


def test_semicolon_file_with_decimal_commas_loads_numbers_with_points(export, db):
    write(
        export,
        "sessions.csv",
        "session_id;patient_id;protocol_id;started_at;dose_mg_per_kg;weight_kg;dose_mg;site\n"
        "S1;P1;IND6;2026-02-02T09:00;0,5;72,5;36,25;Nord, Haus 2\n"
        "S2;P1;IND6;2026-02-04T09:00;0.5;72;36;Nord\n"  # points still fine
        "S3;P1;IND6;2026-02-06T09:00;0,5,1;72,5;36;Nord\n",  # line 4: not a number
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (3, 2, 0, 1)
    assert "numbers with a decimal comma (such as 0,5) read with a decimal point" in notes(
        report, "sessions.csv"
    )
    assert query(db, "SELECT session_id, dose_mg_per_kg, weight_kg, dose_mg, site FROM sessions "
                     "ORDER BY 1") == [
        ("S1", 0.5, 72.5, 36.25, "Nord, Haus 2"),  # a text column keeps its comma
        ("S2", 0.5, 72.0, 36.0, "Nord"),
    ]
    assert [r[1:3] for r in rejects(db)] == [(4, "dose_mg_per_kg")]


def test_fractional_score_with_decimal_comma_reaches_validation_as_a_fraction(export, db):
    write(
        export,
        "assessments.csv",
        "patient_id;instrument;administered_at;total_score;item_1\n"
        "P1;PHQ-9;2026-02-02T08:30;12,0;\n"  # line 2: 12,0 is twelve
        "P1;PHQ-9;2026-02-03T08:30;12,5;\n",  # line 3: 12.5, not "not a number"
    )
    report = load(export, db)
    reconciled(report, db, "assessments.csv")
    assert (12.0,) in query(db, "SELECT total_score FROM assessments")
    # Whether a fractional total is rejected is a validation rule (sql/validate); what this
    # reader guarantees is that validation sees 12.5 rather than the text "12,5".
    line3 = [r for r in rejects(db, "assessments.csv") if r[1] == 3]
    loaded = query(db, "SELECT total_score FROM assessments WHERE total_score = 12.5")
    assert loaded == [(12.5,)] or (
        [r[2] for r in line3] == ["total_score"] and not line3[0][3].startswith("not a number")
    )


def test_tab_file_reads_decimal_commas_but_leaves_thousands_groups_alone(export, db):
    write(
        export,
        "sessions.csv",
        "session_id\tpatient_id\tprotocol_id\tstarted_at\tdose_mg_per_kg\tdose_mg\n"
        "S1\tP1\tIND6\t2026-02-02T09:00\t0,500\t36,5\n"
        "S2\tP1\tIND6\t2026-02-04T09:00\t0,5\t1,250\n",  # line 3: 1,250 could be 1250: rejected
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (2, 1, 0, 1)
    assert query(db, "SELECT dose_mg_per_kg, dose_mg FROM sessions") == [(0.5, 36.5)]
    got = rejects(db)
    assert [r[1:3] for r in got] == [(3, "dose_mg")]
    assert got[0][3].startswith("not a number")


def test_comma_file_keeps_a_quoted_decimal_comma_as_text(export, db):
    (export / "sessions.csv").write_bytes(
        sessions_csv('S1,P1,IND6,2026-02-02T09:00,"72,5"', header=HEADER.replace("status", "weight_kg"))
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (1, 0, 0, 1)
    assert [r[1:3] for r in rejects(db)] == [(2, "weight_kg")]
    assert rejects(db)[0][3].startswith("not a number")


# ---------------------------------------------------------------- 4 blank and comment lines


def test_comment_and_blank_lines_above_the_header_are_skipped_and_noted(export, db):
    (export / "sessions.csv").write_bytes(
        b"# Exported from ClinicSys 2026-11-01\n"
        b"# Site: North, \"all\" sessions\n"  # a quote in a comment is not a field
        b"\n"
        + sessions_csv(GOOD, BAD_DATE)  # header on line 4, the bad date on line 6
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (2, 1, 0, 1)
    assert "header row on line 4; 2 comment lines and 1 blank line above it skipped" in notes(
        report, "sessions.csv"
    )
    assert "note: sessions.csv: header row on line 4" in report.render()
    assert [r[1:3] for r in rejects(db)] == [(6, "started_at")]


def test_comment_line_with_an_unclosed_quote_above_the_header_still_loads(export, db):
    (export / "sessions.csv").write_bytes(b'# Exported, "ClinicSys\n' + sessions_csv(GOOD, BAD_DATE))
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (2, 1, 0, 1)
    assert [r[1:3] for r in rejects(db)] == [(4, "started_at")]


def test_comment_lines_inside_the_data_are_rejected_at_their_line(export, db):
    (export / "sessions.csv").write_bytes(
        sessions_csv(
            GOOD,
            "# second batch",  # line 3: too few fields, still a comment
            "#S9,P1,IND6,2026-02-04T09:00,completed",  # line 4: a full row, still a comment
            '"#S10",P1,IND6,2026-02-06T09:00,completed',  # line 5: quoted, so data
            BAD_DATE,  # line 6
        )
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (5, 2, 0, 3)
    got = rejects(db)
    assert [r[1:3] for r in got] == [(3, None), (4, None), (6, "started_at")]
    assert got[0][3] == got[1][3] == (
        "comment line: it starts with '#', so it is not a row; delete it, or quote the first "
        "value if it really starts with '#'"
    )
    assert query(db, "SELECT value FROM rejects WHERE line = 3") == [("# second batch",)]
    assert query(db, "SELECT session_id FROM sessions ORDER BY 1") == [("#S10",), ("S1",)]
    assert "comment line" in report.render()


def test_a_comment_line_shaped_like_a_row_is_rejected_not_loaded(export, db):
    # Every line splits into the header's fields: DuckDB's fast path maps lines by position.
    (export / "sessions.csv").write_bytes(
        sessions_csv(GOOD, "#S9,P1,IND6,2026-02-04T09:00,completed", "S3,P2,IND6,2026-02-04T09:00,")
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (3, 2, 0, 1)
    assert [r[1:3] for r in rejects(db)] == [(3, None)]
    assert query(db, "SELECT session_id FROM sessions ORDER BY 1") == [("S1",), ("S3",)]


def test_a_hash_at_the_start_of_a_quoted_continuation_line_is_data(export, db):
    (export / "sessions.csv").write_bytes(
        sessions_csv(
            GOOD + ',"Dr. A\n#2 on call"',  # lines 2-3: one record
            "# comment",  # line 4
            BAD_DATE + ",",  # line 5
            header=HEADER + ",provider",
        )
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (3, 1, 0, 2)
    assert [r[1:3] for r in rejects(db)] == [(4, None), (5, "started_at")]
    assert query(db, "SELECT provider FROM sessions") == [("Dr. A\n#2 on call",)]


# ---------------------------------------------------------------- 5-6 quoting, columns, headers


def test_excel_windows_csv_with_line_breaks_inside_cells_loads(export, db):
    # Excel on Windows ends rows with CRLF and line breaks inside a cell with a bare LF.
    (export / "sessions.csv").write_bytes(
        sessions_csv(
            GOOD + ',"Dr. A\nDr. B"',  # lines 2-3
            BAD_DATE + ",",  # line 4
            header=HEADER + ",provider",
            newline="\r\n",
        )
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (2, 1, 0, 1)
    assert [r[1:3] for r in rejects(db)] == [(4, "started_at")]
    assert query(db, "SELECT provider FROM sessions") == [("Dr. A\nDr. B",)]


def test_extra_columns_are_loaded_without_them_and_noted(export, db):
    (export / "sessions.csv").write_bytes(
        sessions_csv(GOOD + ",free text,42", header=HEADER + ",Notes,room")
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (1, 1, 0, 0)
    assert "note: sessions.csv: columns not in the contract, not loaded: notes, room" in (
        report.render()
    )


def test_repeated_header_lines_of_joined_exports_are_rejected_and_the_rest_loads(export, db):
    (export / "sessions.csv").write_bytes(
        sessions_csv(GOOD)
        + b"\xef\xbb\xbf" + sessions_csv("S3,P2,IND6,2026-02-04T09:00,completed")  # line 3
        + sessions_csv(BAD_DATE, header=HEADER.upper())  # header on line 5, bad date line 6
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (5, 2, 0, 3)
    got = rejects(db)
    assert [r[1:3] for r in got] == [(3, None), (5, None), (6, "started_at")]
    assert got[0][3] == got[1][3] == (
        "repeated header line: two exports joined into one file? Not a row; delete the line"
    )
    assert query(db, "SELECT session_id FROM sessions ORDER BY 1") == [("S1",), ("S3",)]


def test_repeated_header_in_a_patients_file_is_not_loaded_as_a_patient(export, tmp_path):
    db = tmp_path / "fresh.duckdb"  # a new database: no earlier load
    # a first load: P1 and P2 are added (patients need no other file)
    write(export, "patients.csv", "patient_id\nP1\npatient_id\nP2\n")
    report = load(export, db)
    assert reconciled(report, db, "patients.csv") == (3, 2, 0, 1)
    assert query(db, "SELECT patient_id FROM patients ORDER BY 1") == [("P1",), ("P2",)]
    assert [r[1] for r in rejects(db)] == [3]


def test_repeated_header_row_in_a_workbook_is_rejected_at_its_sheet_row(export, db):
    (export / "sessions.xlsx").write_bytes(
        workbook_bytes(
            [
                HEADER.split(","),
                GOOD.split(","),
                HEADER.split(","),  # row 3
                "S3,P2,IND6,2026-02-04T09:00,completed".split(","),
            ]
        )
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.xlsx") == (3, 2, 0, 1)
    assert [r[1:3] for r in rejects(db)] == [(3, None)]


# ---------------------------------------------------------------- 7 header only


@pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
def test_header_only_file_loads_nothing_and_reconciles(export, db, ending):
    (export / "sessions.csv").write_bytes((HEADER + ending).encode())
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (0, 0, 0, 0)
    assert query(db, "SELECT count(*) FROM sessions") == [(0,)]


# ---------------------------------------------------------------- 9 misnamed files


def test_xlsx_workbook_named_csv_is_read_as_xlsx(export, db):
    (export / "sessions.csv").write_bytes(
        workbook_bytes([HEADER.split(","), GOOD.split(","), BAD_DATE.split(",")])
    )
    report = load(export, db)
    f = result(report, "sessions.csv")
    assert f.format == "xlsx"
    assert "an XLSX workbook named .csv; read as XLSX" in f.notes
    assert reconciled(report, db, "sessions.csv") == (2, 1, 0, 1)
    assert [r[1:3] for r in rejects(db)] == [(3, "started_at")]


def test_parquet_file_named_csv_is_read_as_parquet(export, db):
    (export / "sessions.csv").write_bytes(parquet_bytes())
    report = load(export, db)
    assert result(report, "sessions.csv").format == "parquet"
    assert "a Parquet file named .csv; read as Parquet" in notes(report, "sessions.csv")
    assert reconciled(report, db, "sessions.csv") == (1, 1, 0, 0)


# ---------------------------------------------------------------- 11 long lines


def test_a_100000_character_field_loads(export, db):
    provider = "Dr. " + "x" * 100_000
    (export / "sessions.csv").write_bytes(
        sessions_csv(GOOD + "," + provider, BAD_DATE + ",", header=HEADER + ",provider")
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (2, 1, 0, 1)
    assert query(db, "SELECT length(provider) FROM sessions") == [(100_004,)]


def test_a_field_of_several_mb_loads_and_a_line_over_8_mib_is_rejected_at_its_line(export, db):
    (export / "sessions.csv").write_bytes(
        sessions_csv(
            GOOD + "," + "a" * 3_000_000,  # line 2: 3 MB, under the cap
            "S2,P1,IND6,2026-02-04T09:00,completed," + "b" * 9_000_000,  # line 3: over 8 MiB
            "S3,P2,IND6,2026-02-06T09:00,completed,",
            header=HEADER + ",adverse_events",
        )
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (3, 2, 0, 1)
    got = rejects(db)
    assert [r[1:3] for r in got] == [(3, None)]
    assert got[0][3].startswith("the line is longer than 8 MiB, the most one row may hold")
    assert query(db, "SELECT max(length(value)) FROM rejects") == [(200,)]
    assert query(db, "SELECT session_id, len(adverse_events) FROM sessions ORDER BY 1") == [
        ("S1", 1),
        ("S3", None),
    ]


# ---------------------------------------------------------------- 12 truncated files


def test_last_line_cut_mid_row_is_rejected_with_fewer_fields(export, db):
    (export / "sessions.csv").write_bytes(sessions_csv(GOOD) + b"S2,P1,IND6,2026-02-0")
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (2, 1, 0, 1)
    got = rejects(db)
    assert [r[1:3] for r in got] == [(3, "status")]  # the first column the line lacks
    assert got[0][3].startswith("the line has fewer fields than the header")


# ---------------------------------------------------------------- 13 line ends


@pytest.mark.parametrize(
    "ends",
    [
        ["\r\n", "\r\n", "\r\n", "\r\n"],  # Windows
        ["\n", "\r\n", "\n", "\r\n"],  # mixed CRLF and LF (two files pasted together)
        ["\r", "\r", "\r", "\r"],  # old Mac: CR only
        ["\n", "\r", "\n", "\n"],  # one lone CR in an LF file
    ],
    ids=["crlf", "crlf-and-lf", "cr-only", "lone-cr"],
)
def test_line_ends_load_with_exact_line_numbers(export, db, ends):
    lines = [HEADER, GOOD, BAD_DATE, "S3,P2,IND6,2026-02-04T09:00,completed"]
    (export / "sessions.csv").write_bytes(
        "".join(line + end for line, end in zip(lines, ends, strict=True)).encode()
    )
    report = load(export, db)
    assert reconciled(report, db, "sessions.csv") == (3, 2, 0, 1)
    assert [r[1:3] for r in rejects(db)] == [(3, "started_at")]
    assert query(db, "SELECT session_id, status FROM sessions ORDER BY 1") == [
        ("S1", "completed"),
        ("S3", "completed"),
    ]
    if "\r" in ends and "\r\n" not in ends:
        assert "line ends are CR (old Mac) in places; each CR read as a line end" in notes(
            report, "sessions.csv"
        )


# ---------------------------------------------------------------- file errors (8-14)


def not_utf16(_: Path) -> bytes:
    return excel_unicode_text(UNICODE_TEXT) + b"\x00"  # an odd byte count: cut short


def random_bytes(_: Path) -> bytes:
    return random.Random(9).randbytes(4096)


def control_characters(_: Path) -> bytes:
    return (HEADER + "\n").encode() + bytes(range(1, 9)) * 50  # binary without NUL bytes


def zip_archive(_: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("sessions.csv", sessions_csv(GOOD))
    return buffer.getvalue()


def damaged_sheet(_: Path) -> bytes:
    """A workbook whose sheet XML is cut short: it opens, then fails part-way through."""
    good = zipfile.ZipFile(io.BytesIO(workbook_bytes([HEADER.split(","), GOOD.split(",")] * 3)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for item in good.infolist():
            data = good.read(item.filename)
            cut = item.filename == "xl/worksheets/sheet1.xml"
            archive.writestr(item, data[: len(data) * 2 // 3] if cut else data)
    return buffer.getvalue()


def huge_quoted_field(_: Path) -> bytes:
    # The quoted line break sends the file to the exact parser; its field limit stops a
    # field over 8 MiB (which, in a file with quoted line breaks, is a runaway quote).
    return sessions_csv(
        GOOD + ',"a\nb"', 'S2,P1,IND6,2026-02-04T09:00,completed,"' + "c" * 9_000_000 + '"',
        header=HEADER + ",adverse_events",
    )


FILE_ERRORS: list[tuple[str, str, Callable[[Path], bytes], str]] = [
    ("zero-byte", "sessions.csv", lambda _: b"", "sessions.csv: the file is empty"),
    (
        "only-comments",
        "sessions.csv",
        lambda _: b"# Exported from ClinicSys\n\n# no rows today\n",
        "sessions.csv: no header row: the file holds only blank lines or comment lines",
    ),
    (
        "no-header-row",
        "sessions.csv",
        lambda _: sessions_csv(BAD_DATE, header=GOOD),
        "sessions.csv: required columns 'session_id', 'patient_id', 'protocol_id', 'started_at' "
        "missing from the header (the first line names none of them: is the header row missing?)",
    ),
    ("utf16-cut-short", "sessions.csv", not_utf16, "sessions.csv: not valid UTF-16-LE text at byte"),
    (
        "same-column-twice-by-case",
        "sessions.csv",
        lambda _: sessions_csv(GOOD + ",P1", header=HEADER.replace("patient_id", "Patient_ID")
                               + ",patient_id"),
        "sessions.csv: columns 2 ('Patient_ID') and 6 ('patient_id') have the same name",
    ),
    (
        "total-score-twice",
        "assessments.csv",
        lambda _: b"patient_id,instrument,administered_at,total_score,total_score\n"
        b"P1,PHQ-9,2026-02-02,10,11\n",
        "assessments.csv: columns 4 ('total_score') and 5 ('total_score') have the same name",
    ),
    (
        "xls-named-csv",
        "sessions.csv",
        lambda _: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000),
        "sessions.csv: old Excel .xls format (a binary workbook), which is not read; open it in "
        "Excel and save it as .xlsx or as CSV UTF-8, then load again",
    ),
    ("zip-named-csv", "sessions.csv", zip_archive, "sessions.csv: a ZIP archive, not CSV text"),
    (
        "random-bytes",
        "sessions.csv",
        random_bytes,
        "sessions.csv: not a text file (it holds binary data: NUL bytes in its first bytes)",
    ),
    (
        "png-named-csv",
        "sessions.csv",
        lambda _: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        "sessions.csv: not a text file (it is a PNG image); export the table again as CSV",
    ),
    (
        "control-characters",
        "sessions.csv",
        control_characters,
        "sessions.csv: not a text file (it holds binary data: control characters",
    ),
    (
        "nul-byte-inside",
        "sessions.csv",
        lambda _: sessions_csv(GOOD, "S2,P1,IND6,2026-02-04T09:00,compl\x00eted"),
        "sessions.csv: line 3 holds a NUL byte",
    ),
    (
        "unterminated-quote",
        "sessions.csv",
        lambda _: sessions_csv(GOOD, 'S2,P1,IND6,"2026-02-04T09:00,completed', GOOD),
        "sessions.csv: line 3: ",
    ),
    (
        "huge-field-with-quoted-line-breaks",
        "sessions.csv",
        huge_quoted_field,
        "sessions.csv: line 4: a field longer than 8 MiB",
    ),
    (
        "csv-named-parquet",
        "sessions.parquet",
        lambda _: sessions_csv(GOOD),
        "sessions.parquet: not a Parquet file: it is a text file (CSV?)",
    ),
    (
        "parquet-cut-short",
        "sessions.parquet",
        lambda _: parquet_bytes()[:300],
        "sessions.parquet: cannot be read as Parquet (",
    ),
    (
        "xlsx-cut-short",
        "sessions.xlsx",
        lambda _: workbook_bytes([HEADER.split(","), GOOD.split(",")])[:1500],
        "sessions.xlsx: cannot be read as an XLSX workbook (",
    ),
    (
        "xlsx-damaged-sheet",
        "sessions.xlsx",
        damaged_sheet,
        "sessions.xlsx: cannot be read as an XLSX workbook (a damaged sheet: ParseError); the "
        "file is damaged or cut short: open it in Excel and save it again, or export CSV",
    ),
    (
        "csv-named-xlsx",
        "sessions.xlsx",
        lambda _: sessions_csv(GOOD),
        "sessions.xlsx: not an XLSX file: it is a text file (CSV?)",
    ),
    (
        "xls-named-xlsx",
        "sessions.xlsx",
        lambda _: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(2000),
        "sessions.xlsx: old Excel .xls format",
    ),
]


def ingest_cli(export: Path, db: Path) -> tuple[int, str, str]:
    """`outcomes ingest EXPORT --db DB` in this process: exit code, stdout, stderr. An exception
    that escaped the command (a traceback for the user) fails the test."""
    run = cli("ingest", export, "--db", db)
    assert run.exception is None or isinstance(run.exception, SystemExit), run.exc_info
    return run.exit_code, run.stdout, run.stderr


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [case[1:] for case in FILE_ERRORS],
    ids=[case[0] for case in FILE_ERRORS],
)
def test_file_problem_stops_the_load_with_exit_1_and_leaves_the_database_unchanged(
    export, db, name, make, message
):
    before = state(db)  # after the earlier load: protocols and patients
    if name.startswith("assessments"):
        write(export, "sessions.csv", sessions_csv(GOOD).decode())
    (export / name).write_bytes(make(export))
    code, out, err = ingest_cli(export, db)
    assert code == 1, out + err
    assert "Traceback" not in out + err
    assert err.startswith(f"error: {name}: "), err
    assert message in err
    assert len(err.strip().splitlines()) == 1  # one paragraph
    assert not any(pid in err for pid in PATIENT_IDS)
    assert state(db) == before


@pytest.mark.parametrize("case", ["random-bytes", "xls-named-csv", "nul-byte-inside"])
def test_file_problem_in_a_real_cli_process_exits_1_without_a_traceback(export, tmp_path, case):
    db = tmp_path / "fresh.duckdb"  # a new database: no earlier load
    _, name, make, message = next(c for c in FILE_ERRORS if c[0] == case)
    write(export, "protocols.csv", PROTOCOLS)
    write(export, "patients.csv", PATIENTS)
    (export / name).write_bytes(make(export))
    proc = outcomes_process("ingest", export, "--db", db)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"error: {message}")
    assert query(db, "SELECT count(*) FROM loads") == [(0,)]
