-- loads: one row per file per load (README "Input"), the audit log of what was read and where it went.
-- rows_read = rows_loaded + duplicates + rejected for every row.
CREATE SEQUENCE IF NOT EXISTS load_ids START 1;
CREATE TABLE IF NOT EXISTS loads (
    load_id     INTEGER NOT NULL,
    file        VARCHAR NOT NULL,
    table_name  VARCHAR NOT NULL,
    format      VARCHAR NOT NULL,       -- csv / parquet / xlsx
    encoding    VARCHAR,                -- utf-8, utf-8-sig, utf-16-le|be, utf-32-le|be, cp1252 or latin-1 (CSV only)
    sha256      VARCHAR NOT NULL,
    rows_read   BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    duplicates  BIGINT NOT NULL,
    rejected    BIGINT NOT NULL,
    loaded_at   TIMESTAMP NOT NULL
);
