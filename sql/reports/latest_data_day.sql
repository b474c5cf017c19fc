-- latest_data_day: the day of the latest session or score, the default end of a report.
-- docs/definitions.md "Reporting month": the last complete month ends on or before this day.
SELECT max(d) AS latest_data_day
FROM (
    SELECT max(started_at)::DATE AS d FROM sessions
    UNION ALL
    SELECT max(administered_at)::DATE FROM assessments
)
