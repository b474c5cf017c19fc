-- safety_counts: administered infusions per protocol (scope 'protocol') and clinic-wide (scope
-- 'clinic', protocol_id null: macro clinic_scope, macros.sql): aborted, blood pressure recorded,
-- high blood pressure (settings high_bp_systolic / high_bp_diastolic, pipeline/outcomes.py
-- HIGH_BP), with an adverse event.
-- docs/definitions.md "Safety"; rates: pipeline/metrics.py.
with infusions as (
    select
        course_infusions.protocol_id,
        course_infusions.status,
        coalesce(bp_systolic_max >= settings.high_bp_systolic, false)
            or coalesce(bp_diastolic_max >= settings.high_bp_diastolic, false) as high_bp,
        bp_systolic_max is not null or bp_diastolic_max is not null as bp_recorded,
        coalesce(len(adverse_events) > 0, false) as with_adverse_event
    from course_infusions
    cross join settings
),

both_scopes as (
    select 'protocol' as scope, * from infusions
    union all
    select 'clinic' as scope, * replace (clinic_scope(protocol_id) as protocol_id) from infusions
),

final as (
    select
        scope,
        protocol_id,
        count(*) as infusions,
        count(*) filter (where status = 'aborted') as aborted,
        count(*) filter (where bp_recorded) as bp_recorded,
        count(*) filter (where high_bp) as high_bp,
        count(*) filter (where with_adverse_event) as infusions_with_adverse_event
    from both_scopes
    group by scope, protocol_id
)

select * from final
