-- Users, policies, attachments and the audit log (issue 4 §3). Portable SQL: SQLite and
-- PostgreSQL.

CREATE TABLE users (
    name TEXT PRIMARY KEY,
    id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    comments TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    generation BIGINT NOT NULL
);

-- Custom policies only: the system ones are built into rollscale (rollscale-core's policy.rs).
CREATE TABLE policies (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    generation BIGINT NOT NULL
);

CREATE TABLE user_policies (
    user_name TEXT NOT NULL,
    policy_type TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    attached_at BIGINT NOT NULL,
    PRIMARY KEY (user_name, policy_type, policy_name)
);
CREATE INDEX user_policies_policy ON user_policies (policy_type, policy_name);

CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    user_name TEXT NOT NULL,
    access_key_id TEXT NOT NULL,
    action TEXT NOT NULL,
    result_code TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX audit_events_created ON audit_events (created_at);
CREATE INDEX audit_events_user ON audit_events (user_name, created_at);

-- AccessKey secrets are sealed with the server key from now on (`seal.rs`): the column says
-- so. A value written before this migration is plain text, and is sealed when the store is
-- first given its server key (`Store::with_server_key`).
ALTER TABLE access_keys RENAME COLUMN secret TO secret_sealed;
ALTER TABLE access_keys ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;
CREATE INDEX access_keys_user ON access_keys (user_name);

-- Before users existed every AccessKey could do everything: its user is created, with the
-- built-in AdministratorAccess, so nothing it did before is refused now.
INSERT INTO users (name, id, display_name, comments, created_at, updated_at, generation)
    SELECT user_name, user_name, user_name, '', MIN(created_at), MIN(created_at), 0
    FROM access_keys GROUP BY user_name;
INSERT INTO user_policies (user_name, policy_type, policy_name, attached_at)
    SELECT user_name, 'System', 'AdministratorAccess', MIN(created_at)
    FROM access_keys GROUP BY user_name;
