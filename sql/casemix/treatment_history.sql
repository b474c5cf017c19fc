-- treatment_history for the case-mix model: prior antidepressant trials known as of $as_of.
-- docs/case-mix.md "Predictors"; the adequate-trial rule is the payer packet's (applied in polars).
with final as (
    select patient_id, medication, drug_class, start_date, end_date, adequate_dose,
           improvement_pct, episode
    from treatment_history
    where start_date <= $as_of
)

select * from final
order by patient_id, start_date, medication
