//! Verifying Alibaba Cloud request signatures: RPC v1 (HMAC-SHA1 over the sorted parameters)
//! and ACS3-HMAC-SHA256 (canonical request in the `Authorization` header). The signatures
//! themselves are computed by `rollscale_client::sign`, the code the CLI signs with, re-exported
//! here.

use chrono::{DateTime, Utc};
use rollscale_core::Code;

use super::request::RpcRequest;
pub use rollscale_client::sign::{
    acs3_canonical_request, acs3_signature, acs3_string_to_sign, constant_time_eq, format_timestamp, percent_encode,
    random_nonce, sha256_hex, sign_v1_params, v1_signature, v1_string_to_sign, ACS3_ALGORITHM, EMPTY_BODY_SHA256,
    V1_SIGNATURE_METHOD,
};

/// The start of the `SignatureDoesNotMatch` message; the server's string to sign follows.
/// The old Python SDK splits this message on `:`, so it must keep its colon.
pub const SIGNATURE_MISMATCH_PREFIX: &str =
    "Specified signature is not matched with our calculation. server string to sign is:";

/// Which signature scheme a request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// RPC v1: `Signature` parameter, HMAC-SHA1.
    V1,
    /// `Authorization: ACS3-HMAC-SHA256 ...`.
    Acs3,
}

/// A successfully verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The AccessKeyId that signed the request.
    pub access_key_id: String,
    /// `SignatureNonce` / `x-acs-signature-nonce`, for the caller's replay check.
    /// `verify` rejects requests without one, so this is always `Some`.
    pub nonce: Option<String>,
    /// `Timestamp` / `x-acs-date`. `verify` rejects requests without one, so this is
    /// always `Some`.
    pub timestamp: Option<DateTime<Utc>>,
    /// The scheme used.
    pub scheme: Scheme,
}

/// Why a request failed authentication. Never carries a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an ACS3 `Authorization` header nor `Signature`/`AccessKeyId` params.
    #[error(
        "the request carries no signature: send an `Authorization: ACS3-HMAC-SHA256 ...` \
         header or the `AccessKeyId` and `Signature` parameters"
    )]
    NoSignature,
    /// Signature data is present but incomplete or malformed.
    #[error("{0}")]
    IncompleteSignature(String),
    /// A parameter or header that authentication needs is absent.
    #[error("the input parameter \"{0}\" that is mandatory for processing this request is not supplied")]
    MissingParameter(&'static str),
    /// `SignatureMethod` is not HMAC-SHA1.
    #[error("the specified SignatureMethod \"{0}\" is not supported; use HMAC-SHA1")]
    UnsupportedSignatureMethod(String),
    /// `x-acs-content-sha256` differs from the SHA-256 of the body.
    #[error("the x-acs-content-sha256 header does not match the SHA-256 of the request body")]
    ContentSha256Mismatch,
    /// The timestamp cannot be parsed.
    #[error(
        "Specified time stamp or date value is not well formatted: \"{0}\"; \
         expected YYYY-MM-DDThh:mm:ssZ in UTC"
    )]
    TimestampFormat(String),
    /// The timestamp is outside the allowed clock skew.
    #[error(
        "Specified time stamp or date header is expired: {timestamp} is more than \
         {max_skew_secs} seconds away from the server time {now}"
    )]
    TimestampExpired {
        /// The request's timestamp, as sent.
        timestamp: String,
        /// The server time, formatted.
        now: String,
        /// The allowed skew.
        max_skew_secs: i64,
    },
    /// The AccessKeyId is unknown.
    #[error("Specified access key is not found: {0}")]
    AccessKeyNotFound(String),
    /// The signature is wrong. Holds the server's string to sign.
    #[error("Specified signature is not matched with our calculation. server string to sign is:{0}")]
    SignatureDoesNotMatch(String),
}

impl AuthError {
    /// The Aliyun error code for the response's `Code` field.
    pub fn code(&self) -> Code {
        match self {
            AuthError::NoSignature | AuthError::IncompleteSignature(_) => Code::IncompleteSignature,
            AuthError::MissingParameter(_) => Code::MissingParameter,
            AuthError::UnsupportedSignatureMethod(_) | AuthError::ContentSha256Mismatch => Code::InvalidParameter,
            AuthError::TimestampFormat(_) => Code::InvalidTimeStampFormat,
            AuthError::TimestampExpired { .. } => Code::InvalidTimeStampExpired,
            AuthError::AccessKeyNotFound(_) => Code::InvalidAccessKeyIdNotFound,
            AuthError::SignatureDoesNotMatch(_) => Code::SignatureDoesNotMatch,
        }
    }
}

