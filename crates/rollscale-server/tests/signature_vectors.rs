//! Checks the signers and the verifier against the signature vectors and the 33 requests captured
//! from the official Alibaba Cloud Python SDKs (tests/fixtures, made by scripts/sdk-fixtures).

use std::collections::BTreeMap;

use chrono::Duration;
use rollscale_server::rpc::request::RpcRequest;
use rollscale_server::rpc::sign::{
    acs3_canonical_request, acs3_signature, acs3_string_to_sign, parse_acs3_authorization, parse_timestamp,
    v1_signature, v1_string_to_sign, verify, AuthError, Scheme, SIGNATURE_MISMATCH_PREFIX,
};
use serde_json::Value;

const AK: &str = "LTAIdummyAccessKeyId";
const SECRET: &str = "dummySecret";

fn load(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {path}: {e} (scripts/sdk-fixtures makes it)"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

fn str_pairs(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .expect("an object of strings")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_string()))
        .collect()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

#[test]
fn all_signature_vectors_match() {
    let vectors = load("signature-vectors.json");
    let vectors = vectors.as_object().unwrap();
    assert_eq!(vectors.len(), 4);
    let (mut v1, mut acs3) = (0, 0);
    for (name, v) in vectors {
        let secret = s(v, "secret");
        if name.starts_with("v1_") {
            v1 += 1;
            let params = str_pairs(&v["params"]);
            let sts = v1_string_to_sign(s(v, "method"), &params);
            assert_eq!(sts, s(v, "string_to_sign"), "{name}");
            assert_eq!(v1_signature(&sts, secret), s(v, "signature"), "{name}");
        } else if name.starts_with("acs3_") {
            acs3 += 1;
            let auth = parse_acs3_authorization(s(v, "authorization")).unwrap();
            assert_eq!(auth.access_key_id, "testid");
            let canonical = acs3_canonical_request(
                s(v, "method"),
                s(v, "path"),
                &str_pairs(&v["query"]),
                &str_pairs(&v["headers"]),
                &auth.signed_headers,
                s(&v["headers"], "x-acs-content-sha256"),
            );
            assert_eq!(canonical, s(v, "canonical_request"), "{name}");
            let sts = acs3_string_to_sign(&canonical);
            assert_eq!(sts, s(v, "string_to_sign"), "{name}");
            assert_eq!(acs3_signature(&sts, secret), auth.signature, "{name}");
        } else {
            panic!("unknown vector kind {name}");
        }
    }
    assert_eq!((v1, acs3), (2, 2));
}

/// A captured request, rebuilt as the server would see it.
struct Capture {
    label: String,
    json: Value,
    req: RpcRequest,
}

fn captures() -> Vec<Capture> {
    let all = load("sdk-captures.json");
    let all = all.as_array().expect("an array of captures");
    assert_eq!(all.len(), 33);
    all.iter()
        .map(|c| {
            let line = s(c, "request_line");
            let mut parts = line.split(' ');
            let (method, target, http) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap());
            assert_eq!(http, "HTTP/1.1");
            assert_eq!(parts.next(), None, "{line}");
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target, None),
            };
            let headers = c["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| (h[0].as_str().unwrap().to_string(), h[1].as_str().unwrap().to_string()))
                .collect();
            let body = s(c, "body").as_bytes().to_vec();
            let req =
                RpcRequest::from_parts(method, path, query, headers, body).unwrap_or_else(|e| panic!("{line}: {e}"));
            Capture {
                label: format!("{} {} {}", s(c, "flavour"), s(c, "action"), s(c, "version")),
                json: c.clone(),
                req,
            }
        })
        .collect()
}

fn secrets(ak: &str) -> Option<String> {
    (ak == AK).then(|| SECRET.to_string())
}

fn window() -> Duration {
    Duration::minutes(15)
}

#[test]
fn captured_requests_parse_like_the_reference() {
    for c in captures() {
        let label = &c.label;
        let expect_query: BTreeMap<String, String> = str_pairs(&c.json["query"]).into_iter().collect();
        let got_query: BTreeMap<String, String> = c.req.query.iter().cloned().collect();
        assert_eq!(got_query, expect_query, "{label}: query");
        assert_eq!(c.req.query.len(), expect_query.len(), "{label}: dup keys");
        let expect_form: BTreeMap<String, String> = str_pairs(&c.json["form"]).into_iter().collect();
        let got_form: BTreeMap<String, String> = c.req.form.iter().cloned().collect();
        assert_eq!(got_form, expect_form, "{label}: form");

        let mut merged = expect_query.clone();
        merged.extend(expect_form);
        assert_eq!(c.req.params().as_map(), &merged, "{label}: params");

        assert_eq!(c.req.method, "POST");
        assert_eq!(c.req.path, "/");
        assert_eq!(c.req.action().as_deref(), Some(s(&c.json, "action")), "{label}");
        assert_eq!(c.req.version().as_deref(), Some(s(&c.json, "version")), "{label}");
    }
}

