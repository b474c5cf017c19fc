-- adverse_events: infusions with each adverse event type (a type counted once per infusion),
-- per protocol and clinic-wide as in safety_counts.sql. docs/definitions.md "Safety".
with events as (
    select
        protocol_id,
        unnest(list_distinct(adverse_events)) as event_type
    from course_infusions
),

both_scopes as (
    select 'protocol' as scope, protocol_id, event_type from events
    union all
    select 'clinic' as scope, clinic_scope(protocol_id) as protocol_id, event_type from events
),

final as (
    select scope, protocol_id, event_type, count(*) as events
    from both_scopes
    where event_type is not null and event_type <> ''
    group by scope, protocol_id, event_type
)

select * from final
