-- period_scores: the scores dated in a period of report_period (the item-9 flags count scores by
-- their day), with its key (period_key). docs/definitions.md "Reporting month".
select all_scores.*, report_period.period_key
from all_scores
cross join report_period
where all_scores.score_day between report_period.first_day and report_period.last_day
