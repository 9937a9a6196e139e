-- Candidates and feedback are keyed per tenant since 0001/0002 here. What remains of this change:
-- the user id column that erasure finds a user's feedback by, the highest version ever drafted
-- per investigation, and the erasure audit log.
ALTER TABLE feedback ADD COLUMN user_id TEXT;
CREATE INDEX feedback_by_user ON feedback (tenant, user_id) WHERE user_id IS NOT NULL;

ALTER TABLE label_jobs ADD COLUMN last_version INTEGER NOT NULL DEFAULT 0;

CREATE TABLE erasures (
    id                TEXT   NOT NULL,
    tenant            TEXT   NOT NULL,
    requested_by      TEXT   NOT NULL,
    requested_at      BIGINT NOT NULL,
    user_id_sha256    TEXT   NOT NULL,
    feedback_erased   BIGINT NOT NULL,
    labels_withdrawn  BIGINT NOT NULL,
    labels_redrafted  BIGINT NOT NULL,
    queries_removed   BIGINT NOT NULL,
    blobs_released    BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
