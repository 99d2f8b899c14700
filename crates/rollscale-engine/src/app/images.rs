//! The image catalog: images added by id, made from an instance, found on the fleet, deleted.

use super::Service;
use crate::{now_millis, ServiceError};
use rollscale_core::domain::*;
use rollscale_core::ids::*;
use rollscale_core::Code;
use rollscale_store::StoreError;

impl Service {
    /// `CreateImage` with `ImageId`: adds the image to the catalog (and so undoes a
    /// `DeleteImage` of it: the fleet's copy may be put into the catalog again).
    pub async fn create_image(&self, id: &str, name: Option<&str>, os: Option<OsType>) -> Result<Image, ServiceError> {
        let image = image_value(id, name, os)?;
        self.store().image_insert(&image).await?;
        Ok(image)
    }

    /// `CreateImage` with `InstanceId`: a custom image made from the instance as it is now
    /// (on the container fleet, a commit of its main container), put into the catalog under
    /// the id the fleet gives it. `name` defaults to `from_<instance id>_at_<UTC time>`.
    pub async fn create_image_from_instance(&self, id: &InstanceId, name: Option<&str>) -> Result<Image, ServiceError> {
        let instance = self.store().instance_get(id).await?.ok_or_else(|| crate::error::instance_not_found(id))?.value;
        if matches!(instance.lifecycle_state, LifecycleState::Pending | LifecycleState::Removing) {
            return Err(ServiceError::refused(
                Code::IncorrectInstanceStatus,
                format!("the instance {id} is {}; an image is made from a running instance", instance.lifecycle_state),
            ));
        }
        let now = now_millis();
        let name = match name {
            Some(name) => name.to_string(),
            None => format!("from_{id}_at_{}", compact_utc(now)),
        };
        check_image_name(&name)?;
        let images = self.images().await?;
        if images.iter().any(|image| image.name == name) {
            return Err(ServiceError::refused(
                Code::InvalidImageNameDuplicated,
                format!("an image named {name:?} already exists"),
            ));
        }
        let fleet = &self.engine.fleet;
        let image_id = match self.engine.retry_unknown(|| fleet.create_image(id, &name)).await {
            Ok(image_id) => image_id,
            Err(rollscale_fleet::FleetError::NotFound(_)) => {
                return Err(ServiceError::refused(
                    Code::IncorrectInstanceStatus,
                    format!("the instance {id} does not exist on the {} fleet", fleet.name()),
                ))
            }
            Err(rollscale_fleet::FleetError::Unsupported(message)) => {
                return Err(ServiceError::refused(Code::OperationDenied, message))
            }
            Err(error) => return Err(error.into()),
        };
        let os = images
            .iter()
            .find(|image| image.id == instance.image_id)
            .map_or_else(|| OsType::guess(&instance.image_id), |image| image.os);
        let image = Image { id: image_id, name, kind: "custom".into(), os, created_at: now };
        match self.store().image_insert(&image).await {
            Ok(()) => {}
            // Listed from the fleet meanwhile: the catalog has it already.
            Err(StoreError::AlreadyExists { .. }) => {
                if let Some(existing) = self.store().image_get(&image.id).await? {
                    return Ok(existing);
                }
            }
            Err(error) => return Err(error.into()),
        }
        tracing::info!(instance_id = %id, image = %image.id, "image made from an instance");
        Ok(image)
    }

    /// Whether the catalog has the image. When it does not, the fleet is asked for that one
    /// image (one built on the container host after rollscale started), which is put into the
    /// catalog unless a `DeleteImage` removed it; so R3's check refuses only images that exist
    /// nowhere or were deleted. Nothing else is added.
    pub(crate) async fn image_known(&self, id: &str) -> Result<bool, ServiceError> {
        if self.store().image_get(id).await?.is_some() {
            return Ok(true);
        }
        let found = match self.engine.fleet.find_image(id).await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(image = id, %error, "the fleet could not be asked for the image");
                return Ok(false);
            }
        };
        let Some(found) = found else { return Ok(false) };
        let Ok(image) = image_value(id, None, Some(found.os)) else { return Ok(false) };
        match self.store().image_insert_discovered(&image).await {
            Ok(true) => tracing::info!(image = id, "an image of the fleet put into the catalog"),
            Ok(false) => tracing::debug!(image = id, "the image was deleted from the catalog; not added again"),
            Err(StoreError::AlreadyExists { .. }) => {} // added meanwhile
            Err(error) => return Err(error.into()),
        }
        Ok(self.store().image_get(id).await?.is_some())
    }

    /// Puts every image the fleet has and the catalog lacks into the catalog (by each of its
    /// names), except those a `DeleteImage` removed; returns how many were added. Run by
    /// `rollscale up` at start.
    pub async fn sync_fleet_images(&self) -> Result<usize, ServiceError> {
        let known: std::collections::HashSet<String> = self.images().await?.into_iter().map(|image| image.id).collect();
        let mut added = 0;
        for image in self.engine.fleet.list_images().await? {
            for tag in image.tags.iter().filter(|tag| !known.contains(*tag) && !tag.contains("<none>")) {
                let Ok(value) = image_value(tag, None, Some(image.os)) else {
                    tracing::debug!(%tag, "an image name the catalog cannot hold");
                    continue;
                };
                match self.store().image_insert_discovered(&value).await {
                    Ok(true) => added += 1,
                    Ok(false) | Err(StoreError::AlreadyExists { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
            }
        }
        Ok(added)
    }

    pub async fn images(&self) -> Result<Vec<Image>, ServiceError> {
        Ok(self.store().image_list().await?)
    }

    pub async fn delete_image(&self, id: &str) -> Result<(), ServiceError> {
        for configuration in self.store().configuration_list(None).await? {
            if configuration.value.image_id == id {
                return Err(ServiceError::refused(
                    Code::ImageInUse,
                    format!("the image {id} is used by the scaling configuration {}", configuration.value.id),
                ));
            }
        }
        if !self.store().image_delete(id, now_millis()).await? {
            return Err(ServiceError::refused(Code::InvalidImageIdNotFound, format!("the image {id} does not exist")));
        }
        Ok(())
    }
}

/// A catalog entry for `id`, checked: cloud image ids and container image references
/// (`localhost/rollscale-demo:v1`).
fn image_value(id: &str, name: Option<&str>, os: Option<OsType>) -> Result<Image, ServiceError> {
    if id.is_empty() || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b)) {
        return Err(ServiceError::refused(
            Code::InvalidParameter,
            "ImageId must be 1 to 128 of A-Z a-z 0-9 - _ . : / @",
        ));
    }
    if let Some(name) = name {
        check_image_name(name)?;
    }
    Ok(Image {
        id: id.to_string(),
        name: name.unwrap_or(id).to_string(),
        kind: "custom".into(),
        os: os.unwrap_or_else(|| OsType::guess(id)),
        created_at: now_millis(),
    })
}

/// An image's name (`ImageName`), by the one rule of names, refused as ECS refuses it.
fn check_image_name(name: &str) -> Result<(), ServiceError> {
    rollscale_core::names::check("ImageName", name, rollscale_core::names::LONG)
        .map_err(|error| ServiceError::refused(Code::InvalidImageNameMalformed, error.to_string()))
}

/// `20240501T120000Z`: a UTC time that fits in an image name.
fn compact_utc(millis: Millis) -> String {
    let seconds = millis.div_euclid(1000);
    let (days, second) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z", second / 3600, second % 3600 / 60, second % 60)
}
