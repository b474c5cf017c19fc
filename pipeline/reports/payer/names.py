"""File names of payer packets: an id is used verbatim only when it is short and plain, so no
export id can climb out of the output folder or collide with another packet's files.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

PLAIN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")


SLUG_CHARS = 24


DIGEST_CHARS = 10


def safe_id(value: str) -> str:
    """File-name part for an id: the id itself when plain (letters, digits, `_`, `-`; starting
    with a letter or digit; at most 40 characters), else an ASCII slug of it (at most 24
    characters) + "-" + the first 10 hex digits of the SHA-256 of the id.

    So a part never holds `/`, `\\`, `..`, spaces, control or bidi characters, never starts with
    `-` or `.`, is at most 35 characters when derived, and depends on the id alone (the same file
    name in a --patient run and in a month batch); two ids that slug alike differ by digest.
    """
    if PLAIN_ID.fullmatch(value):
        return value
    slug = re.sub(r"[^A-Za-z0-9]+", "-", value).strip("-")[:SLUG_CHARS].rstrip("-") or "id"
    return f"{slug}-{hashlib.sha256(value.encode('utf-8')).hexdigest()[:DIGEST_CHARS]}"


def file_stem(patient_id: str, course_id: str) -> str:
    """`<patient part>_<course part>` (see safe_id): the packet's PDF, HTML and attachments."""
    return f"{safe_id(patient_id)}_{safe_id(course_id)}"


def unique_stems(packets: list[dict[str, Any]]) -> None:
    """Stems that still coincide (plain ids `a_b` + `c` and `a` + `b_c`, or `P1` and `p1` on a
    case-insensitive file system) get a short digest of the raw id pair, so no file is
    overwritten."""
    seen: dict[str, int] = {}
    for p in packets:
        key = p["stem"].casefold()
        seen[key] = seen.get(key, 0) + 1
    for p in packets:
        if seen[p["stem"].casefold()] > 1:
            raw = f"{p['course']['patient_id']}\x00{p['course']['course_id']}".encode()
            p["stem"] += "-" + hashlib.sha256(raw).hexdigest()[:8]
