-- km_counts: Kaplan-Meier counts per protocol x instrument and distinct time of the relation
-- km_input (protocol_id, instrument, time, event): events, censored, and at risk (still
-- followed just before the time). The survival product is taken in pipeline/metrics.py (`km_table`).
with totals as (
    select protocol_id, instrument, count(*) as subjects
    from km_input
    group by protocol_id, instrument
),

steps as (
    select
        protocol_id,
        instrument,
        time,
        count(*) filter (where event) as events,
        count(*) filter (where not event) as censored
    from km_input
    group by protocol_id, instrument, time
),

final as (
    select
        steps.protocol_id,
        steps.instrument,
        steps.time,
        (totals.subjects - sum(steps.events + steps.censored) over (
            partition by steps.protocol_id, steps.instrument order by steps.time
            rows between unbounded preceding and current row
        ) + steps.events + steps.censored)::bigint as at_risk,
        steps.events,
        steps.censored,
        totals.subjects
    from steps
    join totals using (protocol_id, instrument)
)

select * from final
