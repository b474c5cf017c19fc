-- Retires the rows in retiring (sql/merge/retiring.sql) from __table__, one of the canonical
-- tables substituted before the run. README "Exports over time": retired rows move to
-- history.__table___retired (nothing is deleted) and are listed in `changes`. Run only when
-- retiring holds a row.
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
