-- Publishable keys: a feedback-only key embedded in web pages answers only to these origins
-- (newline-separated, e.g. "https://app.example.com"). Empty for every other key.
ALTER TABLE api_keys ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '';
