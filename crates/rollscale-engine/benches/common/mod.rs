//! What the benchmarks share: their command-line shape, the process's CPU time and peak
//! memory, and the Podman CLI.
#![allow(dead_code)] // each benchmark uses part of it

use std::process::Command;

/// The value of `--name N` on the command line, or `default`.
pub fn arg(name: &str, default: u32) -> u32 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The standard output of `podman ARGS` (empty when it fails).
pub fn podman(args: &[&str]) -> String {
    Command::new("podman")
        .args(args)
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}

/// Removes every container a benchmark's fleet made (labelled `<prefix>.instance`).
pub fn remove_containers(prefix: &str) {
    let filter = format!("label={prefix}.instance");
    let names = podman(&["ps", "-a", "-q", "--filter", &filter]);
    let names: Vec<&str> = names.split_whitespace().collect();
    if !names.is_empty() {
        let mut args = vec!["rm", "-f", "-t", "0"];
        args.extend(names);
        podman(&args);
    }
}

/// Starts (when needed) a Podman service on `socket` with the demo images, by
/// `scripts/containers all`; it exits after `idle_s` idle seconds.
pub fn podman_service(socket: &std::path::Path, idle_s: u32) -> Result<(), Box<dyn std::error::Error>> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/containers");
    let status = Command::new("bash")
        .arg(script)
        .args(["all", socket.to_str().ok_or("utf-8 path")?, &idle_s.to_string()])
        .stdout(std::process::Stdio::null())
        .status()?;
    if !status.success() {
        return Err("scripts/containers failed: podman, runc and busybox-static are needed".into());
    }
    Ok(())
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
    pub store: rollscale_store::Store,
    pub fleet: rollscale_fleet::sim::SimFleet,
    pub engine: std::sync::Arc<rollscale_engine::Engine>,
    pub service: rollscale_engine::Service,
    pub group: rollscale_core::domain::ScalingGroup,
}

impl SimBench {
    pub async fn new(
        dir: &std::path::Path,
        size: u32,
        latency_ms: u64,
        config: rollscale_engine::EngineConfig,
    ) -> Result<SimBench, Box<dyn std::error::Error>> {
        use rollscale_engine::service::{NewConfiguration, NewGroup};
        use rollscale_fleet::sim::{SimConfig, SimFleet, SimLbConfig, SimLoadBalancer};
        let store = rollscale_store::Store::open(&format!("sqlite://{}", dir.join("bench.db").display())).await?;
        let fleet = SimFleet::new(SimConfig { latency_ms, ..SimConfig::default() });
        let lb = SimLoadBalancer::new(SimLbConfig::default()).with_fleet(fleet.clone());
        let engine = rollscale_engine::Engine::new(
            store.clone(),
            std::sync::Arc::new(fleet.clone()),
            std::sync::Arc::new(lb),
            config,
        );
        let service = rollscale_engine::Service::new(engine.clone());
        service.create_image("old", None, None).await?;
        service.create_image("new", None, None).await?;
        let lb = service.create_load_balancer("lb", 100).await?;
        let group = service
            .create_group(NewGroup {
                name: "bench".into(),
                max_size: size,
                desired_capacity: Some(size),
                load_balancer_ids: vec![lb.id],
                ..NewGroup::default()
            })
            .await?;
        service
            .create_configuration(NewConfiguration {
                group_id: group.id.to_string(),
                image_id: "old".into(),
                ..NewConfiguration::default()
            })
            .await?;
        let group = service.enable_group(group.id.as_str(), None).await?;
        Ok(SimBench { store, fleet, engine, service, group })
    }
}
