//! The simulated fleet and load balancer through the `Fleet` and `LoadBalancer` traits.

use rollscale_core::domain::{ContainerSpec, GroupType, HealthStatus, OsType};
use rollscale_core::ids::{InstanceId, LoadBalancerId, ScalingGroupId};
use rollscale_core::params::{CommandType, ContainerUpdateType, PackageAction, ScriptSpec};
use rollscale_fleet::sim::{SimBackend, SimConfig, SimFleet, SimLbConfig, SimLoadBalancer};
use rollscale_fleet::{
    Fault, Fleet, FleetError, InstanceObservation, InstanceSpec, LoadBalancer, PackageOperation, Sighting,
};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// A new run id for each call: every call of these tests is a run of its own.
fn next_run() -> rollscale_fleet::RunId {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    rollscale_fleet::RunId::new(format!("test-run-{}-{n}", std::process::id())).expect("run id")
}

fn id(n: u32) -> InstanceId {
    InstanceId::parse(&format!("i-sim{n:06}")).expect("valid instance id")
}

fn lb_id(name: &str) -> LoadBalancerId {
    LoadBalancerId::parse(&format!("lb-{name}")).expect("valid lb id")
}

fn spec(n: u32, image: &str) -> InstanceSpec {
    InstanceSpec {
        id: id(n),
        group_id: ScalingGroupId::parse("asg-test").expect("valid group id"),
        group_type: GroupType::ECS,
        image_id: image.to_string(),
        containers: Vec::new(),
    }
}

fn container(name: &str, image: &str) -> ContainerSpec {
    ContainerSpec { name: name.into(), image: image.into(), ..Default::default() }
}

fn shell(script: &str) -> ScriptSpec {
    ScriptSpec { command_type: CommandType::RunShellScript, script: script.into(), working_dir: None, timeout_s: 600 }
}

fn package(action: PackageAction, version: &str, script: &str) -> PackageOperation {
    PackageOperation { name: "nginx".into(), version: version.into(), action, script: script.into(), timeout_s: 600 }
}

/// A fleet without latency.
fn fleet(config: SimConfig) -> SimFleet {
    SimFleet::new(SimConfig { latency_ms: 0, ..config })
}

async fn fleet_with(instances: &[(u32, &str)]) -> SimFleet {
    let fleet = fleet(SimConfig::default());
    for (n, image) in instances {
        fleet.create_instance(&spec(*n, image)).await.expect("create");
    }
    fleet
}

#[tokio::test]
async fn create_is_idempotent_and_reports_the_existing_instance() {
    let fleet = fleet(SimConfig::default());
    let first = fleet.create_instance(&spec(1, "ubuntu_22")).await.expect("create");
    assert_eq!(first.id, id(1));
    assert_eq!(first.image_id, "ubuntu_22");
    assert_eq!(first.os, OsType::Linux);
    assert!(first.running);
    assert_eq!(first.address, "sim://i-sim000001");
    assert!(first.packages.is_empty());

    let again = fleet.create_instance(&spec(1, "other_image")).await.expect("create again");
    assert_eq!(again, first);
    assert_eq!(fleet.calls().create, 2);
    assert_eq!(fleet.len(), 1);
    assert_eq!(fleet.health(&id(1)).await, Ok(HealthStatus::Healthy));

    let windows = fleet.create_instance(&spec(2, "win2019_64_dtc")).await.expect("create");
    assert_eq!(windows.os, OsType::Windows);
    assert_eq!(fleet.instance_ids(), vec![id(1), id(2)]);
}

#[tokio::test]
async fn create_takes_the_containers_of_the_spec() {
    let fleet = fleet(SimConfig::default());
    let mut eci = spec(1, "eci");
    eci.group_type = GroupType::ECI;
    eci.containers = vec![container("web", "nginx:1"), container("side", "envoy:1")];
    let observation = fleet.create_instance(&eci).await.expect("create");
    assert_eq!(observation.containers, eci.containers);
}

#[tokio::test]
async fn remove_is_fine_when_absent() {
    let fleet = fleet_with(&[(1, "ubuntu")]).await;
    assert_eq!(fleet.remove_instance(&id(1)).await, Ok(()));
    assert_eq!(fleet.remove_instance(&id(1)).await, Ok(()));
    assert_eq!(fleet.remove_instance(&id(9)).await, Ok(()));
    assert_eq!(fleet.observe(&id(1)).await, Ok(None));
    assert_eq!(fleet.calls().remove, 3);
    assert!(fleet.is_empty());
}

#[tokio::test]
async fn operations_on_an_unknown_instance_are_not_found() {
    let fleet = fleet(SimConfig::default());
    let missing = id(404);
    let not_found = FleetError::NotFound(missing.clone());
    assert_eq!(fleet.replace_image(&missing, "x").await, Err(not_found.clone()));
    assert_eq!(fleet.run_script(&missing, &shell("echo"), &next_run()).await, Err(not_found.clone()));
    assert_eq!(
        fleet.apply_package(&missing, &package(PackageAction::Install, "1", ""), &next_run()).await,
        Err(not_found.clone())
    );
    assert_eq!(fleet.update_containers(&missing, ContainerUpdateType::RenewUpdate, &[]).await, Err(not_found.clone()));
    assert_eq!(fleet.create_image(&missing, "name").await, Err(not_found.clone()));
    assert_eq!(fleet.health(&missing).await, Err(not_found));
    assert_eq!(fleet.observe(&missing).await, Ok(None));
    let calls = fleet.calls();
    assert_eq!(
        (calls.replace_image, calls.run_script, calls.apply_package, calls.update_containers, calls.create_image),
        (1, 1, 1, 1, 1)
    );
    assert_eq!((calls.health, calls.observe, calls.injected_failures), (1, 1, 0));
}

#[tokio::test]
async fn replace_image_changes_image_os_and_health_and_is_a_noop_when_already_there() {
    let fleet = fleet_with(&[(1, "ubuntu_20")]).await;
    assert!(fleet.set_health(&id(1), HealthStatus::Unhealthy));
    fleet.replace_image(&id(1), "win2022_64").await.expect("replace");
    let observation = fleet.snapshot(&id(1)).expect("exists");
    assert_eq!(observation.image_id, "win2022_64");
    assert_eq!(observation.os, OsType::Windows);
    assert_eq!(fleet.health(&id(1)).await, Ok(HealthStatus::Healthy));

    assert!(fleet.set_health(&id(1), HealthStatus::Unhealthy));
    fleet.replace_image(&id(1), "win2022_64").await.expect("no-op");
    // A no-op changes nothing, not even the health.
    assert_eq!(fleet.health(&id(1)).await, Ok(HealthStatus::Unhealthy));
    let calls = fleet.calls();
    assert_eq!((calls.replace_image, calls.noop_replace_image), (2, 1));
    assert!(!fleet.set_health(&id(2), HealthStatus::Healthy));
}

