//! Every operation of the two APIs, once: the action it is authorized and audited as
//! (`product:Action`, the RPC API's name), the RPC versions that serve it, the parameters it
//! takes, whether `ClientToken` makes it idempotent, and the one function that says which
//! resources a call acts on ([`resources`]).
//!
//! The RPC API looks a request's operation up here by `Version` and `Action`; each REST route
//! names the same `action` (the `ROUTES` table) and where its resource-naming parameters are
//! (`Route::names`, mapped to the RPC names used here), so a call is checked as the same
//! action on the same resources whichever API it comes through.

use std::collections::BTreeMap;

pub const OOS: &[&str] = &["2019-06-01"];
pub const ESS: &[&str] = &["2014-08-28", "2022-02-22"];
pub const ECS: &[&str] = &["2014-05-26"];
pub const RAM: &[&str] = &["2015-05-01"];
pub const CMS: &[&str] = &["2019-01-01"];
/// Images are ECS's, and are served under ESS's versions too (rollscale's catalog).
const ESS_AND_ECS: &[&str] = &["2014-08-28", "2022-02-22", "2014-05-26"];

/// One operation.
#[derive(Debug)]
pub struct Operation {
    /// `product:Action`, as policies and the audit log name it, whichever API or version the
    /// call comes through.
    pub action: &'static str,
    /// The RPC API versions that serve it (`Action` is the part of [`Operation::action`] after
    /// the `:`).
    pub versions: &'static [&'static str],
    /// The parameters it takes besides [`COMMON_PARAMS`]; `Name.N` is a flattened list
    /// (`Name.1`, `Name.2`, …, or a JSON array under the bare `Name`). Any other parameter is
    /// refused with `InvalidParameter`: a parameter a handler learns to read must be added
    /// here too.
    pub params: &'static [&'static str],
    /// A create operation: `ClientToken` (RPC) or `Idempotency-Key` (REST) makes it run once
    /// per caller and token.
    pub idempotent: bool,
}

impl Operation {
    /// The RPC `Action`.
    pub fn name(&self) -> &'static str {
        self.action.split_once(':').map_or(self.action, |(_, name)| name)
    }

    /// The product, as policies name it: `oos`, `ess`, `ecs`, `ram` or `cms`.
    pub fn product(&self) -> &'static str {
        self.action.split_once(':').map_or("", |(product, _)| product)
    }

    /// Whether the operation takes the parameter `name`. An `N` part of a parameter is any
    /// index (`EventPattern.N.LevelList.N` takes `EventPattern.2.LevelList.1`); a list that
    /// ends in `.N` is also taken whole, as a JSON array under its bare name.
    pub fn takes(&self, name: &str) -> bool {
        let index = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        let fits = |pattern: &str, name: &str| {
            let (pattern, name): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), name.split('.').collect());
            pattern.len() == name.len()
                && pattern.iter().zip(&name).all(|(want, got)| if *want == "N" { index(got) } else { want == got })
        };
        is_common(name)
            || self
                .params
                .iter()
                .any(|param| fits(param, name) || param.strip_suffix(".N").is_some_and(|list| fits(list, name)))
    }

    /// The first parameter (in name order) the operation does not take.
    pub fn unknown_param<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        names.into_iter().find(|name| !self.takes(name))
    }
}

/// What a parameter of [`COMMON_PARAMS`] is to the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Common {
    /// How the request was sent and signed, or a credential — not what it asks for: left out
    /// of the audit log and of a `ClientToken`'s fingerprint (a retry signs anew).
    Transport,
    /// Part of what the request asks for: kept in the audit log and in the fingerprint.
    Request,
}

