-- After merge.keep_absent_values copied current values into typed: the rows' hashes, and whether
-- each still equals the current row it matched (view existing), from the values now held.
CREATE OR REPLACE TEMP TABLE rehashed AS
SELECT v.__line, hash(v.row_struct) AS row_hash,
       CASE WHEN e.__rowid IS NOT NULL THEN e.row_struct IS NOT DISTINCT FROM v.row_struct
            ELSE t.__same END AS same
FROM row_values('typed') v
JOIN typed t USING (__line)
LEFT JOIN existing e ON e.__rowid = t.__rowid AND t.__id IS NOT NULL;

UPDATE typed SET row_hash = r.row_hash, __same = r.same
FROM rehashed r
WHERE typed.__line = r.__line;
