-- course_spans: courses per protocol, status and span (days from the first to the last infusion,
-- both counted): the protocols in use and the completion counts of the evidence report.
-- docs/definitions.md "Comparison with published evidence".
with final as (
    select
        protocol_id,
        status,
        last_infusion_day - first_infusion_day + 1 as span_days,
        count(*) as courses
    from all_courses
    group by protocol_id, status, span_days
)

select * from final
order by protocol_id, status, span_days
