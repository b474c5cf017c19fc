-- Inserts the sessions rows judged `load` (temp tables typed, row_status, settings).
-- SPEC §1: the typed canonical table sessions.
INSERT INTO sessions
SELECT session_id, patient_id, protocol_id, started_at, started_date_only, course_id, status,
       dose_mg_per_kg, weight_kg, dose_mg, duration_minutes, site, provider, bp_systolic_max,
       bp_diastolic_max, adverse_events, cpt_codes, row_hash, (SELECT load_id FROM settings)
FROM typed JOIN row_status USING (__line)
WHERE verdict IN ('add', 'correct')
ORDER BY __line;
