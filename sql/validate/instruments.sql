-- The instrument registry as session variables, for validation to look up without a join (a
-- join would not keep the order rows are read in, sql/validate/assessments.sql):
--   instrument_named: names as usually written (the registry's own names and the alias keys)
--                     -> instrument; most rows name an instrument this way;
--   instrument_keyed: alias key (upper case, letters and digits only) -> instrument;
--   registry:         instrument -> its item count, item and total ranges and scoring;
--   instrument_names: the registry's names, sorted, for the message on an unknown instrument.
-- A name found in instrument_named gives the instrument its key would give.
SET VARIABLE instrument_named = (
    SELECT map(list(w.written), list(a.instrument))
    FROM (SELECT instrument AS written FROM instrument_aliases
          UNION SELECT alias_key FROM instrument_aliases) w
    JOIN instrument_aliases a ON a.alias_key = regexp_replace(upper(w.written), '[^0-9A-Z]', '', 'g'));

SET VARIABLE instrument_keyed = (SELECT map(list(alias_key), list(instrument)) FROM instrument_aliases);

SET VARIABLE registry = (
    SELECT map(list(name), list(struct_pack(item_count, item_min, item_max, scoring, total_min,
                                            total_max)))
    FROM instruments);

SET VARIABLE instrument_names = (SELECT string_agg(name, ', ' ORDER BY name) FROM instruments);
