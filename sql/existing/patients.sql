-- existing: the current patients; a 'derived' row is replaced by a listed patient, never matched.
-- row_struct lists the same typed values as validate/patients.sql, so equality is exact.
CREATE OR REPLACE TEMP VIEW existing AS
SELECT rowid AS __rowid, patient_id AS __id, patient_id AS __key, row_hash, load_id,
       source = 'derived' AS replaceable,
       CASE WHEN source <> 'derived'
            THEN struct_pack(patient_id, birth_date, sex, diagnosis_code, payer, member_id, site)
       END AS row_struct
FROM patients;
