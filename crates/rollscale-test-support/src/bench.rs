//! What the benchmarks share: their command-line shape, the process's CPU time and peak
//! memory, and a group on the simulated fleet.

use crate::engine::{configuration, enabled_group, Harness};
use rollscale_core::domain::ScalingGroup;
use rollscale_engine::service::NewGroup;
use rollscale_engine::{Engine, EngineConfig, Service};
use rollscale_fleet::sim::SimFleet;
use rollscale_store::Store;
use std::sync::Arc;

/// The value of `--name N` on the command line, or `default`.
pub fn arg(name: &str, default: u32) -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// User + system CPU seconds of this process so far, from /proc/self/stat.
pub fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Peak resident memory in MiB, from /proc/self/status.
pub fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// What a benchmark over the simulated fleet runs on: a fresh SQLite store, the simulated
/// fleet and load balancer, and an enabled group "bench" of `size` instances on the image
/// "old" (the image "new" is in the catalog too) behind one load balancer, not yet reconciled.
pub struct SimBench {
    pub store: Store,
    pub fleet: SimFleet,
    pub engine: Arc<Engine>,
    pub service: Service,
    pub group: ScalingGroup,
    _dir: tempfile::TempDir,
}

impl SimBench {
    pub async fn new(size: u32, latency_ms: u64, config: EngineConfig) -> SimBench {
        let Harness { dir, store, fleet, engine, service, .. } =
            Harness::builder().latency_ms(latency_ms).config(config).build().await;
        service.create_image("old", None, None).await.expect("image");
        service.create_image("new", None, None).await.expect("image");
        let lb = service.create_load_balancer("lb", 100).await.expect("lb");
        let new = NewGroup {
            name: "bench".into(),
            max_size: size,
            desired_capacity: Some(size),
            load_balancer_ids: vec![lb.id],
            ..NewGroup::default()
        };
        let (group, _) = enabled_group(&service, new, configuration("old")).await;
        SimBench { store, fleet, engine, service, group, _dir: dir }
    }
}
