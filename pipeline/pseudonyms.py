"""Keyed pseudonyms for row-level outputs (`--pseudonymize KEYFILE`).

Each identifier in a row-level output (patient, course, session and assessment ids in the
course-level CSV and Parquet files) is replaced by the first 16 hex digits of
HMAC-SHA-256(key, "<column>:<value>"). The same key gives the same pseudonym in every output
and every run, so an analyst can still follow one patient across files; without the key the id
cannot be recovered or confirmed by guessing. The database keeps the real ids: it is the
clinic's system of record.

The HMAC is computed in DuckDB (RFC 2104 over its `sha256`), so the rows are pseudonymised as
they stream to the files: `define_pseudonym` creates the temp macro `pseudonym(column, value)`
on a connection and `pseudonymized` wraps a query with it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from pipeline.errors import InputError

ID_COLUMNS = ("patient_id", "course_id", "session_id", "assessment_id")
MIN_KEY_BYTES = 16
DIGITS = 16  # 64 bits: no collision in practice below ~10^8 ids
BLOCK = 64  # SHA-256 block size in bytes (HMAC pads the key to it)


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


def define_pseudonym(con: duckdb.DuckDBPyConnection, key: bytes) -> None:
    """The temp macro pseudonym(column, value) = first DIGITS hex digits of
    HMAC-SHA-256(key, column || ':' || value), null for a null value.

    HMAC(K, m) = H((K' xor opad) || H((K' xor ipad) || m)), K' the key padded with zeros to the
    block size (hashed first when longer). Only the two padded keys appear in the macro; a temp
    macro lives in this connection's memory and is never stored in the database.
    """
    padded = (hashlib.sha256(key).digest() if len(key) > BLOCK else key).ljust(BLOCK, b"\0")
    inner = bytes(b ^ 0x36 for b in padded).hex()
    outer = bytes(b ^ 0x5C for b in padded).hex()
    con.execute(
        "CREATE OR REPLACE TEMP MACRO pseudonym(column_name, value) AS "
        f"left(sha256(unhex('{outer}') || unhex(sha256(unhex('{inner}') "
        f"|| encode(column_name || ':' || CAST(value AS VARCHAR))))), {DIGITS})"
    )


def pseudonymized(con: duckdb.DuckDBPyConnection, query: str) -> str:
    """`query` with every identifier column it has replaced by its pseudonym (the macro of
    define_pseudonym must exist on `con`); rows keep the query's order."""
    columns = con.sql(query).columns
    replaced = [f"pseudonym('{c}', {c}) AS {c}" for c in ID_COLUMNS if c in columns]
    if not replaced:
        return query
    return f"SELECT * REPLACE ({', '.join(replaced)}) FROM ({query})"
