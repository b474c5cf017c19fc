-- course_totals: the courses (not course rows: a course scored on two instruments is one) of the
-- view course_outcomes, and those discontinued. docs/definitions.md "Reporting month".
with courses as (
    select distinct patient_id, course_id
    from course_outcomes
),

discontinued as (
    select distinct patient_id, course_id
    from course_outcomes
    where status = 'discontinued'
),

final as (
    select
        (select count(*) from courses) as ended,
        (select count(*) from discontinued) as discontinued
)

select * from final
