-- course_outcomes: one row per course and instrument with the outcome columns of course_outcomes.csv.
-- docs/definitions.md "Evaluable" to "Infusions to response". The reduction test is the macro
-- reduced_by_at_least and the timing classes the relation timing_classes (both written from
-- pipeline/outcomes.py); registry thresholds come from instrument_thresholds.
with to_response as (
    -- "Infusions to response": the least infusion count of a post score that is a response;
    -- the largest infusion count with a score is the KM censor time.
    select
        post_scores.patient_id,
        post_scores.course_id,
        post_scores.instrument,
        min(post_scores.infusions_before) filter (
            where reduced_by_at_least(
                post_scores.total_score, course_scores.baseline_score, settings.response_pct)
        ) as infusions_to_response,
        max(post_scores.infusions_before) as last_scored_infusion
    from post_scores
    join course_scores using (patient_id, course_id, instrument)
    cross join settings
    where course_scores.baseline_score > 0
    group by post_scores.patient_id, post_scores.course_id, post_scores.instrument
),

with_reason as (
    select
        course_scores.*,
        instrument_thresholds.remission_cutoff,
        instrument_thresholds.caseness_cutoff,
        instrument_thresholds.reliable_change,
        to_response.infusions_to_response,
        to_response.last_scored_infusion,
        case
            when course_scores.baseline_score is null then 'no baseline'
            when course_scores.baseline_score <= 0 then 'zero baseline'
            when course_scores.endpoint_score is null then 'no follow-up score'
        end as not_evaluable_reason
    from course_scores
    left join instrument_thresholds using (instrument)
    left join to_response using (patient_id, course_id, instrument)
),

classified as (
    select
        with_reason.*,
        not_evaluable_reason is null as evaluable,
        baseline_score - endpoint_score >= reliable_change as improved,
        endpoint_score - baseline_score >= reliable_change as deteriorated,
        -- "Recovery": caseness at baseline whether or not the course is evaluable
        baseline_score >= caseness_cutoff as caseness_at_baseline,
        coalesce(timing_classes.key, settings.never_responded) as timing
    from with_reason
    cross join settings
    left join timing_classes
        on with_reason.infusions_to_response
            between timing_classes.first and coalesce(timing_classes.last, with_reason.infusions_to_response)
),

outcomes as (
    select
        classified.*,
        case when evaluable then
            case
                when reduced_by_at_least(endpoint_score, baseline_score, settings.response_pct)
                    then 'response'
                when reduced_by_at_least(endpoint_score, baseline_score, settings.partial_response_pct)
                    then 'partial_response'
                else 'non_response'
            end
        end as category,
        case when evaluable and baseline_score > remission_cutoff
            then endpoint_score <= remission_cutoff end as remission,
        case when evaluable and caseness_at_baseline
            then endpoint_score < caseness_cutoff end as recovery
    from classified
    cross join settings
),

final as (
    select
        patient_id,
        course_id,
        protocol_id,
        instrument,
        first_infusion_day as course_start,
        last_infusion_day as course_end,
        infusions,
        planned_infusions,
        status,
        baseline_score,
        endpoint_score,
        case when evaluable
            then round_even((endpoint_score - baseline_score) / baseline_score * 100, 1)
        end as pct_change,
        category,
        remission,
        case when evaluable then improved end as reliable_improvement,
        case when evaluable then deteriorated end as reliable_deterioration,
        case when evaluable then infusions_to_response end as infusions_to_response,
        case when evaluable then timing end as response_timing,
        not_evaluable_reason,
        course_outcome_date,
        course_id_source,
        evaluable,
        aborted_infusions,
        baseline_at,
        endpoint_at,
        endpoint_after_infusions,
        case when evaluable then last_scored_infusion end as last_scored_infusion,
        caseness_at_baseline,
        recovery,
        -- "Recovery": reliable recovery needs a reliable-change threshold
        case when recovery is not null and reliable_change is not null
            then recovery and improved end as reliable_recovery
    from outcomes
)

select * from final
