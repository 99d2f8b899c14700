//! The web console's files through the real router: each under `/console/` with its content
//! type and a content security policy, `/console` redirected, unknown files 404, the RPC API
//! on `/` still answering; the console's scripts call `/v1` only; and the REST route the
//! console's "Edit image" uses.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use rollscale_server::rest::auth::make_token;
use rollscale_server::{router, AuthConfig};
use rollscale_test_support::server;
use serde_json::json;
use tower::ServiceExt;

const KEY_ID: &str = "LTAIconsoleKeyId00000";
const SECRET: &str = "consoleSecret";

async fn get(router: &axum::Router, path: &str) -> (u16, axum::http::HeaderMap, String) {
    let response = router.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn the_console_is_served_beside_the_apis() {
    let (service, _dir) = server::service(KEY_ID, SECRET, 1).await;
    let router = router(service, AuthConfig::default());

    let (status, headers, _) = get(&router, "/console").await;
    assert_eq!(status, 308);
    assert_eq!(headers["location"], "/console/");

    let (status, headers, page) = get(&router, "/console/").await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert!(page.contains(r#"<script type="module" src="app.js"></script>"#), "{page}");
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"), "{policy}");
    assert_eq!(headers["x-content-type-options"], "nosniff");

    for (file, content_type) in [
        ("style.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("api.js", "text/javascript; charset=utf-8"),
        ("index.html", "text/html; charset=utf-8"),
    ] {
        let (status, headers, text) = get(&router, &format!("/console/{file}")).await;
        assert_eq!((status, headers["content-type"].to_str().unwrap()), (200, content_type), "{file}");
        assert!(!text.is_empty(), "{file}");
    }
    let (status, _, _) = get(&router, "/console/secrets.txt").await;
    assert_eq!(status, 404);
    let (status, _, _) = get(&router, "/console/../Cargo.toml").await;
    assert_eq!(status, 404);

    // The RPC API still owns `/`: an unsigned call is refused in its JSON shape, a signed one
    // answers.
    let (status, _, body) = get(&router, "/?Action=DescribeScalingGroups&Version=2014-08-28").await;
    let refused: serde_json::Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert!(status >= 400 && refused["Code"].is_string(), "{status} {body}");
    let (status, answer) =
        server::send(&router, server::rpc_request(KEY_ID, SECRET, "2014-08-28", "DescribeScalingGroups", &[])).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["ScalingGroups"].is_object(), "{answer}");
}

/// The console's architecture rule: its scripts call the public REST API and nothing else.
/// Every path they name (a string that starts with `/` and a letter) is under `/v1/`.
#[test]
fn the_console_calls_the_rest_api_only() {
    for (name, text) in [("app.js", include_str!("../console/app.js")), ("api.js", include_str!("../console/api.js"))] {
        let mut paths = 0;
        for quote in ['"', '`', '\''] {
            let opening = format!("{quote}/");
            for (at, _) in text.match_indices(&opening) {
                let rest = &text[at + 1..];
                if !rest[1..].starts_with(|c: char| c.is_ascii_alphanumeric()) {
                    continue;
                }
                assert!(rest.starts_with("/v1/"), "{name} names a path outside /v1: {}", &rest[..rest.len().min(40)]);
                paths += 1;
            }
        }
        assert!(paths > 0, "{name} calls the API");
    }
}

#[tokio::test]
async fn a_scaling_configuration_s_image_changes_over_rest() {
    let (service, _dir) = server::service(KEY_ID, SECRET, 1).await;
    let router = router(service.clone(), AuthConfig::default());
    let token = make_token(KEY_ID, SECRET, chrono::Utc::now().timestamp() + 600);
    let call = |method: &str, path: &str, body: Option<serde_json::Value>| {
        server::send(&router, server::rest_request(&token, method, path, body.as_ref()))
    };
    let (_, group) =
        call("post", "/v1/scaling-groups", Some(json!({"name": "web", "min_size": 0, "max_size": 2}))).await;
    for image in ["img-old", "img-new"] {
        let (status, body) = call("post", "/v1/images", Some(json!({"id": image}))).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, created) = call(
        "post",
        "/v1/scaling-configurations",
        Some(json!({"scaling_group_id": group["id"], "image_id": "img-old"})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let path = format!("/v1/scaling-configurations/{}", created["id"].as_str().unwrap());

    let (status, changed) = call("patch", &path, Some(json!({"image_id": "img-new"}))).await;
    assert_eq!((status, changed["image_id"].as_str()), (200, Some("img-new")), "{changed}");
    let (_, read) = call("get", &path, None).await;
    assert_eq!(read["image_id"], "img-new");

    let (status, refused) = call("patch", &path, Some(json!({"image_id": "img-nowhere"}))).await;
    assert_eq!((status, refused["Code"].as_str()), (404, Some("InvalidImageId.NotFound")), "{refused}");
    let (status, refused) = call("patch", &path, Some(json!({"imageId": "img-new"}))).await;
    assert_eq!((status, refused["Code"].as_str()), (400, Some("InvalidParameter")), "{refused}");
    let (_, read) = call("get", &path, None).await;
    assert_eq!(read["image_id"], "img-new", "a refused change changes nothing");
}
