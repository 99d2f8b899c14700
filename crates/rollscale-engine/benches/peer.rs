//! Benchmark against a peer: the same rolling script run over the same real containers
//! (Podman), in the same batches, by rollscale and by ansible-core with `serial:`.
//!
//! rollscale runs a `ACS-ESS-RollingUpdateByRunCommandInScalingGroup` task (each instance:
//! Standby, the script through the container API's exec, back InService; journaled in
//! SQLite). ansible-playbook runs, with `serial: <batch size>` and as many forks, one
//! `command` task per host: `podman exec <container> sh -c <script>` on the local connection
//! (ansible-core has no container connection of its own). Each is run `--runs` times
//! (default 3) and the median wall time is printed, with the ratio.
//!
//! Run with `cargo bench -p rollscale-engine --bench peer` (podman, runc and busybox-static
//! from `scripts/containers`; ansible-core from `scripts/peer-venv`, which the bench calls).
//! `-- --size N --batches B --runs R` changes the shape.

use rollscale_core::task::TaskStatus;
use rollscale_engine::service::NewGroup;
use rollscale_engine::{Engine, EngineConfig, Service};
use rollscale_fleet::docker::{DockerConfig, DockerFleet};
use rollscale_fleet::sim::{SimLbConfig, SimLoadBalancer};
use rollscale_store::Store;
use rollscale_test_support::bench::arg;
use rollscale_test_support::engine::StartTemplate;
use rollscale_test_support::engine::{configuration, enabled_group};
use rollscale_test_support::podman;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PREFIX: &str = "rspeer";
const SCRIPT: &str = "echo hello from $(hostname); cat /www/index.html";

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (size, batches, runs) = (arg("--size", 20), arg("--batches", 4), arg("--runs", 3).max(1));
    let batch_size = size.div_ceil(batches.max(1));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = tempfile::Builder::new().prefix("rsp").tempdir_in("/tmp")?;
    let socket = dir.path().join("podman.sock");
    podman::start_service(&socket, 300)?;
    let venv = Command::new("bash").arg(root.join("scripts/peer-venv")).arg(root.join("target/peer-venv")).output()?;
    if !venv.status.success() {
        return Err(format!("scripts/peer-venv failed: {}", String::from_utf8_lossy(&venv.stderr)).into());
    }
    let bin = Path::new(String::from_utf8_lossy(&venv.stdout).trim()).to_path_buf();
    let ansible_version = Command::new(bin.join("ansible-playbook")).arg("--version").output()?;
    let ansible_version =
        String::from_utf8_lossy(&ansible_version.stdout).lines().next().unwrap_or_default().to_string();
    podman::remove_containers(&format!("label={PREFIX}.instance"));

    // The group: `size` containers of the demo image, no load balancer (the peer has none).
    let store = Store::open(&format!("sqlite://{}", dir.path().join("bench.db").display())).await?;
    let docker = DockerFleet::connect(
        &format!("unix://{}", socket.display()),
        DockerConfig { health_path: Some("/health".into()), label_prefix: PREFIX.into(), ..DockerConfig::default() },
    )?;
    let names_of = docker.clone();
    let config = EngineConfig { health_poll: Duration::from_millis(20), ..EngineConfig::default() };
    let engine =
        Engine::new(store.clone(), Arc::new(docker), Arc::new(SimLoadBalancer::new(SimLbConfig::default())), config);
    let service = Service::new(engine.clone());
    service.create_image("localhost/rollscale-demo:v1", None, None).await?;
    let new = NewGroup { name: "peer".into(), max_size: size, desired_capacity: Some(size), ..NewGroup::default() };
    let (group, _) = enabled_group(&service, new, configuration("localhost/rollscale-demo:v1")).await;
    service.reconcile_group(&group).await?;
    let instances = service.instances(Some(&group.id), None, None).await?;
    let containers: Vec<String> = instances.iter().map(|i| names_of.container_name(&i.id)).collect();

    // The peer's inventory and playbook.
    let inventory = dir.path().join("inventory.ini");
    let mut hosts = String::from("[fleet]\n");
    for name in &containers {
        hosts.push_str(&format!(
            "{name} ansible_connection=local ansible_python_interpreter={}\n",
            bin.join("python").display()
        ));
    }
    std::fs::write(&inventory, hosts)?;
    let playbook = dir.path().join("rolling.yml");
    let quoted = SCRIPT.replace('\'', "'\"'\"'");
    std::fs::write(
        &playbook,
        format!(
            "- hosts: fleet\n  serial: {batch_size}\n  gather_facts: false\n  tasks:\n    - name: run the script\n      \
             ansible.builtin.shell: podman exec {{{{ inventory_hostname }}}} sh -c '{quoted}'\n"
        ),
    )?;

    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for run in 0..runs {
        let started = Instant::now();
        let params = serde_json::json!({
            "invokeType": "invoke", "scalingGroupId": group.id, "commandType": "RunShellScript",
            "invokeScript": SCRIPT, "batchNumber": batches, "batchPauseOption": "Automatic",
        });
        let task =
            service.start_template("ACS-ESS-RollingUpdateByRunCommandInScalingGroup", &params.to_string()).await?;
        let status = loop {
            let status = service.task(&task.id).await?.0.status;
            if status.is_final() {
                break status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        ours.push(started.elapsed());
        if status != TaskStatus::Success {
            return Err(format!("rollscale's run {run} ended {status:?}").into());
        }
        let started = Instant::now();
        let output = Command::new(bin.join("ansible-playbook"))
            .arg("-i")
            .arg(&inventory)
            .arg("--forks")
            .arg(batch_size.to_string())
            .arg(&playbook)
            .env("ANSIBLE_HOST_KEY_CHECKING", "False")
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_LOCAL_TEMP", dir.path().join("ansible-tmp"))
            .env("ANSIBLE_HOME", dir.path().join("ansible-home"))
            .output()?;
        theirs.push(started.elapsed());
        let text = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || !text.contains(&format!("ok={}", 1)) {
            return Err(format!("ansible-playbook's run {run} failed:\n{text}").into());
        }
        let changed = text.lines().filter(|line| line.contains("changed=1")).count();
        if changed != containers.len() {
            return Err(format!("ansible changed {changed} of {} hosts:\n{text}", containers.len()).into());
        }
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "a rolling script over {size} containers (Podman) in {batches} batches of {batch_size}, median of {runs} runs:"
    );
    println!(
        "  rollscale (ScriptExecution task, exec through the container API)          {:>7.2} s ({:.0} ms per instance)",
        ours.as_secs_f64(),
        ours.as_secs_f64() * 1000.0 / f64::from(size)
    );
    println!(
        "  {ansible_version} (serial: {batch_size}, forks: {batch_size}, shell: podman exec)  {:>7.2} s ({:.0} ms per host)",
        theirs.as_secs_f64(),
        theirs.as_secs_f64() * 1000.0 / f64::from(size)
    );
    println!(
        "  ratio: ansible-core takes {:.1}× rollscale's time",
        theirs.as_secs_f64() / ours.as_secs_f64().max(1e-9)
    );

    engine.halt();
    podman::remove_containers(&format!("label={PREFIX}.instance"));
    Ok(())
}
