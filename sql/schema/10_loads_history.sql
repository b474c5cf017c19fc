-- loads, second version: what a snapshot or append load did to each table (README "Exports over time").
-- read = added + corrected + unchanged + duplicates + rejected; rows_loaded = added + corrected.
-- Loads written before this version are marked mode 'legacy': every loaded row counted as added.
ALTER TABLE loads ADD COLUMN IF NOT EXISTS mode VARCHAR;
ALTER TABLE loads ADD COLUMN IF NOT EXISTS added BIGINT;
ALTER TABLE loads ADD COLUMN IF NOT EXISTS corrected BIGINT;
ALTER TABLE loads ADD COLUMN IF NOT EXISTS unchanged BIGINT;
ALTER TABLE loads ADD COLUMN IF NOT EXISTS retired BIGINT;
UPDATE loads SET mode = 'legacy', added = rows_loaded, corrected = 0, unchanged = 0, retired = 0
WHERE mode IS NULL;
