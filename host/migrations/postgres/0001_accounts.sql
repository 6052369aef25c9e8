-- Accounts, API keys, sessions, the plugin key-value store and the audit log, on PostgreSQL.
-- The same tables, columns and meanings as migrations/sqlite/0001_accounts.sql, so the same queries run on
-- both: times are BIGINT unix milliseconds, booleans BIGINT 0/1, values BYTEA.

CREATE TABLE users (
    name        TEXT   NOT NULL PRIMARY KEY,
    -- argon2id in PHC string form; the password itself is never stored.
    password    TEXT   NOT NULL,
    role        TEXT   NOT NULL CHECK (role IN ('user', 'admin')),
    created     BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT   NOT NULL PRIMARY KEY,
    prefix       TEXT   NOT NULL,
    -- SHA-256 of the whole key text, hex; the key is shown once at creation and never stored.
    hash         TEXT   NOT NULL UNIQUE,
    owner        TEXT   NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    role         TEXT   NOT NULL CHECK (role IN ('user', 'admin')),
    scopes       TEXT   NOT NULL DEFAULT '',
    expires_at   BIGINT,
    revoked      BIGINT NOT NULL DEFAULT 0,
    created      BIGINT NOT NULL,
    last_used_at BIGINT
);
CREATE INDEX api_keys_owner ON api_keys (owner);

CREATE TABLE sessions (
    -- SHA-256 of the session id, hex; the id itself only lives in the browser's cookie.
    id_hash   TEXT   NOT NULL PRIMARY KEY,
    csrf      TEXT   NOT NULL,
    user_name TEXT   NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created   BIGINT NOT NULL,
    last_seen BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_name);

CREATE TABLE kv (
    plugin  TEXT   NOT NULL,
    key     TEXT   NOT NULL,
    value   BYTEA  NOT NULL,
    updated BIGINT NOT NULL,
    PRIMARY KEY (plugin, key)
);

CREATE TABLE audit (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time    BIGINT NOT NULL,
    actor   TEXT   NOT NULL,
    action  TEXT   NOT NULL,
    target  TEXT   NOT NULL DEFAULT '',
    detail  TEXT   NOT NULL DEFAULT '',
    client  TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX audit_time ON audit (time);
