-- The review queue leaves out candidates a reviewer already decided: a partial index of the
-- decided label versions keeps that check to the few decided rows, whatever the planner's
-- statistics say about the many admitted ones.
CREATE INDEX label_versions_decided ON label_versions (tenant, candidate_id) WHERE decided = 1;
