//! The webhook notifier against real receivers on 127.0.0.1: plain HTTP and HTTPS (a
//! self-signed certificate served by rustls), POST and GET, a receiver's error status, a
//! redirect (not followed), a closed port, and a certificate nobody vouched for.

use rollscale_core::alert::{AttemptOutcome, Delivery, DeliveryStatus, WebhookMethod};
use rollscale_core::domain::{Event, EventKind, EventLevel};
use rollscale_core::ids::{ExecutionId, ScalingGroupId};
use rollscale_fleet::notify::{Notifier, WebhookNotifier};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a receiver got: the request line, the delivery header and the body.
type Got = Arc<Mutex<Vec<(String, Option<String>, String)>>>;

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

fn answer(stream: &mut impl Write, head: &str, body: &str, got: &Got, reply: &str) {
    let header = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("x-rollscale-delivery").then(|| value.trim().to_string())
    });
    got.lock().unwrap().push((head.lines().next().unwrap_or_default().to_string(), header, body.to_string()));
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.flush();
}

/// A plain HTTP receiver answering every request with `reply`.
fn http_receiver(reply: &'static str) -> (String, Got) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let got: Got = Arc::default();
    let kept = got.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            if let Some((head, body)) = read_request(&mut stream) {
                answer(&mut stream, &head, &body, &kept, reply);
            }
        }
    });
    (base, got)
}

/// An HTTPS receiver with a fresh self-signed certificate for 127.0.0.1; returns its base URL,
/// the certificate (PEM) and what it got.
fn https_receiver() -> (String, String, Got) {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let pem = certified.cert.pem();
    let chain = vec![rustls::pki_types::CertificateDer::from(certified.cert.der().to_vec())];
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
        certified.key_pair.serialize_der(),
    ));
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let got: Got = Arc::default();
    let kept = got.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            let (config, kept) = (config.clone(), kept.clone());
            std::thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(connection) = rustls::ServerConnection::new(config) else { return };
                let mut tls: rustls::StreamOwned<rustls::ServerConnection, TcpStream> =
                    rustls::StreamOwned::new(connection, tcp);
                if let Some((head, body)) = read_request(&mut tls) {
                    let reply = "HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    answer(&mut tls, &head, &body, &kept, reply);
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            });
        }
    });
    (base, pem, got)
}

fn delivery(url: &str, method: WebhookMethod) -> Delivery {
    let event = Event {
        id: "exec-0123456789abcdef0123-7-InstanceFailed".into(),
        name: "ACS-ESS-RollingUpdateByRunCommandInScalingGroup".into(),
        level: EventLevel::Critical,
        kind: EventKind::InstanceFailed,
        group_id: ScalingGroupId::parse("asg-0123456789abcdef0123").unwrap(),
        execution_id: Some(ExecutionId::parse("exec-0123456789abcdef0123").unwrap()),
        content: "instance i-1 failed: exit 3".into(),
        created_at: 1_000,
    };
    Delivery {
        id: format!("oncall/pager/{}", event.id),
        rule_name: "oncall".into(),
        webhook_id: "pager".into(),
        url: url.into(),
        method,
        event,
        status: DeliveryStatus::Pending,
        attempts: 0,
        next_attempt_at: 0,
        last_error: None,
        created_at: 0,
        delivered_at: None,
    }
}

#[tokio::test]
async fn posts_json_and_gets_query_parameters_over_http() {
    let (base, got) = http_receiver("HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let notifier = WebhookNotifier::new(Duration::from_secs(5));
    let post = delivery(&format!("{base}/hook?token=abc"), WebhookMethod::Post);
    assert_eq!(notifier.send(&post).await, AttemptOutcome::Answered(200));
    let get = delivery(&format!("{base}/get"), WebhookMethod::Get);
    assert_eq!(notifier.send(&get).await, AttemptOutcome::Answered(200));
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert!(got[0].0.starts_with("POST /hook?token=abc "), "{}", got[0].0);
    assert_eq!(got[0].1.as_deref(), Some(post.id.as_str()));
    let body: serde_json::Value = serde_json::from_str(&got[0].2).unwrap();
    assert_eq!((body["kind"].as_str(), body["level"].as_str()), (Some("InstanceFailed"), Some("CRITICAL")));
    assert!(got[1].0.starts_with("GET /get?"), "{}", got[1].0);
    assert!(got[1].0.contains("kind=InstanceFailed") && got[1].0.contains("level=CRITICAL"), "{}", got[1].0);
}

#[tokio::test]
async fn an_error_status_or_a_redirect_is_the_answer_and_a_closed_port_is_no_answer() {
    let (failing, _) = http_receiver("HTTP/1.1 503 Busy\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let (moving, _) = http_receiver(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    );
    let notifier = WebhookNotifier::new(Duration::from_secs(5));
    assert_eq!(notifier.send(&delivery(&failing, WebhookMethod::Post)).await, AttemptOutcome::Answered(503));
    assert_eq!(
        notifier.send(&delivery(&moving, WebhookMethod::Post)).await,
        AttemptOutcome::Answered(302),
        "not followed"
    );
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/x?secret=do-not-log", listener.local_addr().unwrap())
    };
    match notifier.send(&delivery(&closed, WebhookMethod::Post)).await {
        AttemptOutcome::Unreachable(reason) => {
            assert!(reason.starts_with("could not connect (http://127.0.0.1:"), "{reason}");
            assert!(!reason.contains("do-not-log"), "{reason}");
        }
        other => panic!("a closed port answered: {other:?}"),
    }
}

#[tokio::test]
async fn https_webhooks_trust_the_given_ca_and_refuse_an_unknown_one() {
    let (base, pem, got) = https_receiver();
    let url = format!("{base}/secure?token=t");
    let trusting = WebhookNotifier::with_roots(Duration::from_secs(5), Some(pem.as_bytes())).unwrap();
    assert_eq!(trusting.send(&delivery(&url, WebhookMethod::Post)).await, AttemptOutcome::Answered(204));
    let got_now = got.lock().unwrap().clone();
    assert_eq!(got_now.len(), 1);
    assert!(got_now[0].0.starts_with("POST /secure?token=t "), "{}", got_now[0].0);
    assert!(got_now[0].2.contains("\"deliveryId\""), "{}", got_now[0].2);

    let default = WebhookNotifier::new(Duration::from_secs(5));
    match default.send(&delivery(&url, WebhookMethod::Post)).await {
        AttemptOutcome::Unreachable(reason) => {
            assert!(reason.contains("TLS handshake failed"), "{reason}");
            assert!(!reason.contains("token=t"), "{reason}");
        }
        other => panic!("an untrusted certificate was accepted: {other:?}"),
    }
    assert_eq!(got.lock().unwrap().len(), 1, "nothing reached the receiver without trust");
    assert!(WebhookNotifier::with_roots(Duration::from_secs(5), Some(b"not a certificate")).is_err());
}
