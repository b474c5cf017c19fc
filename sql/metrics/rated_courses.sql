-- rated_courses: the course rows counted in outcome rates (macro rated, macros.sql).
select * from course_outcomes where rated(evaluable, status)
