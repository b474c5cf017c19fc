-- placed_outcomes: the course rows of the view course_outcomes with the site and provider of
-- their course (report_units; "not recorded" when it has none). docs/definitions.md "Site and
-- provider of a course".
select
    course_outcomes.*,
    coalesce(report_units.site, 'not recorded') as site,
    coalesce(report_units.provider, 'not recorded') as provider
from course_outcomes
left join report_units using (patient_id, course_id)
