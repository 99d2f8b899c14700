//! The two APIs check alike (issue 9's proof). Every operation of the REST table whose route
//! and RPC action take a name, a size or a count is given the same bad value over both: ten
//! kilobytes, 65 characters, control characters (NUL, a newline, ESC, DEL), blank, out of range,
//! the wrong type. Both must refuse it with the same code and the same HTTP status, and
//! change nothing. Names and free text (descriptions, comments) follow one rule,
//! `core::names`, with each resource's limit; other limits live in one place too (`core::group`
//! for groups and configurations, the service for the rest), so the two cannot drift apart again.
//!
//! Not given here: an empty value. The RPC API reads an empty parameter as an absent one (the
//! SDKs send `""` for a field left empty); where a field is optional its default is the
//! service's, the same for both (a group without a name is named after its id, tested below).

use rollscale_engine::service::NewGroup;
use rollscale_engine::Service;
use rollscale_test_support::engine::{self, enabled_group, group_id};
use rollscale_test_support::server::{rest_request, rpc_request, send, Api};
use serde_json::{json, Value};

const KEY: &str = "LTAIparity00000000000";
const SECRET: &str = "paritySecret";
/// The name of another group.
const TAKEN: &str = "taken";

struct App {
    router: axum::Router,
    service: Service,
    token: String,
    /// A group of one InService instance behind a load balancer, and its configuration.
    group: String,
    configuration: String,
    lb: String,
    instance: String,
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
    App {
        router,
        service,
        token,
        group: group.id.to_string(),
        configuration: configuration.id.to_string(),
        lb: lb.id.to_string(),
        instance,
        _dir: dir,
    }
}

impl App {
    /// Everything an operation below could change, as text.
    async fn snapshot(&self) -> String {
        let service = &self.service;
        let store = service.engine.store();
        let mut templates = Vec::new();
        for template in service.launch_templates().await.unwrap() {
            templates.push(format!("{template:?} {:?}", service.launch_template_versions(&template.id).await));
        }
        let instance = rollscale_core::ids::InstanceId::parse(&self.instance).unwrap();
        let backends = service.backends(&instance).await.unwrap();
        format!(
            "{:?}\n{:?}\n{:?}\n{:?}\n{backends:?}\n{:?}\n{:?}\n{templates:?}\n{:?}\n{:?}\n{:?}",
            service.groups(None, None).await.unwrap(),
            service.configurations(None, None).await.unwrap(),
            service.instances(None, None, None).await.unwrap(),
            service.load_balancers().await.unwrap(),
            service.images().await.unwrap(),
            service.packages(None).await.unwrap(),
            store.user_list(0, 10_000).await.unwrap(),
            store.policy_list().await.unwrap(),
            service.alert_rules("", 100, 0).await.unwrap(),
        )
    }
}

/// A bad value as each API spells it: a parameter's text, a JSON value.
#[derive(Clone, Debug)]
struct Bad {
    what: &'static str,
    rpc: String,
    rest: Value,
}

