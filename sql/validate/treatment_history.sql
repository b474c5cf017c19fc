-- typed for a staged treatment_history file (view stg, all text) -> canonical types.
-- README "treatment_history": patient_id, medication, start_date required.
-- Every value is parsed once and every rule of a row judged in the same pass; the failing ones
-- are listed in __problems (column, value as written, reason), NULL for a row without any: the
-- text as written is kept only there. Only projections, no join: typed keeps the order stg is
-- read in (a direct CSV's lines are its rowids). Rules that read other tables follow
-- (sql/validate/*_references.sql), then the match with the current rows (sql/merge/).
-- row_values(tbl): the values of a table shaped like typed as the row struct (and its key).
CREATE OR REPLACE TEMP MACRO row_values(tbl) AS TABLE
    SELECT __line, __id, row_hash, __problems,
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
                    ts_problem(raw_start_date, start_ts, load_day())) AS r_start_date,
           coalesce(ts_problem(raw_end_date, end_ts, load_day()),
                    CASE WHEN end_ts < start_ts THEN 'end date before start date' END) AS r_end_date,
           CASE WHEN NOT blank(raw_adequate_dose)
                 AND lower(strip(raw_adequate_dose)) NOT IN ('yes', 'no', 'true', 'false', '1', '0', 'y', 'n')
                THEN 'use yes or no' END AS r_adequate_dose,
           num_reason(raw_improvement_pct, improvement_pct, -100, 100,
                      'percent improvement') AS r_improvement_pct,
           CASE WHEN NOT blank(raw_episode) AND lower(strip(raw_episode)) NOT IN ('current', 'prior')
                THEN 'unknown episode; use current or prior' END AS r_episode
    FROM parsed
)
SELECT c.__line, c.__flag,
       c.trial_id, c.patient_id, c.medication, c.drug_class, c.start_date, c.end_date,
       c.adequate_dose, c.improvement_pct, c.episode,
       hash(c.row_struct) AS row_hash,
       c.trial_id AS __id,
       c.__offsets,
       CASE WHEN coalesce(r_patient_id, r_trial_id, r_medication, r_start_date, r_end_date,
                          r_adequate_dose, r_improvement_pct, r_episode) IS NOT NULL
            THEN list_filter([
                problem('patient_id', raw_patient_id, r_patient_id),
                problem('trial_id', raw_trial_id, r_trial_id),
                problem('medication', raw_medication, r_medication),
                problem('start_date', raw_start_date, r_start_date),
                problem('end_date', raw_end_date, r_end_date),
                problem('adequate_dose', raw_adequate_dose, r_adequate_dose),
                problem('improvement_pct', raw_improvement_pct, r_improvement_pct),
                problem('episode', raw_episode, r_episode)], lambda x: x.reason IS NOT NULL)
       END AS __problems
FROM checked c;
