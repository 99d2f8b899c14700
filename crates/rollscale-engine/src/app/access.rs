//! Users, AccessKeys, policies, authorization and the audit log: the service calls of RAM,
//! for the RPC API (`ram`, 2015-05-01), the REST API and the CLI.
//!
//! Every API call is authorized with [`Service::authorize`] after its signature is checked:
//! the caller's AccessKey names a user, the user's attached policies are evaluated by
//! `rollscale_core::policy::evaluate` (explicit Deny > Allow > implicit deny). System policies
//! are built in; custom ones are in the store. AccessKey secrets leave the service only when a
//! key is created; everywhere else they are blanked.

use crate::{now_millis, random_bits, Service, ServiceError};
use rollscale_core::access::{valid_policy_name, valid_user_name, Attachment, AuditEvent, AuditFilter, Policy, User};
use rollscale_core::domain::{AccessKey, AccessKeyStatus};
use rollscale_core::policy::{
    evaluate, system_policy, Decision, PolicyDocument, PolicyType, ADMINISTRATOR_ACCESS, SYSTEM_POLICIES,
};
use rollscale_core::Code;
use std::time::Duration;

/// A new audit event's id: its time, then a sequence number of this process, then random
/// bits (`ae-` and 20 hex digits). The log lists newest first by time and then by id, so two
/// calls in the same millisecond keep the order in which they were recorded.
fn audit_event_id(at: rollscale_core::domain::Millis) -> String {
    static SEQUENCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let sequence = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) & 0xffff;
    format!("ae-{:011x}{sequence:04x}{:05x}", (at as u64) & 0x7ff_ffff_ffff, random_bits() & 0xfffff)
}

/// Most AccessKeys a user may have at once (RAM's limit).
pub const MAX_KEYS_PER_USER: usize = 2;

/// How much of the audit log is kept, and how the audit pruner
/// ([`Service::spawn_audit_pruner`]) deletes the rest.
#[derive(Clone, Debug)]
pub struct AuditRetention {
    /// Events older than this are deleted; `None`: whatever their age.
    pub max_age: Option<Duration>,
    /// Only the newest this many events are kept (and those of the same millisecond as the
    /// oldest of them); `None`: however many.
    pub max_rows: Option<u64>,
    /// How often the pruner runs (the log may exceed its limits by what arrives meanwhile).
    pub every: Duration,
    /// Most events one statement deletes, oldest first: how long the store is held at a time.
    pub batch: i64,
    /// The pause between two batches, in which other writers get the store.
    pub pause: Duration,
}

/// [`AuditRetention::max_age`] by default: 30 days.
pub const AUDIT_MAX_AGE: Duration = Duration::from_secs(30 * 24 * 3600);
/// [`AuditRetention::max_rows`] by default.
pub const AUDIT_MAX_ROWS: u64 = 1_000_000;

impl Default for AuditRetention {
    fn default() -> Self {
        AuditRetention {
            max_age: Some(AUDIT_MAX_AGE),
            max_rows: Some(AUDIT_MAX_ROWS),
            every: Duration::from_secs(60),
            batch: 1000,
            pause: Duration::from_millis(10),
        }
    }
}

/// A new user.
#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub name: String,
    pub display_name: Option<String>,
    pub comments: Option<String>,
}

/// A policy with how many users it is attached to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyInfo {
    pub policy: Policy,
    pub attachment_count: i64,
}

fn user_not_found(name: &str) -> ServiceError {
    ServiceError::refused(Code::EntityNotExistUser, format!("the user {name} does not exist"))
}

fn policy_not_found(policy_type: PolicyType, name: &str) -> ServiceError {
    ServiceError::refused(Code::EntityNotExistPolicy, format!("the {policy_type} policy {name} does not exist"))
}

fn key_not_found(user_name: &str, id: &str) -> ServiceError {
    ServiceError::refused(Code::EntityNotExistUserAccessKey, format!("the user {user_name} has no AccessKey {id}"))
}

/// A system policy as a [`Policy`] (built in: created "at" the epoch).
fn system(policy: &rollscale_core::policy::SystemPolicy) -> Policy {
    Policy {
        name: policy.name.into(),
        policy_type: PolicyType::System,
        description: policy.description.into(),
        document: policy.document.into(),
        created_at: 0,
        updated_at: 0,
    }
}

