//! The one reader of each value that both APIs take, so RPC and REST refuse a bad one with the
//! same code, and the service gets typed values only. Each takes the text (and, where its
//! message names it, the parameter's name as its API spells it: `LaunchTemplateVersion` over
//! RPC, `launch_template_version` over REST).
//!
//! Ids: an id that cannot be one of its kind (another kind's prefix, a character ids never
//! have, too long) names nothing, so it is refused as the thing it names not existing, with
//! that thing's code — what the service answered before it took typed ids, so the SDKs see the
//! same codes. A filter of a query is not refused: one that names nothing finds nothing
//! ([`IdFilter::Nothing`], or an id left out of a list). A message shows a client's text
//! escaped and cut ([`shown`]).

use crate::error::ApiError;
use rollscale_core::alert::{DeliveryStatus, WebhookMethod};
use rollscale_core::domain::{
    AccessKeyStatus, GroupType, HealthCheckType, LifecycleState, OsType, Process, TemplateVersion,
};
use rollscale_core::ids::{
    ExecutionId, IdFilter, InstanceId, LaunchTemplateId, LoadBalancerId, ScalingConfigurationId, ScalingGroupId,
};
use rollscale_core::policy::PolicyType;
use rollscale_core::search::KeywordQuery;
use rollscale_core::Code;
use rollscale_engine::service::TaskInstance;
use rollscale_engine::ServiceError;

/// A client's text as a message shows it: control characters escaped, at most 64 characters.
pub fn shown(text: &str) -> String {
    let mut shown: String = text.chars().take(64).flat_map(char::escape_debug).collect();
    if text.chars().nth(64).is_some() {
        shown.push('…');
    }
    shown
}

/// An id read by `parse`, or refused with `code` as the `what` (`scaling group`) that does not
/// exist.
fn id<T>(text: &str, parse: fn(&str) -> Option<T>, code: Code, what: &str) -> Result<T, ApiError> {
    parse(text).ok_or_else(|| ApiError::new(code, format!("the {what} {} does not exist", shown(text))))
}

/// A scaling group's id (`InvalidScalingGroupId.NotFound`).
pub fn group_id(text: &str) -> Result<ScalingGroupId, ApiError> {
    id(text, ScalingGroupId::parse, Code::InvalidScalingGroupIdNotFound, "scaling group")
}

/// A scaling configuration's id (`InvalidScalingConfigurationId.NotFound`).
pub fn configuration_id(text: &str) -> Result<ScalingConfigurationId, ApiError> {
    id(text, ScalingConfigurationId::parse, Code::InvalidScalingConfigurationIdNotFound, "scaling configuration")
}

/// An instance's id (`InvalidInstanceId.NotFound`).
pub fn instance_id(text: &str) -> Result<InstanceId, ApiError> {
    id(text, InstanceId::parse, Code::InvalidInstanceIdNotFound, "instance")
}

/// Instances' ids, each read by [`instance_id`].
pub fn instance_ids(texts: &[String]) -> Result<Vec<InstanceId>, ApiError> {
    texts.iter().map(|text| instance_id(text)).collect()
}

/// A load balancer's id (`InvalidLoadBalancerId.NotFound`).
pub fn load_balancer_id(text: &str) -> Result<LoadBalancerId, ApiError> {
    id(text, LoadBalancerId::parse, Code::InvalidLoadBalancerIdNotFound, "load balancer")
}

/// A launch template's id (`InvalidLaunchTemplate.NotFound`).
pub fn launch_template_id(text: &str) -> Result<LaunchTemplateId, ApiError> {
    id(text, LaunchTemplateId::parse, Code::InvalidLaunchTemplateNotFound, "launch template")
}

/// An OOS execution's id: a rolling update, one of its instances' child executions, an image
/// update task or one of its firings (`EntityNotExists.Execution`).
pub fn execution_id(text: &str) -> Result<ExecutionId, ApiError> {
    id(text, ExecutionId::parse, Code::EntityNotExistsExecution, "execution")
}

/// An instance of the task `task`, by its id (`i-…`) or its child execution's (`exec-…`);
/// anything else is no instance of it (`EntityNotExists.TaskExecution`).
pub fn task_instance(text: &str, task: &ExecutionId) -> Result<TaskInstance, ApiError> {
    if let Some(id) = InstanceId::parse(text) {
        return Ok(TaskInstance::Instance(id));
    }
    ExecutionId::parse(text).map(TaskInstance::Child).ok_or_else(|| {
        ApiError::new(
            Code::EntityNotExistsTaskExecution,
            format!("the execution {task} has no instance or child execution {}", shown(text)),
        )
    })
}

