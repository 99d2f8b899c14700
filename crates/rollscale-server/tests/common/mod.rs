//! What the server's integration tests share: a service on SQLite in a temporary directory,
//! over the simulated fleet, with an AccessKey of the given id and secret (its user gets
//! AdministratorAccess, as a key without a user does).
#![allow(dead_code)] // each test binary uses part of it

use rollscale_core::domain::{AccessKey, AccessKeyStatus};
use rollscale_engine::{Engine, EngineConfig, Service};
use rollscale_fleet::sim::{SimConfig, SimFleet, SimLbConfig, SimLoadBalancer};
use rollscale_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// The service, and the directory its database lives in (removed when dropped).
pub async fn service(key_id: &str, secret: &str, latency_ms: u64) -> (Service, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("test.db").display())).await.unwrap();
    store
        .access_key_insert_bootstrap(&AccessKey {
            id: key_id.into(),
            secret: secret.into(),
            user_name: "admin".into(),
            status: AccessKeyStatus::Active,
            created_at: 0,
        })
        .await
        .unwrap();
    let fleet = SimFleet::new(SimConfig { latency_ms, ..SimConfig::default() });
    let config = EngineConfig { health_poll: Duration::from_millis(5), ..EngineConfig::default() };
    let engine = Engine::new(store, Arc::new(fleet), Arc::new(SimLoadBalancer::new(SimLbConfig::default())), config);
    (Service::new(engine), dir)
}
