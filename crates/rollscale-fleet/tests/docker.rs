//! The container fleet against a real Podman service.
//!
//! The tests start their own `podman system service` on a socket under the system temp
//! directory and build the demo images (`scripts/containers all`, through
//! `rollscale_test_support::podman`, which leaves the service running until it has been idle
//! for ten minutes). Without podman they fail and say to run `scripts/containers`. Each test labels its containers with its own group
//! and removes them when it ends, passed or failed.

use rollscale_core::domain::{ContainerSpec, GroupType, HealthStatus, OsType};
use rollscale_core::ids::{InstanceId, ScalingGroupId};
use rollscale_core::params::{CommandType, ContainerUpdateType, PackageAction, ScriptSpec};
use rollscale_fleet::docker::{http_get, DockerConfig, DockerFleet};
use rollscale_fleet::{Fleet, FleetError, InstanceSpec, PackageOperation, Sighting, MAX_OUTPUT_BYTES};
use rollscale_test_support::podman::{self, podman};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A new run id for each call: every call of these tests is a run of its own.
fn next_run() -> rollscale_fleet::RunId {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    rollscale_fleet::RunId::new(format!("test-run-{}-{n}", std::process::id())).expect("run id")
}

const V1: &str = "localhost/rollscale-demo:v1";
const V2: &str = "localhost/rollscale-demo:v2";
const V3: &str = "localhost/rollscale-demo:v3";

/// The Podman service of this test binary, as a Docker host URL.
fn docker_host() -> String {
    podman::docker_host("rollscale-fleet-tests")
}

fn config() -> DockerConfig {
    DockerConfig {
        health_path: Some("/health".into()),
        health_timeout: Duration::from_secs(10),
        start_timeout: Duration::from_secs(10),
        stop_timeout: Duration::from_secs(2),
        ..DockerConfig::default()
    }
}

fn fleet() -> DockerFleet {
    DockerFleet::connect(&docker_host(), config()).expect("connect")
}

/// A test's scaling group: every container labelled with it, and every image it names, is
/// removed when it is dropped, whatever the test's outcome.
struct Group {
    id: ScalingGroupId,
    tag: String,
    images: Mutex<Vec<String>>,
}

impl Group {
    fn new(tag: &str) -> Group {
        let tag = format!("{tag}{:x}", std::process::id());
        Group {
            id: ScalingGroupId::parse(&format!("asg-{tag}")).expect("group id"),
            tag,
            images: Mutex::new(Vec::new()),
        }
    }

    fn instance(&self, n: u32) -> InstanceId {
        InstanceId::parse(&format!("i-{}n{n}", self.tag)).expect("instance id")
    }

    fn spec(&self, n: u32, image: &str) -> InstanceSpec {
        InstanceSpec {
            id: self.instance(n),
            group_id: self.id.clone(),
            group_type: GroupType::ECS,
            image_id: image.into(),
            containers: Vec::new(),
        }
    }

    fn forget_image(&self, image: &str) {
        self.images.lock().expect("images").push(image.to_string());
    }

    /// The ids of the group's containers, any state.
    fn containers(&self, instance: &InstanceId) -> Vec<String> {
        let filter = format!("label=rollscale.instance={instance}");
        podman(&["ps", "-a", "-q", "--filter", &filter]).lines().map(str::to_string).collect()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        podman::remove_containers(&format!("label=rollscale.group={}", self.id));
        for image in self.images.lock().map(|images| images.clone()).unwrap_or_default() {
            podman(&["rmi", "-f", &image]);
        }
    }
}

fn container_id(name: &str) -> String {
    podman(&["inspect", "--format", "{{.Id}}", name])
}

async fn get(address: &str, path: &str) -> (u16, String) {
    http_get(address, path, Duration::from_secs(5)).await.unwrap_or_else(|error| panic!("GET {address}{path}: {error}"))
}

/// Waits until the instance's health check passes: `create_instance` waits only until it runs
/// (the engine polls `health` for a new instance the same way).
async fn healthy(fleet: &DockerFleet, id: &InstanceId) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health = fleet.health(id).await;
        if health == Ok(HealthStatus::Healthy) {
            return;
        }
        assert!(Instant::now() < deadline, "instance {id} never became healthy: {health:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn shell(script: &str) -> ScriptSpec {
    ScriptSpec { command_type: CommandType::RunShellScript, script: script.into(), working_dir: None, timeout_s: 30 }
}

