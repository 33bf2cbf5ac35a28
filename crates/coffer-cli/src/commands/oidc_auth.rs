//! OIDC auth methods for people: `create-auth-method-oidc`,
//! `update-auth-method-oidc`, and the browser login of `coffer auth
//! --access-type oidc` (like `vault login -method=oidc`): a listener on a
//! loopback port receives the provider's redirect; the server redeems the
//! code (it holds the client secret and the PKCE verifier).

use std::time::Duration;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use coffer_client::ops::{Auth, CreateAuthMethodOidc, UpdateAuthMethodOidc};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::respond;
use crate::args::{CreateAuthMethodOidcArgs, UpdateAuthMethodOidcArgs};
use crate::output::{fields, note};
use crate::session::{Context, secret_or_stdin};

/// How long the CLI waits for the browser (the server's state lives 10
/// minutes).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const MAX_REQUEST_BYTES: usize = 16 * 1024;

fn settings(a: CreateAuthMethodOidcArgs) -> anyhow::Result<CreateAuthMethodOidc> {
    let allowed_redirect_uris = if a.allowed_redirect_uri.is_empty() {
        vec!["http://127.0.0.1:8250/callback".to_owned()]
    } else {
        a.allowed_redirect_uri
    };
    Ok(CreateAuthMethodOidc {
        name: a.name,
        issuer: a.issuer,
        client_id: a.client_id,
        client_secret: secret_or_stdin(a.client_secret, true)?,
        audience: a.audience,
        unique_identifier: a.unique_identifier,
        required_scopes: a.required_scopes,
        required_scopes_prefix: a.required_scopes_prefix,
        allowed_redirect_uris,
        access_expires: a.access_expires,
        common: a.common.into(),
    })
}

pub(super) async fn create_auth_method_oidc(a: CreateAuthMethodOidcArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let request = settings(a)?;
    respond(&global, &request, |out| {
        note(&format!(
            "People log in with: coffer auth --access-id {} --access-type oidc",
            out.access_id
        ));
        Ok(fields(&[("name", out.name), ("access_id", out.access_id)]))
    })
    .await
}

pub(super) async fn update_auth_method_oidc(a: UpdateAuthMethodOidcArgs) -> anyhow::Result<()> {
    let global = a.settings.global.clone();
    let request = UpdateAuthMethodOidc {
        settings: settings(a.settings)?,
        new_name: a.new_name,
    };
    respond(&global, &request, |out| Ok(fields(&[("name", out.name)]))).await
}

/// What the provider redirected the browser with (its state already
/// checked).
struct Callback {
    code: Option<String>,
    error: Option<String>,
}

/// A random client nonce: 32 bytes, base64url (43 characters).
fn new_client_nonce() -> anyhow::Result<SecretString> {
    let mut buf = zeroize::Zeroizing::new([0u8; 32]);
    coffer_crypto::fill_random(&mut *buf).context("cannot make the login's client nonce")?;
    Ok(SecretString::from(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*buf),
    ))
}

/// Text from elsewhere (the provider, a web page, the server), fit for the
/// terminal: no control characters (escape sequences, carriage returns)
/// and no bidirectional overrides; at most 1024 characters.
fn sanitize(text: &str) -> String {
    text.chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .take(1024)
        .collect()
}

/// May the CLI hand `url` to the browser? Only https, or plain http to a
/// loopback host (a provider on this machine): anything else the server
/// sends (`file:`, another scheme handler, an option-looking string) is
/// not opened.
fn browser_may_open(url: &str) -> bool {
    let Ok(u) = reqwest::Url::parse(url) else {
        return false;
    };
    let loopback = u.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    match u.scheme() {
        "https" => u.host_str().is_some(),
        "http" => loopback,
        _ => false,
    }
}

/// `request` completed with the code, state and client nonce of a
/// browser login.
pub(super) async fn with_browser_login(
    ctx: &Context,
    mut request: Auth,
    port: u16,
    no_browser: bool,
) -> anyhow::Result<Auth> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| {
            format!("cannot listen on 127.0.0.1:{port} for the provider's redirect (choose another --redirect-port allowed by the auth method)")
        })?;
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    // Kept here: the server seals its hash into the state, and only a
    // login that presents it again can redeem the code.
    let client_nonce = new_client_nonce()?;
    let out = ctx
        .client
        .oidc_auth_url(&request.access_id, &redirect_uri, &client_nonce)
        .await?;
    let shown = sanitize(&out.auth_url);
    let openable = browser_may_open(&out.auth_url) && shown == out.auth_url;
    eprintln!("Complete the login in your browser:\n\n    {shown}\n");
    if !openable {
        eprintln!(
            "(not opening it: the server's authorization URL is neither https nor http to this machine; check it before you use it)"
        );
    } else if !no_browser {
        // Best effort: the URL above works without it.
        let opened = tokio::process::Command::new("xdg-open")
            .arg(&out.auth_url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if opened.is_err() {
            eprintln!("(no browser could be started: open the URL yourself)");
        }
    }
    let cb = tokio::time::timeout(LOGIN_TIMEOUT, wait_for_callback(&listener, &out.state))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no login within {} minutes: run coffer auth again",
                LOGIN_TIMEOUT.as_secs() / 60
            )
        })??;
    if let Some(err) = cb.error {
        bail!("the provider refused the login: {}", sanitize(&err));
    }
    let Some(code) = cb.code else {
        bail!("the provider's redirect carried no code");
    };
    request.code = Some(SecretString::from(code));
    request.state = Some(out.state);
    request.client_nonce = Some(client_nonce);
    Ok(request)
}

