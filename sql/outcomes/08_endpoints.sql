-- endpoints: the endpoint score per course and instrument (absent when no post-baseline score).
-- docs/definitions.md "Endpoint": the last post-baseline score; ties at the same time -> the higher score.
with ranked as (
    select
        post_scores.*,
        row_number() over (
            partition by patient_id, course_id, instrument
            order by scored_at desc, total_score desc, assessment_id
        ) as rank_latest
    from post_scores
),

final as (
    select
        patient_id,
        course_id,
        instrument,
        assessment_id as endpoint_assessment_id,
        total_score as endpoint_score,
        scored_at as endpoint_at,
        infusions_before as endpoint_after_infusions
    from ranked
    where rank_latest = 1
)

select * from final
