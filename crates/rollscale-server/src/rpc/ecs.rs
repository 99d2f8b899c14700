//! ECS (Version 2014-05-26): the launch template actions, the image catalog's actions (the
//! same as under ESS), and `DescribeRegions` (rollscale's one region, so that
//! `aliyun ecs DescribeRegions` can check a configuration).

use super::request::Params;
use super::{ess, required};
use crate::error::ApiError;
use crate::values;
use rollscale_core::domain::{LaunchTemplate, LaunchTemplateVersion};
use rollscale_core::Code;
use rollscale_engine::templates::NewTemplateVersion;
use rollscale_engine::Service;
use serde_json::{json, Value};

pub const VERSION: &str = "2014-05-26";

/// The one region rollscale serves (the CLI profile's default `RegionId`).
pub const REGION_ID: &str = "local";

pub async fn dispatch(service: &Service, action: &str, params: &Params, host: Option<&str>) -> Result<Value, ApiError> {
    match action {
        "DescribeRegions" => {
            let local_name = match params.get_nonempty("AcceptLanguage") {
                None | Some("en-US") | Some("zh-CN") | Some("ja") => "rollscale (this service)",
                Some(other) => {
                    return Err(ApiError::new(
                        Code::InvalidParameter,
                        format!("AcceptLanguage \"{other}\" is not one of zh-CN, en-US, ja"),
                    ))
                }
            };
            Ok(json!({ "Regions": { "Region": [{
                "RegionId": REGION_ID,
                "LocalName": local_name,
                "RegionEndpoint": host.unwrap_or_default(),
                "Status": "available",
            }] } }))
        }
        "CreateLaunchTemplate" => {
            let name = required(params, "LaunchTemplateName")?;
            let (template, _) = service.create_launch_template(name, new_version(params)?).await?;
            Ok(json!({ "LaunchTemplateId": template.id, "LaunchTemplateVersionNumber": 1 }))
        }
        "CreateLaunchTemplateVersion" => {
            let id = template_id(service, params).await?;
            let make_default = params.bool("SetAsDefault").map_err(ApiError::from)?.unwrap_or(false);
            let new = new_version(params)?;
            let version =
                service.create_launch_template_version(&values::launch_template_id(&id)?, new, make_default).await?;
            Ok(json!({ "LaunchTemplateVersionNumber": version.version }))
        }
        "ModifyLaunchTemplateDefaultVersion" => {
            let id = template_id(service, params).await?;
            let number = params.i64("DefaultVersionNumber").map_err(ApiError::from)?.ok_or_else(|| {
                ApiError::new(Code::MissingParameter, "the parameter DefaultVersionNumber is required")
            })?;
            let number = u32::try_from(number)
                .map_err(|_| ApiError::new(Code::InvalidParameter, "DefaultVersionNumber must be a version number"))?;
            service.set_default_template_version(&values::launch_template_id(&id)?, number).await?;
            Ok(json!({}))
        }
        "DescribeLaunchTemplates" => {
            let ids = super::list(params, "LaunchTemplateId")?;
            let names = super::list(params, "LaunchTemplateName")?;
            let templates: Vec<Value> = service
                .launch_templates()
                .await?
                .iter()
                .filter(|t| ids.is_empty() || ids.iter().any(|id| id == t.id.as_str()))
                .filter(|t| names.is_empty() || names.contains(&t.name))
                .map(template_json)
                .collect();
            Ok(json!({
                "TotalCount": templates.len(), "PageNumber": 1, "PageSize": templates.len().max(1),
                "LaunchTemplateSets": { "LaunchTemplateSet": templates },
            }))
        }
        "DescribeLaunchTemplateVersions" => {
            let id = values::launch_template_id(&template_id(service, params).await?)?;
            let template = service.launch_template(&id).await?;
            let wanted = super::list(params, "LaunchTemplateVersion")?;
            let versions: Vec<Value> = service
                .launch_template_versions(&id)
                .await?
                .iter()
                .filter(|v| wanted.is_empty() || wanted.iter().any(|w| *w == v.version.to_string()))
                .map(|v| version_json(&template, v))
                .collect();
            Ok(json!({
                "TotalCount": versions.len(), "PageNumber": 1, "PageSize": versions.len().max(1),
                "LaunchTemplateVersionSets": { "LaunchTemplateVersionSet": versions },
            }))
        }
        "CreateImage" | "DescribeImages" | "DeleteImage" => {
            ess::dispatch(service, ess::VERSION_2014, action, params).await
        }
        other => Err(ApiError::new(
            Code::InvalidActionNotFound,
            format!("the action {other} is not served for ECS (Version {VERSION})"),
        )),
    }
}

/// `LaunchTemplateId` as given (read by `values::launch_template_id` where the action's other
/// parameters have been), or the id of `LaunchTemplateName`.
async fn template_id(service: &Service, params: &Params) -> Result<String, ApiError> {
    if let Some(id) = params.get_nonempty("LaunchTemplateId") {
        return Ok(id.to_string());
    }
    let Some(name) = params.get_nonempty("LaunchTemplateName") else {
        return Err(ApiError::new(Code::MissingParameter, "LaunchTemplateId or LaunchTemplateName is required"));
    };
    let found = service.launch_templates().await?.into_iter().find(|t| t.name == name);
    found.map(|t| t.id.to_string()).ok_or_else(|| {
        ApiError::new(
            Code::InvalidLaunchTemplateNotFound,
            format!("no launch template is named {}", values::shown(name)),
        )
    })
}

fn new_version(params: &Params) -> Result<NewTemplateVersion, ApiError> {
    Ok(NewTemplateVersion {
        image_id: required(params, "ImageId")?.to_string(),
        instance_type: params.get_nonempty("InstanceType").map(str::to_string),
        containers: Vec::new(),
        description: params.get_nonempty("VersionDescription").map(str::to_string),
    })
}

fn template_json(template: &LaunchTemplate) -> Value {
    json!({
        "LaunchTemplateId": template.id,
        "LaunchTemplateName": template.name,
        "DefaultVersionNumber": template.default_version,
        "LatestVersionNumber": template.latest_version,
        "CreateTime": super::render::date(Some(template.created_at)),
        "ModifiedTime": super::render::date(Some(template.created_at)),
        "CreatedBy": "rollscale",
    })
}

fn version_json(template: &LaunchTemplate, version: &LaunchTemplateVersion) -> Value {
    json!({
        "LaunchTemplateId": template.id,
        "LaunchTemplateName": template.name,
        "VersionNumber": version.version,
        "DefaultVersion": version.version == template.default_version,
        "VersionDescription": version.description,
        "CreateTime": super::render::date(Some(version.created_at)),
        "LaunchTemplateData": { "ImageId": version.image_id, "InstanceType": version.instance_type },
    })
}
