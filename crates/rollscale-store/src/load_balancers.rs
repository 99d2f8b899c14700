//! Load balancers and their backend weights.

use crate::{to_json, versioned, Store, StoreError, Versioned};
use rollscale_core::domain::{Backend, LoadBalancer};
use rollscale_core::ids::{InstanceId, LoadBalancerId};
use sqlx::Row;

impl Store {
    pub async fn lb_insert(&self, lb: &LoadBalancer, created_at: i64) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO load_balancers (id, body, created_at, generation) VALUES ($1, $2, $3, 1)")
            .bind(lb.id.as_str())
            .bind(to_json(lb))
            .bind(created_at)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    pub async fn lb_get(&self, id: &LoadBalancerId) -> Result<Option<Versioned<LoadBalancer>>, StoreError> {
        let row = sqlx::query("SELECT body, generation FROM load_balancers WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|row| versioned("load balancer", &row)).transpose()
    }

    pub async fn lb_list(&self) -> Result<Vec<Versioned<LoadBalancer>>, StoreError> {
        let rows = sqlx::query("SELECT body, generation FROM load_balancers ORDER BY created_at, id")
            .fetch_all(&mut *self.conn().await?)
            .await?;
        rows.iter().map(|row| versioned("load balancer", row)).collect()
    }

    /// Sets the instance's weight in the load balancer, registering it when new.
    pub async fn backend_put(&self, backend: &Backend) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO lb_backends (lb_id, instance_id, weight) VALUES ($1, $2, $3) \
             ON CONFLICT (lb_id, instance_id) DO UPDATE SET weight = excluded.weight",
        )
        .bind(backend.load_balancer_id.as_str())
        .bind(backend.instance_id.as_str())
        .bind(i64::from(backend.weight))
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Sets the weight of a registered instance that is not in Standby (no weight
    /// remembered); returns whether it did. One statement, so it cannot interleave with
    /// [`Store::backend_zero_weights`].
    pub async fn backend_set_weight(
        &self,
        lb: &LoadBalancerId,
        instance: &InstanceId,
        weight: u32,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE lb_backends SET weight = $3 WHERE lb_id = $1 AND instance_id = $2 AND saved_weight < 0",
        )
        .bind(lb.as_str())
        .bind(instance.as_str())
        .bind(i64::from(weight))
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn backend_delete(&self, lb: &LoadBalancerId, instance: &InstanceId) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM lb_backends WHERE lb_id = $1 AND instance_id = $2")
            .bind(lb.as_str())
            .bind(instance.as_str())
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    /// The backends of one load balancer, or those of one instance.
    pub async fn backend_list(
        &self,
        lb: Option<&LoadBalancerId>,
        instance: Option<&InstanceId>,
    ) -> Result<Vec<Backend>, StoreError> {
        // One statement per filter, each with a plain equality: a `($1 = '' OR …)` condition
        // keeps the planner from using an index, and the per-instance lookup (every Drain step)
        // would scan the whole table.
        let rows = match (lb, instance) {
            (Some(lb), Some(instance)) => {
                sqlx::query("SELECT lb_id, instance_id, weight FROM lb_backends WHERE lb_id = $1 AND instance_id = $2")
                    .bind(lb.as_str())
                    .bind(instance.as_str())
                    .fetch_all(&mut *self.conn().await?)
                    .await?
            }
            (Some(lb), None) => {
                sqlx::query("SELECT lb_id, instance_id, weight FROM lb_backends WHERE lb_id = $1 ORDER BY instance_id")
                    .bind(lb.as_str())
                    .fetch_all(&mut *self.conn().await?)
                    .await?
            }
            (None, Some(instance)) => {
                sqlx::query("SELECT lb_id, instance_id, weight FROM lb_backends WHERE instance_id = $1 ORDER BY lb_id")
                    .bind(instance.as_str())
                    .fetch_all(&mut *self.conn().await?)
                    .await?
            }
            (None, None) => {
                sqlx::query("SELECT lb_id, instance_id, weight FROM lb_backends ORDER BY lb_id, instance_id")
                    .fetch_all(&mut *self.conn().await?)
                    .await?
            }
        };
        let mut backends = Vec::with_capacity(rows.len());
        for row in rows {
            let lb_text: String = row.try_get(0)?;
            let instance_text: String = row.try_get(1)?;
            let weight: i64 = row.try_get(2)?;
            if let (Some(load_balancer_id), Some(instance_id)) =
                (LoadBalancerId::parse(&lb_text), InstanceId::parse(&instance_text))
            {
                backends.push(Backend {
                    load_balancer_id,
                    instance_id,
                    weight: weight.clamp(0, u32::MAX.into()) as u32,
                });
            }
        }
        Ok(backends)
    }

    /// EnterStandby's weight change for every load balancer of the instance: remembers each
    /// weight (unless one is already remembered, so a redo keeps the first) and sets it to 0.
    /// Returns the remembered weights.
    ///
    /// One statement, so one atomic write without a transaction's extra round trips; the
    /// right-hand sides of `SET` all see the row as it was before (SQLite and PostgreSQL alike).
    pub async fn backend_zero_weights(&self, instance: &InstanceId) -> Result<Vec<(LoadBalancerId, u32)>, StoreError> {
        let rows = sqlx::query(
            "UPDATE lb_backends SET saved_weight = CASE WHEN saved_weight < 0 THEN weight ELSE saved_weight END, \
             weight = 0 WHERE instance_id = $1 RETURNING lb_id, saved_weight",
        )
        .bind(instance.as_str())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        weights_of(rows)
    }

    /// ExitStandby's weight change: puts back the remembered weights and forgets them.
    /// Returns the weights now in force, for the driver to apply. One statement, as above.
    pub async fn backend_restore_weights(
        &self,
        instance: &InstanceId,
    ) -> Result<Vec<(LoadBalancerId, u32)>, StoreError> {
        let rows = sqlx::query(
            "UPDATE lb_backends SET weight = CASE WHEN saved_weight >= 0 THEN saved_weight ELSE weight END, \
             saved_weight = -1 WHERE instance_id = $1 RETURNING lb_id, weight",
        )
        .bind(instance.as_str())
        .fetch_all(&mut *self.conn().await?)
        .await?;
        weights_of(rows)
    }
}

/// `(lb_id, weight)` rows as weights, ordered by load balancer (`RETURNING` has no order).
fn weights_of(rows: Vec<sqlx::any::AnyRow>) -> Result<Vec<(LoadBalancerId, u32)>, StoreError> {
    let mut weights = Vec::with_capacity(rows.len());
    for row in rows {
        let lb_text: String = row.try_get(0)?;
        let weight: i64 = row.try_get(1)?;
        if let Some(lb) = LoadBalancerId::parse(&lb_text) {
            weights.push((lb, weight.clamp(0, u32::MAX.into()) as u32));
        }
    }
    weights.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    Ok(weights)
}

#[cfg(test)]
mod tests {
    use rollscale_core::ids::{InstanceId, LoadBalancerId};