/// What a change takes away from the administrators (see `keep_an_administrator`).
#[derive(Clone, Copy)]
enum Removal<'a> {
    User(&'a str),
    AdministratorAccess(&'a str),
    Key(&'a str, &'a str),
}

/// A new Active AccessKey pair for `user_name`, not yet stored.
fn new_key(user_name: &str) -> AccessKey {
    AccessKey {
        id: format!("LTAI{:020x}", random_bits() & ((1u128 << 80) - 1)),
        secret: format!("{:032x}{:030x}", random_bits(), random_bits() & ((1u128 << 120) - 1)),
        user_name: user_name.into(),
        status: AccessKeyStatus::Active,
        created_at: now_millis(),
        tokens_not_before: 0,
    }
}

fn blank_secret(mut key: AccessKey) -> AccessKey {
    key.secret = String::new();
    key
}

impl Service {
    // ------------------------------------------------------------------ users

    pub async fn create_user(&self, new: NewUser) -> Result<User, ServiceError> {
        if !valid_user_name(&new.name) {
            return Err(ServiceError::refused(
                Code::InvalidParameterUserName,
                "UserName must be 1 to 64 characters: letters, digits, '.', '_' or '-'",
            ));
        }
        for (name, value) in [("DisplayName", &new.display_name), ("Comments", &new.comments)] {
            rollscale_core::names::check_text(name, value.as_deref().unwrap_or_default(), 128)?;
        }
        let now = now_millis();
        let user = User {
            id: format!("{:016}", random_bits() % 10_000_000_000_000_000),
            display_name: new.display_name.filter(|d| !d.is_empty()).unwrap_or_else(|| new.name.clone()),
            comments: new.comments.unwrap_or_default(),
            name: new.name,
            created_at: now,
            updated_at: now,
        };
        match self.engine.store.user_insert(&user).await {
            Err(rollscale_store::StoreError::AlreadyExists { .. }) => Err(ServiceError::refused(
                Code::EntityAlreadyExistsUser,
                format!("the user {} already exists", user.name),
            )),
            other => other.map(|()| user).map_err(Into::into),
        }
    }

    pub async fn user(&self, name: &str) -> Result<User, ServiceError> {
        self.engine.store.user_get(name).await?.ok_or_else(|| user_not_found(name))
    }

    /// Users by name, `limit` from `offset`.
    pub async fn users(&self, offset: i64, limit: i64) -> Result<Vec<User>, ServiceError> {
        Ok(self.engine.store.user_list(offset, limit).await?)
    }

    /// Deletes a user, with its AccessKeys (which stop working at once) and attachments.
    pub async fn delete_user(&self, name: &str) -> Result<(), ServiceError> {
        self.keep_an_administrator(Removal::User(name)).await?;
        if !self.engine.store.user_delete(name).await? {
            return Err(user_not_found(name));
        }
        Ok(())
    }

    // ------------------------------------------------------------------ AccessKeys

    /// A new AccessKey pair for an existing user; the secret is in the answer and nowhere
    /// else (stored sealed, never logged). That the user exists and has fewer than
    /// [`MAX_KEYS_PER_USER`] keys is checked by the store inside the inserting transaction, so
    /// a concurrent `delete_user` or a second `create_access_key` cannot slip in between.
    pub async fn create_access_key(&self, user_name: &str) -> Result<AccessKey, ServiceError> {
        let key = new_key(user_name);
        match self.engine.store.access_key_insert(&key, MAX_KEYS_PER_USER as i64).await {
            Ok(()) => Ok(key),
            Err(rollscale_store::StoreError::Missing { .. }) => Err(user_not_found(user_name)),
            Err(rollscale_store::StoreError::LimitExceeded { .. }) => Err(ServiceError::refused(
                Code::LimitExceededUserAccessKey,
                format!("the user {user_name} has {MAX_KEYS_PER_USER} AccessKeys already; delete one first"),
            )),
            Err(other) => Err(other.into()),
        }
    }

    /// The administrator's AccessKey (`rollscale up`, bootstrap only): the user is created
    /// when missing, and has AdministratorAccess.
    pub async fn create_admin_access_key(&self, user_name: &str) -> Result<AccessKey, ServiceError> {
        if !valid_user_name(user_name) {
            return Err(ServiceError::refused(Code::InvalidParameterUserName, "not a valid user name"));
        }
        let key = new_key(user_name);
        self.engine.store.access_key_insert_bootstrap(&key).await?;
        Ok(key)
    }

    /// A user's AccessKeys, oldest first, without their secrets.
    pub async fn access_keys(&self, user_name: &str) -> Result<Vec<AccessKey>, ServiceError> {
        self.user(user_name).await?;
        Ok(self.engine.store.access_key_list(user_name).await?.into_iter().map(blank_secret).collect())
    }

    /// Enables (`Active`) or disables (`Inactive`) a user's AccessKey.
    pub async fn set_access_key_status(
        &self,
        user_name: &str,
        id: &str,
        status: AccessKeyStatus,
    ) -> Result<(), ServiceError> {
        self.user(user_name).await?;
        if status == AccessKeyStatus::Inactive {
            self.keep_an_administrator(Removal::Key(user_name, id)).await?;
        }
        // A disable revokes every token made until now, for good (`tokens_not_before`).
        if !self.engine.store.access_key_set_status(user_name, id, status, self.token_time()).await? {
            return Err(key_not_found(user_name, id));
        }
        Ok(())
    }

    pub async fn delete_access_key(&self, user_name: &str, id: &str) -> Result<(), ServiceError> {
        self.user(user_name).await?;
        self.keep_an_administrator(Removal::Key(user_name, id)).await?;
        if !self.engine.store.access_key_delete(user_name, id).await? {
            return Err(key_not_found(user_name, id));
        }
        Ok(())
    }

    /// The AccessKey `id` with its secret and status, for checking a signature; `None` when
    /// it does not exist (or its user was deleted).
    pub async fn signing_key(&self, id: &str) -> Result<Option<AccessKey>, ServiceError> {
        Ok(self.engine.store.access_key_get(id).await?)
    }

    /// The user an AccessKey belongs to.
    pub async fn access_key_user(&self, id: &str) -> Result<String, ServiceError> {
        match self.engine.store.access_key_get(id).await? {
            Some(key) => Ok(key.user_name),
            None => Err(ServiceError::refused(
                Code::InvalidAccessKeyIdNotFound,
                format!("the AccessKey {id} does not exist"),
            )),
        }
    }

    // ------------------------------------------------------------------ policies

    pub async fn create_policy(&self, name: &str, document: &str, description: &str) -> Result<Policy, ServiceError> {
        if !valid_policy_name(name) {
            return Err(ServiceError::refused(
                Code::InvalidParameterPolicyName,
                "PolicyName must be 1 to 128 characters: letters, digits or '-'",
            ));
        }
        rollscale_core::names::check_text("Description", description, 1024)?;
        PolicyDocument::parse(document).map_err(|error| ServiceError::refused(error.code(), error.to_string()))?;
        if system_policy(name).is_some() {
            return Err(ServiceError::refused(
                Code::EntityAlreadyExistsPolicy,
                format!("{name} is the name of a system policy"),
            ));
        }
        let now = now_millis();
        let policy = Policy {
            name: name.into(),
            policy_type: PolicyType::Custom,
            description: description.into(),
            document: document.into(),
            created_at: now,
            updated_at: now,
        };
        match self.engine.store.policy_insert(&policy).await {
            Err(rollscale_store::StoreError::AlreadyExists { .. }) => {
                Err(ServiceError::refused(Code::EntityAlreadyExistsPolicy, format!("the policy {name} already exists")))
            }
            other => other.map(|()| policy).map_err(Into::into),
        }
    }

    pub async fn policy(&self, policy_type: PolicyType, name: &str) -> Result<PolicyInfo, ServiceError> {
        let policy = match policy_type {
            PolicyType::System => system_policy(name).map(system),
            PolicyType::Custom => self.engine.store.policy_get(name).await?,
        }
        .ok_or_else(|| policy_not_found(policy_type, name))?;
        let attachment_count = self
            .engine
            .store
            .policy_attachment_counts()
            .await?
            .into_iter()
            .find(|(t, n, _)| *t == policy_type && n == name)
            .map_or(0, |(_, _, count)| count);
        Ok(PolicyInfo { policy, attachment_count })
    }

    /// System policies first, then custom ones, each by name; `policy_type` filters.
    pub async fn policies(&self, policy_type: Option<PolicyType>) -> Result<Vec<PolicyInfo>, ServiceError> {
        let counts = self.engine.store.policy_attachment_counts().await?;
        let mut policies: Vec<Policy> = Vec::new();
        if policy_type != Some(PolicyType::Custom) {
            let mut systems: Vec<Policy> = SYSTEM_POLICIES.iter().map(system).collect();
            systems.sort_by(|a, b| a.name.cmp(&b.name));
            policies.extend(systems);
        }
        if policy_type != Some(PolicyType::System) {
            policies.extend(self.engine.store.policy_list().await?);
        }
        Ok(policies
            .into_iter()
            .map(|policy| {
                let attachment_count = counts
                    .iter()
                    .find(|(t, n, _)| *t == policy.policy_type && *n == policy.name)
                    .map_or(0, |(_, _, count)| *count);
                PolicyInfo { policy, attachment_count }
            })
            .collect())
    }

    /// Deletes a custom policy that is attached to no one.
    pub async fn delete_policy(&self, name: &str) -> Result<(), ServiceError> {
        if system_policy(name).is_some() {
            return Err(ServiceError::refused(
                Code::InvalidParameterPolicyType,
                format!("{name} is a system policy; system policies cannot be deleted"),
            ));
        }
        match self.engine.store.policy_delete(name).await? {
            None => Err(policy_not_found(PolicyType::Custom, name)),
            Some(0) => Ok(()),
            Some(users) => Err(ServiceError::refused(
                Code::DeleteConflictPolicyUser,
                format!("the policy {name} is attached to {users} user(s); detach it first"),
            )),
        }
    }

    pub async fn attach_policy(
        &self,
        user_name: &str,
        policy_type: PolicyType,
        name: &str,
    ) -> Result<(), ServiceError> {
        self.user(user_name).await?;
        self.policy(policy_type, name).await?;
        // Checked again by the store inside the attaching transaction: a user or policy deleted
        // since is refused as missing, and gets no attachment.
        let attached = match self.engine.store.user_policy_attach(user_name, policy_type, name, now_millis()).await {
            Err(rollscale_store::StoreError::Missing { what: "user", .. }) => return Err(user_not_found(user_name)),
            Err(rollscale_store::StoreError::Missing { .. }) => return Err(policy_not_found(policy_type, name)),
            other => other?,
        };
        if !attached {
            return Err(ServiceError::refused(
                Code::EntityAlreadyExistsUserPolicy,
                format!("the {policy_type} policy {name} is already attached to the user {user_name}"),
            ));
        }
        Ok(())
    }

    pub async fn detach_policy(
        &self,
        user_name: &str,
        policy_type: PolicyType,
        name: &str,
    ) -> Result<(), ServiceError> {
        self.user(user_name).await?;
        if policy_type == PolicyType::System && name == ADMINISTRATOR_ACCESS {
            self.keep_an_administrator(Removal::AdministratorAccess(user_name)).await?;
        }
        if !self.engine.store.user_policy_detach(user_name, policy_type, name).await? {
            return Err(ServiceError::refused(
                Code::EntityNotExistUserPolicy,
                format!("the {policy_type} policy {name} is not attached to the user {user_name}"),
            ));
        }
        Ok(())
    }

    /// Refuses a change that would leave no Active AccessKey of a user with AdministratorAccess:
    /// nobody could administer rollscale any more, not even to undo the change. (Two such
    /// changes at once are not serialised against each other.)
    async fn keep_an_administrator(&self, removal: Removal<'_>) -> Result<(), ServiceError> {
        let store = &self.engine.store;
        let (mut affected, mut remaining) = (false, 0);
        for user in store.user_list(0, i64::from(u32::MAX)).await? {
            let policies = store.user_policy_list(&user.name).await?;
            if !policies.iter().any(|(t, n, _)| *t == PolicyType::System && n == ADMINISTRATOR_ACCESS) {
                continue;
            }
            for key in store.access_key_list(&user.name).await? {
                if key.status != AccessKeyStatus::Active {
                    continue;
                }
                let removed = match removal {
                    Removal::User(name) | Removal::AdministratorAccess(name) => name == user.name,
                    Removal::Key(name, id) => name == user.name && id == key.id,
                };
                match removed {
                    true => affected = true,
                    false => remaining += 1,
                }
            }
        }
        if affected && remaining == 0 {
            return Err(ServiceError::refused(
                Code::InvalidOperationLastAdministrator,
                "this would leave no active AccessKey of a user with AdministratorAccess, and nobody could \
                 administer rollscale; give another user AdministratorAccess and an AccessKey first",
            ));
        }
        Ok(())
    }

    /// The policies attached to a user, in the order attached.
    pub async fn user_policies(&self, user_name: &str) -> Result<Vec<Attachment>, ServiceError> {
        self.user(user_name).await?;
        let mut attached = Vec::new();
        for (policy_type, name, attached_at) in self.engine.store.user_policy_list(user_name).await? {
            let policy = match policy_type {
                PolicyType::System => system_policy(&name).map(system),
                PolicyType::Custom => self.engine.store.policy_get(&name).await?,
            };
            // A custom policy is deleted only when detached from everyone: always found.
            if let Some(policy) = policy {
                attached.push(Attachment { policy, attached_at });
            }
        }
        Ok(attached)
    }

    // ------------------------------------------------------------------ authorization

    /// Whether the AccessKey's user may do `action` (`product:Action`) on `resource` (`*` or
    /// an `acs:…` name): an explicit Deny refuses, then an Allow permits, and anything not
    /// allowed is refused, with `Forbidden.RAM` naming the action.
    pub async fn authorize(&self, access_key_id: &str, action: &str, resource: &str) -> Result<(), ServiceError> {
        let user_name = self.access_key_user(access_key_id).await?;
        let mut documents = Vec::new();
        for (policy_type, name, _) in self.engine.store.user_policy_list(&user_name).await? {
            let text = match policy_type {
                PolicyType::System => system_policy(&name).map(|p| p.document.to_string()),
                PolicyType::Custom => self.engine.store.policy_get(&name).await?.map(|p| p.document),
            };
            // Stored documents were validated when created; one that no longer parses
            // allows nothing.
            if let Some(document) = text.and_then(|text| PolicyDocument::parse(&text).ok()) {
                documents.push(document);
            }
        }
        let why = match evaluate(&documents, action, resource) {
            Decision::Allow => return Ok(()),
            Decision::ExplicitDeny => "a policy denies it explicitly",
            Decision::ImplicitDeny => "no policy of the user allows it",
        };
        Err(ServiceError::refused(
            Code::ForbiddenRAM,
            format!("You are not authorized to do action: {action} (user {user_name}, resource {resource}: {why})"),
        ))
    }

    // ------------------------------------------------------------------ audit log

    /// Records a call. An `authenticated` one (its signature or token verified) is the user's
    /// of its AccessKey, filled in when empty. Any other is nobody's: its AccessKey id is only
    /// what the request claims, which anyone can write, so its user is left empty (and
    /// `audit_events` filtered by user does not list it) while the claimed id stays visible.
    pub async fn record_audit(&self, mut event: AuditEvent, authenticated: bool) -> Result<(), ServiceError> {
        if !authenticated {
            event.user_name.clear();
        } else if event.user_name.is_empty() {
            event.user_name = self.access_key_user(&event.access_key_id).await.unwrap_or_default();
        }
        if event.at == 0 {
            event.at = now_millis();
        }
        if event.id.is_empty() {
            event.id = audit_event_id(event.at);
        }
        Ok(self.engine.store.audit_insert(&event).await?)
    }

    /// Audit events, newest first, `limit` from `offset`, and how many match.
    pub async fn audit_events(
        &self,
        filter: &AuditFilter,
        offset: i64,
        limit: i64,
    ) -> Result<(Vec<AuditEvent>, i64), ServiceError> {
        Ok(self.engine.store.audit_list(filter, offset, limit).await?)
    }

    /// One pass of the audit pruner: deletes the events older than `max_age` (by the engine's
    /// clock) and those beyond the newest `max_rows`, oldest first, `batch` at a time with a
    /// `pause` between batches; returns how many it deleted. What it deletes is fixed by a time
    /// taken at its start, so a pass ends however fast new events arrive, and two replicas'
    /// passes at once delete the same events.
    pub async fn prune_audit_log(&self, retention: &AuditRetention) -> Result<u64, ServiceError> {
        let store = &self.engine.store;
        let now = self.engine.config.clock.now();
        let by_age =
            retention.max_age.map(|age| now.saturating_sub(i64::try_from(age.as_millis()).unwrap_or(i64::MAX)));
        let by_rows = match retention.max_rows {
            Some(rows) => store.audit_time_keeping(i64::try_from(rows).unwrap_or(i64::MAX)).await?,
            None => None,
        };
        let Some(before) = by_age.max(by_rows) else { return Ok(0) };
        let batch = retention.batch.max(1);
        let mut pruned = 0;
        loop {
            let deleted = store.audit_prune_before(before, batch).await?;
            pruned += deleted;
            if deleted < batch as u64 {
                return Ok(pruned);
            }
            tokio::time::sleep(retention.pause).await;
        }
    }

    /// The audit pruner: a pass of [`Service::prune_audit_log`] at once and then every
    /// `retention.every`, on the replica that runs the reconciler (every replica's passes
    /// would delete the same events: one is enough).
    pub fn spawn_audit_pruner(&self, retention: AuditRetention) -> tokio::task::JoinHandle<()> {
        let service = self.clone();
        let handle = tokio::spawn(async move {
            loop {
                match service.lead_reconciler().await {
                    Ok(true) => match service.prune_audit_log(&retention).await {
                        Ok(0) => tracing::debug!("audit log within its retention"),
                        Ok(pruned) => tracing::info!(pruned, "audit log pruned: events beyond its retention deleted"),
                        Err(error) => tracing::warn!(%error, "could not prune the audit log"),
                    },
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "could not take the reconciler's lease"),
                }
                tokio::time::sleep(retention.every).await;
            }
        });
        self.engine.track(handle.abort_handle());
        handle
    }
}

