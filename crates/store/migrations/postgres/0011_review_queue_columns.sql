-- What the review queue filters on, out of the candidate's body: its lowest score as a column
-- and its segments as rows, so the queue is an indexed read that decodes only the page it shows.
-- Both are written with every candidate and backfilled here.
ALTER TABLE candidates ADD COLUMN lowest_score DOUBLE PRECISION;
UPDATE candidates SET lowest_score = LEAST((body::jsonb #>> '{scores,specificity,value}')::float8,
                                           (body::jsonb #>> '{scores,accuracy,value}')::float8,
                                           (body::jsonb #>> '{scores,thoroughness,value}')::float8);
-- The queue in its order, covering what it filters on, over the candidates it can show only: a
-- page and its count read this index and none of the candidates' bodies.
CREATE INDEX candidates_review_queue
    ON candidates (tenant, created_at DESC, id COLLATE "C", route, lowest_score, trace_id, audit,
                   current)
    WHERE current AND (route IN ('review', 'insufficient') OR audit);

CREATE TABLE candidate_segments (
    tenant       TEXT NOT NULL,
    candidate_id TEXT NOT NULL,
    facet        TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (tenant, candidate_id, facet, value),
    FOREIGN KEY (tenant, candidate_id) REFERENCES candidates (tenant, id) ON DELETE CASCADE
);
CREATE INDEX candidate_segments_by_value ON candidate_segments (tenant, facet, value, candidate_id);
INSERT INTO candidate_segments (tenant, candidate_id, facet, value)
    SELECT c.tenant, c.id, s ->> 'facet', s ->> 'value'
    FROM candidates c, jsonb_array_elements(c.body::jsonb -> 'segments') s
    WHERE s ->> 'facet' IS NOT NULL AND s ->> 'value' IS NOT NULL
    ON CONFLICT DO NOTHING;
