//! The parsed Alibaba Cloud RPC request, independent of axum: method, path, decoded
//! query and form pairs, headers and body, plus typed access to the API parameters
//! (`Params`) with Aliyun-style `MissingParameter` / `InvalidParameter` errors.

use rollscale_core::Code;
use std::collections::BTreeMap;

/// Largest request body accepted, in bytes (1 MiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// A request that could not be parsed, or a parameter that is missing or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A mandatory parameter is absent or empty.
    #[error("the input parameter \"{0}\" that is mandatory for processing this request is not supplied")]
    MissingParameter(String),
    /// A parameter is present but its value is not acceptable.
    #[error("the specified parameter \"{name}\" is not valid: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// The query string cannot be decoded.
    #[error("the query string cannot be decoded: {0}")]
    InvalidQueryString(String),
    /// A form body that cannot be decoded.
    #[error("the request body cannot be decoded: {0}")]
    InvalidBody(String),
    /// The body is larger than [`MAX_BODY_BYTES`].
    #[error("the body is {0} bytes, more than the limit of {MAX_BODY_BYTES} bytes")]
    TooLarge(usize),
}

impl RequestError {
    /// The Aliyun error code for the response's `Code` field.
    pub fn code(&self) -> Code {
        match self {
            RequestError::MissingParameter(_) => Code::MissingParameter,
            RequestError::InvalidParameter { .. } => Code::InvalidParameter,
            RequestError::InvalidQueryString(_) => Code::InvalidQueryString,
            RequestError::InvalidBody(_) => Code::InvalidBody,
            RequestError::TooLarge(_) => Code::InvalidBodyTooLarge,
        }
    }

    fn invalid(name: &str, reason: impl Into<String>) -> Self {
        RequestError::InvalidParameter { name: name.to_string(), reason: reason.into() }
    }
}

/// One HTTP request as the RPC layer sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcRequest {
    /// `GET`, `POST`, ..., upper case.
    pub method: String,
    /// The request path, e.g. `/`.
    pub path: String,
    /// Query pairs, percent-decoded once (`+` is a space), in wire order.
    pub query: Vec<(String, String)>,
    /// Form-body pairs when the body is `application/x-www-form-urlencoded`, else empty.
    pub form: Vec<(String, String)>,
    /// Headers as (lower-case name, value), in wire order.
    pub headers: Vec<(String, String)>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl RpcRequest {
    /// Build from raw parts. `raw_query` is the undecoded query string (may be None/empty).
    pub fn from_parts(
        method: &str,
        path: &str,
        raw_query: Option<&str>,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> Result<RpcRequest, RequestError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(RequestError::TooLarge(body.len()));
        }
        let headers: Vec<(String, String)> =
            headers.into_iter().map(|(name, value)| (name.to_ascii_lowercase(), value)).collect();
        let query = match raw_query {
            Some(raw) => parse_urlencoded(raw.as_bytes())
                .map_err(|e| RequestError::InvalidQueryString(e.describe("query string")))?,
            None => Vec::new(),
        };
        let mut req = RpcRequest {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query,
            form: Vec::new(),
            headers,
            body,
        };
        if req.has_form_body() {
            req.form = parse_urlencoded(&req.body).map_err(|e| RequestError::InvalidBody(e.describe("form body")))?;
        }
        Ok(req)
    }

    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Query and form merged (form wins on a duplicate key); the API parameters.
    pub fn params(&self) -> Params {
        self.query.iter().chain(self.form.iter()).map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// Action: param `Action`, else header `x-acs-action`.
    pub fn action(&self) -> Option<String> {
        self.param_or_header("Action", "x-acs-action")
    }

    /// Version: param `Version`, else header `x-acs-version`.
    pub fn version(&self) -> Option<String> {
        self.param_or_header("Version", "x-acs-version")
    }

    fn param_or_header(&self, param: &str, header: &str) -> Option<String> {
        // The form is searched first because it wins over the query in `params()`.
        let from_params = self
            .form
            .iter()
            .rev()
            .chain(self.query.iter().rev())
            .find(|(k, _)| k == param)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty());
        from_params.or_else(|| self.header(header).map(str::trim).filter(|v| !v.is_empty())).map(str::to_string)
    }

    fn has_form_body(&self) -> bool {
        self.header("content-type").is_some_and(|ct| {
            ct.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case(FORM_CONTENT_TYPE))
        })
    }
}

