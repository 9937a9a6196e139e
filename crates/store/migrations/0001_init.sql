-- Investigations are assembled from steps at read time; this row records when the trace was seen,
-- for retention.
CREATE TABLE investigations (
    tenant      TEXT    NOT NULL,
    trace_id    BLOB    NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (tenant, trace_id)
) WITHOUT ROWID;
CREATE INDEX investigations_by_last_seen ON investigations (last_seen);

-- One row per span. `body` is the step as JSON without its tool result, which lives inline or in
-- the blob store when large.
CREATE TABLE steps (
    tenant        TEXT    NOT NULL,
    trace_id      BLOB    NOT NULL,
    span_id       BLOB    NOT NULL,
    body          TEXT    NOT NULL,
    result_inline TEXT,
    result_blob   TEXT,
    PRIMARY KEY (tenant, trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX steps_by_span ON steps (tenant, span_id);
CREATE INDEX steps_by_blob ON steps (result_blob) WHERE result_blob IS NOT NULL;

CREATE TABLE feedback (
    id               BLOB    NOT NULL PRIMARY KEY,
    tenant           TEXT    NOT NULL,
    investigation_id BLOB,
    span_id          BLOB,
    received_at      INTEGER NOT NULL,
    body             TEXT    NOT NULL,
    idempotency_key  TEXT,
    UNIQUE (tenant, idempotency_key)
);
CREATE INDEX feedback_by_investigation ON feedback (tenant, investigation_id);
-- Feedback that named only a span whose trace has not arrived yet.
CREATE INDEX feedback_awaiting_trace ON feedback (tenant, span_id) WHERE investigation_id IS NULL;

CREATE TABLE api_keys (
    id            TEXT    NOT NULL PRIMARY KEY,
    tenant        TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    scopes        TEXT    NOT NULL,
    secret_sha256 BLOB    NOT NULL UNIQUE,
    created_at    INTEGER NOT NULL
);