impl Service {
    /// The time bearer tokens are checked and issued by, and a disable revokes them at: the
    /// engine's clock (`EngineConfig::clock`; a test's `ManualClock`).
    pub fn token_time(&self) -> rollscale_core::domain::Millis {
        self.engine.config.clock.now()
    }

    /// The secret of an Active AccessKey, for signature checks.
    pub async fn access_key_secret(&self, id: &str) -> Result<Option<String>, ServiceError> {
        Ok(self.store().access_key_get(id).await?.filter(|k| k.status == AccessKeyStatus::Active).map(|k| k.secret))
    }

    /// Records a request nonce; `false` when it was seen within its lifetime.
    pub async fn use_nonce(&self, nonce: &str, lifetime: Duration) -> Result<bool, ServiceError> {
        let now = now_millis();
        Ok(self.store().nonce_use(nonce, now, now + lifetime.as_millis() as i64).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Engine, EngineConfig};
    use rollscale_fleet::sim::{SimConfig, SimFleet, SimLbConfig, SimLoadBalancer};
    use rollscale_store::Store;
    use std::sync::Arc;

    async fn service() -> (tempfile::TempDir, Service) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("store");
        let fleet = SimFleet::new(SimConfig { latency_ms: 0, ..SimConfig::default() });
        let lb = SimLoadBalancer::new(SimLbConfig::default());
        let engine = Engine::new(store, Arc::new(fleet), Arc::new(lb), EngineConfig::default());
        (dir, Service::new(engine))
    }

