-- Parsing and problem-text macros shared by every validation file (SPEC §1 "Bad input").
-- A *_problem macro returns NULL when the value is fine, else a reason an analyst can act on.

-- ISO 8601 date or date-time; a UTC offset is ignored (times are clinic-local, SPEC §1).
CREATE OR REPLACE TEMP MACRO parse_ts(s) AS try_cast(trim(s) AS TIMESTAMP);

-- Date-only: no time written, or exactly 00:00 (SPEC §2 baseline rule). Takes the parsed value.
CREATE OR REPLACE TEMP MACRO is_date_only(ts) AS ts = date_trunc('day', ts);

CREATE OR REPLACE TEMP MACRO blank(s) AS s IS NULL OR trim(s) = '';

CREATE OR REPLACE TEMP MACRO clean(s) AS nullif(trim(s), '');

-- Whole numbers only ("3" and "3.0" pass, "3.5" does not).
CREATE OR REPLACE TEMP MACRO to_int(s) AS
    coalesce(try_cast(trim(s) AS INTEGER),
             CASE WHEN try_cast(trim(s) AS DOUBLE) = round(try_cast(trim(s) AS DOUBLE))
                   AND abs(try_cast(trim(s) AS DOUBLE)) < 2e9
                  THEN try_cast(trim(s) AS DOUBLE)::INTEGER END);

CREATE OR REPLACE TEMP MACRO num_text(x) AS
    CASE WHEN x = floor(x) THEN CAST(CAST(x AS BIGINT) AS VARCHAR) ELSE CAST(x AS VARCHAR) END;

CREATE OR REPLACE TEMP MACRO split_list(s) AS
    nullif(list_filter(list_transform(string_split(s, ';'), lambda x: lower(trim(x))),
                       lambda x: x <> ''), []);

CREATE OR REPLACE TEMP MACRO required_problem(s) AS
    CASE WHEN blank(s) THEN 'required value is empty; fill it in the export' END;

CREATE OR REPLACE TEMP MACRO ts_problem(raw, parsed, load_date) AS
    CASE WHEN blank(raw) THEN NULL
         WHEN parsed IS NULL AND regexp_full_match(trim(raw), '\d{4}-\d{1,2}-\d{1,2}([T ].*)?')
             THEN 'impossible date or time (no such day or hour); correct it in the export'
         WHEN parsed IS NULL
             THEN 'unparseable date; use ISO 8601 such as 2026-02-02 or 2026-02-02T09:00'
         WHEN parsed::DATE > load_date
             THEN 'date is later than the day of the load (' || load_date::VARCHAR
                  || '); check the year or the clock of the exporting system'
         WHEN parsed < TIMESTAMP '1900-01-01'
             THEN 'implausible date before 1900; check the year'
    END;

CREATE OR REPLACE TEMP MACRO num_problem(raw, lo, hi, what) AS
    CASE WHEN blank(raw) THEN NULL
         WHEN try_cast(trim(raw) AS DOUBLE) IS NULL
             THEN 'not a number; ' || what || ' must be a plain number with a decimal point'
         WHEN try_cast(trim(raw) AS DOUBLE) < lo OR try_cast(trim(raw) AS DOUBLE) > hi
             THEN 'outside the plausible range ' || num_text(lo) || '–' || num_text(hi)
                  || ' for ' || what || '; check the value and its unit'
    END;

CREATE OR REPLACE TEMP MACRO int_problem(raw, lo, hi, what) AS
    CASE WHEN blank(raw) THEN NULL
         WHEN to_int(raw) IS NULL
             THEN 'not a whole number; ' || what || ' must be a whole number'
         WHEN to_int(raw) < lo OR to_int(raw) > hi
             THEN 'outside the range ' || num_text(lo) || '–' || num_text(hi) || ' for ' || what
    END;