#[tokio::test]
async fn create_is_idempotent_and_the_instance_serves_its_version() {
    let group = Group::new("create");
    let fleet = fleet();
    fleet.ping().await.expect("ping");
    let spec = group.spec(1, V1);
    let created = fleet.create_instance(&spec).await.expect("create");
    assert_eq!(created.id, spec.id);
    assert_eq!(created.image_id, V1);
    assert!(created.running);
    assert_eq!(created.os, OsType::Linux);
    assert!(created.packages.is_empty());
    assert!(created.address.starts_with("127.0.0.1:"), "{}", created.address);
    healthy(&fleet, &spec.id).await;
    let (status, body) = get(&created.address, "/").await;
    assert_eq!((status, body.trim()), (200, "rollscale demo version v1"));
    assert_eq!(fleet.health(&spec.id).await, Ok(HealthStatus::Healthy));

    // Again, even with another image: the existing one is adopted and reported as it is.
    let again = fleet.create_instance(&group.spec(1, V2)).await.expect("create again");
    assert_eq!(again, created);
    assert_eq!(group.containers(&spec.id).len(), 1, "no duplicate container");
    assert_eq!(fleet.observe(&spec.id).await, Ok(Some(created.clone())));

    // A stopped instance is unhealthy, and creating it again starts it.
    podman(&["stop", "-t", "0", &fleet.container_name(&spec.id)]);
    assert_eq!(fleet.health(&spec.id).await, Ok(HealthStatus::Unhealthy));
    assert!(!fleet.observe(&spec.id).await.expect("observe").expect("exists").running);
    let restarted = fleet.create_instance(&spec).await.expect("adopt a stopped instance");
    assert!(restarted.running);
    healthy(&fleet, &spec.id).await;
    assert_eq!(get(&restarted.address, "/").await.0, 200);

    // With a container spec: its command, environment and port.
    let mut custom = group.spec(2, V1);
    custom.containers = vec![ContainerSpec {
        name: "web".into(),
        image: V1.into(),
        command: vec!["/bin/httpd".into(), "-f".into(), "-p".into(), "9090".into(), "-h".into(), "/www".into()],
        env: vec![("GREETING".into(), "hello".into())],
        port: Some(9090),
    }];
    let observed = fleet.create_instance(&custom).await.expect("create with a spec");
    assert_eq!(observed.containers, custom.containers);
    healthy(&fleet, &custom.id).await;
    assert_eq!(get(&observed.address, "/").await.0, 200);
    let run = fleet.run_script(&custom.id, &shell("echo $GREETING"), &next_run()).await.expect("run");
    assert_eq!(run.output, "hello\n");

    let missing = fleet.create_instance(&group.spec(3, "localhost/rollscale-no-such-image:v0")).await;
    assert_eq!(missing, Err(FleetError::Failed("image localhost/rollscale-no-such-image:v0 not found locally".into())));
    assert_eq!(fleet.observe(&group.instance(3)).await, Ok(None));
}

#[tokio::test]
async fn replace_image_keeps_identity_and_host_port_and_is_idempotent() {
    let group = Group::new("replace");
    let fleet = fleet();
    let spec = group.spec(1, V1);
    let before = fleet.create_instance(&spec).await.expect("create");
    fleet.replace_image(&spec.id, V2).await.expect("replace with v2");
    let after = fleet.observe(&spec.id).await.expect("observe").expect("exists");
    assert_eq!(after.image_id, V2);
    assert_eq!(after.address, before.address, "the host port is kept");
    assert!(after.running);
    assert_eq!(get(&after.address, "/").await.1.trim(), "rollscale demo version v2");
    assert_eq!(group.containers(&spec.id).len(), 1);

    // Again: nothing happens (the same container keeps running).
    let id = container_id(&fleet.container_name(&spec.id));
    fleet.replace_image(&spec.id, V2).await.expect("replace again");
    assert_eq!(container_id(&fleet.container_name(&spec.id)), id, "a no-op");

    // A missing image fails and leaves the instance as it was.
    let missing = fleet.replace_image(&spec.id, "localhost/rollscale-no-such-image:v0").await;
    assert!(matches!(&missing, Err(FleetError::Failed(m)) if m.contains("not found locally")), "{missing:?}");
    assert_eq!(get(&after.address, "/").await.1.trim(), "rollscale demo version v2");

    // An image whose health check fails: replaced, but reported as failed.
    let impatient = DockerConfig { health_timeout: Duration::from_secs(2), ..config() };
    let impatient = DockerFleet::connect(&docker_host(), impatient).expect("connect");
    let broken = impatient.replace_image(&spec.id, "localhost/rollscale-demo:broken").await;
    assert!(matches!(&broken, Err(FleetError::Failed(m)) if m.contains("did not answer 200")), "{broken:?}");
    assert_eq!(fleet.health(&spec.id).await, Ok(HealthStatus::Unhealthy));
    fleet.replace_image(&spec.id, V3).await.expect("replace with v3");
    assert_eq!(fleet.health(&spec.id).await, Ok(HealthStatus::Healthy));
    assert_eq!(get(&before.address, "/").await.1.trim(), "rollscale demo version v3");

    assert_eq!(fleet.replace_image(&group.instance(9), V2).await, Err(FleetError::NotFound(group.instance(9))));
}

