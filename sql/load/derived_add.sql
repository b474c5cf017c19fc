-- Adds a 'derived' patient for each patient seen in sessions, scores or trials (referenced,
-- sql/load/derived_patients.sql) who is not in patients (README "Input").
INSERT INTO patients
SELECT patient_id, NULL, NULL, NULL, NULL, NULL, NULL, 'derived', hash('derived', patient_id),
       (SELECT load_id FROM settings)
FROM referenced
WHERE patient_id NOT IN (SELECT patient_id FROM patients)
ORDER BY patient_id;