#[tokio::test]
async fn fail_next_fails_exactly_n_apply_operations_and_leaves_the_old_image() {
    let fleet = fleet_with(&[(1, "ubuntu_20"), (2, "ubuntu_20")]).await;
    fleet.fail_next(&id(1), 2);
    for _ in 0..2 {
        let error = fleet.replace_image(&id(1), "ubuntu_22").await.expect_err("injected");
        let FleetError::Failed(message) = &error else { panic!("expected Failed, got {error:?}") };
        assert!(message.starts_with("simulated failure: "), "{message}");
        assert_eq!(error.code(), "OperationFailed");
        assert_eq!(fleet.snapshot(&id(1)).expect("exists").image_id, "ubuntu_20");
    }
    fleet.replace_image(&id(1), "ubuntu_22").await.expect("third succeeds");
    fleet.replace_image(&id(2), "ubuntu_22").await.expect("other instance unaffected");
    assert_eq!(fleet.snapshot(&id(1)).expect("exists").image_id, "ubuntu_22");
    assert_eq!(fleet.calls().injected_failures, 2);
    assert_eq!(fleet.apply_op_count(&id(1)), Some(3));

    // Set before the instance exists; cleared by 0.
    fleet.fail_next(&id(3), 1);
    fleet.create_instance(&spec(3, "ubuntu_20")).await.expect("create");
    assert!(fleet.replace_image(&id(3), "ubuntu_22").await.is_err());
    fleet.fail_next(&id(1), 5);
    fleet.fail_next(&id(1), 0);
    fleet.replace_image(&id(1), "ubuntu_24").await.expect("cleared");
}

#[tokio::test]
async fn failing_instances_fail_every_apply_operation() {
    let fleet = fleet(SimConfig { fail_instances: HashSet::from([id(1)]), ..SimConfig::default() });
    for n in [1, 2] {
        fleet.create_instance(&spec(n, "ubuntu")).await.expect("create");
    }
    assert!(fleet.replace_image(&id(1), "new").await.is_err());
    assert!(fleet.update_containers(&id(1), ContainerUpdateType::RenewUpdate, &[container("a", "b")]).await.is_err());
    let outcome = fleet.run_script(&id(1), &shell("echo hi"), &next_run()).await.expect("ran and failed");
    assert_eq!(outcome.exit_code, Some(1));
    assert!(outcome.output.contains("simulated failure"));
    let outcome =
        fleet.apply_package(&id(1), &package(PackageAction::Install, "1", "echo ok"), &next_run()).await.expect("ran");
    assert_eq!(outcome.exit_code, Some(1));
    assert!(fleet.snapshot(&id(1)).expect("exists").packages.is_empty());
    // Not an apply operation: still works.
    let snapshot = fleet.create_image(&id(1), "snapshot").await.expect("create_image");
    assert_eq!(fleet.find_image_named("snapshot").await, Ok(Some(snapshot)));
    assert_eq!(fleet.find_image_named("other").await, Ok(None));
    assert_eq!(fleet.health(&id(1)).await, Ok(HealthStatus::Healthy));
    fleet.replace_image(&id(2), "new").await.expect("other instance");

    fleet.set_failing(&id(1), false);
    fleet.replace_image(&id(1), "new").await.expect("no longer failing");
    fleet.set_failing(&id(2), true);
    assert!(fleet.replace_image(&id(2), "newer").await.is_err());
    assert_eq!(fleet.calls().injected_failures, 5);
}

#[tokio::test]
async fn a_noop_replace_can_still_fail_by_injection() {
    let fleet = fleet_with(&[(1, "ubuntu")]).await;
    fleet.fail_next(&id(1), 1);
    assert!(fleet.replace_image(&id(1), "ubuntu").await.is_err());
    assert_eq!(fleet.calls().noop_replace_image, 0);
    fleet.replace_image(&id(1), "ubuntu").await.expect("no-op");
    assert_eq!(fleet.calls().noop_replace_image, 1);
}

#[tokio::test]
async fn run_script_follows_the_model() {
    let fleet = fleet_with(&[(1, "ubuntu")]).await;
    let outcome = fleet
        .run_script(
            &id(1),
            &shell("#!/bin/sh\necho \"hello\"\nhostname\ncat /etc/os-release\npwd\nexit 3\necho never"),
            &next_run(),
        )
        .await
        .expect("ran");
    assert_eq!(outcome.output, "hello\ni-sim000001\n+ cat /etc/os-release\n/root\n");
    assert_eq!(outcome.exit_code, Some(3));
    assert!(!outcome.timed_out && !outcome.truncated);

    let mut in_dir = shell("pwd");
    in_dir.working_dir = Some("/opt/app".into());
    assert_eq!(fleet.run_script(&id(1), &in_dir, &next_run()).await.expect("ran").output, "/opt/app\n");
    in_dir.working_dir = Some("/srv".into());
    let outcome = fleet.run_script(&id(1), &in_dir, &next_run()).await.expect("ran");
    assert_eq!(outcome.exit_code, Some(1));
    assert!(outcome.output.contains("no such directory: /srv"));

    let outcome = fleet.run_script(&id(1), &shell("echo a\nfail\necho b"), &next_run()).await.expect("ran");
    assert_eq!((outcome.exit_code, outcome.output.as_str()), (Some(1), "a\nsimulated failure\n"));
}

