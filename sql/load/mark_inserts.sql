-- typed.__insert (added by sql/merge/classify.sql) for sql/load/insert.sql: a valid line is inserted unless row_status (sql/merge/
-- classify.sql) says otherwise (duplicate, conflict, unchanged). Only the smaller side is marked
-- (an update costs per row): __mark__ is 'left out' (most lines are inserted: a first load) or
-- 'inserted' (few are: a reload), substituted by pipeline/ingest/merge.py.
UPDATE typed SET __insert = false
WHERE '__mark__' = 'left out'
  AND __line IN (SELECT __line FROM row_status WHERE verdict NOT IN ('add', 'correct'));

UPDATE typed SET __insert = true
WHERE '__mark__' = 'inserted' AND __problems IS NULL
  AND __line NOT IN (SELECT __line FROM row_status WHERE verdict NOT IN ('add', 'correct'));
