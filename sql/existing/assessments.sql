-- existing: the current scores, keyed for matching a file's rows (sql/merge/classify.sql).
-- row_struct lists the same typed values as validate/assessments.sql, so equality is exact.
CREATE OR REPLACE TEMP VIEW existing AS
SELECT rowid AS __rowid, assessment_id AS __id,
       struct_pack(patient_id, instrument, administered_at) AS __key, row_hash, load_id,
       false AS replaceable,
       struct_pack(assessment_id, patient_id, instrument, administered_at, total_score,
                   session_id, timing, items) AS row_struct
FROM assessments;
