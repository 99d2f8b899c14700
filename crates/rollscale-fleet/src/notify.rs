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

/// Whether the error came from TLS (a certificate not trusted, a handshake refused).
fn is_tls(error: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Calls webhooks over HTTP or HTTPS: POST with the event as a JSON body, or GET with it as query
/// parameters; a header `X-Rollscale-Delivery` names the delivery so a receiver can drop a
/// repeat (delivery is at least once). Redirects are not followed (a webhook answers where it
/// was configured); each attempt has a time limit.
pub struct WebhookNotifier {
    client: reqwest::Client,
}

impl WebhookNotifier {
    /// https webhooks are checked against the system's certificate authorities.
    pub fn new(timeout: Duration) -> WebhookNotifier {
        WebhookNotifier::with_roots(timeout, None).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Also trusts the certificate authorities of a PEM bundle (an internal CA that signs the
    /// receivers' certificates); an unreadable bundle is an error.
    pub fn with_roots(timeout: Duration, pem_bundle: Option<&[u8]>) -> Result<WebhookNotifier, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("rollscale/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = pem_bundle {
            let roots = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|_| "the webhook CA file holds no PEM certificate".to_string())?;
            if roots.is_empty() {
                return Err("the webhook CA file holds no PEM certificate".into());
            }
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
        }
        let client = builder.build().map_err(|error| format!("the webhook client could not be built: {error}"))?;
        Ok(WebhookNotifier { client })
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
                } else if is_tls(&error) {
                    "the TLS handshake failed (is its certificate signed by a trusted CA? see --webhook-ca-file)"
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
