-- Cluster mode: the plugin set every node serves, the revision that names it, the nodes, and the login
-- limiter's counts (so N nodes do not allow N times the attempts).

-- Plugin components by content: the SHA-256 of the bytes, hex.
CREATE TABLE components (
    sha256 TEXT   NOT NULL PRIMARY KEY,
    bytes  BYTEA  NOT NULL,
    size   BIGINT NOT NULL,
    added  BIGINT NOT NULL
);

-- The plugin set: one row per plugin name, the component it runs and whether it is enabled.
CREATE TABLE plugin_set (
    name    TEXT   NOT NULL PRIMARY KEY,
    sha256  TEXT   NOT NULL REFERENCES components (sha256),
    version TEXT   NOT NULL,
    enabled BIGINT NOT NULL DEFAULT 1,
    updated BIGINT NOT NULL
);

-- One row: the revision of the plugin set. Every change to plugin_set bumps it in the same transaction.
CREATE TABLE cluster (
    id       BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    revision BIGINT NOT NULL
);
INSERT INTO cluster (id, revision) VALUES (1, 0);

-- Each node's own report, rewritten every few seconds.
CREATE TABLE nodes (
    id         TEXT   NOT NULL PRIMARY KEY,
    address    TEXT   NOT NULL,
    started    BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL,
    revision   BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    ready      BIGINT NOT NULL,
    error      TEXT   NOT NULL DEFAULT ''
);

-- Failed logins per subject ('user:NAME' or 'addr:IP'), shared by every node.
CREATE TABLE login_failures (
    subject      TEXT   NOT NULL PRIMARY KEY,
    failures     BIGINT NOT NULL,
    locked_until BIGINT,
    last_failure BIGINT NOT NULL
);
