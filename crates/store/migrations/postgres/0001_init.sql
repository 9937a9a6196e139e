-- Investigations are assembled from steps at read time; this row records when the trace was seen,
-- for retention. Times are integer nanoseconds since the epoch (the store's clock, never the
-- database's), ids are bytes, bodies are the versioned JSON encoding as text.
CREATE TABLE investigations (
    tenant      TEXT   NOT NULL,
    trace_id    BYTEA  NOT NULL,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    PRIMARY KEY (tenant, trace_id)
);
CREATE INDEX investigations_by_last_seen ON investigations (last_seen);

-- One row per span. `body` is the step without its tool result, which lives inline or in the
-- blob store when large.
CREATE TABLE steps (
    tenant        TEXT  NOT NULL,
    trace_id      BYTEA NOT NULL,
    span_id       BYTEA NOT NULL,
    body          TEXT  NOT NULL,
    result_inline TEXT,
    result_blob   TEXT,
    PRIMARY KEY (tenant, trace_id, span_id)
);
CREATE INDEX steps_by_span ON steps (tenant, span_id);
CREATE INDEX steps_by_blob ON steps (result_blob) WHERE result_blob IS NOT NULL;

-- Keyed per tenant from the start (SQLite re-keys its table in 0004). The unique idempotency key
-- is what makes a retried submission a replay across every server sharing the database.
CREATE TABLE feedback (
    id               BYTEA  NOT NULL,
    tenant           TEXT   NOT NULL,
    investigation_id BYTEA,
    span_id          BYTEA,
    received_at      BIGINT NOT NULL,
    body             TEXT   NOT NULL,
    idempotency_key  TEXT,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, idempotency_key)
);
CREATE INDEX feedback_by_investigation ON feedback (tenant, investigation_id);
-- Feedback that named only a span whose trace has not arrived yet.
CREATE INDEX feedback_awaiting_trace ON feedback (tenant, span_id) WHERE investigation_id IS NULL;

-- `position` keeps creation order among keys created at the same instant.
CREATE TABLE api_keys (
    id            TEXT   NOT NULL PRIMARY KEY,
    tenant        TEXT   NOT NULL,
    name          TEXT   NOT NULL,
    scopes        TEXT   NOT NULL,
    secret_sha256 BYTEA  NOT NULL UNIQUE,
    created_at    BIGINT NOT NULL,
    position      BIGINT GENERATED ALWAYS AS IDENTITY
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at, position);
