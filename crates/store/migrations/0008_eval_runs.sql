-- Evaluation runs: a candidate agent replayed on a list of label versions. The body holds the
-- whole run (results, grades and traces) in the versioned encoding; the columns are for listing.
CREATE TABLE eval_runs (
    tenant      TEXT NOT NULL,
    id          TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    agent       TEXT NOT NULL,
    status      TEXT NOT NULL,
    body        TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) WITHOUT ROWID;

CREATE INDEX eval_runs_by_start ON eval_runs (tenant, started_at);
