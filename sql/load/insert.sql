-- Inserts the rows of this file that are added or corrected into __table__ (one of the canonical
-- tables, substituted before the run), in file order. typed's value columns are named as the
-- table's (its other columns, our own marks, start with __), and typed is in line order
-- (pipeline/ingest/readers.py), so no sort is needed. __chosen__ picks the valid lines
-- (pipeline/ingest/merge.py): `true` when every one is added (an empty table, no key repeated:
-- nothing was classified), else coalesce(__insert, …), __insert marking the smaller side (the
-- valid lines left out, default true, or the lines inserted, default false).
INSERT INTO __table__ BY NAME
SELECT COLUMNS(lambda c: NOT starts_with(c, '__')),
       (SELECT load_id FROM settings) AS load_id
FROM typed
WHERE __problems IS NULL AND __chosen__;
