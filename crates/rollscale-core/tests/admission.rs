//! R3's refusals at start and R12's rollback targets and defaults (`core::admission`), with
//! plain values: what the engine would have found in the store and the fleet, and what the
//! rules decide. The codes and messages are the ones clients see.

use rollscale_core::admission::{
    admit_beside, admit_change, admit_configuration, admit_group, default_rollback_change, rollback_eligible,
    rollback_targets, Refusal,
};
use rollscale_core::domain::{
    ConfigurationState, ContainerSpec, CreationType, GroupStatus, GroupType, HealthStatus, Instance, InstanceSource,
    LifecycleState, Process, ScalingConfiguration, ScalingGroup,
};
use rollscale_core::ids::{ExecutionId, InstanceId, ScalingConfigurationId, ScalingGroupId};
use rollscale_core::params::{
    BatchPauseOption, Change, CommandType, ContainerUpdateType, InvokeType, Kind, PackageAction, RollingUpdateSpec,
    ScriptSpec,
};
use rollscale_core::task::{InstanceWork, TaskState, TaskStatus, WaitingStatus};

fn group_id() -> ScalingGroupId {
    ScalingGroupId::parse("asg-admission01").expect("valid group id")
}

fn other_group_id() -> ScalingGroupId {
    ScalingGroupId::parse("asg-admission02").expect("valid group id")
}

fn configuration_id(text: &str) -> ScalingConfigurationId {
    ScalingConfigurationId::parse(text).expect("valid configuration id")
}

fn exec(text: &str) -> ExecutionId {
    ExecutionId::parse(text).expect("valid execution id")
}

fn instance_id(text: &str) -> InstanceId {
    InstanceId::parse(text).expect("valid instance id")
}

fn group(status: GroupStatus, group_type: GroupType) -> ScalingGroup {
    ScalingGroup {
        id: group_id(),
        name: "web".into(),
        region_id: "local".into(),
        group_type,
        status,
        min_size: 0,
        max_size: 10,
        desired_capacity: 2,
        source: InstanceSource::Configuration(configuration_id("asc-active01")),
        load_balancer_ids: vec![],
        suspended_processes: vec![],
        drain_timeout_s: 0,
        health_check_types: vec![],
        health_check_grace_period_s: 0,
        created_at: 0,
    }
}

fn active_group() -> ScalingGroup {
    group(GroupStatus::Active, GroupType::ECS)
}

fn configuration(id: &str, of: ScalingGroupId) -> ScalingConfiguration {
    ScalingConfiguration {
        id: configuration_id(id),
        group_id: of,
        name: id.into(),
        image_id: "img-old".into(),
        instance_type: "ecs.g6.large".into(),
        state: ConfigurationState::Active,
        containers: vec![],
        created_at: 0,
    }
}

fn change_of(kind: Kind) -> Change {
    match kind {
        Kind::ImageUpdate => Change::Image { image_id: "img-new".into() },
        Kind::ScriptExecution => Change::Script(ScriptSpec {
            command_type: CommandType::RunShellScript,
            script: "true".into(),
            working_dir: None,
            timeout_s: 600,
        }),
        Kind::PackageInstall => {
            Change::Package { name: "nginx".into(), version: "1.2".into(), action: PackageAction::Install }
        }
        Kind::ContainerGroupUpdate => Change::ContainerGroup {
            update_type: ContainerUpdateType::RenewUpdate,
            containers: vec![ContainerSpec { name: "app".into(), image: "app:2".into(), ..Default::default() }],
        },
    }
}

fn spec(kind: Kind, invoke_type: InvokeType, configuration: Option<&str>) -> RollingUpdateSpec {
    RollingUpdateSpec {
        kind,
        invoke_type,
        group_id: group_id(),
        configuration_id: configuration.map(configuration_id),
        change: change_of(kind),
        rollback_change: None,
        enter_process: Process::ALL.to_vec(),
        exit_process: Process::ALL.to_vec(),
        lifecycle_states: vec![LifecycleState::InService],
        batch_number: 5,
        batch_pause: BatchPauseOption::Automatic,
        max_errors: 0,
        source_execution_id: None,
        assume_role: String::new(),
    }
}