fn bad(what: &'static str, rpc: impl ToString, rest: Value) -> Bad {
    Bad { what, rpc: rpc.to_string(), rest }
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

/// Names of at most 128 characters (a load balancer's, an image's): too long, control
/// characters, blank.
fn bad_long_names() -> Vec<Bad> {
    let mut names: Vec<Bad> = bad_names().into_iter().filter(|bad| bad.what != "65 characters").collect();
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

/// An operation over both APIs: the RPC action with the parameters it needs besides the one
/// under test, and its REST route with the body (or, for `get`, the query) it needs.
struct Operation {
    version: &'static str,
    action: &'static str,
    rpc: Vec<(&'static str, String)>,
    method: &'static str,
    path: String,
    rest: Value,
    /// (RPC parameter, REST field, the bad values).
    fields: Vec<(&'static str, &'static str, Vec<Bad>)>,
}

impl Operation {
    async fn rpc(&self, app: &App, name: &str, value: &str) -> (u16, Value) {
        let mut params: Vec<(&str, &str)> =
            self.rpc.iter().filter(|(n, _)| *n != name).map(|(n, v)| (*n, v.as_str())).collect();
        params.push((name, value));
        send(&app.router, rpc_request(KEY, SECRET, self.version, self.action, &params)).await
    }

    async fn rest(&self, app: &App, name: &str, value: &Value) -> (u16, Value) {
        let request = match self.method {
            // The route's `{name}` path parameter.
            method if name == PATH => {
                let text: String =
                    form_urlencoded::byte_serialize(value.as_str().unwrap_or_default().as_bytes()).collect();
                rest_request(&app.token, method, &self.path.replace(PATH, &text), Some(&self.rest))
            }
            "get" => {
                let text = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
                let query: String = form_urlencoded::Serializer::new(String::new()).append_pair(name, &text).finish();
                rest_request(&app.token, "get", &format!("{}?{query}", self.path), None)
            }
            method => {
                let mut body = self.rest.clone();
                body[name] = value.clone();
                rest_request(&app.token, method, &self.path, Some(&body))
            }
        };
        send(&app.router, request).await
    }
}

/// The REST field that is the route's path parameter.
const PATH: &str = "{name}";

fn s(text: &str) -> String {
    text.to_string()
}

fn operations(app: &App) -> Vec<Operation> {
    let mut operations = Vec::new();
    for version in ["2014-08-28", "2022-02-22"] {
        operations.push(Operation {
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
            ],
        });
        operations.push(Operation {
            version,
            action: "ModifyScalingGroup",
            rpc: vec![("ScalingGroupId", app.group.clone())],
            method: "patch",
            path: format!("/v1/scaling-groups/{}", app.group),
            rest: json!({}),
            fields: vec![
                ("ScalingGroupName", "name", bad_group_names()),
                ("MinSize", "min_size", bad_counts(&[9, 10_001])),
                ("MaxSize", "max_size", bad_counts(&[10_001])),
                ("DesiredCapacity", "desired_capacity", bad_counts(&[9, 10_001])),
                ("DrainTimeout", "drain_timeout_s", bad_counts(&[3601])),
                ("HealthCheckGracePeriod", "health_check_grace_period_s", bad_counts(&[7201])),
            ],
        });
        operations.push(Operation {
            version,
            action: "CreateScalingConfiguration",
            rpc: vec![("ScalingGroupId", app.group.clone()), ("ImageId", s("img"))],
            method: "post",
            path: s("/v1/scaling-configurations"),
            rest: json!({"scaling_group_id": app.group, "image_id": "img"}),
            fields: vec![
                ("ScalingConfigurationName", "name", bad_names()),
                ("InstanceType", "instance_type", bad_names()),
            ],
        });
        operations.push(Operation {
            version,
            action: "ModifyScalingConfiguration",
            rpc: vec![("ScalingConfigurationId", app.configuration.clone())],
            method: "patch",
            path: format!("/v1/scaling-configurations/{}", app.configuration),
            rest: json!({}),
            fields: vec![("ScalingConfigurationName", "name", bad_names())],
        });
    }
    operations
}

/// Letters and digits only, in lower case: `drain_timeout_s: …` names `DrainTimeout`.
fn normal(text: &str) -> String {
    text.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// Gives each operation each bad value over both APIs: the answers' codes and statuses, and
/// what changed, are compared; every difference is listed before the test fails.
async fn walk(app: &App, operations: &[Operation]) {
    let mut before = app.snapshot().await;
    let mut differences = Vec::new();
    let mut cases = 0;
    for operation in operations {
        let (version, action) = (operation.version, operation.action);
        for (parameter, field, values) in &operation.fields {
            for value in values {
                cases += 1;
                let (rpc_status, rpc) = operation.rpc(app, parameter, &value.rpc).await;
                let (rest_status, rest) = operation.rest(app, field, &value.rest).await;
                let case = format!("{action} {version} {parameter}/{field} {}", value.what);
                if rpc_status == 200 || rest_status == 200 {
                    differences.push(format!("{case}: taken (RPC {rpc_status}, REST {rest_status})"));
                } else if (rpc_status, &rpc["Code"]) != (rest_status, &rest["Code"]) {
                    differences
                        .push(format!("{case}: RPC {rpc_status} {}, REST {rest_status} {}", rpc["Code"], rest["Code"]));
                }
                for answer in [&rpc, &rest].into_iter().filter(|answer| answer["Code"].is_string()) {
                    let message = answer["Message"].as_str().unwrap_or_default();
                    if message.len() > 1024 || message.contains('\0') {
                        differences.push(format!("{case}: the message repeats the value: {message:.200}"));
                    }
                    // Refused for this value, not for something else of the request.
                    let named = |name: &str| name != PATH && normal(message).contains(&normal(name));
                    if !(named(parameter) || named(field)) {
                        differences.push(format!("{case}: the message does not name it: {message:.200}"));
                    }
                }
                let after = app.snapshot().await;
                if after != before {
                    differences.push(format!("{case}: something changed"));
                    before = after;
                }
            }
        }
    }
    assert!(differences.is_empty(), "{} of {cases} cases differ:\n{}", differences.len(), differences.join("\n"));
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

#[tokio::test]
async fn groups_and_configurations_refuse_the_same_bad_values_over_both_apis() {
    let app = app().await;
    walk(&app, &operations(&app)).await;
}

/// The other operations of the table that take a name or a count, each with the bad values
/// its service refuses (see the comments for the ones it takes).
fn other_operations(app: &App) -> Vec<Operation> {
    let names = bad_names();
    let of = |whats: &[&str]| names.iter().filter(|bad| whats.contains(&bad.what)).cloned().collect::<Vec<_>>();
    // SLB's BackendServers with one server of the group's instance at the weight given.
    let weights = bad_counts(&[101])
        .into_iter()
        .map(|weight| Bad {
            what: weight.what,
            rpc: json!([{"ServerId": app.instance, "Weight": weight.rest}]).to_string(),
            rest: json!([{"instance_id": app.instance, "weight": weight.rest}]),
        })
        .collect();
    let policy =
        json!({"Version": "1", "Statement": [{"Effect": "Allow", "Action": ["ess:Describe*"], "Resource": "*"}]});
    // A list's page size, over the RPC API a parameter, over REST `?limit=`.
    let page = |too_big: i64| bad_counts(&[0, too_big]);
    vec![
        Operation {
            version: "2014-08-28",
            action: "CreateLoadBalancer",
            rpc: vec![("LoadBalancerName", s("fresh"))],
            method: "post",
            path: s("/v1/load-balancers"),
            rest: json!({"name": "fresh"}),
            fields: vec![
                ("LoadBalancerName", "name", bad_long_names()),
                ("DefaultWeight", "default_weight", bad_counts(&[101])),
            ],
        },
        Operation {
            version: "2014-08-28",
            action: "SetBackendServers",
            rpc: vec![("LoadBalancerId", app.lb.clone())],
            method: "put",
            path: format!("/v1/load-balancers/{}/backend-servers", app.lb),
            rest: json!({}),
            fields: vec![("BackendServers", "backend_servers", weights)],
        },
        Operation {
            version: "2014-08-28",
            action: "CreatePackage",
            rpc: vec![("PackageName", s("fresh")), ("PackageVersion", s("1")), ("InstallScript", s("true"))],
            method: "post",
            path: s("/v1/packages"),
            rest: json!({"name": "fresh", "version": "1", "install_script": "true"}),
            fields: vec![("PackageName", "name", bad_names()), ("PackageVersion", "version", bad_names())],
        },
        Operation {
            version: "2014-05-26",
            action: "CreateImage",
            rpc: vec![("ImageId", s("fresh"))],
            method: "post",
            path: s("/v1/images"),
            rest: json!({"id": "fresh"}),
            fields: vec![
                ("ImageId", "id", of(&["10 KB", "NUL", "a newline", "ESC", "DEL", "blank"])),
                ("ImageName", "name", bad_long_names()),
            ],
        },
        Operation {
            version: "2014-05-26",
            action: "CreateLaunchTemplate",
            rpc: vec![("LaunchTemplateName", s("fresh")), ("ImageId", s("img"))],
            method: "post",
            path: s("/v1/launch-templates"),
            rest: json!({"name": "fresh", "version": {"image_id": "img"}}),
            // Its name takes up to 128 characters.
            fields: vec![("LaunchTemplateName", "name", of(&["10 KB", "NUL", "a newline", "ESC", "DEL", "blank"]))],
        },
        Operation {
            version: "2015-05-01",
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
        },
        Operation {
            version: "2019-01-01",
            action: "PutEventRule",
            rpc: vec![("EventPattern.1.Product", s("ess"))],
            method: "put",
            path: format!("/v1/alert-rules/{PATH}"),
            rest: json!({"patterns": [{}]}),
            fields: vec![("RuleName", PATH, bad_names())],
        },
        Operation {
            version: "2015-05-01",
            action: "CreatePolicy",
            rpc: vec![("PolicyName", s("fresh")), ("PolicyDocument", policy.to_string())],
            method: "post",
            path: s("/v1/policies"),
            rest: json!({"name": "fresh", "document": policy}),
            fields: vec![("Description", "description", bad_texts(1024))],
        },
        Operation {
            version: "2019-01-01",
            action: "PutEventRule",
            rpc: vec![("RuleName", s("fresh")), ("EventPattern.1.Product", s("ess"))],
            method: "put",
            path: s("/v1/alert-rules/fresh"),
            rest: json!({"patterns": [{}]}),
            fields: vec![("Description", "description", bad_texts(256))],
        },
        Operation {
            version: "2014-08-28",
            action: "DescribeEvents",
            rpc: vec![],
            method: "get",
            path: s("/v1/events"),
            rest: json!({}),
            fields: vec![("PageSize", "limit", page(501))],
        },
        Operation {
            version: "2019-06-01",
            action: "ListExecutions",
            rpc: vec![],
            method: "get",
            path: s("/v1/rolling-updates"),
            rest: json!({}),
            fields: vec![("MaxResults", "limit", page(101))],
        },
    ]
}

#[tokio::test]
async fn the_other_operations_that_take_a_name_or_a_count_refuse_alike() {
    let app = app().await;
    walk(&app, &other_operations(&app)).await;
}
