//! Load balancers and their backends' weights (`SetBackendServers`).

use super::Service;
use crate::{now_millis, random_bits, ServiceError};
use rollscale_core::domain::*;
use rollscale_core::ids::*;
use rollscale_core::Code;

impl Service {
    pub async fn load_balancers(&self) -> Result<Vec<LoadBalancer>, ServiceError> {
        Ok(self.store().lb_list().await?.into_iter().map(|lb| lb.value).collect())
    }

    pub async fn create_load_balancer(&self, name: &str, default_weight: u32) -> Result<LoadBalancer, ServiceError> {
        rollscale_core::names::check("LoadBalancerName", name, rollscale_core::names::LONG)?;
        if default_weight > 100 {
            return Err(ServiceError::refused(
                Code::InvalidParameter,
                "a load balancer's default weight must be 0 to 100",
            ));
        }
        let lb = LoadBalancer { id: LoadBalancerId::from_random(random_bits()), name: name.into(), default_weight };
        self.store().lb_insert(&lb, now_millis()).await?;
        Ok(lb)
    }

    /// `SetBackendServers`: the weights of instances registered with a load balancer (as SLB's
    /// action of that name). Each instance must be InService or Protected: one in Standby gets
    /// back the weight it had when it entered Standby. All are checked before any changes.
    pub async fn set_backend_weights(
        &self,
        lb: &LoadBalancerId,
        weights: &[(InstanceId, u32)],
    ) -> Result<(), ServiceError> {
        if self.store().lb_get(lb).await?.is_none() {
            return Err(ServiceError::refused(
                Code::InvalidLoadBalancerIdNotFound,
                format!("the load balancer {lb} does not exist"),
            ));
        }
        if weights.is_empty() {
            return Err(ServiceError::refused(Code::MissingParameter, "BackendServers names no server"));
        }
        let mut checked = Vec::with_capacity(weights.len());
        for (id, weight) in weights {
            let current = self.store().instance_get(id).await?.ok_or_else(|| crate::error::instance_not_found(id))?;
            if *weight > 100 {
                return Err(ServiceError::refused(
                    Code::InvalidParameter,
                    "a backend server's weight must be 0 to 100",
                ));
            }
            if self.store().backend_list(Some(lb), Some(id)).await?.is_empty() {
                return Err(ServiceError::refused(
                    Code::InvalidBackendServerNotFound,
                    format!("the instance {id} is not a backend server of {lb}"),
                ));
            }
            if !matches!(current.value.lifecycle_state, LifecycleState::InService | LifecycleState::Protected) {
                return Err(ServiceError::refused(
                    Code::IncorrectInstanceStatus,
                    format!(
                        "the instance {id} is {}; only the weight of an InService instance can be set",
                        current.value.lifecycle_state
                    ),
                ));
            }
            checked.push((id, *weight));
        }
        for (id, weight) in checked {
            if !self.store().backend_set_weight(lb, id, weight).await? {
                return Err(ServiceError::refused(
                    Code::IncorrectInstanceStatus,
                    format!("the instance {id} entered Standby meanwhile; its weight is not changed"),
                ));
            }
            let driver = &self.engine.lb;
            self.engine.retry_unknown(|| driver.set_weight(lb, id, weight)).await?;
            // Entered Standby between the two writes: the driver must have what the store has.
            if let Some(now) = self.store().backend_list(Some(lb), Some(id)).await?.first() {
                if now.weight != weight {
                    self.engine.retry_unknown(|| driver.set_weight(lb, id, now.weight)).await?;
                }
            }
        }
        Ok(())
    }
}
