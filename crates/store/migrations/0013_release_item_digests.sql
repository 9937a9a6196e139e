-- A release keeps the digest of every label version it selected, and marks (`erased_at`) the
-- ones an erasure removed since: its items still hash to its id, so its export stays provable
-- after an erasure. An erasure finds the items of a label through release_items_by_trace.
ALTER TABLE release_items ADD COLUMN digest TEXT;
ALTER TABLE release_items ADD COLUMN erased_at INTEGER;

UPDATE release_items SET digest = (
    SELECT v.digest FROM label_versions v
    WHERE v.tenant = release_items.tenant AND v.trace_id = release_items.trace_id
      AND v.version = release_items.version
);
-- Versions erased before digests were kept: still marked, with their digest unknown.
UPDATE release_items SET erased_at = 0, digest = '' WHERE digest IS NULL;

CREATE INDEX release_items_by_trace ON release_items (tenant, trace_id, version);
