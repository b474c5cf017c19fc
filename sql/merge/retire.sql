-- Lists the rows in retiring (sql/merge/retiring.sql) in `changes` as retired; to_history.sql
-- then moves them to history.__table___retired (README "Exports over time": nothing is
-- deleted). Run only when retiring holds a row.
INSERT INTO changes
SELECT s.load_id, s.table_name, 'retired',
       CASE WHEN r.__id IS NULL THEN 'not in this export (a row without an id is matched by its '
                                     || 'values: a changed row is one retired and one added)'
            ELSE 'not in this export' END,
       r.__id, r.row_hash, NULL, s.file, NULL
FROM retiring r, settings s
ORDER BY r.__id, r.row_hash;
