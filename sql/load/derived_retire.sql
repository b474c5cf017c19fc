-- Retires the derived patients in derived_retiring (sql/load/derived_patients.sql): listed in
-- `changes`, moved to history (README "Exports over time"). Run only when there is one.
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
