-- course_status: the period's courses (view courses) per protocol: completed and discontinued.
-- docs/definitions.md "Attrition".
with final as (
    select
        protocol_id,
        count(*) filter (where status = 'completed') as completed,
        count(*) filter (where status = 'discontinued') as discontinued
    from courses
    group by protocol_id
)

select * from final
order by protocol_id
