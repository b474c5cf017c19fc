-- treatment_history: prior antidepressant trials per patient (optional export file; README).
-- Used by payer packets for the treatment-resistance criterion (>= 2 adequate trials, <= 25% improvement).
CREATE TABLE IF NOT EXISTS treatment_history (
    trial_id        VARCHAR,
    patient_id      VARCHAR NOT NULL,
    medication      VARCHAR NOT NULL,
    drug_class      VARCHAR,            -- e.g. SSRI, SNRI, TCA, MAOI, atypical, augmentation
    start_date      DATE NOT NULL,
    end_date        DATE,
    adequate_dose   BOOLEAN,            -- the prescriber judged the dose adequate
    improvement_pct DOUBLE,             -- % symptom improvement during the trial (negative = worse)
    episode         VARCHAR,            -- current / prior
    row_hash        UBIGINT NOT NULL,
    load_id         INTEGER NOT NULL
);
