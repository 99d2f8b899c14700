//! The web console: static files embedded in the binary, served under `/console/`. The page
//! talks to the public REST API (`/v1`) only, with a bearer token it makes from the AccessKey
//! the operator signs in with; nothing here reads the `Service`.
//!
//! Architecture invariant: the console has no endpoint of its own. What it shows and does is
//! what `/v1` offers to any client, authorized and audited the same way.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// The console's files: (name, content type, bytes).
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", "text/html; charset=utf-8", include_str!("../console/index.html")),
    ("style.css", "text/css; charset=utf-8", include_str!("../console/style.css")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("../console/api.js")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../console/app.js")),
];

/// Scripts and styles from this origin only, calls to this origin only, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn file(name: &str) -> Response {
    let Some((_, content_type, text)) = FILES.iter().find(|(file, ..)| *file == name) else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "no such file\n")
            .into_response();
    };
    let mut response = (*text).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    response
}

/// `/console` (to `/console/`), `/console/` (the page) and `/console/{file}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/console", get(|| async { Redirect::permanent("/console/") }))
        .route("/console/", get(|| async { file("index.html") }))
        .route("/console/{name}", get(|Path(name): Path<String>| async move { file(&name) }))
}
