-- activity: what happened from $first to $last (a month of the monthly report) by the day it
-- happened, not by course outcome date: patients whose first administered infusion falls in it,
-- courses started, courses completing (their planned infusion number given in it), courses
-- discontinued (outcome date in it), infusions, aborted infusions and cancelled sessions.
-- docs/definitions.md "Reporting month".
with infusions as (
    select *
    from all_course_infusions
    where infusion_day between $first and $last
),

first_days as (
    select patient_id, min(infusion_day) as first_day
    from all_course_infusions
    group by patient_id
),

completing as (
    select infusions.patient_id
    from infusions
    join all_courses
        on all_courses.patient_id = infusions.patient_id
        and all_courses.course_id = infusions.course_id
    where infusions.infusion_number = all_courses.planned_infusions
),

final as (
    select
        (select count(*) from first_days where first_day between $first and $last)
            as new_patients,
        (select count(*) from all_courses where first_infusion_day between $first and $last)
            as courses_started,
        (select count(*) from completing) as courses_completing,
        (select count(*) from all_courses
            where status = 'discontinued' and course_outcome_date between $first and $last)
            as courses_discontinued,
        (select count(*) from infusions) as infusions,
        (select count(*) from infusions where status = 'aborted') as aborted,
        (select count(*) from monthly_sessions
            where status = 'cancelled' and session_day between $first and $last) as cancelled
)

select * from final
