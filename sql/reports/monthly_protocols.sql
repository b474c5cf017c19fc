-- monthly_protocols: protocol ids with their names and plans, for row labels of the monthly report.
-- SPEC §1 `protocols`; no patient data.
SELECT protocol_id, name, planned_infusions
FROM protocols
ORDER BY protocol_id
