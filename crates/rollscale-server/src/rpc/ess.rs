//! ESS 2014-08-28 and 2022-02-22: scaling groups, configurations, instances, processes,
//! activities, plus rollscale's catalogs (images, packages, load balancers).
//!
//! The two versions differ in list parameter names (`InstanceId.N` / `InstanceIds.N`) and in
//! list responses (`{"ScalingGroups":{"ScalingGroup":[…]}}` / `{"ScalingGroups":[…]}`);
//! both names are accepted in both versions, and the response follows the request's version.
//!
//! Health checks take ESS's `HealthCheckType` / `HealthCheckTypes` (`ECS`, `LOAD_BALANCER`, or
//! `NONE` alone). rollscale's extensions to ESS's shapes: a group's `HealthCheckGracePeriod`
//! (seconds, 0 to 7200: after an instance is made or changed, a failing health check does not
//! count against it), and an instance's observation in `DescribeScalingInstances`:
//! `LastObservedTime`, `ObservedImageId`, `Running`, `HealthProblem` and `Drifts` (one line per
//! difference from the record, a list in the version's shape), what the health checker last
//! saw; `HealthStatus` is the observed health. The official SDKs' models ignore fields they do
//! not declare.

use super::request::Params;
use super::{list, render::date, required};
use crate::error::ApiError;
use crate::values;
use rollscale_core::domain::*;
use rollscale_core::Code;
use rollscale_engine::service::{GroupChanges, NewConfiguration, NewGroup};
use rollscale_engine::Service;
use serde_json::{json, Value};

pub const VERSION_2014: &str = "2014-08-28";
pub const VERSION_2022: &str = "2022-02-22";

struct Shape<'a> {
    version: &'a str,
}

impl Shape<'_> {
    /// A list in the version's shape: wrapped (`{"Inner":[…]}`) for 2014, plain for 2022.
    fn list(&self, inner: &str, items: Vec<Value>) -> Value {
        if self.version == VERSION_2014 {
            json!({ inner: items })
        } else {
            Value::Array(items)
        }
    }

    /// List parameter `legacy.N` (2014) or `plural.N` (2022); either is accepted.
    fn names(&self, params: &Params, legacy: &str, plural: &str) -> Result<Vec<String>, ApiError> {
        let mut names = list(params, plural)?;
        if names.is_empty() {
            names = list(params, legacy)?;
        }
        Ok(names)
    }
}

