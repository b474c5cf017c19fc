-- Parsing and problem-text macros shared by every validation file (docs/bad-input-values.md).
-- A *_problem / *_reason macro returns NULL when the value is fine, else a reason an analyst can
-- act on. The value-level choices are listed in docs/bad-input-values.md.

-- ---------------------------------------------------------------- text

-- Without surrounding whitespace: DuckDB's trim() removes spaces, non-breaking and other Unicode
-- spaces; tabs and line breaks need the regex (only run when one is there, it is the slow path).
-- Zero-width characters are not whitespace: in an id they are rejected (id_problem).
CREATE OR REPLACE TEMP MACRO strip(s) AS
    CASE WHEN ascii(s) BETWEEN 33 AND 126 AND ascii(right(s, 1)) BETWEEN 33 AND 126
             THEN s  -- a printable ASCII character at both ends: nothing to strip (the common case)
         WHEN regexp_matches(s, '^[\t\n\r\x0B\x0C]|[\t\n\r\x0B\x0C]$')
             THEN trim(regexp_replace(s, '^[\s\x0B\pZ]+|[\s\x0B\pZ]+$', '', 'g'))
         ELSE trim(s) END;

-- Empty or whitespace only. A first character that is printable ASCII settles it without strip().
CREATE OR REPLACE TEMP MACRO blank(s) AS
    CASE WHEN s IS NULL THEN true
         WHEN ascii(s) BETWEEN 33 AND 126 THEN false
         ELSE strip(s) = '' END;

-- nullif(strip(s), ''), strip(s) written once (nullif repeats its first argument; see
-- stripped_has_invisible).
CREATE OR REPLACE TEMP MACRO clean(s) AS list_transform([strip(s)], lambda stripped: nullif(stripped, ''))[1];

