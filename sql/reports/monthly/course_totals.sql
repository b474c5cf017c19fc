-- course_totals: the courses (not course rows: a course scored on two instruments is one) of the
-- view course_outcomes, and those discontinued, per period of report_period (period_key).
-- docs/definitions.md "Reporting month".
with courses as (
    -- a course's status is one for all its rows
    select distinct period_key, patient_id, course_id, status
    from course_outcomes
),

counted as (
    select
        period_key,
        count(*) as ended,
        count(*) filter (where status = 'discontinued') as discontinued
    from courses
    group by period_key
),

final as (
    select
        report_period.period_key,
        coalesce(counted.ended, 0) as ended,
        coalesce(counted.discontinued, 0) as discontinued
    from report_period
    left join counted using (period_key)
)

select * from final
order by period_key
