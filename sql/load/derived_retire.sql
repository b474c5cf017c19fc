-- Lists the derived patients in derived_retiring (sql/load/derived_patients.sql) in `changes` as
-- retired; sql/merge/to_history.sql then moves them to history (README "Exports over time").
-- Run only when there is one.
INSERT INTO changes
SELECT s.load_id, 'patients', 'retired', 'derived patient no longer in any session, score or trial',
       d.patient_id, d.row_hash, NULL, NULL, NULL
FROM derived_retiring d, settings s
ORDER BY d.patient_id;
