-- courses: one row per course with its dates, size, plan, status as of the as-of day, outcome date.
-- docs/definitions.md "Course status", "Reporting month of a course"; protocol = that of infusion 1.
with per_course as (
    select
        patient_id,
        course_id,
        any_value(course_id_source) as course_id_source,
        arg_min(protocol_id, infusion_number) as protocol_id,
        min(started_at) as course_start,
        max(started_at) as last_infusion_at,
        count(*) as infusions,
        count(*) filter (where status = 'aborted') as aborted_infusions
    from course_infusions
    group by patient_id, course_id
),

with_plan as (
    select
        per_course.*,
        course_start::date as first_infusion_day,
        last_infusion_at::date as last_infusion_day,
        protocols.planned_infusions
    from per_course
    left join protocols using (protocol_id)
),

with_next as (
    -- The patient's next course (any protocol) bounds this course's post-baseline scores.
    select
        with_plan.*,
        lead(course_start) over (
            partition by patient_id order by course_start, course_id
        ) as next_course_start
    from with_plan
),

with_status as (
    select
        with_next.*,
        case
            when infusions >= planned_infusions then 'completed'
            when settings.as_of - last_infusion_day > settings.course_gap_days then 'discontinued'
            else 'in_progress'
        end as status
    from with_next
    cross join settings
),

final as (
    select
        with_status.*,
        case status
            when 'completed' then last_infusion_day + settings.endpoint_window_days
            when 'discontinued' then last_infusion_day + settings.course_gap_days + 1
        end as course_outcome_date
    from with_status
    cross join settings
)

select * from final
