-- monthly_sessions: every scheduled session up to the as-of day (settings.as_of), without patient
-- identifiers: the monthly report's cancelled sessions and the site and provider of each
-- infusion (docs/definitions.md "Administered infusion": cancelled sessions are kept).
select
    sessions.session_id,
    sessions.status,
    sessions.started_at::date as session_day,
    coalesce(nullif(trim(sessions.site), ''), 'not recorded') as site,
    coalesce(nullif(trim(sessions.provider), ''), 'not recorded') as provider
from sessions
cross join settings
where sessions.started_at::date <= settings.as_of
