-- Each run's verdict on each label it graded: the attempts (outcome, reason, every grader's
-- verdict and reason) as a JSON array, so a label's history across runs is one read of the
-- primary key's (tenant, label_id, started_at) prefix instead of a scan of every run's body.
-- Storing a run again replaces its rows (found through eval_label_runs_by_run).
CREATE TABLE eval_label_runs (
    tenant         TEXT    NOT NULL,
    label_id       TEXT    NOT NULL,
    started_at     BIGINT  NOT NULL,
    run_id         TEXT    NOT NULL,
    agent          TEXT    NOT NULL,
    label_source   TEXT    NOT NULL,
    label_version  INTEGER NOT NULL,
    attempts       TEXT    NOT NULL,
    PRIMARY KEY (tenant, label_id, started_at, run_id)
);
CREATE INDEX eval_label_runs_by_run ON eval_label_runs (tenant, run_id);

-- The runs stored before this table, their labels named as the run format 2 names them: a
-- candidate id `cand-<32 hex>-v<n>` becomes the label id `lbl-<32 hex>`.
INSERT INTO eval_label_runs
    (tenant, label_id, started_at, run_id, agent, label_source, label_version, attempts)
SELECT r.tenant,
       CASE WHEN x.value->>'label_id' LIKE 'cand-%'
                 AND substr(x.value->>'label_id', 38, 2) = '-v'
            THEN 'lbl-' || substr(x.value->>'label_id', 6, 32)
            ELSE x.value->>'label_id' END AS label,
       r.started_at,
       r.id,
       r.agent,
       coalesce(r.body::jsonb->>'label_source', ''),
       max((x.value->>'label_version')::integer),
       jsonb_agg(jsonb_build_object(
           'attempt', (x.value->>'attempt')::integer,
           'outcome', x.value->>'outcome',
           'reason', coalesce(x.value->>'reason', ''),
           'grades', coalesce(x.value->'grades', '[]'::jsonb))
         ORDER BY (x.value->>'attempt')::integer)::text
FROM eval_runs r
CROSS JOIN LATERAL jsonb_array_elements(r.body::jsonb->'results') AS x(value)
GROUP BY r.tenant, r.id, r.started_at, r.agent, r.body, label;
