-- Moves the rows of __table__ whose rowid is in temp table __rows__ (column __rowid) into
-- history.__table___retired: the versions a file superseded (superseded), the rows a snapshot
-- retires (retiring), the derived patients no longer referenced (derived_retiring).
-- README "Exports over time": nothing is deleted; retired_load is this load. __table__ is one of
-- the canonical table names (pipeline/ingest/contract.py) and __rows__ one of those temp tables,
-- both substituted before the run (pipeline/ingest/merge.py `move_to_history`).
INSERT INTO history.__table___retired
SELECT c.*, (SELECT load_id FROM settings)
FROM __table__ c
WHERE c.rowid IN (SELECT __rowid FROM __rows__)
ORDER BY c.rowid;  -- in the table's order (a join alone would not keep one)

DELETE FROM __table__ WHERE rowid IN (SELECT __rowid FROM __rows__);