#[tokio::test]
async fn a_script_type_the_os_cannot_run_is_unsupported() {
    let fleet = fleet_with(&[(1, "ubuntu"), (2, "Win2019")]).await;
    let bat = ScriptSpec { command_type: CommandType::RunBatScript, ..shell("echo hi") };
    let powershell = ScriptSpec { command_type: CommandType::RunPowerShellScript, ..shell("Write-Output hi") };

    fleet.fail_next(&id(1), 1);
    assert_eq!(
        fleet.run_script(&id(1), &bat, &next_run()).await,
        Err(FleetError::Unsupported("instance i-sim000001 (linux) cannot run RunBatScript scripts".into()))
    );
    assert_eq!(
        fleet.run_script(&id(1), &powershell, &next_run()).await,
        Err(FleetError::Unsupported("instance i-sim000001 (linux) cannot run RunPowerShellScript scripts".into()))
    );
    assert_eq!(
        fleet.run_script(&id(2), &shell("echo hi"), &next_run()).await,
        Err(FleetError::Unsupported("instance i-sim000002 (windows) cannot run RunShellScript scripts".into()))
    );
    // An unsupported request is not an apply operation: the injected failure is still pending.
    assert_eq!(fleet.apply_op_count(&id(1)), Some(0));
    assert_eq!(fleet.run_script(&id(1), &shell("echo hi"), &next_run()).await.expect("ran").exit_code, Some(1));

    let outcome = fleet.run_script(&id(2), &bat, &next_run()).await.expect("windows runs bat");
    assert_eq!((outcome.exit_code, outcome.output.as_str()), (Some(0), "hi\n"));
    let outcome = fleet.run_script(&id(2), &powershell, &next_run()).await.expect("windows runs powershell");
    assert_eq!((outcome.exit_code, outcome.output.as_str()), (Some(0), "hi\n"));
    let exit_b = ScriptSpec { script: "@echo off\r\necho bye\r\nexit /b 5\r\n".into(), ..bat };
    assert_eq!(fleet.run_script(&id(2), &exit_b, &next_run()).await.expect("ran").exit_code, Some(5));
}

#[tokio::test]
async fn scripts_matching_fail_scripts_fail_with_exit_code_1() {
    let fleet = fleet(SimConfig { fail_scripts: vec!["rm -rf".into(), String::new()], ..SimConfig::default() });
    fleet.create_instance(&spec(1, "ubuntu")).await.expect("create");
    let outcome = fleet.run_script(&id(1), &shell("echo start\nrm -rf /tmp/cache"), &next_run()).await.expect("ran");
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(outcome.output, "simulated failure: the script contains \"rm -rf\"\n");
    // The empty pattern is ignored rather than failing everything.
    assert_eq!(fleet.run_script(&id(1), &shell("echo fine"), &next_run()).await.expect("ran").exit_code, Some(0));
    let outcome = fleet
        .apply_package(&id(1), &package(PackageAction::Install, "1.0", "rm -rf /opt/old"), &next_run())
        .await
        .expect("ran");
    assert_eq!(outcome.exit_code, Some(1));
    assert!(fleet.snapshot(&id(1)).expect("exists").packages.is_empty());
    assert_eq!(fleet.calls().injected_failures, 0);
}

#[tokio::test]
async fn packages_are_recorded_on_success_only() {
    let fleet = fleet_with(&[(1, "ubuntu"), (2, "win2019")]).await;
    let packages = |n| fleet.snapshot(&id(n)).expect("exists").packages;

    let outcome =
        fleet.apply_package(&id(1), &package(PackageAction::Install, "1.0", "echo installing"), &next_run()).await;
    assert_eq!(outcome.expect("ran").output, "installing\n");
    assert_eq!(packages(1), vec![("nginx".to_string(), "1.0".to_string())]);

    // The same version again: runs the script again and succeeds.
    let outcome = fleet.apply_package(&id(1), &package(PackageAction::Install, "1.0", "echo again"), &next_run()).await;
    assert_eq!(outcome.expect("ran").output, "again\n");
    assert_eq!(packages(1), vec![("nginx".to_string(), "1.0".to_string())]);

    // Upgrade in place.
    fleet.apply_package(&id(1), &package(PackageAction::Install, "1.1", ""), &next_run()).await.expect("ran");
    assert_eq!(packages(1), vec![("nginx".to_string(), "1.1".to_string())]);

    // A failing script leaves the packages as they were.
    let outcome =
        fleet.apply_package(&id(1), &package(PackageAction::Install, "2.0", "exit 2"), &next_run()).await.expect("ran");
    assert_eq!(outcome.exit_code, Some(2));
    assert_eq!(packages(1), vec![("nginx".to_string(), "1.1".to_string())]);

    // A script past its timeout too.
    let mut slow = package(PackageAction::Install, "2.0", "sleep 10");
    slow.timeout_s = 5;
    let outcome = fleet.apply_package(&id(1), &slow, &next_run()).await.expect("ran");
    assert!(outcome.timed_out);
    assert_eq!(outcome.exit_code, None);
    assert_eq!(packages(1), vec![("nginx".to_string(), "1.1".to_string())]);

    // So does an injected failure.
    fleet.fail_next(&id(1), 1);
    let outcome =
        fleet.apply_package(&id(1), &package(PackageAction::Uninstall, "1.1", ""), &next_run()).await.expect("ran");
    assert_eq!(outcome.exit_code, Some(1));
    assert_eq!(packages(1).len(), 1);

    fleet.apply_package(&id(1), &package(PackageAction::Uninstall, "1.1", "echo bye"), &next_run()).await.expect("ran");
    assert!(packages(1).is_empty());
    // Uninstalling what is absent succeeds.
    let outcome =
        fleet.apply_package(&id(1), &package(PackageAction::Uninstall, "1.1", ""), &next_run()).await.expect("ran");
    assert_eq!(outcome.exit_code, Some(0));

    // Package scripts are shell scripts everywhere, in /root.
    let outcome =
        fleet.apply_package(&id(2), &package(PackageAction::Install, "3", "pwd\nhostname"), &next_run()).await;
    assert_eq!(outcome.expect("ran").output, "/root\ni-sim000002\n");
    assert_eq!(packages(2), vec![("nginx".to_string(), "3".to_string())]);
}

