-- course_instruments: one row per course and per instrument that appears anywhere in the export.
-- docs/definitions.md "Course": "one outcome row per course and per instrument".
with instruments_seen as (
    select distinct instrument from assessments
),

final as (
    select courses.patient_id, courses.course_id, instruments_seen.instrument
    from courses
    cross join instruments_seen
)

select * from final
