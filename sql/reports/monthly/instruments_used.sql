-- instruments_used: the instruments any course row is scored on (the report names the
-- registry's instruments no course uses). docs/definitions.md "Reporting month".
select distinct instrument
from all_course_outcomes
order by instrument
