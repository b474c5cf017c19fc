-- Empty result tables of one mapped file (pipeline/ingest/mapped.py, README "Loading your EHR's export"):
-- mapping_rejects: values not in their value map or not matching their date format, at their line;
-- mapped_original: values the mapping changed, as the export wrote them (for reject messages).
CREATE OR REPLACE TEMP TABLE mapping_rejects
    (line BIGINT, "column" VARCHAR, value VARCHAR, reason VARCHAR);
CREATE OR REPLACE TEMP TABLE mapped_original
    (line BIGINT, "column" VARCHAR, value VARCHAR);
