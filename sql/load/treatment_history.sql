-- Inserts the treatment_history rows judged `load` (temp tables typed, row_status, settings).
-- README "treatment_history": prior antidepressant trials.
INSERT INTO treatment_history
SELECT trial_id, patient_id, medication, drug_class, start_date, end_date, adequate_dose,
       improvement_pct, episode, row_hash, (SELECT load_id FROM settings)
FROM typed JOIN row_status USING (__line)
WHERE verdict IN ('add', 'correct')
ORDER BY __line;
