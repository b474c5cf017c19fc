-- One file's reconciliation: added, corrected, unchanged, duplicates and rejected lines.
-- README "Exports over time": read = added + corrected + unchanged + duplicates + rejected.
-- A valid line without a row_status (sql/merge/classify.sql) is added. Also, for what runs next
-- (pipeline/ingest/merge.py): the valid lines not inserted, and the versions superseded.
-- One pass over row_status (a scalar subquery per count costs more to plan than to run).
SELECT
    (SELECT count(*) FROM typed WHERE __problems IS NULL)
        - count(*) FILTER (WHERE verdict <> 'add') AS added,
    count(*) FILTER (WHERE verdict = 'correct') AS corrected,
    count(*) FILTER (WHERE verdict = 'unchanged') AS unchanged,
    count(*) FILTER (WHERE verdict = 'duplicate') AS duplicates,
    (SELECT count(DISTINCT line) FROM (
        SELECT line FROM stage_rejects
        UNION ALL SELECT __line FROM rejected_rows)) AS rejected,
    count(*) FILTER (WHERE verdict NOT IN ('add', 'correct')) AS left_out,
    (SELECT count(*) FROM superseded) AS superseded
FROM row_status;
