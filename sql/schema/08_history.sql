-- history: every superseded or retired version of a canonical row, and every version as a view.
-- README "Exports over time": nothing is deleted; a version carries the load that brought it
-- (load_id) and the load that superseded or retired it (retired_load). The canonical tables in
-- main hold the current versions only.
CREATE SCHEMA IF NOT EXISTS history;
CREATE TABLE IF NOT EXISTS history.protocols_retired AS
    SELECT *, NULL::INTEGER AS retired_load FROM main.protocols LIMIT 0;
CREATE TABLE IF NOT EXISTS history.patients_retired AS
    SELECT *, NULL::INTEGER AS retired_load FROM main.patients LIMIT 0;
CREATE TABLE IF NOT EXISTS history.sessions_retired AS
    SELECT *, NULL::INTEGER AS retired_load FROM main.sessions LIMIT 0;
CREATE TABLE IF NOT EXISTS history.assessments_retired AS
    SELECT *, NULL::INTEGER AS retired_load FROM main.assessments LIMIT 0;
CREATE TABLE IF NOT EXISTS history.treatment_history_retired AS
    SELECT *, NULL::INTEGER AS retired_load FROM main.treatment_history LIMIT 0;

-- history.<table>: every version, current ones with retired_load NULL.
CREATE OR REPLACE VIEW history.protocols AS
    SELECT *, NULL::INTEGER AS retired_load FROM main.protocols
    UNION ALL SELECT * FROM history.protocols_retired;
CREATE OR REPLACE VIEW history.patients AS
    SELECT *, NULL::INTEGER AS retired_load FROM main.patients
    UNION ALL SELECT * FROM history.patients_retired;
CREATE OR REPLACE VIEW history.sessions AS
    SELECT *, NULL::INTEGER AS retired_load FROM main.sessions
    UNION ALL SELECT * FROM history.sessions_retired;
CREATE OR REPLACE VIEW history.assessments AS
    SELECT *, NULL::INTEGER AS retired_load FROM main.assessments
    UNION ALL SELECT * FROM history.assessments_retired;
CREATE OR REPLACE VIEW history.treatment_history AS
    SELECT *, NULL::INTEGER AS retired_load FROM main.treatment_history
    UNION ALL SELECT * FROM history.treatment_history_retired;
