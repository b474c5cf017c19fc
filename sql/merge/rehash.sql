-- After merge.keep_absent_values copied current values into typed: the rows' hashes from the
-- values now held (macro row_values, sql/validate/<table>.sql).
CREATE OR REPLACE TEMP TABLE rehashed AS
SELECT __line, hash(row_struct) AS row_hash FROM row_values('typed');

UPDATE typed SET row_hash = r.row_hash
FROM rehashed r
WHERE typed.__line = r.__line;
