-- existing: the current treatment trials, keyed for matching a file's rows (sql/merge/classify.sql).
-- row_struct lists the same typed values as validate/treatment_history.sql, so equality is exact.
CREATE OR REPLACE TEMP VIEW existing AS
SELECT rowid AS __rowid, trial_id AS __id,
       struct_pack(patient_id, medication, start_date) AS __key, row_hash, load_id,
       false AS replaceable,
       struct_pack(trial_id, patient_id, medication, drug_class, start_date, end_date,
                   adequate_dose, improvement_pct, episode) AS row_struct
FROM treatment_history;