/// The one list of the parameters any RPC request may carry, besides an operation's own: how
/// the official SDKs send and sign a request (docs/wire.md, "A request"; the ACS3 scheme sends its parts as
/// headers), and the region. `SecurityToken` is what the SDKs add when they sign with STS
/// temporary credentials: accepted and ignored (rollscale issues no STS credentials, and
/// authenticates by the AccessKey's signature alone), and never kept, being a credential.
/// [`Operation::takes`], `audit::rpc_parameters` and `rpc::idempotency::fingerprint` all read
/// it.
pub const COMMON_PARAMS: &[(&str, Common)] = &[
    ("AccessKeyId", Common::Transport),
    ("Action", Common::Transport),
    ("Format", Common::Transport),
    ("RegionId", Common::Request),
    ("SecurityToken", Common::Transport),
    ("Signature", Common::Transport),
    ("SignatureMethod", Common::Transport),
    ("SignatureNonce", Common::Transport),
    ("SignatureType", Common::Transport),
    ("SignatureVersion", Common::Transport),
    ("Timestamp", Common::Transport),
    ("Version", Common::Transport),
];

/// Whether every operation takes `name` ([`COMMON_PARAMS`]).
pub fn is_common(name: &str) -> bool {
    COMMON_PARAMS.iter().any(|(common, _)| *common == name)
}

/// Whether `name` says how a request was sent and signed, not what it asks for.
pub fn is_transport(name: &str) -> bool {
    COMMON_PARAMS.iter().any(|(common, role)| *common == name && *role == Common::Transport)
}

