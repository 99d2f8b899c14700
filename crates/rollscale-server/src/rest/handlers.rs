//! The REST handlers: parse, call the [`Service`](rollscale_engine::Service), answer with a
//! [`dto`](super::dto) value. No rule lives here.

use super::auth::{make_session_token, Caller};
use super::dto::*;
use super::State as AppStateRef;
use crate::error::ApiError;
use crate::values;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use rollscale_core::access::AuditFilter;
use rollscale_core::domain::LoadBalancer as _Lb;
use rollscale_core::ids::{ExecutionId, InstanceId, ScalingGroupId};
use rollscale_core::policy::PolicyType;
use rollscale_core::task::{InstanceDecision, TaskStatus};
use rollscale_core::Code;
use rollscale_engine::access::NewUser;
use rollscale_engine::service::{GroupChanges, NewConfiguration, NewGroup};
use rollscale_engine::templates::NewTemplateVersion;
use rollscale_store::{Execution, ExecutionFilter};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::time::Duration;

type Reply<T> = Result<Json<T>, ApiError>;

/// A group's health check types as the body gives them, parsed as the RPC API parses them.
/// The limits of a group's values (sizes, names, drain time, the health check's) are the
/// service's (`core::group`, `core::health`): a handler only parses.
fn health_check_types(
    types: Option<&[String]>,
) -> Result<Option<Vec<rollscale_core::domain::HealthCheckType>>, ApiError> {
    types.map(|types| values::health_check_types(types, "health_check_types")).transpose()
}

/// A JSON body, or `InvalidParameter` naming what is wrong with it.
fn body<T: DeserializeOwned>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value).map_err(|rejection| {
        let code = match rejection {
            JsonRejection::MissingJsonContentType(_) => Code::InvalidContentType,
            _ => Code::InvalidParameter,
        };
        ApiError::new(code, format!("the request body: {}", rejection.body_text()))
    })
}

/// An optional JSON body (absent or empty: the default).
fn optional_body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::new(Code::InvalidParameter, format!("the request body: {error}")))
}

pub async fn openapi() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], super::openapi::document_text())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(Code::MethodNotAllowed, "this route does not take this method; GET /v1/openapi.json lists them")
}

pub async fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "no such route; GET /v1/openapi.json lists them")
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListGroupsQuery {
    name: Option<String>,
}

fn query<T: Default>(query: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(value)| value)
        .map_err(|rejection| ApiError::new(Code::InvalidParameter, format!("the query: {}", rejection.body_text())))
}

