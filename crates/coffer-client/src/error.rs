//! The client's error type. Messages never contain a token, access key or
//! secret value: API errors carry the server's own message, transport
//! errors only the URL (which holds no credentials) and the cause.

use thiserror::Error;

/// Result alias for the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    /// The server answered with a non-2xx status. `message` is the server's
    /// `{"error": …}` text (or a short description of the body when the
    /// server did not send one).
    #[error("{message}")]
    Api { status: u16, message: String },

    /// The request never got an answer: connection refused, DNS failure,
    /// TLS failure, timeout.
    #[error("cannot reach the Coffer gateway at {url}: {reason} ({})", transport_hint(.reason))]
    Transport { url: String, reason: String },

    /// The server answered 2xx but the body is not the JSON we expected.
    #[error("unexpected response to {operation}: {reason}")]
    Decode { operation: String, reason: String },

    /// The client could not be built (bad base URL, unreadable CA certificate).
    #[error("{0}")]
    Config(String),

    /// The gateway URL is plain `http://` to a host that is not loopback,
    /// and plain HTTP was not allowed: refused before connecting.
    #[error("gateway URL: {0}")]
    InsecureHttp(#[from] crate::transport::InsecureHttp),

    /// The gateway answered with a redirect, which is never followed (the
    /// request's credentials would go to the new address).
    #[error("the Coffer gateway at {url}: {redirect}")]
    Redirect {
        url: String,
        redirect: crate::transport::RedirectRefused,
    },
}

/// `text` with each of `secrets` (4 characters or more), as is or
/// JSON-escaped, replaced by `[REDACTED]`.
fn redact_text(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.chars().count() >= 4) {
        let escaped = serde_json::to_string(secret).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        for form in [*secret, escaped] {
            if !form.is_empty() && out.contains(form) {
                out = out.replace(form, "[REDACTED]");
            }
        }
    }
    out
}

/// What to check after a transport failure.
fn transport_hint(reason: &str) -> &'static str {
    if reason.to_ascii_lowercase().contains("certificate") {
        "the gateway's TLS certificate is not trusted: pass its CA certificate (PEM)"
    } else {
        "check the gateway URL and that the server is running"
    }
}

impl Error {
    /// HTTP status for API errors.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for 401 (missing, unknown, expired or revoked token; failed login).
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(401)
    }

    /// Build the error for a non-2xx response from its body.
    pub(crate) fn from_response(status: u16, body: &[u8]) -> Error {
        let message = match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(serde_json::Value::Object(map)) => {
                let error = map.get("error").and_then(|v| v.as_str());
                let detail = map.get("message").and_then(|v| v.as_str());
                match (error, detail) {
                    (Some(e), Some(m)) if !m.trim().is_empty() => format!("{e}: {}", m.trim()),
                    (Some(e), _) => e.to_string(),
                    (None, Some(m)) => m.to_string(),
                    (None, None) => format!("HTTP {status}"),
                }
            }
            _ => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if text.is_empty() {
                    format!("HTTP {status}")
                } else {
                    let short: String = text.chars().take(200).collect();
                    format!("HTTP {status}: {short}")
                }
            }
        };
        Error::Api { status, message }
    }

    /// Replace each of `secrets` (credentials and values sent in the
    /// request) in an API error's message by `[REDACTED]`: a gateway that
    /// echoes its input ("invalid token t-…") must not make us print it.
    pub(crate) fn redact(self, secrets: &[&str]) -> Error {
        match self {
            Error::Api { status, message } => Error::Api {
                status,
                message: redact_text(&message, secrets),
            },
            other => other,
        }
    }

    /// [`Error::from_response`] for a request that carried `secrets`: they
    /// are redacted from the body before it is shortened (so no prefix of
    /// one survives the cut) and from the message.
    pub(crate) fn from_response_redacted(status: u16, body: &[u8], secrets: &[&str]) -> Error {
        let text = redact_text(&String::from_utf8_lossy(body), secrets);
        Error::from_response(status, text.as_bytes()).redact(secrets)
    }

    /// Build a transport error for the gateway at `url` from a reqwest error.
    pub(crate) fn transport(url: &str, err: &reqwest::Error) -> Error {
        let mut reason = if err.is_timeout() {
            "request timed out".to_string()
        } else if err.is_connect() {
            "connection failed".to_string()
        } else {
            "request failed".to_string()
        };
        // The innermost cause is the useful part ("Connection refused (os error 111)").
        let mut cause = std::error::Error::source(err);
        let mut innermost = None;
        while let Some(c) = cause {
            innermost = Some(c.to_string());
            cause = c.source();
        }
        if let Some(text) = innermost.filter(|t| !t.is_empty()) {
            reason.push_str(": ");
            reason.push_str(&text);
        }
        Error::Transport {
            url: url.to_string(),
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_uses_server_message() {
        let e = Error::from_response(403, br#"{"error":"access denied: no read on /x"}"#);
        assert_eq!(e.to_string(), "access denied: no read on /x");
        assert_eq!(e.status(), Some(403));
        let e = Error::from_response(
            400,
            br#"{"error":"InvalidParam","message":"Missing required parameter - AccessId "}"#,
        );
        assert_eq!(
            e.to_string(),
            "InvalidParam: Missing required parameter - AccessId"
        );
        let e = Error::from_response(502, b"<html>bad gateway</html>");
        assert_eq!(e.to_string(), "HTTP 502: <html>bad gateway</html>");
        let e = Error::from_response(500, b"");
        assert_eq!(e.to_string(), "HTTP 500");
        assert!(Error::from_response(401, b"{}").is_unauthorized());
    }

    #[test]
    fn api_messages_never_echo_what_was_sent() {
        let e = Error::from_response(400, b"bad token t-secret-123 for t-secret-123")
            .redact(&["t-secret-123", "abc"]);
        assert_eq!(
            e.to_string(),
            "HTTP 400: bad token [REDACTED] for [REDACTED]"
        );
        // A long echo is cut at 200 characters: no prefix of the secret
        // survives the cut.
        let secret = "k-0123456789abcdefghij";
        let body = format!("{}{secret}", "x".repeat(190));
        let e = Error::from_response_redacted(400, body.as_bytes(), &[secret]);
        assert!(!e.to_string().contains("k-0123"), "{e}");
        // JSON-escaped in a JSON body.
        let e = Error::from_response_redacted(
            401,
            br#"{"error":"bad key pa\"ss\\word"}"#,
            &["pa\"ss\\word"],
        );
        assert_eq!(e.to_string(), "bad key [REDACTED]");
    }
}
