-- Review decisions, immutable label versions and releases.

-- One row per label version, never changed: a trigger refuses UPDATE.
CREATE TABLE label_versions (
    tenant       TEXT    NOT NULL,
    trace_id     BYTEA   NOT NULL,
    version      INTEGER NOT NULL,
    state        TEXT    NOT NULL,
    candidate_id TEXT    NOT NULL,
    decided      BOOLEAN NOT NULL,
    action       TEXT,
    audit        BOOLEAN NOT NULL DEFAULT FALSE,
    agrees       BOOLEAN,
    created_at   BIGINT  NOT NULL,
    digest       TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    PRIMARY KEY (tenant, trace_id, version)
);
CREATE INDEX label_versions_by_candidate ON label_versions (tenant, candidate_id);

CREATE FUNCTION label_versions_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'label versions are immutable';
END;
$$;
CREATE TRIGGER label_versions_are_immutable BEFORE UPDATE ON label_versions
    FOR EACH ROW EXECUTE FUNCTION label_versions_refuse_update();

-- A release: a named selection of label versions whose id is a content hash of the selection.
CREATE TABLE releases (
    tenant     TEXT   NOT NULL,
    id         TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    body       TEXT   NOT NULL,
    PRIMARY KEY (tenant, id)
);

CREATE TABLE release_items (
    tenant     TEXT    NOT NULL,
    release_id TEXT    NOT NULL,
    trace_id   BYTEA   NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (tenant, release_id, trace_id)
);
