//! Image update tasks: the template `ACS-ESS-CreateImageAndUpdateScalingConfiguration` makes a
//! custom image from a source instance and puts it into scaling configurations, now, once at a
//! time, or periodically until an expiry.
//!
//! Its executions are plain data with their transitions: a scheduled task is a parent
//! execution (Waiting between firings) that starts one child execution per firing; a child, or a
//! task that runs now, is a [`Firing`] of two journaled steps (make the image, then update the
//! configurations). Every transition takes the time as an argument.

use crate::domain::Millis;
use crate::error::CoreError;
use crate::ids::{ExecutionId, InstanceId, ScalingConfigurationId};
use crate::schedule::{compact_utc, Schedule, TimerTrigger};
use crate::task::TaskStatus;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The OOS public template's name.
pub const TEMPLATE_NAME: &str = "ACS-ESS-CreateImageAndUpdateScalingConfiguration";

/// The template's parameters (and `regionId`, which every template takes and is ignored).
const PARAMETERS: &[&str] =
    &["instanceId", "targetImageName", "scalingConfigurationIds", "tags", "OOSAssumeRole", "timerTrigger", "regionId"];

const MAX_CONFIGURATIONS: usize = 100;
const MAX_TAGS: usize = 20;

/// A tag for the made image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageTag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value", default)]
    pub value: String,
}

/// What an image update task does, checked and fixed at its start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUpdateSpec {
    pub instance_id: InstanceId,
    /// The image name before its `_on_<execution>_at_<time>` suffix, `{{ instanceId }}`
    /// substituted.
    pub target_image_name: String,
    pub configuration_ids: Vec<ScalingConfigurationId>,
    pub tags: Vec<ImageTag>,
    pub assume_role: String,
    /// `None`: runs now. A child execution's spec has none.
    pub trigger: Option<TimerTrigger>,
    /// The groups of the configurations, as found at the start (filled in by the service,
    /// which looks them up): what events and `?scalingGroupId=` name.
    #[serde(default)]
    pub group_ids: Vec<crate::ids::ScalingGroupId>,
}

impl ImageUpdateSpec {
    /// The template's `Parameters` as OOS shows them back (the child's have no trigger).
    pub fn parameters(&self) -> Value {
        let mut map = Map::new();
        map.insert("instanceId".into(), Value::String(self.instance_id.to_string()));
        map.insert("targetImageName".into(), Value::String(self.target_image_name.clone()));
        map.insert(
            "scalingConfigurationIds".into(),
            Value::Array(self.configuration_ids.iter().map(|id| Value::String(id.to_string())).collect()),
        );
        map.insert("tags".into(), serde_json::to_value(&self.tags).unwrap_or(Value::Null));
        map.insert("OOSAssumeRole".into(), Value::String(self.assume_role.clone()));
        if let Some(trigger) = &self.trigger {
            map.insert("timerTrigger".into(), serde_json::to_value(trigger).unwrap_or(Value::Null));
        }
        Value::Object(map)
    }

    /// The trigger's schedule, as fixed at `created_at` (a `rate` without StartDate counts
    /// from there).
    pub fn schedule(&self, created_at: Millis) -> Option<Schedule> {
        self.trigger.as_ref().and_then(|trigger| trigger.compile(created_at).ok())
    }
}

