-- response_times: the Kaplan-Meier input of "Cumulative response" (docs/definitions.md), one row
-- per rated course (evaluable, not in progress): the event is a response at
-- infusions_to_response; a course without one is censored at its last scored infusion.
with final as (
    select
        protocol_id,
        instrument,
        coalesce(infusions_to_response, last_scored_infusion) as time,
        infusions_to_response is not null as event
    from course_outcomes
    where rated(evaluable, status)
)

select * from final
