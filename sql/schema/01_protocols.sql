-- protocols: one row per treatment protocol (README "Input" `protocols`).
-- row_hash identifies an exact duplicate; load_id names the load that brought the row.
CREATE TABLE IF NOT EXISTS protocols (
    protocol_id       VARCHAR NOT NULL,
    name              VARCHAR NOT NULL,
    planned_infusions INTEGER NOT NULL,
    planned_days      INTEGER NOT NULL,
    dose_mg_per_kg    DOUBLE,
    infusion_minutes  DOUBLE,
    phase             VARCHAR,           -- induction / maintenance / booster
    indication        VARCHAR,
    row_hash          UBIGINT NOT NULL,
    load_id           INTEGER NOT NULL
);
