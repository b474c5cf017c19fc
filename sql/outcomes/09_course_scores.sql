-- course_scores: one row per course and instrument with course facts, baseline and endpoint.
-- docs/definitions.md "Course", "Baseline", "Endpoint"; outcome categories are added in pipeline/outcomes.py.
with final as (
    select
        courses.patient_id,
        courses.course_id,
        courses.course_id_source,
        courses.protocol_id,
        course_instruments.instrument,
        courses.course_start,
        courses.last_infusion_at,
        courses.first_infusion_day,
        courses.last_infusion_day,
        courses.infusions,
        courses.aborted_infusions,
        courses.planned_infusions,
        courses.status,
        courses.course_outcome_date,
        courses.next_course_start,
        baselines.baseline_score,
        baselines.baseline_at,
        baselines.baseline_assessment_id,
        endpoints.endpoint_score,
        endpoints.endpoint_at,
        endpoints.endpoint_assessment_id,
        endpoints.endpoint_after_infusions
    from course_instruments
    join courses using (patient_id, course_id)
    left join baselines using (patient_id, course_id, instrument)
    left join endpoints using (patient_id, course_id, instrument)
)

select * from final
