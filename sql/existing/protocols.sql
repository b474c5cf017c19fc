-- existing: the current protocols, keyed for matching a file's rows (sql/merge/classify.sql).
-- row_struct lists the same typed values as validate/protocols.sql, so equality is exact.
CREATE OR REPLACE TEMP VIEW existing AS
SELECT rowid AS __rowid, protocol_id AS __id, protocol_id AS __key, row_hash, load_id,
       false AS replaceable,
       struct_pack(protocol_id, name, planned_infusions, planned_days, dose_mg_per_kg,
                   infusion_minutes, phase, indication) AS row_struct
FROM protocols;
