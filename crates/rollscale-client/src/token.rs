//! The REST API's bearer token: `rs2.<AccessKeyId>.<session start>.<expiry>.<mac>`, where both
//! times are in Unix milliseconds and the mac is
//! hex(HMAC-SHA256(secret, "rs2.<AccessKeyId>.<session start>.<expiry>")).
//!
//! A token made from the secret ([`make_token`]: `rollscale token`, the console's sign-in)
//! starts a session then; one the server gives for another (`POST /v1/tokens`, a renewal)
//! keeps that session's start ([`make_session_token`]). The server checks the mac with the
//! AccessKey's current secret, so deleting the key revokes every token it made; it also refuses
//! a token whose session began before the key was last disabled (re-enabling the key does not
//! bring it back) or longer ago than its maximum session age, however often it was renewed.
//!
//! The tokens of earlier versions, `rs1.<AccessKeyId>.<expiry, Unix seconds>.<mac>`, carry no
//! session start and are refused ([`is_retired_format`]): they lived an hour by default, a day
//! at most, so making a new one is all it takes.

use crate::sign::constant_time_eq;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The first part of every token: the format's version.
pub const TOKEN_PREFIX: &str = "rs2";

/// The first part of the tokens of earlier versions (no session start), refused now.
pub const RETIRED_PREFIX: &str = "rs1";

fn mac(secret: &str, payload: &str) -> String {
    // HMAC takes keys of any length, so this never fails; if it did, an empty mac would make a
    // token that no check accepts.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Milliseconds since the Unix epoch, now (by this machine's clock).
fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

/// A bearer token for `access_key_id` that starts a session now, valid until `expires` (Unix
/// seconds). The server accepts it until then, and never longer than its maximum session age
/// after now.
pub fn make_token(access_key_id: &str, secret: &str, expires: i64) -> String {
    make_session_token(access_key_id, secret, now_millis(), expires.saturating_mul(1000))
}

/// A bearer token for `access_key_id` of the session that began at `session_start`, valid until
/// `expires` (both Unix milliseconds).
pub fn make_session_token(access_key_id: &str, secret: &str, session_start: i64, expires: i64) -> String {
    let payload = format!("{TOKEN_PREFIX}.{access_key_id}.{session_start}.{expires}");
    let mac = mac(secret, &payload);
    format!("{payload}.{mac}")
}

/// Whether `text` is a token of the format earlier versions made (`rs1.…`), which is refused.
pub fn is_retired_format(text: &str) -> bool {
    text.strip_prefix(RETIRED_PREFIX).is_some_and(|rest| rest.starts_with('.'))
}

/// The AccessKey id a token of either format claims, unverified (for the audit log of a
/// refused request): its second part.
pub fn claimed_access_key_id(text: &str) -> Option<&str> {
    let mut parts = text.split('.');
    let prefix = parts.next()?;
    let key = parts.next()?;
    ((prefix == TOKEN_PREFIX || prefix == RETIRED_PREFIX) && !key.is_empty()).then_some(key)
}

/// A token taken apart, not yet verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// The AccessKey the token claims to be made with.
    pub access_key_id: &'a str,
    /// Unix milliseconds: when its session began (the token made from the secret).
    pub session_start: i64,
    /// Unix milliseconds after which it is refused.
    pub expires: i64,
    payload: &'a str,
    mac: &'a str,
}

impl<'a> Token<'a> {
    /// The parts of a token, if `text` has a token's shape.
    pub fn parse(text: &'a str) -> Option<Token<'a>> {
        let (payload, mac) = text.rsplit_once('.')?;
        let mut parts = payload.splitn(4, '.');
        let (prefix, key, start, expires) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if prefix != TOKEN_PREFIX || key.is_empty() {
            return None;
        }
        Some(Token {
            access_key_id: key,
            session_start: start.parse().ok()?,
            expires: expires.parse().ok()?,
            payload,
            mac,
        })
    }

    /// Whether the token was made with `secret` (compared in constant time).
    pub fn signed_with(&self, secret: &str) -> bool {
        constant_time_eq(mac(secret, self.payload).as_bytes(), self.mac.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_parses_back_and_verifies_only_with_its_secret() {
        let text = make_session_token("LTAIkey", "secret", 1_800_000_000_123, 1_900_000_000_000);
        assert!(text.starts_with("rs2.LTAIkey.1800000000123.1900000000000."));
        let token = Token::parse(&text).unwrap();
        assert_eq!(
            (token.access_key_id, token.session_start, token.expires),
            ("LTAIkey", 1_800_000_000_123, 1_900_000_000_000)
        );
        assert!(token.signed_with("secret"));
        assert!(!token.signed_with("another"));
    }

    #[test]
    fn a_token_made_from_the_secret_starts_its_session_now() {
        let before = now_millis();
        let text = make_token("LTAIkey", "secret", 1_900_000_000);
        let token = Token::parse(&text).unwrap();
        assert!((before..=now_millis()).contains(&token.session_start), "{text}");
        assert_eq!(token.expires, 1_900_000_000_000, "seconds in, milliseconds in the token");
    }

    #[test]
    fn malformed_tokens_are_not_tokens() {
        for text in ["", "rs2", "rs2.key.10", "rs2.key.1.10", "rs3.key.1.10.ab", "rs2..1.10.ab", "rs2.key.now.10.ab"] {
            assert_eq!(Token::parse(text), None, "{text}");
        }
        // A changed expiry or session start breaks the mac.
        let text = make_session_token("k", "s", 5, 10);
        for changed in [text.replace(".10.", ".99."), text.replace(".5.", ".6.")] {
            assert!(!Token::parse(&changed).unwrap().signed_with("s"), "{changed}");
        }
    }

    #[test]
    fn the_earlier_format_is_told_apart_and_names_its_key() {
        let old = "rs1.LTAIold.1900000000.ab";
        assert!(is_retired_format(old));
        assert_eq!(Token::parse(old), None);
        assert_eq!(claimed_access_key_id(old), Some("LTAIold"));
        let new = make_token("LTAInew", "s", 10);
        assert!(!is_retired_format(&new) && !is_retired_format("rs10.x"));
        assert_eq!(claimed_access_key_id(&new), Some("LTAInew"));
        assert_eq!(claimed_access_key_id("Basic abc"), None);
    }
}