/// A query's filter by one id: none when not given (or empty), [`IdFilter::Nothing`] for a
/// text that is no id of the kind.
fn filter<T>(text: Option<&str>, parse: fn(&str) -> Option<T>) -> IdFilter<T> {
    match text.filter(|text| !text.is_empty()) {
        None => IdFilter::Any,
        Some(text) => parse(text).map_or(IdFilter::Nothing, IdFilter::Only),
    }
}

/// A filter by a scaling group.
pub fn group_filter(text: Option<&str>) -> IdFilter<ScalingGroupId> {
    filter(text, ScalingGroupId::parse)
}

/// A filter by an execution.
pub fn execution_filter(text: Option<&str>) -> IdFilter<ExecutionId> {
    filter(text, ExecutionId::parse)
}

/// A query's filter by a list of ids: `None` (all) when none is given; otherwise the ones that
/// are ids of the kind (another names nothing, so none of them may be left).
fn filter_list<T>(texts: &[String], parse: fn(&str) -> Option<T>) -> Option<Vec<T>> {
    let given: Vec<&String> = texts.iter().filter(|text| !text.is_empty()).collect();
    (!given.is_empty()).then(|| given.into_iter().filter_map(|text| parse(text)).collect())
}

/// A filter by scaling groups.
pub fn group_ids_filter(texts: &[String]) -> Option<Vec<ScalingGroupId>> {
    filter_list(texts, ScalingGroupId::parse)
}

/// A filter by scaling configurations.
pub fn configuration_ids_filter(texts: &[String]) -> Option<Vec<ScalingConfigurationId>> {
    filter_list(texts, ScalingConfigurationId::parse)
}

/// A filter by instances.
pub fn instance_ids_filter(texts: &[String]) -> Option<Vec<InstanceId>> {
    filter_list(texts, InstanceId::parse)
}

/// A launch template and the version of it to use (`Default` when none is given: `Latest`,
/// `Default` or a number). `None` without a template.
pub fn launch_template(
    id: Option<&str>,
    version: Option<&str>,
    version_name: &str,
) -> Result<Option<(LaunchTemplateId, TemplateVersion)>, ApiError> {
    let Some(text) = id else { return Ok(None) };
    let id = launch_template_id(text)?;
    let version = match version {
        None => TemplateVersion::Default,
        Some(text) => TemplateVersion::parse(text).ok_or_else(|| {
            ApiError::new(
                Code::InvalidParameter,
                format!("{version_name} \"{}\" is not Default, Latest or a version number", shown(text)),
            )
        })?,
    };
    Ok(Some((id, version)))
}

/// A group's type: ECS or ECI.
pub fn group_type(text: &str, name: &str) -> Result<GroupType, ApiError> {
    text.parse::<GroupType>().map_err(|_| {
        ApiError::new(Code::InvalidParameter, format!("{name} \"{}\" is not one of ECS, ECI", shown(text)))
    })
}

/// Health check types (`ECS`, `LOAD_BALANCER` or `LOADBALANCER`, `NONE`); whether they may be
/// combined is core's rule (`health::check_types`), checked by the engine for every caller.
pub fn health_check_types(values: &[String], name: &str) -> Result<Vec<HealthCheckType>, ApiError> {
    values
        .iter()
        .map(|value| {
            HealthCheckType::parse(value).ok_or_else(|| {
                ApiError::new(
                    Code::InvalidParameterHealthCheckType,
                    format!("{name} \"{}\" is not one of ECS, LOAD_BALANCER (or LOADBALANCER), NONE", shown(value)),
                )
            })
        })
        .collect()
}

/// An instance's lifecycle state, as a filter.
pub fn lifecycle_state(text: &str, name: &str) -> Result<LifecycleState, ApiError> {
    text.parse::<LifecycleState>().map_err(|()| {
        ApiError::new(
            Code::InvalidParameter,
            format!("{name} \"{}\" is not one of Pending, InService, Standby, Protected, Removing", shown(text)),
        )
    })
}

