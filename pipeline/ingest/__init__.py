"""Validated ingest of a clinic export into DuckDB (README "Input: the canonical export")."""

from pipeline.ingest.load import ingest
from pipeline.ingest.report import FileResult, LoadReport

__all__ = ["FileResult", "LoadReport", "ingest"]
