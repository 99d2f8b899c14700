//! Writing the audit log, for both APIs: every call with its result, the refused ones
//! included — those refused before they were authenticated too (a bad signature, an unknown or
//! disabled key, a replayed nonce, throttling), under the AccessKey id they claimed.
//!
//! Unauthenticated refusals cost the sender nothing, so a flood of them must not grow the log
//! without bound: each source address may have [`FAILURE_RATE`] of them recorded a second (in
//! bursts of [`FAILURE_BURST`]); beyond, they are counted, and the next one recorded from that
//! address says how many were left out (`SuppressedBefore` in its request parameters).

use crate::rpc::request::Params;
use crate::AppState;
use rollscale_core::access::AuditEvent;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Unauthenticated refusals recorded per second and source address, on average.
pub const FAILURE_RATE: f64 = 5.0;
/// … and at most this many at once.
pub const FAILURE_BURST: f64 = 20.0;

/// Parameters that are the signature's, not the request's: left out of the audit log.
const SIGNATURE_PARAMS: &[&str] = &[
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "Format",
    "Action",
    "Version",
];

/// Longest parameter value the audit log keeps, in characters.
const MAX_VALUE: usize = 256;
/// Most parameters the audit log keeps of one request.
const MAX_PARAMS: usize = 64;

/// A call being audited, filled in as the request is understood.
#[derive(Debug, Default)]
pub struct Draft {
    /// The AccessKey id the request claims (once authenticated: the caller).
    pub access_key_id: String,
    /// `product:Action`.
    pub action: String,
    /// The resources it was authorized on, comma-separated.
    pub resource: String,
    /// What it asked, without secrets.
    pub request: Value,
    /// Whether the signature or token was verified.
    pub authenticated: bool,
}

/// An RPC request's parameters as the audit log keeps them: no signature parameter, values cut
/// at 256 characters, at most 64 of them.
pub fn rpc_parameters(params: &Params) -> Value {
    let mut kept = Map::new();
    for (name, value) in params.iter().filter(|(name, _)| !SIGNATURE_PARAMS.contains(name)).take(MAX_PARAMS) {
        kept.insert(name.to_string(), Value::String(cut(value, MAX_VALUE)));
    }
    Value::Object(kept)
}

/// `text`, cut to `max` characters (marked with `…`).
pub fn cut(text: &str, max: usize) -> String {
    match text.chars().count() > max {
        true => format!("{}…", text.chars().take(max).collect::<String>()),
        false => text.to_string(),
    }
}

/// Each source address's allowance of recorded unauthenticated refusals: (tokens, when last
/// filled, how many were left out since the last one recorded).
#[derive(Default)]
pub struct FailureLimiter {
    buckets: std::sync::Mutex<HashMap<String, (f64, Instant, u64)>>,
}

impl FailureLimiter {
    /// `Some(left out before this one)` when a refusal from `source` is to be recorded.
    fn admit(&self, source: &str) -> Option<u64> {
        self.admit_at(source, Instant::now())
    }

    fn admit_at(&self, source: &str, now: Instant) -> Option<u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() > 10_000 {
            // Full buckets of quiet addresses carry nothing worth keeping but their count.
            buckets.retain(|_, (tokens, at, suppressed)| {
                *suppressed > 0 || *tokens + now.duration_since(*at).as_secs_f64() * FAILURE_RATE < FAILURE_BURST
            });
        }
        let (tokens, at, suppressed) = buckets.entry(source.to_string()).or_insert((FAILURE_BURST, now, 0));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * FAILURE_RATE).min(FAILURE_BURST);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Some(std::mem::take(suppressed))
        } else {
            *suppressed += 1;
            None
        }
    }
}

/// Writes an audited call with its result to the audit log. A failure to write is logged, and
/// the call is answered all the same.
pub async fn record(
    state: &AppState,
    draft: Draft,
    result_code: &str,
    http_status: u16,
    request_id: &str,
    source_ip: Option<IpAddr>,
) {
    let source_ip = source_ip.map(|ip| ip.to_string()).unwrap_or_default();
    let mut request = draft.request;
    if !draft.authenticated {
        match state.failures.admit(&source_ip) {
            None => return,
            Some(0) => {}
            Some(left_out) => {
                if !request.is_object() {
                    request = Value::Object(Map::new());
                }
                request["SuppressedBefore"] = Value::from(left_out);
            }
        }
    }
    let event = AuditEvent {
        id: String::new(),
        at: 0,
        user_name: String::new(),
        access_key_id: draft.access_key_id,
        action: draft.action,
        resource: draft.resource,
        source_ip,
        result_code: result_code.to_string(),
        http_status,
        request_id: request_id.to_string(),
        request,
    };
    if let Err(error) = state.service.record_audit(event).await {
        tracing::error!(error = %error, "the audit log could not be written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_from_one_address_is_recorded_at_the_burst_then_counted() {
        let limiter = FailureLimiter::default();
        let start = Instant::now();
        let admitted = (0..100).filter(|_| limiter.admit_at("192.0.2.1", start).is_some()).count();
        assert_eq!(admitted, FAILURE_BURST as usize);
        assert_eq!(limiter.admit_at("192.0.2.2", start), Some(0), "another address has its own allowance");
        // A second later the bucket holds FAILURE_RATE more; the first says how many were left out.
        let later = start + std::time::Duration::from_secs(1);
        assert_eq!(limiter.admit_at("192.0.2.1", later), Some(100 - FAILURE_BURST as u64));
        let more = (0..10).filter(|_| limiter.admit_at("192.0.2.1", later).is_some()).count();
        assert_eq!(more, FAILURE_RATE as usize - 1);
    }
}
