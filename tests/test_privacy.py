"""Privacy of what leaves the clinic (issue 9): aggregate outputs and console output carry no
identifier or birth date; --pseudonymize replaces ids in row-level outputs with keyed HMACs;
every file a run creates is readable by its owner only."""

from __future__ import annotations

import csv
import hashlib
import hmac
import json
import stat
import subprocess
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipeline.pseudonyms import define_pseudonym
from tests.conftest import cli, copy_db

pytestmark = pytest.mark.slow  # one `outcomes run` with every report for the whole module

MONTH = "2026-09"
AS_OF = "2026-09-30"
KEY = b"clinic-secret-key-0123456789abcdef"


def pdf_text(path: Path) -> str:
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True,
                          check=True).stdout
    return text + info


@pytest.fixture(scope="module")
def external(two_runs, tmp_path_factory) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """`outcomes run` on a demo export with the monthly report configured for external use
    (the first of tests/conftest.py `two_runs`, made once: test_determinism.py reads both), and
    a copy of its database for the commands run here (`outcomes metrics` writes to it)."""
    code, console = two_runs["done"]["first"]
    assert code == 0, console
    out = two_runs["first"]
    con = duckdb.connect(str(out / "clinic.duckdb"), read_only=True)
    try:
        identifiers = {row[0] for row in con.execute(
            "SELECT patient_id FROM patients UNION SELECT member_id FROM patients "
            "UNION SELECT CAST(birth_date AS VARCHAR) FROM patients "
            "UNION SELECT session_id FROM sessions UNION SELECT course_id FROM sessions "
            "UNION SELECT assessment_id FROM assessments "
            "UNION SELECT course_id FROM course_outcomes").fetchall() if row[0]}
    finally:
        con.close()
    db = copy_db(out / "clinic.duckdb", tmp_path_factory.mktemp("privacy") / "clinic.duckdb")
    return {"out": out, "db": db, "console": console, "identifiers": identifiers}


def leaked(text: str, identifiers: set[str]) -> list[str]:
    return sorted(i for i in identifiers if i in text)


def test_the_scan_would_find_an_identifier(external):
    ids = external["identifiers"]
    assert len(ids) > 1000  # patients, members, birth dates, sessions, courses, scores
    sample = sorted(ids)[0]
    assert leaked(f"... {sample} ...", ids) == [sample]


def test_aggregate_reports_and_their_json_carry_no_identifier_or_birth_date(external):
    reports = external["out"] / "reports"
    files = sorted(reports.iterdir())
    assert {p.suffix for p in files} >= {".pdf", ".json"}
    for path in files:
        text = pdf_text(path) if path.suffix == ".pdf" else path.read_text(encoding="utf-8")
        assert leaked(text, external["identifiers"]) == [], path.name


def test_console_output_of_a_run_carries_no_identifier(external):
    console = external["console"]
    assert "read = added + corrected + unchanged + duplicates + rejected" in console  # real output
    assert leaked(console, external["identifiers"]) == []


def test_every_file_a_run_creates_is_readable_by_its_owner_only(external):
    paths = [p for p in external["out"].rglob("*")]
    assert len(paths) > 10
    for path in [external["out"], *paths]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"


def _pseudonym(column: str, value: str) -> str:
    return hmac.new(KEY, f"{column}:{value}".encode(), hashlib.sha256).hexdigest()[:16]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("key", [KEY, bytes(range(64)), b"k" * 65 + "é".encode() * 40],
                         ids=["short", "one block", "longer than a block"])
def test_the_sql_pseudonym_is_python_hmac_sha256(key: bytes) -> None:
    # The HMAC is built in DuckDB from sha256; Python's hmac module is the reference (a key
    # longer than the 64-byte block is hashed first, RFC 2104).
    con = duckdb.connect()
    define_pseudonym(con, key)
    values = ["P00001", "", "ä/ü,\"x\"", "C" * 300, None]
    got = [r[0] for r in con.execute(
        "SELECT pseudonym('course_id', v) FROM unnest(?) t(v)", [values]).fetchall()]
    want = [hmac.new(key, f"course_id:{v}".encode(), hashlib.sha256).hexdigest()[:16]
            if v is not None else None for v in values]
    assert got == want


def test_pseudonymize_replaces_ids_in_row_level_outputs_with_keyed_hmacs(external, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_bytes(KEY + b"\n")
    out = tmp_path / "metrics"
    done = cli("metrics", "--db", external["db"], "--as-of", AS_OF,
               "--out", out, "--pseudonymize", key_file)
    assert done.exit_code == 0, done.stderr
    plain = read_rows(external["out"] / "metrics" / "course_outcomes.csv")
    hidden = read_rows(out / "course_outcomes.csv")
    assert len(hidden) == len(plain) > 50
    for a, b in zip(plain, hidden, strict=True):
        assert b["patient_id"] == _pseudonym("patient_id", a["patient_id"])
        assert b["course_id"] == _pseudonym("course_id", a["course_id"])
        rest = {k: v for k, v in a.items() if k not in ("patient_id", "course_id")}
        assert rest == {k: v for k, v in b.items() if k not in ("patient_id", "course_id")}
    text = "".join(p.read_text() for p in out.iterdir() if p.suffix in (".csv", ".json"))
    assert leaked(text, external["identifiers"]) == []
    metrics = json.loads((out / "metrics.json").read_text())
    assert "pseudonymized" in metrics["provenance"]
    # Every course-level file, the Parquet ones included (their text is compressed: read the
    # values), holds pseudonyms only: the same ones as the CSV beside it.
    files = [metrics[name] for name in ("course_outcomes", "same_session_courses",
                                        "durability_courses", "item9_flags")]
    assert all(f["rows"] > 0 for f in files)
    for entry in files:
        typed = pl.read_parquet(out / entry["parquet"])
        rows = read_rows(out / entry["csv"])
        ids = [c for c in ("patient_id", "course_id", "assessment_id") if c in typed.columns]
        assert ids
        for column in ids:
            values = set(typed[column].to_list())
            assert values == {r[column] for r in rows}
            assert not values & external["identifiers"]
            assert all(len(v) == 16 for v in values)
    plain_flags = pl.read_parquet(external["out"] / "metrics" / "item9_flags.parquet")
    hidden_flags = pl.read_parquet(out / "item9_flags.parquet")
    assert hidden_flags["assessment_id"].to_list() == [
        _pseudonym("assessment_id", a) for a in plain_flags["assessment_id"]]


def test_a_short_or_missing_key_is_a_clear_error(external, tmp_path):
    short = tmp_path / "short"
    short.write_bytes(b"secret\n")
    for key in (short, tmp_path / "absent"):
        done = cli("metrics", "--db", external["db"], "--as-of", AS_OF,
                   "--out", tmp_path / "m", "--pseudonymize", key)
        assert done.exit_code in (1, 2), done.stderr
        assert "Traceback" not in done.stderr
        assert str(key.name) in done.stderr
    assert not (tmp_path / "m").exists()
