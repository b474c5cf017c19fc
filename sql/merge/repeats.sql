-- repeat_status: the valid lines of one export file whose key is on another valid line too
-- (repeat_keys, sql/merge/repeat_keys.sql), compared value by value: a duplicate, or a conflict.
-- README "Exports over time". Run only when repeat_keys holds a key; sql/merge/classify.sql reads
-- repeat_status. __repeated marks the few rows read again with all their values: an update
-- reads only the columns it tests, where a join would read every column of every row of typed.
ALTER TABLE typed ADD COLUMN __repeated BOOLEAN;

UPDATE typed SET __repeated = true
WHERE __problems IS NULL
  AND hash(__id, CASE WHEN __id IS NULL THEN row_hash END) IN (SELECT key_hash FROM repeat_keys);

CREATE OR REPLACE TEMP TABLE repeated AS SELECT * FROM typed WHERE __repeated;

CREATE OR REPLACE TEMP TABLE repeat_status AS
WITH valid AS (
    SELECT __line, __id, row_struct, row_hash FROM row_values('repeated')
),
conflicting_ids AS (
    -- Ids present with two or more different rows in this file: none of them is trusted.
    SELECT __id, array_to_string(list_slice(list(__line ORDER BY __line), 1, 6), ', ') AS id_lines
    FROM valid
    WHERE __id IS NOT NULL
    GROUP BY __id
    HAVING count(DISTINCT row_hash) > 1
),
groups AS (
    SELECT __id, row_hash, min(__line) AS first_line
    FROM valid
    GROUP BY __id, row_hash
    HAVING count(*) > 1
),
repeats AS (
    -- Later rows of a group: a duplicate when equal to the group's first row, else a conflict.
    SELECT v.__line, v.row_struct IS NOT DISTINCT FROM f.row_struct AS same
    FROM valid v
    JOIN groups g ON g.__id IS NOT DISTINCT FROM v.__id AND g.row_hash = v.row_hash
    JOIN valid f ON f.__line = g.first_line
    WHERE v.__line <> g.first_line
)
SELECT v.__line, k.id_lines, r.same AS repeat_same
FROM valid v
LEFT JOIN conflicting_ids k ON k.__id = v.__id
LEFT JOIN repeats r ON r.__line = v.__line;
