-- Inserts the rows of this file that are added or corrected into __table__ (one of the canonical
-- tables, substituted before the run), in file order. typed's value columns are named as the
-- table's, and typed is in line order (pipeline/ingest/readers.py), so no sort is needed:
-- __insert marks the lines (pipeline/ingest/merge.py marks the smaller side: the valid lines
-- left out, __default__ true, or the lines inserted, __default__ false).
INSERT INTO __table__ BY NAME
SELECT * EXCLUDE (__line, __flag, __id, __offsets, __problems, __repeated, __verdict, __insert),
       (SELECT load_id FROM settings) AS load_id
FROM typed
WHERE __problems IS NULL AND coalesce(__insert, __default__);
