-- placed_infusions: the administered infusions dated in report_period (the rolling 12 months)
-- and the first infusion of every course, with the site and provider of their session ("not
-- recorded" when it names none). docs/definitions.md "Site and provider of a course".
with wanted as (
    select
        all_course_infusions.patient_id,
        all_course_infusions.course_id,
        all_course_infusions.session_id,
        all_course_infusions.infusion_number,
        all_course_infusions.infusion_day
    from all_course_infusions
    cross join report_period
    where all_course_infusions.infusion_number = 1
        or all_course_infusions.infusion_day
            between report_period.first_day and report_period.last_day
),

final as (
    select
        wanted.patient_id,
        wanted.course_id,
        wanted.infusion_number,
        wanted.infusion_day,
        coalesce(monthly_sessions.site, 'not recorded') as site,
        coalesce(monthly_sessions.provider, 'not recorded') as provider
    from wanted
    left join monthly_sessions using (session_id)
)

select * from final
