//! OOS packages and their versions (install and uninstall scripts).

use super::Service;
use crate::{now_millis, ServiceError};
use rollscale_core::domain::*;
use rollscale_core::Code;

impl Service {
    pub async fn create_package(
        &self,
        name: &str,
        version: &str,
        install_script: &str,
        uninstall_script: &str,
    ) -> Result<PackageVersion, ServiceError> {
        let valid = |s: &str| {
            !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        };
        if !valid(name) || !valid(version) {
            return Err(ServiceError::refused(
                Code::InvalidParameter,
                "package name and version must be 1 to 64 of A-Z a-z 0-9 - _ .",
            ));
        }
        let package = PackageVersion {
            name: name.into(),
            version: version.into(),
            install_script: install_script.into(),
            uninstall_script: uninstall_script.into(),
            created_at: now_millis(),
        };
        self.store().package_insert(&package).await?;
        Ok(package)
    }

    pub async fn packages(&self, name: Option<&str>) -> Result<Vec<PackageVersion>, ServiceError> {
        Ok(self.store().package_list(name).await?)
    }

    pub async fn delete_package(&self, name: &str, version: &str) -> Result<(), ServiceError> {
        if !self.store().package_delete(name, version).await? {
            return Err(ServiceError::refused(
                Code::EntityNotExistsPackageVersion,
                format!("the package {name} has no version {version}"),
            ));
        }
        Ok(())
    }
}