/// The merged API parameters of a request, keyed by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    map: BTreeMap<String, String>,
}

impl FromIterator<(String, String)> for Params {
    /// Later pairs win over earlier ones with the same key.
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        Params { map: iter.into_iter().collect() }
    }
}

impl Params {
    /// The value of `name`; an empty string counts as present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map.get(name).map(String::as_str)
    }

    /// The value of `name` unless it is absent or empty.
    pub fn get_nonempty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// The value of `name`; `MissingParameter` when absent or empty.
    pub fn required(&self, name: &str) -> Result<&str, RequestError> {
        self.get_nonempty(name).ok_or_else(|| RequestError::MissingParameter(name.to_string()))
    }

    /// A flattened list `Name.1`, `Name.2`, ... in numeric index order (`.10` after
    /// `.9`); gaps are allowed. Without any `Name.N`, a JSON array under the bare `Name`
    /// (e.g. `InstanceIds=["i-1","i-2"]`) is accepted. Absent → empty list.
    pub fn list(&self, name: &str) -> Result<Vec<String>, RequestError> {
        let prefix = format!("{name}.");
        let mut indexed: Vec<(u64, &str, &str)> = Vec::new();
        for (key, value) in self.map.range(prefix.clone()..) {
            let Some(suffix) = key.strip_prefix(&prefix) else {
                break;
            };
            if suffix.is_empty() || !suffix.bytes().all(|b| b.is_ascii_digit()) {
                // `Name.1.Key` and the like belong to a nested structure, not to this list.
                continue;
            }
            let index = suffix.parse::<u64>().map_err(|_| RequestError::invalid(key, "the list index is too large"))?;
            indexed.push((index, key.as_str(), value.as_str()));
        }
        if !indexed.is_empty() {
            indexed.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
            return Ok(indexed.into_iter().map(|(_, _, v)| v.to_string()).collect());
        }
        match self.get_nonempty(name) {
            None => Ok(Vec::new()),
            Some(raw) => parse_json_list(name, raw),
        }
    }

    /// `name` as an integer; `None` when absent or empty, `InvalidParameter` otherwise.
    pub fn i64(&self, name: &str) -> Result<Option<i64>, RequestError> {
        self.get_nonempty(name)
            .map(|v| v.parse::<i64>().map_err(|_| RequestError::invalid(name, format!("\"{v}\" is not an integer"))))
            .transpose()
    }

    /// `name` as a boolean (`true`/`false`, any letter case, e.g. Python's `True`);
    /// `None` when absent or empty.
    pub fn bool(&self, name: &str) -> Result<Option<bool>, RequestError> {
        self.get_nonempty(name)
            .map(|v| {
                if v.eq_ignore_ascii_case("true") {
                    Ok(true)
                } else if v.eq_ignore_ascii_case("false") {
                    Ok(false)
                } else {
                    Err(RequestError::invalid(name, format!("\"{v}\" is not a boolean (expected true or false)")))
                }
            })
            .transpose()
    }

    /// All parameters, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether `name` is present (possibly empty).
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The underlying map.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.map
    }
}

fn parse_json_list(name: &str, raw: &str) -> Result<Vec<String>, RequestError> {
    let not_a_list =
        || RequestError::invalid(name, format!("expected {name}.1, {name}.2, ... or a JSON array of strings"));
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|_| not_a_list())?;
    let serde_json::Value::Array(items) = value else {
        return Err(not_a_list());
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s),
            serde_json::Value::Number(n) => Ok(n.to_string()),
            serde_json::Value::Bool(b) => Ok(b.to_string()),
            _ => Err(not_a_list()),
        })
        .collect()
}

