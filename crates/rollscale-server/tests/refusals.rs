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