fn task(id: &str, status: TaskStatus) -> TaskState {
    let mut task = TaskState::new(exec(id), spec(Kind::ImageUpdate, InvokeType::Invoke, None), vec![1], vec![], 0);
    task.status = status;
    if status == TaskStatus::Waiting {
        task.waiting = Some(WaitingStatus::BatchPaused);
    }
    task
}

fn instance(id: &str, state: LifecycleState, created_at: i64, packages: &[(&str, &str)]) -> Instance {
    Instance {
        id: instance_id(id),
        group_id: group_id(),
        lifecycle_state: state,
        health_status: HealthStatus::Healthy,
        creation_type: CreationType::AutoCreated,
        image_id: "img-old".into(),
        packages: packages.iter().map(|(name, version)| (name.to_string(), version.to_string())).collect(),
        containers: vec![],
        tags: vec![],
        address: String::new(),
        created_at,
        changed_at: None,
        observed: None,
        observed_at: None,
    }
}

fn work(instance: &str, position: u32, applied: bool) -> InstanceWork {
    let mut work =
        InstanceWork::new(exec(&format!("exec-child{position:04}")), instance_id(instance), 0, position, false);
    work.applied = applied;
    work
}

fn assert_refused(result: Result<(), Refusal>, code: &str, message: &str, not_found: bool) {
    match result {
        Err(refusal) => {
            assert_eq!(refusal.code(), code, "{refusal:?}");
            assert_eq!(refusal.to_string(), message, "{refusal:?}");
            assert_eq!(refusal.is_not_found(), not_found, "{refusal:?}");
        }
        Ok(()) => panic!("admitted; expected {code}: {message}"),
    }
}

// ---------------------------------------------------------------------------------------------
// R3: the group
// ---------------------------------------------------------------------------------------------

/// R3: "a group that is not enabled" is refused; an Active one is admitted.
#[test]
fn r3_only_an_active_group_admits_a_rolling_update() {
    assert_eq!(admit_group(&active_group()), Ok(()));
    for status in [GroupStatus::Inactive, GroupStatus::Deleting] {
        assert_refused(
            admit_group(&group(status, GroupType::ECS)),
            "IncorrectScalingGroupStatus",
            &format!("the scaling group asg-admission01 is {status}, not Active"),
            false,
        );
    }
}

/// R3: "a rolling update of the group that is running or waiting" is refused, unless it is the
/// Waiting source of this rollback (R12: the rollback cancels it first).
#[test]
fn r3_one_rolling_update_of_a_group_at_a_time_but_a_rollback_of_the_waiting_one() {
    let group = active_group();
    let running = task("exec-running01", TaskStatus::Running);
    let waiting = task("exec-waiting01", TaskStatus::Waiting);
    assert_eq!(admit_beside(&group, None, None, false), Ok(()));
    assert_eq!(admit_beside(&group, None, Some(&exec("exec-finished1")), false), Ok(()));
    assert_refused(
        admit_beside(&group, Some(&running), None, false),
        "IncorrectScalingGroupStatus",
        "the scaling group asg-admission01 already has the rolling update exec-running01 (Running); one runs at a time",
        false,
    );
    assert_refused(
        admit_beside(&group, Some(&waiting), None, false),
        "IncorrectScalingGroupStatus",
        "the scaling group asg-admission01 already has the rolling update exec-waiting01 (Waiting (BatchPaused)); \
         one runs at a time",
        false,
    );
    // A rollback of another task while one waits, or of the running one, is refused.
    assert!(admit_beside(&group, Some(&waiting), Some(&exec("exec-finished1")), false).is_err());
    assert!(admit_beside(&group, Some(&running), Some(&running.id), false).is_err());
    // The rollback of the waiting one is admitted.
    assert_eq!(admit_beside(&group, Some(&waiting), Some(&waiting.id), false), Ok(()));
}

