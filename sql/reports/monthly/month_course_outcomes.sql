-- course_outcomes pooled by month: the period's course rows with protocol_id the month of their
-- outcome date (YYYY-MM), so sql/metrics gives one clinic-wide row per month (the p-chart).
-- docs/definitions.md "Reporting month".
select period_outcomes.* replace (strftime(period_outcomes.course_outcome_date, '%Y-%m') as protocol_id)
from period_outcomes
