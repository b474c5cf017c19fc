-- Inserts the patients rows judged `load`; a listed patient replaces one derived earlier.
-- SPEC §1: patients may be absent, and are then taken from the other files (source = 'derived').
DELETE FROM patients
WHERE source = 'derived'
  AND patient_id IN (SELECT t.patient_id FROM typed t JOIN row_status USING (__line)
                     WHERE verdict = 'load');
INSERT INTO patients
SELECT patient_id, birth_date, sex, diagnosis_code, payer, member_id, site, source, row_hash,
       (SELECT load_id FROM settings)
FROM typed JOIN row_status USING (__line)
WHERE verdict = 'load'
ORDER BY __line;