/// Checks an image name as the template does: 2–128 characters, starting with a letter, not
/// with `http://` or `https://`, and only letters, digits, `:`, `_` and `-`.
pub fn check_image_name(name: &str) -> Result<(), CoreError> {
    let bad = |why: &str| CoreError::invalid("targetImageName", format!("{name:?} {why}"));
    let length = name.chars().count();
    if !(2..=128).contains(&length) {
        return Err(bad("must be 2 to 128 characters"));
    }
    if !name.chars().next().is_some_and(|c| c.is_alphabetic()) {
        return Err(bad("must start with a letter"));
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("http:") || lower.starts_with("https:") {
        return Err(bad("must not start with http:// or https://"));
    }
    if !name.chars().all(|c| c.is_alphanumeric() || matches!(c, ':' | '_' | '-')) {
        return Err(bad("may only hold letters, digits, ':', '_' and '-'"));
    }
    Ok(())
}

/// Reads the template's `Parameters`: every parameter checked, unknown ones refused. Its
/// schedule, which depends on when it starts, is [`ImageUpdateSpec::schedule`]'s. Checks against
/// the store (the instance and configurations exist, ECS groups) are the service's.
pub fn parse_start(params: &Value) -> Result<ImageUpdateSpec, CoreError> {
    let empty = Map::new();
    let params = match params {
        Value::Object(map) => map,
        Value::Null => &empty,
        _ => return Err(CoreError::invalid("Parameters", "must be a JSON object")),
    };
    for name in params.keys() {
        if !PARAMETERS.contains(&name.as_str()) {
            return Err(CoreError::invalid(
                name,
                format!("is not a parameter of {TEMPLATE_NAME} (it takes {})", PARAMETERS.join(", ")),
            ));
        }
    }
    let text = |name: &str| -> Result<Option<String>, CoreError> {
        match params.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(CoreError::invalid(name, "must be a string")),
        }
    };
    let instance_text = text("instanceId")?.ok_or_else(|| CoreError::MissingParameter("instanceId".into()))?;
    let instance_id = InstanceId::parse(&instance_text)
        .ok_or_else(|| CoreError::invalid("instanceId", format!("{instance_text:?} is not an instance id (i-…)")))?;
    let target_image_name = text("targetImageName")?
        .unwrap_or_else(|| "UpdateImage_from_{{ instanceId }}".to_string())
        .replace("{{ instanceId }}", instance_id.as_str())
        .replace("{{instanceId}}", instance_id.as_str());
    check_image_name(&target_image_name)?;

    let configurations = match params.get("scalingConfigurationIds") {
        None | Some(Value::Null) => return Err(CoreError::MissingParameter("scalingConfigurationIds".into())),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(CoreError::invalid("scalingConfigurationIds", "must be a list of asc-… ids")),
    };
    if configurations.is_empty() {
        return Err(CoreError::invalid("scalingConfigurationIds", "must name at least one scaling configuration"));
    }
    if configurations.len() > MAX_CONFIGURATIONS {
        return Err(CoreError::invalid("scalingConfigurationIds", format!("names more than {MAX_CONFIGURATIONS}")));
    }
    let mut configuration_ids: Vec<ScalingConfigurationId> = Vec::with_capacity(configurations.len());
    for item in configurations {
        let id = item.as_str().and_then(ScalingConfigurationId::parse).ok_or_else(|| {
            CoreError::invalid("scalingConfigurationIds", format!("{item} is not a scaling configuration id (asc-…)"))
        })?;
        if configuration_ids.contains(&id) {
            return Err(CoreError::invalid("scalingConfigurationIds", format!("names {id} twice")));
        }
        configuration_ids.push(id);
    }

    let tags = match params.get("tags") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if s.trim().is_empty() => Vec::new(),
        // A Json parameter may come as its text.
        Some(Value::String(s)) => parse_tags(
            &serde_json::from_str(s).map_err(|_| CoreError::invalid("tags", "must be a list of {Key, Value}"))?,
        )?,
        Some(value) => parse_tags(value)?,
    };
    let assume_role = text("OOSAssumeRole")?.unwrap_or_default();

    let trigger = match params.get("timerTrigger") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) => Some(TimerTrigger::from_value(
            &serde_json::from_str(s).map_err(|_| CoreError::invalid("timerTrigger", "must be a JSON object"))?,
        )?),
        Some(value) => Some(TimerTrigger::from_value(value)?),
    };
    if trigger.is_some() && assume_role.trim().is_empty() {
        return Err(CoreError::invalid(
            "OOSAssumeRole",
            "is required for a scheduled or periodic image update task (the RAM role OOS assumes to run it)",
        ));
    }
    Ok(ImageUpdateSpec {
        instance_id,
        target_image_name,
        configuration_ids,
        tags,
        assume_role,
        trigger,
        group_ids: vec![],
    })
}

impl ImageUpdateSpec {
    /// The schedule of a task starting at `now`, checked: `None` without a trigger (it fires
    /// at once); refused when the trigger has no firing left after `now`.
    pub fn first_schedule(&self, now: Millis) -> Result<Option<Schedule>, CoreError> {
        self.trigger.as_ref().map(|trigger| trigger.schedule(now)).transpose()
    }
}

fn parse_tags(value: &Value) -> Result<Vec<ImageTag>, CoreError> {
    let bad = |why: String| CoreError::invalid("tags", why);
    let Value::Array(items) = value else { return Err(bad("must be a list of {Key, Value}".into())) };
    if items.len() > MAX_TAGS {
        return Err(bad(format!("has more than {MAX_TAGS} tags")));
    }
    let mut tags: Vec<ImageTag> = Vec::with_capacity(items.len());
    for item in items {
        let tag: ImageTag =
            serde_json::from_value(item.clone()).map_err(|_| bad(format!("{item} is not a {{Key, Value}}")))?;
        if tag.key.is_empty() || tag.key.chars().count() > 128 || tag.value.chars().count() > 128 {
            return Err(bad(format!("{item}: Key must be 1 to 128 characters, Value at most 128")));
        }
        if tags.iter().any(|t| t.key == tag.key) {
            return Err(bad(format!("has the Key {:?} twice", tag.key)));
        }
        tags.push(tag);
    }
    Ok(tags)
}

