//! Launch templates: named, numbered versions of an instance's image and spec. A scaling group
//! may make its instances from one (its default version, its latest, or a fixed number)
//! instead of a scaling configuration. A rolling image update changes instances, never a
//! template: updating a template is the operator's own step (the seeds say so).

use crate::{now_millis, random_bits, Service, ServiceError};
use rollscale_core::domain::{ContainerSpec, LaunchTemplate, LaunchTemplateVersion, TemplateVersion};
use rollscale_core::ids::LaunchTemplateId;
use rollscale_core::Code;
use rollscale_store::StoreError;

/// A new template version's content.
#[derive(Clone, Debug, Default)]
pub struct NewTemplateVersion {
    pub image_id: String,
    pub instance_type: Option<String>,
    pub containers: Vec<ContainerSpec>,
    pub description: Option<String>,
}

pub(crate) fn template_not_found(id: &LaunchTemplateId) -> ServiceError {
    ServiceError::refused(Code::InvalidLaunchTemplateNotFound, format!("the launch template {id} does not exist"))
}

impl Service {
    async fn template_version_value(
        &self,
        template_id: &LaunchTemplateId,
        version: u32,
        new: NewTemplateVersion,
    ) -> Result<LaunchTemplateVersion, ServiceError> {
        if !self.image_known(&new.image_id).await? {
            return Err(ServiceError::refused(
                Code::InvalidImageIdNotFound,
                format!("the image {} does not exist", new.image_id),
            ));
        }
        let description = new.description.unwrap_or_default();
        rollscale_core::names::check_text("VersionDescription", &description, 256)?;
        Ok(LaunchTemplateVersion {
            template_id: template_id.clone(),
            version,
            image_id: new.image_id,
            instance_type: new.instance_type.unwrap_or_else(|| "ecs.g6.large".into()),
            containers: new.containers,
            description,
            created_at: now_millis(),
        })
    }

    /// Creates a template with its version 1 (its default and latest).
    pub async fn create_launch_template(
        &self,
        name: &str,
        first: NewTemplateVersion,
    ) -> Result<(LaunchTemplate, LaunchTemplateVersion), ServiceError> {
        let valid_name = !name.is_empty()
            && name.len() <= 128
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
            && !name.starts_with("lt-");
        if !valid_name {
            return Err(ServiceError::refused(
                Code::InvalidLaunchTemplateNameMalformed,
                "LaunchTemplateName must be 1 to 128 of A-Z a-z 0-9 - _ . : and not start with lt-",
            ));
        }
        let id = LaunchTemplateId::from_random(random_bits());
        let version = self.template_version_value(&id, 1, first).await?;
        let template = LaunchTemplate {
            id,
            name: name.to_string(),
            default_version: 1,
            latest_version: 1,
            created_at: now_millis(),
        };
        if !self.engine.store.template_create(&template, &version).await? {
            return Err(ServiceError::refused(
                Code::InvalidLaunchTemplateNameDuplicate,
                format!("a launch template named {name} exists"),
            ));
        }
        Ok((template, version))
    }

    /// Adds the next version; it becomes the latest (and the default when `make_default`).
    pub async fn create_launch_template_version(
        &self,
        id: &LaunchTemplateId,
        new: NewTemplateVersion,
        make_default: bool,
    ) -> Result<LaunchTemplateVersion, ServiceError> {
        loop {
            let current = self.engine.store.template_get(id).await?.ok_or_else(|| template_not_found(id))?;
            let mut next = current.value.clone();
            next.latest_version += 1;
            if make_default {
                next.default_version = next.latest_version;
            }
            let version = self.template_version_value(id, next.latest_version, new.clone()).await?;
            match self.engine.store.template_add_version(&next, current.generation, &version).await {
                Ok(_) => return Ok(version),
                Err(StoreError::Conflict { .. }) => continue,
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Makes an existing version the default.
    pub async fn set_default_template_version(
        &self,
        id: &LaunchTemplateId,
        version: u32,
    ) -> Result<LaunchTemplate, ServiceError> {
        self.engine
            .template_modify(id, |mut next| async move {
                if version == 0 || version > next.latest_version {
                    return Err(ServiceError::refused(
                        Code::InvalidLaunchTemplateVersionNotFound,
                        format!("the launch template {id} has no version {version}"),
                    ));
                }
                next.default_version = version;
                Ok(next)
            })
            .await?
            .ok_or_else(|| template_not_found(id))
    }

    pub async fn launch_templates(&self) -> Result<Vec<LaunchTemplate>, ServiceError> {
        Ok(self.engine.store.template_list().await?.into_iter().map(|t| t.value).collect())
    }

    pub async fn launch_template(&self, id: &LaunchTemplateId) -> Result<LaunchTemplate, ServiceError> {
        Ok(self.engine.store.template_get(id).await?.ok_or_else(|| template_not_found(id))?.value)
    }

    pub async fn launch_template_versions(
        &self,
        id: &LaunchTemplateId,
    ) -> Result<Vec<LaunchTemplateVersion>, ServiceError> {
        self.engine.store.template_get(id).await?.ok_or_else(|| template_not_found(id))?;
        Ok(self.engine.store.template_versions(id).await?)
    }

    /// The version a group's `version` reference names now.
    pub async fn resolve_template_version(
        &self,
        id: &LaunchTemplateId,
        version: TemplateVersion,
    ) -> Result<LaunchTemplateVersion, ServiceError> {
        let template = self.engine.store.template_get(id).await?.ok_or_else(|| template_not_found(id))?;
        let number = version.resolve(&template.value);
        self.engine.store.template_version_get(id, number).await?.ok_or_else(|| {
            ServiceError::refused(
                Code::InvalidLaunchTemplateVersionNotFound,
                format!("the launch template {id} has no version {number}"),
            )
        })
    }
}
