-- Adds to ref_problems: rows of this file (typed) dated before their patient's date of birth
-- (patients table, loaded first). __date__ is the row's date column (sessions: started_at,
-- assessments: administered_at, treatment_history: start_date), substituted before the run.
-- The value as written is read again for these rows only (raw_column, pipeline/ingest/load.py).
INSERT INTO ref_problems
SELECT t.__line, '__date__', NULL,
       'dated before the patient''s date of birth (patients file); check the year of this '
       || 'date and of the date of birth', '__date__'
FROM typed t JOIN patients p ON p.patient_id = t.patient_id
WHERE t.__date__::DATE < p.birth_date
  AND t.__date__ >= TIMESTAMP '1900-01-01';  -- an earlier date is already implausible
