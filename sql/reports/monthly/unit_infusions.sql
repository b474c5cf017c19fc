-- unit_infusions: the period's administered infusions (view course_infusions) per site and per
-- provider of their session (unit, name; "not recorded" when it names none).
-- docs/definitions.md "Site and provider of a course".
with placed as (
    select
        coalesce(monthly_sessions.site, 'not recorded') as site,
        coalesce(monthly_sessions.provider, 'not recorded') as provider
    from course_infusions
    left join monthly_sessions using (session_id)
),

final as (
    select
        case when grouping(site) = 0 then 'site' else 'provider' end as unit,
        coalesce(site, provider) as name,
        count(*) as infusions
    from placed
    group by grouping sets ((site), (provider))
)

select * from final
order by unit, name
