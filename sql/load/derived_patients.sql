-- Adds a 'derived' patients row for every patient seen in sessions or assessments but not listed.
-- SPEC §1: where `patients` is absent, patients are taken from the other files.
INSERT INTO patients
SELECT patient_id, NULL, NULL, NULL, NULL, NULL, NULL, 'derived', hash('derived', patient_id),
       (SELECT load_id FROM settings)
FROM (SELECT patient_id FROM sessions UNION SELECT patient_id FROM assessments
      UNION SELECT patient_id FROM treatment_history)
WHERE patient_id NOT IN (SELECT patient_id FROM patients)
ORDER BY patient_id;