/// Scaling processes (none: all five, the service's default).
pub fn processes(names: &[String], name: &str) -> Result<Vec<Process>, ApiError> {
    names
        .iter()
        .map(|text| {
            text.parse::<Process>().map_err(|_| {
                ApiError::new(
                    Code::InvalidParameter,
                    format!(
                        "{name} \"{}\" is no scaling process; valid: ScaleIn, ScaleOut, HealthCheck, \
                         AlarmNotification, ScheduledAction",
                        shown(text)
                    ),
                )
            })
        })
        .collect()
}

/// An image's operating system: `linux` or `windows`.
pub fn os_type(text: &str, name: &str) -> Result<OsType, ApiError> {
    text.parse::<OsType>().map_err(|_| {
        ApiError::new(Code::InvalidParameter, format!("{name} \"{}\" is not one of linux, windows", shown(text)))
    })
}

/// How a webhook is called: `POST` or `GET`.
pub fn webhook_method(text: &str, name: &str) -> Result<WebhookMethod, ApiError> {
    WebhookMethod::parse(text)
        .ok_or_else(|| ApiError::new(Code::InvalidParameter, format!("{name} \"{}\" is not POST or GET", shown(text))))
}

/// An alert delivery's status, as a filter: `Pending`, `Delivered` or `Failed`.
pub fn delivery_status(text: &str, name: &str) -> Result<DeliveryStatus, ApiError> {
    DeliveryStatus::parse(text).ok_or_else(|| {
        ApiError::new(Code::InvalidParameter, format!("{name} \"{}\" is not Pending, Delivered or Failed", shown(text)))
    })
}

/// An events query's keywords (R15: words with `and`/`or`), refused as core refuses them.
pub fn keywords(text: &str) -> Result<KeywordQuery, ApiError> {
    KeywordQuery::parse(text).map_err(|error| ApiError::from(ServiceError::from(error)))
}

/// A policy's type: `System` or `Custom` (`InvalidParameter.PolicyType`, as RAM refuses one).
pub fn policy_type(text: &str, name: &str) -> Result<PolicyType, ApiError> {
    text.parse::<PolicyType>().map_err(|()| {
        ApiError::new(
            Code::InvalidParameterPolicyType,
            format!("{name} \"{}\" is neither System nor Custom", shown(text)),
        )
    })
}

