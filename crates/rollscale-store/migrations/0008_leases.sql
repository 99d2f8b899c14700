-- Leases: which replica drives what. One row per leased thing, named `task/<execution id>` for
-- a rolling update's driver and `reconciler` for the capacity reconciler. `owner` is the
-- replica id of its holder; `expires_at` is in the DATABASE's clock (milliseconds since the
-- epoch, computed by the statements themselves), so replicas' clocks never meet: a lease is
-- taken by compare-and-swap when absent, expired, or already the taker's, and renewed only by
-- its owner. `generation` counts takes and renewals. A finished task's lease is deleted.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    generation BIGINT NOT NULL
);
