-- Who may use a pz server: users, the groups they belong to, and their API tokens.
-- Portable SQL: the same file runs on SQLite (the embedded default) and PostgreSQL.
-- Numbers are BIGINT everywhere so both drivers read them as 64-bit integers.

CREATE TABLE pz_users (
    name          TEXT PRIMARY KEY,
    is_admin      BIGINT NOT NULL DEFAULT 0,
    created_unix  BIGINT NOT NULL
);

CREATE TABLE pz_user_groups (
    user_name   TEXT NOT NULL REFERENCES pz_users (name) ON DELETE CASCADE,
    group_name  TEXT NOT NULL,
    PRIMARY KEY (user_name, group_name)
);

-- Only a hash of each token is kept; `token_id` is the short public part users name it by.
CREATE TABLE pz_tokens (
    token_id      TEXT PRIMARY KEY,
    token_sha256  TEXT NOT NULL UNIQUE,
    user_name     TEXT NOT NULL REFERENCES pz_users (name) ON DELETE CASCADE,
    created_unix  BIGINT NOT NULL,
    expires_unix  BIGINT,
    revoked_unix  BIGINT
);

CREATE INDEX pz_tokens_user ON pz_tokens (user_name);
