-- One file's reconciliation: added, corrected, unchanged, duplicates and rejected lines.
-- README "Exports over time": read = added + corrected + unchanged + duplicates + rejected.
-- A valid line without a row_status (sql/merge/classify.sql) is added. Also, for what runs next
-- (pipeline/ingest/merge.py): the valid lines not inserted, and the versions superseded.
SELECT
    (SELECT count(*) FROM typed WHERE __problems IS NULL)
        - (SELECT count(*) FROM row_status WHERE verdict <> 'add') AS added,
    (SELECT count(*) FROM row_status WHERE verdict = 'correct') AS corrected,
    (SELECT count(*) FROM row_status WHERE verdict = 'unchanged') AS unchanged,
    (SELECT count(*) FROM row_status WHERE verdict = 'duplicate') AS duplicates,
    (SELECT count(DISTINCT line) FROM (
        SELECT line FROM stage_rejects
        UNION ALL SELECT __line FROM rejected_rows)) AS rejected,
    (SELECT count(*) FROM row_status WHERE verdict NOT IN ('add', 'correct')) AS left_out,
    (SELECT count(*) FROM superseded) AS superseded;
