-- typed + problems for a staged assessments file (temp table stg, all text; items_raw = item_1..N).
-- SPEC §1 assessments and §2 instrument registry: range, items, item sum (QIDS-SR16 by domain).
CREATE OR REPLACE TEMP TABLE typed AS
SELECT
    s.__line,
    clean(s.assessment_id)          AS assessment_id,
    clean(s.patient_id)             AS patient_id,
    a.instrument                    AS instrument,
    parse_ts(s.administered_at)     AS administered_at,
    coalesce(is_date_only(s.administered_at), false) AS date_only,
    try_cast(trim(s.total_score) AS DOUBLE) AS total_score,
    clean(s.session_id)             AS session_id,
    CASE regexp_replace(lower(coalesce(s.timing, '')), '[^a-z]', '', 'g')
         WHEN '' THEN NULL
         WHEN 'pre' THEN 'pre' WHEN 'post' THEN 'post'
         WHEN 'followup' THEN 'followup' ELSE '?' END AS timing,
    -- item_1..item_N of the instrument; NULL when the export has none of its items
    CASE WHEN len(list_filter(s.items_raw, lambda x: NOT blank(x))) > 0
         THEN list_transform(s.items_raw[1:coalesce(i.item_count, len(s.items_raw))],
                             lambda x: to_int(x)) END AS items,
    clean(s.assessment_id)          AS __id
FROM stg s
LEFT JOIN instrument_aliases a
       ON a.alias_key = regexp_replace(upper(s.instrument), '[^0-9A-Z]', '', 'g')
LEFT JOIN instruments i ON i.name = a.instrument;

ALTER TABLE typed ADD COLUMN row_hash VARCHAR;
UPDATE typed SET row_hash = md5(CAST(struct_pack(
    assessment_id, patient_id, instrument, administered_at, total_score, session_id, timing,
    items) AS VARCHAR));

CREATE OR REPLACE TEMP TABLE problems AS
WITH item_cells AS (
    SELECT s.__line, i.*, s.instrument AS instrument_raw, t.instrument,
           s.items_raw[idx] AS raw, idx
    FROM stg s
    JOIN typed t USING (__line)
    LEFT JOIN instruments i ON i.name = t.instrument,
    range(1, len(s.items_raw) + 1) r(idx)
    WHERE NOT blank(s.items_raw[idx])
),
item_sums AS (
    -- Only complete item sets are checked against the total; partial sets are range-checked.
    SELECT t.__line, t.total_score,
           CASE i.scoring
               WHEN 'qids' THEN list_max(t.items[1:4]) + t.items[5] + list_max(t.items[6:9])
                                + list_sum(t.items[10:14]) + list_max(t.items[15:16])
               ELSE list_sum(t.items[1:i.item_count]) END AS item_total,
           i.scoring
    FROM typed t JOIN instruments i ON i.name = t.instrument
    WHERE i.scoring <> 'none'
      AND len(list_filter(t.items[1:i.item_count], lambda x: x IS NOT NULL)) = i.item_count
),
checks AS (
    SELECT __line AS line, 'patient_id' AS "column", patient_id AS value,
           required_problem(patient_id) AS reason FROM stg
    UNION ALL
    SELECT s.__line, 'instrument', s.instrument,
           coalesce(required_problem(s.instrument),
                    CASE WHEN t.instrument IS NULL
                         THEN 'unknown instrument; known: ' || (SELECT string_agg(name, ', ' ORDER BY name) FROM instruments)
                              || ' (add new instruments under [instruments] in the config)' END)
    FROM stg s JOIN typed t USING (__line)
    UNION ALL
    SELECT s.__line, 'administered_at', s.administered_at,
           coalesce(required_problem(s.administered_at),
                    ts_problem(s.administered_at, parse_ts(s.administered_at), settings.load_date))
    FROM stg s, settings
    UNION ALL
    SELECT s.__line, 'total_score', s.total_score,
           coalesce(required_problem(s.total_score),
                    CASE WHEN t.total_score IS NULL THEN 'not a number; the total score must be a number'
                         WHEN t.total_score < i.total_min OR t.total_score > i.total_max
                         THEN 'score outside the ' || i.name || ' range ' || num_text(i.total_min)
                              || '–' || num_text(i.total_max) END)
    FROM stg s JOIN typed t USING (__line) LEFT JOIN instruments i ON i.name = t.instrument
    UNION ALL
    SELECT s.__line, 'timing', s.timing,
           CASE WHEN t.timing = '?' THEN 'unknown timing; use pre, post or followup' END
    FROM stg s JOIN typed t USING (__line)
    UNION ALL
    SELECT __line, 'item_' || idx, raw,
           CASE WHEN instrument IS NULL THEN NULL  -- already rejected for the instrument
                WHEN idx > item_count
                    THEN instrument || ' has ' || item_count || ' items; this item column should be empty'
                WHEN to_int(raw) IS NULL THEN 'item is not a whole number'
                WHEN to_int(raw) < item_min OR to_int(raw) > item_max
                    THEN 'item outside the ' || instrument || ' item range ' || item_min || '–' || item_max
           END
    FROM item_cells
    UNION ALL
    SELECT __line, 'total_score', num_text(total_score),
           CASE WHEN item_total <> total_score
                THEN 'items add up to ' || item_total
                     || CASE WHEN scoring = 'qids' THEN ' (QIDS-SR16 domain scoring)' ELSE '' END
                     || ', not the total; correct the items or the total' END
    FROM item_sums
)
SELECT * FROM checks WHERE reason IS NOT NULL;