pub async fn dispatch(service: &Service, version: &str, action: &str, params: &Params) -> Result<Value, ApiError> {
    let shape = Shape { version };
    match action {
        "CreateScalingGroup" => create_group(service, params).await,
        "CreateScalingConfiguration" => create_configuration(service, params).await,
        "DescribeScalingGroups" => describe_groups(service, &shape, params).await,
        "ModifyScalingGroup" => modify_group(service, params).await,
        "EnableScalingGroup" => {
            // The reconciler brings the group to its capacity (the scaling activity says how).
            let group = values::group_id(required(params, "ScalingGroupId")?)?;
            let configuration =
                params.get_nonempty("ActiveScalingConfigurationId").map(values::configuration_id).transpose()?;
            service.enable_group(&group, configuration.as_ref()).await?;
            Ok(json!({}))
        }
        "DeleteScalingGroup" => {
            let force = bool_param(params, "ForceDelete")?.unwrap_or(false);
            service.delete_group(&values::group_id(required(params, "ScalingGroupId")?)?, force).await?;
            Ok(json!({}))
        }
        "DescribeScalingConfigurations" => describe_configurations(service, &shape, params).await,
        "ModifyScalingConfiguration" => {
            let id = values::configuration_id(required(params, "ScalingConfigurationId")?)?;
            service
                .modify_configuration(
                    &id,
                    params.get_nonempty("ScalingConfigurationName").map(str::to_string),
                    params.get_nonempty("ImageId").map(str::to_string),
                )
                .await?;
            Ok(json!({}))
        }
        "DescribeScalingInstances" => describe_instances(service, &shape, params).await,
        "EnterStandby" => {
            let ids = shape.names(params, "InstanceId", "InstanceIds")?;
            let (group, ids) = group_instances(params, &ids)?;
            let activity = service.enter_standby(&group, &ids).await?;
            Ok(json!({ "ScalingActivityId": activity }))
        }
        "RemoveInstances" => {
            let ids = shape.names(params, "InstanceId", "InstanceIds")?;
            let decrease = bool_param(params, "DecreaseDesiredCapacity")?.unwrap_or(true);
            let (group, ids) = group_instances(params, &ids)?;
            let activity = service.remove_instances(&group, &ids, decrease).await?;
            Ok(json!({ "ScalingActivityId": activity }))
        }
        "ExitStandby" => {
            let ids = shape.names(params, "InstanceId", "InstanceIds")?;
            let (group, ids) = group_instances(params, &ids)?;
            let activity = service.exit_standby(&group, &ids).await?;
            // rollscale's addition: why an instance back in service may get no traffic yet.
            match activity.status_message.is_empty() {
                true => Ok(json!({ "ScalingActivityId": activity.id })),
                false => Ok(json!({ "ScalingActivityId": activity.id, "StatusMessage": activity.status_message })),
            }
        }
        "SetInstancesProtection" => {
            let ids = shape.names(params, "InstanceId", "InstanceIds")?;
            let protected = bool_param(params, "ProtectedFromScaleIn")?.ok_or_else(|| {
                ApiError::new(Code::MissingParameter, "the parameter ProtectedFromScaleIn is required")
            })?;
            let (group, ids) = group_instances(params, &ids)?;
            service.set_protection(&group, &ids, protected).await?;
            Ok(json!({}))
        }
        "SuspendProcesses" | "ResumeProcesses" => {
            let names = shape.names(params, "Process", "Processes")?;
            let name = if list(params, "Processes")?.is_empty() { "Process" } else { "Processes" };
            let processes = values::processes(&names, name)?;
            let group = values::group_id(required(params, "ScalingGroupId")?)?;
            service.set_processes(&group, &processes, action == "SuspendProcesses").await?;
            Ok(json!({}))
        }
        "DescribeScalingActivities" => describe_activities(service, &shape, params).await,
        "CreateImage" => {
            if let Some(instance) = params.get_nonempty("InstanceId") {
                // ECS's CreateImage from an instance: rollscale makes the image on the fleet.
                if params.get_nonempty("ImageId").is_some() {
                    return Err(ApiError::new(
                        Code::InvalidParameter,
                        "give ImageId (add an existing image to the catalog) or InstanceId (make one from an \
                         instance), not both",
                    ));
                }
                let instance = values::instance_id(instance)?;
                let image = service.create_image_from_instance(&instance, params.get_nonempty("ImageName")).await?;
                return Ok(json!({ "ImageId": image.id }));
            }
            let os = params.get_nonempty("OSType").map(|text| values::os_type(text, "OSType")).transpose()?;
            let image =
                service.create_image(required(params, "ImageId")?, params.get_nonempty("ImageName"), os).await?;
            Ok(json!({ "ImageId": image.id }))
        }
        "DescribeImages" => {
            let images: Vec<Value> = service.images().await?.iter().map(image_json).collect();
            Ok(json!({ "TotalCount": images.len(), "Images": shape.list("Image", images) }))
        }
        "DeleteImage" => {
            service.delete_image(required(params, "ImageId")?).await?;
            Ok(json!({}))
        }
        "CreatePackage" => {
            let package = service
                .create_package(
                    required(params, "PackageName")?,
                    required(params, "PackageVersion")?,
                    params.get("InstallScript").unwrap_or(""),
                    params.get("UninstallScript").unwrap_or(""),
                )
                .await?;
            Ok(json!({ "PackageName": package.name, "PackageVersion": package.version }))
        }
        "ListPackages" => {
            let packages: Vec<Value> = service
                .packages(params.get_nonempty("PackageName"))
                .await?
                .iter()
                .map(|p| {
                    json!({
                        "PackageName": p.name, "PackageVersion": p.version,
                        "InstallScript": p.install_script, "UninstallScript": p.uninstall_script,
                        "CreationTime": date(Some(p.created_at)),
                    })
                })
                .collect();
            Ok(json!({ "TotalCount": packages.len(), "Packages": shape.list("Package", packages) }))
        }
        "DeletePackage" => {
            service.delete_package(required(params, "PackageName")?, required(params, "PackageVersion")?).await?;
            Ok(json!({}))
        }
        "SetBackendServers" => {
            // SLB's shape: BackendServers=[{"ServerId":"i-…","Weight":"37"}, …].
            let servers: Vec<Value> = serde_json::from_str(required(params, "BackendServers")?).map_err(|error| {
                ApiError::new(
                    Code::InvalidParameter,
                    format!("BackendServers must be a JSON list of {{ServerId, Weight}}: {error}"),
                )
            })?;
            let mut weights = Vec::with_capacity(servers.len());
            for server in &servers {
                let id = server["ServerId"]
                    .as_str()
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| ApiError::new(Code::InvalidParameter, "every backend server needs a ServerId"))?;
                let shown = values::shown(id);
                let weight = match &server["Weight"] {
                    Value::Number(number) => number.as_u64(),
                    Value::String(text) => text.parse::<u64>().ok(),
                    _ => None,
                }
                .and_then(|weight| u32::try_from(weight).ok())
                .ok_or_else(|| {
                    // 0 to 100: the service's check.
                    let message = format!("BackendServers: the Weight of {shown} must be a whole number");
                    ApiError::new(Code::InvalidParameter, message)
                })?;
                weights.push((id, weight));
            }
            let lb = values::load_balancer_id(required(params, "LoadBalancerId")?)?;
            let weights = weights
                .into_iter()
                .map(|(id, weight)| Ok((values::instance_id(id)?, weight)))
                .collect::<Result<Vec<_>, ApiError>>()?;
            service.set_backend_weights(&lb, &weights).await?;
            Ok(
                json!({ "LoadBalancerId": params.get("LoadBalancerId"), "BackendServers": { "BackendServer": servers } }),
            )
        }
        "CreateLoadBalancer" => {
            let weight = count_param(params, "DefaultWeight")?.unwrap_or(100);
            let lb = service.create_load_balancer(required(params, "LoadBalancerName")?, weight).await?;
            Ok(json!({ "LoadBalancerId": lb.id }))
        }
        "DescribeLoadBalancers" => {
            let lbs: Vec<Value> = service
                .load_balancers()
                .await?
                .iter()
                .map(|lb| json!({ "LoadBalancerId": lb.id, "LoadBalancerName": lb.name, "DefaultWeight": lb.default_weight }))
                .collect();
            Ok(json!({ "TotalCount": lbs.len(), "LoadBalancers": shape.list("LoadBalancer", lbs) }))
        }
        "InjectFault" => {
            let times = int_param(params, "Times", 0, 1000)?.unwrap_or(1);
            let kind = params.get_nonempty("Kind").unwrap_or("FailNext");
            let fault = rollscale_fleet::Fault::parse(kind, times).ok_or_else(|| {
                ApiError::new(
                    Code::InvalidParameterKind,
                    format!("Kind {kind:?} is not one of {}", rollscale_fleet::Fault::KINDS.join(", ")),
                )
            })?;
            service.inject_fault(&values::instance_id(required(params, "InstanceId")?)?, fault).await?;
            Ok(json!({}))
        }
        "DescribeEvents" => {
            let limit = i64::from(int_param(params, "PageSize", 1, 500)?.unwrap_or(100));
            let execution_id = values::execution_filter(params.get_nonempty("ExecutionId"));
            let group_id = values::group_filter(params.get_nonempty("ScalingGroupId"));
            let found = match params.get_nonempty("Keywords") {
                Some(keywords) => {
                    service.search_events(&execution_id, &group_id, &values::keywords(keywords)?, limit).await?
                }
                None => service.events(&execution_id, &group_id, limit).await?,
            };
            let events: Vec<Value> = found
                .iter()
                .map(|e| {
                    // A group's own events (its health check's) have no execution: "" as every
                    // absent string of the RPC API.
                    json!({
                        "EventId": e.id, "Name": e.name, "Level": e.level.as_str(), "Kind": e.kind,
                        "ScalingGroupId": e.group_id,
                        "ExecutionId": e.execution_id.as_ref().map_or("", |id| id.as_str()),
                        "Content": e.content, "Time": date(Some(e.created_at)),
                    })
                })
                .collect();
            Ok(json!({ "Events": shape.list("Event", events) }))
        }
        other => Err(ApiError::new(Code::InvalidActionNotFound, format!("the ESS action {other} is not served"))),
    }
}

