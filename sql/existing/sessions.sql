-- existing: the current sessions, keyed for matching a file's rows (sql/merge/classify.sql).
-- row_struct lists the same typed values as validate/sessions.sql, so equality is exact.
CREATE OR REPLACE TEMP VIEW existing AS
SELECT rowid AS __rowid, session_id AS __id, session_id AS __key, row_hash, load_id,
       false AS replaceable,
       struct_pack(session_id, patient_id, protocol_id, started_at, course_id, status,
                   dose_mg_per_kg, weight_kg, dose_mg, duration_minutes, site, provider,
                   bp_systolic_max, bp_diastolic_max, adverse_events, cpt_codes) AS row_struct
FROM sessions;
