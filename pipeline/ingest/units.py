"""A load unit: one source of rows for one canonical table, staged the same way whatever its format."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from pipeline.ingest.contract import TableContract
from pipeline.ingest.readers import Staged


@dataclass(frozen=True)
class LoadUnit:
    """`stage(con, work_dir)` leaves temp relations `raw` (rows in line order) and
    `stage_rejects` (see readers.py)."""

    label: str  # the file name rejects and loads name (a source file, for adapters)
    contract: TableContract
    stage: Callable[[duckdb.DuckDBPyConnection, Path], Staged]
