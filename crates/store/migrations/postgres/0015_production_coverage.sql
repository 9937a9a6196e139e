-- Release coverage counts every production investigation of its period, not only those with
-- feedback: an investigation keeps the agent version its trace reported, and investigations are
-- found by when they were first seen.
ALTER TABLE investigations ADD COLUMN agent_version TEXT;

UPDATE investigations i SET agent_version = (
    SELECT s.body::jsonb -> 'agent' ->> 'version' FROM steps s
    WHERE s.tenant = i.tenant AND s.trace_id = i.trace_id
      AND s.body::jsonb -> 'agent' ->> 'version' IS NOT NULL
    LIMIT 1
);

CREATE INDEX investigations_by_first_seen ON investigations (tenant, first_seen);
