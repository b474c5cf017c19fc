"""What a load did, per file: the reconciliation `read = loaded + duplicates + rejected`.

The printed report carries no identifiers: counts, file names, columns and reasons only.
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
    loaded: int
    duplicates: int
    rejected: int
    ignored_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def adds_up(self) -> bool:
        return self.read == self.loaded + self.duplicates + self.rejected


@dataclass(frozen=True)
class LoadReport:
    load_id: int
    db_path: str
    load_date: date
    files: list[FileResult]
    ignored_files: list[str]
    top_rejects: list[tuple[str, str | None, str, int]]

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.files)

    def render(self) -> str:
        lines = [f"Load {self.load_id} into {self.db_path} (day of load {self.load_date})", ""]
        header = ("file", "read", "loaded", "duplicates", "rejected", "")
        rows = [header]
        for f in self.files:
            rows.append(
                (
                    f.file,
                    str(f.read),
                    str(f.loaded),
                    str(f.duplicates),
                    str(f.rejected),
                    "ok" if f.adds_up else "DOES NOT ADD UP",
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        for r in rows:
            lines.append(
                "  ".join(
                    c.ljust(w) if i == 0 else c.rjust(w)
                    for i, (c, w) in enumerate(zip(r, widths, strict=True))
                )
            )
        lines.append("")
        lines.append("read = loaded + duplicates + rejected, for every file above.")
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