/// Why an urlencoded string could not be decoded.
#[derive(Debug)]
enum DecodeError {
    BadEscape { offset: usize },
    NotUtf8,
}

impl DecodeError {
    fn describe(&self, what: &str) -> String {
        match self {
            DecodeError::BadEscape { offset } => {
                format!("malformed percent escape at byte {offset} of the {what}")
            }
            DecodeError::NotUtf8 => {
                format!("the {what} is not valid UTF-8 after percent-decoding")
            }
        }
    }
}

/// Split `a=1&b=2` into decoded pairs, in order. Empty segments are skipped and a
/// segment without `=` has an empty value.
fn parse_urlencoded(input: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    let mut pairs = Vec::new();
    let mut start = 0;
    for segment in input.split(|&b| b == b'&') {
        let offset = start;
        start += segment.len() + 1;
        if segment.is_empty() {
            continue;
        }
        let (key, value, value_offset) = match segment.iter().position(|&b| b == b'=') {
            Some(eq) => (&segment[..eq], &segment[eq + 1..], offset + eq + 1),
            None => (segment, &segment[segment.len()..], offset + segment.len()),
        };
        pairs.push((decode(key, offset)?, decode(value, value_offset)?));
    }
    Ok(pairs)
}

/// Decode `+` as a space and `%XX` as a byte, then require UTF-8.
/// `offset` is where `input` starts in the whole string, for error messages.
fn decode(input: &[u8], offset: usize) -> Result<String, DecodeError> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hi = input.get(i + 1).copied().and_then(hex_value);
                let lo = input.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => out.push((hi << 4) | lo),
                    _ => return Err(DecodeError::BadEscape { offset: offset + i }),
                }
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| DecodeError::NotUtf8)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &str) -> RpcRequest {
        RpcRequest::from_parts("post", "/", Some(query), Vec::new(), Vec::new()).unwrap()
    }

    fn form_req(query: &str, content_type: &str, body: &str) -> RpcRequest {
        RpcRequest::from_parts(
            "POST",
            "/",
            Some(query),
            vec![("Content-Type".to_string(), content_type.to_string())],
            body.as_bytes().to_vec(),
        )
        .unwrap()
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn query_is_decoded_once_in_wire_order() {
        let r = req("b=x%2By&a=hello+world&c=%E4%B8%AD%20x&d=%252F&e=&f");
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.query,
            pairs(&[("b", "x+y"), ("a", "hello world"), ("c", "中 x"), ("d", "%2F"), ("e", ""), ("f", ""),])
        );
        assert!(r.form.is_empty());
    }

    #[test]
    fn plus_and_percent_20_are_both_spaces() {
        let r = req("A=echo+hi&B=echo%20hi");
        let p = r.params();
        assert_eq!(p.get("A"), Some("echo hi"));
        assert_eq!(p.get("B"), Some("echo hi"));
    }

    #[test]
    fn empty_or_missing_query_gives_no_pairs() {
        assert!(req("").query.is_empty());
        assert!(req("&&").query.is_empty());
        let r = RpcRequest::from_parts("GET", "/", None, Vec::new(), Vec::new()).unwrap();
        assert!(r.query.is_empty());
        assert!(r.params().is_empty());
    }

    #[test]
    fn malformed_percent_encoding_is_an_error_not_a_panic() {
        for bad in ["a=%", "a=%4", "a=%G1", "a=%%41", "%zz=1", "a=1&b=%e4%b8"] {
            let err = RpcRequest::from_parts("POST", "/", Some(bad), Vec::new(), Vec::new()).expect_err(bad);
            assert_eq!(err.code(), "InvalidQueryString", "{bad}: {err}");
            assert_eq!(err.code().class(), rollscale_core::Class::Invalid);
        }
        let err = RpcRequest::from_parts("POST", "/", Some("x=1&a=%4"), Vec::new(), Vec::new()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the query string cannot be decoded: malformed percent escape at byte 6 of the query string"
        );
        // Invalid UTF-8 after decoding (a lone continuation byte, an overlong form).
        for bad in ["a=%80", "a=%C0%AF", "%FF=1"] {
            let err = RpcRequest::from_parts("POST", "/", Some(bad), Vec::new(), Vec::new()).expect_err(bad);
            assert_eq!(err.code(), "InvalidQueryString");
            assert!(err.to_string().contains("UTF-8"), "{err}");
        }
    }

    #[test]
    fn form_body_is_parsed_and_wins_over_query() {
        let r = form_req(
            "Action=EnterStandby&ScalingGroupId=from-query",
            "application/x-www-form-urlencoded; charset=UTF-8",
            "InstanceId.1=i-1&ScalingGroupId=asg+1&Note=%E4%B8%AD",
        );
        assert_eq!(r.form, pairs(&[("InstanceId.1", "i-1"), ("ScalingGroupId", "asg 1"), ("Note", "中")]));
        let p = r.params();
        assert_eq!(p.get("ScalingGroupId"), Some("asg 1"));
        assert_eq!(p.get("Action"), Some("EnterStandby"));
        assert_eq!(p.list("InstanceId").unwrap(), vec!["i-1"]);
        assert_eq!(p.len(), 4);
    }

    #[test]
    fn non_form_bodies_are_not_parsed() {
        let r = form_req("a=1", "application/json", "{\"b\":2}");
        assert!(r.form.is_empty());
        assert_eq!(r.body, b"{\"b\":2}");
        let r = RpcRequest::from_parts("POST", "/", None, Vec::new(), b"b=2".to_vec()).unwrap();
        assert!(r.form.is_empty());
    }

    #[test]
    fn bad_form_body_is_invalid_body() {
        let err = RpcRequest::from_parts(
            "POST",
            "/",
            None,
            vec![("content-type".into(), FORM_CONTENT_TYPE.into())],
            b"a=%zz".to_vec(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "InvalidBody");
        let err = RpcRequest::from_parts(
            "POST",
            "/",
            None,
            vec![("content-type".into(), FORM_CONTENT_TYPE.into())],
            vec![b'a', b'=', 0xff],
        )
        .unwrap_err();
        assert_eq!(err.code(), "InvalidBody");
    }

    #[test]
    fn body_over_one_mib_is_rejected() {
        let ok = RpcRequest::from_parts("POST", "/", None, Vec::new(), vec![b'x'; MAX_BODY_BYTES]);
        assert!(ok.is_ok());
        let err = RpcRequest::from_parts("POST", "/", None, Vec::new(), vec![b'x'; MAX_BODY_BYTES + 1]).unwrap_err();
        assert_eq!(err.code(), "InvalidBody.TooLarge");
        assert_eq!(err.code().class(), rollscale_core::Class::TooLarge);
    }

    #[test]
    fn headers_are_lower_cased_and_looked_up_case_insensitively() {
        let r = RpcRequest::from_parts(
            "GET",
            "/",
            None,
            vec![("X-Acs-Action".into(), "ListExecutions".into()), ("Host".into(), "h".into())],
            Vec::new(),
        )
        .unwrap();
        assert_eq!(r.headers[0].0, "x-acs-action");
        assert_eq!(r.header("X-ACS-ACTION"), Some("ListExecutions"));
        assert_eq!(r.header("host"), Some("h"));
        assert_eq!(r.header("missing"), None);
    }

    #[test]
    fn action_and_version_prefer_params_then_headers() {
        let headers = vec![
            ("x-acs-action".to_string(), "FromHeader".to_string()),
            ("x-acs-version".to_string(), "2022-02-22".to_string()),
        ];
        let r = RpcRequest::from_parts("POST", "/", Some("Action=FromParam"), headers.clone(), Vec::new()).unwrap();
        assert_eq!(r.action().as_deref(), Some("FromParam"));
        assert_eq!(r.version().as_deref(), Some("2022-02-22"));
        let r = RpcRequest::from_parts("POST", "/", Some("Action="), headers, Vec::new()).unwrap();
        assert_eq!(r.action().as_deref(), Some("FromHeader"));
        let r = req("x=1");
        assert_eq!(r.action(), None);
        assert_eq!(r.version(), None);
        let r = form_req("Action=A", FORM_CONTENT_TYPE, "Action=B");
        assert_eq!(r.action().as_deref(), Some("B"));
        assert_eq!(r.params().get("Action"), Some("B"));
    }

    #[test]
    fn get_required_and_nonempty() {
        let p = req("A=1&Empty=").params();
        assert_eq!(p.get("Empty"), Some(""));
        assert_eq!(p.get_nonempty("Empty"), None);
        assert!(p.contains("Empty"));
        assert_eq!(p.required("A").unwrap(), "1");
        for name in ["Empty", "Nope"] {
            let err = p.required(name).unwrap_err();
            assert_eq!(err.code(), "MissingParameter");
            assert_eq!(err.code().class(), rollscale_core::Class::Invalid);
            assert_eq!(
                err.to_string(),
                format!("the input parameter \"{name}\" that is mandatory for processing this request is not supplied")
            );
        }
        let err = Params::default().required("InstanceId.1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the input parameter \"InstanceId.1\" that is mandatory for processing this request is not supplied"
        );
    }

    #[test]
    fn list_uses_numeric_order_and_allows_gaps() {
        let p = req("Id.10=ten&Id.2=two&Id.1=one&Id.9=nine&Id.4=four&Ids.1=other&Id=bare&Id.1.Key=nested&Id.x=junk")
            .params();
        assert_eq!(p.list("Id").unwrap(), vec!["one", "two", "four", "nine", "ten"]);
        assert_eq!(p.list("Ids").unwrap(), vec!["other"]);
        assert!(p.list("Missing").unwrap().is_empty());
    }

    #[test]
    fn list_accepts_a_json_array_under_the_bare_name() {
        let p = req("InstanceIds=%5B%22i-1%22%2C%22i-2%22%5D&Nums=[1,2]&Empty=&Bad=i-1&Obj=[{}]").params();
        assert_eq!(p.list("InstanceIds").unwrap(), vec!["i-1", "i-2"]);
        assert_eq!(p.list("Nums").unwrap(), vec!["1", "2"]);
        assert!(p.list("Empty").unwrap().is_empty());
        for name in ["Bad", "Obj"] {
            let err = p.list(name).unwrap_err();
            assert_eq!(err.code(), "InvalidParameter", "{name}");
        }
    }

    #[test]
    fn list_index_overflow_is_invalid_not_a_panic() {
        let p = req("Id.99999999999999999999999=x").params();
        assert_eq!(p.list("Id").unwrap_err().code(), "InvalidParameter");
    }

    #[test]
    fn integers_and_booleans() {
        let p = req("N=42&Neg=-7&Bad=4x&B1=true&B2=False&B3=True&B4=false&BadB=yes&E=").params();
        assert_eq!(p.i64("N").unwrap(), Some(42));
        assert_eq!(p.i64("Neg").unwrap(), Some(-7));
        assert_eq!(p.i64("E").unwrap(), None);
        assert_eq!(p.i64("Nope").unwrap(), None);
        let err = p.i64("Bad").unwrap_err();
        assert_eq!(err.code(), "InvalidParameter");
        assert!(err.to_string().contains("\"Bad\""), "{err}");
        assert_eq!(p.bool("B1").unwrap(), Some(true));
        assert_eq!(p.bool("B2").unwrap(), Some(false));
        assert_eq!(p.bool("B3").unwrap(), Some(true));
        assert_eq!(p.bool("B4").unwrap(), Some(false));
        assert_eq!(p.bool("E").unwrap(), None);
        assert_eq!(p.bool("BadB").unwrap_err().code(), "InvalidParameter");
    }

    #[test]
    fn iter_is_sorted_by_name() {
        let p = req("b=2&a=1&c=3").params();
        let got: Vec<(&str, &str)> = p.iter().collect();
        assert_eq!(got, vec![("a", "1"), ("b", "2"), ("c", "3")]);
    }
}
