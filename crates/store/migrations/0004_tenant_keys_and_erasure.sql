-- Ids that name a tenant's object are unique within that tenant only. Candidate ids are derived
-- from trace ids (`cand-<trace id>-v<n>`), and trace ids cross organisations in `traceparent`
-- headers, so two tenants can draft a label for the same trace id: the key is (tenant, id).
CREATE TABLE candidates_by_tenant (
    id          TEXT    NOT NULL,
    tenant      TEXT    NOT NULL,
    trace_id    BLOB    NOT NULL,
    version     INTEGER NOT NULL,
    current     INTEGER NOT NULL,
    route       TEXT    NOT NULL,
    audit       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, trace_id, version)
);
INSERT INTO candidates_by_tenant (id, tenant, trace_id, version, current, route, audit, created_at, body)
    SELECT id, tenant, trace_id, version, current, route, audit, created_at, body FROM candidates;
DROP TABLE candidates;
ALTER TABLE candidates_by_tenant RENAME TO candidates;
CREATE INDEX candidates_current ON candidates (tenant, route, created_at) WHERE current = 1;

-- Feedback ids are server-made UUIDs, but the key follows the same rule: (tenant, id). The user
-- id gets its own column so a user's feedback can be found (and erased) without reading bodies.
CREATE TABLE feedback_by_tenant (
    id               BLOB    NOT NULL,
    tenant           TEXT    NOT NULL,
    investigation_id BLOB,
    span_id          BLOB,
    received_at      INTEGER NOT NULL,
    body             TEXT    NOT NULL,
    idempotency_key  TEXT,
    label_state      TEXT    NOT NULL DEFAULT 'pending',
    label_detail     TEXT,
    user_id          TEXT,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, idempotency_key)
);
INSERT INTO feedback_by_tenant
    (id, tenant, investigation_id, span_id, received_at, body, idempotency_key, label_state,
     label_detail, user_id)
    SELECT id, tenant, investigation_id, span_id, received_at, body, idempotency_key, label_state,
           label_detail, json_extract(body, '$.user_id')
    FROM feedback;
DROP TABLE feedback;
ALTER TABLE feedback_by_tenant RENAME TO feedback;
CREATE INDEX feedback_by_investigation ON feedback (tenant, investigation_id);
CREATE INDEX feedback_awaiting_trace ON feedback (tenant, span_id) WHERE investigation_id IS NULL;
CREATE INDEX feedback_by_label_state ON feedback (tenant, label_state);
CREATE INDEX feedback_by_user ON feedback (tenant, user_id) WHERE user_id IS NOT NULL;

-- The highest candidate version ever drafted for the investigation, so a version withdrawn by an
-- erasure is never reused for different content.
ALTER TABLE label_jobs ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0;
UPDATE label_jobs SET last_version = COALESCE(
    (SELECT MAX(version) FROM candidates AS c
     WHERE c.tenant = label_jobs.tenant AND c.trace_id = label_jobs.trace_id), 0);

-- Who asked for which user's feedback to be erased, and what was erased. Never the erased text:
-- the user id is kept only as a SHA-256 digest.
CREATE TABLE erasures (
    id                TEXT    NOT NULL,
    tenant            TEXT    NOT NULL,
    requested_by      TEXT    NOT NULL,
    requested_at      INTEGER NOT NULL,
    user_id_sha256    TEXT    NOT NULL,
    feedback_erased   INTEGER NOT NULL,
    labels_withdrawn  INTEGER NOT NULL,
    labels_redrafted  INTEGER NOT NULL,
    queries_removed   INTEGER NOT NULL,
    blobs_released    INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);
