-- monthly_reject_reasons: rejects of the latest load, grouped by file, column and reason (docs/bad-input-values.md).
-- Never selects rejects.value; line numbers inside a reason are folded so equal problems group together.
WITH latest AS (
    SELECT max(load_id) AS load_id FROM loads
),
reasons AS (
    SELECT
        r.file,
        coalesce(r."column", '(whole line)') AS column_name,
        regexp_replace(r.reason, 'lines? [0-9]+(, [0-9]+)*( and [0-9]+)?', 'line(s) …', 'g') AS reason,
        r.line
    FROM rejects AS r
    JOIN latest USING (load_id)
),
final AS (
    SELECT file, column_name, reason, count(*) AS problems, count(DISTINCT line) AS lines
    FROM reasons
    GROUP BY file, column_name, reason
)
SELECT * FROM final
ORDER BY problems DESC, file, column_name, reason