/// R3: "a scaling activity under way" is refused, after the check of the group's tasks.
#[test]
fn r3_a_scaling_activity_in_progress_refuses_a_start() {
    let group = active_group();
    assert_refused(
        admit_beside(&group, None, None, true),
        "ScalingActivityInProgress",
        "the scaling group asg-admission01 has a scaling activity in progress",
        false,
    );
    let waiting = task("exec-waiting01", TaskStatus::Waiting);
    assert_refused(
        admit_beside(&group, Some(&waiting), Some(&waiting.id), true),
        "ScalingActivityInProgress",
        "the scaling group asg-admission01 has a scaling activity in progress",
        false,
    );
    let running = task("exec-running01", TaskStatus::Running);
    assert_eq!(
        admit_beside(&group, Some(&running), None, true).map_err(|r| r.code().as_str()),
        Err("IncorrectScalingGroupStatus")
    );
}

// ---------------------------------------------------------------------------------------------
// R3: the change names things that exist and fit the group
// ---------------------------------------------------------------------------------------------

/// R3: a named scaling configuration exists, is the group's and, for an invoke, is its active
/// one; a rollback may name an older one of the group. Naming none is fine.
#[test]
fn r3_the_named_configuration_exists_belongs_to_the_group_and_is_active_for_an_invoke() {
    let group = active_group();
    let invoke = |configuration| spec(Kind::ImageUpdate, InvokeType::Invoke, configuration);
    let rollback = |configuration| spec(Kind::ImageUpdate, InvokeType::Rollback, configuration);
    assert_eq!(admit_configuration(&group, &invoke(None), None), Ok(()));
    assert_refused(
        admit_configuration(&group, &invoke(Some("asc-missing01")), None),
        "InvalidScalingConfigurationId.NotFound",
        "the scaling configuration asc-missing01 does not exist",
        true,
    );
    let foreign = configuration("asc-foreign01", other_group_id());
    assert_refused(
        admit_configuration(&group, &rollback(Some("asc-foreign01")), Some(&foreign)),
        "InvalidParameter",
        "the scaling configuration asc-foreign01 does not belong to asg-admission01",
        false,
    );
    let older = configuration("asc-older01", group_id());
    assert_refused(
        admit_configuration(&group, &invoke(Some("asc-older01")), Some(&older)),
        "InvalidParameter",
        "the scaling configuration asc-older01 is not the active one of asg-admission01",
        false,
    );
    assert_eq!(admit_configuration(&group, &rollback(Some("asc-older01")), Some(&older)), Ok(()));
    let active = configuration("asc-active01", group_id());
    assert_eq!(admit_configuration(&group, &invoke(Some("asc-active01")), Some(&active)), Ok(()));
}

