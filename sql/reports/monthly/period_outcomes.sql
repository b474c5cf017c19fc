-- period_outcomes: the course rows of one period of the monthly report: not in progress, with the
-- outcome date in a period of report_period, with its key (period_key). docs/definitions.md
-- "Reporting month".
select all_course_outcomes.*, report_period.period_key
from all_course_outcomes
cross join report_period
where all_course_outcomes.status <> 'in_progress'
    and all_course_outcomes.course_outcome_date
        between report_period.first_day and report_period.last_day
