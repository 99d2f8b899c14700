//! Delivering alerts (R15): the `Notifier` trait the engine's alert sender calls, and the
//! webhook implementation over HTTP. A notifier makes one attempt and says how it ended; the
//! engine keeps the retry schedule and the record (`rollscale_core::alert`).

use async_trait::async_trait;
use rollscale_core::alert::{redacted_url, AttemptOutcome, Delivery, WebhookMethod};
use std::time::Duration;

/// Sends one attempt of a delivery.
#[async_trait]
pub trait Notifier: Send + Sync {
    async fn send(&self, delivery: &Delivery) -> AttemptOutcome;
}

/// Calls webhooks over HTTP: POST with the event as a JSON body, or GET with it as query
/// parameters; a header `X-Rollscale-Delivery` names the delivery so a receiver can drop a
/// repeat (delivery is at least once). Redirects are not followed (a webhook answers where it
/// was configured); each attempt has a time limit.
pub struct WebhookNotifier {
    client: reqwest::Client,
}

impl WebhookNotifier {
    pub fn new(timeout: Duration) -> WebhookNotifier {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rollscale/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|error| panic!("the webhook client could not be built: {error}"));
        WebhookNotifier { client }
    }
}

impl Default for WebhookNotifier {
    fn default() -> Self {
        WebhookNotifier::new(Duration::from_secs(10))
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn send(&self, delivery: &Delivery) -> AttemptOutcome {
        let request = match delivery.method {
            WebhookMethod::Post => self.client.post(&delivery.url).json(&delivery.body()),
            WebhookMethod::Get => self.client.get(&delivery.url).query(&delivery.query()),
        };
        let sent = request.header("X-Rollscale-Delivery", delivery.id.as_str()).send().await;
        match sent {
            Ok(response) => AttemptOutcome::Answered(response.status().as_u16()),
            Err(error) => {
                // reqwest's text names the URL, query and all; the log and the record get a
                // reason and the host only.
                let reason = if error.is_timeout() {
                    "timed out"
                } else if error.is_connect() {
                    "could not connect"
                } else if error.is_builder() {
                    "the URL could not be used"
                } else {
                    "the request failed"
                };
                AttemptOutcome::Unreachable(format!("{reason} ({})", redacted_url(&delivery.url)))
            }
        }
    }
}
