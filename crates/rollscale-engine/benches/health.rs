//! Benchmark: the health checker (R16, R17) over 10,000 simulated instances.
//!
//! Prints, per pass: wall time, the process's CPU time per instance, and the records written.
//! The first pass records every instance's first observation; the steady passes see nothing
//! new (the cost of every 5 s of a healthy group); the last sees 100 crashed instances and
//! removes them. Run with `cargo bench -p rollscale-engine --bench health` (`-- --size N`
//! for another group size).

use rollscale_engine::EngineConfig;
use rollscale_fleet::Fault;
use rollscale_test_support::bench::{arg, cpu_seconds, peak_mib, SimBench};
use std::time::Instant;

const LATENCY_MS: u64 = 20;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let size = arg("--size", 10_000);
    let bench = SimBench::new(size, LATENCY_MS, EngineConfig::default()).await;
    let SimBench { fleet, service, group, .. } = &bench;
    service.reconcile_group(group).await?;
    // No process of the group is suspended, so the last pass removes what it finds crashed.
    let group = service.group(&group.id).await?;

    println!("health check passes over {size} simulated instances ({LATENCY_MS} ms per fleet call)");
    println!("{:<22} {:>9} {:>14} {:>9} {:>8}", "pass", "wall ms", "CPU µs/inst", "written", "removed");
    let measure = |label: &str, pass: rollscale_engine::health::HealthPass, wall: f64, cpu: f64| {
        println!(
            "{label:<22} {:>9.1} {:>14.2} {:>9} {:>8}",
            wall * 1000.0,
            cpu * 1e6 / f64::from(size),
            pass.written,
            pass.removed.len()
        );
    };
    for label in ["first (all recorded)", "steady 1", "steady 2", "steady 3"] {
        let (cpu, wall) = (cpu_seconds(), Instant::now());
        let pass = service.health_pass(&group).await?;
        measure(label, pass, wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    }
    for id in fleet.instance_ids().into_iter().take(100) {
        service.inject_fault(&id, Fault::Crash).await?;
    }
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    let pass = service.health_pass(&group).await?;
    measure("100 crashed", pass, wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    println!("peak RSS {:.0} MiB", peak_mib());
    Ok(())
}
