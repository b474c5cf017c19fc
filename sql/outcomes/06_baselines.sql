-- baselines: the baseline score per course and instrument (absent when none qualifies).
-- docs/definitions.md "Baseline": latest score not after infusion 1, within baseline_window_days; ties -> higher.
with candidates as (
    select
        courses.patient_id,
        courses.course_id,
        scores.instrument,
        scores.assessment_id,
        scores.total_score,
        scores.scored_at,
        scores.timing
    from courses
    join scores on scores.patient_id = courses.patient_id
    cross join settings
    where scores.scored_at <= courses.course_start
      and scores.score_day >= courses.first_infusion_day - settings.baseline_window_days
),

ranked as (
    select
        candidates.*,
        row_number() over (
            partition by patient_id, course_id, instrument
            order by scored_at desc, total_score desc, assessment_id
        ) as rank_latest
    from candidates
),

final as (
    select
        patient_id,
        course_id,
        instrument,
        assessment_id as baseline_assessment_id,
        total_score as baseline_score,
        scored_at as baseline_at
    from ranked
    where rank_latest = 1
)

select * from final
