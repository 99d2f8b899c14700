-- An instance's health status as a column beside its body (which keeps it too), so that
-- /metrics counts the instances by lifecycle state and health with one index-only statement.
-- Every write of an instance sets both. The rows written before take it from their body: a
-- top-level "health_status" key with an unescaped quote before it cannot be inside a JSON
-- string, where every quote is escaped.
ALTER TABLE instances ADD COLUMN health_status TEXT NOT NULL DEFAULT 'Healthy';
UPDATE instances SET health_status = 'Unhealthy' WHERE body LIKE '%"health_status":"Unhealthy"%';
CREATE INDEX instances_state_health ON instances (lifecycle_state, health_status);
