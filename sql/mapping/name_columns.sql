-- Rejects of a mapped export name the export's own columns and show its values as written
-- (README "Loading your EHR's export"). Reads temp tables typed (__problems: column, value,
-- reason, under canonical column names; sql/validate/), mapped_original (line, column, value as
-- exported) and source_names (canonical -> source). Only the rows with a problem are touched.
UPDATE typed SET __problems = list_transform(typed.__problems, lambda p: problem(
        p."column", coalesce(left(o.originals[p."column"], 200), p.value), p.reason))
FROM (SELECT line, map(list("column"), list(value)) AS originals
      FROM mapped_original GROUP BY line) o
WHERE typed.__line = o.line AND typed.__problems IS NOT NULL;

UPDATE typed SET __problems = list_transform(typed.__problems, lambda p: problem(
        coalesce(n.names[p."column"], p."column"), p.value, p.reason))
FROM (SELECT map(list(canonical), list(source)) AS names FROM source_names) n
WHERE typed.__problems IS NOT NULL;
