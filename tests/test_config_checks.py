"""The config is checked as a whole (issue 15, items 2 and 3; README "How the config is
checked"): every problem at once, one line each naming the file, the [section] key, the value
and what is allowed; instrument names matched loosely as ingest matches them; no traceback for
any config value, the DuckDB memory settings included."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from pipeline import cli
from pipeline.cli import main
from pipeline.config import ConfigError, load_config
from pipeline.instruments import BUILTIN, instrument_problems
from pipeline.reports.evidence.families import evidence_settings
from pipeline.reports.payer.criteria import payer_rules
from tests.conftest import load, write

README = Path(__file__).resolve().parent.parent / "README.md"


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "outcomes.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    """The lines of the ConfigError for this file, each checked to name the file."""
    with pytest.raises(ConfigError) as error:
        load_config(path)
    lines = str(error.value).splitlines()
    prefix = f"{path}: "
    assert all(line.startswith(prefix) for line in lines), lines
    return [line.removeprefix(prefix) for line in lines]


# The contradictions of the issue, in one file: each is one line, in file order.
CONTRADICTIONS = """\
course_gap_days = 30
[definitions]
response_pct = 150
course_gap_days = 0
endpoint_window_days = 0
small_cell_max = 2.5
[clinic]
page_size = "Z9"
[database]
threads = 0
[ingest]
max_retired_share = 1.5
[instruments."phq9"]
remission = 40
[instruments."GAD-7"]
item_count = 0
[instruments.MADRS]
total_min = 61
[instruments."BDI-II"]
scoring = "magic"
[instruments."HAM-D17"]
caseness = -1
[instruments."PCL-5"]
item_max = 3
[instruments."QIDS-SR16"]
remission = 12
caseness = 11
[evidence]
primary_instrument = "PHQ-8"
[payer.entry]
thresholds = { "phq 9" = 28 }
"""
KNOWN = "BDI-II, GAD-7, HAM-D17, MADRS, PCL-5, PHQ-9, QIDS-SR16"
EXPECTED = [
    "unknown key 'course_gap_days' = 30 outside any [section]; it belongs under [definitions]",
    "[definitions] response_pct = 150: must be a number above 0 and at most 100",
    "[definitions] course_gap_days = 0: must be a whole number of at least 1",
    "[definitions] endpoint_window_days = 0: must be a whole number of at least 1",
    "[definitions] small_cell_max = 2.5: must be a whole number of at least 0",
    '[clinic] page_size = "Z9": must be one of "A4", "Letter"',
    "[database] threads = 0: must be a whole number of at least 1",
    "[ingest] max_retired_share = 1.5: must be a number from 0 to 1",
    '[instruments."phq9"] remission = 40: must be within the PHQ-9 total range 0–27',
    '[instruments."GAD-7"] item_count = 0: must be at least 1 when items are scored '
    '(scoring = "sum"); use scoring = "none" for a total without items',
    '[instruments."MADRS"] total_min = 61, total_max = 60: total_min must be below total_max',
    '[instruments."BDI-II"] scoring = "magic": must be one of "sum", "qids", "none"',
    '[instruments."HAM-D17"] caseness = -1: must be within the HAM-D17 total range 0–52',
    # 20 items of at most 3 add up to 60 at most: a PCL-5 total of 61-80 could never match.
    '[instruments."PCL-5"] item_count = 20, item_min = 0, item_max = 3: the items add up to '
    '0–60, which does not cover the total range 0–80 (scoring = "sum"); correct the item '
    'range, or use scoring = "none"',
    '[instruments."QIDS-SR16"] remission = 12: must be below caseness (11); a score cannot be '
    "both remitted and a case",
    f'[evidence] primary_instrument: "PHQ-8" is not a known instrument; known: {KNOWN} '
    "(matched loosely: PHQ9, phq-9, PHQ 9)",
    '[payer] entry.thresholds."phq 9" = 28: must be within the PHQ-9 total range 0–27',
]


def test_every_contradiction_is_reported_at_once_one_line_each(tmp_path):
    assert problems(config_file(tmp_path, CONTRADICTIONS)) == EXPECTED


@pytest.mark.parametrize(("text", "line"), [
    ("[definitions]\npartial_response_pct = 60\n",
     "[definitions] partial_response_pct = 60: must be below response_pct (50); a partial "
     "response is a smaller reduction than a response"),
    ("[definitions]\nresponse_pct = 40\npartial_response_pct = 40\n",
     "[definitions] partial_response_pct = 40: must be below response_pct (40); a partial "
     "response is a smaller reduction than a response"),
    ("[definitions]\npartial_response_pct = 0\n",
     "[definitions] partial_response_pct = 0: must be a number above 0 and below 100"),
    ("[definitions]\nsmall_cell_max = -1\n",
     "[definitions] small_cell_max = -1: must be a whole number of at least 0"),
    ("[definitions]\nbaseline_window_days = 0\n",
     "[definitions] baseline_window_days = 0: must be a whole number of at least 1"),
    ("[definitions]\nsuppress_small_cells = 1\n",
     "[definitions] suppress_small_cells = 1: must be true or false"),
    ('[instruments."PHQ-9"]\ntotal_min = 30\n',
     '[instruments."PHQ-9"] total_min = 30, total_max = 27: total_min must be below total_max'),
    ('[instruments."PHQ-9"]\nitem_min = 3\nitem_max = 1\n',
     '[instruments."PHQ-9"] item_min = 3, item_max = 1: item_min must be at most item_max'),
    ('[instruments."QIDS"]\nitem_count = 9\n',
     '[instruments."QIDS"] item_count = 9: QIDS scoring reads 16 items'),
    ('[instruments."PHQ-9"]\nreliable_change = 30\n',
     '[instruments."PHQ-9"] reliable_change = 30: must be at most the width of the total '
     "range 0–27 (27)"),
    ('[instruments."PHQ-9"]\nseverity_bands = [[0, 9, "mild"], [5, 27, "severe"]]\n',
     '[instruments."PHQ-9"] severity_bands: the band "severe" must start above the end of '
     '"mild" (9)'),
    ('[instruments."PHQ-9"]\nseverity_bands = [[0, 30, "all"]]\n',
     '[instruments."PHQ-9"] severity_bands: the band [0, 30, "all"] must lie within the total '
     "range 0–27 with low <= high"),
    ('[instruments."PHQ-9"]\nname = "PHQ-8"\n',
     '[instruments."PHQ-9"] has unknown key \'name\'; known keys: total_min, total_max, '
     "item_count, item_min, item_max, remission, caseness, reliable_change, loinc, scoring, "
     "severity_bands, aliases"),
    ('[instruments."PHQ-9"]\nremission = 4\n[instruments."phq 9"]\nremission = 5\n',
     '[instruments."phq 9"] names the same instrument as [instruments."PHQ-9"] (names are '
     "matched loosely); merge the two tables"),
    ('[instruments."EPDS"]\ntotal_min = 0\ntotal_max = 30\nitem_count = 10\nitem_min = 0\n'
     'item_max = 3\naliases = ["phq9"]\n',
     '[instruments."EPDS"] aliases: "phq9" already names PHQ-9'),
    ('[instruments."EPDS"]\ntotal_max = 30\n',
     '[instruments."EPDS"] is a new instrument and needs total_min, item_count, item_min, '
     "item_max"),
    ("[instruments]\nEPDS = 3\n", '[instruments."EPDS"] must be a table of settings, not 3'),
    ("definitions = 3\n",
     "[definitions] must be a table (a [definitions] header with keys below it), not "
     "definitions = 3"),
    ("[definitionz]\nresponse_pct = 50\n",
     "unknown section [definitionz]; known sections: [definitions], [clinic], [database], "
     "[ingest], [instruments], [evidence], [payer]"),
    ('colour = "blue"\n',
     "unknown key 'colour' = \"blue\" outside any [section]; known sections: [definitions], "
     "[clinic], [database], [ingest], [instruments], [evidence], [payer]"),
    ("[definitions]\ncourse_gap_dayz = 30\n",
     "[definitions] has unknown key 'course_gap_dayz'; known keys: course_gap_days, "
     "baseline_window_days, endpoint_window_days, response_pct, partial_response_pct, "
     "suppress_small_cells, small_cell_max"),
    ('[clinic]\nname = " "\n', '[clinic] name = " ": must be a name in quotes, not empty'),
    ('[payer.entry]\nthresholds = { "PHQ9" = 15, "phq-9" = 16 }\n',
     '[payer] entry.thresholds."phq-9": names PHQ-9 a second time (names are matched '
     "loosely); keep one threshold per instrument"),
    ('[payer.continuation]\ninstruments = ["PHQ-9", "PHQ-2"]\n',
     f'[payer] continuation.instruments: "PHQ-2" is not a known instrument; known: {KNOWN} '
     "(matched loosely: PHQ9, phq-9, PHQ 9)"),
])
def test_each_kind_of_problem_is_one_clear_line(tmp_path, text, line):
    assert problems(config_file(tmp_path, text)) == [line]


def test_a_valid_item_range_wider_than_the_total_is_accepted(tmp_path):
    # HAM-D17 items are 0-4 or 0-2; the registry checks 0-4, so 17 x 4 = 68 exceeds 52 (fine).
    config = load_config(config_file(tmp_path, '[instruments."hamd"]\nremission = 6\n'))
    assert config.instruments["HAM-D17"].remission == 6


def test_the_builtin_registry_is_consistent():
    assert {name: instrument_problems(name, inst) for name, inst in BUILTIN.items()} == {
        name: [] for name in BUILTIN}


def test_the_readme_example_config_is_valid(tmp_path):
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Configuration"):]
    example = re.search(r"```toml\n(.*?)```", section, re.DOTALL)
    assert example
    config = load_config(config_file(tmp_path, example.group(1)))
    assert config.instruments["PHQ-9"].remission == 4


def test_instrument_names_in_report_sections_are_matched_loosely(tmp_path):
    config = load_config(config_file(tmp_path, """\