/// An instance action's group and instances, read once the action's other parameters were.
fn group_instances(
    params: &Params,
    ids: &[String],
) -> Result<(rollscale_core::ids::ScalingGroupId, Vec<rollscale_core::ids::InstanceId>), ApiError> {
    let group = values::group_id(required(params, "ScalingGroupId")?)?;
    Ok((group, values::instance_ids(ids)?))
}

fn bool_param(params: &Params, name: &str) -> Result<Option<bool>, ApiError> {
    params.bool(name).map_err(ApiError::from)
}

fn int_param(params: &Params, name: &str, min: u32, max: u32) -> Result<Option<u32>, ApiError> {
    match params.i64(name).map_err(ApiError::from)? {
        None => Ok(None),
        Some(value) if value >= i64::from(min) && value <= i64::from(max) => Ok(Some(value as u32)),
        Some(_) => Err(ApiError::new(Code::InvalidParameter, format!("{name} must be from {min} to {max}"))),
    }
}

/// A count or a number of seconds: a whole number from 0 that fits 32 bits, as the REST API's
/// `u32` fields. Its limits (`MaxSize` at most 10,000, …) are the domain's, checked by the
/// service (`core::group`, `core::health`), not here.
fn count_param(params: &Params, name: &str) -> Result<Option<u32>, ApiError> {
    match params.i64(name).map_err(ApiError::from)? {
        None => Ok(None),
        Some(value) => u32::try_from(value).map(Some).map_err(|_| {
            ApiError::new(Code::InvalidParameter, format!("{name} must be a whole number from 0 to {}", u32::MAX))
        }),
    }
}

