-- typed + problems for a staged assessments file (temp table stg, all text; items_raw = item_1..N).
-- SPEC §1 assessments and §2 instrument registry: range, items, item sum (QIDS-SR16 by domain).
-- Every value is parsed once, in `typed`; the checks read typed (raw_* columns keep the text).
CREATE OR REPLACE TEMP TABLE typed AS
WITH parsed AS (
    SELECT
        s.__line,
        clean(s.assessment_id)          AS assessment_id,
        clean(s.patient_id)             AS patient_id,
        a.instrument                    AS instrument,
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
        s.timing AS raw_timing, s.items_raw,
        i.item_count, i.item_min, i.item_max, i.scoring, i.total_min, i.total_max
    FROM stg s
    LEFT JOIN instrument_aliases a
           ON a.alias_key = regexp_replace(upper(s.instrument), '[^0-9A-Z]', '', 'g')
    LEFT JOIN instruments i ON i.name = a.instrument
),
final AS (
    SELECT *,
           coalesce(is_date_only(administered_at), false) AS date_only,
           -- item_1..item_N of the instrument; NULL when the row gives none of the file's items
           CASE WHEN list_count(all_items) > 0
                     THEN all_items[1:coalesce(item_count, len(all_items))]
                WHEN list_count(items_raw) = 0 THEN NULL
                WHEN list_bool_or(list_transform(items_raw, lambda x: NOT blank(x)))
                     THEN all_items[1:coalesce(item_count, len(all_items))] END AS items,
           assessment_id AS __id,
           -- what identifies a score without an id when its row is rejected (its earlier
           -- version stays current): patient, instrument and time
           struct_pack(patient_id, instrument, administered_at) AS __key
    FROM parsed
)
SELECT *,
       struct_pack(assessment_id, patient_id, instrument, administered_at, total_score,
                            session_id, timing, items) AS row_struct,
       hash(row_struct) AS row_hash
FROM final;