#[tokio::test]
async fn update_containers_renews_or_merges() {
    let fleet = fleet(SimConfig::default());
    let mut eci = spec(1, "eci");
    eci.containers = vec![container("web", "nginx:1"), container("side", "envoy:1")];
    fleet.create_instance(&eci).await.expect("create");
    let containers = || fleet.snapshot(&id(1)).expect("exists").containers;

    let web2 = ContainerSpec { port: Some(8080), ..container("web", "nginx:2") };
    fleet
        .update_containers(&id(1), ContainerUpdateType::IncrementalUpdate, std::slice::from_ref(&web2))
        .await
        .expect("merge");
    assert_eq!(containers(), vec![web2.clone(), container("side", "envoy:1")]);

    let env_only = ContainerSpec { env: vec![("MODE".into(), "prod".into())], ..container("web", "") };
    fleet
        .update_containers(&id(1), ContainerUpdateType::IncrementalUpdate, &[env_only, container("cache", "redis:7")])
        .await
        .expect("merge");
    let merged = containers();
    assert_eq!(merged.len(), 3);
    assert_eq!(merged[0].image, "nginx:2");
    assert_eq!(merged[0].port, Some(8080));
    assert_eq!(merged[0].env, vec![("MODE".to_string(), "prod".to_string())]);
    assert_eq!(merged[2], container("cache", "redis:7"));

    fleet
        .update_containers(&id(1), ContainerUpdateType::RenewUpdate, &[container("only", "app:1")])
        .await
        .expect("renew");
    assert_eq!(containers(), vec![container("only", "app:1")]);
    fleet
        .update_containers(&id(1), ContainerUpdateType::RenewUpdate, &[container("only", "app:1")])
        .await
        .expect("no-op");
    fleet
        .update_containers(&id(1), ContainerUpdateType::IncrementalUpdate, &[container("only", "app:1")])
        .await
        .expect("no-op");
    let calls = fleet.calls();
    assert_eq!((calls.update_containers, calls.noop_update_containers), (5, 2));

    fleet.fail_next(&id(1), 1);
    let error = fleet
        .update_containers(&id(1), ContainerUpdateType::RenewUpdate, &[container("only", "app:2")])
        .await
        .expect_err("injected");
    assert!(matches!(error, FleetError::Failed(_)));
    assert_eq!(containers(), vec![container("only", "app:1")]);
}

#[tokio::test]
async fn create_image_numbers_images_and_remembers_their_base() {
    let fleet = fleet_with(&[(1, "ubuntu_22"), (2, "win2019")]).await;
    let first = fleet.create_image(&id(1), "golden").await.expect("image");
    let second = fleet.create_image(&id(2), "golden-win").await.expect("image");
    assert_eq!(first, "m-sim0000000000000001");
    assert_eq!(second, "m-sim0000000000000002");
    let images = fleet.known_images();
    assert_eq!(images.len(), 2);
    assert_eq!((images[0].id.as_str(), images[0].name.as_str()), (first.as_str(), "golden"));
    assert_eq!((images[0].base_image_id.as_str(), images[0].os), ("ubuntu_22", OsType::Linux));
    assert_eq!((images[1].base_image_id.as_str(), images[1].os), ("win2019", OsType::Windows));
    // An instance can move to a made image.
    fleet.replace_image(&id(1), &first).await.expect("replace");
    assert_eq!(fleet.calls().create_image, 2);
}

#[tokio::test]
async fn health_follows_running_overrides_and_broken_images() {
    let fleet = SimFleet::new(SimConfig {
        latency_ms: 0,
        unhealthy_images: HashSet::from(["bad_image".to_string()]),
        ..SimConfig::default()
    });
    for n in [1, 2] {
        fleet.create_instance(&spec(n, "good_image")).await.expect("create");
    }
    assert_eq!(fleet.health(&id(1)).await, Ok(HealthStatus::Healthy));
    assert!(fleet.set_running(&id(1), false));
    assert_eq!(fleet.health(&id(1)).await, Ok(HealthStatus::Unhealthy));
    assert!(fleet.set_running(&id(1), true));
    assert_eq!(fleet.health(&id(1)).await, Ok(HealthStatus::Healthy));

    fleet.replace_image(&id(1), "bad_image").await.expect("replace");
    assert_eq!(fleet.health(&id(1)).await, Ok(HealthStatus::Unhealthy));
    fleet.replace_image(&id(1), "good_image").await.expect("replace back");
    assert_eq!(fleet.health(&id(1)).await, Ok(HealthStatus::Healthy));

    fleet.set_unhealthy_image("broken:1", true);
    fleet
        .update_containers(&id(2), ContainerUpdateType::RenewUpdate, &[container("app", "broken:1")])
        .await
        .expect("update");
    assert_eq!(fleet.health(&id(2)).await, Ok(HealthStatus::Unhealthy));
    fleet.set_unhealthy_image("broken:1", false);
    assert_eq!(fleet.health(&id(2)).await, Ok(HealthStatus::Healthy));
    assert_eq!(fleet.calls().health, 7);
}

#[tokio::test]
async fn adopt_loads_the_store_state_and_snapshot_reports_it() {
    let fleet = fleet(SimConfig::default());
    let stored = InstanceObservation {
        id: id(1),
        image_id: "ubuntu".into(),
        packages: vec![("nginx".into(), "1.0".into()), ("redis".into(), "7".into())],
        containers: vec![container("web", "nginx:1")],
        running: true,
        // The store's word wins over the guess from the image id.
        os: OsType::Windows,
        address: "10.0.0.1:80".into(),
    };
    let stopped = InstanceObservation {
        id: id(2),
        image_id: "ubuntu".into(),
        packages: Vec::new(),
        containers: Vec::new(),
        running: false,
        os: OsType::Linux,
        address: String::new(),
    };
    fleet.adopt(vec![stored.clone(), stopped.clone()]);
    assert_eq!(fleet.snapshot(&id(1)), Some(stored.clone()));
    assert_eq!(fleet.observe(&id(1)).await, Ok(Some(stored.clone())));
    assert_eq!(fleet.snapshot(&id(2)).expect("adopted").address, "sim://i-sim000002");
    assert_eq!(fleet.health(&id(2)).await, Ok(HealthStatus::Unhealthy));
    assert_eq!(fleet.snapshot(&id(3)), None);

    // Adopting again replaces: the store is the truth.
    let changed = InstanceObservation { image_id: "ubuntu_24".into(), ..stored };
    fleet.adopt(vec![changed.clone()]);
    assert_eq!(fleet.snapshot(&id(1)), Some(changed));
    assert_eq!(fleet.len(), 2);
    // Creating an adopted instance reports it as it is.
    assert_eq!(fleet.create_instance(&spec(2, "other")).await.expect("create").image_id, "ubuntu");
    assert_eq!(fleet.calls().create, 1);
}