-- The one rule for characters that make two ids look the same but differ, or make an id look
-- like nothing (docs/bad-input-values.md, "Invisible characters in ids"):
--   * control characters (Cc: tab, line break, NUL, DEL, C1 controls);
--   * format characters (Cf: soft hyphen, zero-width space/joiners, direction marks, embeddings
--     and isolates, word joiner, BOM, Arabic letter mark U+061C, tag characters U+E0001 and
--     U+E0020-U+E007F, ...);
--   * every separator but the plain space (Z: non-breaking and other Unicode spaces, line and
--     paragraph separators);
--   * the other default-ignorable code points, which render as nothing: combining grapheme
--     joiner U+034F, Hangul fillers U+115F, U+1160, U+3164, U+FFA0, Khmer inherent vowels
--     U+17B4-U+17B5, Mongolian variation selectors U+180B-U+180F, variation selectors
--     U+FE00-U+FE0F and U+E0100-U+E01EF, and the unassigned U+2065, U+FFF0-U+FFF8,
--     U+E0000-U+E0FFF;
--   * the braille pattern blank U+2800 (a "blank" that is not a space);
--   * a value made only of combining marks (Mn, Me): nothing for them to sit on.
-- RE2 (DuckDB's regex engine) knows the general categories but not Default_Ignorable_Code_Point,
-- so that property's code points outside Cf are listed. A letter followed by a combining mark
-- (`Jose` + U+0301, a decomposed é) is a visible id and is not refused.
CREATE OR REPLACE TEMP MACRO has_invisible(s) AS
    CASE WHEN strlen(s) = length(s)  -- ASCII only: of the above, only control characters occur
             THEN regexp_matches(s, '[\x00-\x1F\x7F]')
         ELSE regexp_matches(s, '[\p{Cc}\p{Cf}\x{034F}\x{115F}\x{1160}\x{17B4}\x{17B5}\x{180B}-\x{180F}'
                                || '\x{2065}\x{2800}\x{3164}\x{FE00}-\x{FE0F}\x{FFA0}\x{FFF0}-\x{FFF8}'
                                || '\x{E0000}-\x{E0FFF}]|[^\PZ ]')
              -- Only combining marks. Every Mn and Me code point is removed by strip_accents(),
              -- so only a value it empties can be one; the pattern is joined to `left(s, 0)` (an
              -- empty text) so that RE2 compiles its large classes for those rare values alone,
              -- not for every statement that uses the macro (about 1 ms each time).
              OR CASE WHEN strip_accents(s) = ''
                      THEN regexp_full_match(s, '[\p{Mn}\p{Me}]+' || left(s, 0)) ELSE false END END;

-- has_invisible(strip(s)), with strip(s) written once: a macro repeats its argument wherever it
-- uses it, and every copy costs DuckDB time to bind and optimise each statement. The one-element
-- list is only built for the cells tested, which fail to parse: few.
CREATE OR REPLACE TEMP MACRO stripped_has_invisible(s) AS
    list_transform([strip(s)], lambda stripped: has_invisible(stripped))[1];

-- For an id after clean(): ids are matched exactly across files, so an invisible character is
-- rejected rather than removed (the export would not match the clinic's other systems).
CREATE OR REPLACE TEMP MACRO id_problem(id) AS
    CASE WHEN has_invisible(id)
         THEN 'the id contains an invisible or formatting character (zero-width, direction or '
              || 'variation mark, filler or blank, non-breaking space, tab or line break) or only '
              || 'combining marks; retype the id in the export' END;

CREATE OR REPLACE TEMP MACRO required_problem(s) AS
    CASE WHEN blank(s) THEN 'required value is empty; fill it in the export' END;

-- ---------------------------------------------------------------- numbers

-- The cast allows surrounding ASCII whitespace; trim() (only tried when the cast fails) also
-- removes non-breaking and other Unicode spaces.
CREATE OR REPLACE TEMP MACRO to_double(s) AS
    coalesce(try_cast(s AS DOUBLE), try_cast(trim(s) AS DOUBLE));

-- A finite number or NULL: "NaN", "Inf", "-inf" and overflowing values such as 1e400 are not
-- values (DuckDB's cast accepts them).
CREATE OR REPLACE TEMP MACRO finite(d) AS CASE WHEN isfinite(d) THEN d END;

CREATE OR REPLACE TEMP MACRO to_num(s) AS finite(to_double(s));

-- Whole numbers only: "3" and "3.0" are 3; "3.5", NaN and infinities are not whole numbers.
-- (A cast to INTEGER would round "3.5" to 4 and read "0x10" as hex, so go through DOUBLE.)
CREATE OR REPLACE TEMP MACRO whole(d) AS CASE WHEN abs(d) < 2e9 AND d = floor(d) THEN d::INTEGER END;

CREATE OR REPLACE TEMP MACRO to_int(s) AS whole(to_double(s));

CREATE OR REPLACE TEMP MACRO num_text(x) AS
    CASE WHEN x = floor(x) THEN CAST(CAST(x AS BIGINT) AS VARCHAR) ELSE CAST(x AS VARCHAR) END;

-- Why a non-blank cell that did not parse as a finite number is not one. `what` names the value.
CREATE OR REPLACE TEMP MACRO not_number_reason(raw, what) AS
    CASE WHEN isnan(to_double(raw))
             THEN 'not a number (NaN, written by the exporting system for a missing or failed '
                  || 'value); ' || what || ' must be a number: correct it in the export'
         WHEN isinf(to_double(raw))
             THEN 'infinite or too large to be a value (Inf, 1e400 …); ' || what
                  || ' must be a finite number: check the export'
         WHEN stripped_has_invisible(raw)
             THEN 'not a number: the cell holds an invisible character (zero-width space, tab '
                  || 'or line break); retype ' || what
         ELSE 'not a number; ' || what || ' must be a plain number with a decimal point' END;

-- value = to_num(raw): NULL when fine, else why (the range is a plausibility range).
CREATE OR REPLACE TEMP MACRO num_reason(raw, value, lo, hi, what) AS
    CASE WHEN value IS NOT NULL
             THEN CASE WHEN value < lo OR value > hi
                       THEN 'outside the plausible range ' || num_text(lo) || '–' || num_text(hi)
                            || ' for ' || what || '; check the value and its unit' END
         WHEN blank(raw) THEN NULL
         ELSE not_number_reason(raw, what) END;

CREATE OR REPLACE TEMP MACRO num_problem(raw, lo, hi, what) AS num_reason(raw, to_num(raw), lo, hi, what);

-- value = to_int(raw): as num_reason, for values that must be whole numbers.
CREATE OR REPLACE TEMP MACRO int_reason(raw, value, lo, hi, what) AS
    CASE WHEN value IS NOT NULL
             THEN CASE WHEN value < lo OR value > hi
                       THEN 'outside the plausible range ' || num_text(lo) || '–' || num_text(hi)
                            || ' for ' || what END
         WHEN blank(raw) THEN NULL
         WHEN to_num(raw) IS NOT NULL
             THEN 'not a whole number; ' || what || ' must be a whole number'
         ELSE not_number_reason(raw, what) END;

CREATE OR REPLACE TEMP MACRO int_problem(raw, lo, hi, what) AS int_reason(raw, to_int(raw), lo, hi, what);

-- ---------------------------------------------------------------- lists

-- A `;`-separated list: items trimmed and lower-cased, empty items dropped, NULL when none.
CREATE OR REPLACE TEMP MACRO split_any(s) AS
    nullif(list_filter(list_transform(string_split(s, ';'),
                                      lambda x: lower(trim(x, ' ' || chr(9) || chr(10) || chr(13) || chr(160)))),
                       lambda x: x <> ''), []);

-- The same; a list already written that way (the common case) is only split.
CREATE OR REPLACE TEMP MACRO split_list(s) AS
    CASE WHEN regexp_full_match(s, '[0-9a-z]+(;[0-9a-z]+)*') THEN string_split(s, ';')
         ELSE split_any(s) END;

-- Codes (CPT): as split_list, upper-cased.
CREATE OR REPLACE TEMP MACRO split_codes(s) AS
    CASE WHEN regexp_full_match(s, '[0-9A-Z]+(;[0-9A-Z]+)*') THEN string_split(s, ';')
         ELSE list_transform(split_any(s), lambda c: upper(c)) END;

-- ---------------------------------------------------------------- dates and times

-- ISO 8601 in clinic-local time (README "Input"): 2026-02-02, 2026-02-02T09:00, 2026-02-02 09:00:00(.f).
-- Checked before the cast because DuckDB's cast also reads 2026/03/04 and ignores any trailing
-- word ("2026-03-04 09:00 foo").
CREATE OR REPLACE TEMP MACRO ts_plain(t) AS
    regexp_full_match(t, '\d{4}-\d{1,2}-\d{1,2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?');

-- A date-time followed by a UTC offset or zone: Z, UTC, GMT, +01, +0100, +01:00, -05:00 (README:
-- the offset is dropped and the wall-clock time kept as clinic-local time). Zone names are not read.
CREATE OR REPLACE TEMP MACRO ts_zoned(t) AS
    regexp_full_match(t, '\d{4}-\d{1,2}-\d{1,2}[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?'
                         || ' ?(?:(?i:z|utc|gmt)|[+-](?:0\d|1[0-4])(?::?[0-5]\d)?)');

CREATE OR REPLACE TEMP MACRO ts_unzoned(t) AS
    regexp_replace(t, ' ?(?:(?i:z|utc|gmt)|[+-]\d\d(?::?\d\d)?)$', '');

-- The slow path: surrounding whitespace, or an offset to drop before the cast.
CREATE OR REPLACE TEMP MACRO ts_stripped(t) AS
    CASE WHEN ts_plain(t) THEN try_cast(t AS TIMESTAMP)
         WHEN ts_zoned(t) THEN try_cast(ts_unzoned(t) AS TIMESTAMP) END;

-- The timestamp, or NULL when the text is not one of the forms above (or no such day / hour).
CREATE OR REPLACE TEMP MACRO parse_ts(s) AS
    CASE WHEN ts_plain(s) THEN try_cast(s AS TIMESTAMP)
         -- ts_stripped(strip(s)), strip(s) written once (see stripped_has_invisible)
         ELSE list_transform([strip(s)], lambda stripped: ts_stripped(stripped))[1] END;

-- 1 when parse_ts(s) dropped a UTC offset or zone from s, else 0 (counted in the load report).
CREATE OR REPLACE TEMP MACRO ts_offset(s) AS
    CASE WHEN s IS NULL OR ts_plain(s) THEN 0 WHEN ts_zoned(strip(s)) THEN 1 ELSE 0 END;

-- Date-only: no time written, or exactly 00:00 (docs/definitions.md "Baseline"). Takes the parsed value.
CREATE OR REPLACE TEMP MACRO is_date_only(ts) AS ts = date_trunc('day', ts);

-- "4 March 2026", or NULL when there is no such day.
CREATE OR REPLACE TEMP MACRO long_date(y, m, d) AS
    strftime(try_cast(y || '-' || m || '-' || d AS DATE), '%-d %B %Y');

-- 04/03/2026, 4.3.2026, 04-03-2026 as whole numbers a, b and year y: say what it could be,
-- never guess (a clinic's export settles day or month order, this pipeline cannot).
CREATE OR REPLACE TEMP MACRO day_month_reason(a, b, y) AS
    'unparseable date: not an ISO date (YYYY-MM-DD); '
    || coalesce(
        CASE WHEN a <= 12 AND b <= 12 AND a <> b
                 THEN 'day-first and month-first dates cannot be told apart, so export the '
                      || 'column as YYYY-MM-DD (could be '
                      || strftime(try_cast(y || '-' || b || '-' || a AS DATE), '%-d %B')
                      || ' or ' || long_date(y, a, b) || ')'
             WHEN a > 12
                 THEN 'write it as YYYY-MM-DD (would be ' || long_date(y, b, a) || ', day first)'
             WHEN b > 12
                 THEN 'write it as YYYY-MM-DD (would be ' || long_date(y, a, b) || ', month first)'
             ELSE 'write it as YYYY-MM-DD (would be ' || long_date(y, a, b) || ')' END,
        'write dates as YYYY-MM-DD');

-- Excel's 1900 date system: serial 61 is 1900-03-01, so date = 1899-12-30 + serial days (the
-- fraction is the time of day). Not converted: a workbook may use the 1904 system (4 years and
-- 1 day later), and only the exporter knows which.
CREATE OR REPLACE TEMP MACRO excel_serial_text(n) AS
    CASE WHEN n = floor(n) THEN strftime(DATE '1899-12-30' + n::INTEGER, '%Y-%m-%d')
         ELSE strftime(TIMESTAMP '1899-12-30' + to_microseconds(round(n * 86400000000)::BIGINT),
                       '%Y-%m-%d %H:%M') END;

-- Why the (stripped) text t is not a timestamp. Values are named only in a trailing "(…)", which
-- the printed load report folds away (sql/load/top_rejects.sql).
CREATE OR REPLACE TEMP MACRO ts_text_problem(t) AS
    CASE WHEN ts_plain(t) OR ts_zoned(t)
             THEN 'impossible date or time (no such day or hour); correct it in the export'
         WHEN regexp_full_match(t, '\d{4}-\d{1,2}-\d{1,2}[Tt ].*')
             THEN 'unparseable date: the time or time zone after the date cannot be read; write '
                  || 'the time as 09:00 or 09:00:00, optionally followed by Z or an offset such '
                  || 'as +01:00 (zone names such as Europe/Berlin are not read)'
         WHEN regexp_full_match(t, '(1[89]|2[01])\d\d')
             THEN 'unparseable date: only a year; give the full date as YYYY-MM-DD'
         WHEN regexp_full_match(t, '\d{2,7}(\.\d+)?')
              AND try_cast(t AS DOUBLE) BETWEEN 61 AND 2958466
             THEN 'unparseable date: looks like an Excel serial date (a day count, not a date); '
                  || 'format the column as a date (YYYY-MM-DD) in the workbook and export again '
                  || '(would be ' || excel_serial_text(try_cast(t AS DOUBLE))
                  || ' in Excel''s 1900 date system)'
         WHEN regexp_full_match(t, '(1[89]|2[01])\d{6}')
             THEN 'unparseable date: no separators; write it as YYYY-MM-DD'
                  || coalesce(' (would be ' || strftime(try_strptime(t, '%Y%m%d'), '%Y-%m-%d') || ')', '')
         WHEN regexp_full_match(t, '\d{4}[/.]\d{1,2}[/.]\d{1,2}(?:[Tt ].*)?')
             THEN 'unparseable date: not an ISO date; separate year, month and day with "-" as in '
                  || '2026-02-02'
                  || coalesce(' (would be ' || strftime(try_cast(regexp_replace(
                        regexp_extract(t, '^\d{4}[/.]\d{1,2}[/.]\d{1,2}'), '[/.]', '-', 'g') AS DATE),
                        '%Y-%m-%d') || ')', '')
         WHEN regexp_full_match(t, '\d{1,2}[/.-]\d{1,2}[/.-]\d{4}(?:[Tt ,].*)?')
             -- each number written once (day_month_reason uses each several times)
             THEN list_transform([[try_cast(regexp_extract(t, '^(\d{1,2})', 1) AS INTEGER),
                                   try_cast(regexp_extract(t, '^\d{1,2}[/.-](\d{1,2})', 1) AS INTEGER),
                                   try_cast(regexp_extract(t, '^\d{1,2}[/.-]\d{1,2}[/.-](\d{4})', 1) AS INTEGER)]],
                                 lambda n: day_month_reason(n[1], n[2], n[3]))[1]
    END;

-- raw: the cell; parsed: parse_ts(raw). Dates before 1900 and after the day of the load are
-- implausible (docs/bad-input-values.md).
CREATE OR REPLACE TEMP MACRO ts_problem(raw, parsed, load_date) AS
    CASE WHEN blank(raw) THEN NULL
         WHEN parsed IS NULL
             -- ts_text_problem(strip(raw)), strip(raw) written once (see stripped_has_invisible)
             THEN coalesce(list_transform([strip(raw)], lambda stripped: ts_text_problem(stripped))[1],
                           'unparseable date; use ISO 8601 such as 2026-02-02 or 2026-02-02T09:00')
         WHEN parsed::DATE > load_date
             THEN 'date is later than the day of the load (' || load_date::VARCHAR
                  || '); check the year or the clock of the exporting system'
         WHEN parsed < TIMESTAMP '1900-01-01'
             THEN 'implausible date before 1900; check the year'
    END;

-- ---------------------------------------------------------------- problems

-- One failed rule of a row: the column, the value as written and the reason (NULL: no problem).
CREATE OR REPLACE TEMP MACRO problem(col, val, why) AS
    struct_pack("column" := col, value := val::VARCHAR, reason := why);

-- ---------------------------------------------------------------- other tables

-- The day of the load (settings), as a variable: a value known when a statement is bound,
-- where a subquery would be planned as a join in every statement (twice per ts_problem).
SET VARIABLE load_date = (SELECT load_date FROM settings);
CREATE OR REPLACE TEMP MACRO load_day() AS getvariable('load_date');
