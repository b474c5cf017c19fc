"""Keyed pseudonyms for row-level outputs (`--pseudonymize KEYFILE`).

Each identifier in a row-level CSV/JSON output (patient, course, session and assessment ids)
is replaced by the first 16 hex digits of HMAC-SHA-256(key, "<column>:<value>"). The same key
gives the same pseudonym in every output and every run, so an analyst can still follow one
patient across files; without the key the id cannot be recovered or confirmed by guessing.
The database keeps the real ids: it is the clinic's system of record.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import polars as pl

from pipeline.errors import InputError

ID_COLUMNS = ("patient_id", "course_id", "session_id", "assessment_id")
MIN_KEY_BYTES = 16
DIGITS = 16  # 64 bits: no collision in practice below ~10^8 ids


def read_key(path: Path) -> bytes:
    """The key file's bytes (one trailing newline dropped); at least MIN_KEY_BYTES long."""
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise InputError(f"--pseudonymize {path}: cannot read the key file ({exc.strerror}); "
                         "give a file holding a secret of at least 16 random bytes") from exc
    key = key.removesuffix(b"\n").removesuffix(b"\r")
    if len(key) < MIN_KEY_BYTES:
        raise InputError(
            f"--pseudonymize {path}: the key is {len(key)} bytes; use at least {MIN_KEY_BYTES} "
            "random bytes, e.g. `head -c 32 /dev/urandom | base64 > KEYFILE`, and keep it "
            "inside the clinic"
        )
    return key


def pseudonym(key: bytes, column: str, value: str) -> str:
    digest = hmac.new(key, f"{column}:{value}".encode(), hashlib.sha256).hexdigest()
    return digest[:DIGITS]


def pseudonymize(frame: pl.DataFrame, key: bytes) -> pl.DataFrame:
    """The frame with every identifier column replaced by its keyed pseudonym (nulls stay)."""
    replaced = []
    for column in ID_COLUMNS:
        if column not in frame.columns:
            continue
        values = frame.get_column(column).cast(pl.String)
        distinct = values.drop_nulls().unique().to_list()
        mapping = {v: pseudonym(key, column, v) for v in distinct}
        replaced.append(values.replace_strict(mapping, default=None, return_dtype=pl.String))
    return frame.with_columns(replaced) if replaced else frame
