-- activity: what happened in each period of report_period (period_key; a month of the monthly
-- report) by the day it happened, not by course outcome date: patients whose first administered
-- infusion falls in it, courses started, courses completing (their planned infusion number given
-- in it), courses discontinued (outcome date in it), infusions, aborted infusions and cancelled
-- sessions. docs/definitions.md "Reporting month".
with infusions as (
    select report_period.period_key, all_course_infusions.*
    from all_course_infusions
    join report_period
        on all_course_infusions.infusion_day
            between report_period.first_day and report_period.last_day
),

first_days as (
    select patient_id, min(infusion_day) as first_day
    from all_course_infusions
    group by patient_id
),

completing as (
    select infusions.period_key, infusions.patient_id
    from infusions
    join all_courses
        on all_courses.patient_id = infusions.patient_id
        and all_courses.course_id = infusions.course_id
    where infusions.infusion_number = all_courses.planned_infusions
),

final as (
    select
        report_period.period_key,
        (select count(*) from first_days
            where first_day between report_period.first_day and report_period.last_day)
            as new_patients,
        (select count(*) from all_courses
            where first_infusion_day between report_period.first_day and report_period.last_day)
            as courses_started,
        (select count(*) from completing where completing.period_key = report_period.period_key)
            as courses_completing,
        (select count(*) from all_courses
            where status = 'discontinued'
                and course_outcome_date between report_period.first_day and report_period.last_day)
            as courses_discontinued,
        (select count(*) from infusions where infusions.period_key = report_period.period_key)
            as infusions,
        (select count(*) from infusions
            where infusions.period_key = report_period.period_key and status = 'aborted')
            as aborted,
        (select count(*) from monthly_sessions
            where status = 'cancelled'
                and session_day between report_period.first_day and report_period.last_day)
            as cancelled
    from report_period
)

select * from final
