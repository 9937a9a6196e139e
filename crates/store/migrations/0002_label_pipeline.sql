-- The label pipeline's durable state.

-- One row per investigation that has feedback. Storing feedback enqueues (or re-arms) its job in
-- the same transaction, so no acknowledged feedback is ever without pending work. `generation`
-- counts feedback arrivals: a job finished against an older generation runs again.
CREATE TABLE label_jobs (
    tenant      TEXT    NOT NULL,
    trace_id    BLOB    NOT NULL,
    state       TEXT    NOT NULL,
    due_at      INTEGER NOT NULL,
    lease_until INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    generation  INTEGER NOT NULL DEFAULT 1,
    first_queued_at INTEGER NOT NULL,
    last_error  TEXT,
    PRIMARY KEY (tenant, trace_id)
) WITHOUT ROWID;
CREATE INDEX label_jobs_due ON label_jobs (due_at) WHERE state = 'pending';

-- Where each feedback ended: 'pending', 'candidate' (detail = candidate id) or 'not_candidate'
-- (detail = the reason).
ALTER TABLE feedback ADD COLUMN label_state TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE feedback ADD COLUMN label_detail TEXT;

-- The world snapshot of each investigation: one row per query, its capture deadline and status.
CREATE TABLE snapshot_queries (
    tenant      TEXT    NOT NULL,
    trace_id    BLOB    NOT NULL,
    query_id    TEXT    NOT NULL,
    deadline    INTEGER NOT NULL,
    status      TEXT    NOT NULL,
    planned_at  INTEGER NOT NULL,
    due_at      INTEGER NOT NULL,
    lease_until INTEGER,
    result_blob TEXT,
    body        TEXT    NOT NULL,
    PRIMARY KEY (tenant, trace_id, query_id)
) WITHOUT ROWID;
-- Earliest deadline first; `planned_at` serves first-in-first-out for comparison.
CREATE INDEX snapshot_queries_pending ON snapshot_queries (deadline) WHERE status = 'pending';
CREATE INDEX snapshot_queries_pending_fifo ON snapshot_queries (planned_at) WHERE status = 'pending';
CREATE INDEX snapshot_queries_by_blob ON snapshot_queries (result_blob) WHERE result_blob IS NOT NULL;

-- Every drafted version of a candidate label; `current` marks the latest per investigation.
CREATE TABLE candidates (
    id          TEXT    NOT NULL PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    trace_id    BLOB    NOT NULL,
    version     INTEGER NOT NULL,
    current     INTEGER NOT NULL,
    route       TEXT    NOT NULL,
    audit       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    UNIQUE (tenant, trace_id, version)
);
CREATE INDEX candidates_current ON candidates (tenant, route, created_at) WHERE current = 1;
