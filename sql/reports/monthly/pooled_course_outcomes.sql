-- course_outcomes pooled over the protocols: the period's course rows with protocol_id the
-- clinic's label (report_period.all_label), so sql/metrics gives clinic-wide rows.
-- docs/definitions.md "Reporting month".
select period_outcomes.* replace (report_period.all_label as protocol_id)
from period_outcomes
cross join report_period
