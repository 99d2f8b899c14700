-- When the health checker last looked at each instance (R16). A column of its own, written
-- for a whole group by each pass without touching the instance's body or generation, so the
-- observation's time never makes a task's compare-and-swap on the instance fail.
ALTER TABLE instances ADD COLUMN observed_at BIGINT;
