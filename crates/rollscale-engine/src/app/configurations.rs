//! Scaling configurations: create, query, modify, and making one the group's active one.

use super::{GroupChanges, Service};
use crate::error::{configuration_not_found, group_not_found};
use crate::{now_millis, random_bits, ServiceError};
use rollscale_core::domain::*;
use rollscale_core::ids::*;
use rollscale_core::Code;

/// A new scaling configuration (of the group `Service::create_configuration` is given).
#[derive(Clone, Debug, Default)]
pub struct NewConfiguration {
    pub name: Option<String>,
    pub image_id: String,
    pub instance_type: Option<String>,
    pub containers: Vec<ContainerSpec>,
}

impl Service {
    /// `CreateScalingConfiguration`: a name and an instance type that are not given (or empty)
    /// default to the configuration's id and `sim.small`; given ones are checked by
    /// `core::group`.
    pub async fn create_configuration(
        &self,
        group_id: &ScalingGroupId,
        new: NewConfiguration,
    ) -> Result<ScalingConfiguration, ServiceError> {
        let name = new.name.filter(|name| !name.is_empty());
        if let Some(name) = &name {
            rollscale_core::group::check_configuration_name(name)?;
        }
        let instance_type = new.instance_type.filter(|kind| !kind.is_empty());
        if let Some(kind) = &instance_type {
            rollscale_core::group::check_name("InstanceType", kind)?;
        }
        let group = self.store().group_get(group_id).await?.ok_or_else(|| group_not_found(group_id))?;
        if !self.image_known(&new.image_id).await? {
            return Err(ServiceError::refused(
                Code::InvalidImageIdNotFound,
                format!("the image {} does not exist", new.image_id),
            ));
        }
        let id = ScalingConfigurationId::from_random(random_bits());
        let configuration = ScalingConfiguration {
            name: name.unwrap_or_else(|| id.to_string()),
            id,
            group_id: group_id.clone(),
            image_id: new.image_id,
            instance_type: instance_type.unwrap_or_else(|| "sim.small".into()),
            state: ConfigurationState::Inactive,
            containers: new.containers,
            created_at: now_millis(),
        };
        self.store().configuration_insert(&configuration).await?;
        // The group's first configuration becomes its active one.
        if group.value.source == InstanceSource::None {
            self.modify_group(
                group_id,
                GroupChanges { active_configuration_id: Some(configuration.id.clone()), ..Default::default() },
            )
            .await?;
            return Ok(ScalingConfiguration { state: ConfigurationState::Active, ..configuration });
        }
        Ok(configuration)
    }

    /// The configurations, of a group when given, of the ids given (`None`: all).
    pub async fn configurations(
        &self,
        group_id: Option<&ScalingGroupId>,
        ids: Option<&[ScalingConfigurationId]>,
    ) -> Result<Vec<ScalingConfiguration>, ServiceError> {
        Ok(self
            .store()
            .configuration_list(group_id)
            .await?
            .into_iter()
            .map(|c| c.value)
            .filter(|c| ids.is_none_or(|ids| ids.contains(&c.id)))
            .collect())
    }

    /// `ModifyScalingConfiguration`: name and image (new instances only; running ones are
    /// changed by a rolling update). A name given is checked by `core::group`.
    pub async fn modify_configuration(
        &self,
        id: &ScalingConfigurationId,
        name: Option<String>,
        image_id: Option<String>,
    ) -> Result<ScalingConfiguration, ServiceError> {
        if let Some(name) = &name {
            rollscale_core::group::check_configuration_name(name)?;
        }
        if let Some(image_id) = &image_id {
            if !self.image_known(image_id).await? {
                return Err(ServiceError::refused(
                    Code::InvalidImageIdNotFound,
                    format!("the image {image_id} does not exist"),
                ));
            }
        }
        let (name, image_id) = (&name, &image_id);
        self.engine
            .configuration_modify(id, |mut next| async move {
                if let Some(name) = name {
                    next.name.clone_from(name);
                }
                if let Some(image_id) = image_id {
                    next.image_id.clone_from(image_id);
                }
                Ok(next)
            })
            .await?
            .ok_or_else(|| configuration_not_found(id))
    }

    pub(super) async fn activate_configuration(
        &self,
        group: &mut ScalingGroup,
        configuration_id: &ScalingConfigurationId,
    ) -> Result<(), ServiceError> {
        let configurations = self.store().configuration_list(Some(&group.id)).await?;
        if !configurations.iter().any(|c| &c.value.id == configuration_id) {
            return Err(ServiceError::refused(
                Code::InvalidScalingConfigurationIdNotFound,
                format!("the scaling configuration {configuration_id} does not exist in {}", group.id),
            ));
        }
        for configuration in configurations {
            let state = if &configuration.value.id == configuration_id {
                ConfigurationState::Active
            } else {
                ConfigurationState::Inactive
            };
            if configuration.value.state != state {
                let mut next = configuration.value.clone();
                next.state = state;
                self.store().configuration_update(&next, configuration.generation).await?;
            }
        }
        group.source = InstanceSource::Configuration(configuration_id.clone());
        Ok(())
    }
}