/// A group's health check types as given under `name`: each `ECS`, `LOAD_BALANCER` (or
/// `LOADBALANCER`) or `NONE`; an unknown value is refused with `InvalidParameter.HealthCheckType`.
/// The REST API parses its `health_check_types` through here too; the list's rule (repeats
/// taken once, `NONE` only alone, not empty) is `core::health::check_types`, which the
/// service applies.
/// `HealthCheckType` (one) or `HealthCheckTypes` (`HealthCheckTypes.N`, or a JSON array): the
/// one wins when both are given, as ESS documents; `None` when neither is.
fn health_check_params(params: &Params) -> Result<Option<Vec<HealthCheckType>>, ApiError> {
    if let Some(one) = params.get_nonempty("HealthCheckType") {
        return values::health_check_types(&[one.to_string()], "HealthCheckType").map(Some);
    }
    let many = list(params, "HealthCheckTypes")?;
    if many.is_empty() {
        return Ok(None);
    }
    values::health_check_types(&many, "HealthCheckTypes").map(Some)
}

fn paging(params: &Params) -> Result<(i64, i64, i64), ApiError> {
    let number = int_param(params, "PageNumber", 1, 1_000_000)?.unwrap_or(1);
    let size = int_param(params, "PageSize", 1, 100)?.unwrap_or(10);
    Ok((i64::from(number), i64::from(size), i64::from(number - 1) * i64::from(size)))
}

