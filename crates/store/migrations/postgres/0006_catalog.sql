-- Each tenant's entity catalog. Aliases and dependencies are JSON arrays (text).
CREATE TABLE catalog_entries (
    tenant      TEXT   NOT NULL,
    name        TEXT   NOT NULL,
    kind        TEXT,
    workload    TEXT,
    aliases     TEXT   NOT NULL DEFAULT '[]',
    team        TEXT,
    depends_on  TEXT   NOT NULL DEFAULT '[]',
    provenance  TEXT   NOT NULL,
    first_seen  BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    PRIMARY KEY (tenant, name)
);
CREATE INDEX catalog_entries_by_provenance ON catalog_entries (tenant, provenance, name);
CREATE INDEX catalog_entries_by_last_seen ON catalog_entries (last_seen);
