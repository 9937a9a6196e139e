-- Signed-in web UI sessions, shared by every server on the store, so a reviewer stays signed in
-- across restarts and behind a load balancer without sticky routing. A row is named by the
-- SHA-256 of the session token the cookie carries: neither the token nor the API key's secret
-- is stored. A lookup joins `api_keys` on (tenant, key_id), so a revoked or rotated key's
-- sessions stop working at once.
CREATE TABLE ui_sessions (
    token_sha256 BLOB    NOT NULL PRIMARY KEY,
    tenant       TEXT    NOT NULL,
    key_id       TEXT    NOT NULL,
    csrf         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX ui_sessions_by_expiry ON ui_sessions (expires_at);
