-- summary_outcomes: the course rows of every metric summary of one monthly report at once
-- (pipeline/reports/monthly/data.py `summaries`): for each row of report_summaries, the course
-- rows of its period as period_outcomes.sql takes them (not in progress, outcome date in the
-- period), with protocol_id as the view course_outcomes shows it (by protocol, pooled as in
-- pooled_course_outcomes.sql or by month as in month_course_outcomes.sql) prefixed by the row's
-- key, so sql/metrics counts each summary under its own key. docs/definitions.md "Reporting month".
select all_course_outcomes.* replace (
    report_summaries.summary_key || case report_summaries.shown
        when 'pooled' then report_summaries.all_label
        when 'by month' then strftime(all_course_outcomes.course_outcome_date, '%Y-%m')
        else all_course_outcomes.protocol_id
    end as protocol_id
)
from all_course_outcomes
join report_summaries
    on all_course_outcomes.course_outcome_date
        between report_summaries.first_day and report_summaries.last_day
where all_course_outcomes.status <> 'in_progress'
