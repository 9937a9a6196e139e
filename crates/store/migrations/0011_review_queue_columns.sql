-- What the review queue filters on, out of the candidate's body: its lowest score as a column
-- and its segments as rows, so the queue is an indexed read that decodes only the page it shows.
-- Both are written with every candidate and backfilled here.
ALTER TABLE candidates ADD COLUMN lowest_score REAL;
UPDATE candidates SET lowest_score = min(json_extract(body, '$.scores.specificity.value'),
                                         json_extract(body, '$.scores.accuracy.value'),
                                         json_extract(body, '$.scores.thoroughness.value'));
-- The queue in its order, covering what it filters on, over the candidates it can show only: a
-- page and its count read this index and none of the candidates' bodies.
CREATE INDEX candidates_review_queue
    ON candidates (tenant, created_at DESC, id, route, lowest_score, trace_id, audit, current)
    WHERE current = 1 AND (route IN ('review', 'insufficient') OR audit = 1);

CREATE TABLE candidate_segments (
    tenant       TEXT NOT NULL,
    candidate_id TEXT NOT NULL,
    facet        TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (tenant, candidate_id, facet, value),
    FOREIGN KEY (tenant, candidate_id) REFERENCES candidates (tenant, id) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE INDEX candidate_segments_by_value ON candidate_segments (tenant, facet, value, candidate_id);
INSERT OR IGNORE INTO candidate_segments (tenant, candidate_id, facet, value)
    SELECT c.tenant, c.id, json_extract(s.value, '$.facet'), json_extract(s.value, '$.value')
    FROM candidates c, json_each(c.body, '$.segments') s
    WHERE json_extract(s.value, '$.facet') IS NOT NULL
      AND json_extract(s.value, '$.value') IS NOT NULL;
