-- course_status: the courses of each period (view period_courses, period_key) per protocol:
-- completed and discontinued.
-- docs/definitions.md "Attrition".
with final as (
    select
        period_key,
        protocol_id,
        count(*) filter (where status = 'completed') as completed,
        count(*) filter (where status = 'discontinued') as discontinued
    from period_courses
    group by period_key, protocol_id
)

select * from final
order by period_key, protocol_id