CREATE OR REPLACE TEMP TABLE problems AS
WITH item_rows AS (
    -- Rows that may have an item problem (cheap list aggregates first); only these are
    -- unnested to name the item column. Over-inclusive is fine: each cell is judged below.
    SELECT * FROM typed
    WHERE items IS NOT NULL AND instrument IS NOT NULL
      AND (list_count(items_raw) <> list_count(all_items)       -- a cell that is not a whole number
           OR list_min(all_items) < item_min OR list_max(all_items) > item_max
           OR list_count(items_raw[item_count + 1:]) > 0)       -- a cell beyond the item count
),
item_cells AS (
    SELECT __line, instrument, item_count, item_min, item_max,
           unnest(items_raw) AS raw, unnest(all_items) AS item, unnest(range(1, len(items_raw) + 1)) AS idx
    FROM item_rows
),
partial_items AS (
    -- Some of the instrument's items given, others empty: all items or none (docs/bad-input-values.md).
    SELECT __line, instrument, item_count,
           list_filter(range(1, item_count + 1), lambda k: blank(items_raw[k])) AS missing
    FROM typed
    WHERE items IS NOT NULL AND instrument IS NOT NULL AND item_count > 0
      AND list_count(items) < item_count
),
item_sums AS (
    -- Only complete item sets within range are checked against the total.
    SELECT __line, total_score, scoring,
           CASE scoring
               WHEN 'qids' THEN list_max(items[1:4]) + items[5] + list_max(items[6:9])
                                + list_sum(items[10:14]) + list_max(items[15:16])
               ELSE list_sum(items) END AS item_total
    FROM typed
    WHERE items IS NOT NULL AND scoring <> 'none' AND list_count(items) = item_count
      AND list_min(items) >= item_min AND list_max(items) <= item_max
),
odd_ids AS (
    -- Each id on its own (see sessions.sql).
    SELECT * FROM typed
    WHERE has_invisible(assessment_id) OR has_invisible(patient_id) OR has_invisible(session_id)
),
checks AS (
    SELECT __line AS line, 'patient_id' AS "column", raw_patient_id AS value,
           required_problem(raw_patient_id) AS reason FROM typed
    UNION ALL
    SELECT __line, 'assessment_id', raw_assessment_id, id_problem(assessment_id) FROM odd_ids
    UNION ALL
    SELECT __line, 'patient_id', raw_patient_id, id_problem(patient_id) FROM odd_ids
    UNION ALL
    SELECT __line, 'session_id', raw_session_id, id_problem(session_id) FROM odd_ids
    UNION ALL
    SELECT __line, 'instrument', raw_instrument,
           coalesce(required_problem(raw_instrument),
                    CASE WHEN instrument IS NULL
                         THEN 'unknown instrument; correct the name or add the instrument under '
                              || '[instruments] in the config (known: '
                              || (SELECT string_agg(name, ', ' ORDER BY name) FROM instruments) || ')' END)
    FROM typed
    UNION ALL
    SELECT __line, 'administered_at', raw_administered_at,
           coalesce(required_problem(raw_administered_at),
                    ts_problem(raw_administered_at, administered_at, settings.load_date))
    FROM typed, settings
    UNION ALL
    SELECT __line, 'total_score', raw_total_score,
           coalesce(required_problem(raw_total_score),
                    CASE WHEN total_score IS NULL AND to_double(raw_total_score) IS NULL
                              AND NOT has_invisible(strip(raw_total_score))
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
                    END)
    FROM typed
    UNION ALL
    SELECT __line, 'timing', raw_timing,
           CASE WHEN timing = '?' THEN 'unknown timing; use pre, post or followup' END
    FROM typed
    UNION ALL
    SELECT __line, 'item_' || idx, raw,
           CASE WHEN blank(raw) THEN NULL
                WHEN idx > item_count
                    THEN instrument || ' has ' || item_count || ' items; this item column should be empty'
                WHEN item IS NULL AND to_num(raw) IS NOT NULL
                    THEN 'item is not a whole number; ' || instrument || ' items are whole numbers '
                         || item_min || '–' || item_max
                WHEN item IS NULL AND to_double(raw) IS NULL AND NOT has_invisible(strip(raw))
                    THEN 'not a number; ' || instrument || ' items are whole numbers '
                         || item_min || '–' || item_max
                WHEN item IS NULL THEN not_number_reason(raw, 'an item')
                WHEN item < item_min OR item > item_max
                    THEN 'item outside the ' || instrument || ' item range ' || item_min || '–' || item_max
           END
    FROM item_cells
    UNION ALL
    SELECT __line, 'item_' || missing[1], NULL,
           'incomplete items: give all ' || item_count || ' ' || instrument || ' items or none; the '
           || 'total cannot be checked against a partial set (missing: item'
           || CASE WHEN len(missing) > 1 THEN 's ' ELSE ' ' END
           || array_to_string(missing, ', ') || ')'
    FROM partial_items
    WHERE len(missing) > 0
    UNION ALL
    SELECT __line, 'total_score', num_text(total_score),
           CASE WHEN item_total <> total_score
                THEN 'items do not add up to the total; correct the items or the total (items add up to '
                     || item_total || CASE WHEN scoring = 'qids' THEN ', by QIDS-SR16 domain scoring' ELSE '' END
                     || ')' END
    FROM item_sums
    UNION ALL
    -- No score before birth: the date of birth is in the patients table (loaded first).
    SELECT t.__line, 'administered_at', t.raw_administered_at,
           'dated before the patient''s date of birth (patients file); check the year of this '
           || 'date and of the date of birth'
    FROM typed t JOIN patients p ON p.patient_id = t.patient_id
    WHERE t.administered_at::DATE < p.birth_date
      AND t.administered_at >= TIMESTAMP '1900-01-01'  -- an earlier date is already implausible
)
SELECT * FROM checks WHERE reason IS NOT NULL;