/// Serve the loopback listener until a redirect with this login's state
/// arrives. Anything else (another path, a missing or different state:
/// any web page can make the browser fetch this port) is answered and
/// ignored, so it can neither end nor steer the login.
async fn wait_for_callback(
    listener: &tokio::net::TcpListener,
    expected_state: &str,
) -> anyhow::Result<Callback> {
    loop {
        let (mut stream, _) = listener.accept().await?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        let head = loop {
            let n = match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
                .await
            {
                Ok(Ok(n)) => n,
                _ => break None,
            };
            if n == 0 {
                break None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                break Some(String::from_utf8_lossy(&buf).into_owned());
            }
            if buf.len() > MAX_REQUEST_BYTES {
                break None;
            }
        };
        let Some(head) = head else { continue };
        let target = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or_default()
            .to_owned();
        let Ok(url) = reqwest::Url::parse(&format!("http://127.0.0.1{target}")) else {
            respond_html(&mut stream, "400 Bad Request", "Bad request.").await;
            continue;
        };
        if url.path() != "/callback" {
            respond_html(&mut stream, "404 Not Found", "Not the login callback.").await;
            continue;
        }
        let get = |k: &str| {
            url.query_pairs()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.into_owned())
        };
        if get("state").as_deref() != Some(expected_state) {
            respond_html(
                &mut stream,
                "400 Bad Request",
                "This is not the redirect of the login in progress.",
            )
            .await;
            continue;
        }
        let cb = Callback {
            code: get("code"),
            error: get("error").map(|e| match get("error_description") {
                Some(d) => format!("{e} ({d})"),
                None => e,
            }),
        };
        let text = if cb.error.is_some() {
            "The login failed: see the terminal."
        } else {
            "Login received: you can close this window and return to the terminal."
        };
        respond_html(&mut stream, "200 OK", text).await;
        return Ok(cb);
    }
}

async fn respond_html(stream: &mut tokio::net::TcpStream, status: &str, text: &str) {
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Coffer login</title></head><body><p>{text}</p></body></html>"
    );
    let resp = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    // The browser may be gone already: nothing to do about it.
    if stream.write_all(resp.as_bytes()).await.is_ok() {
        stream.shutdown().await.ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_text_has_no_control_characters() {
        assert_eq!(
            sanitize("access_denied (\u{1b}[2J\u{1b}]0;pwned\u{7}gone\r\nx\u{202e}y\u{9b}z)"),
            "access_denied ([2J]0;pwnedgonexyz)"
        );
        assert_eq!(sanitize("plain é text"), "plain é text");
        assert_eq!(sanitize(&"a".repeat(5000)).len(), 1024);
    }

    #[test]
    fn only_https_or_loopback_http_is_opened() {
        assert!(browser_may_open("https://idp.example/authorize?x=1"));
        assert!(browser_may_open("http://127.0.0.1:9000/auth"));
        assert!(browser_may_open("http://localhost:9000/auth"));
        assert!(browser_may_open("http://[::1]:9000/auth"));
        for bad in [
            "http://idp.example/authorize",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "ssh://host/x",
            "--help",
            "not a url",
        ] {
            assert!(!browser_may_open(bad), "{bad}");
        }
    }

    async fn get(port: u16, target: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// Requests without the login's state (a web page probing the port,
    /// a forged error) are answered 400 and do not end the login; the
    /// real redirect does.
    #[tokio::test]
    async fn the_listener_waits_for_its_own_state() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let waiting = tokio::spawn(async move {
            wait_for_callback(&listener, "the-state")
                .await
                .map(|c| (c.code, c.error))
        });
        let forged = get(
            port,
            "/callback?error=access_denied&error_description=%1B%5B2Jgotcha&state=other",
        )
        .await;
        assert!(forged.starts_with("HTTP/1.1 400"), "{forged}");
        let no_state = get(port, "/callback?error=access_denied").await;
        assert!(no_state.starts_with("HTTP/1.1 400"), "{no_state}");
        let elsewhere = get(port, "/favicon.ico").await;
        assert!(elsewhere.starts_with("HTTP/1.1 404"), "{elsewhere}");
        assert!(!waiting.is_finished());
        let ok = get(port, "/callback?code=the-code&state=the-state").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        let (code, error) = waiting.await.unwrap().unwrap();
        assert_eq!(code.as_deref(), Some("the-code"));
        assert_eq!(error, None);
    }

    #[test]
    fn client_nonces_are_fresh() {
        use secrecy::ExposeSecret as _;
        let a = new_client_nonce().unwrap();
        let b = new_client_nonce().unwrap();
        assert_eq!(a.expose_secret().len(), 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }
}
