-- typed + problems for a staged treatment_history file (temp table stg, all text) -> canonical types.
-- README "treatment_history": patient_id, medication, start_date required.
CREATE OR REPLACE TEMP TABLE typed AS
WITH parsed AS (
    SELECT
        __line,
        clean(trial_id)                 AS trial_id,
        clean(patient_id)               AS patient_id,
        clean(medication)               AS medication,
        clean(drug_class)               AS drug_class,
        parse_ts(start_date)::DATE      AS start_date,
        parse_ts(end_date)::DATE        AS end_date,
        ts_offset(start_date) + ts_offset(end_date) AS __offsets,
        CASE lower(strip(adequate_dose)) WHEN 'yes' THEN true WHEN 'true' THEN true WHEN '1' THEN true
                                         WHEN 'y' THEN true WHEN 'no' THEN false WHEN 'false' THEN false
                                         WHEN '0' THEN false WHEN 'n' THEN false END AS adequate_dose,
        to_num(improvement_pct)         AS improvement_pct,
        lower(clean(episode))           AS episode,
        clean(trial_id)                 AS __id,
        -- a trial without an id: patient, medication and start (kept current when rejected)
        struct_pack(patient_id := clean(patient_id), medication := clean(medication),
                    start_date := parse_ts(start_date)::DATE) AS __key,
        trial_id AS raw_trial_id, patient_id AS raw_patient_id
    FROM stg
)
SELECT *,
       struct_pack(
    trial_id, patient_id, medication, drug_class, start_date, end_date, adequate_dose,
    improvement_pct, episode) AS row_struct,
       hash(row_struct) AS row_hash
FROM parsed;

CREATE OR REPLACE TEMP TABLE problems AS
WITH checks AS (
    SELECT __line AS line, 'patient_id' AS "column", raw_patient_id AS value,
           coalesce(required_problem(raw_patient_id), id_problem(patient_id)) AS reason FROM typed
    UNION ALL
    SELECT __line, 'trial_id', raw_trial_id, id_problem(trial_id) FROM typed
    UNION ALL
    SELECT __line, 'medication', medication, required_problem(medication) FROM stg
    UNION ALL
    SELECT s.__line, 'start_date', s.start_date,
           coalesce(required_problem(s.start_date),
                    ts_problem(s.start_date, parse_ts(s.start_date), settings.load_date))
    FROM stg s, settings
    UNION ALL
    SELECT s.__line, 'end_date', s.end_date,
           coalesce(ts_problem(s.end_date, parse_ts(s.end_date), settings.load_date),
                    CASE WHEN parse_ts(s.end_date) < parse_ts(s.start_date)
                         THEN 'end date before start date' END)
    FROM stg s, settings
    UNION ALL
    SELECT __line, 'adequate_dose', adequate_dose,
           CASE WHEN NOT blank(adequate_dose)
                 AND lower(strip(adequate_dose)) NOT IN ('yes', 'no', 'true', 'false', '1', '0', 'y', 'n')
                THEN 'use yes or no' END FROM stg
    UNION ALL
    SELECT __line, 'improvement_pct', improvement_pct,
           num_problem(improvement_pct, -100, 100, 'percent improvement') FROM stg
    UNION ALL
    SELECT __line, 'episode', episode,
           CASE WHEN NOT blank(episode) AND lower(strip(episode)) NOT IN ('current', 'prior')
                THEN 'unknown episode; use current or prior' END FROM stg
    UNION ALL
    -- No trial before birth: the date of birth is in the patients table (loaded first).
    SELECT t.__line, 'start_date', s.start_date,
           'dated before the patient''s date of birth (patients file); check the year of this '
           || 'date and of the date of birth'
    FROM typed t JOIN stg s USING (__line) JOIN patients p ON p.patient_id = t.patient_id
    WHERE t.start_date < p.birth_date
      AND t.start_date >= DATE '1900-01-01'  -- an earlier date is already implausible
)
SELECT * FROM checks WHERE reason IS NOT NULL;
