-- existing: already loaded treatment trials, keyed for duplicate / conflict checks.
-- row_struct lists the same typed values as validate/treatment_history.sql, so equality is exact.
CREATE OR REPLACE TEMP VIEW existing AS
SELECT trial_id AS __id, row_hash, load_id, false AS replaceable,
       struct_pack(trial_id, patient_id, medication, drug_class, start_date, end_date,
                   adequate_dose, improvement_pct, episode) AS row_struct
FROM treatment_history;