#[tokio::test]
async fn lose_next_response_applies_the_change_and_reports_unavailable() {
    let fleet = fleet_with(&[(1, "ubuntu")]).await;
    fleet.lose_next_response(&id(1), 1);
    let error = fleet.replace_image(&id(1), "ubuntu_24").await.expect_err("lost");
    assert!(matches!(error, FleetError::Unavailable(_)), "{error:?}");
    assert_eq!(fleet.snapshot(&id(1)).expect("exists").image_id, "ubuntu_24");
    // The retry after re-observing is a no-op.
    fleet.replace_image(&id(1), "ubuntu_24").await.expect("no-op");
    assert_eq!(fleet.calls().noop_replace_image, 1);

    fleet.lose_next_response(&id(1), 1);
    let error =
        fleet.apply_package(&id(1), &package(PackageAction::Install, "1", ""), &next_run()).await.expect_err("lost");
    assert_eq!(error.code(), "BackendUnavailable");
    assert_eq!(fleet.snapshot(&id(1)).expect("exists").packages.len(), 1);
    assert_eq!(fleet.calls().lost_responses, 2);

    // An injected failure takes precedence and leaves the lost response pending.
    fleet.fail_next(&id(1), 1);
    fleet.lose_next_response(&id(1), 1);
    assert!(matches!(fleet.replace_image(&id(1), "x").await, Err(FleetError::Failed(_))));
    assert!(matches!(fleet.run_script(&id(1), &shell("echo"), &next_run()).await, Err(FleetError::Unavailable(_))));
}

#[tokio::test(start_paused = true)]
async fn every_operation_takes_the_latency() {
    let fleet = SimFleet::new(SimConfig { latency_ms: 100, ..SimConfig::default() });
    let start = tokio::time::Instant::now();
    fleet.create_instance(&spec(1, "ubuntu")).await.expect("create");
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    fleet.replace_image(&id(1), "ubuntu_24").await.expect("replace");
    assert_eq!(fleet.replace_image(&id(2), "x").await, Err(FleetError::NotFound(id(2))));
    fleet.health(&id(1)).await.expect("health");
    assert_eq!(start.elapsed(), Duration::from_millis(400));
    fleet.set_latency_ms(0);
    fleet.observe(&id(1)).await.expect("observe");
    assert_eq!(start.elapsed(), Duration::from_millis(400));
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_gives_up_midway_may_or_may_not_have_had_an_effect() {
    let fleet = fleet_with(&[(1, "ubuntu")]).await;
    fleet.set_latency_ms(100);
    // Given up in the first half: no effect.
    let early = tokio::time::timeout(Duration::from_millis(10), fleet.replace_image(&id(1), "v2")).await;
    assert!(early.is_err());
    assert_eq!(fleet.snapshot(&id(1)).expect("exists").image_id, "ubuntu");
    // Given up in the second half: the change happened, the caller does not know.
    let late = tokio::time::timeout(Duration::from_millis(60), fleet.replace_image(&id(1), "v2")).await;
    assert!(late.is_err());
    assert_eq!(fleet.snapshot(&id(1)).expect("exists").image_id, "v2");
}

#[tokio::test(start_paused = true)]
async fn script_sleeps_take_scaled_real_time_and_time_out() {
    let fleet = SimFleet::new(SimConfig { latency_ms: 0, time_scale: 0.01, ..SimConfig::default() });
    fleet.create_instance(&spec(1, "ubuntu")).await.expect("create");
    let start = tokio::time::Instant::now();
    let outcome = fleet.run_script(&id(1), &shell("sleep 30\nsleep 30\necho done"), &next_run()).await.expect("ran");
    assert_eq!(outcome.exit_code, Some(0));
    assert_eq!(start.elapsed(), Duration::from_millis(600));

    let start = tokio::time::Instant::now();
    let timeout = ScriptSpec { timeout_s: 100, ..shell("echo started\nsleep 60\nsleep 60\necho never") };
    let outcome = fleet.run_script(&id(1), &timeout, &next_run()).await.expect("ran");
    assert!(outcome.timed_out);
    assert_eq!(outcome.exit_code, None);
    assert_eq!(outcome.output, "started\n");
    // It ran until the timeout: 100 simulated seconds.
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

#[tokio::test]
async fn long_output_is_truncated() {
    let fleet = fleet_with(&[(1, "ubuntu")]).await;
    let script = format!("echo {}\n", "x".repeat(1000)).repeat(30);
    let outcome = fleet.run_script(&id(1), &shell(&script), &next_run()).await.expect("ran");
    assert!(outcome.truncated);
    assert_eq!(outcome.output.len(), rollscale_fleet::MAX_OUTPUT_BYTES);
    assert_eq!(outcome.exit_code, Some(0));
}

/// Runs a fixed sequence of apply operations; returns which of them failed.
async fn fault_pattern(seed: u64, instances: u32, rounds: u32) -> Vec<bool> {
    let fleet = fleet(SimConfig { seed, fail_rate: 0.3, ..SimConfig::default() });
    for n in 0..instances {
        fleet.create_instance(&spec(n, "ubuntu")).await.expect("create");
    }
    let mut failed = Vec::new();
    for round in 0..rounds {
        for n in 0..instances {
            let result = match round % 4 {
                0 => fleet.replace_image(&id(n), &format!("image_{round}")).await.is_err(),
                1 => fleet.run_script(&id(n), &shell("echo hi"), &next_run()).await.expect("ran").exit_code != Some(0),
                2 => {
                    let operation = package(PackageAction::Install, &round.to_string(), "echo ok");
                    fleet.apply_package(&id(n), &operation, &next_run()).await.expect("ran").exit_code != Some(0)
                }
                _ => fleet
                    .update_containers(&id(n), ContainerUpdateType::RenewUpdate, &[container("c", &round.to_string())])
                    .await
                    .is_err(),
            };
            failed.push(result);
        }
    }
    failed
}

#[tokio::test]
async fn a_seeded_run_is_replayable() {
    let first = fault_pattern(42, 20, 12).await;
    let second = fault_pattern(42, 20, 12).await;
    assert_eq!(first, second);
    let failures = first.iter().filter(|failed| **failed).count();
    // 240 draws at 0.3: far from 0 and from all.
    assert!((40..=110).contains(&failures), "{failures} failures");
    let other_seed = fault_pattern(43, 20, 12).await;
    assert_ne!(first, other_seed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_do_not_depend_on_how_instances_interleave() {
    let sequential = fault_pattern(7, 50, 1).await;
    let fleet = fleet(SimConfig { seed: 7, fail_rate: 0.3, ..SimConfig::default() });
    for n in 0..50 {
        fleet.create_instance(&spec(n, "ubuntu")).await.expect("create");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for n in (0..50).rev() {
        let fleet = fleet.clone();
        tasks.spawn(async move { (n, fleet.replace_image(&id(n), "image_0").await.is_err()) });
    }
    let mut concurrent = vec![false; 50];
    while let Some(joined) = tasks.join_next().await {
        let (n, failed) = joined.expect("task");
        concurrent[n as usize] = failed;
    }
    assert_eq!(concurrent, sequential);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_instances_update_concurrently() {
    const COUNT: u32 = 10_000;
    let fleet = Arc::new(fleet(SimConfig::default()));
    let start = std::time::Instant::now();
    for n in 0..COUNT {
        fleet.create_instance(&spec(n, "ubuntu_20")).await.expect("create");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..COUNT {
        let fleet = Arc::clone(&fleet);
        tasks.spawn(async move { fleet.replace_image(&id(n), "ubuntu_22").await });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task").expect("replace");
    }
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_eq!(fleet.len(), COUNT as usize);
    let calls = fleet.calls();
    assert_eq!((calls.create, calls.replace_image, calls.noop_replace_image), (10_000, 10_000, 0));
    assert!(fleet.instance_ids().iter().all(|id| fleet.snapshot(id).expect("exists").image_id == "ubuntu_22"));
}

#[tokio::test]
async fn drivers_work_as_trait_objects() {
    let fleet: Arc<dyn Fleet> = Arc::new(fleet(SimConfig::default()));
    let balancer: Arc<dyn LoadBalancer> = Arc::new(SimLoadBalancer::default());
    assert_eq!((fleet.name(), balancer.name()), ("sim", "sim"));
    let observation = fleet.create_instance(&spec(1, "ubuntu")).await.expect("create");
    balancer.register(&lb_id("a"), &observation.id, &observation.address, 100).await.expect("register");
    assert_eq!(balancer.weight(&lb_id("a"), &id(1)).await, Ok(Some(100)));
}

#[tokio::test]
async fn load_balancer_registration_and_weights() {
    let balancer = SimLoadBalancer::default();
    let (lb, other) = (lb_id("web"), lb_id("other"));
    assert_eq!(balancer.weight(&lb, &id(1)).await, Ok(None));
    assert_eq!(
        balancer.set_weight(&lb, &id(1), 50).await,
        Err(FleetError::Failed("instance i-sim000001 is not registered with lb-web".into()))
    );
    assert_eq!(balancer.deregister(&lb, &id(1)).await, Ok(()));
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(0));

    balancer.register(&lb, &id(1), "sim://i-sim000001", 100).await.expect("register");
    balancer.register(&lb, &id(2), "sim://i-sim000002", 100).await.expect("register");
    assert_eq!(balancer.weight(&lb, &id(1)).await, Ok(Some(100)));
    assert_eq!(balancer.weight(&other, &id(1)).await, Ok(None));
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(10));

    // Registering again updates.
    balancer.register(&lb, &id(1), "10.0.0.1:80", 60).await.expect("register again");
    let backends = balancer.backends(&lb);
    assert_eq!(backends.len(), 2);
    assert_eq!((backends[0].address.as_str(), backends[0].weight), ("10.0.0.1:80", 60));

    balancer.set_weight(&lb, &id(1), 0).await.expect("weight 0");
    assert_eq!(balancer.weight(&lb, &id(1)).await, Ok(Some(0)));
    // No drain time: the connections are gone at once.
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(0));
    assert_eq!(balancer.active_connections(&lb, &id(2)).await, Ok(10));

    balancer.deregister(&lb, &id(1)).await.expect("deregister");
    assert_eq!(balancer.weight(&lb, &id(1)).await, Ok(None));
    assert_eq!(balancer.backends(&lb).len(), 1);
    let calls = balancer.calls();
    assert_eq!(
        (calls.register, calls.deregister, calls.set_weight, calls.weight, calls.active_connections),
        (3, 2, 2, 5, 4)
    );
}

#[tokio::test(start_paused = true)]
async fn connections_drain_after_the_weight_drops_to_zero() {
    let balancer = SimLoadBalancer::new(SimLbConfig { drain_ms: 1000, ..SimLbConfig::default() });
    let lb = lb_id("web");
    balancer.register(&lb, &id(1), "sim://i-sim000001", 100).await.expect("register");
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(10));

    balancer.set_weight(&lb, &id(1), 0).await.expect("drain");
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(10));
    tokio::time::advance(Duration::from_millis(600)).await;
    // Setting 0 again does not restart the drain.
    balancer.set_weight(&lb, &id(1), 0).await.expect("drain again");
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(4));
    tokio::time::advance(Duration::from_millis(400)).await;
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(0));

    // Back in service, then drained again: the drain starts over.
    balancer.set_weight(&lb, &id(1), 100).await.expect("serve");
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(10));
    balancer.set_weight(&lb, &id(1), 0).await.expect("drain");
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(5));

    // A stuck backend never drains.
    assert!(balancer.set_stuck(&lb, &id(1), true));
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(10));
    assert!(balancer.set_stuck(&lb, &id(1), false));
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(0));
    assert!(!balancer.set_stuck(&lb, &id(2), true));
}

