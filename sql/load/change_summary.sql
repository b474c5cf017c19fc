-- What one load ($1 = load_id) corrected and retired, counted without ids, for the printed report.
-- README "Exports over time": corrections counted per column (a row may count under several
-- columns), retirements per reason; every row is listed in `changes`.
SELECT table_name, change, detail, count(*) AS n
FROM (
    SELECT table_name, change, unnest("columns") AS detail FROM changes
    WHERE load_id = $1 AND change = 'corrected'
    UNION ALL
    SELECT table_name, change, reason FROM changes
    WHERE load_id = $1 AND change = 'retired'
)
GROUP BY ALL
ORDER BY table_name, change, n DESC, detail;
