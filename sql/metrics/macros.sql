-- Macros of the metrics (docs/definitions.md "Rates"); created on the connection before any
-- sql/metrics query runs.
-- rated: an evaluable course that is not in progress, the denominator of every outcome rate.
CREATE OR REPLACE TEMP MACRO rated(evaluable, status) AS evaluable AND status <> 'in_progress';
-- clinic_scope: the protocol_id of a clinic-wide row (every protocol pooled, safety_counts.sql and
-- adverse_events.sql): none. A reader counting several periods at once, each period's key in front
-- of protocol_id, makes it that key (pipeline/reports/monthly/data.py).
CREATE OR REPLACE TEMP MACRO clinic_scope(protocol_id) AS NULL::VARCHAR;