#[test]
fn action_and_version_come_from_headers_for_acs3() {
    let caps = captures();
    let acs3: Vec<&Capture> = caps.iter().filter(|c| s(&c.json["signature"], "kind") == "ACS3-HMAC-SHA256").collect();
    assert_eq!(acs3.len(), 12);
    for c in acs3 {
        let params = c.req.params();
        assert_eq!(params.get("Action"), None, "{}", c.label);
        assert_eq!(params.get("Version"), None, "{}", c.label);
        assert!(c.req.action().is_some() && c.req.version().is_some());
    }
}

#[test]
fn ess_lists_come_out_right() {
    let caps = captures();
    let find = |flavour: &str, action: &str| {
        caps.iter()
            .find(|c| s(&c.json, "flavour") == flavour && s(&c.json, "action") == action)
            .unwrap_or_else(|| panic!("no capture {flavour} {action}"))
            .req
            .params()
    };
    let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let p = find("old", "DescribeScalingGroups");
    assert_eq!(p.list("ScalingGroupId").unwrap(), strings(&["asg-probe0001"]));
    let p = find("old", "DescribeScalingInstances");
    assert_eq!(p.list("InstanceId").unwrap(), strings(&["i-probe0001", "i-probe0002"]));
    for action in ["EnterStandby", "ExitStandby"] {
        let p = find("old", action);
        assert_eq!(p.list("InstanceId").unwrap(), strings(&["i-probe0001"]));
        assert_eq!(p.required("ScalingGroupId").unwrap(), "asg-probe0001");
    }
    for action in ["SuspendProcesses", "ResumeProcesses"] {
        let p = find("old", action);
        assert_eq!(p.list("Process").unwrap(), strings(&["ScaleIn", "ScaleOut"]));
        let p = find("tea-ess20220222", action);
        assert_eq!(p.list("Processes").unwrap(), strings(&["ScaleIn", "ScaleOut"]));
        assert!(p.list("Process").unwrap().is_empty());
    }
    let p = find("tea-ess20220222", "DescribeScalingGroups");
    assert_eq!(p.list("ScalingGroupIds").unwrap(), strings(&["asg-probe0001"]));
    for action in ["EnterStandby", "ExitStandby"] {
        let p = find("tea-ess20220222", action);
        assert_eq!(p.list("InstanceIds").unwrap(), strings(&["i-probe0001"]));
        assert!(p.list("InstanceId").unwrap().is_empty());
    }
    // The 2022 EnterStandby request model has no RegionId.
    assert_eq!(find("tea-ess20220222", "EnterStandby").get("RegionId"), None);
    // alibabacloud-ess20140828 sends its API params in the form body.
    let p = find("tea-ess20140828", "EnterStandby");
    assert_eq!(p.list("InstanceId").unwrap(), strings(&["i-probe0001"]));
    let p = find("tea-ess20140828", "SuspendProcesses");
    assert_eq!(p.list("Process").unwrap(), strings(&["ScaleIn"]));

    // Generic check: every `Name.N` key of every ESS capture lands in list(Name).
    for c in caps.iter().filter(|c| s(&c.json, "action") != "StartExecution") {
        let params = c.req.params();
        let mut expected: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
        for (k, v) in params.iter() {
            if let Some((name, n)) = k.rsplit_once('.') {
                if let Ok(n) = n.parse::<u64>() {
                    expected.entry(name.to_string()).or_default().push((n, v.to_string()));
                }
            }
        }
        for (name, mut items) in expected {
            items.sort();
            let want: Vec<String> = items.into_iter().map(|(_, v)| v).collect();
            assert_eq!(params.list(&name).unwrap(), want, "{} {name}", c.label);
        }
    }
}

fn own_time(c: &Capture) -> chrono::DateTime<chrono::Utc> {
    let raw = c
        .req
        .params()
        .get("Timestamp")
        .map(str::to_string)
        .or_else(|| c.req.header("x-acs-date").map(str::to_string))
        .unwrap_or_else(|| panic!("{}: no timestamp", c.label));
    parse_timestamp(&raw).unwrap()
}

