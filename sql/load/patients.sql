-- Inserts the patients rows judged `add` or `correct` (temp tables typed, row_status, settings).
-- SPEC §1 patients; a derived patient now listed was moved to history by sql/merge/apply.sql.
INSERT INTO patients
SELECT patient_id, birth_date, sex, diagnosis_code, payer, member_id, site, source, row_hash,
       (SELECT load_id FROM settings)
FROM typed JOIN row_status USING (__line)
WHERE verdict IN ('add', 'correct')
ORDER BY __line;
