-- rollscale schema, version 1. Portable SQL: the same text runs on SQLite and PostgreSQL.
-- Each mutable row carries a generation; updates compare-and-swap on it.
-- Bodies are the domain values as JSON; the columns beside them are what queries filter on.

CREATE TABLE scaling_groups (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    region_id TEXT NOT NULL,
    status TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    generation BIGINT NOT NULL
);

CREATE TABLE scaling_configurations (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    generation BIGINT NOT NULL
);
CREATE INDEX scaling_configurations_group ON scaling_configurations (group_id);

CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL,
    lifecycle_state TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    generation BIGINT NOT NULL
);
CREATE INDEX instances_group ON instances (group_id, created_at);

CREATE TABLE load_balancers (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    generation BIGINT NOT NULL
);

CREATE TABLE lb_backends (
    lb_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    weight BIGINT NOT NULL,
    -- The weight before EnterStandby, restored by ExitStandby; -1 when none is saved.
    saved_weight BIGINT NOT NULL DEFAULT -1,
    PRIMARY KEY (lb_id, instance_id)
);
CREATE INDEX lb_backends_instance ON lb_backends (instance_id);

CREATE TABLE images (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE package_versions (
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

-- Rolling-update tasks (parent_id = '') and their per-instance child executions.
CREATE TABLE executions (
    id TEXT PRIMARY KEY,
    parent_id TEXT NOT NULL,
    template_name TEXT NOT NULL,
    status TEXT NOT NULL,
    -- The engine's own status (a child's Skipped shows as Success in `status`).
    detail_status TEXT NOT NULL,
    group_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    generation BIGINT NOT NULL
);
CREATE INDEX executions_parent ON executions (parent_id, position);
-- Covers the driver's per-status counts of a task's children, overall and within a batch.
CREATE INDEX executions_parent_status ON executions (parent_id, detail_status, position);
CREATE INDEX executions_group ON executions (group_id, created_at);
CREATE INDEX executions_status ON executions (status);

CREATE TABLE scaling_activities (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX scaling_activities_group ON scaling_activities (group_id, created_at);

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    group_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    level TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_created ON events (created_at);

CREATE TABLE access_keys (
    id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    user_name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE request_nonces (
    nonce TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
