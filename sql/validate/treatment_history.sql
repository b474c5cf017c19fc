-- typed for a staged treatment_history file (view stg, all text) -> canonical types, in one pass.
-- README "treatment_history": patient_id, medication, start_date required.
-- Every rule of a row is judged in the same pass and the failing ones kept in __problems
-- (column, value as written, reason); the current row of the same id (view existing), or for a
-- trial without an id the current row of the same values, is matched in the same pass.
CREATE OR REPLACE TEMP MACRO row_values(tbl) AS TABLE
    SELECT __line, __id,
           -- a trial without an id: patient, medication and start (kept current when rejected)
           struct_pack(patient_id, medication, start_date) AS __key,
           struct_pack(trial_id, patient_id, medication, drug_class, start_date, end_date,
                       adequate_dose, improvement_pct, episode) AS row_struct
    FROM query_table(tbl);

CREATE OR REPLACE TEMP TABLE typed AS
WITH parsed AS (
    SELECT
        __line, __flag,
        clean(trial_id)                 AS trial_id,
        clean(patient_id)               AS patient_id,
        clean(medication)               AS medication,
        clean(drug_class)               AS drug_class,
        parse_ts(start_date)            AS start_ts,
        parse_ts(end_date)              AS end_ts,
        ts_offset(start_date) + ts_offset(end_date) AS __offsets,
        CASE lower(strip(adequate_dose)) WHEN 'yes' THEN true WHEN 'true' THEN true WHEN '1' THEN true
                                         WHEN 'y' THEN true WHEN 'no' THEN false WHEN 'false' THEN false
                                         WHEN '0' THEN false WHEN 'n' THEN false END AS adequate_dose,
        to_num(improvement_pct)         AS improvement_pct,
        lower(clean(episode))           AS episode,
        trial_id AS raw_trial_id, patient_id AS raw_patient_id, medication AS raw_medication,
        start_date AS raw_start_date, end_date AS raw_end_date,
        adequate_dose AS raw_adequate_dose, improvement_pct AS raw_improvement_pct,
        episode AS raw_episode
    FROM stg
),
joined AS (
    SELECT p.*, s.load_date AS __load_date, b.birth_date AS __birth_date
    FROM parsed p
    CROSS JOIN settings s
    LEFT JOIN patients b ON b.patient_id = p.patient_id AND b.birth_date IS NOT NULL
),
checked AS (
    SELECT *,
           start_ts::DATE AS start_date,
           end_ts::DATE AS end_date,
           struct_pack(trial_id, patient_id, medication, drug_class, start_date := start_ts::DATE,
                       end_date := end_ts::DATE, adequate_dose, improvement_pct,
                       episode) AS row_struct,
           coalesce(required_problem(raw_patient_id), id_problem(patient_id)) AS r_patient_id,
           id_problem(trial_id) AS r_trial_id,
           required_problem(raw_medication) AS r_medication,
           coalesce(required_problem(raw_start_date),
                    ts_problem(raw_start_date, start_ts, __load_date)) AS r_start_date,
           coalesce(ts_problem(raw_end_date, end_ts, __load_date),
                    CASE WHEN end_ts < start_ts THEN 'end date before start date' END) AS r_end_date,
           CASE WHEN NOT blank(raw_adequate_dose)
                 AND lower(strip(raw_adequate_dose)) NOT IN ('yes', 'no', 'true', 'false', '1', '0', 'y', 'n')
                THEN 'use yes or no' END AS r_adequate_dose,
           num_reason(raw_improvement_pct, improvement_pct, -100, 100,
                      'percent improvement') AS r_improvement_pct,
           CASE WHEN NOT blank(raw_episode) AND lower(strip(raw_episode)) NOT IN ('current', 'prior')
                THEN 'unknown episode; use current or prior' END AS r_episode,
           -- No trial before birth: the date of birth is in the patients table (loaded first).
           CASE WHEN start_ts::DATE < __birth_date
                 AND start_ts::DATE >= DATE '1900-01-01'  -- an earlier date is already implausible
                THEN 'dated before the patient''s date of birth (patients file); check the year of '
                     || 'this date and of the date of birth' END AS r_birth
    FROM joined
)
SELECT c.__line, c.__flag,
       c.trial_id, c.patient_id, c.medication, c.drug_class, c.start_date, c.end_date,
       c.adequate_dose, c.improvement_pct, c.episode,
       hash(c.row_struct) AS row_hash,
       c.trial_id AS __id,
       c.__offsets,
       CASE WHEN coalesce(r_patient_id, r_trial_id, r_medication, r_start_date, r_end_date,
                          r_adequate_dose, r_improvement_pct, r_episode, r_birth) IS NOT NULL
            THEN list_filter([
                problem('patient_id', raw_patient_id, r_patient_id),
                problem('trial_id', raw_trial_id, r_trial_id),
                problem('medication', raw_medication, r_medication),
                problem('start_date', raw_start_date, r_start_date),
                problem('end_date', raw_end_date, r_end_date),
                problem('adequate_dose', raw_adequate_dose, r_adequate_dose),
                problem('improvement_pct', raw_improvement_pct, r_improvement_pct),
                problem('episode', raw_episode, r_episode),
                problem('start_date', raw_start_date, r_birth)], lambda x: x.reason IS NOT NULL)
       END AS __problems,
       coalesce(e.__rowid, h.__rowid) AS __rowid,
       coalesce(e.load_id, h.load_id) AS __current_load,
       coalesce(e.replaceable, h.replaceable) AS __replaceable,
       CASE WHEN e.__rowid IS NOT NULL THEN e.row_struct IS NOT DISTINCT FROM c.row_struct
            WHEN h.__rowid IS NOT NULL THEN true END AS __same
FROM checked c
LEFT JOIN existing e ON e.__id = c.trial_id
-- a trial without an id is the current one of the same values (64-bit hash, then every value
-- compared, so a collision never merges two rows)
LEFT JOIN (SELECT * FROM existing WHERE __id IS NULL) h
       ON h.row_hash = CASE WHEN c.trial_id IS NULL THEN hash(c.row_struct) END
      AND h.row_struct IS NOT DISTINCT FROM c.row_struct;
