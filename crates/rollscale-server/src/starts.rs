//! The one reader of a start for both APIs: RPC `StartExecution` (`TemplateName` and
//! `Parameters` as JSON text), REST `POST /v1/rolling-updates` and `POST
//! /v1/image-update-tasks` (the parameters as a JSON object), and REST's rollback of a task.
//! Each gives the engine a typed value: a rolling update's `StartRequest` (core's
//! `params::parse_start`) or an image update task's `ImageUpdateSpec` (core's
//! `image_task::parse_start`).

use crate::error::ApiError;
use rollscale_core::image_task::{self, ImageUpdateSpec};
use rollscale_core::params::{self, Kind, StartRequest};
use rollscale_core::Code;
use rollscale_engine::ServiceError;
use serde_json::Value;

/// The start of `template` with `parameters` (a JSON object), checked.
pub fn rolling_update(template: &str, parameters: &Value) -> Result<StartRequest, ApiError> {
    known_template(template)?;
    if !parameters.is_object() {
        return Err(ApiError::new(Code::InvalidParameter, "the parameters must be a JSON object"));
    }
    params::parse_start(template, parameters).map_err(|error| ApiError::from(ServiceError::from(error)))
}

/// The same with `Parameters` as RPC sends them: JSON text, an empty one meaning none. The
/// template is checked first, as before the parameters are read.
pub fn rolling_update_text(template: &str, parameters: &str) -> Result<StartRequest, ApiError> {
    known_template(template)?;
    rolling_update(template, &parameters_text(parameters)?)
}

/// An image update task's start (`ACS-ESS-CreateImageAndUpdateScalingConfiguration`) with its
/// parameters as a JSON object.
pub fn image_update(parameters: &Value) -> Result<ImageUpdateSpec, ApiError> {
    if !parameters.is_object() {
        return Err(ApiError::new(Code::InvalidParameter, "the parameters must be a JSON object"));
    }
    image_task::parse_start(parameters).map_err(|error| ApiError::from(ServiceError::from(error)))
}

/// The same with `Parameters` as RPC sends them.
pub fn image_update_text(parameters: &str) -> Result<ImageUpdateSpec, ApiError> {
    image_update(&parameters_text(parameters)?)
}

fn known_template(template: &str) -> Result<Kind, ApiError> {
    Kind::from_template_name(template).ok_or_else(|| {
        ApiError::new(
            Code::EntityNotExistsTemplate,
            format!(
                "the template {} does not exist; rolling updates use the ACS-ESS-RollingUpdateBy* templates",
                crate::values::shown(template)
            ),
        )
    })
}

fn parameters_text(text: &str) -> Result<Value, ApiError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(text)
        .map_err(|error| ApiError::new(Code::InvalidParameter, format!("Parameters is not valid JSON: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCRIPT: &str = "ACS-ESS-RollingUpdateByRunCommandInScalingGroup";

    #[test]
    fn a_start_is_typed_or_refused_with_a_code() {
        let parameters = json!({"invokeType": "invoke", "scalingGroupId": "asg-1", "invokeScript": "true"});
        let request = rolling_update(SCRIPT, &parameters).unwrap();
        assert_eq!((request.kind, request.group_id.as_str()), (Kind::ScriptExecution, "asg-1"));

        let unknown = rolling_update("ACS-ECS-BulkyRunCommand", &parameters).unwrap_err();
        assert_eq!((unknown.status().as_u16(), unknown.code.as_str()), (404, "EntityNotExists.Template"));
        let not_object = rolling_update(SCRIPT, &json!([1])).unwrap_err();
        assert_eq!((not_object.status().as_u16(), not_object.code.as_str()), (400, "InvalidParameter"));
        let missing = rolling_update(SCRIPT, &json!({})).unwrap_err();
        assert_eq!((missing.status().as_u16(), missing.code.as_str()), (400, "MissingParameter"));

        assert_eq!(rolling_update_text("ACS-X", "{").unwrap_err().code, "EntityNotExists.Template");
        assert_eq!(rolling_update_text(SCRIPT, "{").unwrap_err().code, "InvalidParameter");
        assert_eq!(rolling_update_text(SCRIPT, " ").unwrap_err().code, "MissingParameter");
        assert_eq!(image_update(&json!([1])).unwrap_err().code, Code::InvalidParameter);
        assert_eq!(image_update_text("{").unwrap_err().code, Code::InvalidParameter);
        assert_eq!(image_update_text("").unwrap_err().code, Code::MissingParameter);
        let spec = image_update(&json!({"instanceId": "i-1", "scalingConfigurationIds": ["asc-1"]})).unwrap();
        assert_eq!(spec.instance_id.as_str(), "i-1");
        assert_eq!(parameters_text("  ").unwrap(), json!({}));
        assert_eq!(parameters_text("{\"a\":1}").unwrap(), json!({"a": 1}));
        assert_eq!(parameters_text("{").unwrap_err().code, "InvalidParameter");
    }
}
