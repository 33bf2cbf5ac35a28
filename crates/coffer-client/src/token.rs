//! The caller's credential, sent in the request body.

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

/// A session token (`token`) or a Universal Identity token (`uid-token`).
///
/// The value is held in a [`SecretString`]: it is wiped on drop and never
/// shown by `Debug`.
#[derive(Clone)]
pub enum Token {
    /// A token returned by `auth` (sent as `token`).
    Session(SecretString),
    /// A Universal Identity token (sent as `uid-token`).
    Uid(SecretString),
}

impl Token {
    /// A session token as returned by `auth`.
    pub fn new(token: impl Into<SecretString>) -> Token {
        Token::Session(token.into())
    }

    /// A Universal Identity token.
    pub fn uid(token: impl Into<SecretString>) -> Token {
        Token::Uid(token.into())
    }

    /// The secret value. Use only to hand the token to its owner (e.g.
    /// `coffer auth` printing it).
    pub fn secret(&self) -> &SecretString {
        match self {
            Token::Session(s) | Token::Uid(s) => s,
        }
    }

    /// The body field this token travels in.
    pub fn field(&self) -> &'static str {
        match self {
            Token::Session(_) => "token",
            Token::Uid(_) => "uid-token",
        }
    }

    /// Insert the token into a request body.
    pub(crate) fn insert_into(&self, body: &mut Map<String, Value>) {
        body.insert(
            self.field().to_string(),
            Value::String(self.secret().expose_secret().to_string()),
        );
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Token::Session(_) => f.write_str("Token::Session([REDACTED])"),
            Token::Uid(_) => f.write_str("Token::Uid([REDACTED])"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted_and_field_names_match_the_wire() {
        let t = Token::new("t-supersecret".to_string());
        assert!(!format!("{t:?}").contains("supersecret"));
        let mut m = Map::new();
        t.insert_into(&mut m);
        assert_eq!(m["token"], "t-supersecret");
        let mut m = Map::new();
        Token::uid("u-1".to_string()).insert_into(&mut m);
        assert_eq!(m["uid-token"], "u-1");
    }
}
