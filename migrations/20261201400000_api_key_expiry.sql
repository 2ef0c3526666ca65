-- migrate:up
-- An API key may be given an end: past expires_at it authenticates no more, as if
-- revoked (NULL: until revoked).
ALTER TABLE api_key ADD COLUMN expires_at timestamptz;
ALTER TABLE api_key
    ADD CONSTRAINT api_key_expires_after_creation CHECK (expires_at IS NULL OR expires_at > created_at);

-- migrate:down
ALTER TABLE api_key DROP CONSTRAINT api_key_expires_after_creation;
ALTER TABLE api_key DROP COLUMN expires_at;
