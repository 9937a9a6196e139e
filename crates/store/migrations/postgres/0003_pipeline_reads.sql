-- Small capture results live in the row itself; pipeline counts read indexes.
ALTER TABLE snapshot_queries ADD COLUMN result_inline BYTEA;

CREATE INDEX feedback_by_label_state ON feedback (tenant, label_state);
CREATE INDEX snapshot_queries_by_status ON snapshot_queries (tenant, status);
