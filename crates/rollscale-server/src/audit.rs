//! Writing the audit log, for both APIs: every call with its result, the refused ones
//! included — those refused before they were authenticated too (a bad signature, an unknown or
//! disabled key, a replayed nonce, throttling), under the AccessKey id they claimed and no user
//! (a claimed id is not proof of anything).
//!
//! Unauthenticated refusals cost the sender nothing, so a flood of them must not grow the log
//! or this process's memory without bound ([`FailureLimiter`]): each source (an IPv4 address or
//! an IPv6 /64) may have [`FAILURE_RATE`] of them recorded a second (in bursts of
//! [`FAILURE_BURST`]), and all sources together [`GLOBAL_RATE`] (bursts of [`GLOBAL_BURST`]);
//! beyond, they are counted, and the next one recorded from that source says how many were left
//! out (`SuppressedBefore` in its request parameters). At most [`MAX_SOURCES`] sources are
//! tracked; the counts of those evicted are reported by the next record from anywhere
//! (`SuppressedElsewhere`).

use crate::rpc::request::Params;
use crate::AppState;
use rollscale_core::access::AuditEvent;
use rollscale_engine::metrics::Api;
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

/// Unauthenticated refusals recorded per second and source address, on average.
pub const FAILURE_RATE: f64 = 5.0;
/// … and at most this many at once.
pub const FAILURE_BURST: f64 = 20.0;

/// Longest parameter value the audit log keeps, in characters.
const MAX_VALUE: usize = 256;
/// Most parameters the audit log keeps of one request.
const MAX_PARAMS: usize = 64;

/// A call being audited, filled in as the request is understood.
#[derive(Debug)]
pub struct Draft {
    /// The API it came through, and when it arrived: for `/metrics` ([`crate::metrics`]).
    pub api: Api,
    pub started: Instant,
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

impl Draft {
    /// A call of `api` arriving now, of which nothing is known yet.
    pub fn new(api: Api) -> Draft {
        Draft {
            api,
            started: Instant::now(),
            access_key_id: String::new(),
            action: String::new(),
            resource: String::new(),
            request: Value::Null,
            authenticated: false,
        }
    }
}

/// An RPC request's parameters as the audit log keeps them: none of how it was sent and signed
/// (`operations::is_transport`: the signature's, a `SecurityToken`), values cut at 256
/// characters, at most 64 of them.
pub fn rpc_parameters(params: &Params) -> Value {
    let mut kept = Map::new();
    for (name, value) in params.iter().filter(|(name, _)| !crate::operations::is_transport(name)).take(MAX_PARAMS) {
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

/// Where unauthenticated refusals come from, as they are limited: an IPv4 address, or an IPv6
/// address's /64 (a single host is commonly given a whole /64, and could send each request from
/// another address in it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Source {
    Unknown,
    V4(Ipv4Addr),
    V6Net(u64),
}

impl Source {
    fn of(ip: Option<IpAddr>) -> Source {
        match ip.map(|ip| ip.to_canonical()) {
            None => Source::Unknown,
            Some(IpAddr::V4(v4)) => Source::V4(v4),
            Some(IpAddr::V6(v6)) => Source::V6Net((u128::from(v6) >> 64) as u64),
        }
    }
}

/// A token bucket, and how many refusals it left out since the last one recorded.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    suppressed: u64,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket { tokens: burst, at: now, suppressed: 0 }
    }

    fn refill(&mut self, now: Instant, rate: f64, burst: f64) {
        self.tokens = (self.tokens + now.saturating_duration_since(self.at).as_secs_f64() * rate).min(burst);
        self.at = now;
    }
}

/// Whether to record an unauthenticated refusal, and what was left out before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// Refusals from the same source left out since its last one recorded.
    pub before: u64,
    /// Refusals left out from sources no longer tracked (their count passed on when their
    /// bucket was evicted), since the last record that said so.
    pub elsewhere: u64,
}

/// The allowance of recorded unauthenticated refusals: a bucket per source ([`FAILURE_RATE`],
/// [`FAILURE_BURST`]), at most [`MAX_SOURCES`] of them (the oldest evicted first, its count of
/// left-out refusals carried into one summary counter), and a bucket for all sources together
/// ([`GLOBAL_RATE`], [`GLOBAL_BURST`]), so that a sender with many addresses cannot grow the log
/// faster than that either. Every call is O(1).
pub struct FailureLimiter {
    inner: std::sync::Mutex<Limiter>,
}

struct Limiter {
    buckets: HashMap<Source, Bucket>,
    /// The tracked sources, in the order their buckets were made: the map's keys, once each.
    order: VecDeque<Source>,
    global: Bucket,
    /// Refusals counted by evicted buckets and not yet reported.
    elsewhere: u64,
}

