-- typed + problems for a staged patients file (temp table stg, all text) -> canonical types.
-- SPEC §1 patients: patient_id required; birth_date, sex, diagnosis_code (ICD-10), payer, ... optional.
CREATE OR REPLACE TEMP TABLE typed AS
SELECT
    __line,
    clean(patient_id)               AS patient_id,
    parse_ts(birth_date)::DATE      AS birth_date,
    lower(clean(sex))               AS sex,
    upper(clean(diagnosis_code))    AS diagnosis_code,
    clean(payer)                    AS payer,
    clean(member_id)                AS member_id,
    clean(site)                     AS site,
    'patients'                      AS source,
    clean(patient_id)               AS __id
FROM stg;

ALTER TABLE typed ADD COLUMN row_hash VARCHAR;
UPDATE typed SET row_hash = md5(CAST(struct_pack(
    patient_id, birth_date, sex, diagnosis_code, payer, member_id, site) AS VARCHAR));

CREATE OR REPLACE TEMP TABLE problems AS
WITH checks AS (
    SELECT __line AS line, 'patient_id' AS "column", patient_id AS value,
           required_problem(patient_id) AS reason FROM stg
    UNION ALL
    SELECT s.__line, 'birth_date', s.birth_date,
           ts_problem(s.birth_date, parse_ts(s.birth_date), settings.load_date)
    FROM stg s, settings
    UNION ALL
    SELECT __line, 'diagnosis_code', diagnosis_code,
           CASE WHEN NOT blank(diagnosis_code)
                 AND NOT regexp_full_match(upper(trim(diagnosis_code)),
                                           '[A-TV-Z][0-9][0-9A-Z](\.?[0-9A-Z]{1,4})?')
                THEN 'not an ICD-10 code; use the form F33.2' END FROM stg
)
SELECT * FROM checks WHERE reason IS NOT NULL;
