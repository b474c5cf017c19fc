-- row_status: for every staged row without a problem: load, duplicate (counted) or conflict (rejected).
-- SPEC §1: exact duplicates are counted, not rejected; a conflicting duplicate id is rejected.
-- Reads temp tables typed (__line, __id, row_struct, row_hash), problems, and view existing.
-- Equality is on row_struct (every typed value, NULLs equal), so it is exact; row_hash only
-- narrows the comparison with earlier loads.
CREATE OR REPLACE TEMP TABLE row_status AS
WITH valid AS (
    SELECT __line, __id, row_struct, row_hash FROM typed
    WHERE __line NOT IN (SELECT line FROM problems)
),
conflicting_ids AS (
    -- Ids present with two or more different rows in this file: none of them is trusted.
    SELECT __id, array_to_string(list_slice(list(__line ORDER BY __line), 1, 6), ', ') AS id_lines
    FROM valid
    WHERE __id IS NOT NULL
    GROUP BY __id
    HAVING count(DISTINCT row_struct) > 1
),
copies AS (
    SELECT *, row_number() OVER (PARTITION BY __id, row_struct ORDER BY __line) AS copy_no
    FROM valid
),
loaded_before AS (
    -- Rows of this file identical to a row already in the table (rows without an id included).
    SELECT c.__line
    FROM copies c
    JOIN existing e ON e.row_hash = c.row_hash AND e.row_struct IS NOT DISTINCT FROM c.row_struct
)
SELECT c.__line,
       CASE WHEN k.__id IS NOT NULL THEN 'conflict'
            WHEN c.__line IN (SELECT __line FROM loaded_before) THEN 'duplicate'
            WHEN e.__id IS NOT NULL AND NOT e.replaceable THEN 'conflict'
            WHEN c.copy_no > 1 THEN 'duplicate'
            ELSE 'load' END AS verdict,
       CASE WHEN k.__id IS NOT NULL
                THEN 'conflicting duplicate id: the same id is on other lines with different values; '
                     || 'keep one and reload (lines ' || k.id_lines || ')'
            WHEN c.__line NOT IN (SELECT __line FROM loaded_before)
                 AND e.__id IS NOT NULL AND NOT e.replaceable
                THEN 'conflicting duplicate id: a row with this id and different values was '
                     || 'loaded before; correct the id or the values (load ' || e.load_id || ')'
       END AS reason
FROM copies c
LEFT JOIN conflicting_ids k ON k.__id = c.__id
LEFT JOIN existing e ON e.__id = c.__id;
