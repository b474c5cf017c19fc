-- retiring: in a snapshot, the rows of __table__ that none of this load's files still holds.
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

INSERT INTO changes
SELECT s.load_id, s.table_name, 'retired',
       CASE WHEN r.__id IS NULL THEN 'not in this export (a row without an id is matched by its '
                                     || 'values: a changed row is one retired and one added)'
            ELSE 'not in this export' END,
       r.__id, r.row_hash, NULL, s.file, NULL
FROM retiring r, settings s
ORDER BY r.__id, r.row_hash;

INSERT INTO history.__table___retired
SELECT c.*, (SELECT load_id FROM settings)
FROM __table__ c
WHERE c.rowid IN (SELECT __rowid FROM retiring)
ORDER BY c.rowid;  -- in the table's order (a join alone would not keep one)

DELETE FROM __table__ WHERE rowid IN (SELECT __rowid FROM retiring);
