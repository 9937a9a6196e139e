-- Review decisions, immutable label versions and releases.

-- One row per label version. A version is never changed: approving, editing or rejecting adds
-- the next one (`decided` = 1, with the action), and the validator's admission adds the first of
-- an admitted label (`decided` = 0). `digest` is the SHA-256 of the version's JSON, which
-- release ids are made from.
CREATE TABLE label_versions (
    tenant       TEXT    NOT NULL,
    trace_id     BLOB    NOT NULL,
    version      INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    candidate_id TEXT    NOT NULL,
    decided      INTEGER NOT NULL,
    action       TEXT,
    audit        INTEGER NOT NULL DEFAULT 0,
    agrees       INTEGER,
    created_at   INTEGER NOT NULL,
    digest       TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    PRIMARY KEY (tenant, trace_id, version)
) WITHOUT ROWID;
CREATE INDEX label_versions_by_candidate ON label_versions (tenant, candidate_id);
CREATE TRIGGER label_versions_are_immutable BEFORE UPDATE ON label_versions
BEGIN
    SELECT RAISE(ABORT, 'label versions are immutable');
END;

-- A release: a named selection of label versions whose id is a content hash of the selection.
-- `body` is the release as shown, with its coverage computed when it was created.
CREATE TABLE releases (
    tenant     TEXT    NOT NULL,
    id         TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE TABLE release_items (
    tenant     TEXT    NOT NULL,
    release_id TEXT    NOT NULL,
    trace_id   BLOB    NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (tenant, release_id, trace_id)
) WITHOUT ROWID;
