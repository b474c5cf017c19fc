-- period_courses: the courses, not in progress, whose outcome date falls in a period of
-- report_period, with its key (period_key). docs/definitions.md "Reporting month".
select all_courses.*, report_period.period_key
from all_courses
cross join report_period
where all_courses.status <> 'in_progress'
    and all_courses.course_outcome_date between report_period.first_day and report_period.last_day
