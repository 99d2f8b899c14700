//! A webhook receiver on loopback, over HTTP or HTTPS (a fresh self-signed certificate served
//! by rustls): it keeps every request it gets, in the order they came in, and answers each with
//! the next status it was told to (a failure, a redirect), else its usual status. It runs on
//! threads of its own, so async and blocking tests use it alike, and stops when dropped.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// `POST /hook?token=t HTTP/1.1`, say.
    pub request_line: String,
    /// Its `X-Rollscale-Delivery` header.
    pub delivery: Option<String>,
    pub body: String,
}

/// What the receiver answers: the next status of `next`, else `then`; a 3xx with `location`.
struct Answers {
    next: VecDeque<u16>,
    then: u16,
    location: Option<String>,
}

struct Shared {
    got: Mutex<Vec<Received>>,
    answers: Mutex<Answers>,
    stop: AtomicBool,
}

pub struct WebhookReceiver {
    address: SocketAddr,
    tls: Option<String>,
    shared: Arc<Shared>,
}

impl WebhookReceiver {
    /// On a free loopback port, answering 200 to every request.
    pub fn start() -> WebhookReceiver {
        WebhookReceiver::failing(&[])
    }

    /// On the given listener (a port chosen before, say), answering 200.
    pub fn serve(listener: TcpListener) -> WebhookReceiver {
        WebhookReceiver::spawn(listener, answers(&[], 200, None), None)
    }

    /// Answers its first requests with `first` (failures, say 503), one each, then 200.
    pub fn failing(first: &[u16]) -> WebhookReceiver {
        WebhookReceiver::spawn(bind(), answers(first, 200, None), None)
    }

    /// Answers every request with `status`.
    pub fn answering(status: u16) -> WebhookReceiver {
        WebhookReceiver::spawn(bind(), answers(&[], status, None), None)
    }

    /// Answers every request with `302 Found` to `location`.
    pub fn redirecting(location: &str) -> WebhookReceiver {
        WebhookReceiver::spawn(bind(), answers(&[], 302, Some(location)), None)
    }

    /// Over HTTPS, with a fresh self-signed certificate for 127.0.0.1 ([`Self::certificate`]),
    /// answering `204 No Content`.
    pub fn https() -> WebhookReceiver {
        let certified =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("a self-signed certificate");
        let pem = certified.cert.pem();
        let chain = vec![rustls::pki_types::CertificateDer::from(certified.cert.der().to_vec())];
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
            certified.key_pair.serialize_der(),
        ));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the certificate and its key");
        WebhookReceiver::spawn(bind(), answers(&[], 204, None), Some((pem, Arc::new(config))))
    }

    fn spawn(
        listener: TcpListener,
        answers: Answers,
        tls: Option<(String, Arc<rustls::ServerConfig>)>,
    ) -> WebhookReceiver {
        let address = listener.local_addr().expect("the receiver's address");
        let shared =
            Arc::new(Shared { got: Mutex::default(), answers: Mutex::new(answers), stop: AtomicBool::new(false) });
        let (pem, config) = match tls {
            Some((pem, config)) => (Some(pem), Some(config)),
            None => (None, None),
        };
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (shared, config) = (accepting.clone(), config.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    match config {
                        None => exchange(stream, &shared),
                        Some(config) => {
                            let Ok(connection) = rustls::ServerConnection::new(config) else { return };
                            let mut tls = rustls::StreamOwned::new(connection, stream);
                            exchange(&mut tls, &shared);
                            tls.conn.send_close_notify();
                            let _ = tls.flush();
                        }
                    }
                });
            }
        });
        WebhookReceiver { address, tls: pem, shared }
    }

    /// The next requests are answered with these statuses, one each (then as before).
    pub fn fail_next(&self, statuses: &[u16]) {
        self.shared.answers.lock().expect("answers").next.extend(statuses);
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// `http://127.0.0.1:<port>` (`https://` over TLS).
    pub fn base(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.address)
    }

    /// [`Self::base`] followed by `path_and_query` (`/hook?token=t`, say).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base())
    }

    /// The certificate (PEM) of an HTTPS receiver, for a client to trust.
    pub fn certificate(&self) -> &str {
        self.tls.as_deref().expect("an HTTPS receiver")
    }

    /// Every request so far, in the order they came in.
    pub fn got(&self) -> Vec<Received> {
        self.shared.got.lock().expect("requests").clone()
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees `stop`.
        let _ = TcpStream::connect(self.address);
    }
}

fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("a loopback port")
}

fn answers(first: &[u16], then: u16, location: Option<&str>) -> Answers {
    Answers { next: first.iter().copied().collect(), then, location: location.map(str::to_string) }
}

/// Reads one request, keeps it, and answers it.
fn exchange(mut stream: impl Read + Write, shared: &Shared) {
    let Some((head, body)) = read_request(&mut stream) else { return };
    let delivery = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("x-rollscale-delivery").then(|| value.trim().to_string())
    });
    let request_line = head.lines().next().unwrap_or_default().to_string();
    shared.got.lock().expect("requests").push(Received { request_line, delivery, body });
    let reply = {
        let mut answers = shared.answers.lock().expect("answers");
        let status = answers.next.pop_front().unwrap_or(answers.then);
        let location = match (&answers.location, status) {
            (Some(location), 300..=399) => format!("location: {location}\r\n"),
            _ => String::new(),
        };
        format!("HTTP/1.1 {status} {}\r\n{location}content-length: 0\r\nconnection: close\r\n\r\n", reason(status))
    };
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.flush();
}

/// The head and the body of one HTTP/1.1 request (its `content-length` bytes of body).
fn read_request(stream: &mut impl Read) -> Option<(String, String)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buffer).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length").then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0usize);
            if body.len() >= length {
                return Some((head.to_string(), body.to_string()));
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        302 => "Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
