//! Idempotent creates: a create operation with a token (the RPC API's `ClientToken`, the REST
//! API's `Idempotency-Key` header) runs once per caller, operation and token. A request with a
//! token the caller used before gets the first request's recorded answer and creates nothing;
//! with other parameters it is refused with `IdempotentParameterMismatch`. Both APIs call this;
//! each says what its request's parameters are (a fingerprint) and what its answer is.
//!
//! The token is claimed in the store before the operation runs (one insert, so concurrent
//! requests and replicas agree on who runs it) and the answer recorded after. A claim names
//! its holder (a random claim id): only the holder records the answer, or gives the claim
//! back when the operation was refused, so the token can be used again. While the operation
//! runs, its claim is refreshed every [`CLAIM_HEARTBEAT`]; a claim not refreshed for
//! [`STALE_CLAIM`] belongs to a request that died (its process did) and is taken over. The
//! operation and the recording of its answer run in a task of their own
//! ([`Service::run_idempotent`]), so a client that disconnects does not cut them apart.

use crate::{now_millis, random_bits, Service, ServiceError};
use rollscale_core::Code;
use rollscale_store::Store;
use std::future::Future;
use std::time::Duration;

/// An unfinished claim not refreshed for this long belongs to a request that died (the
/// default of [`crate::EngineConfig::claim_stale_after`]).
pub const STALE_CLAIM: Duration = Duration::from_secs(60);
/// How often a running request refreshes its claim (the default of
/// [`crate::EngineConfig::claim_heartbeat`]).
pub const CLAIM_HEARTBEAT: Duration = Duration::from_secs(10);
/// How long a request waits for another one with the same token to finish.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(15);
/// Alibaba Cloud's limit on a ClientToken: at most 64 printable ASCII characters.
pub const MAX_TOKEN_LEN: usize = 64;

/// This request holds its token: run the operation with [`Service::run_idempotent`]. While
/// the claim lives its holder keeps it fresh in the store; dropped unfinished, it is left to
/// go stale and be taken over.
#[derive(Debug)]
pub struct Claim {
    scope: String,
    /// Which request holds it: random, so no other request can act on this one's claim.
    id: String,
    heartbeat: tokio::task::AbortHandle,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// What to do with a request that has a token.
#[derive(Debug)]
pub enum Begin {
    /// Run the operation, then record its answer.
    Run(Claim),
    /// The token's first request was answered with this (as recorded); answer with it again.
    Replay(String),
}

/// Whether `token` is a valid token: 1 to 64 printable ASCII characters.
pub fn check_token(token: &str, name: &str) -> Result<(), ServiceError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ServiceError::refused(
            Code::InvalidParameter,
            format!("{name} must be 1 to {MAX_TOKEN_LEN} printable ASCII characters"),
        ));
    }
    Ok(())
}

/// Refreshes a claim every `every` until it is aborted (its [`Claim`] dropped) or finds the
/// claim no longer its own.
async fn heartbeat(store: Store, scope: String, id: String, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        match store.client_token_heartbeat(&scope, &id, now_millis()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("a ClientToken claim was taken over while its request ran");
                return;
            }
            // The next beat may get through; the claim goes stale only if none does.
            Err(error) => tracing::warn!(%error, "could not refresh a ClientToken claim"),
        }
    }
}

