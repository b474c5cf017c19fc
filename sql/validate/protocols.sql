-- typed for a staged protocols file (view stg, all text) -> canonical types.
-- README "Input", protocols: protocol_id, name, planned_infusions, planned_days required.
-- Every value is parsed once and every rule of a row judged in the same pass; the failing ones
-- are listed in __problems (column, value as written, reason), NULL for a row without any: the
-- text as written is kept only there. Only projections, no join: typed keeps the order stg is
-- read in (a direct CSV's lines are its rowids). Rules that read other tables follow
-- (sql/validate/*_references.sql), then the match with the current rows (sql/merge/).
-- row_values(tbl): the values of a table shaped like typed as the row struct (and its key).
CREATE OR REPLACE TEMP MACRO row_values(tbl) AS TABLE
    SELECT __line, __id, row_hash, __problems, protocol_id AS __key,
           struct_pack(protocol_id, name, planned_infusions, planned_days, dose_mg_per_kg,
                       infusion_minutes, phase, indication) AS row_struct
    FROM query_table(tbl);

CREATE OR REPLACE TEMP TABLE typed AS
WITH parsed AS (
    SELECT
        __line, __flag,
        clean(protocol_id)              AS protocol_id,
        clean(name)                     AS name,
        to_int(planned_infusions)       AS planned_infusions,
        to_int(planned_days)            AS planned_days,
        to_num(dose_mg_per_kg)          AS dose_mg_per_kg,
        to_num(infusion_minutes)        AS infusion_minutes,
        lower(clean(phase))             AS phase,
        clean(indication)               AS indication,
        protocol_id AS raw_protocol_id, name AS raw_name, planned_infusions AS raw_planned_infusions,
        planned_days AS raw_planned_days, dose_mg_per_kg AS raw_dose_mg_per_kg,
        infusion_minutes AS raw_infusion_minutes, phase AS raw_phase
    FROM stg
),
checked AS (
    SELECT *,
           struct_pack(protocol_id, name, planned_infusions, planned_days, dose_mg_per_kg,
                       infusion_minutes, phase, indication) AS row_struct,
           coalesce(required_problem(raw_protocol_id), id_problem(protocol_id)) AS r_protocol_id,
           required_problem(raw_name) AS r_name,
           coalesce(required_problem(raw_planned_infusions),
                    int_reason(raw_planned_infusions, planned_infusions, 1, 200,
                               'planned infusions')) AS r_planned_infusions,
           coalesce(required_problem(raw_planned_days),
                    int_reason(raw_planned_days, planned_days, 1, 3650,
                               'planned days')) AS r_planned_days,
           num_reason(raw_dose_mg_per_kg, dose_mg_per_kg, 0, 5,
                      'a ketamine dose in mg/kg') AS r_dose_mg_per_kg,
           num_reason(raw_infusion_minutes, infusion_minutes, 1, 600,
                      'infusion minutes') AS r_infusion_minutes,
           CASE WHEN NOT blank(raw_phase)
                 AND lower(strip(raw_phase)) NOT IN ('induction', 'maintenance', 'booster')
                THEN 'unknown phase; use induction, maintenance or booster' END AS r_phase
    FROM parsed
)
SELECT c.__line, c.__flag,
       c.protocol_id, c.name, c.planned_infusions, c.planned_days, c.dose_mg_per_kg,
       c.infusion_minutes, c.phase, c.indication,
       hash(c.row_struct) AS row_hash,
       c.protocol_id AS __id,
       0 AS __offsets,
       CASE WHEN coalesce(r_protocol_id, r_name, r_planned_infusions, r_planned_days,
                          r_dose_mg_per_kg, r_infusion_minutes, r_phase) IS NOT NULL
            THEN list_filter([
                problem('protocol_id', raw_protocol_id, r_protocol_id),
                problem('name', raw_name, r_name),
                problem('planned_infusions', raw_planned_infusions, r_planned_infusions),
                problem('planned_days', raw_planned_days, r_planned_days),
                problem('dose_mg_per_kg', raw_dose_mg_per_kg, r_dose_mg_per_kg),
                problem('infusion_minutes', raw_infusion_minutes, r_infusion_minutes),
                problem('phase', raw_phase, r_phase)], lambda x: x.reason IS NOT NULL)
       END AS __problems
FROM checked c;
