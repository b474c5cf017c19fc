-- load_day: the load the connection shows (the latest, or load N under `--load N`, whose pinned
-- `loads` view holds loads 1..N) and the day it was loaded: the day ingest judged dates against
-- (no date after it loads), the last day the data can describe. docs/definitions.md "As-of date".
-- No row before the first load.
SELECT load_id, loaded_at::DATE AS load_day
FROM loads
ORDER BY load_id DESC, loaded_at DESC
LIMIT 1
