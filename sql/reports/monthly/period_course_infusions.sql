-- period_course_infusions: the administered infusions dated in a period of report_period (safety
-- counts infusions by the day they happened), with its key (period_key). docs/definitions.md
-- "Reporting month".
select all_course_infusions.*, report_period.period_key
from all_course_infusions
cross join report_period
where all_course_infusions.infusion_day between report_period.first_day and report_period.last_day
