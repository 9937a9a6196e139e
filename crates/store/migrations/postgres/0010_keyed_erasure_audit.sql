-- Secrets of this installation, created on first use. `erasure` keys the HMAC by which the
-- erasure audit log names a user and by which erased idempotency keys are remembered: whoever
-- holds the database can still check "was user X erased?", the log alone cannot be reversed by
-- hashing guessed ids.
CREATE TABLE installation_secrets (
    name  TEXT  NOT NULL PRIMARY KEY,
    value BYTEA NOT NULL
);

-- An erasure names what it erased: `user` (every feedback of one user; `subject_id` is the hex
-- HMAC-SHA256, under the `erasure` secret, of the user id's SHA-256) or `feedback` (one feedback;
-- `subject_id` is its id). The Postgres store never wrote unkeyed rows, so there is nothing to
-- convert: the old column goes.
ALTER TABLE erasures DROP COLUMN user_id_sha256;
ALTER TABLE erasures ADD COLUMN subject    TEXT NOT NULL;
ALTER TABLE erasures ADD COLUMN subject_id TEXT NOT NULL;
CREATE INDEX erasures_by_subject_id ON erasures (tenant, subject, subject_id);

-- Idempotency keys of erased feedback (hex HMAC under the `erasure` secret), so a client's retry
-- after an erasure is refused instead of storing the erased feedback again.
CREATE TABLE erased_idempotency_keys (
    tenant     TEXT   NOT NULL,
    key_hmac   TEXT   NOT NULL,
    erased_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant, key_hmac)
);