#[tokio::test]
async fn an_interrupted_replacement_is_finished_or_undone() {
    let group = Group::new("swap");
    let fleet = fleet();
    let spec = group.spec(1, V1);
    let before = fleet.create_instance(&spec).await.expect("create");
    let name = fleet.container_name(&spec.id);
    // As if rollscale died after removing the old container and before renaming the new one.
    podman(&["rename", &name, &format!("{name}.next")]);
    podman(&["stop", "-t", "0", &format!("{name}.next")]);
    let after = fleet.observe(&spec.id).await.expect("observe finishes the swap").expect("exists");
    assert!(after.running);
    assert_eq!(after.address, before.address);
    assert_eq!(group.containers(&spec.id).len(), 1);

    // As if rollscale died after making the replacement and before removing the old one.
    let instance_label = format!("rollscale.instance={}", spec.id);
    let group_label = format!("rollscale.group={}", group.id);
    let next = format!("{name}.next");
    podman(&["create", "--name", &next, "--label", &instance_label, "--label", &group_label, V2]);
    assert_eq!(group.containers(&spec.id).len(), 2);
    let id = container_id(&name);
    fleet.replace_image(&spec.id, V1).await.expect("undoes the replacement, then is a no-op");
    assert_eq!(group.containers(&spec.id).len(), 1);
    assert_eq!(container_id(&name), id);
    assert_eq!(fleet.observe(&spec.id).await.expect("observe").expect("exists").image_id, V1);
}

#[tokio::test]
async fn scripts_report_output_exit_code_working_dir_and_timeout() {
    let group = Group::new("script");
    let fleet = fleet();
    let spec = group.spec(1, V1);
    fleet.create_instance(&spec).await.expect("create");
    let id = &spec.id;

    let run =
        fleet.run_script(id, &shell("echo out; echo err >&2; echo again; exit 3"), &next_run()).await.expect("run");
    assert_eq!(run.exit_code, Some(3));
    assert_eq!(run.output, "out\nerr\nagain\n");
    assert!(!run.truncated && !run.timed_out);

    let run = fleet.run_script(id, &shell("pwd"), &next_run()).await.expect("run");
    assert_eq!((run.exit_code, run.output.as_str()), (Some(0), "/root\n"));
    let in_tmp = ScriptSpec { working_dir: Some("/tmp".into()), ..shell("pwd; touch here") };
    let run = fleet.run_script(id, &in_tmp, &next_run()).await.expect("run");
    assert_eq!((run.exit_code, run.output.as_str()), (Some(0), "/tmp\n"));
    let nowhere = ScriptSpec { working_dir: Some("/no/such/dir".into()), ..shell("echo never") };
    let run = fleet.run_script(id, &nowhere, &next_run()).await.expect("run");
    assert_eq!(run.exit_code, Some(1));
    assert!(run.output.contains("/no/such/dir") && !run.output.contains("never"), "{}", run.output);

    let started = Instant::now();
    let slow = ScriptSpec { timeout_s: 1, ..shell("echo before; sleep 30; echo after") };
    let run = fleet.run_script(id, &slow, &next_run()).await.expect("run");
    assert!(run.timed_out);
    assert_eq!(run.exit_code, None);
    assert_eq!(run.output, "before\n");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let left = fleet.run_script(id, &shell("ps -o comm"), &next_run()).await.expect("run");
    assert!(!left.output.lines().any(|command| command.trim() == "sleep"), "the sleep was killed:\n{}", left.output);

    let run = fleet
        .run_script(id, &shell("yes 0123456789 | head -c 40000; echo; echo done"), &next_run())
        .await
        .expect("run");
    assert_eq!(run.exit_code, Some(0));
    assert!(run.truncated);
    assert_eq!(run.output.len(), MAX_OUTPUT_BYTES);

    let bat = ScriptSpec { command_type: CommandType::RunBatScript, ..shell("echo hi") };
    assert!(matches!(fleet.run_script(id, &bat, &next_run()).await, Err(FleetError::Unsupported(_))));
    let ps = ScriptSpec { command_type: CommandType::RunPowerShellScript, ..shell("Write-Output hi") };
    assert!(matches!(fleet.run_script(id, &ps, &next_run()).await, Err(FleetError::Unsupported(_))));
    assert_eq!(
        fleet.run_script(&group.instance(9), &shell("true"), &next_run()).await,
        Err(FleetError::NotFound(group.instance(9)))
    );
}

#[tokio::test]
async fn packages_are_recorded_on_success_and_reset_by_a_new_image() {
    let group = Group::new("package");
    let fleet = fleet();
    let spec = group.spec(1, V1);
    fleet.create_instance(&spec).await.expect("create");
    let id = &spec.id;
    let operation = |action, version: &str, script: &str| PackageOperation {
        name: "nginx".into(),
        version: version.into(),
        action,
        script: script.into(),
        timeout_s: 30,
    };
    let packages = || async { fleet.observe(id).await.expect("observe").expect("exists").packages };

    let run =
        fleet.apply_package(id, &operation(PackageAction::Install, "1.0", "echo installing 1.0"), &next_run()).await;
    assert_eq!(run.expect("install").output, "installing 1.0\n");
    assert_eq!(packages().await, vec![("nginx".to_string(), "1.0".to_string())]);

    let run =
        fleet.apply_package(id, &operation(PackageAction::Install, "2.0", "echo broken; exit 5"), &next_run()).await;
    assert_eq!(run.expect("install").exit_code, Some(5));
    assert_eq!(packages().await, vec![("nginx".to_string(), "1.0".to_string())], "a failed script records nothing");

    fleet.apply_package(id, &operation(PackageAction::Install, "2.0", "true"), &next_run()).await.expect("upgrade");
    assert_eq!(packages().await, vec![("nginx".to_string(), "2.0".to_string())]);
    // Readable while stopped, too.
    podman(&["stop", "-t", "0", &fleet.container_name(id)]);
    assert_eq!(packages().await, vec![("nginx".to_string(), "2.0".to_string())]);
    fleet.create_instance(&spec).await.expect("start again");

    fleet
        .apply_package(id, &operation(PackageAction::Uninstall, "2.0", "echo removing"), &next_run())
        .await
        .expect("uninstall");
    assert!(packages().await.is_empty());

    fleet.apply_package(id, &operation(PackageAction::Install, "3.0", "true"), &next_run()).await.expect("install");
    fleet.replace_image(id, V2).await.expect("replace");
    assert!(packages().await.is_empty(), "a new image is a new system disk");
}

