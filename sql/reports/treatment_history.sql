-- treatment_history: antidepressant trials started up to the as-of day (payer "resistance").
SELECT trial_id, patient_id, medication, drug_class, start_date, end_date, adequate_dose,
       improvement_pct, episode
FROM treatment_history
WHERE start_date <= $as_of
