-- Faster pipeline paths: small capture results live in the row itself (one fewer file and fsync
-- per capture), and pipeline counts read indexes instead of every row.
ALTER TABLE snapshot_queries ADD COLUMN result_inline BLOB;

-- Pipeline counts (`pipeline_stats`) read these instead of every row.
CREATE INDEX feedback_by_label_state ON feedback (tenant, label_state);
CREATE INDEX snapshot_queries_by_status ON snapshot_queries (tenant, status);
