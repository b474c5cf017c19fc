-- course_infusions: every administered infusion with its course_id and infusion number 1..k.
-- docs/definitions.md "Course": export course_id wins; else new course on protocol change or > course_gap_days.
with without_export_id as (
    select
        infusions.*,
        lag(protocol_id) over by_time as previous_protocol_id,
        lag(infusion_day) over by_time as previous_infusion_day
    from infusions
    where export_course_id is null
    window by_time as (partition by patient_id order by started_at, session_id)
),

course_breaks as (
    select
        without_export_id.*,
        case
            when previous_infusion_day is null then 1
            when protocol_id <> previous_protocol_id then 1
            when infusion_day - previous_infusion_day > settings.course_gap_days then 1
            else 0
        end as starts_course
    from without_export_id
    cross join settings
),

derived as (
    -- A derived id names patient, protocol and first infusion day: stable across re-runs. The
    -- course's first day is that of the latest infusion so far that starts a course (days
    -- never decrease in started_at order).
    select
        course_breaks.* exclude (previous_protocol_id, previous_infusion_day, starts_course),
        patient_id || '-' || protocol_id || '-'
            || strftime(max(case when starts_course = 1 then infusion_day end) over (
                partition by patient_id order by started_at, session_id
                rows between unbounded preceding and current row
            ), '%Y%m%d')
            as course_id,
        'derived' as course_id_source
    from course_breaks
),

exported as (
    select
        infusions.*,
        export_course_id as course_id,
        'export' as course_id_source
    from infusions
    where export_course_id is not null
),

all_infusions as (
    select * from derived
    union all by name
    select * from exported
),

final as (
    select
        all_infusions.*,
        row_number() over (
            partition by patient_id, course_id order by started_at, session_id
        ) as infusion_number
    from all_infusions
)

select * from final
