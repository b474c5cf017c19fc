"""Adapters from real-world export formats to load units (README "REDCap" and "FHIR").

An adapter module exposes `units(data_dir, config, mapping) -> (list[LoadUnit], ignored)`.
Each unit stages rows with canonical column names through `readers.stage_arrow`, keeping the
source file name and line, so rejects point into the file the clinic actually exported.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.config import Config
from pipeline.errors import InputError

if TYPE_CHECKING:
    from pipeline.ingest.units import LoadUnit

FORMATS = ("redcap", "fhir")


def adapter_units(
    source_format: str, data_dir: Path, config: Config, mapping: Path | None
) -> tuple[list[LoadUnit], list[str]]:
    if source_format not in FORMATS:
        raise InputError(f"unknown format {source_format!r}; use canonical, {', '.join(FORMATS)}")
    module = importlib.import_module(f"pipeline.ingest.adapters.{source_format}")
    return module.units(data_dir, config, mapping)
