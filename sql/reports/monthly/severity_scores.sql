-- severity_scores: evaluable course rows of the view course_outcomes per period (period_key),
-- instrument, baseline and endpoint score (the severity bands are taken over these in Python,
-- outcomes.severity_band). docs/definitions.md "Severity band".
with final as (
    select period_key, instrument, baseline_score, endpoint_score, count(*) as n
    from course_outcomes
    where evaluable
    group by all
)

select * from final
order by all
