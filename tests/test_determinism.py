"""Determinism (issue 9): the same export, config and month give byte-identical outputs, from
two separate runs of the whole pipeline (two ingests into two databases)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

MONTH = "2026-09"
EPOCH = 1_790_000_000  # 2026-09-21T14:13:20Z


def outcomes(*args: str | Path, env: dict[str, str] | None = None) -> None:
    done = subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr


def outputs(out: Path) -> dict[str, bytes]:
    """Every file a run wrote except the database (whose pages hold load times by design)."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and not p.name.startswith("clinic.duckdb")}


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("determinism") / "export"
    outcomes("demo", folder, "--patients", "60", "--seed", "5")
    return folder


@pytest.mark.parametrize("epoch", [None, EPOCH], ids=["as-of dates", "SOURCE_DATE_EPOCH"])
def test_two_runs_give_byte_identical_outputs(export, tmp_path, epoch):
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    if epoch is not None:
        env["SOURCE_DATE_EPOCH"] = str(epoch)
    runs = []
    for name in ("first", "second"):
        outcomes("run", export, "--out", tmp_path / name, "--month", MONTH, env=env)
        runs.append(outputs(tmp_path / name))
    first, second = runs
    assert sorted(first) == sorted(second)
    kinds = {Path(name).suffix for name in first}
    assert {".csv", ".json", ".pdf"} <= kinds
    assert sum(name.endswith(".pdf") for name in first) >= 3  # monthly, evidence, payer
    differing = [name for name in first if first[name] != second[name]]
    assert differing == []
    info = subprocess.run(["pdfinfo", str(tmp_path / "first" / "reports" /
                                          f"monthly-{MONTH}.pdf")],
                          capture_output=True, text=True, check=True).stdout
    created = next(line for line in info.splitlines() if line.startswith("CreationDate:"))
    if epoch is not None:
        assert "Sep 21" in created and "2026" in created, created
    else:
        assert "Sep 30" in created and "2026" in created, created  # end of the report month
