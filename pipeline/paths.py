"""Where the project's own assets live (the repo is installed editable: `pip install -e .`)."""

import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"
TEMPLATES_DIR = ROOT / "report_templates"


@functools.cache
def sql(name: str) -> str:
    """Text of sql/<name> (e.g. "validate/sessions.sql"), read once per process: the files are
    part of the installed code, and a load or a report reads some of them dozens of times."""
    return (SQL_DIR / name).read_text(encoding="utf-8")
