-- same_session_courses: a pre and a same-day post score around infusion 1, per course x instrument.
-- docs/definitions.md "Same-session effect": pre = latest `pre` score on the day of infusion 1
-- not after its start; post = first `post` score that day after its start (a date-only post is
-- at the end of the day, sql/outcomes/04_scores.sql); ties at the same time -> the higher score.
with day_scores as (
    select
        courses.patient_id,
        courses.course_id,
        courses.protocol_id,
        courses.course_start,
        scores.instrument,
        scores.timing,
        scores.scored_at,
        scores.total_score
    from courses
    join scores
        on scores.patient_id = courses.patient_id
        and scores.score_day = courses.first_infusion_day
),

pre as (
    select
        patient_id,
        course_id,
        instrument,
        any_value(protocol_id) as protocol_id,
        first(total_score order by scored_at desc, total_score desc) as pre_score
    from day_scores
    where timing = 'pre' and scored_at <= course_start
    group by patient_id, course_id, instrument
),

post as (
    select
        patient_id,
        course_id,
        instrument,
        first(total_score order by scored_at, total_score desc) as post_score
    from day_scores
    where timing = 'post' and scored_at > course_start
    group by patient_id, course_id, instrument
),

final as (
    select
        pre.patient_id,
        pre.course_id,
        pre.instrument,
        pre.protocol_id,
        pre.pre_score,
        post.post_score,
        post.post_score - pre.pre_score as same_day_change,
        pre.pre_score > 0
            and reduced_by_at_least(post.post_score, pre.pre_score, settings.response_pct)
            as reduced_by_half
    from pre
    join post using (patient_id, course_id, instrument)
    cross join settings
)

select * from final
