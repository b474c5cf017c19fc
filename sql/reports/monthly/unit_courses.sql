-- unit_courses: the courses of the view placed_outcomes per site and per provider (unit, name),
-- and those discontinued. docs/definitions.md "Site and provider of a course".
with courses as (
    select distinct patient_id, course_id, status, site, provider
    from placed_outcomes
),

final as (
    select
        case when grouping(site) = 0 then 'site' else 'provider' end as unit,
        coalesce(site, provider) as name,
        count(*) as courses,
        count(*) filter (where status = 'discontinued') as discontinued
    from courses
    group by grouping sets ((site), (provider))
)

select * from final
order by unit, name