fn image_json(image: &Image) -> Value {
    json!({
        "ImageId": image.id, "ImageName": image.name, "ImageOwnerAlias": image.kind,
        "OSType": image.os.as_str(), "CreationTime": date(Some(image.created_at)),
    })
}

async fn create_group(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let mut load_balancer_ids = Vec::new();
    let mut names = list(params, "LoadBalancerIds")?;
    if names.len() == 1 && names[0].contains(',') {
        names = names[0].split(',').map(|s| s.trim().to_string()).collect();
    }
    for text in names.iter().filter(|s| !s.is_empty()) {
        load_balancer_ids.push(values::load_balancer_id(text)?);
    }
    let group_type = params.get_nonempty("GroupType").map(|text| values::group_type(text, "GroupType")).transpose()?;
    let min_size = count_param(params, "MinSize")?
        .ok_or_else(|| ApiError::new(Code::MissingParameter, "the parameter MinSize is required"))?;
    let max_size = count_param(params, "MaxSize")?
        .ok_or_else(|| ApiError::new(Code::MissingParameter, "the parameter MaxSize is required"))?;
    let health_check_types = health_check_params(params)?;
    let health_check_grace_period_s = count_param(params, "HealthCheckGracePeriod")?;
    let group = service
        .create_group(NewGroup {
            name: params.get_nonempty("ScalingGroupName").unwrap_or_default().to_string(),
            region_id: params.get_nonempty("RegionId").unwrap_or("local").to_string(),
            group_type,
            min_size,
            max_size,
            desired_capacity: count_param(params, "DesiredCapacity")?,
            load_balancer_ids,
            drain_timeout_s: count_param(params, "DrainTimeout")?,
            launch_template: values::launch_template(
                params.get_nonempty("LaunchTemplateId"),
                params.get_nonempty("LaunchTemplateVersion"),
                "LaunchTemplateVersion",
            )?,
            health_check_types,
            health_check_grace_period_s,
        })
        .await?;
    Ok(json!({ "ScalingGroupId": group.id }))
}

async fn describe_groups(service: &Service, shape: &Shape<'_>, params: &Params) -> Result<Value, ApiError> {
    let ids = values::group_ids_filter(&shape.names(params, "ScalingGroupId", "ScalingGroupIds")?);
    let (number, size, offset) = paging(params)?;
    let groups = service.groups(ids.as_deref(), params.get_nonempty("ScalingGroupName")).await?;
    let total = groups.len();
    let mut items = Vec::new();
    for group in groups.into_iter().skip(offset as usize).take(size as usize) {
        let instances = service.instances(Some(&group.id), None, None).await?;
        let count = |state: LifecycleState| instances.iter().filter(|i| i.lifecycle_state == state).count();
        let (configuration, template, template_version) = match &group.source {
            InstanceSource::Configuration(id) => (id.to_string(), String::new(), String::new()),
            InstanceSource::LaunchTemplate { id, version } => (String::new(), id.to_string(), version.to_string()),
            InstanceSource::None => (String::new(), String::new(), String::new()),
        };
        let lbs: Vec<Value> = group.load_balancer_ids.iter().map(|id| json!(id)).collect();
        let suspended: Vec<Value> = group.suspended_processes.iter().map(|p| json!(p.as_str())).collect();
        let health_check_types: Vec<Value> = group.health_check_types.iter().map(|t| json!(t.as_str())).collect();
        items.push(json!({
            "ScalingGroupId": group.id,
            "ScalingGroupName": group.name,
            "RegionId": group.region_id,
            "GroupType": group.group_type.as_str(),
            "LifecycleState": group.status.as_str(),
            "MinSize": group.min_size,
            "MaxSize": group.max_size,
            "DesiredCapacity": group.desired_capacity,
            "ActiveScalingConfigurationId": configuration,
            "LaunchTemplateId": template,
            "LaunchTemplateVersion": template_version,
            "LoadBalancerIds": shape.list("LoadBalancerId", lbs),
            "SuspendedProcesses": shape.list("SuspendedProcess", suspended),
            "TotalCapacity": instances.len(),
            "ActiveCapacity": count(LifecycleState::InService) + count(LifecycleState::Protected),
            "StandbyCapacity": count(LifecycleState::Standby),
            "ProtectedCapacity": count(LifecycleState::Protected),
            "PendingCapacity": count(LifecycleState::Pending),
            "RemovingCapacity": count(LifecycleState::Removing),
            "DrainTimeout": group.drain_timeout_s,
            // ESS's HealthCheckType is the first of HealthCheckTypes.
            "HealthCheckType": group.health_check_types.first().map_or("", |t| t.as_str()),
            "HealthCheckTypes": shape.list("HealthCheckType", health_check_types),
            "HealthCheckGracePeriod": group.health_check_grace_period_s,
            "CreationTime": date(Some(group.created_at)),
        }));
    }
    Ok(json!({
        "TotalCount": total, "PageNumber": number, "PageSize": size,
        "ScalingGroups": shape.list("ScalingGroup", items),
    }))
}