#[tokio::test(start_paused = true)]
async fn a_backend_registered_at_weight_zero_drains_from_registration() {
    let balancer = SimLoadBalancer::new(SimLbConfig { drain_ms: 200, connections: 4, latency_ms: 0 });
    let lb = lb_id("web");
    balancer.register(&lb, &id(1), "sim://i-sim000001", 0).await.expect("register");
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(4));
    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(0));
}

#[tokio::test]
async fn the_load_balancer_adopts_the_store_backends() {
    let balancer = SimLoadBalancer::new(SimLbConfig { drain_ms: 1000, ..SimLbConfig::default() });
    let lb = lb_id("web");
    let backend = |n: u32, weight: u32| SimBackend { instance_id: id(n), address: format!("sim://{}", id(n)), weight };
    balancer.adopt(&lb, vec![backend(1, 100), backend(2, 0)]);
    assert_eq!(balancer.backends(&lb), vec![backend(1, 100), backend(2, 0)]);
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(10));
    // Adopted at weight 0: drained already.
    assert_eq!(balancer.active_connections(&lb, &id(2)).await, Ok(0));
    balancer.set_weight(&lb, &id(2), 100).await.expect("registered by adoption");
    balancer.adopt(&lb, vec![backend(1, 30)]);
    assert_eq!(balancer.weight(&lb, &id(1)).await, Ok(Some(30)));
    assert_eq!(balancer.calls().register, 0);
}

