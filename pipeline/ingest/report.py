"""What a load did, per file: `read = added + corrected + unchanged + duplicates + rejected`.

The printed report carries no identifiers: counts, file names, columns and reasons only.
Every correction and retirement is listed row by row in the database's `changes` table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class FileResult:
    file: str
    table: str
    format: str
    encoding: str | None
    sha256: str
    read: int
    added: int
    corrected: int
    unchanged: int
    duplicates: int
    rejected: int
    retired: int = 0
    current_before: int = 0  # the table's current rows before this file (derived patients aside)
    ignored_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def loaded(self) -> int:
        """Rows written: added or corrected."""
        return self.added + self.corrected

    @property
    def adds_up(self) -> bool:
        return self.read == (self.added + self.corrected + self.unchanged + self.duplicates
                             + self.rejected)

    @property
    def equation(self) -> str:
        return (f"read {self.read} = added {self.added} + corrected {self.corrected} + unchanged "
                f"{self.unchanged} + duplicates {self.duplicates} + rejected {self.rejected}")


COLUMNS = ("read", "added", "corrected", "unchanged", "duplicates", "rejected", "retired")


@dataclass(frozen=True)
class LoadReport:
    load_id: int
    db_path: str
    load_date: date
    files: list[FileResult]
    ignored_files: list[str]
    top_rejects: list[tuple[str, str | None, str, int]]
    mode: str = "snapshot"
    # (table, change, column or reason, rows) from `changes`, without ids
    changes: list[tuple[str, str, str, int]] | None = None

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    def _table(self) -> list[str]:
        rows: list[tuple[str, ...]] = [("file", *COLUMNS, "")]
        for f in self.files:
            rows.append((f.file, *(str(getattr(f, c)) for c in COLUMNS),
                         "ok" if f.adds_up else "DOES NOT ADD UP"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        return [
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                      for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip()
            for r in rows
        ]

    def _changes(self) -> list[str]:
        lines: list[str] = []
        for table in sorted({t for t, _, _, _ in self.changes or []}):
            for change, label in (("corrected", "corrected, by column"), ("retired", "retired")):
                parts = [(detail, n) for t, c, detail, n in self.changes or []
                         if t == table and c == change]
                if parts:
                    lines.append(f"  {table} {label}:")
                    lines.extend(f"  {n:>8}  {detail}" for detail, n in parts)
        return lines

    def render(self) -> str:
        kind = ("append (rows added or corrected by id; nothing retired)" if self.mode == "append"
                else "snapshot (each file replaces its table's rows; tables without a file are "
                     "unchanged)")
        lines = [f"Load {self.load_id} into {self.db_path} (day of load {self.load_date})",
                 f"Mode: {kind}", ""]
        lines.extend(self._table())
        lines.append("")
        lines.append("read = added + corrected + unchanged + duplicates + rejected, for every file "
                     "above; retired rows are kept in history.")
        changes = self._changes()
        if changes:
            lines.append("")
            lines.append(f"Corrections and retirements (every row: SELECT * FROM changes "
                         f"WHERE load_id = {self.load_id}):")
            lines.extend(changes)
        for f in self.files:
            for note in f.notes:
                lines.append(f"note: {f.file}: {note}")
            if f.ignored_columns:
                lines.append(
                    f"note: {f.file}: columns not in the contract, not loaded: "
                    f"{', '.join(f.ignored_columns)}"
                )
        for name in self.ignored_files:
            lines.append(f"note: {name} is not an export file of this pipeline; ignored")
        if self.top_rejects:
            lines.append("")
            lines.append(
                f"Most frequent reject reasons (all rows: SELECT * FROM rejects "
                f"WHERE load_id = {self.load_id}):"
            )
            for file, column, reason, n in self.top_rejects:
                lines.append(f"  {n:>6}  {file} {column or '(row)'}: {reason}")
        return "\n".join(lines)
