-- planned_infusions: each protocol's planned infusions, as its courses carry it (the columns of
-- the attrition table). docs/definitions.md "Attrition".
select distinct protocol_id, planned_infusions
from all_courses
order by protocol_id, planned_infusions