#[tokio::test]
async fn an_image_made_from_an_instance_makes_new_instances() {
    let group = Group::new("image");
    let fleet = fleet();
    let spec = group.spec(1, V1);
    fleet.create_instance(&spec).await.expect("create");
    let run =
        fleet.run_script(&spec.id, &shell("echo custom page > /www/custom.html"), &next_run()).await.expect("run");
    assert_eq!(run.exit_code, Some(0));
    let name = format!("golden {}", group.tag);
    let image = fleet.create_image(&spec.id, &name).await.expect("create image");
    group.forget_image(&image);
    assert_eq!(image, format!("localhost/rollscale-image:golden-{}", group.tag));
    let images = fleet.list_images().await.expect("list images");
    assert!(images.iter().any(|local| local.tags.contains(&image)), "{images:?}");
    assert!(images.iter().any(|local| local.tags.iter().any(|tag| tag == V1)));
    // Found again by its name (how a firing redone after a crash finds the image it made).
    assert_eq!(fleet.find_image_named(&name).await.expect("find"), Some(image.clone()));
    assert_eq!(fleet.find_image_named(&format!("never made {}", group.tag)).await.expect("find"), None);

    let copy = fleet.create_instance(&group.spec(2, &image)).await.expect("create from the image");
    assert_eq!(copy.image_id, image);
    assert_ne!(copy.address, "");
    healthy(&fleet, &copy.id).await;
    assert_eq!(get(&copy.address, "/custom.html").await, (200, "custom page\n".to_string()));
    assert_eq!(get(&copy.address, "/").await.1.trim(), "rollscale demo version v1");
    let labels = podman(&[
        "inspect",
        "--format",
        "{{index .Config.Labels \"rollscale.instance\"}}",
        &fleet.container_name(&copy.id),
    ]);
    assert_eq!(labels, copy.id.to_string(), "the image's labels do not leak");

    assert_eq!(fleet.create_image(&group.instance(9), "x").await, Err(FleetError::NotFound(group.instance(9))));
}

#[tokio::test]
async fn remove_is_idempotent_and_a_new_fleet_readopts_what_exists() {
    let group = Group::new("adopt");
    let fleet = fleet();
    let one = fleet.create_instance(&group.spec(1, V1)).await.expect("create");
    let two = fleet.create_instance(&group.spec(2, V2)).await.expect("create");
    healthy(&fleet, &two.id).await;

    let restarted = DockerFleet::connect(&docker_host(), config()).expect("connect");
    let managed: Vec<_> = restarted
        .list_managed()
        .await
        .expect("list")
        .into_iter()
        .filter(|observation| observation.id == one.id || observation.id == two.id)
        .collect();
    assert_eq!(managed, vec![one.clone(), two.clone()]);
    assert_eq!(restarted.create_instance(&group.spec(1, V1)).await, Ok(one.clone()));
    assert_eq!(group.containers(&one.id).len(), 1);

    restarted.remove_instance(&one.id).await.expect("remove");
    assert!(group.containers(&one.id).is_empty());
    restarted.remove_instance(&one.id).await.expect("remove again");
    assert_eq!(restarted.observe(&one.id).await, Ok(None));
    assert_eq!(restarted.health(&one.id).await, Err(FleetError::NotFound(one.id.clone())));
    assert!(http_get(&one.address, "/", Duration::from_secs(1)).await.is_err(), "nothing serves there any more");
    assert_eq!(get(&two.address, "/").await.0, 200);
}

