-- The most frequent reject reasons of one load ($1 = load_id), for the printed load report.
-- Specifics in a trailing "(...)" (lines, counts) are folded so that one kind of problem is one row.
SELECT file, "column", regexp_replace(reason, ' \([^)]*\)$', '') AS reason, count(*) AS n
FROM rejects
WHERE load_id = $1
GROUP BY ALL
ORDER BY n DESC, file, "column", reason
LIMIT 8;