    #[tokio::test]
    async fn standby_weights_are_remembered_once_and_restored_once() {
        let (_dir, store) = crate::testing::fresh_store().await;
        let instance = InstanceId::from_random(1);
        let other = InstanceId::from_random(2);
        let (a, b) = (LoadBalancerId::from_random(10), LoadBalancerId::from_random(11));
        for (lb, id, weight) in [(&b, &instance, 30), (&a, &instance, 70), (&a, &other, 50)] {
            store
                .backend_put(&rollscale_core::domain::Backend {
                    load_balancer_id: lb.clone(),
                    instance_id: id.clone(),
                    weight,
                })
                .await
                .expect("put");
        }
        let mut expected = vec![(a.clone(), 70), (b.clone(), 30)];
        expected.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
        assert_eq!(store.backend_zero_weights(&instance).await.expect("zero"), expected);
        // A redo keeps the first remembered weights, not the zeros.
        assert_eq!(store.backend_zero_weights(&instance).await.expect("zero again"), expected);
        let now: Vec<u32> =
            store.backend_list(None, Some(&instance)).await.unwrap().iter().map(|backend| backend.weight).collect();
        assert_eq!(now, vec![0, 0]);
        assert_eq!(store.backend_restore_weights(&instance).await.expect("restore"), expected);
        assert_eq!(store.backend_restore_weights(&instance).await.expect("restore again"), expected);
        let listed = store.backend_list(Some(&a), None).await.unwrap();
        assert_eq!(listed.len(), 2, "both instances behind {a}");
        assert_eq!(store.backend_list(Some(&a), Some(&other)).await.unwrap()[0].weight, 50, "untouched");
        assert_eq!(store.backend_list(None, None).await.unwrap().len(), 3);
    }
}
