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

INSERT INTO changes
SELECT s.load_id, 'patients', 'retired', 'derived patient no longer in any session, score or trial',
       d.patient_id, d.row_hash, NULL, NULL, NULL
FROM derived_retiring d, settings s
ORDER BY d.patient_id;

INSERT INTO history.patients_retired
SELECT p.*, (SELECT load_id FROM settings)
FROM patients p
WHERE p.rowid IN (SELECT __rowid FROM derived_retiring)
ORDER BY p.rowid;  -- in the table's order (a join alone would not keep one)

DELETE FROM patients WHERE rowid IN (SELECT __rowid FROM derived_retiring);

INSERT INTO patients
SELECT patient_id, NULL, NULL, NULL, NULL, NULL, NULL, 'derived', hash('derived', patient_id),
       (SELECT load_id FROM settings)
FROM referenced
WHERE patient_id NOT IN (SELECT patient_id FROM patients)
ORDER BY patient_id;
