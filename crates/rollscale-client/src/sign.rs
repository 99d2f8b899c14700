//! Alibaba Cloud request signatures, as both ends compute them: RPC v1 (HMAC-SHA1 over the
//! sorted parameters) and ACS3-HMAC-SHA256 (a canonical request signed into the
//! `Authorization` header). The server verifies with these functions and the CLI signs with
//! them, so the two cannot drift apart (docs/wire.md, "Signatures").

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// The ACS3 algorithm name, as it starts `Authorization` and the string to sign.
pub const ACS3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// The RPC v1 `SignatureMethod`.
pub const V1_SIGNATURE_METHOD: &str = "HMAC-SHA1";

/// hex(sha256("")), the hashed payload of an empty body.
pub const EMPTY_BODY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// RFC 3986 unreserved characters stay literal; everything else is `%XX`.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// RFC 3986 percent-encoding of the UTF-8 bytes: only `A-Z a-z 0-9 - _ . ~` stay
/// literal, and the hex digits are upper case.
pub fn percent_encode(s: &str) -> String {
    utf8_percent_encode(s, RFC3986).to_string()
}

/// hex(sha256(data)), lower case.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The RPC v1 string to sign: `METHOD&%2F&pct(k1=v1&k2=v2...)` over the params sorted
/// by key (byte order), without `Signature`, keeping empty values.
pub fn v1_string_to_sign(method: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(k, _)| k != "Signature").collect();
    sorted.sort();
    let canonical = sorted
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!("{}&{}&{}", method.to_ascii_uppercase(), percent_encode("/"), percent_encode(&canonical))
}

