-- typed + problems for a staged sessions file (temp table stg, all text) -> canonical types.
-- SPEC §1 sessions: session_id, patient_id, protocol_id, started_at required; status defaults to completed.
-- Every value is parsed once, in `typed`; the checks read typed (raw_* columns keep the text).
CREATE OR REPLACE TEMP TABLE typed AS
WITH parsed AS (
    SELECT
        __line,
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
        list_transform(split_list(cpt_codes), lambda c: upper(c)) AS cpt_codes,
        session_id AS raw_session_id, patient_id AS raw_patient_id, course_id AS raw_course_id,
        protocol_id AS raw_protocol_id, started_at AS raw_started_at, status AS raw_status,
        dose_mg_per_kg AS raw_dose_mg_per_kg, weight_kg AS raw_weight_kg, dose_mg AS raw_dose_mg,
        duration_minutes AS raw_duration_minutes, bp_systolic_max AS raw_bp_systolic_max,
        bp_diastolic_max AS raw_bp_diastolic_max
    FROM stg
)
SELECT *,
       coalesce(is_date_only(started_at), false) AS started_date_only,
       session_id AS __id,
       session_id AS __key,
       struct_pack(session_id, patient_id, protocol_id, started_at, course_id, status,
                            dose_mg_per_kg, weight_kg, dose_mg, duration_minutes, site, provider,
                            bp_systolic_max, bp_diastolic_max, adverse_events, cpt_codes) AS row_struct,
       hash(row_struct) AS row_hash
FROM parsed;

CREATE OR REPLACE TEMP TABLE problems AS
WITH odd_ids AS (
    -- The rare rows with an invisible character in any id. Each id is tested on its own: an id
    -- made only of combining marks is invisible alone but not inside a concatenation.
    SELECT * FROM typed
    WHERE has_invisible(session_id) OR has_invisible(patient_id) OR has_invisible(protocol_id)
       OR has_invisible(course_id)
),
checks AS (
    SELECT __line AS line, 'session_id' AS "column", raw_session_id AS value,
           required_problem(raw_session_id) AS reason FROM typed
    UNION ALL
    SELECT __line, 'patient_id', raw_patient_id, required_problem(raw_patient_id) FROM typed
    UNION ALL
    SELECT __line, 'protocol_id', raw_protocol_id, required_problem(raw_protocol_id) FROM typed
    UNION ALL
    SELECT __line, 'session_id', raw_session_id, id_problem(session_id) FROM odd_ids
    UNION ALL
    SELECT __line, 'patient_id', raw_patient_id, id_problem(patient_id) FROM odd_ids
    UNION ALL
    SELECT __line, 'protocol_id', raw_protocol_id, id_problem(protocol_id) FROM odd_ids
    UNION ALL
    SELECT __line, 'course_id', raw_course_id, id_problem(course_id) FROM odd_ids
    UNION ALL
    SELECT __line, 'started_at', raw_started_at,
           coalesce(required_problem(raw_started_at),
                    ts_problem(raw_started_at, started_at, settings.load_date))
    FROM typed, settings
    UNION ALL
    SELECT __line, 'status', raw_status,
           CASE WHEN status = '?' THEN 'unknown status; use completed, aborted or cancelled' END
    FROM typed
    UNION ALL
    SELECT __line, 'dose_mg_per_kg', raw_dose_mg_per_kg,
           num_reason(raw_dose_mg_per_kg, dose_mg_per_kg, 0, 5, 'a ketamine dose in mg/kg') FROM typed
    UNION ALL
    SELECT __line, 'weight_kg', raw_weight_kg,
           num_reason(raw_weight_kg, weight_kg, 20, 400, 'weight in kg') FROM typed
    UNION ALL
    SELECT __line, 'dose_mg', raw_dose_mg,
           num_reason(raw_dose_mg, dose_mg, 0, 2000, 'a total dose in mg') FROM typed
    UNION ALL
    SELECT __line, 'duration_minutes', raw_duration_minutes,
           num_reason(raw_duration_minutes, duration_minutes, 0, 600, 'infusion minutes') FROM typed
    UNION ALL
    SELECT __line, 'bp_systolic_max', raw_bp_systolic_max,
           int_reason(raw_bp_systolic_max, bp_systolic_max, 50, 300,
                      'systolic blood pressure (mmHg)') FROM typed
    UNION ALL
    SELECT __line, 'bp_diastolic_max', raw_bp_diastolic_max,
           int_reason(raw_bp_diastolic_max, bp_diastolic_max, 20, 200,
                      'diastolic blood pressure (mmHg)') FROM typed
    UNION ALL
    -- The protocol must be known (the patient check is in patient_references.sql).
    SELECT t.__line, 'protocol_id', t.protocol_id,
           CASE WHEN r.line IS NOT NULL
                THEN 'the protocol''s own row was rejected; fix that row first ('
                     || r.file || ' line ' || r.line || ')'
                ELSE 'unknown protocol: not in the protocols file; add it or correct the id' END
    FROM typed t
    LEFT JOIN rejected_ids r ON r.table_name = 'protocols' AND r.id = t.protocol_id
    WHERE t.protocol_id IS NOT NULL
      AND t.protocol_id NOT IN (SELECT protocol_id FROM protocols)
      AND NOT has_invisible(t.protocol_id)
    UNION ALL
    -- No infusion before birth: the date of birth is in the patients table (loaded first).
    SELECT t.__line, 'started_at', t.raw_started_at,
           'dated before the patient''s date of birth (patients file); check the year of this '
           || 'date and of the date of birth'
    FROM typed t JOIN patients p ON p.patient_id = t.patient_id
    WHERE t.started_at::DATE < p.birth_date
      AND t.started_at >= TIMESTAMP '1900-01-01'  -- an earlier date is already implausible
)
SELECT * FROM checks WHERE reason IS NOT NULL;