/// Parse `YYYY-MM-DDThh:mm:ssZ` (fractional seconds allowed) as UTC.
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, AuthError> {
    rollscale_client::sign::parse_timestamp(s).ok_or_else(|| AuthError::TimestampFormat(s.to_string()))
}

/// The parts of an `Authorization: ACS3-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acs3Authorization {
    /// `Credential`, the AccessKeyId.
    pub access_key_id: String,
    /// `SignedHeaders`, lower case, in the order given.
    pub signed_headers: Vec<String>,
    /// `Signature`, hex.
    pub signature: String,
}

/// Parse `ACS3-HMAC-SHA256 Credential=<AK>,SignedHeaders=<a;b>,Signature=<hex>`.
pub fn parse_acs3_authorization(value: &str) -> Result<Acs3Authorization, AuthError> {
    let incomplete =
        |what: &str| AuthError::IncompleteSignature(format!("the Authorization header is malformed: {what}"));
    let (algorithm, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if algorithm != ACS3_ALGORITHM {
        return Err(incomplete(&format!("unsupported algorithm \"{algorithm}\", expected {ACS3_ALGORITHM}")));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let Some((key, val)) = part.split_once('=') else {
            continue;
        };
        let val = val.trim();
        match key.trim() {
            "Credential" => credential = Some(val),
            "SignedHeaders" => signed_headers = Some(val),
            "Signature" => signature = Some(val),
            _ => {}
        }
    }
    let access_key_id = credential.filter(|v| !v.is_empty()).ok_or_else(|| incomplete("Credential is missing"))?;
    let signed_headers: Vec<String> = signed_headers
        .ok_or_else(|| incomplete("SignedHeaders is missing"))?
        .split(';')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    if signed_headers.is_empty() {
        return Err(incomplete("SignedHeaders is empty"));
    }
    let signature = signature.filter(|v| !v.is_empty()).ok_or_else(|| incomplete("Signature is missing"))?;
    Ok(Acs3Authorization { access_key_id: access_key_id.to_string(), signed_headers, signature: signature.to_string() })
}

/// Authenticate `req`. `secret_of` maps an AccessKeyId to its secret; the request's
/// timestamp must lie within `max_skew` of `now`. Nonce replay is left to the caller,
/// which gets the nonce in [`Verified`].
///
/// With `Authorization: ACS3-HMAC-SHA256 ...` the ACS3 scheme is used (every `x-acs-*`
/// header present must be signed, and `x-acs-content-sha256`, when sent, must match
/// the body); otherwise the `Signature` and `AccessKeyId` params select RPC v1 over
/// the merged query and form params.
pub fn verify(
    req: &RpcRequest,
    secret_of: &dyn Fn(&str) -> Option<String>,
    now: DateTime<Utc>,
    max_skew: chrono::Duration,
) -> Result<Verified, AuthError> {
    match req.header("authorization") {
        Some(auth) if auth.trim_start().starts_with(ACS3_ALGORITHM) => verify_acs3(req, auth, secret_of, now, max_skew),
        _ => verify_v1(req, secret_of, now, max_skew),
    }
}

fn verify_v1(
    req: &RpcRequest,
    secret_of: &dyn Fn(&str) -> Option<String>,
    now: DateTime<Utc>,
    max_skew: chrono::Duration,
) -> Result<Verified, AuthError> {
    let params = req.params();
    let (access_key_id, signature) = match (params.get_nonempty("AccessKeyId"), params.get_nonempty("Signature")) {
        (None, None) => return Err(AuthError::NoSignature),
        (None, Some(_)) => return Err(AuthError::MissingParameter("AccessKeyId")),
        (Some(_), None) => return Err(AuthError::MissingParameter("Signature")),
        (Some(ak), Some(sig)) => (ak, sig),
    };
    if let Some(method) = params.get("SignatureMethod") {
        if method != V1_SIGNATURE_METHOD {
            return Err(AuthError::UnsupportedSignatureMethod(method.to_string()));
        }
    }
    let timestamp = params.get_nonempty("Timestamp").ok_or(AuthError::MissingParameter("Timestamp"))?;
    let nonce = params.get_nonempty("SignatureNonce").ok_or(AuthError::MissingParameter("SignatureNonce"))?;
    let timestamp = check_timestamp(timestamp, now, max_skew)?;
    let secret = secret_of(access_key_id).ok_or_else(|| AuthError::AccessKeyNotFound(access_key_id.to_string()))?;

    let pairs: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let string_to_sign = v1_string_to_sign(&req.method, &pairs);
    let expected = v1_signature(&string_to_sign, &secret);
    if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
        return Err(AuthError::SignatureDoesNotMatch(string_to_sign));
    }
    Ok(Verified {
        access_key_id: access_key_id.to_string(),
        nonce: Some(nonce.to_string()),
        timestamp: Some(timestamp),
        scheme: Scheme::V1,
    })
}

