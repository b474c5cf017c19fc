-- unit_infusions: the administered infusions dated in report_period per site and per provider of
-- their session (unit, name; placed_infusions). docs/definitions.md "Site and provider of a
-- course".
with placed as (
    select placed_infusions.site, placed_infusions.provider
    from placed_infusions
    cross join report_period
    where placed_infusions.infusion_day between report_period.first_day and report_period.last_day
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
