-- Rejects of a mapped export name the export's own columns and show its values as written
-- (README "Loading your EHR's export"). Reads temp tables problems (canonical column names),
-- mapped_original (line, column, value as exported) and source_names (canonical -> source).
UPDATE problems SET value = left(o.value, 200)
FROM mapped_original o
WHERE o.line = problems.line AND o."column" = problems."column";

UPDATE problems SET "column" = n.source
FROM source_names n
WHERE n.canonical = problems."column";
