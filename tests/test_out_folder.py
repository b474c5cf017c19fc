"""An --out that can never be a folder (a file in its path) is refused before any work: the
same message the end of the run would give, at its start (pipeline/outputs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.outputs import check_folder_path
from tests.conftest import cli


@pytest.mark.parametrize("parts", [(), ("new",), ("new", "deeper")])
def test_a_folder_or_a_path_under_a_folder_passes(tmp_path: Path, parts: tuple[str, ...]) -> None:
    folder = tmp_path.joinpath(*parts)
    check_folder_path(folder)
    assert folder.exists() == (parts == ())  # nothing is created


@pytest.mark.parametrize("parts", [(), ("sub",), ("sub", "deeper")])
def test_a_file_in_the_path_fails_naming_the_path(tmp_path: Path, parts: tuple[str, ...]) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with pytest.raises(NotADirectoryError) as caught:
        check_folder_path(blocker.joinpath(*parts))
    assert caught.value.filename == str(blocker.joinpath(*parts))


@pytest.mark.parametrize("command", [("report", "monthly", "--month", "2026-09"),
                                     ("report", "evidence", "--as-of", "2026-09-30"),
                                     ("report", "payer", "--patient", "P1"),
                                     ("metrics", "--as-of", "2026-09-30")])
def test_reports_refuse_the_out_path_before_reading_the_database(tmp_path: Path,
                                                                 command: tuple[str, ...]) -> None:
    # not a DuckDB file: a command that read it first would fail on the database instead
    db = tmp_path / "clinic.duckdb"
    db.write_text("not a database\n")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = cli(*command, "--db", db, "--out", blocker / "sub")
    assert result.exit_code == 1
    assert "cannot write" in result.stderr and "not-a-folder" in result.stderr, result.stderr
    assert "a part of the path is a file, not a folder" in result.stderr
    assert db.read_text() == "not a database\n"


def test_run_refuses_the_out_path_before_loading(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()  # empty: a run that loaded it first would fail on the missing files
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    result = cli("run", export, "--out", blocker / "sub")
    assert result.exit_code == 1
    assert "cannot write" in result.stderr and "not-a-folder" in result.stderr, result.stderr