impl Service {
    /// Claims `token` of `caller` for `action` (`product:Action`), or finds the answer its
    /// first request got. `fingerprint` tells a retry (the same) from another request.
    pub async fn begin_idempotent(
        &self,
        caller: &str,
        action: &str,
        token: &str,
        fingerprint: &str,
    ) -> Result<Begin, ServiceError> {
        check_token(token, "the token")?;
        // `caller/product/Action/token`: the form the RPC API's records have always had.
        let scope = format!("{caller}/{}/{token}", action.replacen(':', "/", 1));
        let id = format!("{:032x}", random_bits());
        let store = &self.engine.store;
        let stale_after = self.engine.config.claim_stale_after.as_millis() as i64;
        let deadline = tokio::time::Instant::now() + WAIT_FOR_OTHER;
        loop {
            let now = now_millis();
            let Some(record) = store.client_token_claim(&scope, fingerprint, &id, now).await? else {
                return Ok(Begin::Run(self.held(scope, id)));
            };
            if record.fingerprint != fingerprint {
                return Err(ServiceError::refused(
                    Code::IdempotentParameterMismatch,
                    format!("the token {token} was used with other parameters"),
                ));
            }
            if !record.result.is_empty() {
                return Ok(Begin::Replay(record.result));
            }
            // Its holder has not refreshed it for `stale_after`: it died. Taken over only as
            // seen, so a heartbeat in between, or another taker, wins.
            if now - record.alive_at >= stale_after {
                if store.client_token_take_over(&scope, &record, &id, now).await? {
                    return Ok(Begin::Run(self.held(scope, id)));
                }
                continue;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServiceError::refused(
                    Code::LastTokenProcessing,
                    format!("a request with the token {token} is still being processed; retry later"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The claim this request now holds, kept fresh until it is finished or dropped.
    fn held(&self, scope: String, id: String) -> Claim {
        let beat = heartbeat(self.engine.store.clone(), scope.clone(), id.clone(), self.engine.config.claim_heartbeat);
        Claim { scope, id, heartbeat: tokio::spawn(beat).abort_handle() }
    }

    /// Runs the operation of a claimed request and records its outcome: `answer` of its output
    /// is what a retry with the token gets, `None` (the request was refused) gives the claim
    /// back. Both happen in a task of their own, which this awaits: a caller dropped midway
    /// (the client disconnected, so the server dropped its handler) does not stop the
    /// operation between its effect and its record, and a retry gets its answer.
    pub async fn run_idempotent<T, F, A>(&self, claim: Claim, operation: F, answer: A) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
        A: FnOnce(&T) -> Option<String> + Send + 'static,
    {
        let service = self.clone();
        // In the caller's span: the request's id stays on what the operation logs.
        let task = tokio::spawn(tracing::Instrument::in_current_span(async move {
            let output = operation.await;
            service.finish_idempotent(claim, answer(&output).as_deref()).await;
            output
        }));
        match task.await {
            Ok(output) => output,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // Nothing aborts the task: it was cancelled because the runtime is shutting down,
            // which drops this caller too.
            Err(_) => std::future::pending().await,
        }
    }

    /// Records the outcome of a claimed request (see [`Service::run_idempotent`]), if the
    /// request still holds its claim. A failure to write is logged: the operation's effect
    /// stands either way.
    async fn finish_idempotent(&self, claim: Claim, answer: Option<&str>) {
        claim.heartbeat.abort();
        let store = &self.engine.store;
        match answer {
            Some(answer) => match store.client_token_complete(&claim.scope, &claim.id, answer).await {
                Ok(true) => {}
                // Only if this request was stalled for longer than the claim's staleness
                // (its heartbeat could not reach the store): another request holds the token.
                Ok(false) => tracing::warn!("a ClientToken's result was not recorded: its claim was taken over"),
                // The operation took effect; only its token record is missing. A retry is told
                // to wait until the claim goes stale; after it, the token runs again.
                Err(error) => tracing::error!(%error, "could not record a ClientToken's result"),
            },
            None => {
                // `false`: taken over by another request, whose claim it is now.
                if let Err(error) = store.client_token_release(&claim.scope, &claim.id).await {
                    tracing::error!(%error, "could not release a ClientToken");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Engine, EngineConfig};
    use rollscale_fleet::sim::{SimConfig, SimFleet, SimLbConfig, SimLoadBalancer};
    use std::sync::Arc;

    async fn service(config: EngineConfig) -> (tempfile::TempDir, Service) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("store");
        let fleet = SimFleet::new(SimConfig { latency_ms: 0, ..SimConfig::default() });
        let lb = SimLoadBalancer::new(SimLbConfig::default());
        let engine = Engine::new(store, Arc::new(fleet), Arc::new(lb), config);
        (dir, Service::new(engine))
    }

    async fn begin(service: &Service) -> Begin {
        service.begin_idempotent("LTAIk", "ess:CreateScalingGroup", "t-1", "f").await.expect("begin")
    }

    fn run(begin: Begin) -> Claim {
        match begin {
            Begin::Run(claim) => claim,
            Begin::Replay(answer) => panic!("replayed {answer}, expected to run"),
        }
    }

    async fn record(service: &Service) -> rollscale_store::ClientTokenRecord {
        let mut records = service.engine.store.client_token_list().await.expect("list");
        assert_eq!(records.len(), 1, "{records:?}");
        records.remove(0).1
    }

    #[tokio::test]
    async fn a_request_whose_claim_was_taken_over_neither_releases_nor_completes_it() {
        // Every claim is stale at once: each request takes over the one before.
        let config = EngineConfig { claim_stale_after: Duration::ZERO, ..EngineConfig::default() };
        let (_dir, service) = service(config).await;
        let first = run(begin(&service).await);
        let second = run(begin(&service).await);
        let holder = record(&service).await.claim;
        assert_eq!(holder, second.id);
        // The first request fails: giving its claim back leaves the second's alone.
        service.finish_idempotent(first, None).await;
        assert_eq!(record(&service).await.claim, holder, "the holder's claim was deleted");
        // The second is taken over too; its answer is not recorded, the third's is.
        let third = run(begin(&service).await);
        service.finish_idempotent(second, Some("asg-second")).await;
        assert_eq!(record(&service).await.result, "");
        service.finish_idempotent(third, Some("asg-third")).await;
        match begin(&service).await {
            Begin::Replay(answer) => assert_eq!(answer, "asg-third"),
            Begin::Run(_) => panic!("the token ran again"),
        }
    }

    #[tokio::test]
    async fn a_claim_is_refreshed_while_its_request_runs_and_not_once_dropped() {
        let config = EngineConfig { claim_heartbeat: Duration::from_millis(5), ..EngineConfig::default() };
        let (_dir, service) = service(config).await;
        let claim = run(begin(&service).await);
        let claimed = record(&service).await;
        // Waits for a heartbeat, whenever it comes.
        let mut refreshed = claimed.clone();
        for _ in 0..10_000 {
            refreshed = record(&service).await;
            if refreshed.alive_at > claimed.alive_at {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(refreshed.alive_at > claimed.alive_at, "never refreshed: {refreshed:?}");
        assert_eq!(refreshed.claim, claimed.claim);
        // Dropped (its request died without an answer): the heartbeat stops with it.
        let heartbeat = claim.heartbeat.clone();
        drop(claim);
        for _ in 0..10_000 {
            if heartbeat.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(heartbeat.is_finished(), "the heartbeat of a dropped claim still runs");
    }

    #[tokio::test]
    async fn an_operation_whose_caller_went_away_finishes_and_records_its_answer() {
        let (_dir, service) = service(EngineConfig::default()).await;
        let claim = run(begin(&service).await);
        let (started, has_started) = tokio::sync::oneshot::channel();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let operation = async move {
            let _ = started.send(());
            let _ = released.await;
            Ok::<_, ServiceError>("asg-1".to_string())
        };
        let caller = {
            let service = service.clone();
            tokio::spawn(async move {
                service.run_idempotent(claim, operation, |result| result.as_ref().ok().cloned()).await
            })
        };
        has_started.await.expect("the operation started");
        // The client disconnects: the server drops the request's handler.
        caller.abort();
        assert!(caller.await.expect_err("aborted").is_cancelled());
        release.send(()).expect("the operation still runs");
        // A retry waits for the operation and gets its answer; the token did not run again.
        match begin(&service).await {
            Begin::Replay(answer) => assert_eq!(answer, "asg-1"),
            Begin::Run(_) => panic!("the token ran again"),
        }
    }
}
