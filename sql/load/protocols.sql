-- Inserts the protocols rows judged `load` (temp tables typed, row_status, settings).
-- SPEC §1: the typed canonical table protocols.
INSERT INTO protocols
SELECT protocol_id, name, planned_infusions, planned_days, dose_mg_per_kg, infusion_minutes,
       phase, indication, row_hash, (SELECT load_id FROM settings)
FROM typed JOIN row_status USING (__line)
WHERE verdict IN ('add', 'correct')
ORDER BY __line;
