-- first_infusion_day: the day of the earliest administered infusion (completed or aborted
-- session; docs/definitions.md "Administered infusion"), the first day a course exists.
SELECT min(started_at)::DATE AS first_infusion_day
FROM sessions
WHERE lower(status) IN ('completed', 'aborted')