async fn modify_group(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let configuration =
        params.get_nonempty("ActiveScalingConfigurationId").map(values::configuration_id).transpose()?;
    let group = required(params, "ScalingGroupId")?;
    let changes = GroupChanges {
        name: params.get_nonempty("ScalingGroupName").map(str::to_string),
        min_size: count_param(params, "MinSize")?,
        max_size: count_param(params, "MaxSize")?,
        desired_capacity: count_param(params, "DesiredCapacity")?,
        active_configuration_id: configuration,
        drain_timeout_s: count_param(params, "DrainTimeout")?,
        health_check_types: health_check_params(params)?,
        health_check_grace_period_s: count_param(params, "HealthCheckGracePeriod")?,
    };
    // The reconciler acts on a new capacity (the scaling activity says how): not waited for.
    service.modify_group(&values::group_id(group)?, changes).await?;
    Ok(json!({}))
}

async fn create_configuration(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let containers = match params.get_nonempty("Containers") {
        None => Vec::new(),
        Some(text) => serde_json::from_str(text).map_err(|error| {
            ApiError::new(
                Code::InvalidParameter,
                format!("Containers must be a JSON list of {{name, image, command, env, port}}: {error}"),
            )
        })?,
    };
    let group = required(params, "ScalingGroupId")?;
    let new = NewConfiguration {
        name: params.get_nonempty("ScalingConfigurationName").map(str::to_string),
        image_id: required(params, "ImageId")?.to_string(),
        instance_type: params.get_nonempty("InstanceType").map(str::to_string),
        containers,
    };
    let configuration = service.create_configuration(&values::group_id(group)?, new).await?;
    Ok(json!({ "ScalingConfigurationId": configuration.id }))
}

async fn describe_configurations(service: &Service, shape: &Shape<'_>, params: &Params) -> Result<Value, ApiError> {
    let ids = shape.names(params, "ScalingConfigurationId", "ScalingConfigurationIds")?;
    let (number, size, offset) = paging(params)?;
    let group = params.get_nonempty("ScalingGroupId").map(values::group_id).transpose()?;
    let ids = values::configuration_ids_filter(&ids);
    let configurations = service.configurations(group.as_ref(), ids.as_deref()).await?;
    let total = configurations.len();
    let items: Vec<Value> = configurations
        .iter()
        .skip(offset as usize)
        .take(size as usize)
        .map(|c| {
            json!({
                "ScalingConfigurationId": c.id, "ScalingConfigurationName": c.name, "ScalingGroupId": c.group_id,
                "ImageId": c.image_id, "InstanceType": c.instance_type, "LifecycleState": c.state.as_str(),
                "CreationTime": date(Some(c.created_at)),
            })
        })
        .collect();
    Ok(json!({
        "TotalCount": total, "PageNumber": number, "PageSize": size,
        "ScalingConfigurations": shape.list("ScalingConfiguration", items),
    }))
}

