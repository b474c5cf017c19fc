-- typed + problems for a staged sessions file (temp table stg, all text) -> canonical types.
-- SPEC §1 sessions: session_id, patient_id, protocol_id, started_at required; status defaults to completed.
CREATE OR REPLACE TEMP TABLE typed AS
SELECT
    __line,
    clean(session_id)               AS session_id,
    clean(patient_id)               AS patient_id,
    clean(protocol_id)              AS protocol_id,
    parse_ts(started_at)            AS started_at,
    coalesce(is_date_only(started_at), false) AS started_date_only,
    clean(course_id)                AS course_id,
    CASE WHEN blank(status) THEN 'completed'
         WHEN lower(trim(status)) = 'complete' THEN 'completed'
         ELSE lower(trim(status)) END AS status,
    try_cast(trim(dose_mg_per_kg) AS DOUBLE)   AS dose_mg_per_kg,
    try_cast(trim(weight_kg) AS DOUBLE)        AS weight_kg,
    try_cast(trim(dose_mg) AS DOUBLE)          AS dose_mg,
    try_cast(trim(duration_minutes) AS DOUBLE) AS duration_minutes,
    clean(site)                     AS site,
    clean(provider)                 AS provider,
    to_int(bp_systolic_max)         AS bp_systolic_max,
    to_int(bp_diastolic_max)        AS bp_diastolic_max,
    split_list(adverse_events)      AS adverse_events,
    list_transform(split_list(cpt_codes), lambda c: upper(c)) AS cpt_codes,
    clean(session_id)               AS __id
FROM stg;

ALTER TABLE typed ADD COLUMN row_hash VARCHAR;
UPDATE typed SET row_hash = md5(CAST(struct_pack(
    session_id, patient_id, protocol_id, started_at, course_id, status, dose_mg_per_kg,
    weight_kg, dose_mg, duration_minutes, site, provider, bp_systolic_max, bp_diastolic_max,
    adverse_events, cpt_codes) AS VARCHAR));

CREATE OR REPLACE TEMP TABLE problems AS
WITH checks AS (
    SELECT __line AS line, 'session_id' AS "column", session_id AS value,
           required_problem(session_id) AS reason FROM stg
    UNION ALL
    SELECT __line, 'patient_id', patient_id, required_problem(patient_id) FROM stg
    UNION ALL
    SELECT __line, 'protocol_id', protocol_id, required_problem(protocol_id) FROM stg
    UNION ALL
    SELECT s.__line, 'started_at', s.started_at,
           coalesce(required_problem(s.started_at),
                    ts_problem(s.started_at, parse_ts(s.started_at), settings.load_date))
    FROM stg s, settings
    UNION ALL
    SELECT __line, 'status', status,
           CASE WHEN NOT blank(status)
                 AND lower(trim(status)) NOT IN ('completed', 'complete', 'aborted', 'cancelled')
                THEN 'unknown status; use completed, aborted or cancelled' END FROM stg
    UNION ALL
    SELECT __line, 'dose_mg_per_kg', dose_mg_per_kg,
           num_problem(dose_mg_per_kg, 0, 5, 'a ketamine dose in mg/kg') FROM stg
    UNION ALL
    SELECT __line, 'weight_kg', weight_kg, num_problem(weight_kg, 20, 400, 'weight in kg') FROM stg
    UNION ALL
    SELECT __line, 'dose_mg', dose_mg, num_problem(dose_mg, 0, 2000, 'a total dose in mg') FROM stg
    UNION ALL
    SELECT __line, 'duration_minutes', duration_minutes,
           num_problem(duration_minutes, 0, 600, 'infusion minutes') FROM stg
    UNION ALL
    SELECT __line, 'bp_systolic_max', bp_systolic_max,
           int_problem(bp_systolic_max, 50, 300, 'systolic blood pressure (mmHg)') FROM stg
    UNION ALL
    SELECT __line, 'bp_diastolic_max', bp_diastolic_max,
           int_problem(bp_diastolic_max, 20, 200, 'diastolic blood pressure (mmHg)') FROM stg
    UNION ALL
    -- The protocol must be known (the patient check is in patient_references.sql).
    SELECT t.__line, 'protocol_id', t.protocol_id,
           CASE WHEN r.line IS NOT NULL
                THEN 'the protocol''s row in ' || r.file || ' (line ' || r.line
                     || ') was rejected; fix that row first'
                ELSE 'unknown protocol: not in the protocols file; add it or correct the id' END
    FROM typed t
    LEFT JOIN rejected_ids r ON r.table_name = 'protocols' AND r.id = t.protocol_id
    WHERE t.protocol_id IS NOT NULL
      AND t.protocol_id NOT IN (SELECT protocol_id FROM protocols)
)
SELECT * FROM checks WHERE reason IS NOT NULL;
