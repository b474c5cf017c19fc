-- typed for a staged patients file (view stg, all text) -> canonical types.
-- README "Input", patients: patient_id required; birth_date, sex, diagnosis_code (ICD-10), payer, ... optional.
-- Every value is parsed once and every rule of a row judged in the same pass; the failing ones
-- are listed in __problems (column, value as written, reason), NULL for a row without any: the
-- text as written is kept only there. Only projections, no join: typed keeps the order stg is
-- read in (a direct CSV's lines are its rowids). Rules that read other tables follow
-- (sql/validate/*_references.sql), then the match with the current rows (sql/merge/).
-- row_values(tbl): the values of a table shaped like typed as the row struct (and its key).
CREATE OR REPLACE TEMP MACRO row_values(tbl) AS TABLE
    SELECT __line, __id, row_hash, __problems, patient_id AS __key,
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
checked AS (
    SELECT *,
           birth_ts::DATE AS birth_date,
           struct_pack(patient_id, birth_date := birth_ts::DATE, sex, diagnosis_code, payer,
                       member_id, site) AS row_struct,
           coalesce(required_problem(raw_patient_id), id_problem(patient_id)) AS r_patient_id,
           id_problem(member_id) AS r_member_id,
           ts_problem(raw_birth_date, birth_ts, load_day()) AS r_birth_date,
           CASE WHEN diagnosis_code IS NOT NULL
                 AND NOT regexp_full_match(diagnosis_code, '[A-TV-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?')
                THEN 'not an ICD-10 code; use the form F33.2' END AS r_diagnosis_code
    FROM parsed
)
SELECT c.__line, c.__flag,
       c.patient_id, c.birth_date, c.sex, c.diagnosis_code, c.payer, c.member_id, c.site,
       'patients' AS source,
       hash(c.row_struct) AS row_hash,
       c.patient_id AS __id,
       c.__offsets,
       CASE WHEN coalesce(r_patient_id, r_member_id, r_birth_date,
                          r_diagnosis_code) IS NOT NULL
            THEN list_filter([
                problem('patient_id', raw_patient_id, r_patient_id),
                problem('member_id', raw_member_id, r_member_id),
                problem('birth_date', raw_birth_date, r_birth_date),
                problem('diagnosis_code', raw_diagnosis_code, r_diagnosis_code)],
                lambda x: x.reason IS NOT NULL)
       END AS __problems
FROM checked c;
