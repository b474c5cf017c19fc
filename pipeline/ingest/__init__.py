"""Validated ingest of a clinic export into DuckDB (SPEC §1)."""

from pipeline.ingest.load import ingest
from pipeline.ingest.report import FileResult, LoadReport

__all__ = ["FileResult", "LoadReport", "ingest"]
