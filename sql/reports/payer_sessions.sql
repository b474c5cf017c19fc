-- payer_sessions: every session up to the as-of day with the billing and clinical fields a
-- payer packet lists (dates of service); cancelled sessions are kept (docs/definitions.md).
SELECT session_id, patient_id, protocol_id, started_at, started_date_only,
       course_id AS export_course_id, lower(status) AS status, dose_mg_per_kg, weight_kg,
       dose_mg, duration_minutes, site, provider, bp_systolic_max, bp_diastolic_max,
       adverse_events, cpt_codes
FROM sessions
WHERE started_at::DATE <= $as_of
