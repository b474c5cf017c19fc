-- case_rows: the evaluable course rows of the view course_outcomes with the columns the case-mix
-- model reads (docs/case-mix.md "What is compared"), in the stored order (OUTCOME_ORDER).
select
    patient_id,
    course_id,
    protocol_id,
    instrument,
    course_start,
    status,
    course_outcome_date,
    evaluable,
    baseline_score,
    category
from course_outcomes
where evaluable
order by patient_id, course_start, course_id, instrument
