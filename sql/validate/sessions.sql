-- typed for a staged sessions file (view stg, all text) -> canonical types.
-- README "Input", sessions: session_id, patient_id, protocol_id, started_at required; status defaults to completed.
-- Every value is parsed once and every rule of a row judged in the same pass; the failing ones
-- are listed in __problems (column, value as written, reason), NULL for a row without any: the
-- text as written is kept only there. Only projections, no join: typed keeps the order stg is
-- read in (a direct CSV's lines are its rowids). Rules that read other tables follow
-- (sql/validate/*_references.sql), then the match with the current rows (sql/merge/).
-- row_values(tbl): the values of a table shaped like typed as the row struct (and its key).
CREATE OR REPLACE TEMP MACRO row_values(tbl) AS TABLE
    SELECT __line, __id, row_hash, __problems, session_id AS __key,
           struct_pack(session_id, patient_id, protocol_id, started_at, course_id, status,
                       dose_mg_per_kg, weight_kg, dose_mg, duration_minutes, site, provider,
                       bp_systolic_max, bp_diastolic_max, adverse_events, cpt_codes) AS row_struct
    FROM query_table(tbl);

CREATE OR REPLACE TEMP TABLE typed AS
WITH parsed AS (
    SELECT
        __line, __flag,
        clean(session_id)               AS session_id,
        clean(patient_id)               AS patient_id,
        clean(protocol_id)              AS protocol_id,
        parse_ts(started_at)            AS started_at,
        ts_offset(started_at)           AS __offsets,
        clean(course_id)                AS course_id,
        -- Case, spaces and punctuation do not matter ("Completed", " completed", "COMPLETE").
        CASE WHEN blank(status) THEN 'completed'
             WHEN lower(status) IN ('completed', 'aborted', 'cancelled') THEN lower(status)
             ELSE CASE regexp_replace(lower(status), '[^a-z]', '', 'g')
                       WHEN 'complete' THEN 'completed' WHEN 'completed' THEN 'completed'
                       WHEN 'aborted' THEN 'aborted' WHEN 'cancelled' THEN 'cancelled'
                       WHEN 'canceled' THEN 'cancelled' ELSE '?' END END AS status,
        to_num(dose_mg_per_kg)          AS dose_mg_per_kg,
        to_num(weight_kg)               AS weight_kg,
        to_num(dose_mg)                 AS dose_mg,
        to_num(duration_minutes)        AS duration_minutes,
        clean(site)                     AS site,
        clean(provider)                 AS provider,
        to_int(bp_systolic_max)         AS bp_systolic_max,
        to_int(bp_diastolic_max)        AS bp_diastolic_max,
        split_list(adverse_events)      AS adverse_events,
        split_codes(cpt_codes)          AS cpt_codes,
        session_id AS raw_session_id, patient_id AS raw_patient_id, course_id AS raw_course_id,
        protocol_id AS raw_protocol_id, started_at AS raw_started_at, status AS raw_status,
        dose_mg_per_kg AS raw_dose_mg_per_kg, weight_kg AS raw_weight_kg, dose_mg AS raw_dose_mg,
        duration_minutes AS raw_duration_minutes, bp_systolic_max AS raw_bp_systolic_max,
        bp_diastolic_max AS raw_bp_diastolic_max
    FROM stg
),
checked AS (
    SELECT *,
           coalesce(is_date_only(started_at), false) AS started_date_only,
           struct_pack(session_id, patient_id, protocol_id, started_at, course_id, status,
                       dose_mg_per_kg, weight_kg, dose_mg, duration_minutes, site, provider,
                       bp_systolic_max, bp_diastolic_max, adverse_events, cpt_codes) AS row_struct,
           required_problem(raw_session_id) AS r_session_id,
           required_problem(raw_patient_id) AS r_patient_id,
           required_problem(raw_protocol_id) AS r_protocol_id,
           -- Each id on its own: an id made only of combining marks is invisible alone but
           -- not inside a concatenation.
           id_problem(session_id) AS i_session_id,
           id_problem(patient_id) AS i_patient_id,
           id_problem(protocol_id) AS i_protocol_id,
           id_problem(course_id) AS i_course_id,
           coalesce(required_problem(raw_started_at),
                    ts_problem(raw_started_at, started_at, load_day())) AS r_started_at,
           CASE WHEN status = '?' THEN 'unknown status; use completed, aborted or cancelled' END AS r_status,
           num_reason(raw_dose_mg_per_kg, dose_mg_per_kg, 0, 5, 'a ketamine dose in mg/kg') AS r_dose_mg_per_kg,
           num_reason(raw_weight_kg, weight_kg, 20, 400, 'weight in kg') AS r_weight_kg,
           num_reason(raw_dose_mg, dose_mg, 0, 2000, 'a total dose in mg') AS r_dose_mg,
           num_reason(raw_duration_minutes, duration_minutes, 0, 600, 'infusion minutes') AS r_duration_minutes,
           int_reason(raw_bp_systolic_max, bp_systolic_max, 50, 300,
                      'systolic blood pressure (mmHg)') AS r_bp_systolic_max,
           int_reason(raw_bp_diastolic_max, bp_diastolic_max, 20, 200,
                      'diastolic blood pressure (mmHg)') AS r_bp_diastolic_max
    FROM parsed
)
SELECT c.__line, c.__flag,
       c.session_id, c.patient_id, c.protocol_id, c.started_at, c.started_date_only, c.course_id,
       c.status, c.dose_mg_per_kg, c.weight_kg, c.dose_mg, c.duration_minutes, c.site, c.provider,
       c.bp_systolic_max, c.bp_diastolic_max, c.adverse_events, c.cpt_codes,
       hash(c.row_struct) AS row_hash,
       c.session_id AS __id,
       c.__offsets,
       CASE WHEN coalesce(r_session_id, r_patient_id, r_protocol_id, i_session_id, i_patient_id,
                          i_protocol_id, i_course_id, r_started_at, r_status, r_dose_mg_per_kg,
                          r_weight_kg, r_dose_mg, r_duration_minutes, r_bp_systolic_max,
                          r_bp_diastolic_max) IS NOT NULL
            THEN list_filter([
                problem('session_id', raw_session_id, r_session_id),
                problem('patient_id', raw_patient_id, r_patient_id),
                problem('protocol_id', raw_protocol_id, r_protocol_id),
                problem('session_id', raw_session_id, i_session_id),
                problem('patient_id', raw_patient_id, i_patient_id),
                problem('protocol_id', raw_protocol_id, i_protocol_id),
                problem('course_id', raw_course_id, i_course_id),
                problem('started_at', raw_started_at, r_started_at),
                problem('status', raw_status, r_status),
                problem('dose_mg_per_kg', raw_dose_mg_per_kg, r_dose_mg_per_kg),
                problem('weight_kg', raw_weight_kg, r_weight_kg),
                problem('dose_mg', raw_dose_mg, r_dose_mg),
                problem('duration_minutes', raw_duration_minutes, r_duration_minutes),
                problem('bp_systolic_max', raw_bp_systolic_max, r_bp_systolic_max),
                problem('bp_diastolic_max', raw_bp_diastolic_max, r_bp_diastolic_max)], lambda x: x.reason IS NOT NULL)
       END AS __problems
FROM checked c;
