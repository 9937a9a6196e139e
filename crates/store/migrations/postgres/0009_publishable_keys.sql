-- Publishable keys answer only to these origins (newline-separated). Empty for every other key.
ALTER TABLE api_keys ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '';
