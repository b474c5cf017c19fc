-- stage_rejects: lines DuckDB's CSV reader could not split into the header's columns, one per line.
-- SPEC §1 "Bad input"; reads the reader's rejects (stage_rejects), header_names and structural_reasons.
CREATE OR REPLACE TEMP TABLE stage_rejects AS
SELECT s.line,
       h.name AS "column",
       left(s.csv_line, 200) AS value,
       coalesce(r.reason, 'the line cannot be split into the header''s columns') AS reason
FROM stage_rejects s
LEFT JOIN header_names h ON h.c = s.col
LEFT JOIN structural_reasons r ON r.error_type = s.error_type::VARCHAR;
