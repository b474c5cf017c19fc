-- Inserts the rows of this file that are added or corrected into __table__ (one of the canonical
-- tables, substituted before the run), in file order. Reads typed (its value columns are named
-- as the table's) and row_status (sql/merge/classify.sql): a valid line without one is added.
INSERT INTO __table__ BY NAME
SELECT * EXCLUDE (__line, __flag, __id, __offsets, __problems, __rowid, __current_load,
                  __replaceable, __same),
       (SELECT load_id FROM settings) AS load_id
FROM typed
WHERE __problems IS NULL
  AND __line NOT IN (SELECT __line FROM row_status WHERE verdict NOT IN ('add', 'correct'))
ORDER BY __line;
