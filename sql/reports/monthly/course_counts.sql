-- course_counts: the course rows of the view course_outcomes counted per period (period_key),
-- protocol, instrument, status, evaluable, reason not evaluable, category and response timing:
-- every count of course rows the monthly report prints is a sum of these. docs/definitions.md
-- "Rates".
with final as (
    select
        period_key,
        protocol_id,
        instrument,
        status,
        evaluable,
        not_evaluable_reason,
        category,
        response_timing,
        count(*) as n
    from course_outcomes
    group by all
)

select * from final
order by all
