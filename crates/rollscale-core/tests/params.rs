//! The rolling-update templates' parameters against docs/design.md (R1–R15): what `parse_start` accepts
//! and refuses (R1, R2, R3, R7, R9, R13) and how `resolve` builds a rollback from its source
//! (R3, R12). The seed commands come from `seeds/rolling-update-cli.txt`, with the `****` of
//! their ids replaced by letters (ids are `[A-Za-z0-9_-]`).

use proptest::prelude::*;
use rollscale_core::domain::{LifecycleState, Process};
use rollscale_core::error::CoreError;
use rollscale_core::ids::{ExecutionId, ScalingConfigurationId, ScalingGroupId};
use rollscale_core::params::{
    parse_start, resolve, BatchPauseOption, Change, CommandType, InvokeType, Kind, PackageAction, RollbackSource,
    RollingUpdateSpec, ScriptSpec, StartRequest, DEFAULT_BATCH_NUMBER, DEFAULT_SCRIPT_TIMEOUT_S,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// The seeds' six StartExecution parameter strings
// ---------------------------------------------------------------------------------------------

const IMAGE: &str = "ACS-ESS-RollingUpdateByReplaceSystemDiskInScalingGroup";
const SCRIPT: &str = "ACS-ESS-RollingUpdateByRunCommandInScalingGroup";
const PACKAGE: &str = "ACS-ESS-RollingUpdateByConfigureOOSPackage";

const SEED_IMAGE_INVOKE: &str = r#"{ "invokeType": "invoke", "scalingGroupId": "asg-bp18p2yfxow2dloqABCD", "scalingConfigurationId": "asc-bp1bx8mzur534edpABCD", "imageId": "aliyun_2_1903_x64_20G_alibase_20200529.vhd", "sourceImageId": "centos_7_8_x64_20G_alibase_20200717.vhd", "OOSAssumeRole": "", "enterProcess": [ "ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction" ], "exitProcess": [ "ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction" ], "batchNumber": 2, "batchPauseOption": "Automatic" }"#;

const SEED_SCRIPT_INVOKE: &str = r#"{ "invokeType": "invoke", "scalingGroupId": "asg-bp18p2yfxow2dloqABCD", "commandType": "RunShellScript", "invokeScript": "df -h\nifconfig", "rollbackScript": "df -h\nifconfig", "OOSAssumeRole": "", "exitProcess": [ "ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction" ], "enterProcess": [ "ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction" ], "batchNumber": 2, "batchPauseOption": "Automatic" }"#;

const SEED_PACKAGE_INVOKE: &str = r#"{ "invokeType": "invoke", "scalingGroupId": "asg-bp18p2yfxow2dloqABCD", "packageName": "wordpress", "packageVersion": "v4", "action": "install", "OOSAssumeRole": "", "enterProcess": [ "ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction" ], "exitProcess": [ "ScaleIn", "ScaleOut", "HealthCheck", "AlarmNotification", "ScheduledAction" ], "batchNumber": 2, "batchPauseOption": "Automatic" }"#;

const SEED_IMAGE_ROLLBACK: &str = r#"{ "invokeType": "rollback", "scalingGroupId": "asg-bp18p2yfxow2dloqABCD", "scalingConfigurationId": "asc-bp1bx8mzur534edpABCD", "sourceImageId": "centos_7_8_x64_20G_alibase_20200717.vhd", "sourceExecutionId": "exec-83dba59be77d430ABCD", "OOSAssumeRole": "", "batchNumber": 2, "batchPauseOption": "Automatic" }"#;

const SEED_SCRIPT_ROLLBACK: &str = r#"{ "invokeType": "rollback", "commandType": "RunShellScript", "rollbackScript": "df -h\nifconfig", "scalingGroupId": "asg-bp18p2yfxow2dloqABCD", "sourceExecutionId": "exec-40e2e17ef7e046ABCD", "OOSAssumeRole": "", "batchNumber": 2, "batchPauseOption": "Automatic" }"#;

const SEED_PACKAGE_ROLLBACK: &str = r#"{ "invokeType": "rollback", "scalingGroupId": "asg-bp18p2yfxow2dloqABCD", "packageVersion": "v3", "packageName": "wordpress", "sourceExecutionId": "exec-f4e61f2f21fe490ABCD", "OOSAssumeRole": "", "batchNumber": 2, "batchPauseOption": "Automatic" }"#;

const GROUP: &str = "asg-bp18p2yfxow2dloqABCD";
const CONFIGURATION: &str = "asc-bp1bx8mzur534edpABCD";
const NEW_IMAGE: &str = "aliyun_2_1903_x64_20G_alibase_20200529.vhd";
const OLD_IMAGE: &str = "centos_7_8_x64_20G_alibase_20200717.vhd";

fn group() -> ScalingGroupId {
    ScalingGroupId::parse(GROUP).unwrap()
}

fn exec(text: &str) -> ExecutionId {
    ExecutionId::parse(text).unwrap()
}

fn parse(template: &str, parameters: &str) -> Result<StartRequest, CoreError> {
    let value: Value = serde_json::from_str(parameters).expect("the test's JSON is valid");
    parse_start(template, &value)
}

fn parse_value(template: &str, parameters: &Value) -> Result<StartRequest, CoreError> {
    parse_start(template, parameters)
}

fn shell(script: &str) -> ScriptSpec {
    ScriptSpec {
        command_type: CommandType::RunShellScript,
        script: script.into(),
        working_dir: None,
        timeout_s: DEFAULT_SCRIPT_TIMEOUT_S,
    }
}

fn package(version: &str) -> Change {
    Change::Package { name: "wordpress".into(), version: version.into(), action: PackageAction::Install }
}

fn image(id: &str) -> Change {
    Change::Image { image_id: id.into() }
}

/// Minimal valid invoke parameters of each template.
fn base(template: &str) -> Value {
    match template {
        IMAGE => json!({"invokeType": "invoke", "scalingGroupId": GROUP, "imageId": "img-2"}),
        SCRIPT => {
            json!({"invokeType": "invoke", "scalingGroupId": GROUP, "invokeScript": "echo hi"})
        }
        PACKAGE => {
            json!({"invokeType": "invoke", "scalingGroupId": GROUP, "packageName": "wordpress", "packageVersion": "v4"})
        }
        _ => unreachable!(),
    }
}

fn with(mut value: Value, key: &str, field: Value) -> Value {
    value.as_object_mut().unwrap().insert(key.to_string(), field);
    value
}

fn without(mut value: Value, key: &str) -> Value {
    value.as_object_mut().unwrap().remove(key);
    value
}

fn assert_invalid(result: Result<StartRequest, CoreError>, name: &str, context: &str) {
    match result {
        Err(CoreError::InvalidParameter { name: got, reason }) => {
            assert_eq!(got, name, "{context}: wrong parameter named ({reason})");
            assert!(!reason.is_empty(), "{context}: the reason must say what is wrong");
        }
        other => panic!("{context}: expected InvalidParameter({name}), got {other:?}"),
    }
}

fn assert_missing(result: Result<StartRequest, CoreError>, name: &str, context: &str) {
    match result {
        Err(error @ CoreError::MissingParameter(_)) => {
            assert_eq!(error, CoreError::MissingParameter(name.into()), "{context}");
            assert_eq!(error.code(), "MissingParameter");
        }
        other => panic!("{context}: expected MissingParameter({name}), got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// R3: the seed commands
// ---------------------------------------------------------------------------------------------

/// R3 (accepted input): the seed's image update command parses as written.
#[test]
fn r3_seed_image_update_invoke_parses() {
    let request = parse(IMAGE, SEED_IMAGE_INVOKE).expect("the seed command is valid");
    let expected = StartRequest {
        kind: Kind::ImageUpdate,
        invoke_type: InvokeType::Invoke,
        group_id: group(),
        configuration_id: Some(ScalingConfigurationId::parse(CONFIGURATION).unwrap()),
        change: Some(image(NEW_IMAGE)),
        rollback_change: Some(image(OLD_IMAGE)),
        enter_process: Some(Process::ALL.to_vec()),
        exit_process: Some(Process::ALL.to_vec()),
        lifecycle_states: vec![LifecycleState::InService],
        batch_number: 2,
        batch_pause: BatchPauseOption::Automatic,
        max_errors: 0,
        source_execution_id: None,
        assume_role: String::new(),
    };
    assert_eq!(request, expected);
}

/// R3 (accepted input), R13: the seed's script command parses; `\n` in the JSON is a newline.
#[test]
fn r3_seed_script_invoke_parses() {
    let request = parse(SCRIPT, SEED_SCRIPT_INVOKE).expect("the seed command is valid");
    let expected = StartRequest {
        kind: Kind::ScriptExecution,
        invoke_type: InvokeType::Invoke,
        group_id: group(),
        configuration_id: None,
        change: Some(Change::Script(shell("df -h\nifconfig"))),
        rollback_change: Some(Change::Script(shell("df -h\nifconfig"))),
        enter_process: Some(Process::ALL.to_vec()),
        exit_process: Some(Process::ALL.to_vec()),
        lifecycle_states: vec![LifecycleState::InService],
        batch_number: 2,
        batch_pause: BatchPauseOption::Automatic,
        max_errors: 0,
        source_execution_id: None,
        assume_role: String::new(),
    };
    assert_eq!(request, expected);
    let Some(Change::Script(script)) = &request.change else { unreachable!() };
    assert_eq!(script.script.lines().collect::<Vec<_>>(), vec!["df -h", "ifconfig"]);
}

/// R3 (accepted input): the seed's package command parses.
#[test]
fn r3_seed_package_invoke_parses() {
    let request = parse(PACKAGE, SEED_PACKAGE_INVOKE).expect("the seed command is valid");
    let expected = StartRequest {
        kind: Kind::PackageInstall,
        invoke_type: InvokeType::Invoke,
        group_id: group(),
        configuration_id: None,
        change: Some(package("v4")),
        rollback_change: None,
        enter_process: Some(Process::ALL.to_vec()),
        exit_process: Some(Process::ALL.to_vec()),
        lifecycle_states: vec![LifecycleState::InService],
        batch_number: 2,
        batch_pause: BatchPauseOption::Automatic,
        max_errors: 0,
        source_execution_id: None,
        assume_role: String::new(),
    };
    assert_eq!(request, expected);
}

/// R3, R12: the seed's three rollback commands parse, as rollbacks of their sources.
#[test]
fn r12_seed_rollbacks_parse() {
    // (template, parameters, kind, change, source execution, scaling configuration)
    type Case = (&'static str, &'static str, Kind, Option<Change>, &'static str, Option<&'static str>);
    let cases: Vec<Case> = vec![
        (
            IMAGE,
            SEED_IMAGE_ROLLBACK,
            Kind::ImageUpdate,
            Some(image(OLD_IMAGE)),
            "exec-83dba59be77d430ABCD",
            Some(CONFIGURATION),
        ),
        (
            SCRIPT,
            SEED_SCRIPT_ROLLBACK,
            Kind::ScriptExecution,
            Some(Change::Script(shell("df -h\nifconfig"))),
            "exec-40e2e17ef7e046ABCD",
            None,
        ),
        (PACKAGE, SEED_PACKAGE_ROLLBACK, Kind::PackageInstall, Some(package("v3")), "exec-f4e61f2f21fe490ABCD", None),
    ];
    for (template, json, kind, change, source, configuration) in cases {
        let request = parse(template, json).expect("the seed rollback is valid");
        let expected = StartRequest {
            kind,
            invoke_type: InvokeType::Rollback,
            group_id: group(),
            configuration_id: configuration.map(|id| ScalingConfigurationId::parse(id).unwrap()),
            change,
            rollback_change: None,
            enter_process: None,
            exit_process: None,
            lifecycle_states: vec![LifecycleState::InService],
            batch_number: 2,
            batch_pause: BatchPauseOption::Automatic,
            max_errors: 0,
            source_execution_id: Some(exec(source)),
            assume_role: String::new(),
        };
        assert_eq!(request, expected, "{template}");
    }
}

// ---------------------------------------------------------------------------------------------
// R3: refusals
// ---------------------------------------------------------------------------------------------

/// R3: "missing or invalid parameters for the kind": a parameter the template does not have is
/// refused, naming it.
#[test]
fn r3_unknown_parameter_is_refused_naming_it() {
    let cases: Vec<(&str, &str)> = vec![
        (IMAGE, "imageID"),
        (IMAGE, "invokeScript"),
        (IMAGE, "packageName"),
        (SCRIPT, "imageId"),
        (SCRIPT, "packageVersion"),
        (SCRIPT, "maxErrors"),
        (PACKAGE, "invokeScript"),
        (PACKAGE, "maxErrors"),
        (PACKAGE, "frobnicate"),
    ];
    for (template, key) in cases {
        let parameters = with(base(template), key, json!("x"));
        assert_invalid(parse_value(template, &parameters), key, &format!("{key} on {template}"));
    }
}

/// R3: an unknown template or non-object parameters are refused.
#[test]
fn r3_unknown_template_or_non_object_parameters_are_refused() {
    assert_invalid(parse_value("ACS-ECS-BulkyRunCommand", &base(SCRIPT)), "TemplateName", "unknown template");
    for parameters in [json!([]), json!("x"), json!(null), json!(3)] {
        assert_invalid(parse_value(SCRIPT, &parameters), "Parameters", &format!("{parameters}"));
    }
}

/// R3: "an unknown process name" is refused, naming the parameter and the process.
#[test]
fn r3_unknown_process_is_refused() {
    let cases: Vec<(&str, Value)> = vec![
        ("enterProcess", json!(["ScaleIn", "Launch"])),
        ("exitProcess", json!(["scalein"])),
        ("enterProcess", json!("ScaleIn,Terminate")),
        ("exitProcess", json!("[\"HealthCheck\", \"AddToLoadBalancer\"]")),
        ("enterProcess", json!([1])),
    ];
    for template in [IMAGE, SCRIPT, PACKAGE] {
        for (key, value) in &cases {
            let parameters = with(base(template), key, value.clone());
            assert_invalid(parse_value(template, &parameters), key, &format!("{key} = {value} on {template}"));
        }
    }
    let parameters = with(base(SCRIPT), "enterProcess", json!(["ScaleIn", "Launch"]));
    let Err(CoreError::InvalidParameter { reason, .. }) = parse_value(SCRIPT, &parameters) else { unreachable!() };
    assert!(reason.contains("Launch"), "the reason names the unknown process: {reason}");
}

/// R3/R4: known processes are accepted as a list or a comma-separated string, each once.
#[test]
fn r3_known_processes_accepted_in_every_form() {
    use Process::*;
    let cases: Vec<(Value, Vec<Process>)> = vec![
        (json!(["ScaleIn", "ScaleOut"]), vec![ScaleIn, ScaleOut]),
        (json!("HealthCheck, ScheduledAction"), vec![HealthCheck, ScheduledAction]),
        (json!("[\"AlarmNotification\"]"), vec![AlarmNotification]),
        (json!(["ScaleIn", "ScaleIn"]), vec![ScaleIn]),
        (json!([]), vec![]),
    ];
    for (value, expected) in cases {
        let request = parse_value(IMAGE, &with(base(IMAGE), "enterProcess", value.clone())).expect("valid processes");
        assert_eq!(request.enter_process, Some(expected), "{value}");
    }
}

/// R2: "`batchNumber` 1..=100": 0, 101, text and fractions are refused; a numeric string is
/// accepted.
#[test]
fn r2_batch_number_range_and_forms() {
    let refused = [json!(0), json!(101), json!("abc"), json!(2.5), json!("2.5"), json!(-1), json!(true), json!([3])];
    for template in [IMAGE, SCRIPT, PACKAGE] {
        for value in &refused {
            let parameters = with(base(template), "batchNumber", value.clone());
            assert_invalid(parse_value(template, &parameters), "batchNumber", &format!("batchNumber {value}"));
        }
        let accepted = [(json!("3"), 3), (json!(1), 1), (json!(100), 100), (json!(" 7 "), 7), (json!("100"), 100)];
        for (value, expected) in accepted {
            let request = parse_value(template, &with(base(template), "batchNumber", value.clone()))
                .unwrap_or_else(|error| panic!("batchNumber {value}: {error}"));
            assert_eq!(request.batch_number, expected, "batchNumber {value}");
        }
    }
}

/// R3: missing mandatory parameters are MissingParameter naming the parameter.
#[test]
fn r3_missing_parameters_are_named() {
    let cases: Vec<(&str, Value, &str)> = vec![
        (IMAGE, without(base(IMAGE), "invokeType"), "invokeType"),
        (SCRIPT, without(base(SCRIPT), "invokeType"), "invokeType"),
        (IMAGE, without(base(IMAGE), "scalingGroupId"), "scalingGroupId"),
        (PACKAGE, without(base(PACKAGE), "scalingGroupId"), "scalingGroupId"),
        (SCRIPT, with(base(SCRIPT), "scalingGroupId", json!("")), "scalingGroupId"),
        (IMAGE, without(base(IMAGE), "imageId"), "imageId"),
        (IMAGE, with(base(IMAGE), "imageId", json!("")), "imageId"),
        (IMAGE, with(base(IMAGE), "imageId", json!(null)), "imageId"),
        (SCRIPT, without(base(SCRIPT), "invokeScript"), "invokeScript"),
        (SCRIPT, with(without(base(SCRIPT), "invokeScript"), "rollbackScript", json!("echo back")), "invokeScript"),
        (PACKAGE, without(base(PACKAGE), "packageVersion"), "packageVersion"),
        (PACKAGE, without(base(PACKAGE), "packageName"), "packageName"),
        (IMAGE, with(base(IMAGE), "invokeType", json!("rollback")), "sourceExecutionId"),
    ];
    for (template, parameters, name) in cases {
        assert_missing(parse_value(template, &parameters), name, &format!("{template} {parameters}"));
    }
}

/// R3: values of the wrong form are InvalidParameter naming the parameter.
#[test]
fn r3_invalid_values_are_named() {
    let cases: Vec<(&str, &str, Value)> = vec![
        (IMAGE, "invokeType", json!("deploy")),
        (IMAGE, "scalingGroupId", json!("asg-bp18p2yfxow2dloq****")),
        (IMAGE, "scalingGroupId", json!("asc-bp18p2yfxow2dloq")),
        (IMAGE, "scalingGroupId", json!(12)),
        (IMAGE, "scalingConfigurationId", json!("asg-bp1bx8mzur534edp")),
        (IMAGE, "batchPauseOption", json!("Sometimes")),
        (SCRIPT, "commandType", json!("RunPythonScript")),
        (SCRIPT, "timeout", json!(0)),
        (SCRIPT, "timeout", json!(86_401)),
        (SCRIPT, "invokeScript", json!("x".repeat(64 * 1024 + 1))),
        (PACKAGE, "action", json!("reinstall")),
        (IMAGE, "sourceExecutionId", json!("exec-83dba59be77d430ABCD")),
        (IMAGE, "lifecycleState", json!(["Standby"])),
    ];
    for (template, key, value) in cases {
        let parameters = with(base(template), key, value.clone());
        assert_invalid(parse_value(template, &parameters), key, &format!("{key} = {value}"));
    }
}

/// R7: "`maxErrors` (image update only; default 0; other kinds 0)".
#[test]
fn r7_max_errors_only_for_image_updates() {
    for (template, value, accepted) in [
        (IMAGE, json!(3), Some(3)),
        (IMAGE, json!("2"), Some(2)),
        (IMAGE, json!(0), Some(0)),
        (SCRIPT, json!(1), None),
        (SCRIPT, json!("5"), None),
        (PACKAGE, json!(1), None),
        (IMAGE, json!(-1), None),
    ] {
        let result = parse_value(template, &with(base(template), "maxErrors", value.clone()));
        match accepted {
            Some(expected) => assert_eq!(result.unwrap().max_errors, expected, "{template} maxErrors {value}"),
            None => assert_invalid(result, "maxErrors", &format!("{template} maxErrors {value}")),
        }
    }
    for template in [IMAGE, SCRIPT, PACKAGE] {
        assert_eq!(parse_value(template, &base(template)).unwrap().max_errors, 0, "{template} default");
    }
}

/// R1: "InService (and Protected when `lifecycleState` asks)": only those two states.
#[test]
fn r1_lifecycle_state_accepts_in_service_and_protected_only() {
    use LifecycleState::*;
    let accepted: Vec<(Value, Vec<LifecycleState>)> = vec![
        (json!(["InService", "Protected"]), vec![InService, Protected]),
        (json!(["Protected"]), vec![Protected]),
        (json!("InService,Protected"), vec![InService, Protected]),
        (json!([]), vec![InService]),
        (json!(null), vec![InService]),
    ];
    for (value, expected) in accepted {
        let request = parse_value(SCRIPT, &with(base(SCRIPT), "lifecycleState", value.clone())).expect("accepted");
        assert_eq!(request.lifecycle_states, expected, "{value}");
    }
    assert_eq!(parse_value(SCRIPT, &base(SCRIPT)).unwrap().lifecycle_states, vec![InService]);
    for value in [json!(["Standby"]), json!(["InService", "Pending"]), json!("Removing"), json!(["inservice"])] {
        let parameters = with(base(SCRIPT), "lifecycleState", value.clone());
        assert_invalid(parse_value(SCRIPT, &parameters), "lifecycleState", &format!("{value}"));
    }
}

/// R2, R4, R9, R13 defaults: batchNumber 5, Automatic, all five processes, script timeout 600 s
/// as RunShellScript, package action install.
#[test]
fn r3_defaults_of_every_template() {
    for template in [IMAGE, SCRIPT, PACKAGE] {
        let request = parse_value(template, &base(template)).expect("minimal parameters are valid");
        assert_eq!(request.batch_number, DEFAULT_BATCH_NUMBER);
        assert_eq!(DEFAULT_BATCH_NUMBER, 5);
        assert_eq!(request.batch_pause, BatchPauseOption::Automatic);
        assert_eq!(request.lifecycle_states, vec![LifecycleState::InService]);
        assert_eq!(request.assume_role, "");
        let spec = resolve(request, None).expect("an invoke resolves without a source");
        assert_eq!(spec.enter_process, Process::ALL.to_vec(), "{template}");
        assert_eq!(spec.exit_process, Process::ALL.to_vec(), "{template}");
        assert_eq!(spec.invoke_type, InvokeType::Invoke);
        assert_eq!(spec.source_execution_id, None);
    }
    let script = parse_value(SCRIPT, &base(SCRIPT)).unwrap();
    assert_eq!(script.change, Some(Change::Script(shell("echo hi"))));
    assert_eq!(DEFAULT_SCRIPT_TIMEOUT_S, 600);
    let package = parse_value(PACKAGE, &base(PACKAGE)).unwrap();
    assert_eq!(package.change, Some(package_change("wordpress", "v4", PackageAction::Install)));
}

fn package_change(name: &str, version: &str, action: PackageAction) -> Change {
    Change::Package { name: name.into(), version: version.into(), action }
}

/// R13: script type, timeout and working directory are carried into the change.
#[test]
fn r13_script_type_timeout_and_working_dir() {
    let parameters = json!({
        "invokeType": "invoke", "scalingGroupId": GROUP, "invokeScript": "dir",
        "commandType": "RunBatScript", "timeout": "120", "workingDir": "C:\\app",
    });
    let request = parse_value(SCRIPT, &parameters).unwrap();
    assert_eq!(
        request.change,
        Some(Change::Script(ScriptSpec {
            command_type: CommandType::RunBatScript,
            script: "dir".into(),
            working_dir: Some("C:\\app".into()),
            timeout_s: 120,
        }))
    );
    let uninstall = parse_value(PACKAGE, &with(base(PACKAGE), "action", json!("uninstall"))).unwrap();
    assert_eq!(uninstall.change, Some(package_change("wordpress", "v4", PackageAction::Uninstall)));
}

// ---------------------------------------------------------------------------------------------
// R3, R12: resolving rollbacks
// ---------------------------------------------------------------------------------------------

/// The seed invoke of `template`, resolved: a rollback's source.
fn source_spec(template: &str) -> RollingUpdateSpec {
    let json = match template {
        IMAGE => SEED_IMAGE_INVOKE,
        SCRIPT => SEED_SCRIPT_INVOKE,
        PACKAGE => SEED_PACKAGE_INVOKE,
        _ => unreachable!(),
    };
    resolve(parse(template, json).unwrap(), None).unwrap()
}

fn latest<'a>(id: &'a ExecutionId, spec: &'a RollingUpdateSpec) -> Option<RollbackSource<'a>> {
    Some(RollbackSource { id, spec, is_waiting: false, is_latest_finished: true })
}

fn rollback(template: &str, extra: Value) -> StartRequest {
    let mut parameters = json!({
        "invokeType": "rollback", "scalingGroupId": GROUP, "sourceExecutionId": "exec-source1",
    });
    for (key, value) in extra.as_object().unwrap() {
        parameters = with(parameters, key, value.clone());
    }
    parse_value(template, &parameters).expect("a valid rollback request")
}

fn assert_rollback_source_refused(result: Result<RollingUpdateSpec, CoreError>, context: &str) {
    match result {
        Err(error @ CoreError::InvalidRollbackSource(_)) => {
            assert_eq!(error.code(), "InvalidParameter.SourceExecution", "{context}")
        }
        other => panic!("{context}: expected InvalidRollbackSource, got {other:?}"),
    }
}

/// R12: the seed rollbacks resolve against their sources: the seed's change, the source's
/// processes, the source's execution id.
#[test]
fn r12_seed_rollbacks_resolve_against_their_sources() {
    let cases = [
        (IMAGE, SEED_IMAGE_ROLLBACK, image(OLD_IMAGE)),
        (SCRIPT, SEED_SCRIPT_ROLLBACK, Change::Script(shell("df -h\nifconfig"))),
        (PACKAGE, SEED_PACKAGE_ROLLBACK, package("v3")),
    ];
    for (template, json, change) in cases {
        let source = source_spec(template);
        let request = parse(template, json).unwrap();
        let id = request.source_execution_id.clone().unwrap();
        let spec = resolve(request, latest(&id, &source)).unwrap_or_else(|error| panic!("{template}: {error}"));
        assert_eq!(spec.invoke_type, InvokeType::Rollback);
        assert_eq!(spec.kind, source.kind);
        assert_eq!(spec.change, change, "{template}");
        assert_eq!(spec.rollback_change, None, "{template}: a rollback cannot be rolled back");
        assert_eq!(spec.enter_process, source.enter_process);
        assert_eq!(spec.exit_process, source.exit_process);
        assert_eq!(spec.source_execution_id, Some(id));
        assert_eq!(spec.configuration_id, source.configuration_id, "{template}");
    }
}

/// R3: "a rollback whose source is itself a rollback" is refused.
#[test]
fn r3_r12_rollback_of_a_rollback_is_refused() {
    for template in [IMAGE, SCRIPT, PACKAGE] {
        let source = source_spec(template);
        let first_id = exec("exec-source1");
        let first = resolve(
            rollback(
                template,
                json!({"packageVersion": "v3", "rollbackScript": "x", "sourceImageId": "y"}).clone_for(template),
            ),
            latest(&first_id, &source),
        )
        .expect("the first rollback is fine");
        let second_id = exec("exec-rollback1");
        let result = resolve(rollback(template, json!({}).clone_for(template)), latest(&second_id, &first));
        assert_rollback_source_refused(result, &format!("{template}: rollback of a rollback"));
    }
}

/// Keeps only the keys of `extra` that `template` knows, plus `packageName` for packages.
trait ForTemplate {
    fn clone_for(&self, template: &str) -> Value;
}

impl ForTemplate for Value {
    fn clone_for(&self, template: &str) -> Value {
        let keys: &[&str] = match template {
            IMAGE => &["sourceImageId", "imageId", "scalingConfigurationId"],
            SCRIPT => &["rollbackScript", "invokeScript", "commandType"],
            PACKAGE => &["packageVersion", "packageName"],
            _ => unreachable!(),
        };
        let mut out = serde_json::Map::new();
        for (key, value) in self.as_object().unwrap() {
            if keys.contains(&key.as_str()) {
                out.insert(key.clone(), value.clone());
            }
        }
        if template == PACKAGE && !out.contains_key("packageName") {
            out.insert("packageName".into(), json!("wordpress"));
        }
        Value::Object(out)
    }
}

/// R3: a rollback whose source "belongs to another group" is refused.
#[test]
fn r3_r12_rollback_of_another_groups_task_is_refused() {
    for template in [IMAGE, SCRIPT, PACKAGE] {
        let mut source = source_spec(template);
        source.group_id = ScalingGroupId::parse("asg-othergroup").unwrap();
        let id = exec("exec-source1");
        let result = resolve(rollback(template, json!({}).clone_for(template)), latest(&id, &source));
        assert_rollback_source_refused(result, &format!("{template}: other group"));
    }
}

/// R12: "same kind (not changeable)": a rollback with another template than its source's is
/// refused.
#[test]
fn r12_rollback_with_another_template_is_refused() {
    for (source_template, template) in [(IMAGE, SCRIPT), (SCRIPT, PACKAGE), (PACKAGE, IMAGE), (SCRIPT, IMAGE)] {
        let source = source_spec(source_template);
        let id = exec("exec-source1");
        let extra =
            json!({"rollbackScript": "x", "sourceImageId": "img-1", "packageVersion": "v1"}).clone_for(template);
        let result = resolve(rollback(template, extra), latest(&id, &source));
        assert_rollback_source_refused(result, &format!("{source_template} rolled back with {template}"));
    }
}

/// R3: a rollback whose source "is neither Waiting nor the group's most recently finished
/// rolling update" is refused; either one suffices. A missing source is refused too.
#[test]
fn r3_r12_rollback_source_must_be_waiting_or_latest_finished() {
    let source = source_spec(IMAGE);
    let id = exec("exec-source1");
    for (is_waiting, is_latest_finished, accepted) in
        [(false, false, false), (true, false, true), (false, true, true), (true, true, true)]
    {
        let result = resolve(
            rollback(IMAGE, json!({})),
            Some(RollbackSource { id: &id, spec: &source, is_waiting, is_latest_finished }),
        );
        let context = format!("waiting {is_waiting}, latest finished {is_latest_finished}");
        if accepted {
            assert_eq!(result.expect(&context).change, image(OLD_IMAGE), "{context}");
        } else {
            assert_rollback_source_refused(result, &context);
        }
    }
    assert_rollback_source_refused(resolve(rollback(IMAGE, json!({})), None), "no source");
}

/// R12: "defaults from the source (rollback image ...)": an image rollback defaults to the
/// source's `sourceImageId`, may override it, and restores the source's configuration.
#[test]
fn r12_image_rollback_defaults_to_the_source_image() {
    let source = source_spec(IMAGE);
    let id = exec("exec-source1");
    let cases: Vec<(Value, Change)> = vec![
        (json!({}), image(OLD_IMAGE)),
        (json!({"sourceImageId": ""}), image(OLD_IMAGE)),
        (json!({"sourceImageId": "img-other"}), image("img-other")),
        // A rollback puts the instances back on `sourceImageId`, as the seed's rollback does.
        (json!({"sourceImageId": "img-other", "imageId": "img-new"}), image("img-other")),
    ];
    for (extra, expected) in cases {
        let spec = resolve(rollback(IMAGE, extra.clone()), latest(&id, &source)).unwrap();
        assert_eq!(spec.change, expected, "{extra}");
        assert_eq!(spec.configuration_id, source.configuration_id, "R12: the configuration's image is restored");
    }
}

/// R12: "defaults from the source (... rollback script ...; each may be overridden)".
#[test]
fn r12_script_rollback_defaults_to_the_rollback_script_and_can_be_overridden() {
    let source = source_spec(SCRIPT);
    let id = exec("exec-source1");
    let default = resolve(rollback(SCRIPT, json!({})), latest(&id, &source)).unwrap();
    assert_eq!(default.change, Change::Script(shell("df -h\nifconfig")));
    let overridden =
        resolve(rollback(SCRIPT, json!({"rollbackScript": "systemctl restart app"})), latest(&id, &source)).unwrap();
    assert_eq!(overridden.change, Change::Script(shell("systemctl restart app")));
}

/// R12: "previous package version; each may be overridden but the package name may not".
#[test]
fn r12_package_rollback_keeps_the_name_and_defaults_the_version() {
    let mut source = source_spec(PACKAGE);
    // The previous version, as recorded for the source's rollback.
    source.rollback_change = Some(package("v3"));
    let id = exec("exec-source1");
    let default = resolve(rollback(PACKAGE, json!({"packageName": "wordpress"})), latest(&id, &source)).unwrap();
    assert_eq!(default.change, package("v3"));
    let overridden =
        resolve(rollback(PACKAGE, json!({"packageName": "wordpress", "packageVersion": "v2"})), latest(&id, &source))
            .unwrap();
    assert_eq!(overridden.change, package("v2"));
    for extra in [json!({"packageName": "nginx"}), json!({"packageName": "nginx", "packageVersion": "v3"})] {
        match resolve(rollback(PACKAGE, extra.clone()), latest(&id, &source)) {
            Err(CoreError::InvalidParameter { name, .. }) => {
                assert_eq!(name, "packageName", "{extra}")
            }
            other => panic!("{extra}: expected InvalidParameter(packageName), got {other:?}"),
        }
    }
}

/// R12: "Its processes are the source's" — whatever the rollback request says.
#[test]
fn r12_rollback_processes_come_from_the_source() {
    use Process::*;
    let source_request = parse_value(
        IMAGE,
        &json!({
            "invokeType": "invoke", "scalingGroupId": GROUP, "imageId": "img-2", "sourceImageId": "img-1",
            "enterProcess": ["ScaleIn", "ScaleOut"], "exitProcess": ["ScaleIn"],
        }),
    )
    .unwrap();
    let source = resolve(source_request, None).unwrap();
    let id = exec("exec-source1");
    for extra in [json!({}), json!({"enterProcess": ["HealthCheck"], "exitProcess": ["ScheduledAction", "ScaleOut"]})] {
        let spec = resolve(rollback(IMAGE, extra.clone()), latest(&id, &source)).unwrap();
        assert_eq!(spec.enter_process, vec![ScaleIn, ScaleOut], "{extra}");
        assert_eq!(spec.exit_process, vec![ScaleIn], "{extra}");
    }
}

/// R12: with no default in the source and none given, the rollback is MissingParameter naming
/// the parameter to give.
#[test]
fn r12_missing_rollback_default_names_the_parameter() {
    let id = exec("exec-source1");
    let cases: Vec<(&str, Value, &str)> = vec![
        (IMAGE, json!({"invokeType": "invoke", "scalingGroupId": GROUP, "imageId": "img-2"}), "sourceImageId"),
        (SCRIPT, json!({"invokeType": "invoke", "scalingGroupId": GROUP, "invokeScript": "echo"}), "rollbackScript"),
        (PACKAGE, base(PACKAGE), "packageVersion"),
    ];
    for (template, source_parameters, name) in cases {
        let source = resolve(parse_value(template, &source_parameters).unwrap(), None).unwrap();
        assert_eq!(source.rollback_change, None);
        let result = resolve(rollback(template, json!({}).clone_for(template)), latest(&id, &source));
        assert_eq!(result, Err(CoreError::MissingParameter(name.into())), "{template}");
    }
}

proptest! {
    /// R2: "`batchNumber` 1..=100 (default 5)", given as a number or a numeric string.
    #[test]
    fn r2_batch_number_accepted_exactly_from_1_to_100(n in 0u64..400, as_text in any::<bool>()) {
        let value = if as_text { json!(n.to_string()) } else { json!(n) };
        let result = parse_value(IMAGE, &with(base(IMAGE), "batchNumber", value));
        if (1..=100).contains(&n) {
            prop_assert_eq!(result.unwrap().batch_number as u64, n);
        } else {
            prop_assert!(
                matches!(&result, Err(CoreError::InvalidParameter { name, .. }) if name == "batchNumber"),
                "{:?}", result
            );
        }
    }
}
