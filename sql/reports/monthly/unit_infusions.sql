-- unit_infusions: the administered infusions dated in each period of report_period (period_key)
-- per site and per provider of their session (unit, name; placed_infusions).
-- docs/definitions.md "Site and provider of a course".
with placed as (
    select report_period.period_key, placed_infusions.site, placed_infusions.provider
    from placed_infusions
    cross join report_period
    where placed_infusions.infusion_day between report_period.first_day and report_period.last_day
),

final as (
    select
        period_key,
        case when grouping(site) = 0 then 'site' else 'provider' end as unit,
        coalesce(site, provider) as name,
        count(*) as infusions
    from placed
    group by grouping sets ((period_key, site), (period_key, provider))
)

select * from final
order by period_key, unit, name