/// One firing's journal: make the image (looked up by its name first, so a redo after a
/// crash finds the one made before), then update every configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Firing {
    pub fired_at: Millis,
    /// The full image name: `<targetImageName>_on_<execution id>_at_<UTC firing time>`.
    pub image_name: String,
    /// Set once the image exists: the configurations' update is next.
    pub image_id: Option<String>,
    /// The configurations whose image was set (in the order of the spec).
    pub updated: Vec<ScalingConfigurationId>,
}

/// A scheduled task's progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleState {
    /// `None` once no firing is left before the expiry.
    pub next_fire_at: Option<Millis>,
    pub firings: u32,
    /// The child execution running now.
    pub current_child: Option<ExecutionId>,
    /// The image the last successful firing made.
    pub last_image_id: Option<String>,
}

/// An execution of the template: a scheduled parent (`schedule`), or a firing (`firing`): a
/// task that runs now, or a parent's child.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUpdateExecution {
    pub id: ExecutionId,
    pub parent_id: Option<ExecutionId>,
    pub spec: ImageUpdateSpec,
    pub status: TaskStatus,
    pub status_message: String,
    pub schedule: Option<ScheduleState>,
    pub firing: Option<Firing>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub ended_at: Option<Millis>,
}

fn image_name(spec: &ImageUpdateSpec, execution: &ExecutionId, at: Millis) -> String {
    format!("{}_on_{}_at_{}", spec.target_image_name, execution, compact_utc(at))
}

impl ImageUpdateExecution {
    /// A task without a trigger: one execution that fires at once.
    pub fn run_now(id: ExecutionId, spec: ImageUpdateSpec, now: Millis) -> ImageUpdateExecution {
        let firing = Firing { fired_at: now, image_name: image_name(&spec, &id, now), image_id: None, updated: vec![] };
        ImageUpdateExecution {
            id,
            parent_id: None,
            spec,
            status: TaskStatus::Running,
            status_message: String::new(),
            schedule: None,
            firing: Some(firing),
            created_at: now,
            updated_at: now,
            ended_at: None,
        }
    }

    /// A task with a trigger: Waiting for its first firing.
    pub fn scheduled(id: ExecutionId, spec: ImageUpdateSpec, first: Millis, now: Millis) -> ImageUpdateExecution {
        ImageUpdateExecution {
            id,
            parent_id: None,
            spec,
            status: TaskStatus::Waiting,
            status_message: String::new(),
            schedule: Some(ScheduleState {
                next_fire_at: Some(first),
                firings: 0,
                current_child: None,
                last_image_id: None,
            }),
            firing: None,
            created_at: now,
            updated_at: now,
            ended_at: None,
        }
    }

    /// Whether a scheduled parent is due to start a child at `now`: its next firing has come
    /// and its expiry has not (a firing missed while the service was down is made at restart
    /// only while the task has not expired).
    pub fn is_due(&self, now: Millis) -> bool {
        let before_the_end = || self.spec.schedule(self.created_at).and_then(|s| s.end).is_none_or(|end| now < end);
        self.status == TaskStatus::Waiting
            && self
                .schedule
                .as_ref()
                .is_some_and(|s| s.current_child.is_none() && s.next_fire_at.is_some_and(|at| at <= now))
            && before_the_end()
    }

    /// A due parent fires at `now`: the child execution to create, and the parent, Running
    /// with it, its next firing the first slot after `now` (slots missed while the service was
    /// down are not made up: one firing for all of them).
    pub fn fire(
        &self,
        child_id: ExecutionId,
        now: Millis,
    ) -> Result<(ImageUpdateExecution, ImageUpdateExecution), CoreError> {
        let not_due = || CoreError::IncorrectExecutionStatus(format!("the execution {} is not due to fire", self.id));
        if !self.is_due(now) {
            return Err(not_due());
        }
        let mut spec = self.spec.clone();
        spec.trigger = None;
        let mut child = ImageUpdateExecution::run_now(child_id.clone(), spec, now);
        child.parent_id = Some(self.id.clone());
        let mut parent = self.clone();
        let schedule = parent.schedule.as_mut().ok_or_else(not_due)?;
        let slot = schedule.next_fire_at.unwrap_or(now);
        schedule.next_fire_at = self.spec.schedule(self.created_at).and_then(|s| s.next_after(now.max(slot)));
        schedule.firings += 1;
        schedule.current_child = Some(child_id);
        parent.status = TaskStatus::Running;
        parent.updated_at = now;
        Ok((parent, child))
    }

