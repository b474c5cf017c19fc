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
        try_cast(trim(s.total_score) AS DOUBLE) AS total_score,
        clean(s.session_id)             AS session_id,
        CASE regexp_replace(lower(coalesce(s.timing, '')), '[^a-z]', '', 'g')
             WHEN '' THEN NULL
             WHEN 'pre' THEN 'pre' WHEN 'post' THEN 'post'
             WHEN 'followup' THEN 'followup' ELSE '?' END AS timing,
        list_transform(s.items_raw, lambda x: to_int(x)) AS all_items,
        s.patient_id AS raw_patient_id, s.instrument AS raw_instrument,
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
           -- item_1..item_N of the instrument; NULL when the export has none of its items
           CASE WHEN list_bool_or(list_transform(items_raw, lambda x: NOT blank(x)))
                THEN all_items[1:coalesce(item_count, len(all_items))] END AS items,
           assessment_id AS __id
    FROM parsed
)
SELECT *,
       struct_pack(assessment_id, patient_id, instrument, administered_at, total_score,
                            session_id, timing, items) AS row_struct,
       hash(row_struct) AS row_hash
FROM final;

CREATE OR REPLACE TEMP TABLE problems AS
WITH item_rows AS (
    -- Rows with any item problem; only these are unnested to name the item column.
    SELECT * FROM typed
    WHERE instrument IS NOT NULL AND len(items_raw) > 0
      AND list_bool_or(list_transform(
              list_zip(items_raw, all_items, range(1, len(items_raw) + 1)),
              lambda p: NOT blank(p[1])
                        AND (p[3] > item_count OR p[2] IS NULL
                             OR p[2] < item_min OR p[2] > item_max)))
),
item_cells AS (
    SELECT __line, instrument, item_count, item_min, item_max,
           unnest(items_raw) AS raw, unnest(all_items) AS item, unnest(range(1, len(items_raw) + 1)) AS idx
    FROM item_rows
),
item_sums AS (
    -- Only complete item sets are checked against the total; partial sets are range-checked.
    SELECT __line, total_score, scoring,
           CASE scoring
               WHEN 'qids' THEN list_max(items[1:4]) + items[5] + list_max(items[6:9])
                                + list_sum(items[10:14]) + list_max(items[15:16])
               ELSE list_sum(items) END AS item_total
    FROM typed
    WHERE items IS NOT NULL AND scoring <> 'none' AND len(items) = item_count
      AND NOT list_bool_or(list_transform(items, lambda x: x IS NULL OR x < item_min OR x > item_max))
),
checks AS (
    SELECT __line AS line, 'patient_id' AS "column", raw_patient_id AS value,
           required_problem(raw_patient_id) AS reason FROM typed
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
                    CASE WHEN total_score IS NULL THEN 'not a number; the total score must be a number'
                         WHEN total_score < total_min OR total_score > total_max
                         THEN 'score outside the ' || instrument || ' range ' || num_text(total_min)
                              || '–' || num_text(total_max) END)
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
                WHEN item IS NULL THEN 'item is not a whole number'
                WHEN item < item_min OR item > item_max
                    THEN 'item outside the ' || instrument || ' item range ' || item_min || '–' || item_max
           END
    FROM item_cells
    UNION ALL
    SELECT __line, 'total_score', num_text(total_score),
           CASE WHEN item_total <> total_score
                THEN 'items do not add up to the total; correct the items or the total (items add up to '
                     || item_total || CASE WHEN scoring = 'qids' THEN ', by QIDS-SR16 domain scoring' ELSE '' END
                     || ')' END
    FROM item_sums
)
SELECT * FROM checks WHERE reason IS NOT NULL;
