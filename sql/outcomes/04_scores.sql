-- scores: assessments dated on or before the as-of day, each with the time it is compared at.
-- docs/definitions.md "As-of date" and "Baseline": a date-only `post` score is placed at the end of its day.
with in_scope as (
    select assessments.*
    from assessments
    cross join settings
    where assessments.administered_at::date <= settings.as_of
),

final as (
    select
        assessment_id,
        patient_id,
        instrument,
        administered_at,
        date_only,
        total_score,
        session_id,
        lower(timing) as timing,
        items,
        administered_at::date as score_day,
        case
            when date_only and lower(timing) = 'post'
                then administered_at::date + interval 1 day - interval 1 microsecond
            else administered_at
        end as scored_at
    from in_scope
)

select * from final
