-- durability_courses: days from an endpoint response to relapse, per responding course.
-- docs/definitions.md "Durability": rated courses (evaluable, not in progress) with category
-- response; later scores are every score of the patient on that instrument after the endpoint
-- up to as-of (also those in a later course); relapse = a later score that is no longer a
-- response (reduced_by_at_least). Censored at the last later score, 0 days when there is none.
with responders as (
    select patient_id, course_id, instrument, protocol_id, baseline_score, endpoint_at
    from course_outcomes
    where rated(evaluable, status) and category = 'response'
),

later as (
    select
        responders.patient_id,
        responders.course_id,
        responders.instrument,
        scores.score_day - responders.endpoint_at::date as days,
        not reduced_by_at_least(scores.total_score, responders.baseline_score,
                                settings.response_pct) as relapsed
    from responders
    join scores
        on scores.patient_id = responders.patient_id
        and scores.instrument = responders.instrument
    cross join settings
    where scores.scored_at > responders.endpoint_at
),

per_course as (
    select
        patient_id,
        course_id,
        instrument,
        min(days) filter (where relapsed) as relapse_days,
        max(days) as last_score_days
    from later
    group by patient_id, course_id, instrument
),

final as (
    select
        responders.patient_id,
        responders.course_id,
        responders.instrument,
        responders.protocol_id,
        per_course.relapse_days is not null as relapsed,
        coalesce(per_course.relapse_days, per_course.last_score_days, 0)::bigint as days
    from responders
    left join per_course using (patient_id, course_id, instrument)
)

select * from final
