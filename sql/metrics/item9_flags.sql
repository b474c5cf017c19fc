-- item9_flags: scores (as of) whose safety item is above 0, whatever the total.
-- docs/definitions.md "Safety": the item is settings.safety_instrument item settings.safety_item
-- (pipeline/outcomes.py SAFETY_ITEM, PHQ-9 item 9); no item when the items were not exported.
with answered as (
    select
        scores.*,
        case when scores.instrument = settings.safety_instrument
            then scores.items[settings.safety_item] end as item_9
    from scores
    cross join settings
),

final as (
    select patient_id, assessment_id, administered_at, timing, total_score, item_9
    from answered
    where item_9 > 0
)

select * from final