async fn describe_instances(service: &Service, shape: &Shape<'_>, params: &Params) -> Result<Value, ApiError> {
    let ids = values::instance_ids_filter(&shape.names(params, "InstanceId", "InstanceIds")?);
    let (number, size, offset) = paging(params)?;
    let group = params.get_nonempty("ScalingGroupId").map(values::group_id).transpose()?;
    let state = params.get_nonempty("LifecycleState").map(|text| values::lifecycle_state(text, "LifecycleState"));
    let instances = service.instances(group.as_ref(), ids.as_deref(), state.transpose()?).await?;
    let total = instances.len();
    let mut items = Vec::new();
    for instance in instances.iter().skip(offset as usize).take(size as usize) {
        let weight = service.backends(&instance.id).await?.first().map(|b| b.weight);
        let observed = instance.observed.as_ref();
        let drifts: Vec<Value> = observed.map(|o| o.drift.iter().map(|line| json!(line)).collect()).unwrap_or_default();
        items.push(json!({
            "InstanceId": instance.id,
            "ScalingGroupId": instance.group_id,
            "LifecycleState": instance.lifecycle_state.as_str(),
            "HealthStatus": instance.health_status.as_str(),
            "CreationType": instance.creation_type.as_str(),
            "CreationTime": date(Some(instance.created_at)),
            "ImageId": instance.image_id,
            "LoadBalancerWeight": weight,
            "Entrusted": false,
            "ProtectedFromScaleIn": instance.lifecycle_state == LifecycleState::Protected,
            "Packages": instance.packages.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(","),
            "Tags": instance.tags.join(","),
            // rollscale's: the observation HealthStatus comes from ("" and null before the
            // instance was first looked at).
            "LastObservedTime": date(instance.observed_at.or(observed.map(|o| o.since))),
            "ObservedImageId": observed.map_or("", |o| o.image_id.as_str()),
            "Running": observed.map(|o| o.running),
            "HealthProblem": observed.and_then(|o| o.problem.as_deref()).unwrap_or(""),
            "Drifts": shape.list("Drift", drifts),
        }));
    }
    Ok(json!({
        "TotalCount": total, "TotalSpotCount": 0, "PageNumber": number, "PageSize": size,
        "ScalingInstances": shape.list("ScalingInstance", items),
    }))
}

async fn describe_activities(service: &Service, shape: &Shape<'_>, params: &Params) -> Result<Value, ApiError> {
    let (number, size, offset) = paging(params)?;
    let group = values::group_id(required(params, "ScalingGroupId")?)?;
    let (activities, total) = service.activities(&group, offset, size).await?;
    let items: Vec<Value> = activities
        .iter()
        .map(|a| {
            json!({
                "ScalingActivityId": a.id, "ScalingGroupId": a.group_id, "Description": a.description,
                "Cause": a.cause, "StatusCode": a.status.as_str(), "StatusMessage": a.status_message,
                "Progress": if a.ended_at.is_some() { 100 } else { 0 },
                "StartTime": date(Some(a.started_at)), "EndTime": date(a.ended_at),
                "AttachedCapacity": "", "TotalCapacity": "", "AutoCreatedCapacity": "",
            })
        })
        .collect();
    Ok(json!({
        "TotalCount": total, "PageNumber": number, "PageSize": size,
        "ScalingActivities": shape.list("ScalingActivity", items),
    }))
}
