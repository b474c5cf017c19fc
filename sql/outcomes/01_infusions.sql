-- infusions: administered infusions dated on or before the as-of day, one row per session.
-- docs/definitions.md "Administered infusion" (completed or aborted; cancelled kept out) and "As-of date".
with administered as (
    select sessions.*
    from sessions
    cross join settings
    where lower(sessions.status) in ('completed', 'aborted')
      and sessions.started_at::date <= settings.as_of
),

final as (
    select
        session_id,
        patient_id,
        protocol_id,
        started_at,
        started_at::date as infusion_day,
        started_date_only,
        course_id as export_course_id,
        lower(status) as status,
        dose_mg_per_kg,
        dose_mg,
        bp_systolic_max,
        bp_diastolic_max,
        adverse_events
    from administered
)

select * from final
