-- protocol_counts: the counts behind every rate of protocol_summary, per protocol x instrument.
-- docs/definitions.md "Rates": rated = evaluable and not in progress (the denominator of every
-- outcome rate); ITT = not in progress with a baseline above 0. Rates and intervals:
-- pipeline/metrics.py.
with flagged as (
    select
        *,
        status <> 'in_progress' as not_in_progress,
        rated(evaluable, status) as rated
    from course_outcomes
),

final as (
    select
        protocol_id,
        instrument,
        count(*) as courses,
        count(*) filter (where not not_in_progress) as in_progress,
        count(*) filter (where rated) as evaluable,
        count(*) filter (where rated and category = 'response') as responders,
        count(*) filter (where rated and category = 'partial_response') as partial_responders,
        count(*) filter (where rated and category = 'non_response') as non_responders,
        count(*) filter (where rated and remission) as remitters,
        count(*) filter (where rated and remission is not null) as remission_evaluable,
        count(*) filter (where rated and reliable_improvement) as reliable_improvers,
        count(*) filter (where rated and reliable_deterioration) as reliable_deteriorators,
        count(*) filter (where rated and reliable_improvement is not null)
            as reliable_change_evaluable,
        count(*) filter (where not_in_progress and baseline_score > 0) as itt_courses,
        count(*) filter (where rated and caseness_at_baseline) as cases,
        count(*) filter (where rated and recovery) as recovered,
        count(*) filter (where rated and reliable_recovery) as reliably_recovered,
        count(*) filter (where rated and reliable_recovery is not null)
            as reliable_recovery_evaluable,
        count(*) filter (where not_in_progress and not evaluable) as not_evaluable
    from flagged
    group by protocol_id, instrument
)

select * from final