#[tokio::test]
async fn container_groups_renew_and_merge() {
    let group = Group::new("eci");
    let fleet = fleet();
    let web = ContainerSpec { name: "web".into(), image: V1.into(), port: Some(8080), ..ContainerSpec::default() };
    let side = ContainerSpec {
        name: "side".into(),
        image: V2.into(),
        command: vec!["/bin/httpd".into(), "-f".into(), "-p".into(), "8081".into(), "-h".into(), "/www".into()],
        port: Some(8081),
        ..ContainerSpec::default()
    };
    let mut spec = group.spec(1, "eci");
    spec.group_type = GroupType::ECI;
    spec.containers = vec![web.clone(), side.clone()];
    let id = spec.id.clone();
    let created = fleet.create_instance(&spec).await.expect("create");
    assert_eq!(created.containers, spec.containers);
    assert_eq!(created.image_id, "eci");
    assert_eq!(group.containers(&id).len(), 2);
    healthy(&fleet, &id).await;
    assert_eq!(get(&created.address, "/").await.1.trim(), "rollscale demo version v1");
    // One network namespace: the main container reaches the other on loopback.
    let peek = shell("wget -q -O - http://127.0.0.1:8081/");
    assert_eq!(
        fleet.run_script(&id, &peek, &next_run()).await.expect("run").output.trim(),
        "rollscale demo version v2"
    );

    // Incremental: only the changed container is made again.
    let main_id = container_id(&fleet.container_name(&id));
    let side_v3 = ContainerSpec { name: "side".into(), image: V3.into(), ..ContainerSpec::default() };
    fleet.update_containers(&id, ContainerUpdateType::IncrementalUpdate, &[side_v3]).await.expect("merge");
    let observed = fleet.observe(&id).await.expect("observe").expect("exists");
    assert_eq!(observed.containers, vec![web.clone(), ContainerSpec { image: V3.into(), ..side.clone() }]);
    assert_eq!(container_id(&fleet.container_name(&id)), main_id, "the main container is kept");
    assert_eq!(
        fleet.run_script(&id, &peek, &next_run()).await.expect("run").output.trim(),
        "rollscale demo version v3"
    );

    // Renew: the group becomes exactly the given containers, on the same address.
    let web_v2 = ContainerSpec { image: V2.into(), ..web.clone() };
    fleet.update_containers(&id, ContainerUpdateType::RenewUpdate, std::slice::from_ref(&web_v2)).await.expect("renew");
    let renewed = fleet.observe(&id).await.expect("observe").expect("exists");
    assert_eq!(renewed.containers, vec![web_v2.clone()]);
    assert_eq!(renewed.address, created.address);
    assert_eq!(group.containers(&id).len(), 1);
    assert_eq!(get(&renewed.address, "/").await.1.trim(), "rollscale demo version v2");
    let main_id = container_id(&fleet.container_name(&id));
    fleet.update_containers(&id, ContainerUpdateType::RenewUpdate, &[web_v2]).await.expect("renew again");
    assert_eq!(container_id(&fleet.container_name(&id)), main_id, "a no-op");

    assert!(matches!(fleet.replace_image(&id, V3).await, Err(FleetError::Unsupported(_))));
    fleet.remove_instance(&id).await.expect("remove");
    assert!(group.containers(&id).is_empty());
}

#[tokio::test]
async fn endpoints_that_do_not_answer_are_unavailable() {
    let missing = DockerFleet::connect("unix:///nonexistent/rollscale/podman.sock", config());
    assert!(matches!(missing, Err(FleetError::Unavailable(_))), "{missing:?}");
    let refused = DockerFleet::connect("tcp://127.0.0.1:1", config()).expect("connect does not dial");
    assert!(matches!(refused.ping().await, Err(FleetError::Unavailable(_))));
    assert!(matches!(refused.observe(&InstanceId::parse("i-x").expect("id")).await, Err(FleetError::Unavailable(_))));
    assert!(matches!(DockerFleet::connect("ftp://x", config()), Err(FleetError::Failed(_))));
}

#[tokio::test]
async fn concurrent_replacements_keep_every_address() {
    let group = Group::new("batch");
    let fleet = fleet();
    let specs: Vec<InstanceSpec> = (1..=4).map(|n| group.spec(n, V1)).collect();
    let created = futures_util::future::join_all(specs.iter().map(|spec| fleet.create_instance(spec))).await;
    let addresses: Vec<String> = created.into_iter().map(|c| c.expect("create").address).collect();
    let replaced = futures_util::future::join_all(specs.iter().map(|spec| fleet.replace_image(&spec.id, V2))).await;
    assert!(replaced.iter().all(Result::is_ok), "{replaced:?}");
    for (spec, address) in specs.iter().zip(&addresses) {
        let observed = fleet.observe(&spec.id).await.expect("observe").expect("exists");
        assert_eq!(&observed.address, address);
        assert_eq!(get(address, "/").await.1.trim(), "rollscale demo version v2");
    }
}

