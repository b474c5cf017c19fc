-- typed + problems for a staged protocols file (temp table stg, all text) -> canonical types.
-- SPEC §1 protocols: protocol_id, name, planned_infusions, planned_days required.
CREATE OR REPLACE TEMP TABLE typed AS
WITH parsed AS (
    SELECT
        __line,
        clean(protocol_id)              AS protocol_id,
        clean(name)                     AS name,
        to_int(planned_infusions)       AS planned_infusions,
        to_int(planned_days)            AS planned_days,
        to_num(dose_mg_per_kg)          AS dose_mg_per_kg,
        to_num(infusion_minutes)        AS infusion_minutes,
        lower(clean(phase))             AS phase,
        clean(indication)               AS indication,
        clean(protocol_id)              AS __id,
        clean(protocol_id)              AS __key,
        0                               AS __offsets
    FROM stg
)
SELECT *,
       struct_pack(
    protocol_id, name, planned_infusions, planned_days, dose_mg_per_kg, infusion_minutes,
    phase, indication) AS row_struct,
       hash(row_struct) AS row_hash
FROM parsed;

CREATE OR REPLACE TEMP TABLE problems AS
WITH checks AS (
    SELECT s.__line AS line, 'protocol_id' AS "column", s.protocol_id AS value,
           coalesce(required_problem(s.protocol_id), id_problem(t.protocol_id)) AS reason
    FROM stg s JOIN typed t USING (__line)
    UNION ALL
    SELECT __line, 'name', name, required_problem(name) FROM stg
    UNION ALL
    SELECT __line, 'planned_infusions', planned_infusions,
           coalesce(required_problem(planned_infusions),
                    int_problem(planned_infusions, 1, 200, 'planned infusions')) FROM stg
    UNION ALL
    SELECT __line, 'planned_days', planned_days,
           coalesce(required_problem(planned_days),
                    int_problem(planned_days, 1, 3650, 'planned days')) FROM stg
    UNION ALL
    SELECT __line, 'dose_mg_per_kg', dose_mg_per_kg,
           num_problem(dose_mg_per_kg, 0, 5, 'a ketamine dose in mg/kg') FROM stg
    UNION ALL
    SELECT __line, 'infusion_minutes', infusion_minutes,
           num_problem(infusion_minutes, 1, 600, 'infusion minutes') FROM stg
    UNION ALL
    SELECT __line, 'phase', phase,
           CASE WHEN NOT blank(phase)
                 AND lower(strip(phase)) NOT IN ('induction', 'maintenance', 'booster')
                THEN 'unknown phase; use induction, maintenance or booster' END FROM stg
)
SELECT * FROM checks WHERE reason IS NOT NULL;
