-- Keeps the 'derived' patients equal to the patients seen in sessions, scores or trials but not
-- listed in a patients file. README "Input": where `patients` is absent, patients are taken
-- from the other files; README "Exports over time": one no longer referenced is retired (kept in history).
CREATE OR REPLACE TEMP TABLE referenced AS
SELECT patient_id FROM sessions UNION SELECT patient_id FROM assessments
UNION SELECT patient_id FROM treatment_history;

CREATE OR REPLACE TEMP TABLE derived_retiring AS
SELECT rowid AS __rowid, patient_id, row_hash
FROM patients
WHERE source = 'derived' AND patient_id NOT IN (SELECT patient_id FROM referenced);
