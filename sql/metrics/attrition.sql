-- attrition: courses reaching infusion 1, 2, ... N per protocol (N = the larger of the plan and
-- the largest course), over completed and discontinued courses (in-progress ones have not had
-- the chance yet). docs/definitions.md "Attrition".
with finished as (
    select protocol_id, infusions, planned_infusions
    from courses
    where status <> 'in_progress'
),

horizon as (
    select
        protocol_id,
        count(*) as starting,
        greatest(max(infusions), max(planned_infusions)) as last
    from finished
    group by protocol_id
),

numbers as (
    select protocol_id, starting, unnest(range(1, last + 1)) as infusion_number
    from horizon
),

sizes as (
    select protocol_id, infusions, count(*) as courses
    from finished
    group by protocol_id, infusions
),

final as (
    select
        numbers.protocol_id,
        numbers.infusion_number,
        coalesce(sum(sizes.courses), 0)::bigint as courses_reaching,
        numbers.starting
    from numbers
    left join sizes
        on sizes.protocol_id = numbers.protocol_id
        and sizes.infusions >= numbers.infusion_number
    group by numbers.protocol_id, numbers.infusion_number, numbers.starting
)

select * from final
