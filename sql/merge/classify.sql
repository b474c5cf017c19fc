-- matched, row_status, rejected_rows, kept, superseded, seen_rows: what one export file does to
-- its table. README "Exports over time": a row is added, corrected (its id now carries other
-- values), unchanged, an exact duplicate, or rejected; a current row named by a rejected line
-- stays current (kept). Retirement is decided per table once all its files are read (retire.sql).
-- Reads repeat_status (sql/merge/repeats.sql; empty when no key repeats), temp table typed (one
-- row per line, __problems NULL when valid), macro row_values (the values of a table shaped like
-- typed as a struct, sql/validate/<table>.sql), view existing (the table's current rows,
-- sql/existing/<table>.sql) and settings. Rows are matched by id; rows
-- without an id by content (64-bit hash, then every typed value compared, so a collision never
-- merges two rows). Structs are built only for the rows that matched or repeat a key.
-- A row matching one that another file of this same load added is a duplicate or a conflict.

-- matched: the current row of each valid line, and whether it holds the same values.
CREATE OR REPLACE TEMP TABLE matched AS
SELECT v.__line, e.__rowid, e.replaceable, e.load_id,
       e.row_struct IS NOT DISTINCT FROM v.row_struct AS same_values
FROM row_values('typed') v JOIN existing e ON e.__id = v.__id
WHERE v.__problems IS NULL
UNION ALL
SELECT v.__line, e.__rowid, e.replaceable, e.load_id, true
FROM row_values('typed') v
JOIN (SELECT * FROM existing WHERE __id IS NULL) e
  ON v.__id IS NULL AND e.row_hash = v.row_hash AND e.row_struct IS NOT DISTINCT FROM v.row_struct
WHERE v.__problems IS NULL;

-- Marks for the few rows read again with all their values: an update reads only the columns
-- it tests, where a join would read every column of every row of typed. __verdict: a conflict
-- or a correction; __insert: sql/load/ (__repeated: sql/merge/repeats.sql).
ALTER TABLE typed ADD COLUMN __verdict VARCHAR;
ALTER TABLE typed ADD COLUMN __insert BOOLEAN;

-- row_status: the valid lines that matched a current row or repeat a key; every other valid
-- line is added (counted in counts.sql, inserted by sql/load/insert.sql).
CREATE OR REPLACE TEMP TABLE row_status AS
WITH judged AS (
    SELECT coalesce(m.__line, r.__line) AS __line, r.id_lines, r.repeat_same, m.__rowid,
           m.replaceable, m.load_id = s.load_id AS this_load, m.same_values
    FROM matched m
    FULL JOIN repeat_status r ON r.__line = m.__line
    CROSS JOIN settings s
)
SELECT __line,
       CASE WHEN id_lines IS NOT NULL THEN 'conflict'
            WHEN repeat_same THEN 'duplicate'
            WHEN NOT repeat_same THEN 'conflict'
            WHEN __rowid IS NULL OR replaceable THEN 'add'
            WHEN this_load AND same_values THEN 'duplicate'
            WHEN this_load THEN 'conflict'
            WHEN same_values THEN 'unchanged'
            ELSE 'correct' END AS verdict,
       CASE WHEN id_lines IS NOT NULL
                THEN 'conflicting duplicate id: the same id is on other lines with different values; '
                     || 'keep one and reload (lines ' || id_lines || ')'
            WHEN NOT repeat_same
                THEN 'conflicting duplicate: same id and hash as an earlier line but different values'
            WHEN this_load AND NOT same_values AND NOT replaceable
                THEN 'conflicting duplicate id: another file of this export gives this id other '
                     || 'values; keep one and reload'
       END AS reason,
       CASE WHEN repeat_same IS NULL AND id_lines IS NULL AND NOT coalesce(this_load, false)
            THEN __rowid END AS __rowid
FROM judged;

-- rejected_rows: lines with a problem or a conflicting id; kept: the current rows they name
-- (same id; without an id, same key), which stay current, and the reject says so.
UPDATE typed SET __verdict = r.verdict
FROM row_status r
WHERE typed.__line = r.__line AND r.verdict IN ('conflict', 'correct');

CREATE OR REPLACE TEMP TABLE rejected_rows AS
SELECT * FROM typed WHERE __problems IS NOT NULL OR __verdict = 'conflict';

CREATE OR REPLACE TEMP TABLE kept AS
WITH rejected AS (
    SELECT __line, __id, __key FROM row_values('rejected_rows')
)
SELECT r.__line, e.__rowid, e.load_id
FROM rejected r JOIN existing e ON e.__id = r.__id AND NOT e.replaceable
UNION ALL
SELECT r.__line, e.__rowid, e.load_id
FROM rejected r JOIN existing e ON r.__id IS NULL AND e.__id IS NULL AND e.__key = r.__key;

-- superseded: current versions replaced by a row of this file (corrected, or a derived patient
-- now listed in the patients file).
CREATE OR REPLACE TEMP TABLE superseded AS
SELECT __rowid, __line, verdict
FROM row_status
WHERE __rowid IS NOT NULL AND verdict IN ('add', 'correct');

-- seen_rows: current rows this load's files still hold (unchanged) or name on a rejected line
-- (kept); sql/merge/retire.sql retires the others once every file of the table is read.
INSERT INTO seen_rows
SELECT __rowid FROM row_status WHERE verdict = 'unchanged'
UNION ALL
SELECT __rowid FROM kept;
