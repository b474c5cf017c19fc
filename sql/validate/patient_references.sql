-- Adds to problems: staged rows (typed) naming a patient that is not loaded.
-- SPEC §1: where a patients file is present, a session or score of a patient it does not list is rejected.
-- A patient_id already rejected on its line (empty, invisible character) is not reported twice.
INSERT INTO problems
SELECT t.__line, 'patient_id', t.patient_id,
       CASE WHEN r.line IS NOT NULL
            THEN 'the patient''s own row was rejected; fix that row first ('
                 || r.file || ' line ' || r.line || ')'
            ELSE 'unknown patient: not in the patients file; add the patient or correct the id'
       END
FROM typed t, settings
LEFT JOIN rejected_ids r ON r.table_name = 'patients' AND r.id = t.patient_id
WHERE settings.patients_listed AND t.patient_id IS NOT NULL
  AND t.patient_id NOT IN (SELECT patient_id FROM patients)
  AND t.__line NOT IN (SELECT line FROM problems WHERE "column" = 'patient_id');
