-- Appends this file's rejects: structural (stage_rejects), value problems (typed.__problems),
-- conflicting ids. README "What ingest guarantees": every rejected row with its file, line,
-- column, value and reason; a rejected row whose earlier version stays current says so (table
-- `kept`, sql/merge/classify.sql).
INSERT INTO rejects
WITH kept_lines AS (
    SELECT __line AS line, max(load_id) AS load_id FROM kept GROUP BY __line
),
problems AS (
    SELECT __line AS line, p."column", p.value, p.reason
    FROM (SELECT __line, unnest(__problems) AS p FROM rejected_rows WHERE __problems IS NOT NULL)
),
found AS (
    SELECT line, "column", value, reason FROM stage_rejects
    UNION ALL
    SELECT line, "column", value, reason FROM problems
    UNION ALL
    SELECT st.__line, s2.id_column, t.__id, st.reason
    FROM row_status st JOIN rejected_rows t USING (__line), settings s2
    WHERE st.verdict = 'conflict'
)
SELECT s.load_id, s.file, r.line, r."column", left(r.value, 200),
       CASE WHEN k.load_id IS NULL THEN r.reason
            -- specifics stay in one trailing parenthesis, so the printed summary can group reasons
            WHEN r.reason LIKE '%)'
                THEN left(r.reason, -1) || '; the version from load ' || k.load_id || ' stays current)'
            ELSE r.reason || ' (the version from load ' || k.load_id || ' stays current)' END
FROM found r
LEFT JOIN kept_lines k ON k.line = r.line, settings s
ORDER BY r.line, r."column";

-- Ids whose rows were rejected, so that references to them can say why they are unknown.
INSERT INTO rejected_ids
SELECT s.table_name, t.__id, s.file, min(t.__line)
FROM rejected_rows t, settings s
WHERE t.__id IS NOT NULL
GROUP BY s.table_name, t.__id, s.file;
