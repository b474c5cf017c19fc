-- typed + problems for a staged patients file (temp table stg, all text) -> canonical types.
-- SPEC §1 patients: patient_id required; birth_date, sex, diagnosis_code (ICD-10), payer, ... optional.
CREATE OR REPLACE TEMP TABLE typed AS
WITH parsed AS (
    SELECT
        __line,
        clean(patient_id)               AS patient_id,
        parse_ts(birth_date)            AS birth_ts,
        lower(clean(sex))               AS sex,
        upper(clean(diagnosis_code))    AS diagnosis_code,
        clean(payer)                    AS payer,
        clean(member_id)                AS member_id,
        clean(site)                     AS site,
        'patients'                      AS source,
        patient_id AS raw_patient_id, birth_date AS raw_birth_date,
        diagnosis_code AS raw_diagnosis_code
    FROM stg
)
SELECT * EXCLUDE (birth_ts),
       birth_ts::DATE AS birth_date,
       patient_id AS __id,
       struct_pack(patient_id, birth_date := birth_ts::DATE, sex, diagnosis_code, payer, member_id, site) AS row_struct,
       hash(row_struct) AS row_hash,
       birth_ts
FROM parsed;

CREATE OR REPLACE TEMP TABLE problems AS
WITH checks AS (
    SELECT __line AS line, 'patient_id' AS "column", raw_patient_id AS value,
           required_problem(raw_patient_id) AS reason FROM typed
    UNION ALL
    SELECT __line, 'birth_date', raw_birth_date,
           ts_problem(raw_birth_date, birth_ts, settings.load_date)
    FROM typed, settings
    UNION ALL
    SELECT __line, 'diagnosis_code', raw_diagnosis_code,
           CASE WHEN diagnosis_code IS NOT NULL
                 AND NOT regexp_full_match(diagnosis_code, '[A-TV-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?')
                THEN 'not an ICD-10 code; use the form F33.2' END FROM typed
)
SELECT * FROM checks WHERE reason IS NOT NULL;