    /// The parent after its current child ended: Waiting for the next firing, or Success
    /// when none is left. A cancelled parent stays cancelled.
    pub fn child_ended(&self, child: &ImageUpdateExecution, now: Millis) -> ImageUpdateExecution {
        let mut parent = self.clone();
        if let Some(schedule) = parent.schedule.as_mut() {
            if schedule.current_child.as_ref() == Some(&child.id) {
                schedule.current_child = None;
            }
            if child.status == TaskStatus::Success {
                schedule.last_image_id = child.firing.as_ref().and_then(|f| f.image_id.clone());
            }
            if !parent.status.is_final() {
                parent.status = TaskStatus::Waiting;
            }
        }
        parent.updated_at = now;
        parent.expire(now).unwrap_or(parent)
    }

    /// When no firing is left, no child is in flight and the expiry has come (at once for an
    /// `at` trigger, which has none), a parent ends Success; `None` while it has not.
    pub fn expire(&self, now: Millis) -> Option<ImageUpdateExecution> {
        let schedule = self.schedule.as_ref()?;
        let end = self.spec.schedule(self.created_at).and_then(|s| s.end);
        let over = self.status == TaskStatus::Waiting
            && schedule.current_child.is_none()
            && match end {
                // Its expiry has come (a firing missed while down, past it, is not made).
                Some(end) => now >= end,
                None => schedule.next_fire_at.is_none(),
            };
        over.then(|| {
            let mut parent = self.clone();
            parent.status = TaskStatus::Success;
            parent.ended_at = Some(now);
            parent.updated_at = now;
            parent
        })
    }

    /// CancelExecution of a scheduled task: no further firing; a child in flight finishes.
    /// A firing itself cannot be cancelled halfway (it is two short steps).
    pub fn cancel(&self, now: Millis) -> Result<ImageUpdateExecution, CoreError> {
        if self.status.is_final() {
            return Err(CoreError::IncorrectExecutionStatus(format!(
                "the execution {} is {} already",
                self.id, self.status
            )));
        }
        if self.schedule.is_none() {
            return Err(CoreError::IncorrectExecutionStatus(format!(
                "the execution {} is a firing in progress; it finishes on its own (cancel its scheduled task to stop \
                 later firings)",
                self.id
            )));
        }
        let mut next = self.clone();
        next.status = TaskStatus::Cancelled;
        next.status_message = "cancelled: no further firing".into();
        if let Some(schedule) = next.schedule.as_mut() {
            schedule.next_fire_at = None;
        }
        next.ended_at = Some(now);
        next.updated_at = now;
        Ok(next)
    }

    /// The firing made (or found) its image.
    pub fn image_made(&self, image_id: &str, now: Millis) -> ImageUpdateExecution {
        let mut next = self.clone();
        if let Some(firing) = next.firing.as_mut() {
            if firing.image_id.is_none() {
                firing.image_id = Some(image_id.to_string());
            }
        }
        next.updated_at = now;
        next
    }

    /// The firing set the image of every configuration: Success.
    pub fn configurations_updated(&self, now: Millis) -> ImageUpdateExecution {
        let mut next = self.clone();
        if let Some(firing) = next.firing.as_mut() {
            firing.updated = next.spec.configuration_ids.clone();
        }
        next.status = TaskStatus::Success;
        next.ended_at = Some(now);
        next.updated_at = now;
        next
    }

    /// The firing failed; `message` says why.
    pub fn failed(&self, message: impl Into<String>, now: Millis) -> ImageUpdateExecution {
        let mut next = self.clone();
        next.status = TaskStatus::Failed;
        next.status_message = message.into();
        next.ended_at = Some(now);
        next.updated_at = now;
        next
    }

    /// The image the template outputs (`imageId`): a firing's once it succeeded; a parent's
    /// last one.
    pub fn output_image(&self) -> Option<&str> {
        let image = match (&self.firing, &self.schedule) {
            (Some(firing), _) => firing.image_id.as_deref(),
            (None, Some(schedule)) => schedule.last_image_id.as_deref(),
            _ => None,
        };
        image.filter(|_| self.status == TaskStatus::Success || self.schedule.is_some())
    }

    /// The template's outputs as JSON: `{"imageId": …}` with [`Self::output_image`], or `{}`.
    pub fn outputs(&self) -> Value {
        match self.output_image() {
            Some(image) => serde_json::json!({ "imageId": image }),
            None => serde_json::json!({}),
        }
    }
}
