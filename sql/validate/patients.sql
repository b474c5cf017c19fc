-- typed + problems for a staged patients file (temp table stg, all text) -> canonical types.
-- SPEC §1 patients: patient_id required; birth_date, sex, diagnosis_code (ICD-10), payer, ... optional.
CREATE OR REPLACE TEMP TABLE typed AS
WITH parsed AS (
    SELECT
        __line,
        clean(patient_id)               AS patient_id,
        parse_ts(birth_date)            AS birth_ts,
        ts_offset(birth_date)           AS __offsets,
        lower(clean(sex))               AS sex,
        upper(clean(diagnosis_code))    AS diagnosis_code,
        clean(payer)                    AS payer,
        clean(member_id)                AS member_id,
        clean(site)                     AS site,
        'patients'                      AS source,
        patient_id AS raw_patient_id, birth_date AS raw_birth_date,
        diagnosis_code AS raw_diagnosis_code, member_id AS raw_member_id
    FROM stg
)
SELECT * EXCLUDE (birth_ts),
       birth_ts::DATE AS birth_date,
       patient_id AS __id,
       patient_id AS __key,
       struct_pack(patient_id, birth_date := birth_ts::DATE, sex, diagnosis_code, payer, member_id, site) AS row_struct,
       hash(row_struct) AS row_hash,
       birth_ts
FROM parsed;

CREATE OR REPLACE TEMP TABLE problems AS
WITH first_seen AS (
    -- Earliest session, score or trial already loaded for a patient that was only derived so
    -- far (a listed patient's row cannot change: a new birth date would be a conflict).
    SELECT patient_id, min(day) AS first_day
    FROM (SELECT patient_id, started_at::DATE AS day FROM sessions
          UNION ALL SELECT patient_id, administered_at::DATE FROM assessments
          UNION ALL SELECT patient_id, start_date FROM treatment_history)
    WHERE patient_id IN (SELECT patient_id FROM patients WHERE source = 'derived')
    GROUP BY patient_id
),
checks AS (
    SELECT __line AS line, 'patient_id' AS "column", raw_patient_id AS value,
           coalesce(required_problem(raw_patient_id), id_problem(patient_id)) AS reason FROM typed
    UNION ALL
    SELECT __line, 'member_id', raw_member_id, id_problem(member_id) FROM typed
    UNION ALL
    SELECT __line, 'birth_date', raw_birth_date,
           ts_problem(raw_birth_date, birth_ts, settings.load_date)
    FROM typed, settings
    UNION ALL
    SELECT t.__line, 'birth_date', t.raw_birth_date,
           'date of birth after the patient''s first session, score or trial already loaded; '
           || 'check the year'
    FROM typed t JOIN first_seen f USING (patient_id)
    WHERE t.birth_date > f.first_day
    UNION ALL
    SELECT __line, 'diagnosis_code', raw_diagnosis_code,
           CASE WHEN diagnosis_code IS NOT NULL
                 AND NOT regexp_full_match(diagnosis_code, '[A-TV-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?')
                THEN 'not an ICD-10 code; use the form F33.2' END FROM typed
)
SELECT * FROM checks WHERE reason IS NOT NULL;
