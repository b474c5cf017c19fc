-- course_units: the site and provider of each course of the view course_outcomes: those of its
-- first infusion (placed_infusions). docs/definitions.md "Site and provider of a course".
with reported_courses as (
    select distinct patient_id, course_id
    from course_outcomes
),

final as (
    select patient_id, course_id, site, provider
    from placed_infusions
    semi join reported_courses using (patient_id, course_id)
    where infusion_number = 1
)

select * from final
