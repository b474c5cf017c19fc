-- rejected_rows, row_status and kept as sql/merge/classify.sql leaves them for a file that matches
-- no current row (its table is empty) and repeats no key (sql/merge/repeat_keys.sql): the lines
-- with a problem are rejected, every valid line is added. Read by sql/load/rejects.sql.
CREATE OR REPLACE TEMP TABLE rejected_rows AS SELECT * FROM typed WHERE __problems IS NOT NULL;
CREATE OR REPLACE TEMP TABLE row_status (__line BIGINT, verdict VARCHAR, reason VARCHAR, __rowid BIGINT);
CREATE OR REPLACE TEMP TABLE kept (__line BIGINT, __rowid BIGINT, load_id INTEGER);
