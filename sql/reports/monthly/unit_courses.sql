-- unit_courses: the courses of the view placed_outcomes per period (period_key) and per site and
-- per provider (unit, name), and those discontinued. docs/definitions.md "Site and provider of a
-- course".
with courses as (
    select distinct period_key, patient_id, course_id, status, site, provider
    from placed_outcomes
),

final as (
    select
        period_key,
        case when grouping(site) = 0 then 'site' else 'provider' end as unit,
        coalesce(site, provider) as name,
        count(*) as courses,
        count(*) filter (where status = 'discontinued') as discontinued
    from courses
    group by grouping sets ((period_key, site), (period_key, provider))
)

select * from final
order by period_key, unit, name
