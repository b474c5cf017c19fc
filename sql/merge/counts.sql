-- One file's reconciliation: added, corrected, unchanged, duplicates and rejected lines.
-- README "Exports over time": read = added + corrected + unchanged + duplicates + rejected.
SELECT
    (SELECT count(*) FROM row_status WHERE verdict = 'add') AS added,
    (SELECT count(*) FROM row_status WHERE verdict = 'correct') AS corrected,
    (SELECT count(*) FROM row_status WHERE verdict = 'unchanged') AS unchanged,
    (SELECT count(*) FROM row_status WHERE verdict = 'duplicate') AS duplicates,
    (SELECT count(DISTINCT line) FROM (
        SELECT line FROM stage_rejects
        UNION ALL SELECT line FROM problems
        UNION ALL SELECT __line FROM row_status WHERE verdict = 'conflict')) AS rejected;
