"""CSV bytes before DuckDB reads them: what the file really is, its encoding and line ends,
physical lines, blank and comment lines, the header and the delimiter.

DuckDB's own reader rejects Windows-1252 bytes and needs an extension for that encoding, so
the file is checked in Python in chunks and, when not UTF-8, transcoded to a UTF-8 working
copy (TECH-NOTES). The same goes for UTF-16 ("Unicode text" from Excel) and for line ends
DuckDB's strict parser cannot mix (CR only, CRLF mixed with LF). Counting lines here lets
ingest prove that no row was silently swallowed. Nothing reads a whole file into memory:
the kind of file is judged from its first bytes, everything else in one streaming pass.
See docs/bad-input-files.md for what the user sees in each case.
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
HEAD_BYTES = 1 << 20  # the header (and any comment lines above it) must lie in the first MiB
SNIFF_BYTES = 1 << 16  # enough to tell text from binary
MAX_LINE_BYTES = 8 << 20  # the most one row may hold; longer lines are rejected at their line
LINE_START = re.compile(rb"\n[\r\n#]")  # a newline followed by a blank or a comment line
CONTROL_BYTES = bytes(c for c in range(32) if c not in (9, 10, 12, 13, 26))  # NUL included
CONTROL_SHARE = 0.05  # more control characters than this in the first bytes: not text
COMMENT = "#"

# Files that are not text at all, recognised from their first bytes.
OLD_EXCEL = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2: .xls (and old .doc)
ZIP = (b"PK\x03\x04", b"PK\x05\x06")  # XLSX is a ZIP archive
PARQUET = b"PAR1"
NOT_TEXT = (
    (b"\x89PNG\r\n\x1a\n", "it is a PNG image"),
    (b"%PDF-", "it is a PDF document"),
    (b"\x1f\x8b", "it is a gzip-compressed file"),
    (b"\xff\xd8\xff", "it is a JPEG image"),
    (b"SQLite format 3\x00", "it is an SQLite database"),
    (b"7z\xbc\xaf\x27\x1c", "it is a 7-Zip archive"),
    (b"Rar!\x1a\x07", "it is a RAR archive"),
)
# Byte-order marks that decide the encoding outright (UTF-32 LE before UTF-16 LE: same start).
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
NUL_BYTES = "it holds binary data: NUL bytes in its first bytes"
CONTROL_CHARACTERS = "it holds binary data: control characters in its first bytes"
EXPORT_AGAIN = "export the table again as CSV (UTF-8), XLSX or Parquet"


@dataclass
class CsvText:
    path: Path  # the UTF-8 file DuckDB reads (a working copy when transcoded or re-lined)
    encoding: str  # utf-8, utf-8-sig, cp1252, latin-1, utf-16-le/-be or utf-32-le/-be
    sha256: str  # of the file as exported
    total_lines: int  # physical lines, the header included
    blank_lines: list[int] = field(default_factory=list)  # empty lines below the header
    header: list[str] = field(default_factory=list)
    delimiter: str = ","
    header_line: int = 1  # 1-based; lines above it are blank or comments
    comment_lines: list[tuple[int, str]] = field(default_factory=list)  # below the header
    notes: list[str] = field(default_factory=list)  # what the load report should say


def _head(path: Path, size: int = HEAD_BYTES) -> bytes:
    with path.open("rb") as f:
        return f.read(size)


def sniff_kind(path: Path) -> str:
    """'text', 'empty', 'xls', 'zip', 'parquet', or what else the file is ("it is a PNG
    image", "it holds binary data: …"), from its first bytes."""
    head = _head(path, SNIFF_BYTES)
    if not head:
        return "empty"
    if head.startswith(OLD_EXCEL):
        return "xls"
    if head.startswith(ZIP):
        return "zip"
    if head.startswith(PARQUET):
        return "parquet"
    for magic, what in NOT_TEXT:
        if head.startswith(magic):
            return what
    if any(head.startswith(bom) for bom, _ in BOMS):
        return "text"
    if b"\x00" in head and _utf16_from_nul_bytes(head):
        return "text"
    if _control_share(head) > CONTROL_SHARE:  # a stray NUL in text is named by its line later
        return NUL_BYTES if b"\x00" in head else CONTROL_CHARACTERS
    return "text"


def not_text_error(label: str, kind: str) -> InputError:
    """The one-paragraph message for a file that is not the text it claims to be."""
    if kind == "xls":
        return InputError(
            f"{label}: old Excel .xls format (a binary workbook), which is not read; open it "
            "in Excel and save it as .xlsx or as CSV UTF-8, then load again"
        )
    if kind == "zip":
        return InputError(
            f"{label}: a ZIP archive, not CSV text (and not an XLSX workbook); unpack it, or "
            f"{EXPORT_AGAIN}"
        )
    what = {"parquet": "it is a Parquet file", "empty": "it is empty"}.get(kind, kind)
    return InputError(f"{label}: not a text file ({what}); {EXPORT_AGAIN}")


def _control_share(head: bytes) -> float:
    return (len(head) - len(head.translate(None, CONTROL_BYTES))) / max(len(head), 1)


def _utf16_from_nul_bytes(head: bytes) -> str | None:
    """UTF-16 without a byte-order mark: mostly-ASCII text has a NUL in every other byte."""
    head = head[: len(head) // 2 * 2]
    even, odd = head[0::2], head[1::2]
    nul_even, nul_odd = even.count(0), odd.count(0)
    if nul_odd > 0.3 * len(odd) and nul_even < 0.05 * len(even):
        return "utf-16-le"
    if nul_even > 0.3 * len(even) and nul_odd < 0.05 * len(odd):
        return "utf-16-be"
    return None


def _valid_as(path: Path, encoding: str) -> bool:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    ascii_compatible = encoding in ("utf-8", "cp1252")
    try:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                # Plain ASCII is valid in both (most exports): no need to decode it, unless a
                # character split at the chunk's start is still pending in the decoder.
                if not (ascii_compatible and chunk.isascii() and not decoder.getstate()[0]):
                    decoder.decode(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(path: Path, label: str | None = None) -> str:
    """A byte-order mark decides (UTF-8, UTF-16, UTF-32); NUL bytes in every other byte mean
    UTF-16 without one; then UTF-8, else Windows-1252, else Latin-1. Latin-1 decodes any
    bytes, so binary files are stopped first (NUL bytes, control characters)."""
    label = label or path.name
    head = _head(path, SNIFF_BYTES)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig" if _valid_as(path, "utf-8") else _single_byte(path)
    for bom, encoding in BOMS:
        if head.startswith(bom):
            return encoding
    if b"\x00" in head and (utf16 := _utf16_from_nul_bytes(head)):
        return utf16
    if (kind := sniff_kind(path)) not in ("text", "empty"):
        raise not_text_error(label, kind)
    return "utf-8" if _valid_as(path, "utf-8") else _single_byte(path)


def _single_byte(path: Path) -> str:
    return "cp1252" if _valid_as(path, "cp1252") else "latin-1"


def _transcode(path: Path, encoding: str, work_dir: Path, label: str) -> Path:
    target = work_dir / f"{path.stem}.utf8.csv"
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    fed = 0  # bytes handed to the decoder so far
    started = False
    try:
        with path.open("rb") as src, target.open("w", encoding="utf-8", newline="") as dst:
            while chunk := src.read(CHUNK):
                fed += len(chunk)
                text = decoder.decode(chunk)
                if not started and text:
                    text = text.removeprefix("\ufeff")  # the BOM is not part of the header
                    started = True
                dst.write(text)
            dst.write(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        where = fed - len(exc.object) + exc.start + 1  # the decoder's input ends at byte `fed`
        raise InputError(
            f"{label}: not valid {encoding.upper()} text at byte {where} (the file is cut "
            f"short or damaged); {EXPORT_AGAIN}"
        ) from exc
    return target


def _normalize_line_ends(path: Path, work_dir: Path) -> Path:
    """CRLF and lone CR -> LF, streamed (DuckDB's strict parser takes one kind of line end)."""
    target = work_dir / f"{path.stem}.lf.csv"
    carry = b""
    with path.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(CHUNK):
            data = carry + chunk
            data, carry = (data[:-1], b"\r") if data.endswith(b"\r") else (data, b"")
            dst.write(data.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        dst.write(carry.replace(b"\r", b"\n"))
    return target


@dataclass
class _Scan:
    sha256: str
    lines: int
    blanks: list[int]
    comments: list[tuple[int, str]]
    head: bytes
    mixed_line_ends: bool
    lone_cr: bool
    nul_line: int | None = None


def _line_starts(
    block: bytes, before: int, blanks: list[int], comments: list[tuple[int, str]]
) -> None:
    """Blank and comment lines among the lines starting in block (its first byte starts a line;
    `before` lines precede it). One regex pass; line numbers counted incrementally."""

    def classify(pos: int, line: int) -> None:
        first = block[pos : pos + 1]
        if first in (b"\n", b"\r"):
            blanks.append(line)
        elif first == b"#":
            end = block.find(b"\n", pos, pos + 400)
            text = block[pos : end if end >= 0 else pos + 400][:200]
            comments.append((line, text.decode("utf-8", "replace").rstrip("\r")))

    classify(0, before + 1)
    counted, prev = 0, 0
    for m in LINE_START.finditer(block):
        counted += block.count(b"\n", prev, m.start() + 1)
        prev = m.start() + 1
        classify(prev, before + counted + 1)


def _scan_lines(path: Path) -> _Scan:
    """SHA-256, physical lines, blank and comment lines, line-end kinds and NUL bytes, in one
    pass over whole lines (the part after the last newline of a chunk is carried over)."""
    digest = hashlib.sha256()
    lines = cr = crlf = 0
    blanks: list[int] = []
    comments: list[tuple[int, str]] = []
    head = tail = b""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            head = head or chunk[:HEAD_BYTES]
            data = tail + chunk
            cut = data.rfind(b"\n") + 1
            whole, tail = data[:cut], data[cut:]
            if not whole:
                continue
            if (nul := whole.find(b"\x00")) >= 0:
                return _Scan("", 0, [], [], head, False, False, lines + whole.count(b"\n", 0, nul) + 1)
            _line_starts(whole, lines, blanks, comments)
            if b"\r" in whole:  # a fast search first: most files have no CR at all
                cr, crlf = cr + whole.count(b"\r"), crlf + whole.count(b"\r\n")
            lines += whole.count(b"\n")
    line_feeds = lines
    if tail:
        if (nul := tail.find(b"\x00")) >= 0:
            return _Scan("", 0, [], [], head, False, False, lines + 1)
        _line_starts(tail, lines, blanks, comments)
        cr += tail.count(b"\r")
        lines += 1  # a last line without a newline
    mixed = cr > 0 and not cr == crlf == line_feeds  # pure LF and pure CRLF are fine
    return _Scan(digest.hexdigest(), lines, blanks, comments, head, mixed, cr > crlf)


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


def _find_header(head: bytes, whole_file: bool, label: str) -> tuple[int, str, int, int]:
    """(line number, text) of the header: the first line that is neither blank nor a comment;
    and how many comment and blank lines lie above it."""
    lines = head.decode("utf-8", "replace").split("\n")
    if not whole_file:
        lines = lines[:-1]  # the last line of a head cut short is not whole
    comments = blanks = 0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r").lstrip("\ufeff") if number == 1 else raw.rstrip("\r")
        if not line.strip():
            blanks += 1
        elif line.startswith(COMMENT):
            comments += 1
        else:
            return number, line, comments, blanks
    where = "the file holds" if whole_file else f"the first {HEAD_BYTES >> 20} MiB hold"
    raise InputError(
        f"{label}: no header row: {where} only blank lines or comment lines starting with "
        f"'{COMMENT}'; the first other line must be the header row; export the table again "
        "with its header row"
    )


def prepare_csv(path: Path, work_dir: Path, label: str) -> CsvText:
    """Check the bytes, transcode and re-line if needed, count lines, find the header."""
    if path.stat().st_size == 0:
        raise InputError(f"{label}: the file is empty; export it again with its header row")
    notes: list[str] = []
    encoding = detect_encoding(path, label)
    work_path = path
    if not encoding.startswith("utf-8"):
        work_path = _transcode(path, encoding, work_dir, label)
        bom = any(_head(path, 4).startswith(b) for b, _ in BOMS)
        notes.append(
            f"not UTF-8; read as {encoding}"
            + ("" if bom or not encoding.startswith("utf-16") else
               " (no byte-order mark; recognised from its NUL bytes)")
        )
    cr_note = "line ends are CR (old Mac) in places; each CR read as a line end"
    head = _head(work_path)
    if b"\r" in head and b"\n" not in head:  # CR only: re-line first, the scan splits on LF
        work_path = _normalize_line_ends(work_path, work_dir)
        notes.append(cr_note)
    scan = _scan_lines(work_path)
    if scan.mixed_line_ends and scan.nul_line is None:
        work_path = _normalize_line_ends(work_path, work_dir)
        if scan.lone_cr:
            notes.append(cr_note)
        scan = _scan_lines(work_path)
    if scan.nul_line is not None:
        raise InputError(
            f"{label}: line {scan.nul_line} holds a NUL byte, which text never does: the file "
            f"is damaged or not a text export; {EXPORT_AGAIN}"
        )
    sha = scan.sha256 if work_path == path else _sha256(path)  # provenance: the file as exported
    header_line, header_text, comments_above, blanks_above = _find_header(
        scan.head, whole_file=work_path.stat().st_size <= HEAD_BYTES, label=label
    )
    if header_line > 1:
        parts = [f"{n} {kind} line{'s' if n > 1 else ''}"
                 for n, kind in ((comments_above, "comment"), (blanks_above, "blank")) if n]
        notes.append(f"header row on line {header_line}; {' and '.join(parts)} above it skipped")
    delimiter = sniff_delimiter(header_text)
    header = next(csv.reader(io.StringIO(header_text), delimiter=delimiter))
    return CsvText(
        work_path,
        encoding,
        sha,
        scan.lines,
        [b for b in scan.blanks if b > header_line],
        header,
        delimiter,
        header_line,
        [c for c in scan.comments if c[0] > header_line],
        notes,
    )
