-- row_status: for every staged row without a problem: load, duplicate (counted) or conflict (rejected).
-- SPEC §1: exact duplicates are counted, not rejected; a conflicting duplicate id is rejected.
-- Reads temp tables typed (__line, __id, row_struct, row_hash), problems, and view existing.
-- Rows are grouped by (id, 64-bit hash) for speed; a row is only called a duplicate after its
-- row_struct (every typed value, NULLs equal) is compared with the first row of its group, or
-- with the loaded row, so a hash collision can never merge two different rows.
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
),
loaded_before AS (
    -- Rows identical to a row already in the table (rows without an id included).
    SELECT v.__line
    FROM valid v
    JOIN existing e ON e.row_hash = v.row_hash AND e.row_struct IS NOT DISTINCT FROM v.row_struct
),
judged AS (
    SELECT v.__line,
           k.id_lines,
           b.__line IS NOT NULL AS is_loaded_before,
           e.__id IS NOT NULL AND NOT e.replaceable AS id_taken,
           e.load_id,
           r.same AS repeat_same
    FROM valid v
    LEFT JOIN conflicting_ids k ON k.__id = v.__id
    LEFT JOIN loaded_before b ON b.__line = v.__line
    LEFT JOIN existing e ON e.__id = v.__id
    LEFT JOIN repeats r ON r.__line = v.__line
)
SELECT __line,
       CASE WHEN id_lines IS NOT NULL THEN 'conflict'
            WHEN is_loaded_before THEN 'duplicate'
            WHEN id_taken THEN 'conflict'
            WHEN repeat_same THEN 'duplicate'
            WHEN NOT repeat_same AND __line IS NOT NULL THEN 'conflict'
            ELSE 'load' END AS verdict,
       CASE WHEN id_lines IS NOT NULL
                THEN 'conflicting duplicate id: the same id is on other lines with different values; '
                     || 'keep one and reload (lines ' || id_lines || ')'
            WHEN NOT is_loaded_before AND id_taken
                THEN 'conflicting duplicate id: a row with this id and different values was '
                     || 'loaded before; correct the id or the values (load ' || load_id || ')'
            WHEN NOT is_loaded_before AND NOT repeat_same
                THEN 'conflicting duplicate: same id and hash as an earlier line but different values'
       END AS reason
FROM judged;
