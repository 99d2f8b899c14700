//! Every refusal has the JSON error shape, whatever layer makes it: the handlers, axum's
//! extractors (a body over their limit, a path that is not UTF-8) or the router (a method a
//! route does not take).

use axum::body::Body;
use axum::http::Request;
use rollscale_test_support::server::{send, Api};

const KEY: &str = "LTAIrefusals000000000";
const SECRET: &str = "refusalsSecret";

fn form_post(bytes: usize) -> Request<Body> {
    Request::post("/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!("Action={}", "x".repeat(bytes))))
        .expect("a request")
}

#[tokio::test]
async fn refusals_below_the_handlers_have_the_json_error_shape() {
    let api = Api::new(KEY, SECRET).await;
    let cases: Vec<(&str, Request<Body>, u16, &str)> = vec![
        // Over the RPC API's 1 MiB, and over the extractor's own limit further on.
        ("an RPC body of 1.5 MiB", form_post(1536 * 1024), 413, "InvalidBody.TooLarge"),
        ("an RPC body of 3 MiB", form_post(3 * 1024 * 1024), 413, "InvalidBody.TooLarge"),
        (
            "a path that is not UTF-8",
            Request::get("/v1/instances/i-%FF%FE")
                .header("authorization", format!("Bearer {}", api.token))
                .body(Body::empty())
                .expect("a request"),
            400,
            "InvalidParameter",
        ),
        (
            "a method the route does not take",
            Request::delete("/v1/openapi.json").body(Body::empty()).expect("a request"),
            405,
            "MethodNotAllowed",
        ),
    ];
    for (what, request, status, code) in cases {
        let (got, answer) = send(&api.router, request).await;
        assert_eq!((got, answer["Code"].as_str()), (status, Some(code)), "{what}: {answer}");
        assert!(answer["RequestId"].as_str().is_some_and(|id| !id.is_empty()), "{what}: {answer}");
        assert!(answer["Message"].as_str().is_some_and(|m| !m.is_empty() && m.len() < 400), "{what}: {answer}");
    }
}

/// An ACS3-signed RPC request with a form body, its content type signed or not.
fn acs3_form(sign_content_type: bool) -> Request<Body> {
    use rollscale_client::sign::{acs3_headers, format_timestamp, random_nonce, Acs3Request};
    let body = "RegionId=local&PageSize=5";
    let content_type = ("content-type".to_string(), "application/x-www-form-urlencoded".to_string());
    let mut given = vec![
        ("host".to_string(), "127.0.0.1".to_string()),
        ("x-acs-action".to_string(), "DescribeScalingGroups".to_string()),
        ("x-acs-version".to_string(), "2014-08-28".to_string()),
    ];
    if sign_content_type {
        given.push(content_type.clone());
    }
    let parts = Acs3Request { method: "POST", path: "/", query: &[], headers: &given, body: body.as_bytes() };
    let mut headers = acs3_headers(&parts, KEY, SECRET, &format_timestamp(chrono::Utc::now()), &random_nonce());
    if !sign_content_type {
        headers.push(content_type);
    }
    let mut request = Request::post("/");
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    request.body(Body::from(body)).expect("a request")
}

/// A form body's parameters are read only with its content type, so an ACS3 request must sign
/// it: otherwise it could be re-sent as another type and its parameters left out unseen.
#[tokio::test]
async fn an_acs3_request_with_a_body_must_sign_its_content_type() {
    let api = Api::new(KEY, SECRET).await;
    let (status, answer) = send(&api.router, acs3_form(true)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["ScalingGroups"].is_object(), "{answer}");
    let (status, answer) = send(&api.router, acs3_form(false)).await;
    assert_eq!((status, answer["Code"].as_str()), (400, Some("IncompleteSignature")), "{answer}");
    assert!(answer["Message"].as_str().is_some_and(|m| m.contains("content-type")), "{answer}");
}

/// The readiness probe, unauthenticated: 200 when the store answers; when it does not, 503
/// `ServiceUnavailable` in the JSON error shape, within the probe's timeout.
#[tokio::test]
async fn readyz_says_whether_the_store_answers() {
    use rollscale_engine::{Engine, EngineConfig, Service};
    use rollscale_test_support::engine::Harness;
    use std::sync::Arc;
    let get = |path: &str| Request::get(path).body(Body::empty()).expect("a request");
    let harness = Harness::builder().build().await;
    let router = rollscale_server::router(harness.service.clone(), Default::default());
    let (status, answer) = send(&router, get("/readyz")).await;
    assert_eq!((status, answer), (200, serde_json::json!({ "status": "ready" })));

    // Every call of this store never returns, as if its database hung.
    let (stuck, _) = harness.store.crashing_at(0);
    let engine =
        Engine::new(stuck, Arc::new(harness.fleet.clone()), Arc::new(harness.lb.clone()), EngineConfig::default());
    let router = rollscale_server::router(Service::new(engine), Default::default());
    let started = std::time::Instant::now();
    let (status, answer) = send(&router, get("/readyz")).await;
    assert_eq!((status, answer["Code"].as_str()), (503, Some("ServiceUnavailable")), "{answer}");
    assert!(answer["Message"].as_str().is_some_and(|m| m.contains("did not answer")), "{answer}");
    assert!(answer["RequestId"].as_str().is_some_and(|id| !id.is_empty()), "{answer}");
    assert!(started.elapsed() < rollscale_server::READY_TIMEOUT * 3, "answered within its timeout");
}

/// The readiness probe asks the fleet too: a container fleet whose engine does not answer (a
/// socket nobody serves) is 503 `ServiceUnavailable`, saying it is the fleet.
#[tokio::test]
async fn readyz_says_whether_the_fleet_answers() {
    use rollscale_engine::{Engine, EngineConfig, Service};
    use rollscale_fleet::docker::{DockerConfig, DockerFleet};
    use rollscale_test_support::engine::Harness;
    use std::sync::Arc;
    let harness = Harness::builder().build().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    // A socket file that was listened on once and is no longer: connecting is refused.
    let path = dir.path().join("nobody.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).expect("a socket file"));
    let nobody = format!("unix://{}", path.display());
    let fleet = DockerFleet::connect(&nobody, DockerConfig::default()).expect("a client, not yet a connection");
    let engine =
        Engine::new(harness.store.clone(), Arc::new(fleet), Arc::new(harness.lb.clone()), EngineConfig::default());
    let router = rollscale_server::router(Service::new(engine), Default::default());
    let (status, answer) = send(&router, Request::get("/readyz").body(Body::empty()).expect("a request")).await;
    assert_eq!((status, answer["Code"].as_str()), (503, Some("ServiceUnavailable")), "{answer}");
    assert!(answer["Message"].as_str().is_some_and(|m| m.contains("the fleet failed")), "{answer}");
}

/// What the HTTP server refuses by itself, before the router (a request line over 64 KB, too
/// many headers, bytes that are not HTTP), also has the JSON error shape, over a real socket.
#[tokio::test]
async fn refusals_of_the_http_server_itself_have_the_json_error_shape() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = rollscale_test_support::server::spawn_app().await;
    let address = app.base_url.trim_start_matches("http://").to_string();
    let many_headers: String = (0..120).map(|i| format!("x-header-{i}: {i}\r\n")).collect();
    let cases = [
        (
            "an 80 KB query string",
            format!("GET /v1/scaling-groups?q={} HTTP/1.1\r\nhost: x\r\n\r\n", "a".repeat(80 * 1024)),
            414,
            "InvalidRequest.UriTooLong",
        ),
        (
            "120 headers",
            format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{many_headers}\r\n"),
            431,
            "InvalidRequest.HeadersTooLarge",
        ),
        ("bytes that are not HTTP", "NOT HTTP AT ALL\r\n\r\n".to_string(), 400, "InvalidRequest.Malformed"),
    ];
    for (what, request, status, code) in cases {
        let mut stream = tokio::net::TcpStream::connect(&address).await.expect("a connection");
        stream.write_all(request.as_bytes()).await.expect("the request is sent");
        let mut answer = String::new();
        // The server closes the connection after such a refusal.
        stream.read_to_string(&mut answer).await.expect("the answer is read");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{what}: {answer:?}"));
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{what}: {head}");
        assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{what}: {head}");
        let body: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body:?}"));
        assert_eq!(body["Code"], code, "{what}: {body}");
        assert_eq!(body["HostId"], "rollscale", "{what}: {body}");
        assert!(body["RequestId"].as_str().is_some_and(|id| !id.is_empty()), "{what}: {body}");
        assert!(body["Message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
    }
    // A request the server reads is answered as ever on a connection of the same kind.
    let mut stream = tokio::net::TcpStream::connect(&address).await.expect("a connection");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await.expect("sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("the answer is read");
    assert!(answer.starts_with("HTTP/1.1 200 ") && answer.ends_with("ok\n"), "{answer:?}");
}
