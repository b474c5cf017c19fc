-- The database as it stood right after one load: temp views that shadow the canonical tables.
-- README "Exports over time" (`--load N`); reads temp table pinned_load (load_id) and the
-- stored tables through the catalog named __store__ (substituted with the quoted catalog name).
-- The stored history.<table> views are not used: inside them `main.<table>` would bind to
-- these temp views.
CREATE OR REPLACE TEMP VIEW protocols AS
SELECT * EXCLUDE (retired_load) FROM (
    SELECT *, NULL::INTEGER AS retired_load FROM __store__.main.protocols
    UNION ALL SELECT * FROM __store__.history.protocols_retired)
WHERE load_id <= (SELECT load_id FROM pinned_load)
  AND (retired_load IS NULL OR retired_load > (SELECT load_id FROM pinned_load));
CREATE OR REPLACE TEMP VIEW patients AS
SELECT * EXCLUDE (retired_load) FROM (
    SELECT *, NULL::INTEGER AS retired_load FROM __store__.main.patients
    UNION ALL SELECT * FROM __store__.history.patients_retired)
WHERE load_id <= (SELECT load_id FROM pinned_load)
  AND (retired_load IS NULL OR retired_load > (SELECT load_id FROM pinned_load));
CREATE OR REPLACE TEMP VIEW sessions AS
SELECT * EXCLUDE (retired_load) FROM (
    SELECT *, NULL::INTEGER AS retired_load FROM __store__.main.sessions
    UNION ALL SELECT * FROM __store__.history.sessions_retired)
WHERE load_id <= (SELECT load_id FROM pinned_load)
  AND (retired_load IS NULL OR retired_load > (SELECT load_id FROM pinned_load));
CREATE OR REPLACE TEMP VIEW assessments AS
SELECT * EXCLUDE (retired_load) FROM (
    SELECT *, NULL::INTEGER AS retired_load FROM __store__.main.assessments
    UNION ALL SELECT * FROM __store__.history.assessments_retired)
WHERE load_id <= (SELECT load_id FROM pinned_load)
  AND (retired_load IS NULL OR retired_load > (SELECT load_id FROM pinned_load));
CREATE OR REPLACE TEMP VIEW treatment_history AS
SELECT * EXCLUDE (retired_load) FROM (
    SELECT *, NULL::INTEGER AS retired_load FROM __store__.main.treatment_history
    UNION ALL SELECT * FROM __store__.history.treatment_history_retired)
WHERE load_id <= (SELECT load_id FROM pinned_load)
  AND (retired_load IS NULL OR retired_load > (SELECT load_id FROM pinned_load));
CREATE OR REPLACE TEMP VIEW loads AS
SELECT * FROM __store__.main.loads WHERE load_id <= (SELECT load_id FROM pinned_load);
CREATE OR REPLACE TEMP VIEW rejects AS
SELECT * FROM __store__.main.rejects WHERE load_id <= (SELECT load_id FROM pinned_load);
CREATE OR REPLACE TEMP VIEW changes AS
SELECT * FROM __store__.main.changes WHERE load_id <= (SELECT load_id FROM pinned_load);
