-- patients: one row per patient (README "Input" `patients`).
-- source = 'patients' when listed in a patients file, 'derived' when only seen in other files.
CREATE TABLE IF NOT EXISTS patients (
    patient_id     VARCHAR NOT NULL,
    birth_date     DATE,
    sex            VARCHAR,
    diagnosis_code VARCHAR,
    payer          VARCHAR,
    member_id      VARCHAR,
    site           VARCHAR,
    source         VARCHAR NOT NULL,
    row_hash       UBIGINT NOT NULL,
    load_id        INTEGER NOT NULL
);