/// Most sources the limiter tracks at once.
pub const MAX_SOURCES: usize = 10_000;
/// Unauthenticated refusals recorded per second from all sources together, on average.
pub const GLOBAL_RATE: f64 = 50.0;
/// … and at most this many at once.
pub const GLOBAL_BURST: f64 = 200.0;

impl Default for FailureLimiter {
    fn default() -> Self {
        FailureLimiter {
            inner: std::sync::Mutex::new(Limiter {
                buckets: HashMap::new(),
                order: VecDeque::new(),
                global: Bucket::full(GLOBAL_BURST, Instant::now()),
                elsewhere: 0,
            }),
        }
    }
}

impl FailureLimiter {
    /// `Some` when a refusal from `source` is to be recorded.
    fn admit(&self, source: Option<IpAddr>) -> Option<Admitted> {
        self.admit_at(source, Instant::now())
    }

    fn admit_at(&self, source: Option<IpAddr>, now: Instant) -> Option<Admitted> {
        let mut limiter = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let limiter = &mut *limiter;
        let source = Source::of(source);
        if !limiter.buckets.contains_key(&source) {
            if limiter.buckets.len() >= MAX_SOURCES {
                if let Some(oldest) = limiter.order.pop_front() {
                    if let Some(evicted) = limiter.buckets.remove(&oldest) {
                        limiter.elsewhere += evicted.suppressed;
                    }
                }
            }
            limiter.order.push_back(source);
            limiter.buckets.insert(source, Bucket::full(FAILURE_BURST, now));
        }
        let bucket = limiter.buckets.get_mut(&source)?;
        bucket.refill(now, FAILURE_RATE, FAILURE_BURST);
        limiter.global.refill(now, GLOBAL_RATE, GLOBAL_BURST);
        if bucket.tokens >= 1.0 && limiter.global.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            limiter.global.tokens -= 1.0;
            Some(Admitted {
                before: std::mem::take(&mut bucket.suppressed),
                elsewhere: std::mem::take(&mut limiter.elsewhere),
            })
        } else {
            bucket.suppressed += 1;
            None
        }
    }

    /// Sources tracked now, and refusals left out and not yet reported by any record.
    #[cfg(test)]
    fn pending(&self) -> (usize, u64) {
        let limiter = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        assert_eq!(limiter.order.len(), limiter.buckets.len(), "each tracked source is in the order once");
        (limiter.buckets.len(), limiter.elsewhere + limiter.buckets.values().map(|b| b.suppressed).sum::<u64>())
    }
}

/// A request's id: its answer's `RequestId`, its audit event's, and the `request_id` of every
/// log line written while it is served. Made once per request by [`request_span`], for both
/// APIs, and kept in the request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// A new id: a UUID in capitals, as Alibaba Cloud's.
    pub fn generate() -> RequestId {
        RequestId(uuid::Uuid::new_v4().to_string().to_uppercase())
    }

    /// The id [`request_span`] gave the request, or a new one for a request served without it.
    pub fn of(extensions: &axum::http::Extensions) -> String {
        extensions.get::<RequestId>().cloned().unwrap_or_else(RequestId::generate).0
    }
}

/// The middleware around every route: gives the request its [`RequestId`] and serves it in a
/// span carrying it (with the method and the path, never the query or a header), so whatever
/// is logged while it is served says which request it was. Its level is ERROR so that it is
/// enabled whatever the log level: a span prints nothing by itself.
pub async fn request_span(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let id = RequestId::generate();
    let span = tracing::error_span!(
        "request",
        request_id = %id.0,
        method = %request.method(),
        path = %request.uri().path(),
    );
    request.extensions_mut().insert(id);
    async move {
        let started = Instant::now();
        let response = next.run(request).await;
        tracing::debug!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "request served"
        );
        response
    }
    .instrument(span)
    .await
}

