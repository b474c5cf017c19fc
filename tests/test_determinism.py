"""Determinism (issue 9): the same export, config and month give byte-identical outputs, from
two separate runs of the whole pipeline (two ingests into two databases). This is the one
end-to-end rerun; each report writer's own byte-identity (from two loads, with and without
SOURCE_DATE_EPOCH) is checked in its test module. The same two runs show that `outcomes run`
computes the outcomes once (pipeline/results.py)."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import cli

pytestmark = pytest.mark.slow  # two whole runs of the pipeline

MONTH = "2026-09"
EPOCH = 1_790_000_000  # 2026-09-21T14:13:20Z


def outcomes(*args: str | Path, env: dict[str, str | None] | None = None) -> None:
    done = cli(*args, env=env)
    assert done.exit_code == 0, done.stderr


def outputs(out: Path) -> dict[str, bytes]:
    """Every file a run wrote except the database (whose pages hold load times by design)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and not p.name.startswith("clinic.duckdb")}


def created(pdf: Path) -> str:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True,
                          check=True).stdout
    return next(line for line in info.splitlines() if line.startswith("CreationDate:"))


@pytest.fixture(scope="module")
def computed(two_runs: dict[str, Any]) -> list[date]:
    """The as-of days the outcome computation was called for during the runs."""
    return two_runs["computed"]


@pytest.fixture(scope="module")
def runs(two_runs: dict[str, Any]) -> list[Path]:
    """`outcomes run` twice on one demo export (80 patients, seed 3; small-cell suppression on),
    each into its own folder (and database), counting the calls of the outcome computation
    (tests/conftest.py `two_runs`, made once: test_privacy.py reads the first run)."""
    for code, output in two_runs["done"].values():
        assert code == 0, output
    return [two_runs["first"], two_runs["second"]]


def test_outcomes_run_computes_the_outcomes_once(runs: list[Path], computed: list[date]) -> None:
    """Metrics, monthly, evidence and payer outputs of each run come from one computation."""
    for out in runs:
        for written in ("metrics/metrics.json", f"reports/monthly-{MONTH}.pdf",
                        "reports/evidence-2026-09-30.pdf", "payer/index.csv"):
            assert (out / written).is_file(), written
    assert computed == [date(2026, 9, 30)] * 2  # once per run


def test_two_runs_give_byte_identical_outputs(runs: list[Path]) -> None:
    first, second = (outputs(out) for out in runs)
    assert sorted(first) == sorted(second)
    kinds = {Path(name).suffix for name in first}
    assert {".csv", ".json", ".pdf"} <= kinds
    assert sum(name.endswith(".pdf") for name in first) >= 3  # monthly, evidence, payer
    differing = [name for name in first if first[name] != second[name]]
    assert differing == []
    line = created(runs[0] / "reports" / f"monthly-{MONTH}.pdf")
    assert "Sep 30" in line and "2026" in line, line  # end of the report month


def test_source_date_epoch_dates_the_pdf_of_a_run_database(runs: list[Path],
                                                           two_runs: dict[str, Any],
                                                           tmp_path: Path) -> None:
    """With SOURCE_DATE_EPOCH set the PDF carries that date; the JSON is the same bytes."""
    outcomes("report", "monthly", "--db", runs[0] / "clinic.duckdb", "--month", MONTH,
             "--out", tmp_path, "--config", two_runs["config"],
             env={"SOURCE_DATE_EPOCH": str(EPOCH)})
    assert (tmp_path / f"monthly-{MONTH}.json").read_bytes() == \
        (runs[0] / "reports" / f"monthly-{MONTH}.json").read_bytes()
    line = created(tmp_path / f"monthly-{MONTH}.pdf")
    assert "Sep 21" in line and "2026" in line, line
