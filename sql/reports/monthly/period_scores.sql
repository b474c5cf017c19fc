-- scores of one period of the monthly report: the scores dated in report_period (the item-9
-- flags count scores by their day). docs/definitions.md "Reporting month".
select all_scores.*
from all_scores
cross join report_period
where all_scores.score_day between report_period.first_day and report_period.last_day
