//! Idempotent creates: a create operation with a token (the RPC API's `ClientToken`, the REST
//! API's `Idempotency-Key` header) runs once per caller, operation and token. A request with a
//! token the caller used before gets the first request's recorded answer and creates nothing;
//! with other parameters it is refused with `IdempotentParameterMismatch`. Both APIs call this;
//! each says what its request's parameters are (a fingerprint) and what its answer is.
//!
//! The token is claimed in the store before the operation runs (one insert, so concurrent
//! requests and replicas agree on who runs it) and the answer recorded after. A refused
//! operation gives its claim back, so the token can be used again. A claim whose request died
//! before recording its answer is taken over after [`STALE_CLAIM`].

use crate::{now_millis, Service, ServiceError};
use std::time::Duration;

/// An unfinished claim older than this belongs to a request that died.
pub const STALE_CLAIM: Duration = Duration::from_secs(60);
/// How long a request waits for another one with the same token to finish.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(15);
/// Alibaba Cloud's limit on a ClientToken: at most 64 printable ASCII characters.
pub const MAX_TOKEN_LEN: usize = 64;

/// This request holds its token: record the answer with [`Service::finish_idempotent`].
#[derive(Debug)]
pub struct Claim {
    scope: String,
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
        return Err(ServiceError::rejected(
            "InvalidParameter",
            format!("{name} must be 1 to {MAX_TOKEN_LEN} printable ASCII characters"),
        ));
    }
    Ok(())
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
        let store = &self.engine.store;
        let deadline = tokio::time::Instant::now() + WAIT_FOR_OTHER;
        loop {
            let now = now_millis();
            let Some(record) = store.client_token_claim(&scope, fingerprint, now).await? else {
                return Ok(Begin::Run(Claim { scope }));
            };
            if record.fingerprint != fingerprint {
                return Err(ServiceError::rejected(
                    "IdempotentParameterMismatch",
                    format!("the token {token} was used with other parameters"),
                ));
            }
            if !record.result.is_empty() {
                return Ok(Begin::Replay(record.result));
            }
            if now - record.created_at > STALE_CLAIM.as_millis() as i64 {
                if store.client_token_take_over(&scope, record.created_at, now).await? {
                    return Ok(Begin::Run(Claim { scope }));
                }
                continue;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ServiceError::rejected(
                    "LastTokenProcessing",
                    format!("a request with the token {token} is still being processed; retry later"),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Records the outcome of a claimed request: `Some(answer)` is what a retry with the token
    /// gets; `None` (the request was refused) gives the claim back. A failure to write is
    /// logged: the operation's effect stands either way.
    pub async fn finish_idempotent(&self, claim: Claim, answer: Option<&str>) {
        let store = &self.engine.store;
        match answer {
            Some(answer) => {
                if let Err(error) = store.client_token_complete(&claim.scope, answer).await {
                    // The operation took effect; only its token record is missing. A retry
                    // within STALE_CLAIM is told to wait; after it, the token runs again.
                    tracing::error!(%error, "could not record a ClientToken's result");
                }
            }
            None => {
                if let Err(error) = store.client_token_release(&claim.scope).await {
                    tracing::error!(%error, "could not release a ClientToken");
                }
            }
        }
    }
}
