-- retiring: in a snapshot, the rows of the table that none of this load's files still holds.
-- README "Exports over time": retired rows move to history.__table___retired (nothing is
-- deleted) and are listed in `changes`. Runs once every file of the table is read; reads view
-- existing, seen_rows (sql/merge/classify.sql) and settings. Derived patients follow the other
-- tables instead (sql/load/derived_patients.sql).
CREATE OR REPLACE TEMP TABLE retiring AS
SELECT e.__rowid, e.__id, e.row_hash
FROM existing e, settings s
WHERE NOT e.replaceable
  AND e.load_id < s.load_id                       -- rows this load added or corrected stay
  AND e.__rowid NOT IN (SELECT __rowid FROM seen_rows);
