-- course_infusions of one period of the monthly report: the administered infusions dated in
-- report_period (safety counts infusions by the day they happened). docs/definitions.md
-- "Reporting month".
select all_course_infusions.*
from all_course_infusions
cross join report_period
where all_course_infusions.infusion_day between report_period.first_day and report_period.last_day