/// base64(HMAC-SHA1(key = secret + "&", string_to_sign)).
pub fn v1_signature(string_to_sign: &str, secret: &str) -> String {
    let key = format!("{secret}&");
    // HMAC takes keys of any length, so this never fails; if it did, an empty signature
    // matches nothing.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key.as_bytes()) else { return String::new() };
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Sign `params` for an RPC v1 request: set `Format=JSON`, `SignatureMethod=HMAC-SHA1`,
/// `SignatureVersion=1.0`, `SignatureNonce`, `Timestamp` and `AccessKeyId` (replacing
/// any earlier values), then append `Signature`.
pub fn sign_v1_params(
    method: &str,
    params: &mut Vec<(String, String)>,
    access_key_id: &str,
    secret: &str,
    timestamp: &str,
    nonce: &str,
) {
    let common = [
        ("Format", "JSON"),
        ("SignatureMethod", V1_SIGNATURE_METHOD),
        ("SignatureVersion", "1.0"),
        ("SignatureNonce", nonce),
        ("Timestamp", timestamp),
        ("AccessKeyId", access_key_id),
    ];
    params.retain(|(k, _)| k != "Signature" && !common.iter().any(|(name, _)| k == name));
    params.extend(common.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let signature = v1_signature(&v1_string_to_sign(method, params), secret);
    params.push(("Signature".to_string(), signature));
}

/// A UTC time in the wire format `YYYY-MM-DDThh:mm:ssZ`.
pub fn format_timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses `YYYY-MM-DDThh:mm:ssZ` (fractional seconds allowed) as UTC.
pub fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.fZ").ok().map(|t| t.and_utc())
}

/// A fresh random nonce: 32 lower-case hex characters, like the SDKs send.
pub fn random_nonce() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The ACS3 canonical request:
/// `METHOD\nPATH\nCanonicalQuery\nCanonicalHeaders\nSignedHeaders\nHashedPayload`.
///
/// The canonical query sorts the decoded `query` pairs by key and joins `k=pct(v)`
/// with `&`; like the tea SDK, keys are not encoded. Each signed header contributes
/// `name:trim(value)\n`, its value looked up case-insensitively in `headers` (empty
/// when absent), in the order of `signed_headers`.
pub fn acs3_canonical_request(
    method: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
    signed_headers: &[String],
    hashed_payload: &str,
) -> String {
    let mut sorted: Vec<&(String, String)> = query.iter().collect();
    sorted.sort();
    let canonical_query =
        sorted.iter().map(|(k, v)| format!("{k}={}", percent_encode(v))).collect::<Vec<_>>().join("&");
    let canonical_headers: String = signed_headers
        .iter()
        .map(|name| {
            let value = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map_or("", |(_, v)| v.trim());
            format!("{}:{value}\n", name.to_ascii_lowercase())
        })
        .collect();
    let signed = signed_headers.iter().map(|h| h.to_ascii_lowercase()).collect::<Vec<_>>().join(";");
    format!(
        "{}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed}\n{hashed_payload}",
        method.to_ascii_uppercase()
    )
}

/// `ACS3-HMAC-SHA256\n` + hex(sha256(canonical_request)).
pub fn acs3_string_to_sign(canonical_request: &str) -> String {
    format!("{ACS3_ALGORITHM}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// hex(HMAC-SHA256(key = secret, string_to_sign)), lower case.
pub fn acs3_signature(string_to_sign: &str, secret: &str) -> String {
    // As above: never fails, and an empty signature would match nothing.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(string_to_sign.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The headers that sign a request with ACS3-HMAC-SHA256, as the tea SDKs send them:
/// `x-acs-date`, `x-acs-signature-nonce`, `x-acs-content-sha256` and `Authorization`. Every
/// header in `headers` plus these three is signed, so give there the `host`, `x-acs-action`,
/// `x-acs-version` and content type the request will carry.
pub fn acs3_headers(
    request: &Acs3Request<'_>,
    access_key_id: &str,
    secret: &str,
    timestamp: &str,
    nonce: &str,
) -> Vec<(String, String)> {
    let hashed_payload = sha256_hex(request.body);
    let mut headers: Vec<(String, String)> =
        request.headers.iter().map(|(name, value)| (name.to_ascii_lowercase(), value.clone())).collect();
    headers.push(("x-acs-date".to_string(), timestamp.to_string()));
    headers.push(("x-acs-signature-nonce".to_string(), nonce.to_string()));
    headers.push(("x-acs-content-sha256".to_string(), hashed_payload.clone()));
    let mut signed: Vec<String> = headers.iter().map(|(name, _)| name.clone()).collect();
    signed.sort();
    signed.dedup();
    let canonical =
        acs3_canonical_request(request.method, request.path, request.query, &headers, &signed, &hashed_payload);
    let signature = acs3_signature(&acs3_string_to_sign(&canonical), secret);
    headers.push((
        "authorization".to_string(),
        format!("{ACS3_ALGORITHM} Credential={access_key_id},SignedHeaders={},Signature={signature}", signed.join(";")),
    ));
    headers
}

/// What an ACS3 signature covers of a request.
#[derive(Debug, Clone, Copy)]
pub struct Acs3Request<'a> {
    pub method: &'a str,
    /// The path alone, without the query.
    pub path: &'a str,
    /// The query's pairs, decoded.
    pub query: &'a [(String, String)],
    /// The headers to sign besides the three this adds; names in any case.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// Equality whose running time depends only on the lengths, not on where the inputs
/// differ: for comparing signatures and MACs.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "testsecret";

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn percent_encode_follows_rfc3986() {
        assert_eq!(percent_encode("AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(percent_encode(" "), "%20");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("/"), "%2F");
        assert_eq!(percent_encode("+"), "%2B");
        assert_eq!(percent_encode(":"), "%3A");
        assert_eq!(percent_encode("中"), "%E4%B8%AD");
        assert_eq!(percent_encode("\u{7f}\n"), "%7F%0A");
    }

    #[test]
    fn v1_doc_example() {
        let params = pairs(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
            ("Signature", "ignored"),
        ]);
        let sts = v1_string_to_sign("GET", &params);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(v1_signature(&sts, SECRET), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
    }

    #[test]
    fn v1_keeps_empty_values_and_sorts_by_byte_order() {
        let sts = v1_string_to_sign("post", &pairs(&[("b", ""), ("B", "x"), ("a", "1")]));
        assert_eq!(sts, "POST&%2F&B%3Dx%26a%3D1%26b%3D");
    }

    #[test]
    fn random_nonces_are_32_hex_and_differ() {
        let (a, b) = (random_nonce(), random_nonce());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn constant_time_eq_works() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn timestamps_round_trip_and_bad_ones_are_refused() {
        let t = parse_timestamp("2024-01-01T12:00:00Z").unwrap();
        assert_eq!(format_timestamp(t), "2024-01-01T12:00:00Z");
        assert_eq!(
            parse_timestamp("2024-01-01T12:00:00.250Z").map(format_timestamp).as_deref(),
            Some("2024-01-01T12:00:00Z")
        );
        assert_eq!(parse_timestamp("2024-01-01 12:00:00"), None);
    }

    #[test]
    fn acs3_headers_sign_every_header_and_verify_with_the_same_functions() {
        let query = pairs(&[("RegionId", "local"), ("Name", "a b")]);
        let given =
            pairs(&[("Host", "127.0.0.1:8080"), ("x-acs-action", "ListExecutions"), ("x-acs-version", "2019-06-01")]);
        let request = Acs3Request { method: "POST", path: "/", query: &query, headers: &given, body: b"" };
        let headers = acs3_headers(&request, "testid", SECRET, "2024-01-01T12:00:00Z", "n-1");
        let authorization = &headers.iter().find(|(name, _)| name == "authorization").unwrap().1;
        assert!(authorization.starts_with("ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature="), "{authorization}");
        let get = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert_eq!(get("x-acs-content-sha256"), Some(EMPTY_BODY_SHA256));
        // The signature is what a verifier computes from the same parts.
        let signed: Vec<String> = authorization
            .split("SignedHeaders=")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .split(';')
            .map(str::to_string)
            .collect();
        let canonical = acs3_canonical_request("POST", "/", &query, &headers, &signed, EMPTY_BODY_SHA256);
        let expected = acs3_signature(&acs3_string_to_sign(&canonical), SECRET);
        assert!(authorization.ends_with(&format!("Signature={expected}")));
        let other = acs3_headers(&request, "testid", "another secret", "2024-01-01T12:00:00Z", "n-1");
        assert_ne!(other.last(), headers.last());
    }
}
