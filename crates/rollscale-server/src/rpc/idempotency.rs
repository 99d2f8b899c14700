//! `ClientToken`: the create operations (StartExecution, CreateScalingGroup,
//! CreateScalingConfiguration) run once per token and caller. A request with a token the caller
//! used before gets the first request's result (the same ExecutionId or resource id) and
//! creates nothing; with other parameters it is refused with `IdempotentParameterMismatch`.
//!
//! The token is claimed in the store before the operation runs (one insert, so concurrent
//! requests and replicas agree on who runs it) and the result recorded after. A refused
//! operation gives its claim back, so the token can be used again. A claim whose request died
//! before recording its result is taken over after [`STALE_CLAIM`].

use super::request::Params;
use crate::error::ApiError;
use rollscale_engine::Service;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::time::Duration;

/// An unfinished claim older than this belongs to a request that died.
pub const STALE_CLAIM: Duration = Duration::from_secs(60);
/// How long a request waits for another one with the same token to finish.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(15);
/// Alibaba Cloud's limit on a ClientToken: at most 64 ASCII characters.
const MAX_TOKEN_LEN: usize = 64;

/// Parameters that say how a request was sent and signed, not what it asks for.
const TRANSPORT_PARAMS: &[&str] = &[
    "AccessKeyId",
    "Action",
    "ClientToken",
    "Format",
    "SecurityToken",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureType",
    "SignatureVersion",
    "Timestamp",
    "Version",
];

/// This request holds its token: record the result with [`finish`].
#[derive(Debug)]
pub struct Claim {
    scope: String,
}

pub enum Begin {
    /// Run the operation (`None`: the request has no token).
    Run(Option<Claim>),
    /// The token's first request created this; answer with it.
    Replay(Value),
}

/// A digest of what the request asks for, to tell a retry from a different request.
pub fn fingerprint(params: &Params) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in params.iter().filter(|(name, _)| !TRANSPORT_PARAMS.contains(name)) {
        // Lengths first, so no two parameter lists hash the same text.
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value.as_bytes());
    }
    hex::encode(hasher.finalize())
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Claims the request's ClientToken, if it has one, or finds what its first request created.
pub async fn begin(service: &Service, caller: &str, action: &str, params: &Params) -> Result<Begin, ApiError> {
    let Some(token) = params.get_nonempty("ClientToken") else {
        return Ok(Begin::Run(None));
    };
    if token.len() > MAX_TOKEN_LEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::new(
            400,
            "InvalidParameter",
            format!("ClientToken must be at most {MAX_TOKEN_LEN} printable ASCII characters"),
        ));
    }
    let scope = format!("{caller}/{action}/{token}");
    let fingerprint = fingerprint(params);
    let store = &service.engine.store;
    let deadline = tokio::time::Instant::now() + WAIT_FOR_OTHER;
    loop {
        let now = now_millis();
        let record = match store.client_token_claim(&scope, &fingerprint, now).await {
            Ok(None) => return Ok(Begin::Run(Some(Claim { scope }))),
            Ok(Some(record)) => record,
            Err(error) => return Err(rollscale_engine::ServiceError::from(error).into()),
        };
        if record.fingerprint != fingerprint {
            return Err(ApiError::new(
                400,
                "IdempotentParameterMismatch",
                format!("the ClientToken {token} was used with other parameters"),
            ));
        }
        if !record.result.is_empty() {
            return serde_json::from_str(&record.result).map(Begin::Replay).map_err(|error| {
                tracing::error!(%error, "a ClientToken record is not JSON");
                ApiError::new(500, "InternalError", "the request could not be processed; see the service log")
            });
        }
        if now - record.created_at > STALE_CLAIM.as_millis() as i64 {
            match store.client_token_take_over(&scope, record.created_at, now).await {
                Ok(true) => return Ok(Begin::Run(Some(Claim { scope }))),
                Ok(false) => continue,
                Err(error) => return Err(rollscale_engine::ServiceError::from(error).into()),
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(
                400,
                "LastTokenProcessing",
                format!("a request with the ClientToken {token} is still being processed; retry later"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Records the outcome of a claimed request: on success `record(&value)` is what a retry with
/// the token gets; on a refusal the claim is given back.
pub async fn finish<T>(
    service: &Service,
    claim: Option<Claim>,
    outcome: Result<T, ApiError>,
    record: impl FnOnce(&T) -> Value,
) -> Result<T, ApiError> {
    let Some(claim) = claim else {
        return outcome;
    };
    let store = &service.engine.store;
    match &outcome {
        Ok(value) => {
            if let Err(error) = store.client_token_complete(&claim.scope, &record(value).to_string()).await {
                // The operation took effect; only its token record is missing. A retry within
                // STALE_CLAIM is told to wait; after it, the token runs again.
                tracing::error!(%error, "could not record a ClientToken's result");
            }
        }
        Err(_) => {
            if let Err(error) = store.client_token_release(&claim.scope).await {
                tracing::error!(%error, "could not release a ClientToken");
            }
        }
    }
    outcome
}