/// An AccessKey's status: `Active` or `Inactive` (`InvalidParameter.Status`, as RAM refuses
/// one).
pub fn key_status(text: &str, name: &str) -> Result<AccessKeyStatus, ApiError> {
    text.parse::<AccessKeyStatus>().map_err(|()| {
        ApiError::new(
            Code::InvalidParameterStatus,
            format!("{name} \"{}\" is neither Active nor Inactive", shown(text)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_is_read_or_refused_with_its_code() {
        assert_eq!(load_balancer_id("lb-").unwrap_err().code, Code::InvalidLoadBalancerIdNotFound);
        assert_eq!(configuration_id("asg-1").unwrap_err().code, Code::InvalidScalingConfigurationIdNotFound);
        assert_eq!(launch_template(None, Some("7"), "v").unwrap(), None);
        assert_eq!(launch_template(Some("x"), None, "v").unwrap_err().code, Code::InvalidLaunchTemplateNotFound);
        let bad_version = launch_template(Some("lt-0123456789abcdef0123"), Some("newest"), "LaunchTemplateVersion");
        let bad_version = bad_version.unwrap_err();
        assert_eq!(bad_version.code, Code::InvalidParameter);
        assert!(bad_version.message.starts_with("LaunchTemplateVersion \"newest\""), "{}", bad_version.message);
        assert_eq!(group_type("ECI", "GroupType").unwrap(), GroupType::ECI);
        assert_eq!(group_type("VM", "group_type").unwrap_err().code, Code::InvalidParameter);
        let types = health_check_types(&["ECS".into(), "LOADBALANCER".into()], "HealthCheckTypes").unwrap();
        assert_eq!(types, [HealthCheckType::ECS, HealthCheckType::LoadBalancer]);
        assert_eq!(health_check_types(&["PING".into()], "x").unwrap_err().code, Code::InvalidParameterHealthCheckType);
        assert_eq!(lifecycle_state("Standby", "LifecycleState").unwrap(), LifecycleState::Standby);
        assert_eq!(lifecycle_state("Asleep", "lifecycle_state").unwrap_err().code, Code::InvalidParameter);
        assert_eq!(processes(&["ScaleIn".into()], "Processes").unwrap(), [Process::ScaleIn]);
        assert_eq!(processes(&["Nap".into()], "processes").unwrap_err().code, Code::InvalidParameter);
        assert_eq!(keywords("and").unwrap_err().code, Code::InvalidParameter);
        assert_eq!(policy_type("Custom", "PolicyType").unwrap(), PolicyType::Custom);
        assert_eq!(policy_type("Mine", "policy_type").unwrap_err().code, Code::InvalidParameterPolicyType);
        assert_eq!(key_status("Inactive", "Status").unwrap(), AccessKeyStatus::Inactive);
        assert_eq!(key_status("Off", "status").unwrap_err().code, Code::InvalidParameterStatus);
        assert_eq!(os_type("windows", "OSType").unwrap(), OsType::Windows);
        assert_eq!(os_type("beos", "os").unwrap_err().code, Code::InvalidParameter);
        assert_eq!(webhook_method("GET", "method").unwrap(), WebhookMethod::Get);
        assert_eq!(webhook_method("PUT", "method").unwrap_err().code, Code::InvalidParameter);
        assert_eq!(delivery_status("Failed", "Status").unwrap(), DeliveryStatus::Failed);
        assert_eq!(delivery_status("Lost", "status").unwrap_err().code, Code::InvalidParameter);
    }

    /// Each kind of id answers its code for a text that is no id of it, and a message that
    /// shows the text escaped and cut.
    #[test]
    fn an_id_that_cannot_be_one_is_the_thing_not_found() {
        let long = format!("asg-{}", "a".repeat(10 * 1024));
        for text in ["asc-0123456789", "asg-", "asg-a b", "asg-\0", long.as_str()] {
            let refused = group_id(text).unwrap_err();
            assert_eq!(refused.code, Code::InvalidScalingGroupIdNotFound, "{text:.20}");
            assert!(refused.message.len() < 120 && !refused.message.contains('\0'), "{}", refused.message);
        }
        assert_eq!(group_id("asg-1").unwrap().as_str(), "asg-1");
        assert_eq!(instance_id("asg-1").unwrap_err().code, Code::InvalidInstanceIdNotFound);
        assert_eq!(instance_ids(&["i-1".into(), "i-\n".into()]).unwrap_err().code, Code::InvalidInstanceIdNotFound);
        assert_eq!(launch_template_id("lt-").unwrap_err().code, Code::InvalidLaunchTemplateNotFound);
        assert_eq!(execution_id("i-1").unwrap_err().code, Code::EntityNotExistsExecution);
        assert_eq!(group_id("asg-\u{1b}").unwrap_err().message, "the scaling group asg-\\u{1b} does not exist");
        let task = ExecutionId::parse("exec-1").unwrap();
        assert_eq!(task_instance("i-1", &task).unwrap(), TaskInstance::Instance(InstanceId::parse("i-1").unwrap()));
        assert_eq!(task_instance("exec-2", &task).unwrap(), TaskInstance::Child(ExecutionId::parse("exec-2").unwrap()));
        assert_eq!(task_instance("asg-1", &task).unwrap_err().code, Code::EntityNotExistsTaskExecution);
    }

    #[test]
    fn a_filter_that_names_nothing_finds_nothing() {
        assert_eq!(group_filter(None), IdFilter::Any);
        assert_eq!(group_filter(Some("")), IdFilter::Any);
        assert_eq!(group_filter(Some("asg-1")), IdFilter::Only(ScalingGroupId::parse("asg-1").unwrap()));
        assert_eq!(execution_filter(Some("asg-1")), IdFilter::Nothing);
        assert_eq!(group_ids_filter(&[]), None);
        assert_eq!(instance_ids_filter(&["i-\0".into()]), Some(vec![]));
        let both = configuration_ids_filter(&["asc-1".into(), "asc-\0".into()]).unwrap();
        assert_eq!(both, [ScalingConfigurationId::parse("asc-1").unwrap()]);
    }

    #[test]
    fn a_value_is_shown_escaped_and_cut() {
        assert_eq!(shown("asg-1"), "asg-1");
        assert_eq!(shown("a\0b\nc"), "a\\0b\\nc");
        assert_eq!(shown(&"x".repeat(100)), format!("{}…", "x".repeat(64)));
    }
}