/// R14 over real containers: a run asked for again (the engine redoing a step whose outcome a
/// crash lost) is reported from the container's record, not run a second time; one still
/// going is waited for; one that began and never ended is not run again but fails, saying
/// so; a new run (an operator's retry) runs the script anew.
#[tokio::test]
async fn a_run_is_done_once_and_an_unfinished_one_is_not_redone() {
    let group = Group::new("runs");
    let fleet = fleet();
    let spec = group.spec(1, V1);
    fleet.create_instance(&spec).await.expect("create");
    let id = &spec.id;
    let count = shell("echo ran >> /tmp/runs; wc -l < /tmp/runs; exit 4");

    let once = next_run();
    let first = fleet.run_script(id, &count, &once).await.expect("run");
    assert_eq!((first.exit_code, first.output.trim()), (Some(4), "1"));
    let again = fleet.run_script(id, &count, &once).await.expect("run again");
    assert_eq!(again, first, "the same run reports the same outcome");
    let anew = fleet.run_script(id, &count, &next_run()).await.expect("a new run");
    assert_eq!((anew.exit_code, anew.output.trim()), (Some(4), "2"), "a new run runs");

    // The first call's answer is lost (its future dropped) while the script runs: asked again,
    // the driver waits for that run instead of starting another.
    let slow = shell("sleep 2; echo ran >> /tmp/slow; wc -l < /tmp/slow");
    let lost = next_run();
    let abandoned = tokio::time::timeout(Duration::from_millis(700), fleet.run_script(id, &slow, &lost)).await;
    assert!(abandoned.is_err(), "the first call is still running when dropped");
    let waited = fleet.run_script(id, &slow, &lost).await.expect("run again");
    assert_eq!((waited.exit_code, waited.output.trim()), (Some(0), "1"), "{waited:?}");
    assert_eq!(fleet.run_script(id, &slow, &lost).await.expect("and again"), waited);

    // Two calls for one run at once (a retry racing the first): the script runs once, both
    // report it.
    let raced = next_run();
    let both = shell("echo ran >> /tmp/raced; sleep 1; wc -l < /tmp/raced");
    let (one, two) = tokio::join!(fleet.run_script(id, &both, &raced), fleet.run_script(id, &both, &raced));
    let (one, two) = (one.expect("run"), two.expect("run"));
    assert_eq!((one.exit_code, one.output.trim()), (Some(0), "1"), "{one:?}");
    assert_eq!(two, one);

    // Long output: the record keeps what the driver keeps, so a replay is the same answer.
    let long = next_run();
    let chatty = shell("yes 0123456789 | head -c 40000; echo; echo done");
    let first = fleet.run_script(id, &chatty, &long).await.expect("run");
    assert!(first.truncated && first.output.len() == MAX_OUTPUT_BYTES);
    assert_eq!(fleet.run_script(id, &chatty, &long).await.expect("replay"), first);
    let nowhere = ScriptSpec { working_dir: Some("/no/such/dir".into()), ..shell("echo never") };
    let missing = next_run();
    let failed = fleet.run_script(id, &nowhere, &missing).await.expect("run");
    assert_eq!(failed.exit_code, Some(1));
    assert_eq!(fleet.run_script(id, &nowhere, &missing).await.expect("replay"), failed, "the message is kept too");

    // A run stopped at its timeout never ended: asked again, it fails and is not run again.
    let stopped = next_run();
    let timeout = ScriptSpec { timeout_s: 1, ..shell("echo started >> /tmp/stopped; sleep 30") };
    assert!(fleet.run_script(id, &timeout, &stopped).await.expect("run").timed_out);
    let after = fleet.run_script(id, &timeout, &stopped).await.expect("run again");
    assert_eq!(after.exit_code, Some(125), "{after:?}");
    assert!(after.output.contains("did not finish") && after.output.contains("retry"), "{}", after.output);
    let lines = fleet.run_script(id, &shell("wc -l < /tmp/stopped"), &next_run()).await.expect("count");
    assert_eq!(lines.output.trim(), "1", "the stopped run was not started again");

    // Packages too: the install script of one run runs once, and the version is recorded.
    let install = PackageOperation {
        name: "tool".into(),
        version: "1.0".into(),
        action: PackageAction::Install,
        script: "echo installed >> /tmp/installs".into(),
        timeout_s: 30,
    };
    let run = next_run();
    for _ in 0..2 {
        assert_eq!(fleet.apply_package(id, &install, &run).await.expect("install").exit_code, Some(0));
    }
    let installs = fleet.run_script(id, &shell("wc -l < /tmp/installs"), &next_run()).await.expect("count");
    assert_eq!(installs.output.trim(), "1");
    let observed = fleet.observe(id).await.expect("observe").expect("exists");
    assert_eq!(observed.packages, vec![("tool".to_string(), "1.0".to_string())]);
}

fn running(name: &str) -> bool {
    podman(&["inspect", "--format", "{{.State.Running}}", name]) == "true"
}

#[tokio::test]
async fn a_stopped_instance_on_the_image_is_started_by_the_next_replacement() {
    let group = Group::new("stopped");
    let fleet = fleet();
    let spec = group.spec(1, V1);
    let before = fleet.create_instance(&spec).await.expect("create");
    fleet.replace_image(&spec.id, V2).await.expect("replace with v2");
    // As if rollscale died between renaming the replacement and starting it: a stopped
    // container on the new image, nothing unfinished to repair.
    let name = fleet.container_name(&spec.id);
    podman(&["stop", "-t", "0", &name]);
    assert!(!running(&name));
    assert_eq!(fleet.health(&spec.id).await, Ok(HealthStatus::Unhealthy));

    let address = fleet.replace_image(&spec.id, V2).await.expect("the redo starts it");
    assert_eq!(address, before.address);
    assert!(running(&name), "the instance runs again");
    assert_eq!(fleet.health(&spec.id).await, Ok(HealthStatus::Healthy));
    assert_eq!(get(&address, "/").await.1.trim(), "rollscale demo version v2");
    assert_eq!(group.containers(&spec.id).len(), 1);
}

