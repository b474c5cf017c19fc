-- loads: every file of every load with its SHA-256, the provenance of metrics.json.
-- No loaded_at: outputs carry only what the export determines (same export, same bytes).
SELECT load_id, file, table_name, sha256, rows_loaded
FROM loads
ORDER BY load_id, file