fn verify_acs3(
    req: &RpcRequest,
    authorization: &str,
    secret_of: &dyn Fn(&str) -> Option<String>,
    now: DateTime<Utc>,
    max_skew: chrono::Duration,
) -> Result<Verified, AuthError> {
    let auth = parse_acs3_authorization(authorization)?;
    if let Some((name, _)) =
        req.headers.iter().find(|(name, _)| name.starts_with("x-acs-") && !auth.signed_headers.contains(name))
    {
        return Err(AuthError::IncompleteSignature(format!("the header \"{name}\" must be listed in SignedHeaders")));
    }
    for name in &auth.signed_headers {
        if req.headers.iter().filter(|(n, _)| n == name).count() > 1 {
            return Err(AuthError::IncompleteSignature(format!("the signed header \"{name}\" appears more than once")));
        }
    }
    let hashed_payload = sha256_hex(&req.body);
    if let Some(claimed) = req.header("x-acs-content-sha256") {
        if !claimed.trim().eq_ignore_ascii_case(&hashed_payload) {
            return Err(AuthError::ContentSha256Mismatch);
        }
    }
    let timestamp = nonempty_header(req, "x-acs-date").ok_or(AuthError::MissingParameter("x-acs-date"))?;
    let nonce =
        nonempty_header(req, "x-acs-signature-nonce").ok_or(AuthError::MissingParameter("x-acs-signature-nonce"))?;
    let timestamp = check_timestamp(timestamp, now, max_skew)?;
    let secret =
        secret_of(&auth.access_key_id).ok_or_else(|| AuthError::AccessKeyNotFound(auth.access_key_id.clone()))?;

    let canonical =
        acs3_canonical_request(&req.method, &req.path, &req.query, &req.headers, &auth.signed_headers, &hashed_payload);
    let string_to_sign = acs3_string_to_sign(&canonical);
    let expected = acs3_signature(&string_to_sign, &secret);
    let received = auth.signature.to_ascii_lowercase();
    if !constant_time_eq(expected.as_bytes(), received.as_bytes()) {
        return Err(AuthError::SignatureDoesNotMatch(string_to_sign));
    }
    Ok(Verified {
        access_key_id: auth.access_key_id,
        nonce: Some(nonce.to_string()),
        timestamp: Some(timestamp),
        scheme: Scheme::Acs3,
    })
}

fn nonempty_header<'a>(req: &'a RpcRequest, name: &str) -> Option<&'a str> {
    req.header(name).map(str::trim).filter(|v| !v.is_empty())
}