/// Writes an audited call with its result to the audit log, and counts it with the time it
/// took (`/metrics`: every call, those the log leaves out too). A failure to write is logged,
/// and the call is answered all the same.
pub async fn record(
    state: &AppState,
    draft: Draft,
    result_code: &str,
    http_status: u16,
    request_id: &str,
    source_ip: Option<IpAddr>,
) {
    let (action, code) = (crate::metrics::action_label(&draft.action), crate::metrics::code_label(result_code));
    state.service.engine.metrics().api_request(draft.api, action, code, draft.started.elapsed());
    let mut request = draft.request;
    if !draft.authenticated {
        let Some(admitted) = state.failures.admit(source_ip) else { return };
        for (name, left_out) in [("SuppressedBefore", admitted.before), ("SuppressedElsewhere", admitted.elsewhere)] {
            if left_out > 0 {
                if !request.is_object() {
                    request = Value::Object(Map::new());
                }
                request[name] = Value::from(left_out);
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
        source_ip: source_ip.map(|ip| ip.to_string()).unwrap_or_default(),
        result_code: result_code.to_string(),
        http_status,
        request_id: request_id.to_string(),
        request,
    };
    if let Err(error) = state.service.record_audit(event, draft.authenticated).await {
        tracing::error!(error = %error, "the audit log could not be written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn v4(n: u32) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::from(0xc000_0200 + n)))
    }

    fn admitted(limiter: &FailureLimiter, source: Option<IpAddr>, at: Instant) -> bool {
        limiter.admit_at(source, at).is_some()
    }

    #[test]
    fn a_flood_from_one_address_is_recorded_at_the_burst_then_counted() {
        let limiter = FailureLimiter::default();
        let start = Instant::now();
        let admitted = (0..100).filter(|_| admitted(&limiter, v4(1), start)).count();
        assert_eq!(admitted, FAILURE_BURST as usize);
        assert_eq!(limiter.admit_at(v4(2), start), Some(Admitted { before: 0, elsewhere: 0 }), "its own allowance");
        // A second later the bucket holds FAILURE_RATE more; the first says how many were left out.
        let later = start + Duration::from_secs(1);
        assert_eq!(limiter.admit_at(v4(1), later), Some(Admitted { before: 100 - FAILURE_BURST as u64, elsewhere: 0 }));
        let more = (0..10).filter(|_| limiter.admit_at(v4(1), later).is_some()).count();
        assert_eq!(more, FAILURE_RATE as usize - 1);
    }

    #[test]
    fn ipv6_senders_are_limited_by_their_64() {
        let limiter = FailureLimiter::default();
        let start = Instant::now();
        let net: u128 = 0x2001_0db8_0000_0001 << 64;
        // A new address of the same /64 for every request: one allowance between them.
        let rotating = (0..100u128)
            .filter(|host| admitted(&limiter, Some(IpAddr::V6((net | (host * 7919 + 1)).into())), start))
            .count();
        assert_eq!(rotating, FAILURE_BURST as usize);
        let next_net = Some(IpAddr::V6(((net + (1 << 64)) | 1).into()));
        assert!(admitted(&limiter, next_net, start), "another /64 has its own allowance");
        // An IPv4-mapped address is its IPv4 address.
        let v4_source = v4(9);
        let mapped = Some(IpAddr::V6(Ipv4Addr::from(0xc000_0209).to_ipv6_mapped()));
        assert_eq!((0..30).filter(|_| admitted(&limiter, v4_source, start)).count(), FAILURE_BURST as usize);
        assert!(!admitted(&limiter, mapped, start), "the mapped form shares the IPv4 allowance");
        assert_eq!(limiter.pending().0, 3);
    }

    #[test]
    fn many_sources_share_a_global_allowance_and_a_bounded_memory_and_nothing_is_miscounted() {
        let limiter = FailureLimiter::default();
        let start = Instant::now();
        // A flood from one source first, then from more sources than are tracked.
        let mut sent = 0u64;
        let mut recorded = 0u64;
        let mut reported = 0u64;
        let mut count = |admitted: Option<Admitted>| {
            sent += 1;
            if let Some(admitted) = admitted {
                recorded += 1;
                reported += admitted.before + admitted.elsewhere;
            }
        };
        for _ in 0..100 {
            count(limiter.admit_at(v4(0), start));
        }
        let at_once: Vec<Option<Admitted>> =
            (1..=(MAX_SOURCES as u32 + 500)).map(|n| limiter.admit_at(v4(n), start)).collect();
        // All at one instant: the global burst is all that is recorded, whatever the sources.
        let recorded_at_once = 20 + at_once.iter().filter(|a| a.is_some()).count();
        assert_eq!(recorded_at_once, GLOBAL_BURST as usize);
        at_once.into_iter().for_each(&mut count);
        let (tracked, _) = limiter.pending();
        assert_eq!(tracked, MAX_SOURCES, "memory is bounded");
        // The flooding source was evicted: its count is reported by the next record from any
        // source, once the global allowance refills.
        let later = start + Duration::from_secs(1);
        let next = limiter.admit_at(v4(1_000_000), later).expect("recorded");
        assert!(next.elsewhere >= 80, "{next:?}");
        count(Some(next));
        for n in 0..2_000 {
            count(limiter.admit_at(v4(n), later + Duration::from_millis(n.into())));
        }
        // Every refusal was recorded, reported as left out, or is still counted.
        let (tracked, pending) = limiter.pending();
        assert!(tracked <= MAX_SOURCES);
        assert_eq!(sent, recorded + reported + pending, "recorded {recorded}, reported {reported}, pending {pending}");
    }
}