#[tokio::test]
async fn a_container_group_left_stopped_and_incomplete_is_started_and_completed() {
    let group = Group::new("ecistop");
    let fleet = fleet();
    let web = ContainerSpec { name: "web".into(), image: V1.into(), port: Some(8080), ..ContainerSpec::default() };
    let side = ContainerSpec {
        name: "side".into(),
        image: V2.into(),
        command: vec!["/bin/httpd".into(), "-f".into(), "-p".into(), "8081".into(), "-h".into(), "/www".into()],
        port: Some(8081),
        ..ContainerSpec::default()
    };
    let mut spec = group.spec(1, V1);
    spec.group_type = GroupType::ECI;
    spec.containers = vec![web.clone(), side.clone()];
    let id = spec.id.clone();
    fleet.create_instance(&spec).await.expect("create");
    let main = fleet.container_name(&id);
    let side_name = format!("{main}--side");
    // As if rollscale died while it recreated the group: the main container made and renamed
    // but not started, the other container not made again yet.
    podman(&["rm", "-f", "-t", "0", &side_name]);
    podman(&["stop", "-t", "0", &main]);
    assert_eq!(group.containers(&id).len(), 1);

    // Nothing to change, but the group must be whole and run.
    let address =
        fleet.update_containers(&id, ContainerUpdateType::IncrementalUpdate, &[]).await.expect("the redo repairs it");
    assert_eq!(fleet.observe(&id).await.expect("observe").expect("exists").containers, vec![web, side]);
    assert!(running(&main) && running(&side_name), "both containers run");
    assert_eq!(fleet.health(&id).await, Ok(HealthStatus::Healthy));
    assert_eq!(get(&address, "/").await.1.trim(), "rollscale demo version v1");
    let peek = shell("wget -q -O - http://127.0.0.1:8081/");
    assert_eq!(
        fleet.run_script(&id, &peek, &next_run()).await.expect("run").output.trim(),
        "rollscale demo version v2",
        "the other container shares the main one's network again"
    );

    // Stopped as a whole (a host reboot): the next update starts the main container first,
    // then the other, in one network namespace.
    podman(&["stop", "-t", "0", &side_name]);
    podman(&["stop", "-t", "0", &main]);
    fleet.update_containers(&id, ContainerUpdateType::IncrementalUpdate, &[]).await.expect("a no-op that starts it");
    assert!(running(&main) && running(&side_name), "both containers run");
    assert_eq!(
        fleet.run_script(&id, &peek, &next_run()).await.expect("run").output.trim(),
        "rollscale demo version v2"
    );
    fleet.remove_instance(&id).await.expect("remove");
    assert!(group.containers(&id).is_empty());
}

