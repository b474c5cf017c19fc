-- sessions: one row per scheduled infusion session (README "Input" `sessions`).
-- started_date_only: the export gave a date without a time (or exactly 00:00).
CREATE TABLE IF NOT EXISTS sessions (
    session_id        VARCHAR NOT NULL,
    patient_id        VARCHAR NOT NULL,
    protocol_id       VARCHAR NOT NULL,
    started_at        TIMESTAMP NOT NULL,
    started_date_only BOOLEAN NOT NULL,
    course_id         VARCHAR,
    status            VARCHAR NOT NULL,  -- completed / aborted / cancelled
    dose_mg_per_kg    DOUBLE,
    weight_kg         DOUBLE,
    dose_mg           DOUBLE,
    duration_minutes  DOUBLE,
    site              VARCHAR,
    provider          VARCHAR,
    bp_systolic_max   INTEGER,
    bp_diastolic_max  INTEGER,
    adverse_events    VARCHAR[],         -- lower-case, from the `;`-separated field
    cpt_codes         VARCHAR[],
    row_hash          UBIGINT NOT NULL,
    load_id           INTEGER NOT NULL
);
