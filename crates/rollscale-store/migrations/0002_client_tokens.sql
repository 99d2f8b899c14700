-- ClientToken idempotency of the create operations (StartExecution, CreateScalingGroup,
-- CreateScalingConfiguration): one row per caller, action and token. `result` is '' while the
-- first request with the token runs, then what it created; `fingerprint` is a digest of the
-- request's parameters, so a token reused with other parameters can be refused.
CREATE TABLE client_tokens (
    scope TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    result TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
