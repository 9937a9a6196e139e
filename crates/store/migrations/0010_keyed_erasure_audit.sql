-- Secrets of this installation, created on first use. `erasure` keys the HMAC by which the
-- erasure audit log names a user and by which erased idempotency keys are remembered: whoever
-- holds the database can still check "was user X erased?", the log alone cannot be reversed by
-- hashing guessed ids.
CREATE TABLE installation_secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL
);

-- An erasure names what it erased: `user` (every feedback of one user; `subject_id` is the hex
-- HMAC-SHA256, under the `erasure` secret, of the user id's SHA-256) or `feedback` (one feedback;
-- `subject_id` is its id). Rows written before this migration named the user by an unsalted
-- SHA-256; they are copied as `sha256:<digest>` and keyed in place when the store opens.
CREATE TABLE erasures_by_subject (
    id                TEXT    NOT NULL,
    tenant            TEXT    NOT NULL,
    requested_by      TEXT    NOT NULL,
    requested_at      INTEGER NOT NULL,
    subject           TEXT    NOT NULL,
    subject_id        TEXT    NOT NULL,
    feedback_erased   INTEGER NOT NULL,
    labels_withdrawn  INTEGER NOT NULL,
    labels_redrafted  INTEGER NOT NULL,
    queries_removed   INTEGER NOT NULL,
    blobs_released    INTEGER NOT NULL,
    PRIMARY KEY (tenant, id)
);
INSERT INTO erasures_by_subject
    (id, tenant, requested_by, requested_at, subject, subject_id, feedback_erased,
     labels_withdrawn, labels_redrafted, queries_removed, blobs_released)
    SELECT id, tenant, requested_by, requested_at, 'user', 'sha256:' || user_id_sha256,
           feedback_erased, labels_withdrawn, labels_redrafted, queries_removed, blobs_released
    FROM erasures;
DROP TABLE erasures;
ALTER TABLE erasures_by_subject RENAME TO erasures;
CREATE INDEX erasures_by_subject_id ON erasures (tenant, subject, subject_id);

-- Idempotency keys of erased feedback (hex HMAC under the `erasure` secret), so a client's retry
-- after an erasure is refused instead of storing the erased feedback again.
CREATE TABLE erased_idempotency_keys (
    tenant     TEXT    NOT NULL,
    key_hmac   TEXT    NOT NULL,
    erased_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, key_hmac)
);
