-- Inserts the assessments rows judged `load` (temp tables typed, row_status, settings).
-- SPEC §1: the typed canonical table assessments.
INSERT INTO assessments
SELECT assessment_id, patient_id, instrument, administered_at, date_only, total_score,
       session_id, timing, items, row_hash, (SELECT load_id FROM settings)
FROM typed JOIN row_status USING (__line)
WHERE verdict IN ('add', 'correct')
ORDER BY __line;
