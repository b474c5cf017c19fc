-- activity: what happened in each period of report_period (the month and the previous month of
-- the monthly report), by the day it happened, not by course outcome date: patients whose first
-- administered infusion falls in it, courses started, courses completing (their planned infusion
-- number given in it), courses discontinued (outcome date in it), infusions, aborted infusions
-- and cancelled sessions. docs/definitions.md "Reporting month".
with completing as (
    select all_course_infusions.infusion_day
    from all_course_infusions
    join all_courses
        on all_courses.patient_id = all_course_infusions.patient_id
        and all_courses.course_id = all_course_infusions.course_id
    where all_course_infusions.infusion_number = all_courses.planned_infusions
),

dated as (
    -- each thing counted, on the day it happened
    select 'new_patient' as what, min(infusion_day) as day
    from all_course_infusions
    group by patient_id
    union all
    select 'course_started', first_infusion_day from all_courses
    union all
    select 'course_completing', infusion_day from completing
    union all
    select 'course_discontinued', course_outcome_date from all_courses
    where status = 'discontinued'
    union all
    select 'infusion', infusion_day from all_course_infusions
    union all
    select 'aborted', infusion_day from all_course_infusions where status = 'aborted'
    union all
    select 'cancelled', session_day from monthly_sessions where status = 'cancelled'
),

final as (
    select
        report_period.period_key,
        count(*) filter (where what = 'new_patient') as new_patients,
        count(*) filter (where what = 'course_started') as courses_started,
        count(*) filter (where what = 'course_completing') as courses_completing,
        count(*) filter (where what = 'course_discontinued') as courses_discontinued,
        count(*) filter (where what = 'infusion') as infusions,
        count(*) filter (where what = 'aborted') as aborted,
        count(*) filter (where what = 'cancelled') as cancelled
    from report_period
    left join dated on dated.day between report_period.first_day and report_period.last_day
    group by report_period.period_key
)

select * from final
