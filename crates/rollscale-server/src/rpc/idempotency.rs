//! `ClientToken` over the RPC API: every create operation that takes one (`idempotent` in
//! [`crate::operations`]) runs once per caller and token, through the service's
//! [`begin_idempotent`](rollscale_engine::Service::begin_idempotent), which the REST API's
//! `Idempotency-Key` uses too. Here: what a request's parameters are (its fingerprint).

use super::request::Params;
use sha2::{Digest, Sha256};

/// A digest of what the request asks for, to tell a retry from a different request: every
/// parameter but the token itself and those that say how the request was sent and signed
/// (`operations::is_transport`), which a retry may change.
pub fn fingerprint(params: &Params) -> String {
    let mut hasher = Sha256::new();
    let asks = |name: &str| name != "ClientToken" && !crate::operations::is_transport(name);
    for (name, value) in params.iter().filter(|(name, _)| asks(name)) {
        // Lengths first, so no two parameter lists hash the same text.
        hasher.update((name.len() as u64).to_be_bytes());
        hasher.update(name.as_bytes());
        hasher.update((value.len() as u64).to_be_bytes());
        hasher.update(value.as_bytes());
    }
    hex::encode(hasher.finalize())
}
