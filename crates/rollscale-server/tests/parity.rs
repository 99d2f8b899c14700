//! The two APIs check alike (issue 9's proof). The test walks the table of operations
//! (`rollscale_server::operations::OPERATIONS`): every operation that has an RPC action and a
//! REST route (`rollscale_server::rest::ROUTES`) is given the same bad values over both — a
//! malformed id (another kind's prefix, control characters, too long), ten kilobytes, 65
//! characters, control characters (NUL, a newline, ESC, DEL), blank, out of range, the wrong
//! type, a value of no enum. Both must refuse it with the same code and the same HTTP status,
//! with a message that names the parameter or shows the value, and change nothing. An
//! operation of the table without a case fails the test unless it is on [`EXCEPTIONS`], with
//! the reason: a new operation comes with its case.
//!
//! Names and free text (descriptions, comments) follow one rule, `core::names`, with each
//! resource's limit; ids are read once, by the server's `values.rs`, for both APIs; other limits
//! live in one place too (`core::group` for groups and configurations, the service for the
//! rest), so the two cannot drift apart again.
//!
//! Not given here: an empty value. The RPC API reads an empty parameter as an absent one (the
//! SDKs send `""` for a field left empty); where a field is optional its default is the
//! service's, the same for both (a group without a name is named after its id, tested below).

use rollscale_core::alert::{EventPattern, Webhook, WebhookMethod};
use rollscale_core::domain::EventLevel;
use rollscale_core::policy::PolicyType;
use rollscale_engine::access::NewUser;
use rollscale_engine::alerts::RuleChange;
use rollscale_engine::service::NewGroup;
use rollscale_engine::templates::NewTemplateVersion;
use rollscale_engine::Service;
use rollscale_server::operations::{self, OPERATIONS};
use rollscale_server::rest::ROUTES;
use rollscale_store::ExecutionFilter;
use rollscale_test_support::engine::{self, enabled_group, group_id, wait_for_task, StartTemplate};
use rollscale_test_support::server::{rest_request, rpc_request, send, Api};
use serde_json::{json, Value};

const KEY: &str = "LTAIparity00000000000";
const SECRET: &str = "paritySecret";
/// The name of another group.
const TAKEN: &str = "taken";
/// A user with a custom policy attached, an alert rule with a webhook, a package version.
const USER: &str = "parity-user";
const POLICY: &str = "parity-policy";
const RULE: &str = "parity-rule";
const PACKAGE: &str = "parity-package";

/// Operations of the table with no parity case, and why. Each reason says what there is to
/// compare (nothing, or nothing both APIs refuse).
const EXCEPTIONS: &[(&str, &str)] = &[
    // Over REST, a list with no parameter to refuse: a filter that names nothing finds
    // nothing over either API, as a missing thing would (not refused), and paging is the RPC
    // API's alone (REST lists whole).
    ("ess:DescribeScalingGroups", "filters find nothing rather than refuse; REST takes only ?name= and no paging"),
    ("ess:ListPackages", "its one filter, the package's name, finds nothing rather than refuses"),
    ("ess:DescribeLoadBalancers", "takes no parameter"),
    ("ecs:DescribeImages", "takes no parameter"),
    ("ecs:DescribeLaunchTemplates", "REST lists all (no parameter); RPC's filters find nothing rather than refuse"),
    ("ram:ListUsers", "REST lists all (no parameter); Marker and MaxItems are the RPC API's paging"),
    ("cms:DescribeEventRuleList", "its prefix finds nothing rather than refuses; paging is the RPC API's alone"),
    // The RPC API's only.
    ("ess:InjectFault", "RPC only: a test hook of the simulated fleet"),
    ("ecs:DescribeRegions", "RPC only: the SDKs' and the CLI's region check"),
    ("ram:GetPolicy", "RPC only: REST shows a policy in its list"),
    ("cms:DescribeEventRuleTargetList", "RPC only: REST shows a rule's webhooks with the rule"),
];

