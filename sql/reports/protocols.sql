-- protocols: every protocol with its plan, for row labels, plans and claims of the reports.
-- docs/definitions.md "Course": a course's protocol is that of its first infusion.
SELECT protocol_id, name, planned_infusions, planned_days, dose_mg_per_kg, infusion_minutes,
       phase, indication
FROM protocols
ORDER BY protocol_id