    fn code<T: std::fmt::Debug>(result: Result<T, ServiceError>) -> Code {
        result.expect_err("refused").code()
    }

    #[tokio::test]
    async fn a_user_can_do_what_its_policies_allow_and_nothing_else() {
        let (_dir, service) = service().await;
        let admin = service.create_admin_access_key("admin").await.unwrap();
        service.authorize(&admin.id, "ess:DeleteScalingGroup", "*").await.unwrap();

        service.create_user(NewUser { name: "alice".into(), ..NewUser::default() }).await.unwrap();
        let key = service.create_access_key("alice").await.unwrap();
        assert_eq!(code(service.authorize(&key.id, "ess:DescribeScalingGroups", "*").await), "Forbidden.RAM");
        service.attach_policy("alice", PolicyType::System, "AliyunESSReadOnlyAccess").await.unwrap();
        service.authorize(&key.id, "ess:DescribeScalingGroups", "*").await.unwrap();
        let denied = service.authorize(&key.id, "oos:StartExecution", "*").await.unwrap_err();
        assert_eq!(denied.code(), "Forbidden.RAM");
        assert!(denied.to_string().starts_with("You are not authorized to do action: oos:StartExecution"), "{denied}");

        // A custom Deny beats the admin policy's Allow.
        service
            .create_policy(
                "NoDeletes",
                r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":"ess:Delete*","Resource":"*"}]}"#,
                "",
            )
            .await
            .unwrap();
        service.attach_policy("alice", PolicyType::System, ADMINISTRATOR_ACCESS).await.unwrap();
        service.attach_policy("alice", PolicyType::Custom, "NoDeletes").await.unwrap();
        service.authorize(&key.id, "oos:StartExecution", "*").await.unwrap();
        let denied = service.authorize(&key.id, "ess:DeleteScalingGroup", "*").await.unwrap_err();
        assert!(denied.to_string().contains("denies it explicitly"), "{denied}");
        assert_eq!(code(service.delete_policy("NoDeletes").await), "DeleteConflict.Policy.User");
        service.detach_policy("alice", PolicyType::Custom, "NoDeletes").await.unwrap();
        service.authorize(&key.id, "ess:DeleteScalingGroup", "*").await.unwrap();
        service.delete_policy("NoDeletes").await.unwrap();
    }

