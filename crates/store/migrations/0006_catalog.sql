-- Each tenant's entity catalog: the names its world is made of, learned from traces, tool calls,
-- Prometheus label values, static files and reviewers. Aliases and dependencies are JSON arrays.
CREATE TABLE catalog_entries (
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT,
    workload    TEXT,
    aliases     TEXT NOT NULL DEFAULT '[]',
    team        TEXT,
    depends_on  TEXT NOT NULL DEFAULT '[]',
    provenance  TEXT NOT NULL,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (tenant, name)
) WITHOUT ROWID;

-- Listing by provenance and retention of names no longer observed.
CREATE INDEX catalog_entries_by_provenance ON catalog_entries (tenant, provenance, name);
CREATE INDEX catalog_entries_by_last_seen ON catalog_entries (last_seen);