[evidence]
primary_instrument = "PHQ9"
[payer.entry]
thresholds = { "phq 9" = 15, "madrs" = 28 }
[payer.continuation]
instruments = ["Phq-9", "QIDS"]
"""))
    assert evidence_settings(config).primary_instrument == "PHQ-9"
    rules = payer_rules(config)
    assert rules.entry.thresholds == {"PHQ-9": 15, "MADRS": 28}
    assert rules.continuation.instruments == ("PHQ-9", "QIDS-SR16")


@pytest.mark.parametrize(("value", "expected"), [
    ("4GB", 4 * 10**9), ("512MiB", 512 * 2**20), ("1 gb", 10**9), ("0.5GB", 5 * 10**8),
    ("128MB", 128 * 10**6),
])
def test_memory_limit_in_duckdb_size_syntax_is_accepted(tmp_path, value, expected):
    config = load_config(config_file(tmp_path, f'[database]\nmemory_limit = "{value}"\n'))
    assert config.database.memory_limit == value
    # DuckDB reads the value as the same number of bytes (it prints them rounded, in KiB/MiB/GiB).
    con = duckdb.connect(config={"memory_limit": value})
    try:
        shown = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    finally:
        con.close()
    number, unit = shown.split()
    scale = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30}[unit]
    assert abs(float(number) * scale - expected) < 0.1 * scale  # printed truncated to 0.1


# --- the CLI: one line per problem, exit 1, never a traceback ------------------------------


@pytest.fixture
def small_db(export, db):
    write(export, "sessions.csv", "session_id,patient_id,protocol_id,started_at\n"
                                  "S1,P1,IND6,2026-02-02T09:00\n")
    write(export, "assessments.csv", "patient_id,instrument,administered_at,total_score\n"
                                     "P1,PHQ-9,2026-02-01,20\nP1,PHQ-9,2026-02-10,8\n")
    load(export, db)
    return db


def commands(export: Path, db: Path, out: Path) -> list[list[str]]:
    return [
        ["ingest", str(export), "--db", str(db)],
        ["metrics", "--db", str(db), "--as-of", "2026-02-28", "--out", str(out)],
        ["report", "monthly", "--db", str(db), "--month", "2026-02", "--out", str(out)],
        ["report", "evidence", "--db", str(db), "--as-of", "2026-02-28", "--out", str(out)],
        ["report", "payer", "--db", str(db), "--month", "2026-02", "--out", str(out)],
        ["run", str(export), "--out", str(out)],
    ]


@pytest.mark.parametrize(("value", "allowed"), [
    ("lots", 'must be a size such as "4GB" or "512MiB"'),
    ("1MB", "must be at least 128MB: below that DuckDB runs out of memory"),
    ("80", 'must be a size such as "4GB" or "512MiB"'),
    ("0%", 'must be a size such as "4GB" or "512MiB"'),
])
def test_a_bad_memory_limit_is_a_config_error_for_every_command(export, small_db, tmp_path,
                                                                value, allowed):
    path = config_file(tmp_path, f'[database]\nmemory_limit = "{value}"\n')
    before = small_db.read_bytes()
    for args in commands(export, small_db, tmp_path / "out"):
        result = CliRunner().invoke(main, [*args, "--config", str(path)])
        assert result.exit_code == 1, (args, result.output)
        assert isinstance(result.exception, SystemExit), (args, result.exception)
        [line] = result.stderr.splitlines()
        assert line.startswith(f'error: {path}: [database] memory_limit = "{value}": {allowed}')
        assert result.stdout == ""
    assert small_db.read_bytes() == before
    assert not (tmp_path / "out").exists()


def test_every_problem_reaches_the_console_as_its_own_line(export, db, tmp_path):
    path = config_file(tmp_path, CONTRADICTIONS)
    result = CliRunner().invoke(main, ["ingest", str(export), "--db", str(db),
                                       "--config", str(path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"error: {path}: {line}" for line in EXPECTED]
    assert not db.exists()


@pytest.mark.parametrize(("text", "line"), [
    ('[database]\nthreads = "many"\n',
     '[database] threads = "many": must be a whole number of at least 1'),
    ("[database]\ntemp_directory = 5\n",
     "[database] temp_directory = 5: must be a folder path in quotes"),
])
def test_other_database_settings_are_checked(tmp_path, text, line):
    assert problems(config_file(tmp_path, text)) == [line]


def test_temp_directory_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "spill").write_text("x", encoding="utf-8")
    path = config_file(tmp_path, f'[database]\ntemp_directory = "{tmp_path / "spill"}"\n')
    assert problems(path) == [
        f'[database] temp_directory = "{tmp_path / "spill"}": is a file, not a folder; name a '
        "folder (it is created when needed)"]


def test_duckdb_running_out_of_memory_is_one_line_not_a_traceback(capsys):
    def starved() -> None:  # a real DuckDB out-of-memory error, below any limit the config allows
        con = duckdb.connect(config={"memory_limit": "2MB", "threads": 1})
        con.execute("SELECT list(range) FROM range(2000000)").fetchall()

    with pytest.raises(SystemExit) as stop:
        cli._run_guarded(starved)
    assert stop.value.code == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: DuckDB ran out of memory (Out of Memory Error: ")
    assert lines[0].endswith("raise [database] memory_limit in the config, lower [database] "
                             "threads, or set [database] temp_directory to a folder on a disk "
                             "with free space so DuckDB can spill to it, and run again")
