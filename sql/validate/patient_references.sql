-- Adds to ref_problems: rows of this file (typed) naming a patient that is not loaded.
-- README "What ingest guarantees": where a patients file is present, a session or score of a patient it does not list is rejected.
-- A patient_id already rejected on its line (empty, invisible character) is not reported twice.
INSERT INTO ref_problems
SELECT t.__line, 'patient_id', t.patient_id,
       CASE WHEN r.line IS NOT NULL
            THEN 'the patient''s own row was rejected; fix that row first ('
                 || r.file || ' line ' || r.line || ')'
            ELSE 'unknown patient: not in the patients file; add the patient or correct the id'
       END, NULL
FROM typed t
CROSS JOIN settings s
LEFT JOIN rejected_ids r ON r.table_name = 'patients' AND r.id = t.patient_id
WHERE s.patients_listed AND t.patient_id IS NOT NULL
  AND t.patient_id NOT IN (SELECT patient_id FROM patients)
  AND NOT coalesce(list_contains(list_transform(t.__problems, lambda x: x."column"), 'patient_id'),
                   false);
