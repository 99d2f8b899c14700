//! The one reader of each value that both APIs take, so RPC and REST refuse a bad one with the
//! same code. Each takes the text and the parameter's name as its API spells it
//! (`LaunchTemplateVersion` over RPC, `launch_template_version` over REST), which the message
//! repeats.

use crate::error::ApiError;
use rollscale_core::domain::{GroupType, HealthCheckType, TemplateVersion};
use rollscale_core::ids::{LaunchTemplateId, LoadBalancerId, ScalingConfigurationId};
use rollscale_core::Code;

/// A load balancer's id; one that cannot be an id names no load balancer.
pub fn load_balancer_id(text: &str) -> Result<LoadBalancerId, ApiError> {
    LoadBalancerId::parse(text).ok_or_else(|| {
        ApiError::new(Code::InvalidLoadBalancerIdNotFound, format!("the load balancer {text} does not exist"))
    })
}

/// A scaling configuration's id; one that cannot be an id names no configuration.
pub fn configuration_id(text: &str) -> Result<ScalingConfigurationId, ApiError> {
    ScalingConfigurationId::parse(text).ok_or_else(|| {
        ApiError::new(
            Code::InvalidScalingConfigurationIdNotFound,
            format!("the scaling configuration {text} does not exist"),
        )
    })
}

/// A launch template and the version of it to use (`Default` when none is given: `Latest`,
/// `Default` or a number). `None` without a template.
pub fn launch_template(
    id: Option<&str>,
    version: Option<&str>,
    version_name: &str,
) -> Result<Option<(LaunchTemplateId, TemplateVersion)>, ApiError> {
    let Some(text) = id else { return Ok(None) };
    let id = LaunchTemplateId::parse(text).ok_or_else(|| {
        ApiError::new(Code::InvalidLaunchTemplateNotFound, format!("the launch template {text} does not exist"))
    })?;
    let version = match version {
        None => TemplateVersion::Default,
        Some(text) => TemplateVersion::parse(text).ok_or_else(|| {
            ApiError::new(
                Code::InvalidParameter,
                format!("{version_name} \"{text}\" is not Default, Latest or a version number"),
            )
        })?,
    };
    Ok(Some((id, version)))
}

/// A group's type: ECS or ECI.
pub fn group_type(text: &str, name: &str) -> Result<GroupType, ApiError> {
    text.parse::<GroupType>()
        .map_err(|_| ApiError::new(Code::InvalidParameter, format!("{name} \"{text}\" is not one of ECS, ECI")))
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
                    format!("{name} \"{value}\" is not one of ECS, LOAD_BALANCER (or LOADBALANCER), NONE"),
                )
            })
        })
        .collect()
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
    }
}
