-- Accounts, API keys, sessions, the plugin key-value store and the audit log.
-- Portable SQL (SQLite now, PostgreSQL later): times are INTEGER unix milliseconds, booleans are
-- INTEGER 0/1, no rowid tricks, no INSERT OR REPLACE.

CREATE TABLE users (
    name        TEXT    NOT NULL PRIMARY KEY,
    -- argon2id in PHC string form; the password itself is never stored.
    password    TEXT    NOT NULL,
    -- The highest role: 'user' or 'admin' (admin implies user).
    role        TEXT    NOT NULL CHECK (role IN ('user', 'admin')),
    created     INTEGER NOT NULL
);

CREATE TABLE api_keys (
    -- A short random id, shown in listings and used to revoke.
    id           TEXT    NOT NULL PRIMARY KEY,
    -- The first characters of the key text: enough to recognise a key, useless to use it.
    prefix       TEXT    NOT NULL,
    -- SHA-256 of the whole key text, hex. The key is shown once at creation and never stored.
    hash         TEXT    NOT NULL UNIQUE,
    owner        TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    role         TEXT    NOT NULL CHECK (role IN ('user', 'admin')),
    -- Path prefixes the key may reach, separated by newlines; empty means every path.
    scopes       TEXT    NOT NULL DEFAULT '',
    expires_at   INTEGER,
    revoked      INTEGER NOT NULL DEFAULT 0,
    created      INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX api_keys_owner ON api_keys (owner);

CREATE TABLE sessions (
    -- SHA-256 of the session id, hex; the id itself only lives in the browser's cookie.
    id_hash   TEXT    NOT NULL PRIMARY KEY,
    csrf      TEXT    NOT NULL,
    user_name TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created   INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_name);

CREATE TABLE kv (
    plugin  TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    value   BLOB    NOT NULL,
    updated INTEGER NOT NULL,
    PRIMARY KEY (plugin, key)
);

CREATE TABLE audit (
    id      INTEGER NOT NULL PRIMARY KEY,
    time    INTEGER NOT NULL,
    -- Who did it: 'user:NAME', 'key:ID', 'cli:OSUSER', 'bootstrap'.
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    target  TEXT    NOT NULL DEFAULT '',
    detail  TEXT    NOT NULL DEFAULT '',
    client  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_time ON audit (time);
