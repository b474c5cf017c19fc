-- Adds to ref_problems: patients whose date of birth is after their first session, score or
-- trial already loaded, for a patient that was only derived so far (a listed patient's row
-- cannot change: a new birth date would be a conflict). The value as written is read again
-- for these rows only (raw_column, pipeline/ingest/load.py).
INSERT INTO ref_problems
WITH first_seen AS (
    SELECT patient_id, min(day) AS first_day
    FROM (SELECT patient_id, started_at::DATE AS day FROM sessions
          UNION ALL SELECT patient_id, administered_at::DATE FROM assessments
          UNION ALL SELECT patient_id, start_date FROM treatment_history)
    WHERE patient_id IN (SELECT patient_id FROM patients WHERE source = 'derived')
    GROUP BY patient_id
)
SELECT t.__line, 'birth_date', NULL,
       'date of birth after the patient''s first session, score or trial already loaded; '
       || 'check the year', 'birth_date'
FROM typed t JOIN first_seen f USING (patient_id)
WHERE t.birth_date > f.first_day;
