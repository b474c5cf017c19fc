-- The reference problems of this file (ref_problems: sql/validate/*_references.sql) join the
-- row's own problems in typed.__problems; only the few rows with one are touched.
UPDATE typed SET __problems = coalesce(typed.__problems, []) || r.found
FROM (SELECT line, list(problem("column", value, reason) ORDER BY "column" DESC, reason) AS found
      FROM ref_problems GROUP BY line) r
WHERE typed.__line = r.line;
