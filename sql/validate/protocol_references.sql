-- Adds to ref_problems: sessions (typed) naming a protocol that is not loaded (README "What
-- ingest guarantees"). A protocol_id with an invisible character is already rejected on its line.
INSERT INTO ref_problems
SELECT t.__line, 'protocol_id', t.protocol_id,
       CASE WHEN r.line IS NOT NULL
            THEN 'the protocol''s own row was rejected; fix that row first ('
                 || r.file || ' line ' || r.line || ')'
            ELSE 'unknown protocol: not in the protocols file; add it or correct the id' END,
       NULL
FROM typed t
LEFT JOIN rejected_ids r ON r.table_name = 'protocols' AND r.id = t.protocol_id
WHERE t.protocol_id IS NOT NULL
  AND t.protocol_id NOT IN (SELECT protocol_id FROM protocols)
  AND NOT has_invisible(t.protocol_id);
