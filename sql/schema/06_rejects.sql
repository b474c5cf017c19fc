-- rejects: every input row that was not loaded, with where it is and why (README "What ingest guarantees").
-- One row per problem; a line with two problems appears twice, and counts once as rejected.
CREATE TABLE IF NOT EXISTS rejects (
    load_id INTEGER NOT NULL,
    file    VARCHAR NOT NULL,
    line    BIGINT,                     -- 1-based, header = line 1 (XLSX: sheet row; Parquet: row + 1)
    "column" VARCHAR,
    value   VARCHAR,
    reason  VARCHAR NOT NULL
);