const fn op(action: &'static str, versions: &'static [&'static str], params: &'static [&'static str]) -> Operation {
    Operation { action, versions, params, idempotent: false }
}

/// A create operation that takes `ClientToken`.
const fn create(action: &'static str, versions: &'static [&'static str], params: &'static [&'static str]) -> Operation {
    Operation { action, versions, params, idempotent: true }
}

const PAGE: [&str; 2] = ["PageNumber", "PageSize"];
const INSTANCES: [&str; 3] = ["ScalingGroupId", "InstanceId.N", "InstanceIds.N"];

/// Every operation the RPC API serves (the REST API serves a subset, see `rest::ROUTES`).
pub static OPERATIONS: &[Operation] = &[
    // OOS 2019-06-01: rolling updates.
    create("oos:StartExecution", OOS, &["TemplateName", "Parameters", "Mode", "ClientToken"]),
    op(
        "oos:ListExecutions",
        OOS,
        &[
            "ExecutionId",
            "ParentExecutionId",
            "TemplateName",
            "Status",
            "IncludeChildExecution",
            "MaxResults",
            "NextToken",
        ],
    ),
    op("oos:ListTaskExecutions", OOS, &["ExecutionId", "TaskExecutionId", "Status", "MaxResults", "NextToken"]),
    op("oos:NotifyExecution", OOS, &["ExecutionId", "NotifyType", "TaskExecutionId", "TaskExecutionIds.N", "LoopItem"]),
    op("oos:CancelExecution", OOS, &["ExecutionId", "Restore"]),
    // ESS 2014-08-28 and 2022-02-22.
    create(
        "ess:CreateScalingGroup",
        ESS,
        &[
            "ScalingGroupName",
            "GroupType",
            "MinSize",
            "MaxSize",
            "DesiredCapacity",
            "LoadBalancerIds.N",
            "DrainTimeout",
            "LaunchTemplateId",
            "LaunchTemplateVersion",
            "HealthCheckType",
            "HealthCheckTypes.N",
            "HealthCheckGracePeriod",
            "ClientToken",
        ],
    ),
    op(
        "ess:DescribeScalingGroups",
        ESS,
        &["ScalingGroupId.N", "ScalingGroupIds.N", "ScalingGroupName", PAGE[0], PAGE[1]],
    ),
    op(
        "ess:ModifyScalingGroup",
        ESS,
        &[
            "ScalingGroupId",
            "ScalingGroupName",
            "MinSize",
            "MaxSize",
            "DesiredCapacity",
            "ActiveScalingConfigurationId",
            "DrainTimeout",
            "HealthCheckType",
            "HealthCheckTypes.N",
            "HealthCheckGracePeriod",
        ],
    ),
    op("ess:EnableScalingGroup", ESS, &["ScalingGroupId", "ActiveScalingConfigurationId"]),
    op("ess:DeleteScalingGroup", ESS, &["ScalingGroupId", "ForceDelete"]),
    create(
        "ess:CreateScalingConfiguration",
        ESS,
        &["ScalingGroupId", "ScalingConfigurationName", "ImageId", "InstanceType", "Containers", "ClientToken"],
    ),
    op(
        "ess:DescribeScalingConfigurations",
        ESS,
        &["ScalingGroupId", "ScalingConfigurationId.N", "ScalingConfigurationIds.N", PAGE[0], PAGE[1]],
    ),
    op("ess:ModifyScalingConfiguration", ESS, &["ScalingConfigurationId", "ScalingConfigurationName", "ImageId"]),
    op(
        "ess:DescribeScalingInstances",
        ESS,
        &[INSTANCES[0], INSTANCES[1], INSTANCES[2], "LifecycleState", PAGE[0], PAGE[1]],
    ),
    op("ess:EnterStandby", ESS, &INSTANCES),
    op("ess:ExitStandby", ESS, &INSTANCES),
    op("ess:RemoveInstances", ESS, &[INSTANCES[0], INSTANCES[1], INSTANCES[2], "DecreaseDesiredCapacity"]),
    op("ess:SetInstancesProtection", ESS, &[INSTANCES[0], INSTANCES[1], INSTANCES[2], "ProtectedFromScaleIn"]),
    op("ess:SuspendProcesses", ESS, &["ScalingGroupId", "Process.N", "Processes.N"]),
    op("ess:ResumeProcesses", ESS, &["ScalingGroupId", "Process.N", "Processes.N"]),
    op("ess:DescribeScalingActivities", ESS, &["ScalingGroupId", PAGE[0], PAGE[1]]),
    // rollscale's catalogs, under ESS's versions.
    create(
        "ess:CreatePackage",
        ESS,
        &["PackageName", "PackageVersion", "InstallScript", "UninstallScript", "ClientToken"],
    ),
    op("ess:ListPackages", ESS, &["PackageName"]),
    op("ess:DeletePackage", ESS, &["PackageName", "PackageVersion"]),
    create("ess:CreateLoadBalancer", ESS, &["LoadBalancerName", "DefaultWeight", "ClientToken"]),
    op("ess:DescribeLoadBalancers", ESS, &[]),
    op("ess:SetBackendServers", ESS, &["LoadBalancerId", "BackendServers"]),
    op("ess:DescribeEvents", ESS, &["ScalingGroupId", "ExecutionId", "Keywords", "PageSize"]),
    op("ess:InjectFault", ESS, &["InstanceId", "Kind", "Times"]),
    // ECS 2014-05-26: images (also under ESS's versions), launch templates, regions.
    create("ecs:CreateImage", ESS_AND_ECS, &["ImageId", "ImageName", "OSType", "InstanceId", "ClientToken"]),
    op("ecs:DescribeImages", ESS_AND_ECS, &[]),
    op("ecs:DeleteImage", ESS_AND_ECS, &["ImageId"]),
    create(
        "ecs:CreateLaunchTemplate",
        ECS,
        &["LaunchTemplateName", "ImageId", "InstanceType", "VersionDescription", "ClientToken"],
    ),
    create(
        "ecs:CreateLaunchTemplateVersion",
        ECS,
        &[
            "LaunchTemplateId",
            "LaunchTemplateName",
            "ImageId",
            "InstanceType",
            "VersionDescription",
            "SetAsDefault",
            "ClientToken",
        ],
    ),
    op(
        "ecs:ModifyLaunchTemplateDefaultVersion",
        ECS,
        &["LaunchTemplateId", "LaunchTemplateName", "DefaultVersionNumber"],
    ),
    op("ecs:DescribeLaunchTemplates", ECS, &["LaunchTemplateId.N", "LaunchTemplateName.N"]),
    op(
        "ecs:DescribeLaunchTemplateVersions",
        ECS,
        &["LaunchTemplateId", "LaunchTemplateName", "LaunchTemplateVersion.N"],
    ),
    op("ecs:DescribeRegions", ECS, &["AcceptLanguage"]),
    // RAM 2015-05-01, and rollscale's audit log.
    op("ram:CreateUser", RAM, &["UserName", "DisplayName", "Comments"]),
    op("ram:GetUser", RAM, &["UserName"]),
    op("ram:ListUsers", RAM, &["Marker", "MaxItems"]),
    op("ram:DeleteUser", RAM, &["UserName"]),
    op("ram:CreateAccessKey", RAM, &["UserName"]),
    op("ram:ListAccessKeys", RAM, &["UserName"]),
    op("ram:UpdateAccessKey", RAM, &["UserName", "UserAccessKeyId", "Status"]),
    op("ram:DeleteAccessKey", RAM, &["UserName", "UserAccessKeyId"]),
    op("ram:CreatePolicy", RAM, &["PolicyName", "PolicyDocument", "Description"]),
    op("ram:GetPolicy", RAM, &["PolicyType", "PolicyName"]),
    op("ram:ListPolicies", RAM, &["PolicyType", "Marker", "MaxItems"]),
    op("ram:DeletePolicy", RAM, &["PolicyName"]),
    op("ram:AttachPolicyToUser", RAM, &["PolicyType", "PolicyName", "UserName"]),
    op("ram:DetachPolicyFromUser", RAM, &["PolicyType", "PolicyName", "UserName"]),
    op("ram:ListPoliciesForUser", RAM, &["UserName"]),
    // CMS 2019-01-01: alert rules over rollscale's events (R15), their webhooks, and
    // rollscale's record of the deliveries.
    op(
        "cms:PutEventRule",
        CMS,
        &[
            "RuleName",
            "Description",
            "State",
            "EventType",
            "EventPattern.N.Product",
            "EventPattern.N.NameList.N",
            "EventPattern.N.EventTypeList.N",
            "EventPattern.N.LevelList.N",
            "EventPattern.N.KeywordFilterObj.Relation",
            "EventPattern.N.KeywordFilterObj.Keywords.N",
            // The same, as aliyun-python-sdk-cms names it.
            "EventPattern.N.KeywordFilter.Relation",
            "EventPattern.N.KeywordFilter.Keywords.N",
        ],
    ),
    op("cms:DescribeEventRuleList", CMS, &["NamePrefix", PAGE[0], PAGE[1]]),
    op("cms:DescribeEventRuleAttribute", CMS, &["RuleName"]),
    op("cms:EnableEventRules", CMS, &["RuleNames.N"]),
    op("cms:DisableEventRules", CMS, &["RuleNames.N"]),
    op("cms:DeleteEventRules", CMS, &["RuleNames.N"]),
    op(
        "cms:PutEventRuleTargets",
        CMS,
        &[
            "RuleName",
            "WebhookParameters.N.Id",
            "WebhookParameters.N.Protocol",
            "WebhookParameters.N.Method",
            "WebhookParameters.N.Url",
        ],
    ),
    op("cms:DescribeEventRuleTargetList", CMS, &["RuleName"]),
    op("cms:DeleteEventRuleTargets", CMS, &["RuleName", "Ids.N"]),
    op("cms:DescribeEventRuleDeliveries", CMS, &["RuleName", "Status", "PageSize"]),
    op(
        "ram:ListAuditEvents",
        RAM,
        &[
            "UserName",
            "UserAccessKeyId",
            "EventAction",
            "ResultCode",
            "StartTime",
            "EndTime",
            "NextToken",
            "MaxResults",
        ],
    ),
];

/// The operation an RPC request asks for.
pub fn find(version: &str, action: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|op| op.name() == action && op.versions.contains(&version))
}

/// The operation named `product:Action`.
pub fn by_action(action: &str) -> Option<&'static Operation> {
    OPERATIONS.iter().find(|op| op.action == action)
}

/// The product an RPC version belongs to, for naming a call whose action it does not serve.
pub fn product_of(version: &str) -> Option<&'static str> {
    [(OOS, "oos"), (ESS, "ess"), (ECS, "ecs"), (RAM, "ram"), (CMS, "cms")]
        .into_iter()
        .find(|(versions, _)| versions.contains(&version))
        .map(|(_, product)| product)
}

/// The RPC parameters that name what a call acts on. A REST route maps its own names to these
/// (`Route::names`).
pub const RESOURCE_PARAMS: &[&str] = &["ScalingGroupId", "ExecutionId", "UserName", "PolicyName", "RuleName"];

/// The values of the resource-naming parameters of a call, by their RPC names.
pub type Named = BTreeMap<&'static str, Vec<String>>;

/// The resource-naming parameters of RPC parameters: `ScalingGroupId`, and the scaling groups
/// a list names (`ScalingGroupId.N` in 2014-08-28, `ScalingGroupIds.N` in 2022-02-22); the
/// `ExecutionId` (and `ParentExecutionId`, whose children a call lists); the `UserName` and
/// `PolicyName`.
pub fn named_in_params(params: &crate::rpc::request::Params) -> Named {
    let mut named = Named::new();
    for name in RESOURCE_PARAMS {
        let mut values: Vec<String> = params.get_nonempty(name).map(str::to_string).into_iter().collect();
        if *name == "ExecutionId" {
            // Listing an execution's children acts on it too.
            values.extend(params.get_nonempty("ParentExecutionId").map(str::to_string));
        }
        if *name == "ScalingGroupId" {
            // Lists, flattened or as a JSON array; a list that does not parse names nothing
            // (the operation refuses it).
            for list in ["ScalingGroupId", "ScalingGroupIds"] {
                values.extend(params.list(list).unwrap_or_default().into_iter().filter(|v| !v.is_empty()));
            }
        }
        if *name == "RuleName" {
            // `EnableEventRules` and the like name several.
            values.extend(params.list("RuleNames").unwrap_or_default().into_iter().filter(|v| !v.is_empty()));
        }
        if !values.is_empty() {
            named.insert(name, values);
        }
    }
    named
}

/// The resources a call of `action` acts on, as policies name them: each scaling group it
/// names (`acs:ess:*:*:scalinggroup/<id>`), its execution (`acs:oos:*:*:execution/<id>`), its
/// user (`acs:ram:*:*:user/<name>`) or else its policy (`acs:ram:*:*:policy/<name>`), its alert
/// rules (`acs:cms:*:*:rule/<name>`); when it
/// names none, every resource of its product (`acs:<product>:*:*:*`). A call is allowed only
/// when it is allowed on every one.
pub fn resources(action: &str, named: &Named) -> Vec<String> {
    let product = action.split_once(':').map_or("*", |(product, _)| product);
    let values = |name: &str| named.get(name).filter(|values| !values.is_empty());
    let (kind, names) = match product {
        "ess" => ("scalinggroup", values("ScalingGroupId")),
        "oos" => ("execution", values("ExecutionId")),
        "cms" => ("rule", values("RuleName")),
        "ram" => match values("UserName") {
            Some(users) => ("user", Some(users)),
            None => ("policy", values("PolicyName")),
        },
        _ => ("", None),
    };
    match names {
        Some(names) => {
            let mut resources: Vec<String> = Vec::new();
            for name in names {
                let resource = format!("acs:{product}:*:*:{kind}/{name}");
                if !resources.contains(&resource) {
                    resources.push(resource);
                }
            }
            resources
        }
        None => vec![format!("acs:{product}:*:*:*")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_is_named_once_and_served_by_its_products_versions() {
        for (i, op) in OPERATIONS.iter().enumerate() {
            assert!(OPERATIONS[..i].iter().all(|other| other.action != op.action), "{} twice", op.action);
            assert!(!op.versions.is_empty() && !op.name().is_empty(), "{}", op.action);
            assert_eq!(op.idempotent, op.params.contains(&"ClientToken"), "{}", op.action);
            for version in op.versions {
                assert_eq!(find(version, op.name()).map(|found| found.action), Some(op.action));
            }
        }
        // An image action is ECS's whichever version serves it.
        assert_eq!(find("2014-08-28", "DescribeImages").map(|op| op.action), Some("ecs:DescribeImages"));
        assert_eq!(find("2014-05-26", "DescribeImages").map(|op| op.action), Some("ecs:DescribeImages"));
        assert!(find("2019-06-01", "DescribeImages").is_none());
        assert_eq!(product_of("2022-02-22"), Some("ess"));
    }

    #[test]
    fn parameters_are_known_by_name_and_lists_by_index() {
        let op = find("2014-08-28", "EnterStandby").unwrap();
        for name in ["ScalingGroupId", "InstanceId.1", "InstanceIds.12", "InstanceIds", "Signature", "RegionId"] {
            assert!(op.takes(name), "{name}");
        }
        for name in ["InstanceId.x", "InstanceId.", "InstanceIdX", "MaxSzie", "ClientToken", "instanceid.1"] {
            assert!(!op.takes(name), "{name}");
        }
        assert_eq!(op.unknown_param(["ScalingGroupId", "Bogus", "Other"]), Some("Bogus"));
    }

    /// The one list decides all three: what every operation takes, what the audit log keeps
    /// and what a ClientToken's fingerprint covers.
    #[test]
    fn the_common_parameters_are_taken_by_all_and_only_the_requests_own_are_kept() {
        use crate::rpc::request::Params;
        let own: Params = [("ScalingGroupId", "asg-1"), ("ClientToken", "t")]
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        let kept_of_own = crate::audit::rpc_parameters(&own);
        let fingerprint_of_own = crate::rpc::idempotency::fingerprint(&own);
        for (name, role) in COMMON_PARAMS {
            for op in OPERATIONS {
                assert!(op.takes(name), "{} refuses {name}", op.action);
            }
            let mut with = own.as_map().clone();
            with.insert(name.to_string(), "sent".to_string());
            let with: Params = with.into_iter().collect();
            let kept = crate::audit::rpc_parameters(&with);
            let fingerprint = crate::rpc::idempotency::fingerprint(&with);
            match role {
                Common::Transport => {
                    assert_eq!(kept, kept_of_own, "the audit log keeps {name}");
                    assert_eq!(fingerprint, fingerprint_of_own, "the fingerprint covers {name}");
                }
                Common::Request => {
                    assert_eq!(kept[*name], "sent", "the audit log leaves out {name}");
                    assert_ne!(fingerprint, fingerprint_of_own, "the fingerprint ignores {name}");
                }
            }
        }
        // The SDKs' STS token is taken, and, a credential, never kept.
        assert!(is_transport("SecurityToken"));
        assert!(is_common("RegionId") && !is_transport("RegionId"));
        assert!(!is_common("ClientToken") && !is_common("Bogus"));
        // The token itself is in the audit log, not in its own fingerprint.
        assert_eq!(kept_of_own["ClientToken"], "t");
        let other_token: Params = [("ScalingGroupId", "asg-1"), ("ClientToken", "u")]
            .into_iter()
            .map(|(n, v)| (n.into(), v.into()))
            .collect();
        assert_eq!(crate::rpc::idempotency::fingerprint(&other_token), fingerprint_of_own);
    }

    #[test]
    fn resources_are_what_the_named_parameters_name() {
        let named = |pairs: &[(&'static str, &[&str])]| -> Named {
            pairs.iter().map(|(k, v)| (*k, v.iter().map(|s| s.to_string()).collect())).collect()
        };
        assert_eq!(resources("ess:DescribeScalingGroups", &named(&[])), ["acs:ess:*:*:*"]);
        assert_eq!(
            resources("ess:DescribeScalingGroups", &named(&[("ScalingGroupId", &["asg-a", "asg-b"])])),
            ["acs:ess:*:*:scalinggroup/asg-a", "acs:ess:*:*:scalinggroup/asg-b"]
        );
        assert_eq!(
            resources("oos:ListExecutions", &named(&[("ExecutionId", &["exec-1"])])),
            ["acs:oos:*:*:execution/exec-1"]
        );
        assert_eq!(
            resources("ram:AttachPolicyToUser", &named(&[("UserName", &["bob"]), ("PolicyName", &["P"])])),
            ["acs:ram:*:*:user/bob"]
        );
        assert_eq!(resources("ram:DeletePolicy", &named(&[("PolicyName", &["P"])])), ["acs:ram:*:*:policy/P"]);
        assert_eq!(resources("ecs:DescribeImages", &named(&[("ScalingGroupId", &["asg-a"])])), ["acs:ecs:*:*:*"]);
    }
}
