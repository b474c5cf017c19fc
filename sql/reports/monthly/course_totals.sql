-- course_totals: the courses (not course rows: a course scored on two instruments is one) of the
-- view course_outcomes, and those discontinued, per period of report_period (period_key).
-- docs/definitions.md "Reporting month".
with courses as (
    select distinct period_key, patient_id, course_id
    from course_outcomes
),

discontinued as (
    select distinct period_key, patient_id, course_id
    from course_outcomes
    where status = 'discontinued'
),

final as (
    select
        report_period.period_key,
        (select count(*) from courses where courses.period_key = report_period.period_key)
            as ended,
        (select count(*) from discontinued
            where discontinued.period_key = report_period.period_key) as discontinued
    from report_period
)

select * from final
order by period_key
