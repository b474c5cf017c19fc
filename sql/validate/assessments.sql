-- typed for a staged assessments (items_raw = item_1..N) file (view stg, all text) -> canonical types.
-- README "Input" (assessments) and the instrument registry (docs/definitions.md "Instruments"):
-- range, items, item sum (QIDS-SR16 by domain).
-- Every value is parsed once and every rule of a row judged in the same pass; the failing ones
-- are listed in __problems (column, value as written, reason), NULL for a row without any: the
-- text as written is kept only there. Only projections, no join: typed keeps the order stg is
-- read in (a direct CSV's lines are its rowids). Rules that read other tables follow
-- (sql/validate/*_references.sql), then the match with the current rows (sql/merge/).
-- row_values(tbl): the values of a table shaped like typed as the row struct (and its key).
CREATE OR REPLACE TEMP MACRO row_values(tbl) AS TABLE
    SELECT __line, __id, row_hash, __problems,
           -- what identifies a score without an id when its row is rejected (its earlier
           -- version stays current): patient, instrument and time
           struct_pack(patient_id, instrument, administered_at) AS __key,
           struct_pack(assessment_id, patient_id, instrument, administered_at, total_score,
                       session_id, timing, items) AS row_struct
    FROM query_table(tbl);

CREATE OR REPLACE TEMP TABLE typed AS
WITH parsed AS (
    SELECT
        s.__line, s.__flag,
        clean(s.assessment_id)          AS assessment_id,
        clean(s.patient_id)             AS patient_id,
        -- the name as written, else its key (case, spaces, punctuation aside): map lookups, no
        -- join (sql/validate/instruments.sql)
        coalesce(getvariable('instrument_named')[s.instrument],
                 getvariable('instrument_keyed')[regexp_replace(upper(s.instrument), '[^0-9A-Z]', '', 'g')])
                                        AS instrument,
        parse_ts(s.administered_at)     AS administered_at,
        ts_offset(s.administered_at)    AS __offsets,
        to_num(s.total_score)           AS total_score,
        clean(s.session_id)             AS session_id,
        CASE WHEN s.timing IS NULL THEN NULL
             WHEN lower(s.timing) IN ('pre', 'post', 'followup') THEN lower(s.timing)
             ELSE CASE regexp_replace(lower(s.timing), '[^a-z]', '', 'g')
                       WHEN '' THEN NULL
                       WHEN 'pre' THEN 'pre' WHEN 'post' THEN 'post'
                       WHEN 'followup' THEN 'followup' ELSE '?' END END AS timing,
        -- Two passes so that each cell is cast once: text -> DOUBLE -> whole number or NULL.
        list_transform(list_transform(s.items_raw, lambda x: to_double(x)),
                       lambda d: whole(d)) AS all_items,
        s.assessment_id AS raw_assessment_id, s.patient_id AS raw_patient_id,
        s.session_id AS raw_session_id, s.instrument AS raw_instrument,
        s.administered_at AS raw_administered_at, s.total_score AS raw_total_score,
        s.timing AS raw_timing, s.items_raw
    FROM stg s
),
registered AS (
    SELECT * EXCLUDE (r), r.item_count, r.item_min, r.item_max, r.scoring, r.total_min, r.total_max
    FROM (SELECT *, getvariable('registry')[instrument] AS r FROM parsed)
),
final AS (
    SELECT *,
           coalesce(is_date_only(administered_at), false) AS date_only,
           -- item_1..item_N of the instrument; NULL when the row gives none of the file's items
           CASE WHEN list_count(all_items) > 0
                     THEN all_items[1:coalesce(item_count, len(all_items))]
                WHEN list_count(items_raw) = 0 THEN NULL
                WHEN list_bool_or(list_transform(items_raw, lambda x: NOT blank(x)))
                     THEN all_items[1:coalesce(item_count, len(all_items))] END AS items
    FROM registered
),
checked AS (
    SELECT *,
           struct_pack(assessment_id, patient_id, instrument, administered_at, total_score,
                       session_id, timing, items) AS row_struct,
           required_problem(raw_patient_id) AS r_patient_id,
           id_problem(assessment_id) AS i_assessment_id,
           id_problem(patient_id) AS i_patient_id,
           id_problem(session_id) AS i_session_id,
           coalesce(required_problem(raw_instrument),
                    CASE WHEN instrument IS NULL
                         THEN 'unknown instrument; correct the name or add the instrument under '
                              || '[instruments] in the config (known: '
                              || getvariable('instrument_names') || ')'
                    END) AS r_instrument,
           coalesce(required_problem(raw_administered_at),
                    ts_problem(raw_administered_at, administered_at, load_day())) AS r_administered_at,
           coalesce(required_problem(raw_total_score),
                    CASE WHEN total_score IS NULL AND to_double(raw_total_score) IS NULL
                              AND NOT stripped_has_invisible(raw_total_score)
                             THEN 'not a number; the total score must be a number'
                         WHEN total_score IS NULL
                             THEN not_number_reason(raw_total_score, 'the total score')
                         WHEN total_score < total_min OR total_score > total_max
                             THEN 'score outside the ' || instrument || ' range ' || num_text(total_min)
                                  || '–' || num_text(total_max)
                         -- Sum and QIDS totals add whole-number items; a prorated total is not one.
                         WHEN scoring <> 'none' AND total_score <> floor(total_score)
                             THEN 'not a whole number; a ' || instrument || ' total is a sum of '
                                  || 'whole-number items (12.0 is read as 12, 12.5 is not a score)'
                    END) AS r_total_score,
           CASE WHEN timing = '?' THEN 'unknown timing; use pre, post or followup' END AS r_timing,
           -- Each item cell, only on rows that may have an item problem (cheap list aggregates
           -- first). Over-inclusive is fine: each cell is judged.
           CASE WHEN items IS NOT NULL AND instrument IS NOT NULL
                 AND (list_count(items_raw) <> list_count(all_items)  -- a cell that is not a whole number
                      OR list_min(all_items) < item_min OR list_max(all_items) > item_max
                      OR list_count(items_raw[item_count + 1:]) > 0)  -- a cell beyond the item count
                THEN list_filter(list_transform(range(1, len(items_raw) + 1), lambda k: problem(
                    'item_' || k, items_raw[k],
                    CASE WHEN blank(items_raw[k]) THEN NULL
                         WHEN k > item_count
                             THEN instrument || ' has ' || item_count
                                  || ' items; this item column should be empty'
                         WHEN all_items[k] IS NULL AND to_num(items_raw[k]) IS NOT NULL
                             THEN 'item is not a whole number; ' || instrument
                                  || ' items are whole numbers ' || item_min || '–' || item_max
                         WHEN all_items[k] IS NULL AND to_double(items_raw[k]) IS NULL
                              AND NOT stripped_has_invisible(items_raw[k])
                             THEN 'not a number; ' || instrument || ' items are whole numbers '
                                  || item_min || '–' || item_max
                         WHEN all_items[k] IS NULL THEN not_number_reason(items_raw[k], 'an item')
                         WHEN all_items[k] < item_min OR all_items[k] > item_max
                             THEN 'item outside the ' || instrument || ' item range ' || item_min
                                  || '–' || item_max
                    END)), lambda x: x.reason IS NOT NULL)
           END AS r_items,
           -- Some of the instrument's items given, others empty: all items or none
           -- (docs/bad-input-values.md).
           CASE WHEN items IS NOT NULL AND instrument IS NOT NULL AND item_count > 0
                 AND list_count(items) < item_count
                THEN list_filter(range(1, item_count + 1), lambda k: blank(items_raw[k])) END AS missing,
           -- Only complete item sets within range are checked against the total.
           CASE WHEN items IS NOT NULL AND scoring <> 'none' AND list_count(items) = item_count
                 AND list_min(items) >= item_min AND list_max(items) <= item_max
                THEN CASE scoring
                         WHEN 'qids' THEN list_max(items[1:4]) + items[5] + list_max(items[6:9])
                                          + list_sum(items[10:14]) + list_max(items[15:16])
                         ELSE list_sum(items) END END AS item_total
    FROM final
),
judged AS (
    SELECT *,
           CASE WHEN len(missing) > 0
                THEN 'incomplete items: give all ' || item_count || ' ' || instrument || ' items or '
                     || 'none; the total cannot be checked against a partial set (missing: item'
                     || CASE WHEN len(missing) > 1 THEN 's ' ELSE ' ' END
                     || array_to_string(missing, ', ') || ')' END AS r_partial,
           CASE WHEN item_total <> total_score
                THEN 'items do not add up to the total; correct the items or the total (items add up to '
                     || item_total || CASE WHEN scoring = 'qids' THEN ', by QIDS-SR16 domain scoring' ELSE '' END
                     || ')' END AS r_sum
    FROM checked
)
SELECT c.__line, c.__flag,
       c.assessment_id, c.patient_id, c.instrument, c.administered_at, c.date_only, c.total_score,
       c.session_id, c.timing, c.items,
       hash(c.row_struct) AS row_hash,
       c.assessment_id AS __id,
       c.__offsets,
       CASE WHEN coalesce(r_patient_id, i_assessment_id, i_patient_id, i_session_id, r_instrument,
                          r_administered_at, r_total_score, r_timing, r_partial, r_sum) IS NOT NULL OR len(r_items) > 0
            THEN list_filter([
                problem('patient_id', raw_patient_id, r_patient_id),
                problem('assessment_id', raw_assessment_id, i_assessment_id),
                problem('patient_id', raw_patient_id, i_patient_id),
                problem('session_id', raw_session_id, i_session_id),
                problem('instrument', raw_instrument, r_instrument),
                problem('administered_at', raw_administered_at, r_administered_at),
                problem('total_score', raw_total_score, r_total_score),
                problem('timing', raw_timing, r_timing)], lambda x: x.reason IS NOT NULL)
                 || coalesce(r_items, [])
                 || list_filter([
                problem('item_' || missing[1], NULL, r_partial),
                problem('total_score', num_text(total_score), r_sum)], lambda x: x.reason IS NOT NULL)
       END AS __problems
FROM judged c;
