-- existing: already loaded patients; a 'derived' row may be replaced by a listed patient.
-- row_struct lists the same typed values as validate/patients.sql, so equality is exact.
CREATE OR REPLACE TEMP VIEW existing AS
SELECT patient_id AS __id, row_hash, load_id, source = 'derived' AS replaceable,
       CASE WHEN source <> 'derived'  -- a derived row is replaced, never matched
            THEN struct_pack(patient_id, birth_date, sex, diagnosis_code, payer, member_id, site)
       END AS row_struct
FROM patients;