pub async fn list_groups(
    State(state): State<AppStateRef>,
    q: Result<Query<ListGroupsQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<List<ScalingGroupView>> {
    let q = query(q)?;
    let groups = state.service.groups(None, q.name.as_deref()).await?;
    Ok(Json(List { items: groups.iter().map(ScalingGroupView::from).collect() }))
}

pub async fn create_group(
    State(state): State<AppStateRef>,
    new: Result<Json<NewScalingGroup>, JsonRejection>,
) -> Reply<ScalingGroupView> {
    let new = body(new)?;
    let group_type = new.group_type.as_deref().map(|text| values::group_type(text, "group_type")).transpose()?;
    let load_balancer_ids =
        new.load_balancer_ids.iter().map(|text| values::load_balancer_id(text)).collect::<Result<Vec<_>, _>>()?;
    let health_check_types = health_check_types(new.health_check_types.as_deref())?;
    let launch_template = values::launch_template(
        new.launch_template_id.as_deref(),
        new.launch_template_version.as_deref(),
        "launch_template_version",
    )?;
    let group = state
        .service
        .create_group(NewGroup {
            name: new.name,
            region_id: new.region_id.unwrap_or_else(|| "local".into()),
            group_type,
            min_size: new.min_size,
            max_size: new.max_size,
            desired_capacity: new.desired_capacity,
            load_balancer_ids,
            drain_timeout_s: new.drain_timeout_s,
            launch_template,
            health_check_types,
            health_check_grace_period_s: new.health_check_grace_period_s,
        })
        .await?;
    Ok(Json(ScalingGroupView::from(&group)))
}

pub async fn get_group(State(state): State<AppStateRef>, Path(id): Path<String>) -> Reply<ScalingGroupView> {
    Ok(Json(ScalingGroupView::from(&state.service.group(&values::group_id(&id)?).await?)))
}

pub async fn modify_group(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    changes: Result<Json<ScalingGroupChanges>, JsonRejection>,
) -> Reply<ScalingGroupView> {
    let changes = body(changes)?;
    let health_check_types = health_check_types(changes.health_check_types.as_deref())?;
    let active_configuration_id =
        changes.scaling_configuration_id.as_deref().map(values::configuration_id).transpose()?;
    let group = state
        .service
        .modify_group(
            &values::group_id(&id)?,
            GroupChanges {
                name: changes.name,
                min_size: changes.min_size,
                max_size: changes.max_size,
                desired_capacity: changes.desired_capacity,
                active_configuration_id,
                drain_timeout_s: changes.drain_timeout_s,
                health_check_types,
                health_check_grace_period_s: changes.health_check_grace_period_s,
            },
        )
        .await?;
    Ok(Json(ScalingGroupView::from(&group)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    force: Option<bool>,
}

pub async fn delete_group(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    q: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<ScalingGroupView> {
    let q = query(q)?;
    let id = values::group_id(&id)?;
    let group = state.service.group(&id).await?;
    state.service.delete_group(&id, q.force.unwrap_or(false)).await?;
    Ok(Json(ScalingGroupView::from(&group)))
}

pub async fn enable_group(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Reply<ScalingGroupView> {
    let enable: EnableScalingGroup = optional_body(&bytes)?;
    let id = values::group_id(&id)?;
    let configuration = enable.scaling_configuration_id.as_deref().map(values::configuration_id).transpose()?;
    let group = state.service.enable_group(&id, configuration.as_ref()).await?;
    Ok(Json(ScalingGroupView::from(&group)))
}

pub async fn change_processes(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    change: Result<Json<ProcessesChange>, JsonRejection>,
) -> Reply<ScalingGroupView> {
    let change = body(change)?;
    let suspend = match change.action.as_str() {
        "suspend" => true,
        "resume" => false,
        other => {
            let message = format!("action \"{}\" is not suspend or resume", values::shown(other));
            return Err(ApiError::new(Code::InvalidParameter, message));
        }
    };
    let processes = values::processes(&change.processes, "processes")?;
    Ok(Json(ScalingGroupView::from(&state.service.set_processes(&values::group_id(&id)?, &processes, suspend).await?)))
}

/// The group's instances, of the ids given.
async fn group_instances(
    state: &AppStateRef,
    group: &ScalingGroupId,
    ids: Option<&[InstanceId]>,
) -> Result<List<InstanceView>, ApiError> {
    let instances = state.service.instances(Some(group), ids, None).await?;
    instance_views(state, &instances).await
}

/// An instance action's group and instances.
fn group_and_instances(group: &str, ids: &[String]) -> Result<(ScalingGroupId, Vec<InstanceId>), ApiError> {
    Ok((values::group_id(group)?, values::instance_ids(ids)?))
}

pub async fn change_standby(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    change: Result<Json<StandbyChange>, JsonRejection>,
) -> Reply<List<InstanceView>> {
    let change = body(change)?;
    let enter = match change.action.as_str() {
        "enter" => true,
        "exit" => false,
        other => {
            let message = format!("action \"{}\" is not enter or exit", values::shown(other));
            return Err(ApiError::new(Code::InvalidParameter, message));
        }
    };
    let (id, ids) = group_and_instances(&id, &change.instance_ids)?;
    match enter {
        true => state.service.enter_standby(&id, &ids).await?,
        // The instances' views answer: an Unhealthy one is shown so (R17).
        false => state.service.exit_standby(&id, &ids).await?.id,
    };
    Ok(Json(group_instances(&state, &id, Some(&ids)).await?))
}

/// Removes instances from the group; answers with the group's instances left.
pub async fn remove_instances(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    change: Result<Json<RemoveInstancesBody>, JsonRejection>,
) -> Reply<List<InstanceView>> {
    let change = body(change)?;
    let decrease = change.decrease_desired_capacity.unwrap_or(true);
    let (id, ids) = group_and_instances(&id, &change.instance_ids)?;
    state.service.remove_instances(&id, &ids, decrease).await?;
    Ok(Json(group_instances(&state, &id, None).await?))
}

pub async fn change_protection(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    change: Result<Json<ProtectionChange>, JsonRejection>,
) -> Reply<List<InstanceView>> {
    let change = body(change)?;
    let (id, ids) = group_and_instances(&id, &change.instance_ids)?;
    state.service.set_protection(&id, &ids, change.protected).await?;
    Ok(Json(group_instances(&state, &id, Some(&ids)).await?))
}

pub async fn list_activities(State(state): State<AppStateRef>, Path(id): Path<String>) -> Reply<List<ActivityView>> {
    let (activities, _) = state.service.activities(&values::group_id(&id)?, 0, 100).await?;
    Ok(Json(List { items: activities.iter().map(ActivityView::from).collect() }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GroupQuery {
    scaling_group_id: Option<String>,
    lifecycle_state: Option<String>,
}

pub async fn list_configurations(
    State(state): State<AppStateRef>,
    q: Result<Query<GroupQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<List<ScalingConfigurationView>> {
    let q = query(q)?;
    let group = q.scaling_group_id.as_deref().map(values::group_id).transpose()?;
    let configurations = state.service.configurations(group.as_ref(), None).await?;
    Ok(Json(List { items: configurations.iter().map(ScalingConfigurationView::from).collect() }))
}

pub async fn create_configuration(
    State(state): State<AppStateRef>,
    new: Result<Json<NewScalingConfiguration>, JsonRejection>,
) -> Reply<ScalingConfigurationView> {
    let new = body(new)?;
    let group = values::group_id(&new.scaling_group_id)?;
    let configuration = state
        .service
        .create_configuration(
            &group,
            NewConfiguration {
                name: new.name,
                image_id: new.image_id,
                instance_type: new.instance_type,
                containers: new.containers.into_iter().map(Into::into).collect(),
            },
        )
        .await?;
    Ok(Json(ScalingConfigurationView::from(&configuration)))
}

pub async fn modify_configuration(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    changes: Result<Json<ScalingConfigurationChanges>, JsonRejection>,
) -> Reply<ScalingConfigurationView> {
    let changes = body(changes)?;
    let name = changes.name.filter(|name| !name.is_empty());
    let image_id = changes.image_id.filter(|image| !image.is_empty());
    let configuration = state.service.modify_configuration(&values::configuration_id(&id)?, name, image_id).await?;
    Ok(Json(ScalingConfigurationView::from(&configuration)))
}

pub async fn get_configuration(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
) -> Reply<ScalingConfigurationView> {
    let id = values::configuration_id(&id)?;
    let found = state.service.configurations(None, Some(std::slice::from_ref(&id))).await?;
    let configuration = found.first().ok_or_else(|| {
        ApiError::new(
            Code::InvalidScalingConfigurationIdNotFound,
            format!("the scaling configuration {id} does not exist"),
        )
    })?;
    Ok(Json(ScalingConfigurationView::from(configuration)))
}

pub async fn list_instances(
    State(state): State<AppStateRef>,
    q: Result<Query<GroupQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<List<InstanceView>> {
    let q = query(q)?;
    let group = q.scaling_group_id.as_deref().map(values::group_id).transpose()?;
    let state_filter =
        q.lifecycle_state.as_deref().map(|text| values::lifecycle_state(text, "lifecycle_state")).transpose()?;
    let instances = state.service.instances(group.as_ref(), None, state_filter).await?;
    Ok(Json(instance_views(&state, &instances).await?))
}

pub async fn get_instance(State(state): State<AppStateRef>, Path(id): Path<String>) -> Reply<InstanceView> {
    let id = values::instance_id(&id)?;
    let found = state.service.instances(None, Some(std::slice::from_ref(&id)), None).await?;
    let instance = found
        .first()
        .ok_or_else(|| ApiError::new(Code::InvalidInstanceIdNotFound, format!("the instance {id} does not exist")))?;
    let mut views = instance_views(&state, std::slice::from_ref(instance)).await?;
    Ok(Json(views.items.remove(0)))
}

/// Instances as the API shows them, each with its load-balancer weight (as
/// `DescribeScalingInstances` gives `LoadBalancerWeight`).
async fn instance_views(
    state: &AppStateRef,
    instances: &[rollscale_core::domain::Instance],
) -> Result<List<InstanceView>, ApiError> {
    let mut items = Vec::with_capacity(instances.len());
    for instance in instances {
        let mut view = InstanceView::from(instance);
        view.load_balancer_weight = state.service.backends(&instance.id).await?.first().map(|b| b.weight);
        items.push(view);
    }
    Ok(List { items })
}

pub async fn list_launch_templates(State(state): State<AppStateRef>) -> Reply<List<LaunchTemplateView>> {
    let templates = state.service.launch_templates().await?;
    Ok(Json(List { items: templates.iter().map(LaunchTemplateView::from).collect() }))
}

fn template_version(new: NewLaunchTemplateVersion) -> NewTemplateVersion {
    NewTemplateVersion {
        image_id: new.image_id,
        instance_type: new.instance_type,
        containers: new.containers.into_iter().map(Into::into).collect(),
        description: new.description,
    }
}

pub async fn create_launch_template(
    State(state): State<AppStateRef>,
    new: Result<Json<NewLaunchTemplate>, JsonRejection>,
) -> Reply<LaunchTemplateView> {
    let new = body(new)?;
    let (template, _) = state.service.create_launch_template(&new.name, template_version(new.version)).await?;
    Ok(Json(LaunchTemplateView::from(&template)))
}

pub async fn get_launch_template(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
) -> Reply<LaunchTemplateView> {
    Ok(Json(LaunchTemplateView::from(&state.service.launch_template(&values::launch_template_id(&id)?).await?)))
}

pub async fn modify_launch_template(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    changes: Result<Json<LaunchTemplateChanges>, JsonRejection>,
) -> Reply<LaunchTemplateView> {
    let changes = body(changes)?;
    let id = values::launch_template_id(&id)?;
    Ok(Json(LaunchTemplateView::from(&state.service.set_default_template_version(&id, changes.default_version).await?)))
}

pub async fn list_launch_template_versions(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
) -> Reply<List<LaunchTemplateVersionView>> {
    let versions = state.service.launch_template_versions(&values::launch_template_id(&id)?).await?;
    Ok(Json(List { items: versions.iter().map(LaunchTemplateVersionView::from).collect() }))
}

pub async fn create_launch_template_version(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    new: Result<Json<NewLaunchTemplateVersion>, JsonRejection>,
) -> Reply<LaunchTemplateVersionView> {
    let new = body(new)?;
    let make_default = new.make_default;
    let id = values::launch_template_id(&id)?;
    let version = state.service.create_launch_template_version(&id, template_version(new), make_default).await?;
    Ok(Json(LaunchTemplateVersionView::from(&version)))
}

pub async fn list_load_balancers(State(state): State<AppStateRef>) -> Reply<List<LoadBalancerView>> {
    let lbs: Vec<_Lb> = state.service.load_balancers().await?;
    Ok(Json(List { items: lbs.iter().map(LoadBalancerView::from).collect() }))
}

pub async fn create_load_balancer(
    State(state): State<AppStateRef>,
    new: Result<Json<NewLoadBalancer>, JsonRejection>,
) -> Reply<LoadBalancerView> {
    let new = body(new)?;
    let lb = state.service.create_load_balancer(&new.name, new.default_weight.unwrap_or(100)).await?;
    Ok(Json(LoadBalancerView::from(&lb)))
}

pub async fn set_backend_servers(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    new: Result<Json<BackendServers>, JsonRejection>,
) -> Reply<BackendServers> {
    let new = body(new)?;
    let lb = values::load_balancer_id(&id)?;
    let weights = new
        .backend_servers
        .iter()
        .map(|server| Ok((values::instance_id(&server.instance_id)?, server.weight)))
        .collect::<Result<Vec<_>, ApiError>>()?;
    state.service.set_backend_weights(&lb, &weights).await?;
    Ok(Json(new))
}

pub async fn list_images(State(state): State<AppStateRef>) -> Reply<List<ImageView>> {
    Ok(Json(List { items: state.service.images().await?.iter().map(ImageView::from).collect() }))
}

pub async fn create_image(
    State(state): State<AppStateRef>,
    new: Result<Json<NewImage>, JsonRejection>,
) -> Reply<ImageView> {
    let new = body(new)?;
    let os = new.os.as_deref().map(|text| values::os_type(text, "os")).transpose()?;
    let image = match (new.id.as_deref(), new.instance_id.as_deref()) {
        (Some(id), None) => state.service.create_image(id, new.name.as_deref(), os).await?,
        (None, Some(instance)) if os.is_none() => {
            state.service.create_image_from_instance(&values::instance_id(instance)?, new.name.as_deref()).await?
        }
        (None, Some(_)) => {
            return Err(ApiError::new(Code::InvalidParameter, "an image made from an instance has the instance's os"))
        }
        _ => return Err(ApiError::new(Code::InvalidParameter, "give one of id and instance_id")),
    };
    Ok(Json(ImageView::from(&image)))
}

pub async fn delete_image(State(state): State<AppStateRef>, Path(id): Path<String>) -> Reply<ImageView> {
    let image = state.service.images().await?.into_iter().find(|image| image.id == id).ok_or_else(|| {
        ApiError::new(Code::InvalidImageIdNotFound, format!("the image {} does not exist", values::shown(&id)))
    })?;
    state.service.delete_image(&id).await?;
    Ok(Json(ImageView::from(&image)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PackageQuery {
    name: Option<String>,
}

pub async fn list_packages(
    State(state): State<AppStateRef>,
    q: Result<Query<PackageQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<List<PackageView>> {
    let q = query(q)?;
    Ok(Json(List { items: state.service.packages(q.name.as_deref()).await?.iter().map(PackageView::from).collect() }))
}

pub async fn create_package(
    State(state): State<AppStateRef>,
    new: Result<Json<NewPackage>, JsonRejection>,
) -> Reply<PackageView> {
    let new = body(new)?;
    let package =
        state.service.create_package(&new.name, &new.version, &new.install_script, &new.uninstall_script).await?;
    Ok(Json(PackageView::from(&package)))
}

pub async fn delete_package(
    State(state): State<AppStateRef>,
    Path((name, version)): Path<(String, String)>,
) -> Reply<PackageView> {
    let package = state
        .service
        .packages(Some(&name))
        .await?
        .into_iter()
        .find(|package| package.version == version)
        .ok_or_else(|| {
            let (name, version) = (values::shown(&name), values::shown(&version));
            ApiError::new(Code::EntityNotExistsPackageVersion, format!("the package {name} has no version {version}"))
        })?;
    state.service.delete_package(&name, &version).await?;
    Ok(Json(PackageView::from(&package)))
}

async fn rolling_update(state: &AppStateRef, id: &ExecutionId) -> Result<RollingUpdateView, ApiError> {
    let (task, counts) = state.service.task_summary(id).await?;
    Ok(RollingUpdateView::new(&task, &counts))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RollingUpdatesQuery {
    scaling_group_id: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
}

pub async fn list_rolling_updates(
    State(state): State<AppStateRef>,
    q: Result<Query<RollingUpdatesQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<List<RollingUpdateView>> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::new(Code::InvalidParameter, "limit must be from 1 to 100"));
    }
    if let Some(status) = q.status.as_deref() {
        status.parse::<TaskStatus>().map_err(|_| {
            ApiError::new(
                Code::InvalidParameter,
                format!(
                    "status \"{}\" is not one of Running, Waiting, Success, Failed, Cancelled",
                    values::shown(status)
                ),
            )
        })?;
    }
    let filter = ExecutionFilter {
        group_id: values::group_filter(q.scaling_group_id.as_deref()),
        status: q.status.clone(),
        include_children: false,
        ..ExecutionFilter::default()
    };
    let (executions, _) = state.service.list_executions(&filter, 0, limit).await?;
    let mut items = Vec::new();
    for execution in executions {
        if let Execution::Task(task) = execution {
            items.push(rolling_update(&state, &task.value.id).await?);
        }
    }
    Ok(Json(List { items }))
}

pub async fn start_rolling_update(
    State(state): State<AppStateRef>,
    new: Result<Json<NewRollingUpdate>, JsonRejection>,
) -> Reply<RollingUpdateView> {
    let new = body(new)?;
    let task =
        state.service.start_rolling_update(crate::starts::rolling_update(&new.template_name, &new.parameters)?).await?;
    Ok(Json(rolling_update(&state, &task.id).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    wait: Option<u64>,
}

/// Most seconds a long poll waits.
const MAX_WAIT_S: u64 = 300;

/// How often a waiting request or a stream looks at the task.
const POLL: Duration = Duration::from_millis(200);

pub async fn get_rolling_update(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    q: Result<Query<WaitQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<RollingUpdateView> {
    let q = query(q)?;
    let wait = q.wait.unwrap_or(0);
    if wait > MAX_WAIT_S {
        return Err(ApiError::new(Code::InvalidParameter, format!("wait must be from 0 to {MAX_WAIT_S} seconds")));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    let id = values::execution_id(&id)?;
    loop {
        let view = rolling_update(&state, &id).await?;
        let stopping = state.shutdown.has_begun();
        if view.finished || view.status == "Waiting" || tokio::time::Instant::now() >= deadline || stopping {
            return Ok(Json(view));
        }
        // The server stopping ends the wait: the task as it stands now.
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = state.shutdown.begun() => {}
        }
    }
}

pub async fn list_rolling_update_instances(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
) -> Reply<List<RollingUpdateInstanceView>> {
    let (_, works) = state.service.task(&values::execution_id(&id)?).await?;
    Ok(Json(List { items: works.iter().map(RollingUpdateInstanceView::from).collect() }))
}

pub async fn continue_rolling_update(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
) -> Reply<RollingUpdateView> {
    let id = values::execution_id(&id)?;
    state.service.continue_task(&id).await?;
    Ok(Json(rolling_update(&state, &id).await?))
}

pub async fn cancel_rolling_update(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Reply<RollingUpdateView> {
    let cancel: CancelRollingUpdate = optional_body(&bytes)?;
    let id = values::execution_id(&id)?;
    state.service.cancel_task(&id, cancel.restore).await?;
    Ok(Json(rolling_update(&state, &id).await?))
}

pub async fn rollback_rolling_update(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> Reply<RollingUpdateView> {
    let rollback: RollbackRollingUpdate = optional_body(&bytes)?;
    let (source, _) = state.service.task(&values::execution_id(&id)?).await?;
    let mut parameters = serde_json::json!({
        "invokeType": "rollback",
        "scalingGroupId": source.spec.group_id,
        "sourceExecutionId": source.id,
    });
    match rollback.parameters {
        None => {}
        Some(serde_json::Value::Object(overrides)) => {
            for (name, value) in overrides {
                parameters[name] = value;
            }
        }
        Some(_) => return Err(ApiError::new(Code::InvalidParameter, "parameters must be a JSON object")),
    }
    let request = crate::starts::rolling_update(source.spec.kind.template_name(), &parameters)?;
    let task = state.service.start_rolling_update(request).await?;
    Ok(Json(rolling_update(&state, &task.id).await?))
}

async fn decide(
    state: &AppStateRef,
    id: &str,
    instance: &str,
    decision: InstanceDecision,
) -> Reply<RollingUpdateInstanceView> {
    let id = values::execution_id(id)?;
    let instance = values::task_instance(instance, &id)?;
    let work = state.service.decide_instance(&id, &instance, decision).await?;
    Ok(Json(RollingUpdateInstanceView::from(&work)))
}

pub async fn retry_instance(
    State(state): State<AppStateRef>,
    Path((id, instance)): Path<(String, String)>,
) -> Reply<RollingUpdateInstanceView> {
    decide(&state, &id, &instance, InstanceDecision::Retry).await
}

pub async fn skip_instance(
    State(state): State<AppStateRef>,
    Path((id, instance)): Path<(String, String)>,
) -> Reply<RollingUpdateInstanceView> {
    decide(&state, &id, &instance, InstanceDecision::Skip).await
}

pub async fn cancel_instance(
    State(state): State<AppStateRef>,
    Path((id, instance)): Path<(String, String)>,
) -> Reply<RollingUpdateInstanceView> {
    decide(&state, &id, &instance, InstanceDecision::Cancel).await
}

/// Where a progress stream stands.
enum Stage {
    /// Sending `progress` at each change; the last one sent, and the first to send.
    Watching {
        last: Option<Box<RollingUpdateView>>,
        first: Option<Box<RollingUpdateView>>,
    },
    /// The task is finished: `end` next.
    Ending,
    Done,
}

/// `progress` with the rolling update at once and whenever it changes, then `end` once it is
/// finished (a task that only waits keeps the stream open, with keep-alives); or `shutdown`,
/// the last event, when the server stops first (the client reconnects, to another replica).
pub async fn stream_rolling_update(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<SseEvent, std::convert::Infallible>>>, ApiError> {
    let id = values::execution_id(&id)?;
    let first = rolling_update(&state, &id).await?;
    let start = Stage::Watching { last: None, first: Some(Box::new(first)) };
    let stream = futures_util::stream::unfold((state, id, start), |(state, id, stage)| async move {
        match stage {
            Stage::Done => None,
            Stage::Ending => Some((Ok(SseEvent::default().event("end").data(id.as_str())), (state, id, Stage::Done))),
            Stage::Watching { last, mut first } => loop {
                let view = match first.take() {
                    Some(view) => view,
                    None => {
                        tokio::select! {
                            () = tokio::time::sleep(POLL) => {}
                            () = state.shutdown.begun() => {
                                let event = SseEvent::default().event("shutdown").data(format!(
                                    "the server is stopping: reconnect to go on following {id}"
                                ));
                                return Some((Ok(event), (state, id, Stage::Done)));
                            }
                        }
                        match rolling_update(&state, &id).await {
                            Ok(view) => Box::new(view),
                            Err(error) => {
                                let event = SseEvent::default().event("error").data(error.message);
                                return Some((Ok(event), (state, id, Stage::Done)));
                            }
                        }
                    }
                };
                if last.as_ref() == Some(&view) {
                    continue;
                }
                let event =
                    SseEvent::default().event("progress").data(serde_json::to_string(&view).unwrap_or_default());
                let next = match view.finished {
                    true => Stage::Ending,
                    false => Stage::Watching { last: Some(view), first: None },
                };
                return Some((Ok(event), (state, id, next)));
            },
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    scaling_group_id: Option<String>,
    execution_id: Option<String>,
    keywords: Option<String>,
    limit: Option<i64>,
}

pub async fn list_events(
    State(state): State<AppStateRef>,
    q: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<List<EventView>> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(Code::InvalidParameter, "limit must be from 1 to 500"));
    }
    let execution_id = values::execution_filter(q.execution_id.as_deref());
    let group_id = values::group_filter(q.scaling_group_id.as_deref());
    let events = match q.keywords.as_deref() {
        Some(keywords) => {
            state.service.search_events(&execution_id, &group_id, &values::keywords(keywords)?, limit).await?
        }
        None => state.service.events(&execution_id, &group_id, limit).await?,
    };
    Ok(Json(List { items: events.iter().map(EventView::from).collect() }))
}

fn policy_type(text: &str) -> Result<PolicyType, ApiError> {
    values::policy_type(text, "policy_type")
}

pub async fn list_users(State(state): State<AppStateRef>) -> Reply<List<UserView>> {
    Ok(Json(List { items: state.service.users(0, 1000).await?.iter().map(UserView::from).collect() }))
}

pub async fn create_user(
    State(state): State<AppStateRef>,
    new: Result<Json<NewUserBody>, JsonRejection>,
) -> Reply<UserView> {
    let new = body(new)?;
    let user = state
        .service
        .create_user(NewUser { name: new.name, display_name: new.display_name, comments: new.comments })
        .await?;
    Ok(Json(UserView::from(&user)))
}

pub async fn get_user(State(state): State<AppStateRef>, Path(name): Path<String>) -> Reply<UserView> {
    Ok(Json(UserView::from(&state.service.user(&name).await?)))
}

pub async fn delete_user(State(state): State<AppStateRef>, Path(name): Path<String>) -> Reply<UserView> {
    let user = state.service.user(&name).await?;
    state.service.delete_user(&name).await?;
    Ok(Json(UserView::from(&user)))
}

async fn keys_of(state: &AppStateRef, name: &str) -> Result<Vec<AccessKeyView>, ApiError> {
    Ok(state.service.access_keys(name).await?.iter().map(|key| AccessKeyView::new(key, false)).collect())
}

pub async fn list_keys(State(state): State<AppStateRef>, Path(name): Path<String>) -> Reply<List<AccessKeyView>> {
    Ok(Json(List { items: keys_of(&state, &name).await? }))
}

pub async fn create_key(State(state): State<AppStateRef>, Path(name): Path<String>) -> Reply<AccessKeyView> {
    let key = state.service.create_access_key(&name).await?;
    Ok(Json(AccessKeyView::new(&key, true)))
}

pub async fn change_key(
    State(state): State<AppStateRef>,
    Path((name, id)): Path<(String, String)>,
    change: Result<Json<AccessKeyChange>, JsonRejection>,
) -> Reply<AccessKeyView> {
    let change = body(change)?;
    let status = values::key_status(&change.status, "status")?;
    state.service.set_access_key_status(&name, &id, status).await?;
    let keys = keys_of(&state, &name).await?;
    keys.into_iter()
        .find(|key| key.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::new(Code::EntityNotExistUserAccessKey, format!("no AccessKey {id} of {name}")))
}

pub async fn delete_key(
    State(state): State<AppStateRef>,
    Path((name, id)): Path<(String, String)>,
) -> Reply<List<AccessKeyView>> {
    state.service.delete_access_key(&name, &id).await?;
    Ok(Json(List { items: keys_of(&state, &name).await? }))
}

async fn policies_of(state: &AppStateRef, name: &str) -> Result<List<PolicyView>, ApiError> {
    let attached = state.service.user_policies(name).await?;
    Ok(List { items: attached.iter().map(|a| PolicyView::new(&a.policy, 0)).collect() })
}

pub async fn list_user_policies(State(state): State<AppStateRef>, Path(name): Path<String>) -> Reply<List<PolicyView>> {
    Ok(Json(policies_of(&state, &name).await?))
}

pub async fn attach_policy(
    State(state): State<AppStateRef>,
    Path(name): Path<String>,
    attachment: Result<Json<PolicyAttachment>, JsonRejection>,
) -> Reply<List<PolicyView>> {
    let attachment = body(attachment)?;
    let kind = policy_type(&attachment.policy_type)?;
    state.service.attach_policy(&name, kind, &attachment.policy_name).await?;
    Ok(Json(policies_of(&state, &name).await?))
}

pub async fn detach_policy(
    State(state): State<AppStateRef>,
    Path((name, kind, policy)): Path<(String, String, String)>,
) -> Reply<List<PolicyView>> {
    state.service.detach_policy(&name, policy_type(&kind)?, &policy).await?;
    Ok(Json(policies_of(&state, &name).await?))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PoliciesQuery {
    policy_type: Option<String>,
}

pub async fn list_policies(
    State(state): State<AppStateRef>,
    q: Result<Query<PoliciesQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<List<PolicyView>> {
    let q = query(q)?;
    let kind = q.policy_type.as_deref().map(policy_type).transpose()?;
    let policies = state.service.policies(kind).await?;
    Ok(Json(List { items: policies.iter().map(|p| PolicyView::new(&p.policy, p.attachment_count)).collect() }))
}

pub async fn create_policy(
    State(state): State<AppStateRef>,
    new: Result<Json<NewPolicy>, JsonRejection>,
) -> Reply<PolicyView> {
    let new = body(new)?;
    let document = match &new.document {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let policy = state.service.create_policy(&new.name, &document, new.description.as_deref().unwrap_or("")).await?;
    Ok(Json(PolicyView::new(&policy, 0)))
}

pub async fn delete_policy(State(state): State<AppStateRef>, Path(name): Path<String>) -> Reply<PolicyView> {
    let info = state.service.policy(PolicyType::Custom, &name).await?;
    state.service.delete_policy(&name).await?;
    Ok(Json(PolicyView::new(&info.policy, 0)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    user_name: Option<String>,
    action: Option<String>,
    result_code: Option<String>,
    limit: Option<i64>,
}

pub async fn list_audit_events(
    State(state): State<AppStateRef>,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<List<AuditEventView>> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::new(Code::InvalidParameter, "limit must be from 1 to 1000"));
    }
    let filter =
        AuditFilter { user_name: q.user_name, action: q.action, result_code: q.result_code, ..AuditFilter::default() };
    let (events, _) = state.service.audit_events(&filter, 0, limit).await?;
    Ok(Json(List { items: events.iter().map(AuditEventView::from).collect() }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TokenQuery {
    ttl: Option<i64>,
}

pub async fn create_token(
    State(state): State<AppStateRef>,
    Extension(caller): Extension<Caller>,
    q: Result<Query<TokenQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<Token> {
    let q = query(q)?;
    let ttl = q.ttl.unwrap_or(3600);
    if !(60..=86_400).contains(&ttl) {
        return Err(ApiError::new(Code::InvalidParameter, "ttl must be from 60 to 86400 seconds"));
    }
    let secret = state
        .service
        .access_key_secret(&caller.access_key_id)
        .await?
        .ok_or_else(|| ApiError::new(Code::InvalidAccessKeyIdInactive, "the AccessKey is not active"))?;
    // A token's session goes on (a renewal), a signature starts one; either way no token
    // outlives the session's maximum age.
    let now = state.service.token_time();
    let session_start = caller.session_start.unwrap_or(now);
    let session_end = session_start.saturating_add(state.auth.token_max_session.as_millis() as i64);
    let expires = now.saturating_add(ttl * 1000).min(session_end);
    let expires_at =
        chrono::DateTime::from_timestamp(expires.div_euclid(1000), 0).map(|t| t.to_rfc3339()).unwrap_or_default();
    let user_name = state.service.access_key_user(&caller.access_key_id).await?;
    let token = make_session_token(&caller.access_key_id, &secret, session_start, expires);
    Ok(Json(Token { token, expires_at, access_key_id: caller.access_key_id, user_name }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ImageUpdateTasksQuery {
    scaling_group_id: Option<String>,
}

pub async fn list_image_update_tasks(
    State(state): State<AppStateRef>,
    q: Result<Query<ImageUpdateTasksQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<List<ImageUpdateTaskView>> {
    let q = query(q)?;
    let tasks = state.service.image_updates(&values::group_filter(q.scaling_group_id.as_deref())).await?;
    Ok(Json(List { items: tasks.iter().map(|task| ImageUpdateTaskView::new(task, &[])).collect() }))
}

pub async fn start_image_update_task(
    State(state): State<AppStateRef>,
    new: Result<Json<NewImageUpdateTask>, JsonRejection>,
) -> Reply<ImageUpdateTaskView> {
    let new = body(new)?;
    let task = state.service.start_image_update(crate::starts::image_update(&new.parameters)?).await?;
    Ok(Json(ImageUpdateTaskView::new(&task, &[])))
}

pub async fn get_image_update_task(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
) -> Reply<ImageUpdateTaskView> {
    let (task, firings) = state.service.image_update(&values::execution_id(&id)?).await?;
    Ok(Json(ImageUpdateTaskView::new(&task, &firings)))
}

pub async fn cancel_image_update_task(
    State(state): State<AppStateRef>,
    Path(id): Path<String>,
) -> Reply<ImageUpdateTaskView> {
    let id = values::execution_id(&id)?;
    state.service.cancel_image_update(&id).await?;
    let (task, firings) = state.service.image_update(&id).await?;
    Ok(Json(ImageUpdateTaskView::new(&task, &firings)))
}

// ------------------------------------------------------------------ alert rules (R15)

fn alert_patterns(body: Vec<AlertPatternBody>) -> Result<Vec<rollscale_core::alert::EventPattern>, ApiError> {
    use rollscale_core::alert::{parse_level, EventPattern, KeywordFilter, Relation};
    let mut patterns = Vec::new();
    for (i, pattern) in body.into_iter().enumerate() {
        let mut levels = Vec::new();
        for level in &pattern.levels {
            if level == "*" {
                continue;
            }
            levels.push(parse_level(level).ok_or_else(|| {
                ApiError::new(
                    Code::InvalidParameter,
                    format!("patterns[{i}].levels: \"{level}\" is not CRITICAL, WARN or INFO"),
                )
            })?);
        }
        let relation = match pattern.relation.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("or") => Relation::Or,
            Some("and") => Relation::And,
            Some(other) => {
                return Err(ApiError::new(
                    Code::InvalidParameter,
                    format!("patterns[{i}].relation: \"{other}\" is not and or or"),
                ))
            }
        };
        let keywords = (!pattern.keywords.is_empty()).then_some(KeywordFilter { keywords: pattern.keywords, relation });
        patterns.push(EventPattern { names: pattern.names, kinds: pattern.kinds, levels, keywords });
    }
    Ok(patterns)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AlertRulesQuery {
    prefix: Option<String>,
}

pub async fn list_alert_rules(
    State(state): State<AppStateRef>,
    q: Result<Query<AlertRulesQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<List<AlertRuleView>> {
    let q = query(q)?;
    let (rules, _) = state.service.alert_rules(q.prefix.as_deref().unwrap_or_default(), 1_000, 0).await?;
    Ok(Json(List { items: rules.iter().map(AlertRuleView::from).collect() }))
}

pub async fn put_alert_rule(
    State(state): State<AppStateRef>,
    Path(name): Path<String>,
    rule: Result<Json<AlertRuleBody>, JsonRejection>,
) -> Reply<AlertRuleView> {
    let rule = body(rule)?;
    let change = rollscale_engine::alerts::RuleChange {
        name,
        description: rule.description,
        enabled: rule.enabled,
        patterns: alert_patterns(rule.patterns)?,
    };
    Ok(Json(AlertRuleView::from(&state.service.put_alert_rule(change).await?)))
}

pub async fn get_alert_rule(State(state): State<AppStateRef>, Path(name): Path<String>) -> Reply<AlertRuleView> {
    Ok(Json(AlertRuleView::from(&state.service.alert_rule(&name).await?)))
}

pub async fn delete_alert_rule(State(state): State<AppStateRef>, Path(name): Path<String>) -> Reply<AlertRuleView> {
    let rule = state.service.alert_rule(&name).await?;
    state.service.delete_alert_rules(&[name]).await?;
    Ok(Json(AlertRuleView::from(&rule)))
}

pub async fn change_alert_rule_state(
    State(state): State<AppStateRef>,
    Path(name): Path<String>,
    change: Result<Json<AlertRuleState>, JsonRejection>,
) -> Reply<AlertRuleView> {
    let enabled = match body(change)?.action.as_str() {
        "enable" => true,
        "disable" => false,
        other => {
            let message = format!("action \"{}\" is not enable or disable", values::shown(other));
            return Err(ApiError::new(Code::InvalidParameter, message));
        }
    };
    state.service.set_alert_rules_enabled(std::slice::from_ref(&name), enabled).await?;
    Ok(Json(AlertRuleView::from(&state.service.alert_rule(&name).await?)))
}

pub async fn put_webhook(
    State(state): State<AppStateRef>,
    Path((name, id)): Path<(String, String)>,
    webhook: Result<Json<WebhookBody>, JsonRejection>,
) -> Reply<AlertRuleView> {
    use rollscale_core::alert::{Webhook, WebhookMethod};
    let webhook = body(webhook)?;
    let method = match webhook.method.as_deref() {
        None => WebhookMethod::Post,
        Some(text) => values::webhook_method(text, "method")?,
    };
    let rule = state.service.put_alert_webhooks(&name, vec![Webhook { id, url: webhook.url, method }]).await?;
    Ok(Json(AlertRuleView::from(&rule)))
}

pub async fn delete_webhook(
    State(state): State<AppStateRef>,
    Path((name, id)): Path<(String, String)>,
) -> Reply<AlertRuleView> {
    Ok(Json(AlertRuleView::from(&state.service.delete_alert_webhooks(&name, &[id]).await?)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeliveriesQuery {
    status: Option<String>,
    limit: Option<i64>,
}

pub async fn list_deliveries(
    State(state): State<AppStateRef>,
    Path(name): Path<String>,
    q: Result<Query<DeliveriesQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply<List<DeliveryView>> {
    let q = query(q)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(Code::InvalidParameter, "limit must be from 1 to 500"));
    }
    let status = q.status.as_deref().map(|text| values::delivery_status(text, "status")).transpose()?;
    let deliveries = state.service.alert_deliveries(Some(&name), status, limit).await?;
    Ok(Json(List { items: deliveries.iter().map(DeliveryView::from).collect() }))
}