/// A run asked for again reports its first outcome (also a failed one, and one whose answer
/// was lost) without running, deciding a fault or counting an apply operation.
#[tokio::test]
async fn a_run_asked_for_again_is_replayed_not_run() {
    let fleet = fleet_with(&[(1, "ubuntu")]).await;
    let run = next_run();
    fleet.fail_next(&id(1), 1);
    let failed = fleet.run_script(&id(1), &shell("echo hi"), &run).await.expect("run");
    assert_eq!(failed.exit_code, Some(1));
    assert_eq!(fleet.run_script(&id(1), &shell("echo hi"), &run).await.expect("again"), failed, "not run again");
    let fresh = fleet.run_script(&id(1), &shell("echo hi"), &next_run()).await.expect("a new run");
    assert_eq!((fresh.exit_code, fresh.output.as_str()), (Some(0), "hi\n"));

    let lost = next_run();
    fleet.lose_next_response(&id(1), 1);
    let install = package(PackageAction::Install, "2", "echo installing");
    assert!(matches!(fleet.apply_package(&id(1), &install, &lost).await, Err(FleetError::Unavailable(_))));
    let replayed = fleet.apply_package(&id(1), &install, &lost).await.expect("the lost answer, again");
    assert_eq!(replayed.exit_code, Some(0));
    let calls = fleet.calls();
    assert_eq!((calls.run_script, calls.apply_package, calls.replayed_runs), (3, 2, 2));
    assert_eq!(fleet.apply_op_count(&id(1)), Some(3), "replays are not apply operations");
}

/// One look at one instance, through `look`.
async fn look_at(fleet: &SimFleet, n: u32) -> Sighting {
    let mut looks = fleet.look(&[id(n)]).await;
    assert_eq!(looks.len(), 1);
    let (looked, sighting) = looks.remove(0);
    assert_eq!(looked, id(n));
    sighting.expect("the simulated fleet always answers")
}

#[tokio::test]
async fn look_sees_many_instances_at_once_and_the_gone_ones() {
    let fleet = fleet_with(&[(1, "ubuntu"), (2, "centos"), (3, "ubuntu")]).await;
    assert!(fleet.set_running(&id(2), false));
    fleet.remove_instance(&id(3)).await.expect("remove");
    let looks = fleet.look(&[id(1), id(2), id(3)]).await;
    assert_eq!(fleet.calls().look, 1, "one look at all of them");
    assert_eq!(looks.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), vec![id(1), id(2), id(3)]);
    let sightings: Vec<Sighting> = looks.into_iter().map(|(_, sighting)| sighting.expect("answered")).collect();
    assert_eq!(sightings[0].observation, fleet.snapshot(&id(1)));
    assert_eq!(sightings[0].health, Some(HealthStatus::Healthy));
    // Stopped: seen, not running, and its health check not asked.
    let stopped = sightings[1].observation.as_ref().expect("exists");
    assert!(!stopped.running);
    assert_eq!(sightings[1].health, None);
    // Removed: gone.
    assert_eq!(sightings[2], Sighting::default());
    assert_eq!(fleet.calls().health, 0, "a look is not a health call");
}

#[tokio::test]
async fn a_crash_stops_the_instance_until_cleared() {
    let fleet = fleet_with(&[(1, "ubuntu"), (2, "ubuntu")]).await;
    fleet.inject_fault(&id(1), Fault::Crash).await.expect("crash");
    let crashed = look_at(&fleet, 1).await;
    let observation = crashed.observation.expect("a crashed instance still exists");
    assert!(!observation.running);
    assert_eq!(observation.image_id, "ubuntu");
    assert_eq!(crashed.health, None);
    assert_eq!(fleet.health(&id(1)).await, Ok(HealthStatus::Unhealthy));
    // Another instance is untouched; crashing again is fine.
    assert_eq!(look_at(&fleet, 2).await.health, Some(HealthStatus::Healthy));
    fleet.inject_fault(&id(1), Fault::Crash).await.expect("crash again");

    // Cleared: it runs again, healthy.
    fleet.inject_fault(&id(1), Fault::Clear).await.expect("clear");
    let cleared = look_at(&fleet, 1).await;
    assert!(cleared.observation.expect("exists").running);
    assert_eq!(cleared.health, Some(HealthStatus::Healthy));
}

#[tokio::test]
async fn an_unhealthy_instance_runs_failing_its_check_until_changed_or_cleared() {
    let fleet = fleet_with(&[(1, "ubuntu")]).await;
    fleet.inject_fault(&id(1), Fault::Unhealthy).await.expect("unhealthy");
    let sick = look_at(&fleet, 1).await;
    assert!(sick.observation.expect("exists").running, "it runs");
    assert_eq!(sick.health, Some(HealthStatus::Unhealthy));
    assert_eq!(fleet.health(&id(1)).await, Ok(HealthStatus::Unhealthy));
    // A replacement that changes nothing (already on the image) leaves it failing.
    fleet.replace_image(&id(1), "ubuntu").await.expect("a no-op");
    assert_eq!(look_at(&fleet, 1).await.health, Some(HealthStatus::Unhealthy));
    // A change of the instance ends it.
    fleet.replace_image(&id(1), "centos").await.expect("replace");
    assert_eq!(look_at(&fleet, 1).await.health, Some(HealthStatus::Healthy));

    // So does clearing it; and containers that change do too.
    fleet.inject_fault(&id(1), Fault::Unhealthy).await.expect("unhealthy again");
    fleet.inject_fault(&id(1), Fault::Clear).await.expect("clear");
    assert_eq!(look_at(&fleet, 1).await.health, Some(HealthStatus::Healthy));
    fleet.inject_fault(&id(1), Fault::Unhealthy).await.expect("unhealthy again");
    fleet
        .update_containers(&id(1), ContainerUpdateType::RenewUpdate, &[container("app", "nginx:2")])
        .await
        .expect("update");
    assert_eq!(look_at(&fleet, 1).await.health, Some(HealthStatus::Healthy));
}

