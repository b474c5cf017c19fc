-- monthly_sessions: every scheduled session up to the as-of day, without patient identifiers.
-- Feeds the monthly report's activity counts (docs/definitions.md "Administered infusion": cancelled kept) and site/provider.
SELECT
    session_id,
    status,
    started_at,
    started_at::DATE AS session_day,
    coalesce(nullif(trim(site), ''), 'not recorded') AS site,
    coalesce(nullif(trim(provider), ''), 'not recorded') AS provider
FROM sessions
WHERE started_at::DATE <= $as_of
ORDER BY started_at, session_id
