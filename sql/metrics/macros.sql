-- Macros of the metrics (docs/definitions.md "Rates"); created on the connection before any
-- sql/metrics query runs.
-- rated: an evaluable course that is not in progress, the denominator of every outcome rate.
CREATE OR REPLACE TEMP MACRO rated(evaluable, status) AS evaluable AND status <> 'in_progress';