/// R3: the image or package version a change puts on instances exists; container-group
/// updates are for ECI groups; a script names nothing to look up.
#[test]
fn r3_the_change_names_what_exists_and_fits_the_group_type() {
    let ecs = active_group();
    let eci = group(GroupStatus::Active, GroupType::ECI);
    let invoke = |kind| spec(kind, InvokeType::Invoke, None);
    assert_refused(
        admit_change(&ecs, &invoke(Kind::ImageUpdate), false),
        "InvalidImageId.NotFound",
        "the image img-new does not exist; add it with `rollscale ess CreateImage --ImageId img-new`",
        true,
    );
    assert_eq!(admit_change(&ecs, &invoke(Kind::ImageUpdate), true), Ok(()));
    assert_refused(
        admit_change(&ecs, &invoke(Kind::PackageInstall), false),
        "EntityNotExists.PackageVersion",
        "the package nginx has no version 1.2",
        true,
    );
    assert_eq!(admit_change(&ecs, &invoke(Kind::PackageInstall), true), Ok(()));
    assert_refused(
        admit_change(&ecs, &invoke(Kind::ContainerGroupUpdate), true),
        "InvalidParameter",
        "asg-admission01 is an ECS group; container-group updates are for ECI groups",
        false,
    );
    assert_eq!(admit_change(&eci, &invoke(Kind::ContainerGroupUpdate), true), Ok(()));
    assert_eq!(admit_change(&ecs, &invoke(Kind::ScriptExecution), true), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// R12: a rollback's targets and an install's default rollback
// ---------------------------------------------------------------------------------------------

/// R12: "its targets are the instances the source actually changed and that still exist":
/// applied works only, instances gone or on their way out left out, Standby ones kept (a
/// cancelled or failed source leaves them there), oldest first and ties by id.
#[test]
fn r12_rollback_targets_are_the_changed_instances_that_still_exist_oldest_first() {
    assert!(rollback_eligible(LifecycleState::InService));
    assert!(rollback_eligible(LifecycleState::Standby));
    assert!(rollback_eligible(LifecycleState::Protected));
    assert!(!rollback_eligible(LifecycleState::Pending));
    assert!(!rollback_eligible(LifecycleState::Removing));

    let instances = vec![
        instance("i-0004", LifecycleState::InService, 30, &[]),
        instance("i-0002", LifecycleState::Standby, 20, &[]),
        instance("i-0003", LifecycleState::Protected, 20, &[]),
        instance("i-0005", LifecycleState::Removing, 5, &[]),
        instance("i-0006", LifecycleState::InService, 1, &[]),
        instance("i-0007", LifecycleState::Pending, 2, &[]),
    ];
    let works = vec![
        work("i-0004", 0, true),
        work("i-0003", 1, true),
        work("i-0002", 2, true),
        work("i-0005", 3, true),  // being removed
        work("i-0006", 4, false), // never changed
        work("i-0001", 5, true),  // gone
        work("i-0007", 6, true),  // Pending: not a target
    ];
    assert_eq!(
        rollback_targets(&works, &instances),
        vec![instance_id("i-0002"), instance_id("i-0003"), instance_id("i-0004")]
    );
    assert!(rollback_targets(&works[..0], &instances).is_empty());
    assert!(rollback_targets(&works, &[]).is_empty());
}

/// R12: "the package's previous version": an install that names no rollback goes back to the
/// version most of its targets have now (ties: the lowest), counting its targets only, or
/// uninstalls when none has the package. Nothing is defaulted for other kinds, for a rollback,
/// or when the install names its rollback.
#[test]
fn r12_an_install_rolls_back_to_the_version_most_targets_have_or_uninstalls() {
    let install = spec(Kind::PackageInstall, InvokeType::Invoke, None);
    let instances = vec![
        instance("i-0001", LifecycleState::InService, 1, &[("nginx", "1.0"), ("redis", "7")]),
        instance("i-0002", LifecycleState::InService, 2, &[("nginx", "1.1")]),
        instance("i-0003", LifecycleState::InService, 3, &[("nginx", "1.1")]),
        instance("i-0004", LifecycleState::InService, 4, &[("nginx", "0.9")]),
        instance("i-0005", LifecycleState::InService, 5, &[]),
    ];
    let ids = |names: &[&str]| names.iter().map(|name| instance_id(name)).collect::<Vec<_>>();
    let package = |version: &str, action| Change::Package { name: "nginx".into(), version: version.into(), action };

    let all = ids(&["i-0001", "i-0002", "i-0003", "i-0004", "i-0005"]);
    assert_eq!(default_rollback_change(&install, &instances, &all), Some(package("1.1", PackageAction::Install)));
    // Only targets count: i-0002 and i-0003 are not, so 0.9 and 1.0 tie and the lowest wins.
    let some = ids(&["i-0001", "i-0004", "i-0005"]);
    assert_eq!(default_rollback_change(&install, &instances, &some), Some(package("0.9", PackageAction::Install)));
    let without = ids(&["i-0005"]);
    assert_eq!(default_rollback_change(&install, &instances, &without), Some(package("", PackageAction::Uninstall)));
    assert_eq!(default_rollback_change(&install, &instances, &[]), Some(package("", PackageAction::Uninstall)));

    let named = RollingUpdateSpec { rollback_change: Some(package("1.0", PackageAction::Install)), ..install.clone() };
    assert_eq!(default_rollback_change(&named, &instances, &all), None);
    let rollback = RollingUpdateSpec { invoke_type: InvokeType::Rollback, ..install };
    assert_eq!(default_rollback_change(&rollback, &instances, &all), None);
    for kind in [Kind::ImageUpdate, Kind::ScriptExecution, Kind::ContainerGroupUpdate] {
        assert_eq!(default_rollback_change(&spec(kind, InvokeType::Invoke, None), &instances, &all), None, "{kind}");
    }
}
