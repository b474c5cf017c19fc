-- unit_rated: the evaluable course rows of the view placed_outcomes per period (period_key), per
-- site and per provider (unit, name) and instrument, and the responses among them.
-- docs/definitions.md "Site and provider of a course".
with final as (
    select
        period_key,
        case when grouping(site) = 0 then 'site' else 'provider' end as unit,
        coalesce(site, provider) as name,
        instrument,
        count(*) as evaluable,
        count(*) filter (where category = 'response') as responders
    from placed_outcomes
    where evaluable
    group by grouping sets ((period_key, site, instrument), (period_key, provider, instrument))
)

select * from final
order by period_key, unit, name, instrument
