-- Each run's verdict on each label it graded: the attempts (outcome, reason, every grader's
-- verdict and reason) as a JSON array, so a label's history across runs is one read of the
-- primary key's (tenant, label_id, started_at) prefix instead of a scan of every run's body.
-- Storing a run again replaces its rows (found through eval_label_runs_by_run).
CREATE TABLE eval_label_runs (
    tenant         TEXT    NOT NULL,
    label_id       TEXT    NOT NULL,
    started_at     INTEGER NOT NULL,
    run_id         TEXT    NOT NULL,
    agent          TEXT    NOT NULL,
    label_source   TEXT    NOT NULL,
    label_version  INTEGER NOT NULL,
    attempts       TEXT    NOT NULL,
    PRIMARY KEY (tenant, label_id, started_at, run_id)
) WITHOUT ROWID;

CREATE INDEX eval_label_runs_by_run ON eval_label_runs (tenant, run_id);

-- The runs stored before this table, their labels named as the run format 2 names them: a
-- candidate id `cand-<32 hex>-v<n>` becomes the label id `lbl-<32 hex>`.
INSERT INTO eval_label_runs
    (tenant, label_id, started_at, run_id, agent, label_source, label_version, attempts)
SELECT r.tenant,
       CASE WHEN json_extract(x.value, '$.label_id') LIKE 'cand-%'
                 AND substr(json_extract(x.value, '$.label_id'), 38, 2) = '-v'
            THEN 'lbl-' || substr(json_extract(x.value, '$.label_id'), 6, 32)
            ELSE json_extract(x.value, '$.label_id') END AS label,
       r.started_at,
       r.id,
       r.agent,
       coalesce(json_extract(r.body, '$.label_source'), ''),
       max(json_extract(x.value, '$.label_version')),
       json_group_array(json_object(
           'attempt', json_extract(x.value, '$.attempt'),
           'outcome', json_extract(x.value, '$.outcome'),
           'reason', coalesce(json_extract(x.value, '$.reason'), ''),
           'grades', json(coalesce(json_extract(x.value, '$.grades'), '[]'))))
FROM eval_runs r, json_each(r.body, '$.results') x
GROUP BY r.tenant, r.id, label;