#[tokio::test]
async fn fail_next_fails_the_next_changes_as_before_and_clear_ends_every_fault() {
    let fleet = fleet_with(&[(1, "ubuntu"), (2, "ubuntu")]).await;
    fleet.inject_fault(&id(1), Fault::FailNext { times: 2 }).await.expect("fail next");
    for _ in 0..2 {
        assert!(matches!(fleet.replace_image(&id(1), "centos").await, Err(FleetError::Failed(_))));
    }
    fleet.replace_image(&id(1), "centos").await.expect("the third succeeds");
    assert_eq!(fleet.calls().injected_failures, 2);
    // The fault itself leaves the instance healthy and running.
    assert_eq!(look_at(&fleet, 1).await.health, Some(HealthStatus::Healthy));

    // Clear ends a pending FailNext and a failing instance, and starts a stopped one.
    fleet.inject_fault(&id(2), Fault::FailNext { times: 5 }).await.expect("fail next");
    fleet.set_failing(&id(2), true);
    fleet.inject_fault(&id(2), Fault::Crash).await.expect("crash");
    fleet.inject_fault(&id(2), Fault::Clear).await.expect("clear");
    fleet.replace_image(&id(2), "centos").await.expect("no fault left");
    assert_eq!(look_at(&fleet, 2).await.health, Some(HealthStatus::Healthy));
}

#[tokio::test]
async fn a_fault_needs_an_instance_and_a_known_kind() {
    let fleet = fleet_with(&[(1, "ubuntu")]).await;
    for fault in [Fault::FailNext { times: 1 }, Fault::Crash, Fault::Unhealthy, Fault::Clear] {
        assert_eq!(fleet.inject_fault(&id(9), fault).await, Err(FleetError::NotFound(id(9))), "{fault:?}");
    }
    assert_eq!(fleet.len(), 1, "nothing made");
    assert_eq!(Fault::parse("FailNext", 3), Some(Fault::FailNext { times: 3 }));
    assert_eq!(Fault::parse("Crash", 0), Some(Fault::Crash));
    assert_eq!(Fault::parse("Unhealthy", 0), Some(Fault::Unhealthy));
    assert_eq!(Fault::parse("Clear", 0), Some(Fault::Clear));
    for unknown in ["crash", "Explode", ""] {
        assert_eq!(Fault::parse(unknown, 1), None, "{unknown:?}");
    }
    assert!(Fault::KINDS.iter().all(|kind| Fault::parse(kind, 1).is_some()));
}

#[tokio::test]
async fn the_container_fleet_refuses_faults() {
    // Never contacted: the refusal comes first.
    let config = rollscale_fleet::docker::DockerConfig::default();
    let docker = rollscale_fleet::docker::DockerFleet::connect("tcp://127.0.0.1:9", config)
        .expect("connecting does not contact the backend");
    for fault in [Fault::FailNext { times: 1 }, Fault::Crash, Fault::Unhealthy, Fault::Clear] {
        assert_eq!(
            docker.inject_fault(&id(1), fault).await,
            Err(FleetError::Unsupported("the docker fleet does not simulate faults".into()))
        );
    }
}

#[tokio::test]
async fn a_load_balancer_with_the_fleet_sends_no_traffic_to_a_failing_backend() {
    let fleet = fleet_with(&[(1, "ubuntu"), (2, "ubuntu"), (3, "ubuntu")]).await;
    let balancer = SimLoadBalancer::default().with_fleet(fleet.clone());
    let lb = lb_id("web");
    for n in 1..=3 {
        balancer.register(&lb, &id(n), &format!("sim://{}", id(n)), 100).await.expect("register");
    }
    assert_eq!(balancer.check_status(&lb).await, Ok(vec![(id(1), true), (id(2), true), (id(3), true)]));
    assert_eq!(balancer.serving(&lb), vec![id(1), id(2), id(3)]);

    // Unhealthy, crashed, gone: each fails its check and gets no traffic, whatever its weight.
    fleet.inject_fault(&id(1), Fault::Unhealthy).await.expect("unhealthy");
    fleet.inject_fault(&id(2), Fault::Crash).await.expect("crash");
    balancer.set_weight(&lb, &id(2), 200).await.expect("a weight");
    assert_eq!(balancer.check_status(&lb).await, Ok(vec![(id(1), false), (id(2), false), (id(3), true)]));
    assert_eq!(balancer.serving(&lb), vec![id(3)]);
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(0));
    assert_eq!(balancer.active_connections(&lb, &id(2)).await, Ok(0));
    assert_eq!(balancer.active_connections(&lb, &id(3)).await, Ok(10));
    assert_eq!(balancer.weight(&lb, &id(2)).await, Ok(Some(200)), "the weight is kept");
    fleet.remove_instance(&id(3)).await.expect("remove");
    assert_eq!(balancer.check_status(&lb).await, Ok(vec![(id(1), false), (id(2), false), (id(3), false)]));
    assert!(balancer.serving(&lb).is_empty());

    // Back to health: traffic again, at its weight; weight 0 still means none.
    fleet.inject_fault(&id(1), Fault::Clear).await.expect("clear");
    fleet.inject_fault(&id(2), Fault::Clear).await.expect("clear");
    balancer.set_weight(&lb, &id(1), 0).await.expect("weight 0");
    assert_eq!(balancer.check_status(&lb).await, Ok(vec![(id(1), true), (id(2), true), (id(3), false)]));
    assert_eq!(balancer.serving(&lb), vec![id(2)]);
    assert_eq!(balancer.active_connections(&lb, &id(2)).await, Ok(10));
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(0));

    // Deregistered backends are not checked; another load balancer has its own backends.
    balancer.deregister(&lb, &id(3)).await.expect("deregister");
    assert_eq!(balancer.check_status(&lb).await, Ok(vec![(id(1), true), (id(2), true)]));
    assert_eq!(balancer.check_status(&lb_id("other")).await, Ok(vec![]));
    assert_eq!(balancer.calls().check_status, 6);
    assert_eq!(fleet.calls().health, 0, "the checks count no fleet call");
}

#[tokio::test]
async fn a_load_balancer_without_a_fleet_checks_nothing() {
    let balancer = SimLoadBalancer::default();
    let lb = lb_id("web");
    balancer.register(&lb, &id(1), "sim://i-sim000001", 100).await.expect("register");
    assert_eq!(balancer.check_status(&lb).await, Ok(vec![]));
    assert_eq!(balancer.serving(&lb), vec![id(1)]);
    assert_eq!(balancer.active_connections(&lb, &id(1)).await, Ok(10));
    // Its clones share the fleet it is given afterwards.
    let fleet = fleet(SimConfig::default());
    let clone = balancer.clone().with_fleet(fleet);
    assert_eq!(balancer.check_status(&lb).await, Ok(vec![(id(1), false)]), "no such instance");
    assert_eq!(clone.serving(&lb), Vec::<InstanceId>::new());
}
