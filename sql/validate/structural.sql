-- Adds to stage_rejects: lines DuckDB's CSV reader could not split into the header's columns,
-- one per line. docs/bad-input-files.md; reads the reader's rejects (csv_rejects: the first error
-- of each line), header_names and structural_reasons (pipeline/ingest/csv_rows.py).
INSERT INTO stage_rejects
SELECT s.line,
       h.name AS "column",
       left(s.csv_line, 200) AS value,
       coalesce(r.reason, 'the line cannot be split into the header''s columns') AS reason
FROM csv_rejects s
LEFT JOIN header_names h ON h.c = s.col
LEFT JOIN structural_reasons r ON r.error_type = s.error_type::VARCHAR;
