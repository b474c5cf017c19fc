-- session_count: how many sessions the database holds (none: nothing to compute).
SELECT count(*) AS sessions FROM sessions
