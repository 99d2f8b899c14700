//! A signed Alibaba Cloud RPC client for a rollscale endpoint.
//!
//! Every call is `POST /` with the parameters in the query string, signed with RPC signature
//! v1 (HMAC-SHA1) exactly as the old Python SDK does (docs/wire.md, "Signatures"). Error replies become
//! an [`ApiError`] carrying the server's `Code`, `Message` and `RequestId`.

use crate::sign::{format_timestamp, percent_encode, random_nonce, sign_v1_params};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// The OOS API version.
pub const OOS_VERSION: &str = "2019-06-01";
/// The ESS API version used by default (the seeds' and the old SDK's).
pub const ESS_VERSION: &str = "2014-08-28";
/// The ECS API version (launch templates, images).
pub const ECS_VERSION: &str = "2014-05-26";
/// The RAM API version (users, AccessKeys, policies, the audit log).
pub const RAM_VERSION: &str = "2015-05-01";
/// The CloudMonitor API version (alert rules over rollscale's events).
pub const CMS_VERSION: &str = "2019-01-01";

/// Beyond this length of the encoded parameters, they go in a form body instead of the
/// query string (HTTP servers refuse URIs longer than 64 KiB; a long script gets there).
const MAX_QUERY_BYTES: usize = 16 * 1024;

/// The code of an error raised before any reply arrived (as the old Python SDK names it).
pub const HTTP_ERROR_CODE: &str = "SDK.HttpError";

/// An error reply of the API, or a failure to get one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status of the reply; `None` when no reply arrived.
    pub http_status: Option<u16>,
    pub code: String,
    pub message: String,
    /// The server's request id; empty when none.
    pub request_id: String,
}

impl ApiError {
    pub fn new(http_status: Option<u16>, code: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError { http_status, code: code.into(), message: message.into(), request_id: String::new() }
    }

