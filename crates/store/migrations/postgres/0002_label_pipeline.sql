-- The label pipeline's durable state.

-- One row per investigation that has feedback. Storing feedback enqueues (or re-arms) its job in
-- the same transaction. `generation` counts feedback arrivals; `attempts` counts claims and
-- fences them: only the latest claim may finish or defer the job.
CREATE TABLE label_jobs (
    tenant          TEXT    NOT NULL,
    trace_id        BYTEA   NOT NULL,
    state           TEXT    NOT NULL,
    due_at          BIGINT  NOT NULL,
    lease_until     BIGINT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    generation      BIGINT  NOT NULL DEFAULT 1,
    first_queued_at BIGINT  NOT NULL,
    last_error      TEXT,
    PRIMARY KEY (tenant, trace_id)
);
CREATE INDEX label_jobs_due ON label_jobs (due_at) WHERE state = 'pending';

-- Where each feedback ended: 'pending', 'candidate' (detail = candidate id) or 'not_candidate'
-- (detail = the reason).
ALTER TABLE feedback ADD COLUMN label_state TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE feedback ADD COLUMN label_detail TEXT;

-- The world snapshot of each investigation: one row per query, its capture deadline and status.
-- `lease_until` is also the claim's fencing token.
CREATE TABLE snapshot_queries (
    tenant      TEXT   NOT NULL,
    trace_id    BYTEA  NOT NULL,
    query_id    TEXT   NOT NULL,
    deadline    BIGINT NOT NULL,
    status      TEXT   NOT NULL,
    planned_at  BIGINT NOT NULL,
    due_at      BIGINT NOT NULL,
    lease_until BIGINT,
    result_blob TEXT,
    body        TEXT   NOT NULL,
    PRIMARY KEY (tenant, trace_id, query_id)
);
-- Earliest deadline first; `planned_at` serves first-in-first-out for comparison.
CREATE INDEX snapshot_queries_pending ON snapshot_queries (deadline) WHERE status = 'pending';
CREATE INDEX snapshot_queries_pending_fifo ON snapshot_queries (planned_at) WHERE status = 'pending';
CREATE INDEX snapshot_queries_by_blob ON snapshot_queries (result_blob) WHERE result_blob IS NOT NULL;

-- Every drafted version of a candidate label; `current` marks the latest per investigation.
-- Keyed per tenant from the start (SQLite re-keys its table in 0004).
CREATE TABLE candidates (
    id          TEXT    NOT NULL,
    tenant      TEXT    NOT NULL,
    trace_id    BYTEA   NOT NULL,
    version     INTEGER NOT NULL,
    current     BOOLEAN NOT NULL,
    route       TEXT    NOT NULL,
    audit       BOOLEAN NOT NULL,
    created_at  BIGINT  NOT NULL,
    body        TEXT    NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, trace_id, version)
);
CREATE INDEX candidates_current ON candidates (tenant, route, created_at) WHERE current;
