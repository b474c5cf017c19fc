-- patients for the case-mix model: birth date (age band at infusion 1) and sex, one row per patient.
-- docs/case-mix.md "Predictors"; derived patients (not in a patients file) have neither and count as unknown.
with final as (
    select patient_id, birth_date, sex
    from patients
)

select * from final
order by patient_id
