-- post_scores: post-baseline scores per course and instrument, tagged with infusions started before.
-- docs/definitions.md "Post-baseline scores": after infusion 1, <= endpoint_window_days after the last, before next course.
with in_window as (
    select
        courses.patient_id,
        courses.course_id,
        scores.instrument,
        scores.assessment_id,
        scores.total_score,
        scores.scored_at,
        scores.score_day,
        scores.timing
    from courses
    join scores on scores.patient_id = courses.patient_id
    cross join settings
    where scores.scored_at > courses.course_start
      and scores.score_day <= courses.last_infusion_day + settings.endpoint_window_days
      and (courses.next_course_start is null or scores.scored_at < courses.next_course_start)
),

tagged as (
    select
        in_window.patient_id,
        in_window.course_id,
        in_window.instrument,
        in_window.assessment_id,
        in_window.total_score,
        in_window.scored_at,
        in_window.score_day,
        in_window.timing,
        count(course_infusions.session_id) as infusions_before
    from in_window
    join course_infusions
        on course_infusions.patient_id = in_window.patient_id
        and course_infusions.course_id = in_window.course_id
        and course_infusions.started_at < in_window.scored_at
    group by all
),

final as (
    select * from tagged
)

select * from final
