-- changes: every correction and retirement a load made, one row per canonical row (README
-- "Exports over time"). Added rows are the versions whose load_id is the load (history.<table>).
-- change: corrected (new values won; `columns` names what changed) or retired (reason says why).
CREATE TABLE IF NOT EXISTS changes (
    load_id    INTEGER NOT NULL,
    table_name VARCHAR NOT NULL,
    change     VARCHAR NOT NULL,        -- corrected / retired
    reason     VARCHAR NOT NULL,
    record_id  VARCHAR,                 -- the row's id; NULL for rows identified by content
    row_hash   UBIGINT NOT NULL,        -- the version: new one when corrected, old one when retired
    "columns"  VARCHAR[],               -- corrected columns
    file       VARCHAR,                 -- the export file of the load (NULL for derived patients)
    line       BIGINT                   -- the new version's line; NULL for a retirement
);