/// Change one character of the first non-empty API parameter value that is not part
/// of the signature machinery. Returns the key that was changed.
fn flip_one_param(pairs: &mut [(String, String)]) -> Option<String> {
    const SKIP: [&str; 4] = ["Signature", "AccessKeyId", "Timestamp", "SignatureMethod"];
    let (k, v) = pairs.iter_mut().find(|(k, v)| !v.is_empty() && !SKIP.contains(&k.as_str()))?;
    let last = v.pop()?;
    v.push(if last == 'a' { 'b' } else { 'a' });
    Some(k.clone())
}

#[test]
fn every_capture_verifies_and_tampering_is_caught() {
    let caps = captures();
    let mut counts = BTreeMap::new();
    for c in &caps {
        let label = &c.label;
        let sig = &c.json["signature"];
        let now = own_time(c);
        assert_eq!(now, parse_timestamp(s(&c.json, "time")).unwrap(), "{label}");

        // 1. Verifies with the right secret at the request's own time.
        let v = verify(&c.req, &secrets, now, window()).unwrap_or_else(|e| panic!("{label}: {} {e}", e.code()));
        assert_eq!(v.access_key_id, AK, "{label}");
        assert_eq!(v.timestamp, Some(now), "{label}");
        let (scheme, nonce) = match s(sig, "kind") {
            "ACS3-HMAC-SHA256" => (Scheme::Acs3, c.req.header("x-acs-signature-nonce").map(str::to_string)),
            "RPC-v1-HMAC-SHA1" => (Scheme::V1, c.req.params().get("SignatureNonce").map(str::to_string)),
            other => panic!("{label}: unknown kind {other}"),
        };
        assert_eq!(v.scheme, scheme, "{label}");
        assert!(nonce.as_deref().is_some_and(|n| n.len() == 32), "{label}");
        assert_eq!(v.nonce, nonce, "{label}");
        *counts.entry(format!("{scheme:?}")).or_insert(0) += 1;

        // 2. Wrong secret: SignatureDoesNotMatch carrying exactly the reference
        //    verifier's string to sign after the colon.
        let wrong = |_: &str| Some("notTheSecret".to_string());
        let err = verify(&c.req, &wrong, now, window()).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch", "{label}");
        assert_eq!(rollscale_server::error::status(err.code().class()).as_u16(), 400);
        let msg = err.to_string();
        assert_eq!(msg, format!("{SIGNATURE_MISMATCH_PREFIX}{}", s(sig, "string_to_sign")), "{label}");
        // What the old SDK does with it: message.split(':')[1].
        assert_eq!(msg.split(':').nth(1), Some(s(sig, "string_to_sign")));

        // 3. One character of a query parameter value changed.
        let mut tampered = c.req.clone();
        let key = flip_one_param(&mut tampered.query).expect("a query param to flip");
        let err = verify(&tampered, &secrets, now, window()).unwrap_err();
        assert_eq!(err.code(), "SignatureDoesNotMatch", "{label}: flipped {key}");
        assert!(err.to_string().contains(':'));

        // 3b. For form bodies, a changed form value is caught as well.
        if !c.req.form.is_empty() {
            let mut tampered = c.req.clone();
            flip_one_param(&mut tampered.form).expect("a form param to flip");
            let err = verify(&tampered, &secrets, now, window()).unwrap_err();
            assert_eq!(err.code(), "SignatureDoesNotMatch", "{label}: form");
        }

        // 4. An hour later, with a 15-minute window.
        let err = verify(&c.req, &secrets, now + Duration::hours(1), window()).unwrap_err();
        assert_eq!(err.code(), "InvalidTimeStamp.Expired", "{label}");

        // 5. An unknown AccessKeyId.
        let err = verify(&c.req, &|_: &str| None, now, window()).unwrap_err();
        assert!(matches!(err, AuthError::AccessKeyNotFound(ref ak) if ak == AK));
        assert_eq!(rollscale_server::error::status(err.code().class()).as_u16(), 404);
    }
    assert_eq!(counts.get("V1"), Some(&21));
    assert_eq!(counts.get("Acs3"), Some(&12));
}

#[test]
fn acs3_captures_reproduce_the_reference_canonical_request() {
    for c in captures() {
        let sig = &c.json["signature"];
        if s(sig, "kind") != "ACS3-HMAC-SHA256" {
            continue;
        }
        let auth = parse_acs3_authorization(c.req.header("authorization").unwrap()).unwrap();
        let canonical = acs3_canonical_request(
            &c.req.method,
            &c.req.path,
            &c.req.query,
            &c.req.headers,
            &auth.signed_headers,
            c.req.header("x-acs-content-sha256").unwrap(),
        );
        assert_eq!(canonical, s(sig, "canonical_request"), "{}", c.label);
        assert_eq!(sig["payload_hash_ok"], Value::Bool(true));
    }
}