/// Makes the instance's main container again by hand, out of band, from `image`, with the same
/// name, labels and published port: as an operator's `podman rm -f` + `podman run` would.
fn remake_out_of_band(fleet: &DockerFleet, id: &InstanceId, image: &str) {
    let name = fleet.container_name(id);
    let labels: std::collections::HashMap<String, String> =
        serde_json::from_str(&podman(&["inspect", "--format", "{{json .Config.Labels}}", &name])).expect("labels");
    podman(&["rm", "-f", "-t", "0", &name]);
    let mut args = vec!["run".to_string(), "-d".into(), "--name".into(), name.clone()];
    for (key, value) in labels {
        args.extend(["--label".to_string(), format!("{key}={value}")]);
    }
    args.extend(["-p".to_string(), "127.0.0.1::8080".into(), image.to_string()]);
    podman(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(running(&name), "{name} was made again and runs");
}

/// Looks at `ids` until `done` holds of what is seen, for at most 30 s.
async fn look_until(fleet: &DockerFleet, ids: &[InstanceId], done: impl Fn(&[Sighting]) -> bool) -> Vec<Sighting> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let looks = fleet.look(ids).await;
        assert_eq!(looks.iter().map(|(id, _)| id).collect::<Vec<_>>(), ids.iter().collect::<Vec<_>>(), "in order");
        let sightings: Vec<Sighting> =
            looks.into_iter().map(|(id, look)| look.unwrap_or_else(|e| panic!("{id}: {e}"))).collect();
        if done(&sightings) {
            return sightings;
        }
        assert!(Instant::now() < deadline, "never seen as expected: {sightings:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn one_look_sees_stopped_removed_and_changed_instances() {
    let group = Group::new("look");
    let fleet = fleet();
    // A tag of this test's own, moved from v1 to v2 below.
    let moving = format!("localhost/rollscale-look-{}:x", group.tag);
    podman(&["tag", V1, &moving]);
    group.forget_image(&moving);
    let images = [V1, V1, V1, V1, V2, &moving, &moving];
    let ids: Vec<InstanceId> = (1..=8).map(|n| group.instance(n)).collect();
    for (n, image) in (1..).zip(images) {
        fleet.create_instance(&group.spec(n, image)).await.expect("create");
    }
    for id in &ids[..7] {
        healthy(&fleet, id).await;
    }
    let install = PackageOperation {
        name: "tool".into(),
        version: "1.0".into(),
        action: PackageAction::Install,
        script: "true".into(),
        timeout_s: 30,
    };
    fleet.apply_package(&ids[0], &install, &next_run()).await.expect("install");

    // Instance 2 stopped, 3 removed, 4 made again from v2 by hand; 6 made again by hand from
    // its own image name after that name moved to v2, 7 left alone.
    podman(&["stop", "-t", "0", &fleet.container_name(&ids[1])]);
    podman(&["rm", "-f", "-t", "0", &fleet.container_name(&ids[2])]);
    remake_out_of_band(&fleet, &ids[3], V2);
    podman(&["tag", V2, &moving]);
    remake_out_of_band(&fleet, &ids[5], &moving);
    let v2_id = podman(&["image", "inspect", "--format", "{{.Id}}", V2]);
    assert!(!v2_id.is_empty());

    let sightings = look_until(&fleet, &ids, |sightings| {
        sightings.iter().filter(|sighting| sighting.health == Some(HealthStatus::Healthy)).count() == 5
    })
    .await;
    let observed = |n: usize| sightings[n].observation.clone().unwrap_or_else(|| panic!("instance {} exists", n + 1));
    // Running, healthy, its package seen; as `observe` reports it.
    assert_eq!(observed(0).packages, vec![("tool".to_string(), "1.0".to_string())]);
    assert_eq!((observed(0).image_id.as_str(), observed(0).running), (V1, true));
    // Stopped: not running, no health check asked.
    assert!(!observed(1).running);
    assert_eq!(sightings[1].health, None);
    // Removed, and never made: gone.
    assert_eq!(sightings[2], Sighting::default());
    assert_eq!(sightings[7], Sighting::default());
    // Changed out of band: the image it runs, not the one recorded on it.
    assert_eq!(observed(3).image_id, V2);
    assert_eq!(observed(4).image_id, V2);
    assert!(observed(5).image_id.ends_with(&v2_id), "the ID it runs: {}", observed(5).image_id);
    // A name that moved on is no change of an instance that was not made again.
    assert_eq!(observed(6).image_id, moving);
    for (n, sighting) in sightings.iter().enumerate() {
        assert_eq!(sighting.observation, fleet.observe(&ids[n]).await.expect("observe"), "instance {}", n + 1);
        if sighting.observation.as_ref().is_some_and(|observation| observation.running) {
            assert_eq!(sighting.health, Some(HealthStatus::Healthy), "instance {}", n + 1);
        }
    }

    // A package removed by hand shows; an instance whose health path fails shows.
    podman(&["exec", &fleet.container_name(&ids[0]), "rm", "/etc/rollscale/packages"]);
    podman(&["exec", &fleet.container_name(&ids[4]), "rm", "/www/health"]);
    let sightings = look_until(&fleet, &ids[..5], |sightings| {
        sightings[0].observation.as_ref().is_some_and(|observation| observation.packages.is_empty())
            && sightings[4].health == Some(HealthStatus::Unhealthy)
    })
    .await;
    assert!(sightings[4].observation.as_ref().expect("exists").running);

    // The instance changed out of band is not "already on" its recorded image: replacing
    // makes it so.
    let address = fleet.replace_image(&ids[3], V1).await.expect("replace with v1");
    assert_eq!(fleet.observe(&ids[3]).await.expect("observe").expect("exists").image_id, V1);
    assert_eq!(get(&address, "/").await.1.trim(), "rollscale demo version v1");
}

#[tokio::test]
async fn an_instance_being_changed_is_not_judged_from_a_look() {
    let group = Group::new("busy");
    // Patient with a broken image: the replacement below holds the instance for 3 s.
    let fleet =
        DockerFleet::connect(&docker_host(), DockerConfig { health_timeout: Duration::from_secs(3), ..config() })
            .expect("connect");
    let id = group.instance(1);
    fleet.create_instance(&group.spec(1, V1)).await.expect("create");
    let replacing = {
        let (fleet, id) = (fleet.clone(), id.clone());
        tokio::spawn(async move { fleet.replace_image(&id, "localhost/rollscale-demo:broken").await })
    };
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match fleet.look(std::slice::from_ref(&id)).await.remove(0).1 {
            Err(FleetError::Unavailable(message)) => {
                assert!(message.contains("is being changed"), "{message}");
                break;
            }
            other => assert!(Instant::now() < deadline, "never seen busy: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let outcome = replacing.await.expect("the replacement task");
    assert!(matches!(&outcome, Err(FleetError::Failed(m)) if m.contains("did not answer 200")), "{outcome:?}");
    // Changed: what it became, and its failing check.
    let (_, look) = fleet.look(std::slice::from_ref(&id)).await.remove(0);
    let look = look.expect("answered");
    assert_eq!(look.observation.expect("exists").image_id, "localhost/rollscale-demo:broken");
    assert_eq!(look.health, Some(HealthStatus::Unhealthy));
}
