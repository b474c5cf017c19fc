-- changes: the corrections this file makes and the derived patients it lists, one row each
-- (README "Exports over time"). Reads superseded, typed and row_status (sql/merge/classify.sql);
-- run only when superseded holds a row, before the old versions move (sql/merge/to_history.sql).
CREATE OR REPLACE TEMP TABLE corrected_rows AS SELECT * FROM typed WHERE __verdict = 'correct';

INSERT INTO changes
WITH pairs AS (
    SELECT v.__line, v.__id, t.row_hash, to_json(v.row_struct) AS new_json,
           to_json(e.row_struct) AS old_json
    FROM row_values('corrected_rows') v
    JOIN corrected_rows t USING (__line)
    JOIN superseded u USING (__line)
    JOIN existing e ON e.__rowid = u.__rowid
),
corrected AS (
    SELECT *, list_filter(json_keys(new_json), lambda k:
                  json_extract(new_json, '$.' || k) IS DISTINCT FROM json_extract(old_json, '$.' || k)
              ) AS cols
    FROM pairs
)
SELECT s.load_id, s.table_name, 'corrected',
       CASE WHEN list_bool_and(list_transform(cols, lambda k: json_type(old_json, '$.' || k) = 'NULL'))
            THEN 'values where the earlier version had none'
            ELSE 'values corrected' END,
       __id, row_hash, cols, s.file, __line
FROM corrected, settings s
ORDER BY __line;

INSERT INTO changes
SELECT s.load_id, s.table_name, 'retired', 'now listed in the patients file', t.__id, e.row_hash,
       NULL, s.file, t.__line
FROM superseded u JOIN typed t USING (__line) JOIN existing e ON e.__rowid = u.__rowid, settings s
WHERE u.verdict = 'add'
ORDER BY t.__line;
