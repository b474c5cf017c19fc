-- repeat_keys: the keys on two or more valid lines of one export file (sql/merge/classify.sql
-- compares those lines value by value). README "Exports over time": duplicates and conflicts.
-- Runs before classify.sql; a file whose table is empty and whose keys are all distinct needs
-- no classification (pipeline/ingest/merge.py): each valid line is added.
-- Lines whose key (the id; without an id, the content hash) is on another valid line of the
-- file too: only these are compared value by value. Keys are compared by a 64-bit hash here;
-- a collision only adds a line to compare.
CREATE OR REPLACE TEMP TABLE repeat_keys AS
SELECT hash(__id, CASE WHEN __id IS NULL THEN row_hash END) AS key_hash
FROM typed
WHERE __problems IS NULL
GROUP BY ALL
HAVING count(*) > 1;
