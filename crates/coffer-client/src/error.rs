//! The client's error type. Messages never contain a token, access key or
//! secret value: API errors carry the server's own message, transport
//! errors only the URL (which holds no credentials) and the cause.

use thiserror::Error;

/// Result alias for the client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is, for callers that react to the
/// kind rather than the text (the CLI's exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 401: missing, unknown, expired or revoked token; failed login.
    Auth,
    /// 403: the caller may not do this.
    Permission,
    /// 404: the item, role, auth method… does not exist.
    NotFound,
    /// 409: it exists already, or changed meanwhile.
    Conflict,
    /// No answer: connection refused, DNS, TLS, timeout.
    Network,
    /// Anything else (other statuses, bad responses, configuration).
    Other,
}

/// The URL forms that reach a Coffer or Akeyless API, for messages.
pub const API_URL_FORMS: &str = "the server's base URL, e.g. https://coffer.example:8200 (also …/v2 or …/api/v2), or an Akeyless gateway's API, e.g. https://gateway:8000/api/v2 or https://api.akeyless.io";

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

    /// The server answered, but not as a Coffer/Akeyless API does (a 404
    /// or 405 without the API's `{"error": …}` body, or HTML where JSON
    /// was expected): the URL points at something else.
    #[error(
        "{url} does not look like a Coffer or Akeyless API: POST /{operation} answered {answer}. Use {API_URL_FORMS}"
    )]
    NotAnApi {
        url: String,
        operation: String,
        /// What came back, e.g. `HTTP 404 with an HTML page`.
        answer: String,
    },

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
    let lower = reason.to_ascii_lowercase();
    if lower.contains("invalidcontenttype") || lower.contains("plain http") {
        "the server speaks plain HTTP, not TLS: use an http:// URL (allowed to loopback, elsewhere with --allow-insecure-http), or enable TLS on the server"
    } else if lower.contains("causedasendentity") {
        "the server's TLS certificate is a CA certificate (basicConstraints CA:TRUE) used as its own certificate, which TLS clients refuse: give the server a leaf certificate (CA:FALSE, with the host name or IP in subjectAltName) issued by that CA or self-signed, and pass the CA (or that self-signed certificate) with --ca-cert"
    } else if lower.contains("notvalidforname") || lower.contains("not valid for name") {
        "the server's TLS certificate does not name this host: connect with a host name or IP address in its subjectAltName, or reissue the certificate"
    } else if lower.contains("certificate") || lower.contains("unknownissuer") {
        "the gateway's TLS certificate is not trusted: pass its CA certificate (PEM) with --ca-cert (a self-signed server certificate can be passed itself)"
    } else if lower.contains("dns") || lower.contains("lookup") || lower.contains("resolve") {
        "the host name does not resolve: check the gateway URL"
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

    /// The kind of failure: from the HTTP status for API errors, network
    /// for transport errors, other for the rest.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Api { status, .. } => match status {
                401 => ErrorKind::Auth,
                403 => ErrorKind::Permission,
                404 => ErrorKind::NotFound,
                409 => ErrorKind::Conflict,
                _ => ErrorKind::Other,
            },
            Error::Transport { .. } => ErrorKind::Network,
            Error::Decode { .. }
            | Error::NotAnApi { .. }
            | Error::Config(_)
            | Error::InsecureHttp(_)
            | Error::Redirect { .. } => ErrorKind::Other,
        }
    }

    /// A non-2xx answer that is not the API's: a 404/405 whose body is not
    /// a JSON object with `error` or `message` (Coffer and Akeyless always
    /// send one). `None` when the answer looks like the API's.
    pub(crate) fn not_an_api(
        url: &str,
        operation: &str,
        status: u16,
        body: &[u8],
    ) -> Option<Error> {
        if !matches!(status, 404 | 405) {
            return None;
        }
        let api_body = matches!(
            serde_json::from_slice::<serde_json::Value>(body),
            Ok(serde_json::Value::Object(map)) if map.get("error").or_else(|| map.get("message")).is_some_and(serde_json::Value::is_string)
        );
        if api_body {
            return None;
        }
        Some(Error::NotAnApi {
            url: url.to_owned(),
            operation: operation.trim_start_matches('/').to_owned(),
            answer: format!("HTTP {status} {}", describe_body(body)),
        })
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

    /// The error for a 2xx answer whose body is not JSON: HTML or text is
    /// another service than the API.
    pub(crate) fn undecodable(
        url: &str,
        operation: &str,
        body: &[u8],
        e: &serde_json::Error,
    ) -> Error {
        let text = String::from_utf8_lossy(body);
        let head = text.trim_start();
        if head.starts_with('<') || !head.starts_with(['{', '[']) {
            return Error::NotAnApi {
                url: url.to_owned(),
                operation: operation.trim_start_matches('/').to_owned(),
                answer: format!("HTTP 200 {}", describe_body(body)),
            };
        }
        Error::Decode {
            operation: operation.to_string(),
            reason: format!("the body is not JSON ({e})"),
        }
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

/// A short description of a body that is not the API's JSON.
fn describe_body(body: &[u8]) -> &'static str {
    let text = String::from_utf8_lossy(body);
    let head = text.trim_start().to_ascii_lowercase();
    if head.is_empty() {
        "with an empty body"
    } else if head.starts_with("<!doctype html")
        || head.starts_with("<html")
        || head.contains("<body")
    {
        "with an HTML page"
    } else if head.starts_with('{') || head.starts_with('[') {
        "with JSON that is not an API error"
    } else {
        "with a text body"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_status() {
        let kind = |s| Error::from_response(s, br#"{"error":"x"}"#).kind();
        assert_eq!(kind(401), ErrorKind::Auth);
        assert_eq!(kind(403), ErrorKind::Permission);
        assert_eq!(kind(404), ErrorKind::NotFound);
        assert_eq!(kind(409), ErrorKind::Conflict);
        assert_eq!(kind(400), ErrorKind::Other);
        assert_eq!(kind(500), ErrorKind::Other);
        let t = Error::Transport {
            url: "http://127.0.0.1:1".into(),
            reason: "connection failed: Connection refused".into(),
        };
        assert_eq!(t.kind(), ErrorKind::Network);
    }

    #[test]
    fn answers_that_are_not_the_api() {
        let url = "http://127.0.0.1:9";
        // The API's own 404 ("item not found") stays an API error.
        assert!(Error::not_an_api(url, "auth", 404, br#"{"error":"no such item"}"#).is_none());
        assert!(Error::not_an_api(url, "auth", 500, b"<html></html>").is_none());
        let e = Error::not_an_api(url, "/auth", 404, b"<!DOCTYPE html><html>nope</html>").unwrap();
        let text = e.to_string();
        assert!(
            text.contains("does not look like a Coffer or Akeyless API"),
            "{text}"
        );
        assert!(
            text.contains("POST /auth answered HTTP 404 with an HTML page"),
            "{text}"
        );
        assert!(text.contains("/api/v2"), "{text}");
        assert_eq!(e.kind(), ErrorKind::Other);
        let e = Error::not_an_api(url, "auth", 405, b"").unwrap();
        assert!(e.to_string().contains("405 with an empty body"), "{e}");
    }

    #[test]
    fn transport_hints_name_the_cause() {
        let hint = |r: &str| {
            Error::Transport {
                url: "https://127.0.0.1:1".into(),
                reason: r.into(),
            }
            .to_string()
        };
        assert!(
            hint("request failed: received corrupt message of type InvalidContentType")
                .contains("speaks plain HTTP")
        );
        assert!(
            hint("invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))")
                .contains("CA:TRUE")
        );
        assert!(hint("invalid peer certificate: UnknownIssuer").contains("--ca-cert"));
        assert!(
            hint("connection failed: Connection refused (os error 111)")
                .contains("server is running")
        );
    }

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
