-- Alert rules (R15) and their deliveries to webhooks. A rule's body holds its event patterns
-- and webhooks; `enabled` is kept as a column so recording an event reads only the enabled
-- ones. A delivery is one event on its way to one webhook of one rule: made in the same
-- transaction that records the event, tried until the webhook answers 2xx or the attempts run
-- out. `claimed_until` keeps a delivery to one sender at a time (replicas share the table).
CREATE TABLE alert_rules (
    name TEXT PRIMARY KEY,
    enabled BIGINT NOT NULL,
    body TEXT NOT NULL,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE alert_deliveries (
    id TEXT PRIMARY KEY,
    rule_name TEXT NOT NULL,
    status TEXT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    claimed_until BIGINT NOT NULL,
    generation BIGINT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at);
CREATE INDEX alert_deliveries_rule ON alert_deliveries (rule_name, created_at);
