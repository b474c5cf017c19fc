-- summary_outcomes: the course rows of every metric summary of one monthly report at once
-- (pipeline/reports/monthly/data.py `summaries`): for each row of report_period, the course rows
-- of its period (period_outcomes) with protocol_id as that row shows it (report_period.shown: by
-- protocol, pooled over the protocols as the clinic's label, or by month: the month of the
-- outcome date, YYYY-MM, one clinic-wide row per month for the p-chart) prefixed by the row's
-- period_key, so sql/metrics and course_counts.sql count each summary under its own key.
-- docs/definitions.md "Reporting month".
select period_outcomes.* replace (
    period_outcomes.period_key || case report_period.shown
        when 'pooled' then report_period.all_label
        when 'by month' then strftime(period_outcomes.course_outcome_date, '%Y-%m')
        else period_outcomes.protocol_id
    end as protocol_id
)
from period_outcomes
join report_period using (period_key)
