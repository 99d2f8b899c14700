//! What rollscale's tests and benchmarks share, written once.
//!
//! - [`engine`]: the engine fixture ([`engine::Harness`]): a fresh store (SQLite in a temporary
//!   directory, or a PostgreSQL database when a URL is given), the simulated fleet and load
//!   balancer, an engine and its service; the groups tests make, and waiting for a task.
//! - [`server`]: the service with an administrator's AccessKey, signed RPC and REST requests
//!   through the router, and [`server::spawn_app`], the whole server on a loopback port.
//! - [`webhook`]: a webhook receiver on loopback (HTTP or HTTPS) that records what it gets and
//!   can be told to fail.
//! - [`postgres`], [`podman`], [`haproxy`]: the real components, found or started through the
//!   repository's `scripts/`, failing with a message that says what to run when one is missing.
//! - [`up`]: `rollscale up` as a child process and the CLI run with the profile it wrote (the
//!   binary's own tests).
//! - [`wait`], [`net`]: waiting for a condition (never sleeping for luck), loopback ports and
//!   scratch directories.
//! - [`bench`]: the benchmarks' command line, CPU time and peak memory, and their group on the
//!   simulated fleet.
//!
//! This crate is test code: it panics, with a message, where a test would. It is a
//! dev-dependency of the other crates and never a normal one (ARCHITECTURE.md), which
//! `tests/dev_dependency_only.rs` checks.

pub mod bench;
pub mod engine;
pub mod haproxy;
pub mod net;
pub mod podman;
pub mod postgres;
pub mod server;
pub mod up;
pub mod wait;
pub mod webhook;

/// The repository's root (where `scripts/` is).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A script of the repository's `scripts/`.
pub fn script(name: &str) -> std::path::PathBuf {
    workspace_root().join("scripts").join(name)
}
