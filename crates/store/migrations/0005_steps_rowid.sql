-- Steps move from a WITHOUT ROWID table (the whole row stored in the primary-key B-tree) to an
-- ordinary rowid table with a unique index on the same key. Step rows are large (about a kilobyte
-- with their inline tool result), which makes WITHOUT ROWID inserts split and rewrite wide pages;
-- appending to a rowid table and a narrow index costs less than half as much per row. Reads by
-- trace use the unique index, which keeps a trace's steps together.
CREATE TABLE steps_rowid (
    tenant        TEXT    NOT NULL,
    trace_id      BLOB    NOT NULL,
    span_id       BLOB    NOT NULL,
    body          TEXT    NOT NULL,
    result_inline TEXT,
    result_blob   TEXT
);
INSERT INTO steps_rowid (tenant, trace_id, span_id, body, result_inline, result_blob)
    SELECT tenant, trace_id, span_id, body, result_inline, result_blob FROM steps
    ORDER BY tenant, trace_id, span_id;
DROP TABLE steps;
ALTER TABLE steps_rowid RENAME TO steps;
CREATE UNIQUE INDEX steps_by_trace ON steps (tenant, trace_id, span_id);
CREATE INDEX steps_by_span ON steps (tenant, span_id);
CREATE INDEX steps_by_blob ON steps (result_blob) WHERE result_blob IS NOT NULL;
