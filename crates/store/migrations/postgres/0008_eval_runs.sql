-- Evaluation runs: the body holds the whole run in the versioned encoding; the columns are for
-- listing.
CREATE TABLE eval_runs (
    tenant      TEXT   NOT NULL,
    id          TEXT   NOT NULL,
    started_at  BIGINT NOT NULL,
    agent       TEXT   NOT NULL,
    status      TEXT   NOT NULL,
    body        TEXT   NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX eval_runs_by_start ON eval_runs (tenant, started_at);