struct App {
    router: axum::Router,
    service: Service,
    token: String,
    /// A group of one InService instance behind a load balancer, and its configuration.
    group: String,
    configuration: String,
    lb: String,
    instance: String,
    /// A finished rolling update of the group, and a launch template.
    task: String,
    template: String,
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let Api { router, service, token, dir, .. } = Api::new(KEY, SECRET).await;
    service.create_image("img", None, None).await.unwrap();
    let lb = service.create_load_balancer("lb", 100).await.unwrap();
    let new = NewGroup {
        name: "parity".into(),
        max_size: 8,
        desired_capacity: Some(1),
        load_balancer_ids: vec![lb.id.clone()],
        ..NewGroup::default()
    };
    let (group, configuration) = enabled_group(&service, new, engine::configuration("img")).await;
    let taken = NewGroup { name: TAKEN.into(), max_size: 1, ..NewGroup::default() };
    service.create_group(taken).await.unwrap();
    service.reconcile_group(&group).await.unwrap();
    let instance = service.instances(Some(&group.id), None, None).await.unwrap()[0].id.to_string();
    let parameters = json!({"invokeType": "invoke", "scalingGroupId": group.id, "invokeScript": "true"});
    let task = service
        .start_template("ACS-ESS-RollingUpdateByRunCommandInScalingGroup", &parameters.to_string())
        .await
        .unwrap();
    wait_for_task(&service, &task.id, "its end", |task, _| task.status.is_final()).await;
    let image = NewTemplateVersion { image_id: "img".into(), ..NewTemplateVersion::default() };
    let (template, _) = service.create_launch_template("parity-template", image).await.unwrap();
    service.create_package(PACKAGE, "1", "true", "true").await.unwrap();
    service.create_user(NewUser { name: USER.into(), display_name: None, comments: None }).await.unwrap();
    service.create_access_key(USER).await.unwrap();
    let document =
        json!({"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["ess:Describe*"], "Resource": "*"}]});
    service.create_policy(POLICY, &document.to_string(), "").await.unwrap();
    service.attach_policy(USER, PolicyType::Custom, POLICY).await.unwrap();
    let rule = RuleChange {
        name: RULE.into(),
        patterns: vec![EventPattern { levels: vec![EventLevel::Critical], ..Default::default() }],
        ..RuleChange::default()
    };
    service.put_alert_rule(rule).await.unwrap();
    let webhook = Webhook { id: "1".into(), url: "http://127.0.0.1:9/".into(), method: WebhookMethod::Post };
    service.put_alert_webhooks(RULE, vec![webhook]).await.unwrap();
    App {
        router,
        service,
        token,
        group: group.id.to_string(),
        configuration: configuration.id.to_string(),
        lb: lb.id.to_string(),
        instance,
        task: task.id.to_string(),
        template: template.id.to_string(),
        _dir: dir,
    }
}

impl App {
    /// Everything an operation could change, as text.
    async fn snapshot(&self) -> String {
        let service = &self.service;
        let store = service.engine.store();
        let mut templates = Vec::new();
        for template in service.launch_templates().await.unwrap() {
            templates.push(format!("{template:?} {:?}", service.launch_template_versions(&template.id).await));
        }
        let instance = rollscale_core::ids::InstanceId::parse(&self.instance).unwrap();
        let backends = service.backends(&instance).await.unwrap();
        let executions = ExecutionFilter { include_children: true, ..ExecutionFilter::default() };
        let mut access = Vec::new();
        for user in ["admin", USER] {
            access.push(format!("{:?}", service.access_keys(user).await.unwrap()));
            access.push(format!("{:?}", service.user_policies(user).await.unwrap()));
        }
        format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n{backends:?}\n{:?}\n{:?}\n{templates:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{access:?}",
            service.groups(None, None).await.unwrap(),
            service.configurations(None, None).await.unwrap(),
            service.instances(None, None, None).await.unwrap(),
            service.load_balancers().await.unwrap(),
            service.images().await.unwrap(),
            service.packages(None).await.unwrap(),
            store.user_list(0, 10_000).await.unwrap(),
            store.policy_list().await.unwrap(),
            service.alert_rules("", 100, 0).await.unwrap(),
            service.list_executions(&executions, 0, 1_000).await.unwrap(),
            service.activities(&group_id(&self.group), 0, 100).await.unwrap(),
        )
    }
}

/// A bad value as each API spells it: a parameter's text, a JSON value.
#[derive(Clone, Debug)]
struct Bad {
    what: &'static str,
    rpc: String,
    rest: Value,
    /// The bad part, which a message may show when it does not name the parameter (the id in a
    /// JSON list of servers): the RPC text unless said.
    shown: Option<String>,
}

fn bad(what: &'static str, rpc: impl ToString, rest: Value) -> Bad {
    Bad { what, rpc: rpc.to_string(), rest, shown: None }
}

fn text(what: &'static str, value: &str) -> Bad {
    bad(what, value, json!(value))
}

/// A group's names: another group's too.
fn bad_group_names() -> Vec<Bad> {
    let mut names = bad_names();
    names.push(text("another group's", TAKEN));
    names
}

/// Names: too long, control characters, blank.
fn bad_names() -> Vec<Bad> {
    vec![
        text("10 KB", &"a".repeat(10 * 1024)),
        text("65 characters", &"n".repeat(65)),
        text("NUL", "bad\0name"),
        text("a newline", "bad\nname"),
        text("ESC", "bad\u{1b}[31mname"),
        text("DEL", "bad\u{7f}name"),
        text("blank", "   "),
    ]
}

/// [`bad_names`] but the ones named.
fn bad_names_but(left_out: &[&str]) -> Vec<Bad> {
    bad_names().into_iter().filter(|bad| !left_out.contains(&bad.what)).collect()
}

/// Names of at most 128 characters (a load balancer's, an image's): too long, control
/// characters, blank.
fn bad_long_names() -> Vec<Bad> {
    let mut names = bad_names_but(&["65 characters"]);
    names.push(text("129 characters", &"n".repeat(129)));
    names
}

/// Free text of at most `max` characters (a description, a comment): too long, control
/// characters other than a line break or a tab. Blank text is taken.
fn bad_texts(max: usize) -> Vec<Bad> {
    vec![
        text("10 KB", &"a".repeat(10 * 1024)),
        bad("one character too many", "t".repeat(max + 1), json!("t".repeat(max + 1))),
        text("NUL", "bad\0text"),
        text("ESC", "bad\u{1b}[31mtext"),
        text("DEL", "bad\u{7f}text"),
        text("a carriage return", "bad\rtext"),
    ]
}

/// Counts: the wrong type (a word, a fraction, a boolean), below zero, past 32 bits, and the
/// values out of the field's range given.
fn bad_counts(out_of_range: &[i64]) -> Vec<Bad> {
    let mut values = vec![
        text("a word", "ten"),
        bad("a fraction", "1.5", json!(1.5)),
        bad("a boolean", "true", json!(true)),
        bad("below zero", -1, json!(-1)),
        bad("past 32 bits", 1_i64 << 32, json!(1_i64 << 32)),
    ];
    values.extend(out_of_range.iter().map(|n| bad("out of range", n, json!(n))));
    values
}

/// Ids of the kind whose prefix is given that cannot be one: another kind's, control
/// characters, a space, too long, the prefix alone.
fn bad_ids(prefix: &str) -> Vec<Bad> {
    let other = if prefix == "asc-" { "asg-" } else { "asc-" };
    vec![
        text("another kind's id", &format!("{other}0123456789abcdef0123")),
        text("no prefix", "0123456789abcdef0123"),
        text("NUL", &format!("{prefix}bad\0id")),
        text("a newline", &format!("{prefix}bad\nid")),
        text("a space", &format!("{prefix}bad id")),
        text("DEL", &format!("{prefix}bad\u{7f}id")),
        text("65 characters after its prefix", &format!("{prefix}{}", "a".repeat(65))),
        text("10 KB", &format!("{prefix}{}", "a".repeat(10 * 1024))),
        text("its prefix alone", prefix),
    ]
}

/// [`bad_ids`] as a one-element list: `Name.1` over RPC, a JSON array over REST.
fn bad_id_lists(prefix: &str) -> Vec<Bad> {
    bad_ids(prefix).into_iter().map(|bad| Bad { rest: json!([bad.rest]), ..bad }).collect()
}

/// Values of no enum: a word, another case, control characters.
fn bad_enums() -> Vec<Bad> {
    vec![text("a word", "Bogus"), text("NUL", "Bad\0"), text("10 KB", &"a".repeat(10 * 1024))]
}

/// Booleans that are not: a word, a number.
fn bad_bools() -> Vec<Bad> {
    vec![text("a word", "yes"), bad("a number", "2", json!(2))]
}

/// A case of an operation over both APIs: the RPC action with the parameters it needs besides
/// the one under test, and its REST route with the body it needs.
struct Case {
    version: &'static str,
    action: &'static str,
    rpc: Vec<(&'static str, String)>,
    method: &'static str,
    /// The route's path with its parameters filled in but the one under test (`{id}`).
    path: String,
    rest: Value,
    /// (RPC parameter, REST field, the bad values). The REST field is a `{path}` parameter, a
    /// `?query` parameter, or else a field of the body (of the query for `get`).
    fields: Vec<(&'static str, &'static str, Vec<Bad>)>,
}

impl Case {
    /// The operation of the table the RPC call is.
    fn operation(&self) -> &'static operations::Operation {
        operations::find(self.version, self.action)
            .unwrap_or_else(|| panic!("{} {} is no operation of the table", self.version, self.action))
    }

    async fn rpc(&self, app: &App, name: &str, value: &str) -> (u16, Value) {
        let mut params: Vec<(&str, &str)> =
            self.rpc.iter().filter(|(n, _)| *n != name).map(|(n, v)| (*n, v.as_str())).collect();
        params.push((name, value));
        send(&app.router, rpc_request(KEY, SECRET, self.version, self.action, &params)).await
    }

    async fn rest(&self, app: &App, name: &str, value: &Value) -> (u16, Value) {
        let as_text = || value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
        let body = (self.method != "get" && self.method != "delete").then_some(&self.rest);
        let request = if name.starts_with('{') {
            let text =
                percent_encoding::utf8_percent_encode(&as_text(), percent_encoding::NON_ALPHANUMERIC).to_string();
            rest_request(&app.token, self.method, &self.path.replace(name, &text), body)
        } else if let Some(name) = name.strip_prefix('?').or((self.method == "get").then_some(name)) {
            let query: String = form_urlencoded::Serializer::new(String::new()).append_pair(name, &as_text()).finish();
            let separator = if self.path.contains('?') { '&' } else { '?' };
            rest_request(&app.token, self.method, &format!("{}{separator}{query}", self.path), body)
        } else {
            let mut body = self.rest.clone();
            body[name] = value.clone();
            rest_request(&app.token, self.method, &self.path, Some(&body))
        };
        send(&app.router, request).await
    }

    /// The REST route the case calls, and the action it is for the case's body.
    fn route_action(&self) -> Option<&'static str> {
        let path = self.path.split('?').next().unwrap_or_default();
        let segments: Vec<&str> = path.split('/').collect();
        let route = ROUTES.iter().find(|route| {
            let pattern: Vec<&str> = route.path.split('/').collect();
            route.method == self.method
                && pattern.len() == segments.len()
                && pattern.iter().zip(&segments).all(|(want, got)| want.starts_with('{') || want == got)
        })?;
        match route.action_by {
            None => Some(route.action),
            Some((field, actions)) => {
                let chosen = self.rest[field].as_str()?;
                actions.iter().find(|(value, _)| *value == chosen).map(|(_, action)| *action)
            }
        }
    }
}

fn s(text: &str) -> String {
    text.to_string()
}

/// The cases: every operation of the table with an RPC action and a REST route, but the
/// [`EXCEPTIONS`].
fn cases(app: &Ids) -> Vec<Case> {
    let Ids { group, configuration, lb, instance, task, template } = app;
    let mut cases = Vec::new();
    for version in ["2014-08-28", "2022-02-22"] {
        cases.push(Case {
            version,
            action: "CreateScalingGroup",
            rpc: vec![("ScalingGroupName", s("fresh")), ("MinSize", s("0")), ("MaxSize", s("2"))],
            method: "post",
            path: s("/v1/scaling-groups"),
            rest: json!({"name": "fresh", "min_size": 0, "max_size": 2}),
            fields: vec![
                ("ScalingGroupName", "name", bad_group_names()),
                ("RegionId", "region_id", bad_names()),
                ("MinSize", "min_size", bad_counts(&[3, 10_001])),
                ("MaxSize", "max_size", bad_counts(&[10_001, 20_000])),
                ("DesiredCapacity", "desired_capacity", bad_counts(&[3, 10_001])),
                ("DrainTimeout", "drain_timeout_s", bad_counts(&[3601])),
                ("HealthCheckGracePeriod", "health_check_grace_period_s", bad_counts(&[7201])),
                ("GroupType", "group_type", bad_enums()),
                ("LoadBalancerIds.1", "load_balancer_ids", bad_id_lists("lb-")),
                ("LaunchTemplateId", "launch_template_id", bad_ids("lt-")),
                (
                    "HealthCheckTypes.1",
                    "health_check_types",
                    bad_enums().into_iter().map(|bad| Bad { rest: json!([bad.rest]), ..bad }).collect(),
                ),
            ],
        });
        cases.push(Case {
            version,
            action: "ModifyScalingGroup",
            rpc: vec![("ScalingGroupId", group.clone())],
            method: "patch",
            path: format!("/v1/scaling-groups/{group}"),
            rest: json!({}),
            fields: vec![
                ("ScalingGroupName", "name", bad_group_names()),
                ("MinSize", "min_size", bad_counts(&[9, 10_001])),
                ("MaxSize", "max_size", bad_counts(&[10_001])),
                ("DesiredCapacity", "desired_capacity", bad_counts(&[9, 10_001])),
                ("DrainTimeout", "drain_timeout_s", bad_counts(&[3601])),
                ("HealthCheckGracePeriod", "health_check_grace_period_s", bad_counts(&[7201])),
                ("ActiveScalingConfigurationId", "scaling_configuration_id", bad_ids("asc-")),
            ],
        });
        cases.push(Case {
            version,
            action: "ModifyScalingGroup",
            rpc: vec![("MaxSize", s("8"))],
            method: "patch",
            path: s("/v1/scaling-groups/{id}"),
            rest: json!({"max_size": 8}),
            fields: vec![("ScalingGroupId", "{id}", bad_ids("asg-"))],
        });
        cases.push(Case {
            version,
            action: "CreateScalingConfiguration",
            rpc: vec![("ScalingGroupId", group.clone()), ("ImageId", s("img"))],
            method: "post",
            path: s("/v1/scaling-configurations"),
            rest: json!({"scaling_group_id": group, "image_id": "img"}),
            fields: vec![
                ("ScalingConfigurationName", "name", bad_names()),
                ("InstanceType", "instance_type", bad_names()),
                ("ScalingGroupId", "scaling_group_id", bad_ids("asg-")),
            ],
        });
        cases.push(Case {
            version,
            action: "ModifyScalingConfiguration",
            rpc: vec![("ScalingConfigurationId", configuration.clone())],
            method: "patch",
            path: format!("/v1/scaling-configurations/{configuration}"),
            rest: json!({}),
            fields: vec![("ScalingConfigurationName", "name", bad_names())],
        });
        cases.push(Case {
            version,
            action: "ModifyScalingConfiguration",
            rpc: vec![("ImageId", s("img"))],
            method: "patch",
            path: s("/v1/scaling-configurations/{id}"),
            rest: json!({"image_id": "img"}),
            fields: vec![("ScalingConfigurationId", "{id}", bad_ids("asc-"))],
        });
    }
    // ESS 2022-02-22 (both versions read the same way; the lists' names are 2022's).
    let ess = "2022-02-22";
    let group_path = |rest: &str| format!("/v1/scaling-groups/{{id}}{rest}");
    cases.push(Case {
        version: ess,
        action: "EnableScalingGroup",
        rpc: vec![("ScalingGroupId", group.clone())],
        method: "post",
        path: format!("/v1/scaling-groups/{group}/enable"),
        rest: json!({}),
        fields: vec![("ActiveScalingConfigurationId", "scaling_configuration_id", bad_ids("asc-"))],
    });
    cases.push(Case {
        version: ess,
        action: "EnableScalingGroup",
        rpc: vec![],
        method: "post",
        path: group_path("/enable"),
        rest: json!({}),
        fields: vec![("ScalingGroupId", "{id}", bad_ids("asg-"))],
    });
    cases.push(Case {
        version: ess,
        action: "DeleteScalingGroup",
        rpc: vec![],
        method: "delete",
        path: group_path(""),
        rest: json!({}),
        fields: vec![("ScalingGroupId", "{id}", bad_ids("asg-"))],
    });
    cases.push(Case {
        version: ess,
        action: "DeleteScalingGroup",
        rpc: vec![("ScalingGroupId", group.clone())],
        method: "delete",
        path: format!("/v1/scaling-groups/{group}"),
        rest: json!({}),
        fields: vec![("ForceDelete", "?force", bad_bools())],
    });
    cases.push(Case {
        version: ess,
        action: "DescribeScalingConfigurations",
        rpc: vec![],
        method: "get",
        path: s("/v1/scaling-configurations"),
        rest: json!({}),
        fields: vec![("ScalingGroupId", "scaling_group_id", bad_ids("asg-"))],
    });
    cases.push(Case {
        version: ess,
        action: "DescribeScalingInstances",
        rpc: vec![],
        method: "get",
        path: s("/v1/instances"),
        rest: json!({}),
        fields: vec![
            ("ScalingGroupId", "scaling_group_id", bad_ids("asg-")),
            ("LifecycleState", "lifecycle_state", bad_enums()),
        ],
    });
    for (action, choice) in [("EnterStandby", "enter"), ("ExitStandby", "exit")] {
        cases.push(Case {
            version: ess,
            action,
            rpc: vec![("ScalingGroupId", group.clone()), ("InstanceIds.1", instance.clone())],
            method: "post",
            path: format!("/v1/scaling-groups/{group}/standby"),
            rest: json!({"action": choice, "instance_ids": [instance]}),
            fields: vec![("InstanceIds.1", "instance_ids", bad_id_lists("i-"))],
        });
        cases.push(Case {
            version: ess,
            action,
            rpc: vec![("InstanceIds.1", instance.clone())],
            method: "post",
            path: group_path("/standby"),
            rest: json!({"action": choice, "instance_ids": [instance]}),
            fields: vec![("ScalingGroupId", "{id}", bad_ids("asg-"))],
        });
    }
    cases.push(Case {
        version: ess,
        action: "RemoveInstances",
        rpc: vec![("ScalingGroupId", group.clone()), ("InstanceIds.1", instance.clone())],
        method: "post",
        path: format!("/v1/scaling-groups/{group}/remove-instances"),
        rest: json!({"instance_ids": [instance]}),
        fields: vec![
            ("InstanceIds.1", "instance_ids", bad_id_lists("i-")),
            ("DecreaseDesiredCapacity", "decrease_desired_capacity", bad_bools()),
        ],
    });
    cases.push(Case {
        version: ess,
        action: "RemoveInstances",
        rpc: vec![("InstanceIds.1", instance.clone())],
        method: "post",
        path: group_path("/remove-instances"),
        rest: json!({"instance_ids": [instance]}),
        fields: vec![("ScalingGroupId", "{id}", bad_ids("asg-"))],
    });
    cases.push(Case {
        version: ess,
        action: "SetInstancesProtection",
        rpc: vec![
            ("ScalingGroupId", group.clone()),
            ("InstanceIds.1", instance.clone()),
            ("ProtectedFromScaleIn", s("true")),
        ],
        method: "post",
        path: format!("/v1/scaling-groups/{group}/protection"),
        rest: json!({"protected": true, "instance_ids": [instance]}),
        fields: vec![
            ("InstanceIds.1", "instance_ids", bad_id_lists("i-")),
            ("ProtectedFromScaleIn", "protected", bad_bools()),
        ],
    });
    cases.push(Case {
        version: ess,
        action: "SetInstancesProtection",
        rpc: vec![("InstanceIds.1", instance.clone()), ("ProtectedFromScaleIn", s("true"))],
        method: "post",
        path: group_path("/protection"),
        rest: json!({"protected": true, "instance_ids": [instance]}),
        fields: vec![("ScalingGroupId", "{id}", bad_ids("asg-"))],
    });
    for (action, choice) in [("SuspendProcesses", "suspend"), ("ResumeProcesses", "resume")] {
        let processes = bad_enums().into_iter().map(|bad| Bad { rest: json!([bad.rest]), ..bad }).collect();
        cases.push(Case {
            version: ess,
            action,
            rpc: vec![("ScalingGroupId", group.clone())],
            method: "post",
            path: format!("/v1/scaling-groups/{group}/processes"),
            rest: json!({"action": choice, "processes": []}),
            fields: vec![("Processes.1", "processes", processes)],
        });
        cases.push(Case {
            version: ess,
            action,
            rpc: vec![("Processes.1", s("ScaleIn"))],
            method: "post",
            path: group_path("/processes"),
            rest: json!({"action": choice, "processes": ["ScaleIn"]}),
            fields: vec![("ScalingGroupId", "{id}", bad_ids("asg-"))],
        });
    }
    cases.push(Case {
        version: ess,
        action: "DescribeScalingActivities",
        rpc: vec![],
        method: "get",
        path: group_path("/activities"),
        rest: json!({}),
        fields: vec![("ScalingGroupId", "{id}", bad_ids("asg-"))],
    });
    cases.push(Case {
        version: ess,
        action: "CreatePackage",
        rpc: vec![("PackageName", s("fresh")), ("PackageVersion", s("1")), ("InstallScript", s("true"))],
        method: "post",
        path: s("/v1/packages"),
        rest: json!({"name": "fresh", "version": "1", "install_script": "true"}),
        fields: vec![("PackageName", "name", bad_names()), ("PackageVersion", "version", bad_names())],
    });
    cases.push(Case {
        version: ess,
        action: "DeletePackage",
        rpc: vec![("PackageVersion", s("1"))],
        method: "delete",
        path: s("/v1/packages/{name}/1"),
        rest: json!({}),
        fields: vec![("PackageName", "{name}", bad_names_but(&["blank"]))],
    });
    cases.push(Case {
        version: ess,
        action: "CreateLoadBalancer",
        rpc: vec![("LoadBalancerName", s("fresh"))],
        method: "post",
        path: s("/v1/load-balancers"),
        rest: json!({"name": "fresh"}),
        fields: vec![
            ("LoadBalancerName", "name", bad_long_names()),
            ("DefaultWeight", "default_weight", bad_counts(&[101])),
        ],
    });
    // SLB's BackendServers with one server of the group's instance at the weight given, and
    // with an id that cannot be an instance's.
    let weights = bad_counts(&[101])
        .into_iter()
        .map(|weight| Bad {
            what: weight.what,
            rpc: json!([{"ServerId": instance, "Weight": weight.rest}]).to_string(),
            rest: json!([{"instance_id": instance, "weight": weight.rest}]),
            shown: None,
        })
        .chain(bad_ids("i-").into_iter().map(|id| Bad {
            what: id.what,
            rpc: json!([{"ServerId": id.rest, "Weight": 50}]).to_string(),
            rest: json!([{"instance_id": id.rest, "weight": 50}]),
            shown: Some(id.rpc),
        }))
        .collect();
    cases.push(Case {
        version: ess,
        action: "SetBackendServers",
        rpc: vec![("LoadBalancerId", lb.clone())],
        method: "put",
        path: format!("/v1/load-balancers/{lb}/backend-servers"),
        rest: json!({}),
        fields: vec![("BackendServers", "backend_servers", weights)],
    });
    let servers = json!([{"ServerId": instance, "Weight": 50}]);
    cases.push(Case {
        version: ess,
        action: "SetBackendServers",
        rpc: vec![("BackendServers", servers.to_string())],
        method: "put",
        path: s("/v1/load-balancers/{id}/backend-servers"),
        rest: json!({"backend_servers": [{"instance_id": instance, "weight": 50}]}),
        fields: vec![("LoadBalancerId", "{id}", bad_ids("lb-"))],
    });
    // A list's page size, over the RPC API a parameter, over REST `?limit=`.
    let page = |too_big: i64| bad_counts(&[0, too_big]);
    cases.push(Case {
        version: ess,
        action: "DescribeEvents",
        rpc: vec![],
        method: "get",
        path: s("/v1/events"),
        rest: json!({}),
        fields: vec![
            ("PageSize", "limit", page(501)),
            ("Keywords", "keywords", vec![text("an operator alone", "and")]),
        ],
    });
    // ECS.
    let ecs = "2014-05-26";
    cases.push(Case {
        version: ecs,
        action: "CreateImage",
        rpc: vec![("ImageId", s("fresh"))],
        method: "post",
        path: s("/v1/images"),
        rest: json!({"id": "fresh"}),
        fields: vec![
            ("ImageId", "id", bad_names_but(&["65 characters"])),
            ("ImageName", "name", bad_long_names()),
            ("OSType", "os", bad_enums()),
        ],
    });
    cases.push(Case {
        version: ecs,
        action: "CreateImage",
        rpc: vec![],
        method: "post",
        path: s("/v1/images"),
        rest: json!({}),
        fields: vec![("InstanceId", "instance_id", bad_ids("i-"))],
    });
    cases.push(Case {
        version: ecs,
        action: "DeleteImage",
        rpc: vec![],
        method: "delete",
        path: s("/v1/images/{id}"),
        rest: json!({}),
        fields: vec![("ImageId", "{id}", bad_names_but(&["blank"]))],
    });
    cases.push(Case {
        version: ecs,
        action: "CreateLaunchTemplate",
        rpc: vec![("LaunchTemplateName", s("fresh")), ("ImageId", s("img"))],
        method: "post",
        path: s("/v1/launch-templates"),
        rest: json!({"name": "fresh", "version": {"image_id": "img"}}),
        // Its name takes up to 128 characters.
        fields: vec![("LaunchTemplateName", "name", bad_names_but(&["65 characters"]))],
    });
    cases.push(Case {
        version: ecs,
        action: "CreateLaunchTemplateVersion",
        rpc: vec![("ImageId", s("img"))],
        method: "post",
        path: s("/v1/launch-templates/{id}/versions"),
        rest: json!({"image_id": "img"}),
        fields: vec![("LaunchTemplateId", "{id}", bad_ids("lt-"))],
    });
    cases.push(Case {
        version: ecs,
        action: "CreateLaunchTemplateVersion",
        rpc: vec![("LaunchTemplateId", template.clone())],
        method: "post",
        path: format!("/v1/launch-templates/{template}/versions"),
        rest: json!({}),
        fields: vec![("ImageId", "image_id", vec![text("an image that does not exist", "no-such-image")])],
    });
    cases.push(Case {
        version: ecs,
        action: "ModifyLaunchTemplateDefaultVersion",
        rpc: vec![("DefaultVersionNumber", s("1"))],
        method: "patch",
        path: s("/v1/launch-templates/{id}"),
        rest: json!({"default_version": 1}),
        fields: vec![("LaunchTemplateId", "{id}", bad_ids("lt-"))],
    });
    cases.push(Case {
        version: ecs,
        action: "ModifyLaunchTemplateDefaultVersion",
        rpc: vec![("LaunchTemplateId", template.clone())],
        method: "patch",
        path: format!("/v1/launch-templates/{template}"),
        rest: json!({}),
        fields: vec![("DefaultVersionNumber", "default_version", bad_counts(&[0, 2]))],
    });
    cases.push(Case {
        version: ecs,
        action: "DescribeLaunchTemplateVersions",
        rpc: vec![],
        method: "get",
        path: s("/v1/launch-templates/{id}/versions"),
        rest: json!({}),
        fields: vec![("LaunchTemplateId", "{id}", bad_ids("lt-"))],
    });
    // OOS.
    let oos = "2019-06-01";
    let script = "ACS-ESS-RollingUpdateByRunCommandInScalingGroup";
    let start = |group: &str| json!({"invokeType": "invoke", "scalingGroupId": group, "invokeScript": "true"});
    let starts: Vec<Bad> = bad_ids("asg-")
        .into_iter()
        .map(|id| {
            let parameters = start(id.rest.as_str().unwrap_or_default());
            Bad { what: id.what, rpc: parameters.to_string(), rest: parameters, shown: Some(id.rpc) }
        })
        .collect();
    cases.push(Case {
        version: oos,
        action: "StartExecution",
        rpc: vec![("TemplateName", s(script)), ("Parameters", start(group).to_string())],
        method: "post",
        path: s("/v1/rolling-updates"),
        rest: json!({"template_name": script, "parameters": start(group)}),
        fields: vec![
            ("TemplateName", "template_name", bad_names_but(&["blank"])),
            ("Parameters", "parameters", starts),
        ],
    });
    let image_start = |instance: &str| json!({"instanceId": instance, "scalingConfigurationIds": [configuration]});
    let image_starts: Vec<Bad> = bad_ids("i-")
        .into_iter()
        .map(|id| {
            let parameters = image_start(id.rest.as_str().unwrap_or_default());
            Bad { what: id.what, rpc: parameters.to_string(), rest: parameters, shown: Some(id.rpc) }
        })
        .collect();
    cases.push(Case {
        version: oos,
        action: "StartExecution",
        rpc: vec![("TemplateName", s("ACS-ESS-CreateImageAndUpdateScalingConfiguration"))],
        method: "post",
        path: s("/v1/image-update-tasks"),
        rest: json!({}),
        fields: vec![("Parameters", "parameters", image_starts)],
    });
    cases.push(Case {
        version: oos,
        action: "ListExecutions",
        rpc: vec![],
        method: "get",
        path: s("/v1/rolling-updates"),
        rest: json!({}),
        fields: vec![("MaxResults", "limit", page(101)), ("Status", "status", bad_enums())],
    });
    cases.push(Case {
        version: oos,
        action: "ListTaskExecutions",
        rpc: vec![],
        method: "get",
        path: s("/v1/rolling-updates/{id}/instances"),
        rest: json!({}),
        fields: vec![("ExecutionId", "{id}", bad_ids("exec-"))],
    });
    cases.push(Case {
        version: oos,
        action: "NotifyExecution",
        rpc: vec![("NotifyType", s("Approve"))],
        method: "post",
        path: s("/v1/rolling-updates/{id}/continue"),
        rest: json!({}),
        fields: vec![("ExecutionId", "{id}", bad_ids("exec-"))],
    });
    for (notify, decision) in [("RetryTask", "retry"), ("SkipTask", "skip"), ("CancelTask", "cancel")] {
        cases.push(Case {
            version: oos,
            action: "NotifyExecution",
            rpc: vec![("ExecutionId", task.clone()), ("NotifyType", s(notify))],
            method: "post",
            path: format!("/v1/rolling-updates/{task}/instances/{{instance}}/{decision}"),
            rest: json!({}),
            fields: vec![("TaskExecutionId", "{instance}", bad_names_but(&["blank"]))],
        });
    }
    cases.push(Case {
        version: oos,
        action: "CancelExecution",
        rpc: vec![],
        method: "post",
        path: s("/v1/rolling-updates/{id}/cancel"),
        rest: json!({}),
        fields: vec![("ExecutionId", "{id}", bad_ids("exec-"))],
    });
    cases.push(Case {
        version: oos,
        action: "CancelExecution",
        rpc: vec![],
        method: "post",
        path: s("/v1/image-update-tasks/{id}/cancel"),
        rest: json!({}),
        fields: vec![("ExecutionId", "{id}", bad_ids("exec-"))],
    });
    cases.push(Case {
        version: oos,
        action: "CancelExecution",
        rpc: vec![("ExecutionId", task.clone())],
        method: "post",
        path: format!("/v1/rolling-updates/{task}/cancel"),
        rest: json!({}),
        fields: vec![("Restore", "restore", bad_bools())],
    });
    // RAM.
    let ram = "2015-05-01";
    let policy =
        json!({"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["ess:Describe*"], "Resource": "*"}]});
    let user_names = || bad_names_but(&["blank"]);
    cases.push(Case {
        version: ram,
        action: "CreateUser",
        rpc: vec![("UserName", s("fresh"))],
        method: "post",
        path: s("/v1/users"),
        rest: json!({"name": "fresh"}),
        fields: vec![
            ("UserName", "name", bad_names()),
            ("DisplayName", "display_name", bad_texts(128)),
            ("Comments", "comments", bad_texts(128)),
        ],
    });
    for (action, method, path) in [
        ("GetUser", "get", "/v1/users/{name}"),
        ("DeleteUser", "delete", "/v1/users/{name}"),
        ("ListAccessKeys", "get", "/v1/users/{name}/keys"),
        ("CreateAccessKey", "post", "/v1/users/{name}/keys"),
        ("ListPoliciesForUser", "get", "/v1/users/{name}/policies"),
    ] {
        cases.push(Case {
            version: ram,
            action,
            rpc: vec![],
            method,
            path: s(path),
            rest: json!({}),
            fields: vec![("UserName", "{name}", user_names())],
        });
    }
    cases.push(Case {
        version: ram,
        action: "UpdateAccessKey",
        rpc: vec![("UserName", s(USER)), ("UserAccessKeyId", s("LTAIno0such0key000000"))],
        method: "patch",
        path: format!("/v1/users/{USER}/keys/LTAIno0such0key000000"),
        rest: json!({}),
        fields: vec![("Status", "status", bad_enums())],
    });
    cases.push(Case {
        version: ram,
        action: "DeleteAccessKey",
        rpc: vec![("UserName", s(USER))],
        method: "delete",
        path: format!("/v1/users/{USER}/keys/{{id}}"),
        rest: json!({}),
        fields: vec![("UserAccessKeyId", "{id}", bad_names_but(&["blank"]))],
    });
    cases.push(Case {
        version: ram,
        action: "CreatePolicy",
        rpc: vec![("PolicyName", s("fresh")), ("PolicyDocument", policy.to_string())],
        method: "post",
        path: s("/v1/policies"),
        rest: json!({"name": "fresh", "document": policy}),
        fields: vec![("PolicyName", "name", bad_long_names()), ("Description", "description", bad_texts(1024))],
    });
    cases.push(Case {
        version: ram,
        action: "ListPolicies",
        rpc: vec![],
        method: "get",
        path: s("/v1/policies"),
        rest: json!({}),
        fields: vec![("PolicyType", "policy_type", bad_enums())],
    });
    cases.push(Case {
        version: ram,
        action: "DeletePolicy",
        rpc: vec![],
        method: "delete",
        path: s("/v1/policies/{name}"),
        rest: json!({}),
        fields: vec![("PolicyName", "{name}", user_names())],
    });
    cases.push(Case {
        version: ram,
        action: "AttachPolicyToUser",
        rpc: vec![("UserName", s(USER)), ("PolicyName", s("AdministratorAccess"))],
        method: "post",
        path: format!("/v1/users/{USER}/policies"),
        rest: json!({"policy_name": "AdministratorAccess"}),
        fields: vec![("PolicyType", "policy_type", bad_enums())],
    });
    cases.push(Case {
        version: ram,
        action: "DetachPolicyFromUser",
        rpc: vec![("UserName", s(USER)), ("PolicyName", s(POLICY))],
        method: "delete",
        path: format!("/v1/users/{USER}/policies/{{type}}/{POLICY}"),
        rest: json!({}),
        fields: vec![("PolicyType", "{type}", bad_enums())],
    });
    cases.push(Case {
        version: ram,
        action: "ListAuditEvents",
        rpc: vec![],
        method: "get",
        path: s("/v1/audit-events"),
        rest: json!({}),
        fields: vec![("MaxResults", "limit", page(1001))],
    });
    // CMS.
    let cms = "2019-01-01";
    cases.push(Case {
        version: cms,
        action: "PutEventRule",
        rpc: vec![("EventPattern.1.Product", s("ess"))],
        method: "put",
        path: s("/v1/alert-rules/{name}"),
        rest: json!({"patterns": [{}]}),
        fields: vec![("RuleName", "{name}", bad_names())],
    });
    cases.push(Case {
        version: cms,
        action: "PutEventRule",
        rpc: vec![("RuleName", s("fresh")), ("EventPattern.1.Product", s("ess"))],
        method: "put",
        path: s("/v1/alert-rules/fresh"),
        rest: json!({"patterns": [{}]}),
        fields: vec![("Description", "description", bad_texts(256))],
    });
    for (action, method, path, rpc, rest) in [
        ("DescribeEventRuleAttribute", "get", "/v1/alert-rules/{name}", "RuleName", json!({})),
        ("DeleteEventRules", "delete", "/v1/alert-rules/{name}", "RuleNames.1", json!({})),
        ("EnableEventRules", "post", "/v1/alert-rules/{name}/state", "RuleNames.1", json!({"action": "enable"})),
        ("DisableEventRules", "post", "/v1/alert-rules/{name}/state", "RuleNames.1", json!({"action": "disable"})),
        ("DescribeEventRuleDeliveries", "get", "/v1/alert-rules/{name}/deliveries", "RuleName", json!({})),
    ] {
        cases.push(Case {
            version: cms,
            action,
            rpc: vec![],
            method,
            path: s(path),
            rest,
            fields: vec![(rpc, "{name}", bad_names_but(&["blank"]))],
        });
    }
    cases.push(Case {
        version: cms,
        action: "DeleteEventRuleTargets",
        rpc: vec![("Ids.1", s("1"))],
        method: "delete",
        path: s("/v1/alert-rules/{name}/webhooks/1"),
        rest: json!({}),
        fields: vec![("RuleName", "{name}", bad_names_but(&["blank"]))],
    });
    cases.push(Case {
        version: cms,
        action: "PutEventRuleTargets",
        rpc: vec![
            ("RuleName", s(RULE)),
            ("WebhookParameters.1.Id", s("2")),
            ("WebhookParameters.1.Url", s("http://127.0.0.1:9/")),
        ],
        method: "put",
        path: format!("/v1/alert-rules/{RULE}/webhooks/2"),
        rest: json!({"url": "http://127.0.0.1:9/"}),
        fields: vec![("WebhookParameters.1.Method", "method", bad_enums())],
    });
    cases.push(Case {
        version: cms,
        action: "DescribeEventRuleDeliveries",
        rpc: vec![("RuleName", s(RULE))],
        method: "get",
        path: format!("/v1/alert-rules/{RULE}/deliveries"),
        rest: json!({}),
        fields: vec![("Status", "status", bad_enums()), ("PageSize", "limit", page(501))],
    });
    cases
}

/// The ids the cases name.
struct Ids {
    group: String,
    configuration: String,
    lb: String,
    instance: String,
    task: String,
    template: String,
}

impl App {
    fn ids(&self) -> Ids {
        Ids {
            group: self.group.clone(),
            configuration: self.configuration.clone(),
            lb: self.lb.clone(),
            instance: self.instance.clone(),
            task: self.task.clone(),
            template: self.template.clone(),
        }
    }
}

/// Letters and digits only, in lower case: `drain_timeout_s: …` names `DrainTimeout`.
fn normal(text: &str) -> String {
    text.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// Whether `message` names the parameter (as either API spells it) or shows the value (its
/// first characters, control characters escaped): a refusal of this value, not of something
/// else of the request.
fn names_it(message: &str, parameter: &str, field: &str, value: &str) -> bool {
    let named = |name: &str| !name.starts_with('{') && normal(message).contains(&normal(name.trim_start_matches('?')));
    let shown: String = value.escape_debug().take(16).collect();
    let literal: String = value.chars().take(16).collect();
    let value_named = |value: &str| !value.trim().is_empty() && message.contains(value);
    named(parameter.split('.').next().unwrap_or(parameter))
        || named(field)
        || value_named(&shown)
        || value_named(&literal)
}

/// Gives each case each bad value over both APIs: the answers' codes and statuses, and what
/// changed, are compared; every difference is listed before the test fails.
async fn walk(app: &App, cases: &[Case]) {
    let mut before = app.snapshot().await;
    let mut differences = Vec::new();
    let mut count = 0;
    for case in cases {
        let (version, action) = (case.version, case.action);
        for (parameter, field, values) in &case.fields {
            for value in values {
                count += 1;
                let (rpc_status, rpc) = case.rpc(app, parameter, &value.rpc).await;
                let (rest_status, rest) = case.rest(app, field, &value.rest).await;
                let label = format!("{action} {version} {parameter}/{field} {}", value.what);
                if rpc_status == 200 || rest_status == 200 {
                    differences.push(format!("{label}: taken (RPC {rpc_status}, REST {rest_status})"));
                } else if (rpc_status, &rpc["Code"]) != (rest_status, &rest["Code"]) {
                    differences.push(format!(
                        "{label}: RPC {rpc_status} {}, REST {rest_status} {}",
                        rpc["Code"], rest["Code"]
                    ));
                }
                for answer in [&rpc, &rest].into_iter().filter(|answer| answer["Code"].is_string()) {
                    let message = answer["Message"].as_str().unwrap_or_default();
                    if message.len() > 1024 || message.contains('\0') {
                        differences.push(format!("{label}: the message repeats the value: {message:.200}"));
                    }
                    if !names_it(message, parameter, field, value.shown.as_ref().unwrap_or(&value.rpc)) {
                        differences.push(format!("{label}: the message does not name it: {message:.200}"));
                    }
                }
                let after = app.snapshot().await;
                if after != before {
                    differences.push(format!("{label}: something changed"));
                    before = after;
                }
            }
        }
    }
    assert!(differences.is_empty(), "{} of {count} cases differ:\n{}", differences.len(), differences.join("\n"));
}

/// A group created without a name is named after its id, over either API (as ESS does).
#[tokio::test]
async fn a_group_without_a_name_is_named_after_its_id_over_both_apis() {
    let app = app().await;
    let (status, rpc) = send(
        &app.router,
        rpc_request(KEY, SECRET, "2014-08-28", "CreateScalingGroup", &[("MinSize", "0"), ("MaxSize", "1")]),
    )
    .await;
    assert_eq!(status, 200, "{rpc}");
    let rest_body = json!({"min_size": 0, "max_size": 1});
    let (status, rest) =
        send(&app.router, rest_request(&app.token, "post", "/v1/scaling-groups", Some(&rest_body))).await;
    assert_eq!(status, 200, "{rest}");
    for id in [rpc["ScalingGroupId"].as_str().unwrap(), rest["id"].as_str().unwrap()] {
        assert_eq!(app.service.group(&group_id(id)).await.unwrap().name, id);
    }
}

/// Every operation of the table has a case whose RPC action and REST route are that
/// operation, or is an exception with its reason; an exception is not also walked.
#[test]
fn every_operation_of_the_table_has_a_case_or_a_reason() {
    let ids = Ids {
        group: s("asg-1"),
        configuration: s("asc-1"),
        lb: s("lb-1"),
        instance: s("i-1"),
        task: s("exec-1"),
        template: s("lt-1"),
    };
    let cases = cases(&ids);
    let mut problems = Vec::new();
    for case in &cases {
        let operation = case.operation().action;
        match case.route_action() {
            Some(route) if route == operation => {}
            other => {
                problems.push(format!("{operation}: the case's REST call {} {} is {other:?}", case.method, case.path))
            }
        }
        if case.fields.iter().any(|(_, _, values)| values.is_empty()) {
            problems.push(format!("{operation}: a field without a bad value"));
        }
    }
    for operation in OPERATIONS {
        let walked = cases.iter().any(|case| case.operation().action == operation.action);
        let excepted = EXCEPTIONS.iter().any(|(action, _)| *action == operation.action);
        match (walked, excepted) {
            (true, true) => problems.push(format!("{}: walked, and an exception too", operation.action)),
            (false, false) => problems.push(format!("{}: no parity case and no reason", operation.action)),
            _ => {}
        }
    }
    for (action, _) in EXCEPTIONS {
        if operations::by_action(action).is_none() {
            problems.push(format!("{action}: an exception that is no operation of the table"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let walked = OPERATIONS.iter().filter(|op| cases.iter().any(|case| case.operation().action == op.action));
    assert_eq!(walked.count() + EXCEPTIONS.len(), OPERATIONS.len());
}

#[tokio::test]
async fn every_operation_of_the_table_refuses_the_same_bad_values_over_both_apis() {
    let app = app().await;
    walk(&app, &cases(&app.ids())).await;
}