    #[tokio::test]
    async fn keys_are_listed_without_secrets_disabled_and_deleted() {
        let (_dir, service) = service().await;
        assert_eq!(code(service.create_access_key("nobody").await), "EntityNotExist.User");
        assert_eq!(code(service.user("nobody").await), "EntityNotExist.User", "no user is made by a key");
        service.create_user(NewUser { name: "bob".into(), ..NewUser::default() }).await.unwrap();
        let first = service.create_access_key("bob").await.unwrap();
        assert!(first.secret.len() >= 30);
        service.create_access_key("bob").await.unwrap();
        assert_eq!(code(service.create_access_key("bob").await), "LimitExceeded.User.AccessKey");
        let listed = service.access_keys("bob").await.unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed.iter().all(|k| k.secret.is_empty()));
        service.set_access_key_status("bob", &first.id, AccessKeyStatus::Inactive).await.unwrap();
        assert_eq!(service.signing_key(&first.id).await.unwrap().unwrap().status, AccessKeyStatus::Inactive);
        assert_eq!(service.access_key_secret(&first.id).await.unwrap(), None, "an Inactive key signs nothing");
        assert_eq!(code(service.delete_access_key("bob", "LTAInope").await), "EntityNotExist.User.AccessKey");
        service.delete_access_key("bob", &first.id).await.unwrap();
        assert!(service.signing_key(&first.id).await.unwrap().is_none());
        service.delete_user("bob").await.unwrap();
        assert_eq!(code(service.user("bob").await), "EntityNotExist.User");
        assert_eq!(code(service.delete_user("bob").await), "EntityNotExist.User");
    }

    #[tokio::test]
    async fn bad_input_is_refused_with_its_code() {
        let (_dir, service) = service().await;
        let user = |name: &str| NewUser { name: name.into(), ..NewUser::default() };
        assert_eq!(code(service.create_user(user("bad name")).await), "InvalidParameter.UserName");
        service.create_user(user("carol")).await.unwrap();
        assert_eq!(code(service.create_user(user("carol")).await), "EntityAlreadyExists.User");
        assert_eq!(code(service.create_policy("x", "{}", "").await), "MalformedPolicyDocument");
        assert_eq!(code(service.create_policy("bad_name", "{}", "").await), "InvalidParameter.PolicyName");
        let doc = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oos:*","Resource":"*"}]}"#;
        assert_eq!(code(service.create_policy("AliyunOOSFullAccess", doc, "").await), "EntityAlreadyExists.Policy");
        service.create_policy("Ops", doc, "rolling updates").await.unwrap();
        assert_eq!(code(service.create_policy("Ops", doc, "").await), "EntityAlreadyExists.Policy");
        assert_eq!(code(service.attach_policy("carol", PolicyType::Custom, "Nope").await), "EntityNotExist.Policy");
        assert_eq!(code(service.attach_policy("nobody", PolicyType::Custom, "Ops").await), "EntityNotExist.User");
        service.attach_policy("carol", PolicyType::Custom, "Ops").await.unwrap();
        assert_eq!(
            code(service.attach_policy("carol", PolicyType::Custom, "Ops").await),
            "EntityAlreadyExists.User.Policy"
        );
        assert_eq!(code(service.detach_policy("carol", PolicyType::System, "Ops").await), "EntityNotExist.User.Policy");
        assert_eq!(code(service.delete_policy(ADMINISTRATOR_ACCESS).await), "InvalidParameter.PolicyType");
        let all = service.policies(None).await.unwrap();
        assert_eq!(all.len(), SYSTEM_POLICIES.len() + 1);
        let ops = all.iter().find(|p| p.policy.name == "Ops").unwrap();
        assert_eq!((ops.policy.policy_type, ops.attachment_count), (PolicyType::Custom, 1));
        assert_eq!(service.policies(Some(PolicyType::Custom)).await.unwrap().len(), 1);
        let attached = service.user_policies("carol").await.unwrap();
        assert_eq!(attached.iter().map(|a| a.policy.name.as_str()).collect::<Vec<_>>(), ["Ops"]);
    }

    #[tokio::test]
    async fn the_last_administrator_cannot_lock_everyone_out() {
        let (_dir, service) = service().await;
        let admin = service.create_admin_access_key("admin").await.unwrap();
        let last = "InvalidOperation.LastAdministrator";
        assert_eq!(code(service.delete_user("admin").await), last);
        assert_eq!(code(service.delete_access_key("admin", &admin.id).await), last);
        assert_eq!(code(service.set_access_key_status("admin", &admin.id, AccessKeyStatus::Inactive).await), last);
        assert_eq!(code(service.detach_policy("admin", PolicyType::System, ADMINISTRATOR_ACCESS).await), last);
        service.authorize(&admin.id, "ram:DeleteUser", "*").await.expect("nothing was changed");

        // Others' keys come and go freely; a second administrator frees the first.
        service.create_user(NewUser { name: "ops".into(), ..NewUser::default() }).await.unwrap();
        let ops = service.create_access_key("ops").await.unwrap();
        service.delete_access_key("ops", &ops.id).await.unwrap();
        service.attach_policy("ops", PolicyType::System, ADMINISTRATOR_ACCESS).await.unwrap();
        assert_eq!(code(service.delete_user("admin").await), last, "ops has no key yet");
        let ops = service.create_access_key("ops").await.unwrap();
        service.set_access_key_status("admin", &admin.id, AccessKeyStatus::Inactive).await.unwrap();
        assert_eq!(code(service.delete_access_key("ops", &ops.id).await), last);
        service.delete_user("admin").await.unwrap();
    }

    #[tokio::test]
    async fn only_an_authenticated_call_is_audited_under_its_keys_user() {
        let (_dir, service) = service().await;
        let admin = service.create_admin_access_key("admin").await.unwrap();
        let event = |result_code: &str| AuditEvent {
            id: String::new(),
            at: 0,
            user_name: String::new(),
            access_key_id: admin.id.clone(),
            action: "ram:DeleteUser".into(),
            resource: "*".into(),
            source_ip: "192.0.2.1".into(),
            result_code: result_code.into(),
            http_status: 200,
            request_id: String::new(),
            request: serde_json::json!({}),
        };
        service.record_audit(event("Success"), true).await.unwrap();
        // Anyone can claim the admin's AccessKey id in a request that does not verify; even
        // a user name the draft carried is not kept.
        service.record_audit(event("SignatureDoesNotMatch"), false).await.unwrap();
        service.record_audit(AuditEvent { user_name: "admin".into(), ..event("InvalidToken") }, false).await.unwrap();
        let by_user = AuditFilter { user_name: Some("admin".into()), ..AuditFilter::default() };
        let (admins, total) = service.audit_events(&by_user, 0, 10).await.unwrap();
        assert_eq!(total, 1, "{admins:?}");
        assert_eq!(admins[0].result_code, "Success");
        let by_key = AuditFilter { access_key_id: Some(admin.id.clone()), ..AuditFilter::default() };
        let (claimed, _) = service.audit_events(&by_key, 0, 10).await.unwrap();
        let mut seen: Vec<(&str, &str)> =
            claimed.iter().map(|e| (e.result_code.as_str(), e.user_name.as_str())).collect();
        seen.sort_unstable();
        assert_eq!(seen, [("InvalidToken", ""), ("SignatureDoesNotMatch", ""), ("Success", "admin")]);
    }
}