    /// Whether the request might succeed if sent again unchanged: no reply, or a 5xx.
    pub fn is_transient(&self) -> bool {
        match self.http_status {
            None => self.code == HTTP_ERROR_CODE,
            Some(status) => status >= 500,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if !self.request_id.is_empty() {
            write!(f, " (RequestId: {})", self.request_id)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// The API version to call a product with, by its lower-case name.
pub fn default_version(product: &str) -> Option<&'static str> {
    match product.to_ascii_lowercase().as_str() {
        "oos" => Some(OOS_VERSION),
        "ess" => Some(ESS_VERSION),
        "ecs" => Some(ECS_VERSION),
        "ram" => Some(RAM_VERSION),
        "cms" => Some(CMS_VERSION),
        _ => None,
    }
}

/// Calls one rollscale endpoint with one AccessKey.
pub struct Client {
    endpoint: String,
    access_key_id: String,
    secret: String,
    region_id: String,
    http: reqwest::Client,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("secret", &crate::redact(&self.secret))
            .field("region_id", &self.region_id)
            .finish()
    }
}

impl Client {
    /// A client for `endpoint` (`http://host:port`; a trailing `/` is ignored).
    pub fn new(endpoint: &str, access_key_id: &str, secret: &str, region_id: &str) -> Result<Client, ApiError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("rollscale-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| ApiError::new(None, HTTP_ERROR_CODE, format!("cannot make an HTTP client: {error}")))?;
        Ok(Client {
            endpoint: endpoint.trim().trim_end_matches('/').to_string(),
            access_key_id: access_key_id.to_string(),
            secret: secret.to_string(),
            region_id: region_id.to_string(),
            http,
        })
    }

    /// Calls `action` of the API `version` with `params` (names as on the wire, lists already
    /// flattened to `Name.N`). Returns the reply's JSON object.
    pub async fn call(&self, version: &str, action: &str, params: Vec<(String, String)>) -> Result<Value, ApiError> {
        let mut params = params;
        let has = |params: &[(String, String)], name: &str| params.iter().any(|(key, _)| key == name);
        params.push(("Action".into(), action.into()));
        // `sign_v1_params` adds Format, AccessKeyId, Timestamp, the nonce and the signature.
        params.push(("Version".into(), version.into()));
        if !has(&params, "RegionId") && !self.region_id.is_empty() {
            params.push(("RegionId".into(), self.region_id.clone()));
        }
        let timestamp = format_timestamp(chrono::Utc::now());
        let nonce = random_nonce();
        sign_v1_params("POST", &mut params, &self.access_key_id, &self.secret, &timestamp, &nonce);
        let encoded = encode_pairs(&params);
        let request = if encoded.len() <= MAX_QUERY_BYTES {
            self.http.post(format!("{}/?{encoded}", self.endpoint)).body(Vec::new())
        } else {
            self.http
                .post(format!("{}/", self.endpoint))
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(encoded)
        };
        tracing::debug!(endpoint = %self.endpoint, action, version, "calling");
        let response = request
            .header("x-acs-action", action)
            .header("x-acs-version", version)
            .send()
            .await
            .map_err(|error| self.transport_error(error))?;
        let status = response.status();
        let body = response.text().await.map_err(|error| self.transport_error(error))?;
        tracing::debug!(action, status = status.as_u16(), "reply");
        parse_reply(status.as_u16(), &body)
    }

    fn transport_error(&self, error: reqwest::Error) -> ApiError {
        // The innermost cause says what went wrong ("Connection refused (os error 111)"); the
        // URL is left out, as it repeats every parameter.
        let timeout = error.is_timeout();
        let error = error.without_url();
        let mut detail = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(inner) = source {
            detail = inner.to_string();
            source = inner.source();
        }
        let hint = if timeout {
            "the server did not answer in time"
        } else {
            "is the server running? Start one with `rollscale up`, or point the profile elsewhere with `rollscale configure --endpoint URL`"
        };
        ApiError::new(None, HTTP_ERROR_CODE, format!("cannot reach rollscale at {} ({detail}); {hint}", self.endpoint))
    }
}

/// `k=v&…` with both sides percent-encoded as RFC 3986 (valid in a query and in a form body).
fn encode_pairs(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|(key, value)| format!("{}={}", percent_encode(key), percent_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn text_field<'a>(object: &'a Value, names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| object.get(name).and_then(Value::as_str)).filter(|s| !s.is_empty())
}

/// Turns a reply into the JSON object of a success or the [`ApiError`] of a failure.
fn parse_reply(status: u16, body: &str) -> Result<Value, ApiError> {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    if (200..300).contains(&status) {
        return match parsed {
            Some(value @ Value::Object(_)) => Ok(value),
            _ => Err(ApiError::new(
                Some(status),
                "SDK.InvalidResponse",
                format!("the server's reply is not a JSON object: {}", excerpt(body)),
            )),
        };
    }
    match parsed.filter(Value::is_object) {
        Some(object) => Err(ApiError {
            http_status: Some(status),
            code: text_field(&object, &["Code", "code"]).unwrap_or("SDK.UnknownServerError").to_string(),
            message: text_field(&object, &["Message", "message"])
                .map(str::to_string)
                .unwrap_or_else(|| format!("HTTP {status}: {}", excerpt(body))),
            request_id: text_field(&object, &["RequestId", "requestId"]).unwrap_or("").to_string(),
        }),
        None => Err(ApiError::new(
            Some(status),
            "SDK.UnknownServerError",
            format!("HTTP {status}, ServerResponseBody: {}", excerpt(body)),
        )),
    }
}

fn excerpt(body: &str) -> String {
    const MAX: usize = 300;
    let trimmed = body.trim();
    if trimmed.is_empty() {
        return "(empty)".into();
    }
    match trimmed.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::RawQuery;
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::IntoResponse;
    use std::sync::{Arc, Mutex};

    #[derive(Debug, Clone)]
    struct Seen {
        method: Method,
        path: String,
        query: String,
        action_header: Option<String>,
        version_header: Option<String>,
        content_type: Option<String>,
        body: String,
    }

    /// A one-route server on 127.0.0.1:0 that records each request and answers with `status`
    /// and `body`.
    async fn spawn(status: StatusCode, reply: &'static str) -> (String, Arc<Mutex<Vec<Seen>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let handler = move |method: Method, uri: Uri, RawQuery(query): RawQuery, headers: HeaderMap, body: String| {
            let record = record.clone();
            async move {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
                record.lock().unwrap().push(Seen {
                    method,
                    path: uri.path().to_string(),
                    query: query.unwrap_or_default(),
                    action_header: header("x-acs-action"),
                    version_header: header("x-acs-version"),
                    content_type: header("content-type"),
                    body,
                });
                let content_type = [("content-type", "application/json;charset=utf-8")];
                (status, content_type, reply).into_response()
            }
        };
        let app = axum::Router::new().fallback(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{address}"), seen)
    }

    fn query_pairs(query: &str) -> Vec<(String, String)> {
        reqwest::Url::parse(&format!("http://x/?{query}"))
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[tokio::test]
    async fn error_reply_becomes_api_error_and_request_is_signed_post() {
        let (endpoint, seen) = spawn(
            StatusCode::NOT_FOUND,
            r#"{"RequestId":"REQ-1","HostId":"oos.local","Code":"EntityNotExists.Execution","Message":"the execution exec-x does not exist"}"#,
        )
        .await;
        let client = Client::new(&format!("{endpoint}/"), "LTAIdummy", "dummySecret", "local").unwrap();
        let error = client
            .call(
                OOS_VERSION,
                "ListExecutions",
                vec![("ExecutionId".into(), "exec-x".into()), ("Note".into(), "a b+c*~/中".into())],
            )
            .await
            .unwrap_err();
        assert_eq!(error.http_status, Some(404));
        assert_eq!(error.code, "EntityNotExists.Execution");
        assert_eq!(error.request_id, "REQ-1");
        assert_eq!(
            error.to_string(),
            "EntityNotExists.Execution: the execution exec-x does not exist (RequestId: REQ-1)"
        );

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1);
        let request = &seen[0];
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.path, "/");
        assert_eq!(request.action_header.as_deref(), Some("ListExecutions"));
        assert_eq!(request.version_header.as_deref(), Some(OOS_VERSION));
        assert!(!request.query.contains('+') && !request.query.contains(' '), "{}", request.query);
        let pairs = query_pairs(&request.query);
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        assert_eq!(get("Action"), Some("ListExecutions"));
        assert_eq!(get("Version"), Some(OOS_VERSION));
        assert_eq!(get("RegionId"), Some("local"));
        assert_eq!(get("ExecutionId"), Some("exec-x"));
        assert_eq!(get("Note"), Some("a b+c*~/中"));
        assert_eq!(get("AccessKeyId"), Some("LTAIdummy"));
        assert_eq!(get("SignatureMethod"), Some("HMAC-SHA1"));
        let nonce = get("SignatureNonce").unwrap();
        assert_eq!(nonce.len(), 32);
        assert!(nonce.bytes().all(|b| b.is_ascii_hexdigit()));
        let timestamp = get("Timestamp").unwrap();
        assert!(chrono::NaiveDateTime::parse_from_str(timestamp, "%Y-%m-%dT%H:%M:%SZ").is_ok(), "{timestamp}");
        assert!(!get("Signature").unwrap_or("").is_empty());
        // The signature is the v1 signature of the other parameters.
        let mut resigned: Vec<(String, String)> = pairs.iter().filter(|(k, _)| k != "Signature").cloned().collect();
        sign_v1_params("POST", &mut resigned, "LTAIdummy", "dummySecret", timestamp, nonce);
        let expected = resigned.into_iter().find(|(k, _)| k == "Signature").map(|(_, v)| v);
        assert_eq!(get("Signature").map(str::to_string), expected);
    }

    #[tokio::test]
    async fn long_parameters_go_in_a_signed_form_body() {
        let (endpoint, seen) = spawn(StatusCode::OK, r#"{"RequestId":"R"}"#).await;
        let client = Client::new(&endpoint, "id", "secret", "local").unwrap();
        let script = "echo 0123456789 && ".repeat(2_000);
        client.call(OOS_VERSION, "StartExecution", vec![("Parameters".into(), script.clone())]).await.unwrap();
        let seen = seen.lock().unwrap().clone();
        let request = &seen[0];
        assert_eq!(request.method, Method::POST);
        assert_eq!(request.query, "");
        assert_eq!(request.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
        let pairs = query_pairs(&request.body);
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        assert_eq!(get("Parameters"), Some(script));
        assert_eq!(get("Action").as_deref(), Some("StartExecution"));
        let mut resigned: Vec<(String, String)> = pairs.iter().filter(|(k, _)| k != "Signature").cloned().collect();
        let (timestamp, nonce) = (get("Timestamp").unwrap(), get("SignatureNonce").unwrap());
        sign_v1_params("POST", &mut resigned, "id", "secret", &timestamp, &nonce);
        assert_eq!(resigned.last().map(|(_, v)| v.clone()), get("Signature"));
    }

    #[tokio::test]
    async fn success_reply_is_the_json_object() {
        let (endpoint, _) = spawn(StatusCode::OK, r#"{"RequestId":"R","Executions":[]}"#).await;
        let client = Client::new(&endpoint, "id", "secret", "local").unwrap();
        let value = client.call(OOS_VERSION, "ListExecutions", Vec::new()).await.unwrap();
        assert_eq!(value["RequestId"], "R");
    }

    #[tokio::test]
    async fn connection_refused_is_an_http_error_naming_the_endpoint() {
        // Bind then drop a listener: nothing listens on that port any more.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let endpoint = format!("http://{address}");
        let client = Client::new(&endpoint, "id", "secret", "local").unwrap();
        let error = client.call(OOS_VERSION, "ListExecutions", Vec::new()).await.unwrap_err();
        assert_eq!(error.code, HTTP_ERROR_CODE);
        assert_eq!(error.http_status, None);
        assert!(error.message.contains(&endpoint), "{}", error.message);
        assert!(error.message.contains("rollscale up"), "{}", error.message);
        assert!(error.is_transient());
    }

    #[test]
    fn non_json_error_bodies_are_reported() {
        let error = parse_reply(502, "Bad Gateway").unwrap_err();
        assert_eq!(error.code, "SDK.UnknownServerError");
        assert!(error.message.contains("Bad Gateway"));
        assert!(error.is_transient());
        let error = parse_reply(200, "").unwrap_err();
        assert_eq!(error.code, "SDK.InvalidResponse");
        let error = parse_reply(400, r#"{"code":"InvalidParameter","message":"bad"}"#).unwrap_err();
        assert_eq!(error.to_string(), "InvalidParameter: bad");
        assert!(!error.is_transient());
    }

    #[test]
    fn versions_by_product() {
        assert_eq!(default_version("OOS"), Some("2019-06-01"));
        assert_eq!(default_version("ess"), Some("2014-08-28"));
        assert_eq!(default_version("ecs"), Some("2014-05-26"));
        assert_eq!(default_version("vpc"), None);
    }
}
