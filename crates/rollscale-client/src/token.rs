//! The REST API's bearer token: `rs1.<AccessKeyId>.<expiry>.<mac>`, where the expiry is in Unix
//! seconds and the mac is hex(HMAC-SHA256(secret, "rs1.<AccessKeyId>.<expiry>")). The server
//! checks the mac with the AccessKey's current secret, so disabling or deleting the key revokes
//! every token it made.

use crate::sign::constant_time_eq;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The first part of every token: the format's version.
pub const TOKEN_PREFIX: &str = "rs1";

fn mac(secret: &str, payload: &str) -> String {
    // HMAC takes keys of any length, so this never fails; if it did, an empty mac would make a
    // token that no check accepts.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return String::new() };
    mac.update(payload.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// A bearer token for `access_key_id`, valid until `expires` (Unix seconds).
pub fn make_token(access_key_id: &str, secret: &str, expires: i64) -> String {
    let payload = format!("{TOKEN_PREFIX}.{access_key_id}.{expires}");
    let mac = mac(secret, &payload);
    format!("{payload}.{mac}")
}

/// A token taken apart, not yet verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    /// The AccessKey the token claims to be made with.
    pub access_key_id: &'a str,
    /// Unix seconds after which it is refused.
    pub expires: i64,
    payload: &'a str,
    mac: &'a str,
}

impl<'a> Token<'a> {
    /// The parts of a token, if `text` has a token's shape.
    pub fn parse(text: &'a str) -> Option<Token<'a>> {
        let (payload, mac) = text.rsplit_once('.')?;
        let mut parts = payload.splitn(3, '.');
        let (prefix, key, expires) = (parts.next()?, parts.next()?, parts.next()?);
        if prefix != TOKEN_PREFIX || key.is_empty() {
            return None;
        }
        Some(Token { access_key_id: key, expires: expires.parse().ok()?, payload, mac })
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
        let text = make_token("LTAIkey", "secret", 1_900_000_000);
        assert!(text.starts_with("rs1.LTAIkey.1900000000."));
        let token = Token::parse(&text).unwrap();
        assert_eq!((token.access_key_id, token.expires), ("LTAIkey", 1_900_000_000));
        assert!(token.signed_with("secret"));
        assert!(!token.signed_with("another"));
    }

    #[test]
    fn malformed_tokens_are_not_tokens() {
        for text in ["", "rs1", "rs1.key.10", "rs2.key.10.ab", "rs1..10.ab", "rs1.key.soon.ab"] {
            assert_eq!(Token::parse(text), None, "{text}");
        }
        // A changed expiry breaks the mac.
        let text = make_token("k", "s", 10).replace(".10.", ".99.");
        assert!(!Token::parse(&text).unwrap().signed_with("s"));
    }
}
