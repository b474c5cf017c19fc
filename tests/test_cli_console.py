"""No terminal control sequence reaches the console (issue 15, item 8; README "Running
safely"). Real exports and real commands, run in-process with click's CliRunner; every line
any command prints goes through one function, errors and click's own usage messages included."""

from __future__ import annotations

import re

from click.testing import CliRunner

from pipeline.cli import main
from tests.conftest import write

OSC_TITLE = "\x1b]0;pwned\x07"  # ESC ] 0;pwned BEL: sets the terminal's window title
OSC_SHOWN = "[U+001B]]0;pwned[U+0007]"
# Anything a terminal acts on: C0 controls but line feed and tab, DEL, C1, bidi controls.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def run(*args: str):  # type: ignore[no-untyped-def]
    # color=True: click passes text through as it does to a terminal (to a pipe it would strip
    # colour codes, ESC [ ... m, but not the rest).
    result = CliRunner().invoke(main, list(args), color=True)
    assert not CONTROL.search(result.output), repr(result.output)
    return result


def test_a_header_holding_an_escape_sequence_is_printed_inert(export, db):
    write(export, "sessions.csv",
          f"session_id,patient_id,protocol_id,started_at,{OSC_TITLE},note\u202e\r\n"
          "S1,P1,IND6,2026-02-02T09:00,x,y\r\n")
    result = run("ingest", str(export), "--db", str(db))
    assert result.exit_code == 0, result.output
    [note] = [line for line in result.output.splitlines() if "columns not in the contract" in line]
    # The analyst still sees what the header held, as code points.
    assert f"{OSC_SHOWN}, note[U+202E]" in note


def test_error_messages_are_printed_inert(export, db, tmp_path):
    folder = tmp_path / f"export{OSC_TITLE}"
    write(folder, "notes.txt", "no export file here\n")  # the message names the folder
    result = run("ingest", str(folder), "--db", str(db))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert f"export{OSC_SHOWN}" in result.stderr


def test_click_usage_errors_are_printed_inert(tmp_path):
    # Click quotes most values it echoes back (repr), but not an unexpected extra argument.
    result = run("demo", str(tmp_path / "demo"), f"extra{OSC_TITLE}\x1b[2J")
    assert result.exit_code == 2
    assert f"Got unexpected extra argument (extra{OSC_SHOWN}[U+001B][2J)" in result.stderr
    assert not (tmp_path / "demo").exists()
