"""CSV bytes before DuckDB reads them: encoding, physical lines, blank lines, header, delimiter.

DuckDB's own reader rejects Windows-1252 bytes and needs an extension for that encoding, so
the file is checked in Python in chunks and, when not UTF-8, transcoded to a UTF-8 working
copy (TECH-NOTES). Counting lines here lets ingest prove that no row was silently swallowed.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import InputError

CHUNK = 1 << 24  # 16 MiB
EMPTY_LINE = re.compile(rb"(?m)^\r?\n")  # DuckDB skips only truly empty lines


@dataclass
class CsvText:
    path: Path  # the UTF-8 file DuckDB reads (a working copy when transcoded)
    encoding: str  # utf-8, utf-8-sig, cp1252 or latin-1
    sha256: str
    total_lines: int  # physical lines, the header included
    blank_lines: list[int] = field(default_factory=list)  # 1-based numbers of empty lines
    header: list[str] = field(default_factory=list)
    delimiter: str = ","


def _valid_as(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    try:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path) -> str:
    """UTF-8 (with or without BOM), else Windows-1252, else Latin-1 (which always decodes)."""
    with path.open("rb") as f:
        head = f.read(3)
    if _valid_as(path, "utf-8"):
        return "utf-8-sig" if head == codecs.BOM_UTF8 else "utf-8"
    return "cp1252" if _valid_as(path, "cp1252") else "latin-1"


def _transcode(path: Path, encoding: str, work_dir: Path) -> Path:
    target = work_dir / f"{path.stem}.utf8.csv"
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    with path.open("rb") as src, target.open("w", encoding="utf-8", newline="") as dst:
        while chunk := src.read(CHUNK):
            dst.write(decoder.decode(chunk))
        dst.write(decoder.decode(b"", final=True))
    return target


def _scan_lines(path: Path) -> tuple[str, int, list[int], bytes]:
    """SHA-256, physical line count, empty-line numbers and the first line, in one pass."""
    digest = hashlib.sha256()
    lines = 0
    blanks: list[int] = []
    first = b""
    tail = b""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            data = tail + chunk
            cut = data.rfind(b"\n") + 1  # process whole lines only; carry the rest
            whole, tail = data[:cut], data[cut:]
            if not first and (lines == 0):
                first = (whole or data).split(b"\n", 1)[0]
            for m in EMPTY_LINE.finditer(whole):
                blanks.append(lines + whole.count(b"\n", 0, m.start()) + 1)
            lines += whole.count(b"\n")
    if tail:
        lines += 1  # a last line without a newline
        if not first:
            first = tail
        if tail.strip(b"\r") == b"":
            blanks.append(lines)
    return digest.hexdigest(), lines, blanks, first


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sniff_delimiter(header_line: str) -> str:
    """The header's delimiter: the candidate that splits it into the most fields."""
    candidates = [",", ";", "\t", "|"]
    counts = {d: len(next(csv.reader([header_line], delimiter=d))) for d in candidates}
    best = max(candidates, key=lambda d: (counts[d], d == ","))
    return best if counts[best] > 1 else ","


def prepare_csv(path: Path, work_dir: Path, label: str) -> CsvText:
    """Check encoding, transcode if needed, count lines and read the header."""
    if path.stat().st_size == 0:
        raise InputError(f"{label}: the file is empty; export it again with its header row")
    encoding = detect_encoding(path)
    work_path = path if encoding.startswith("utf-8") else _transcode(path, encoding, work_dir)
    sha, total, blanks, first = _scan_lines(work_path)
    if work_path != path:  # provenance is the file as exported, not the working copy
        sha = _sha256(path)
    header_line = first.decode("utf-8").lstrip("\ufeff").rstrip("\r")
    if not header_line.strip():
        raise InputError(f"{label}: line 1 is empty; the first line must be the header row")
    delimiter = sniff_delimiter(header_line)
    header = next(csv.reader(io.StringIO(header_line), delimiter=delimiter))
    return CsvText(work_path, encoding, sha, total, blanks, header, delimiter)
