-- existing: already loaded scores, keyed for duplicate / conflict checks (validate/duplicates.sql).
-- row_struct lists the same typed values as validate/assessments.sql, so equality is exact.
CREATE OR REPLACE TEMP VIEW existing AS
SELECT assessment_id AS __id, row_hash, load_id, false AS replaceable,
       struct_pack(assessment_id, patient_id, instrument, administered_at, total_score,
                   session_id, timing, items) AS row_struct
FROM assessments;