fn check_timestamp(raw: &str, now: DateTime<Utc>, max_skew: chrono::Duration) -> Result<DateTime<Utc>, AuthError> {
    let timestamp = parse_timestamp(raw)?;
    if (now - timestamp).abs() > max_skew {
        return Err(AuthError::TimestampExpired {
            timestamp: raw.to_string(),
            now: format_timestamp(now),
            max_skew_secs: max_skew.num_seconds(),
        });
    }
    Ok(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    const AK: &str = "testid";
    const SECRET: &str = "testsecret";

    fn secrets(ak: &str) -> Option<String> {
        (ak == AK).then(|| SECRET.to_string())
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 12, 0, 0).unwrap()
    }

    fn skew() -> Duration {
        Duration::minutes(15)
    }

    /// Encode pairs as a query string the way the old SDK does (`%20` for spaces).
    fn encode_query(params: &[(String, String)]) -> String {
        params.iter().map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))).collect::<Vec<_>>().join("&")
    }

    fn signed_v1_request(extra: &[(&str, &str)]) -> RpcRequest {
        let mut params = pairs(extra);
        sign_v1_params("POST", &mut params, AK, SECRET, "2024-01-01T12:00:00Z", "0123456789abcdef0123456789abcdef");
        RpcRequest::from_parts("POST", "/", Some(&encode_query(&params)), Vec::new(), Vec::new()).unwrap()
    }

    /// Build an ACS3-signed request the way the tea SDK does.
    fn signed_acs3_request(query: &[(&str, &str)], body: &[u8], secret: &str) -> RpcRequest {
        let query = pairs(query);
        let mut headers = pairs(&[
            ("host", "127.0.0.1:8080"),
            ("x-acs-version", "2019-06-01"),
            ("x-acs-action", "ListExecutions"),
            ("user-agent", "test"),
            ("x-acs-date", "2024-01-01T12:00:00Z"),
            ("x-acs-signature-nonce", "n-1"),
            ("accept", "application/json"),
        ]);
        headers.push(("x-acs-content-sha256".into(), sha256_hex(body)));
        if !body.is_empty() {
            headers.push(("content-type".into(), "application/x-www-form-urlencoded".into()));
        }
        let mut signed: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
        signed.sort();
        let canonical = acs3_canonical_request("POST", "/", &query, &headers, &signed, &sha256_hex(body));
        let sig = acs3_signature(&acs3_string_to_sign(&canonical), secret);
        headers.push((
            "Authorization".into(),
            format!("ACS3-HMAC-SHA256 Credential={AK},SignedHeaders={},Signature={sig}", signed.join(";")),
        ));
        RpcRequest::from_parts("POST", "/", Some(&encode_query(&query)), headers, body.to_vec()).unwrap()
    }

    #[test]
    fn sign_v1_then_verify_round_trip() {
        let req = signed_v1_request(&[
            ("Action", "StartExecution"),
            ("Version", "2019-06-01"),
            ("Parameters", "{\"commandContent\": \"echo hi+ ~/x* 中\"}"),
            ("Format", "XML"),
            ("Signature", "stale"),
        ]);
        let params = req.params();
        assert_eq!(params.get("Format"), Some("JSON"));
        assert_eq!(params.get("SignatureMethod"), Some("HMAC-SHA1"));
        assert_eq!(params.get("SignatureVersion"), Some("1.0"));
        assert_eq!(req.query.iter().filter(|(k, _)| k == "Signature").count(), 1);
        let v = verify(&req, &secrets, now(), skew()).unwrap();
        assert_eq!(
            v,
            Verified {
                access_key_id: AK.into(),
                nonce: Some("0123456789abcdef0123456789abcdef".into()),
                timestamp: Some(now()),
                scheme: Scheme::V1,
            }
        );
    }

    #[test]
    fn v1_tampering_wrong_secret_and_unknown_key() {
        let mut req = signed_v1_request(&[("Action", "CancelExecution"), ("ExecutionId", "e-1")]);
        let wrong = |_: &str| Some("other".to_string());
        let err = verify(&req, &wrong, now(), skew()).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch");
        assert_eq!(err.code().class(), rollscale_core::Class::Invalid);
        let AuthError::SignatureDoesNotMatch(sts) = &err else { panic!("{err:?}") };
        assert_eq!(err.to_string(), format!("{SIGNATURE_MISMATCH_PREFIX}{sts}"));
        assert!(sts.starts_with("POST&%2F&AccessKeyId%3Dtestid"));

        let none = |_: &str| None;
        let err = verify(&req, &none, now(), skew()).unwrap_err();
        assert_eq!(err.code(), "InvalidAccessKeyId.NotFound");
        assert_eq!(err.code().class(), rollscale_core::Class::NotFound);

        for (k, v) in req.query.iter_mut() {
            if k == "ExecutionId" {
                *v = "e-2".into();
            }
        }
        let err = verify(&req, &secrets, now(), skew()).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch");
    }

    #[test]
    fn v1_form_params_are_signed_too() {
        let mut params = pairs(&[("Action", "EnterStandby"), ("InstanceId.1", "i-1")]);
        sign_v1_params("POST", &mut params, AK, SECRET, "2024-01-01T12:00:00Z", "n");
        let (form, query): (Vec<_>, Vec<_>) = params.into_iter().partition(|(k, _)| k == "InstanceId.1");
        let build = |body: &str| {
            RpcRequest::from_parts(
                "POST",
                "/",
                Some(&encode_query(&query)),
                vec![("Content-Type".into(), "application/x-www-form-urlencoded".into())],
                body.as_bytes().to_vec(),
            )
            .unwrap()
        };
        assert_eq!(form, pairs(&[("InstanceId.1", "i-1")]));
        assert!(verify(&build("InstanceId.1=i-1"), &secrets, now(), skew()).is_ok());
        let err = verify(&build("InstanceId.1=i-2"), &secrets, now(), skew()).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch");
    }

    #[test]
    fn v1_signature_method_must_be_hmac_sha1() {
        let mut req = signed_v1_request(&[("Action", "X")]);
        for (k, v) in req.query.iter_mut() {
            if k == "SignatureMethod" {
                *v = "HMAC-SHA256".into();
            }
        }
        let err = verify(&req, &secrets, now(), skew()).unwrap_err();
        assert_eq!(err.code(), "InvalidParameter");
        assert!(err.to_string().contains("HMAC-SHA256"));
    }

    #[test]
    fn missing_credentials() {
        let req = RpcRequest::from_parts("POST", "/", Some("Action=X"), Vec::new(), Vec::new()).unwrap();
        let err = verify(&req, &secrets, now(), skew()).unwrap_err();
        assert_eq!(err, AuthError::NoSignature);
        assert_eq!(err.code(), "IncompleteSignature");
        assert!(err.to_string().contains("no signature"), "{err}");

        let req = RpcRequest::from_parts("POST", "/", Some("Action=X&Signature=abc"), Vec::new(), Vec::new()).unwrap();
        let err = verify(&req, &secrets, now(), skew()).unwrap_err();
        assert_eq!(err.code(), "MissingParameter");
        assert!(err.to_string().contains("\"AccessKeyId\""));

        let mut params = pairs(&[("Action", "X")]);
        sign_v1_params("POST", &mut params, AK, SECRET, "2024-01-01T12:00:00Z", "n");
        params.retain(|(k, _)| k != "SignatureNonce");
        let req = RpcRequest::from_parts("POST", "/", Some(&encode_query(&params)), Vec::new(), Vec::new()).unwrap();
        let err = verify(&req, &secrets, now(), skew()).unwrap_err();
        assert_eq!(err, AuthError::MissingParameter("SignatureNonce"));
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("2024-01-01T12:00:00Z").unwrap(), now());
        assert_eq!(parse_timestamp("2024-01-01T12:00:00.250Z").unwrap(), now() + Duration::milliseconds(250));
        for bad in ["2024-01-01 12:00:00", "2024-01-01T12:00:00", "2024-01-01T12:00:00+08:00", "1704110400", ""] {
            let err = parse_timestamp(bad).unwrap_err();
            assert_eq!(err.code(), "InvalidTimeStamp.Format", "{bad}");
        }
        assert_eq!(format_timestamp(now()), "2024-01-01T12:00:00Z");

        let req = signed_v1_request(&[("Action", "X")]);
        assert!(verify(&req, &secrets, now() + skew(), skew()).is_ok());
        assert!(verify(&req, &secrets, now() - skew(), skew()).is_ok());
        for t in [now() + skew() + Duration::seconds(1), now() - skew() - Duration::seconds(1)] {
            let err = verify(&req, &secrets, t, skew()).unwrap_err();
            assert_eq!(err.code(), "InvalidTimeStamp.Expired");
            assert_eq!(err.code().class(), rollscale_core::Class::Invalid);
        }

        let mut params = pairs(&[("Action", "X")]);
        sign_v1_params("POST", &mut params, AK, SECRET, "yesterday", "n");
        let req = RpcRequest::from_parts("POST", "/", Some(&encode_query(&params)), Vec::new(), Vec::new()).unwrap();
        let err = verify(&req, &secrets, now(), skew()).unwrap_err();
        assert_eq!(err.code(), "InvalidTimeStamp.Format");
    }

    #[test]
    fn acs3_round_trip_and_tampering() {
        let req = signed_acs3_request(&[("ExecutionId", "exec-1"), ("Note", "a b+c")], b"", SECRET);
        let v = verify(&req, &secrets, now(), skew()).unwrap();
        assert_eq!(v.scheme, Scheme::Acs3);
        assert_eq!(v.access_key_id, AK);
        assert_eq!(v.nonce.as_deref(), Some("n-1"));
        assert_eq!(v.timestamp, Some(now()));

        let wrong = signed_acs3_request(&[("ExecutionId", "exec-1")], b"", "nope");
        let err = verify(&wrong, &secrets, now(), skew()).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch");
        assert!(err.to_string().starts_with(&format!("{SIGNATURE_MISMATCH_PREFIX}ACS3-HMAC-SHA256\n")));

        let mut tampered = req.clone();
        tampered.query[0].1 = "exec-2".into();
        let err = verify(&tampered, &secrets, now(), skew()).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch");

        let mut tampered = req.clone();
        for (k, v) in tampered.headers.iter_mut() {
            if k == "user-agent" {
                *v = "evil".into();
            }
        }
        let err = verify(&tampered, &secrets, now(), skew()).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch");

        let err = verify(&req, &secrets, now() + Duration::hours(1), skew()).unwrap_err();
        assert_eq!(err.code(), "InvalidTimeStamp.Expired");
    }

    #[test]
    fn acs3_body_hash_is_checked() {
        let req = signed_acs3_request(&[], b"InstanceId.1=i-1", SECRET);
        assert_eq!(req.params().list("InstanceId").unwrap(), vec!["i-1"]);
        assert!(verify(&req, &secrets, now(), skew()).is_ok());

        let mut tampered = req.clone();
        tampered.body = b"InstanceId.1=i-2".to_vec();
        let err = verify(&tampered, &secrets, now(), skew()).unwrap_err();
        assert_eq!(err, AuthError::ContentSha256Mismatch);
        assert_eq!(err.code().class(), rollscale_core::Class::Invalid);

        // Without the header the body is still covered by the hashed payload.
        tampered.headers.retain(|(k, _)| k != "x-acs-content-sha256");
        let err = verify(&tampered, &secrets, now(), skew()).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch");
    }

    #[test]
    fn acs3_unsigned_x_acs_headers_are_rejected() {
        let mut req = signed_acs3_request(&[("ExecutionId", "e")], b"", SECRET);
        req.headers.push(("x-acs-action".into(), "DeleteEverything".into()));
        let err = verify(&req, &secrets, now(), skew()).unwrap_err();
        assert_eq!(err.code(), "IncompleteSignature");
        assert!(err.to_string().contains("more than once"), "{err}");
        let mut req = signed_acs3_request(&[("ExecutionId", "e")], b"", SECRET);
        req.headers.push(("x-acs-extra".into(), "1".into()));
        let err = verify(&req, &secrets, now(), skew()).unwrap_err();
        assert_eq!(err.code(), "IncompleteSignature");
        assert!(err.to_string().contains("x-acs-extra"), "{err}");
    }

    #[test]
    fn parse_authorization() {
        let a = parse_acs3_authorization("ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=Host;x-acs-date,Signature=ABC")
            .unwrap();
        assert_eq!(a.access_key_id, "ak");
        assert_eq!(a.signed_headers, vec!["host", "x-acs-date"]);
        assert_eq!(a.signature, "ABC");
        for bad in [
            "ACS3-HMAC-SHA256",
            "ACS3-HMAC-SHA256 SignedHeaders=host,Signature=x",
            "ACS3-HMAC-SHA256 Credential=ak,Signature=x",
            "ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=,Signature=x",
            "ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=host",
            "ACS3-HMAC-SHA256X Credential=ak,SignedHeaders=host,Signature=x",
        ] {
            let err = parse_acs3_authorization(bad).unwrap_err();
            assert_eq!(err.code(), "IncompleteSignature", "{bad}");
        }
    }

    #[test]
    fn errors_never_contain_the_secret() {
        let secret = "SuperSecretValue123";
        let lookup = |_: &str| Some(secret.to_string());
        let v1 = signed_v1_request(&[("Action", "X")]);
        let acs3 = signed_acs3_request(&[("A", "b")], b"", SECRET);
        for req in [&v1, &acs3] {
            for t in [now(), now() + Duration::hours(2)] {
                let err = verify(req, &lookup, t, skew()).unwrap_err();
                assert!(!err.to_string().contains(secret));
                assert!(!format!("{err:?}").contains(secret));
            }
        }
    }
}
