-- assessments: one row per scale administration (README "Input" `assessments`).
-- instrument is the registry's canonical name; items[k] is item_k (NULL when not exported).
CREATE TABLE IF NOT EXISTS assessments (
    assessment_id  VARCHAR,
    patient_id     VARCHAR NOT NULL,
    instrument     VARCHAR NOT NULL,
    administered_at TIMESTAMP NOT NULL,
    date_only      BOOLEAN NOT NULL,    -- date without time, or exactly 00:00 (docs/definitions.md)
    total_score    DOUBLE NOT NULL,
    session_id     VARCHAR,
    timing         VARCHAR,             -- pre / post / followup / NULL
    items          INTEGER[],
    row_hash       UBIGINT NOT NULL,
    load_id        INTEGER NOT NULL
);
