"""Where the project's own assets live (the repo is installed editable: `pip install -e .`)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"
TEMPLATES_DIR = ROOT / "report_templates"


def sql(name: str) -> str:
    """Text of sql/<name> (e.g. "validate/sessions.sql")."""
    return (SQL_DIR / name).read_text(encoding="utf-8")
