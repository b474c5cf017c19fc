-- Moves the versions this file superseded from __table__ into history.__table___retired.
-- README "Exports over time": nothing is deleted; retired_load is this load. __table__ is one of
-- the canonical table names (pipeline/ingest/contract.py), substituted before the run.
INSERT INTO history.__table___retired
SELECT c.*, (SELECT load_id FROM settings)
FROM __table__ c
WHERE c.rowid IN (SELECT __rowid FROM superseded)
ORDER BY c.rowid;  -- in the table's order (a join alone would not keep one)

DELETE FROM __table__ WHERE rowid IN (SELECT __rowid FROM superseded);
