-- course_units: the site and provider of each course of the view course_outcomes: those of its
-- first infusion, "not recorded" when it names none. docs/definitions.md "Site and provider of a
-- course".
with first_infusions as (
    select patient_id, course_id, session_id
    from all_course_infusions
    where infusion_number = 1
),

reported_courses as (
    select distinct patient_id, course_id
    from course_outcomes
),

final as (
    select
        first_infusions.patient_id,
        first_infusions.course_id,
        coalesce(monthly_sessions.site, 'not recorded') as site,
        coalesce(monthly_sessions.provider, 'not recorded') as provider
    from first_infusions
    semi join reported_courses using (patient_id, course_id)
    left join monthly_sessions using (session_id)
)

select * from final
