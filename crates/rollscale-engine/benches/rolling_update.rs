//! Benchmark: a rolling image update on the simulated fleet, for 100 and 10,000 instances.
//!
//! Prints, per run: wall time against the ideal (batches × the per-instance driver latency on
//! the critical path), the engine's CPU time, the process's peak memory, and the store's row
//! writes per instance. Run with `cargo bench -p rollscale-engine --bench rolling_update`
//! (`-- --quick` runs only the 100-instance case).
//!
//! While it runs, the benchmark polls the task every 20 ms as `rollscale ru start --wait` does
//! (`ListExecutions` with the execution id: the task and its instances' counts by status, which
//! the store counts). `-- --poll-children` polls the
//! task with all its child executions instead, as the first version of this benchmark did:
//! that load (10,000 rows read and decoded 50 times a second) is the client's, not the
//! engine's, but it shares the process and the store's connection.

use rollscale_core::ids::IdFilter;
use rollscale_core::task::TaskStatus;
use rollscale_engine::EngineConfig;
use rollscale_store::{Execution, ExecutionFilter};
use rollscale_test_support::bench::{cpu_seconds, peak_mib, SimBench};
use rollscale_test_support::engine::StartTemplate;
use std::time::{Duration, Instant};

const LATENCY_MS: u64 = 20;
const BATCHES: u32 = 5;

async fn run(size: u32, poll_children: bool) -> Result<(), Box<dyn std::error::Error>> {
    let config = EngineConfig { health_poll: Duration::from_millis(5), ..EngineConfig::default() };
    let bench = SimBench::new(size, LATENCY_MS, config).await;
    let SimBench { store, fleet, service, group, .. } = &bench;
    let setup = Instant::now();
    service.reconcile_group(group).await?;
    let setup = setup.elapsed();

    let writes_before = store.total_changes().await?;
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    let params = serde_json::json!({
        "invokeType": "invoke", "scalingGroupId": group.id, "imageId": "new", "batchNumber": BATCHES,
    });
    let task =
        service.start_template("ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup", &params.to_string()).await?;
    let by_id = ExecutionFilter { execution_id: IdFilter::Only(task.id.clone()), ..ExecutionFilter::default() };
    let status = loop {
        let status = if poll_children {
            service.task(&task.id).await?.0.status
        } else {
            match service.list_executions(&by_id, 0, 1).await?.0.pop() {
                Some(Execution::Task(task)) => service.task_summary(&task.value.id).await?.0.status,
                other => return Err(format!("ListExecutions by id returned {other:?}").into()),
            }
        };
        if status.is_final() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wall = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    let writes = store.total_changes().await? - writes_before;
    assert_eq!(status, TaskStatus::Success);
    // Per instance on the critical path: replace_image and one health check, each LATENCY_MS.
    let ideal = Duration::from_millis(u64::from(BATCHES) * 2 * LATENCY_MS);
    println!(
        "instances {size:>6} | batches {BATCHES} | wall {:>8.3} s | ideal {:>6.3} s | ratio {:>6.2} | engine cpu {:>7.3} s ({:.1} µs/instance) | peak rss {:>7.1} MiB | store writes {writes} ({:.1}/instance) | setup {:.2} s",
        wall.as_secs_f64(),
        ideal.as_secs_f64(),
        wall.as_secs_f64() / ideal.as_secs_f64(),
        cpu,
        cpu * 1e6 / f64::from(size),
        peak_mib(),
        writes as f64 / f64::from(size),
        setup.as_secs_f64(),
    );
    let calls = fleet.calls();
    println!(
        "                 fleet calls: replace_image {} (no-op {}), health {}",
        calls.replace_image, calls.noop_replace_image, calls.health
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let quick = std::env::args().any(|a| a == "--quick");
    let poll_children = std::env::args().any(|a| a == "--poll-children");
    let poll = if poll_children { "the task and all its children" } else { "the task (ListExecutions by id)" };
    println!("rolling image update on the simulated fleet, driver latency {LATENCY_MS} ms; polling {poll} every 20 ms");
    run(100, poll_children).await?;
    if !quick {
        run(10_000, poll_children).await?;
    }
    Ok(())
}
