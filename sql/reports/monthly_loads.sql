-- monthly_loads: the files of the latest load with their SHA-256 and reconciliation (the `loads` table).
-- Provenance and data completeness of the monthly report; no loaded_at (reports carry no clock time).
-- read = added + corrected + unchanged + duplicates + rejected; retired rows are counted apart.
WITH latest AS (
    SELECT max(load_id) AS load_id FROM loads
),
final AS (
    SELECT l.load_id, l.mode, l.file, l.table_name, l.sha256, l.rows_read, l.added, l.corrected,
           l.unchanged, l.duplicates, l.rejected, l.retired
    FROM loads AS l
    JOIN latest USING (load_id)
)
SELECT * FROM final
ORDER BY table_name, file
