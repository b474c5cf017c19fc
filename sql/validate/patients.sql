-- typed for a staged patients file (view stg, all text) -> canonical types, in one pass.
-- SPEC §1 patients: patient_id required; birth_date, sex, diagnosis_code (ICD-10), payer, ... optional.
-- Every rule of a row is judged in the same pass and the failing ones kept in __problems
-- (column, value as written, reason); the current row of the same id (view existing) is matched.
CREATE OR REPLACE TEMP MACRO row_values(tbl) AS TABLE
    SELECT __line, __id, patient_id AS __key,
           struct_pack(patient_id, birth_date, sex, diagnosis_code, payer, member_id, site) AS row_struct
    FROM query_table(tbl);

CREATE OR REPLACE TEMP TABLE typed AS
WITH parsed AS (
    SELECT
        __line, __flag,
        clean(patient_id)               AS patient_id,
        parse_ts(birth_date)            AS birth_ts,
        ts_offset(birth_date)           AS __offsets,
        lower(clean(sex))               AS sex,
        upper(clean(diagnosis_code))    AS diagnosis_code,
        clean(payer)                    AS payer,
        clean(member_id)                AS member_id,
        clean(site)                     AS site,
        patient_id AS raw_patient_id, birth_date AS raw_birth_date,
        diagnosis_code AS raw_diagnosis_code, member_id AS raw_member_id
    FROM stg
),
first_seen AS (
    -- Earliest session, score or trial already loaded for a patient that was only derived so
    -- far (a listed patient's row cannot change: a new birth date would be a conflict).
    SELECT patient_id, min(day) AS first_day
    FROM (SELECT patient_id, started_at::DATE AS day FROM sessions
          UNION ALL SELECT patient_id, administered_at::DATE FROM assessments
          UNION ALL SELECT patient_id, start_date FROM treatment_history)
    WHERE patient_id IN (SELECT patient_id FROM patients WHERE source = 'derived')
    GROUP BY patient_id
),
joined AS (
    SELECT p.*, s.load_date AS __load_date, f.first_day AS __first_day
    FROM parsed p
    CROSS JOIN settings s
    LEFT JOIN first_seen f ON f.patient_id = p.patient_id
),
checked AS (
    SELECT *,
           birth_ts::DATE AS birth_date,
           struct_pack(patient_id, birth_date := birth_ts::DATE, sex, diagnosis_code, payer,
                       member_id, site) AS row_struct,
           coalesce(required_problem(raw_patient_id), id_problem(patient_id)) AS r_patient_id,
           id_problem(member_id) AS r_member_id,
           ts_problem(raw_birth_date, birth_ts, __load_date) AS r_birth_date,
           CASE WHEN birth_ts::DATE > __first_day
                THEN 'date of birth after the patient''s first session, score or trial already '
                     || 'loaded; check the year' END AS r_first_seen,
           CASE WHEN diagnosis_code IS NOT NULL
                 AND NOT regexp_full_match(diagnosis_code, '[A-TV-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?')
                THEN 'not an ICD-10 code; use the form F33.2' END AS r_diagnosis_code
    FROM joined
)
SELECT c.__line, c.__flag,
       c.patient_id, c.birth_date, c.sex, c.diagnosis_code, c.payer, c.member_id, c.site,
       'patients' AS source,
       hash(c.row_struct) AS row_hash,
       c.patient_id AS __id,
       c.__offsets,
       CASE WHEN coalesce(r_patient_id, r_member_id, r_birth_date, r_first_seen,
                          r_diagnosis_code) IS NOT NULL
            THEN list_filter([
                problem('patient_id', raw_patient_id, r_patient_id),
                problem('member_id', raw_member_id, r_member_id),
                problem('birth_date', raw_birth_date, r_birth_date),
                problem('birth_date', raw_birth_date, r_first_seen),
                problem('diagnosis_code', raw_diagnosis_code, r_diagnosis_code)],
                lambda x: x.reason IS NOT NULL)
       END AS __problems,
       e.__rowid, e.load_id AS __current_load, e.replaceable AS __replaceable,
       e.row_struct IS NOT DISTINCT FROM c.row_struct AS __same
FROM checked c
LEFT JOIN existing e ON e.__id = c.patient_id;
