-- same_session_counts: per protocol x instrument with course rows, the courses measured
-- (same_session_courses), their mean change and how many halved; 0 measured when none.
-- docs/definitions.md "Same-session effect"; the rate and its interval: pipeline/metrics.py.
with groups as (
    select distinct protocol_id, instrument from course_outcomes
),

measured as (
    select
        protocol_id,
        instrument,
        count(*) as measured,
        avg(same_day_change) as mean_change,
        count(*) filter (where reduced_by_half) as reduced_by_half
    from same_session_courses
    group by protocol_id, instrument
),

final as (
    select
        groups.protocol_id,
        groups.instrument,
        coalesce(measured.measured, 0) as measured,
        measured.mean_change,
        coalesce(measured.reduced_by_half, 0) as reduced_by_half
    from groups
    left join measured using (protocol_id, instrument)
)

select * from final
