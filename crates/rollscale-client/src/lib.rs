//! rollscale's client side, shared with the server where both must agree: the request
//! signatures of the Alibaba Cloud APIs (`sign`), the REST bearer token (`token`), a signed RPC
//! client (`rpc`) and the shapes of the replies clients read (`wire`), which the server renders
//! its answers with.
//!
//! This crate never depends on the server, the engine, the store or the fleet: the `rollscale`
//! command's client commands use it alone, so client and server can change apart
//! (`tests/layers.rs` checks both).

pub mod rpc;
pub mod sign;
pub mod token;
pub mod wire;

pub use rollscale_core::Code;
pub use rpc::{default_version, ApiError, Client};

/// A secret as it may be shown: its length hidden, at most its last four characters kept
/// (none for short secrets).
pub fn redact(secret: &str) -> String {
    if secret.is_empty() {
        return String::new();
    }
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() < 12 {
        return "****".to_string();
    }
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("****{tail}")
}
