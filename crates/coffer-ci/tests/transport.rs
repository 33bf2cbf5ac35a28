//! Issue 9 item 8 for every outbound client of `coffer ci`: a redirect is
//! never followed (the credential is not sent again to the `Location`), and
//! plain `http://` to a host that is not loopback is refused before any
//! connection unless `COFFER_ALLOW_INSECURE_HTTP` allows it.
//!
//! A loopback "gateway" answers every request with `307` and a `Location`
//! on a second loopback server that records every connection it gets; the
//! recorder must stay empty. Refusals are checked on 10.255.255.1 (never
//! contacted: the refusal comes first, so no traffic leaves loopback).
// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_ci::cloud_id;
use coffer_ci::gitlab::{self, Variables};
use coffer_ci::providers::aws::{self, Credentials, SecretsManager, WebIdentity};
use coffer_ci::providers::azure::{self, AccessToken, AzureSecret, TokenRequest};
use coffer_ci::providers::{DEFAULT_TIMEOUT, Env, http_client};
use coffer_ci::resolve::{self, Options, ResolveError};
use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

type Log = Arc<Mutex<Vec<String>>>;

/// Reads one HTTP/1.1 request (head and `content-length` body) as text.
async fn read_request(stream: &mut tokio::net::TcpStream) -> String {
    let mut reader = BufReader::new(stream);
    let mut text = String::new();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return text,
            Ok(_) => {}
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        text.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).await.ok();
    text + &String::from_utf8_lossy(&body)
}

/// Records every connection (what was sent on it, if anything) and closes it.
async fn recorder(bind: &str) -> (String, Log) {
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let seen = log.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let request = tokio::time::timeout(Duration::from_secs(2), read_request(&mut stream))
                .await
                .unwrap_or_else(|_| "(connected, sent nothing)".into());
            seen.lock().unwrap().push(request);
        }
    });
    (format!("127.0.0.1:{}", addr.port()), log)
}

/// Answers every request with `307` to `location`, recording the requests.
async fn redirector(bind: &str, location: String) -> (String, Log) {
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let seen = log.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let location = location.clone();
            let seen = seen.clone();
            tokio::spawn(async move {
                let request = read_request(&mut stream).await;
                seen.lock().unwrap().push(request);
                let reply = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nlocation: {location}\r\n\
                     content-length: 0\r\nconnection: close\r\n\r\n"
                );
                stream.write_all(reply.as_bytes()).await.ok();
                stream.shutdown().await.ok();
            });
        }
    });
    (format!("{}:{}", addr.ip(), addr.port()), log)
}

/// A redirecting gateway and the recorder its `Location` points at.
struct Trap {
    /// `host:port` of the redirecting server.
    gateway: String,
    gateway_log: Log,
    /// `host:port` of the recorder.
    collector: String,
    collector_log: Log,
}

async fn trap() -> Trap {
    let (collector, collector_log) = recorder("127.0.0.1:0").await;
    let (gateway, gateway_log) = redirector(
        "127.0.0.1:0",
        format!("http://{collector}/collect?stolen=1"),
    )
    .await;
    Trap {
        gateway,
        gateway_log,
        collector,
        collector_log,
    }
}

impl Trap {
    /// The error names the status and the redirect's host, not the path.
    #[track_caller]
    fn assert_refused(&self, error: &str) {
        assert!(error.contains("HTTP 307"), "{error}");
        assert!(error.contains(&self.collector), "{error}");
        assert!(!error.contains("stolen"), "{error}");
    }

    /// The gateway got `secret` once at least; the recorder got nothing.
    async fn assert_nothing_re_sent(&self, secret: &str) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = self.gateway_log.lock().unwrap().clone();
        assert!(
            sent.iter().any(|r| r.contains(secret)),
            "the gateway should have got the request: {sent:?}"
        );
        let collected = self.collector_log.lock().unwrap().clone();
        assert!(
            collected.is_empty(),
            "the redirect target received {} request(s): {collected:?}",
            collected.len()
        );
    }
}

/// One `akeyless:` secret `DB` with the given API URL, secret-level lines
/// (`token:`) and `akeyless:` lines (access type, credential).
fn akeyless_job(api_url: &str, secret_lines: &str, akeyless_lines: &str) -> gitlab::Job {
    let yaml = format!(
        "deploy:\n  id_tokens:\n    AKEYLESS_JWT:\n      aud: coffer\n  secrets:\n    DB:\n      file: false\n{secret_lines}      akeyless:\n        name: /app/db\n        akeyless_api_url: {api_url}\n{akeyless_lines}"
    );
    gitlab::load(&yaml, "deploy", &Variables::new()).unwrap()
}

const API_KEY: &str =
    "        akeyless_access_type: api_key\n        akeyless_access_key: ak-S3CR3T-access-key\n";

fn akeyless_vars() -> Variables {
    [
        ("AKEYLESS_ACCESS_ID", "p-abcdefghijkl"),
        ("AKEYLESS_JWT", "eyJ.S3CR3T-jwt.sig"),
    ]
    .into_iter()
    .collect()
}

async fn resolve_error(job: &gitlab::Job, env: &Env) -> String {
    let err = resolve::resolve(job, &akeyless_vars(), env, &Options::default())
        .await
        .expect_err("resolving must fail");
    assert!(matches!(err, ResolveError::Failed { .. }), "{err}");
    err.to_string()
}

#[tokio::test]
async fn akeyless_credentials_are_not_re_sent_on_a_redirect() {
    for (secret_lines, akeyless_lines, secret) in [
        ("", API_KEY, "ak-S3CR3T-access-key"),
        ("      token: $AKEYLESS_JWT\n", "", "S3CR3T-jwt"),
        (
            "",
            "        akeyless_token: t-S3CR3T-token\n",
            "t-S3CR3T-token",
        ),
    ] {
        let t = trap().await;
        let job = akeyless_job(
            &format!("http://{}", t.gateway),
            secret_lines,
            akeyless_lines,
        );
        let err = resolve_error(&job, &Env::from_pairs::<&str, &str>([])).await;
        t.assert_refused(&err);
        assert!(!err.contains(secret), "{err}");
        t.assert_nothing_re_sent(secret).await;
    }
}

#[tokio::test]
async fn aws_sts_and_secrets_manager_do_not_follow_redirects() {
    let client = http_client(DEFAULT_TIMEOUT).unwrap();
    let t = trap().await;
    let identity = WebIdentity {
        endpoint: format!("http://{}/", t.gateway),
        region: "us-east-1".into(),
        role_arn: "arn:aws:iam::123456789012:role/ci".into(),
        session_name: "ci".into(),
        token: SecretString::from("eyJ.S3CR3T-web-identity.sig".to_owned()),
    };
    let err = aws::assume_role_with_web_identity(&client, &identity)
        .await
        .unwrap_err()
        .to_string();
    t.assert_refused(&err);
    t.assert_nothing_re_sent("S3CR3T-web-identity").await;

    let t = trap().await;
    let creds = Credentials::new(
        "AKIDEXAMPLE",
        SecretString::from("aws-secret".to_owned()),
        Some(SecretString::from("S3CR3T-session-token".to_owned())),
        None,
        "test",
    );
    let endpoint = format!("http://{}/", t.gateway);
    let sm = SecretsManager::new(&client, &endpoint, "us-east-1", &creds);
    let err = sm
        .call(
            "GetSecretValue",
            &serde_json::json!({"SecretId": "app/db"}),
            "secret 'app/db'",
        )
        .await
        .unwrap_err()
        .to_string();
    t.assert_refused(&err);
    t.assert_nothing_re_sent("S3CR3T-session-token").await;
}

#[tokio::test]
async fn azure_token_and_secret_requests_do_not_follow_redirects() {
    let client = http_client(DEFAULT_TIMEOUT).unwrap();
    let t = trap().await;
    let request = TokenRequest {
        authority_host: format!("http://{}", t.gateway),
        tenant_id: "tenant".into(),
        client_id: "client".into(),
        assertion: SecretString::from("eyJ.S3CR3T-assertion.sig".to_owned()),
    };
    let err = azure::get_token(&client, &request)
        .await
        .unwrap_err()
        .to_string();
    t.assert_refused(&err);
    t.assert_nothing_re_sent("S3CR3T-assertion").await;

    let t = trap().await;
    let token = AccessToken::new(SecretString::from("S3CR3T-access-token".to_owned()), None);
    let secret = AzureSecret {
        name: "db".into(),
        version: String::new(),
    };
    let err = azure::get_secret(&client, &format!("http://{}", t.gateway), &secret, &token)
        .await
        .unwrap_err()
        .to_string();
    t.assert_refused(&err);
    t.assert_nothing_re_sent("S3CR3T-access-token").await;
}

const OIDC_YAML: &str = "deploy:\n  id_tokens:\n    AKEYLESS_JWT:\n      aud: coffer\n  secrets:\n    B:\n      token: $AKEYLESS_JWT\n      akeyless:\n        name: /app/b\n";

#[tokio::test]
async fn the_github_id_token_request_is_not_re_sent() {
    let t = trap().await;
    let job = gitlab::load(OIDC_YAML, "deploy", &Variables::new()).unwrap();
    let url = format!("http://{}/_apis/pipelines/token?api-version=2.0", t.gateway);
    let env = Env::from_pairs([
        ("ACTIONS_ID_TOKEN_REQUEST_URL", url.as_str()),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "S3CR3T-request-token"),
    ]);
    let err = coffer_ci::id_tokens::provide(&job, &mut Variables::new(), &Default::default(), &env)
        .await
        .unwrap_err()
        .to_string();
    t.assert_refused(&err);
    t.assert_nothing_re_sent("S3CR3T-request-token").await;
}

#[tokio::test]
async fn metadata_and_container_credentials_do_not_follow_redirects() {
    let t = trap().await;
    let env = Env::from_pairs([(
        "AZURE_POD_IDENTITY_AUTHORITY_HOST",
        format!("http://{}", t.gateway),
    )]);
    let err = cloud_id::azure_ad(&env, "", "api://coffer")
        .await
        .unwrap_err()
        .to_string();
    t.assert_refused(&err);
    t.assert_nothing_re_sent("metadata: true").await;

    let t = trap().await;
    let env = Env::from_pairs([("GCE_METADATA_HOST", t.gateway.clone())]);
    let err = cloud_id::gcp(&env, "coffer").await.unwrap_err().to_string();
    t.assert_refused(&err);
    t.assert_nothing_re_sent("metadata-flavor: Google").await;

    let t = trap().await;
    let home = tempfile::tempdir().unwrap();
    let env = Env::from_pairs([
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("http://{}/v2/credentials", t.gateway),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN",
            "S3CR3T-container-token".to_owned(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("HOME", home.path().display().to_string()),
    ]);
    let client = http_client(DEFAULT_TIMEOUT).unwrap();
    let err = aws::host_credentials(&client, &env)
        .await
        .unwrap_err()
        .to_string();
    t.assert_refused(&err);
    t.assert_nothing_re_sent("S3CR3T-container-token").await;

    let t = trap().await;
    let env = Env::from_pairs([
        (
            "AWS_EC2_METADATA_SERVICE_ENDPOINT",
            format!("http://{}", t.gateway),
        ),
        ("HOME", home.path().display().to_string()),
    ]);
    let err = aws::host_credentials(&client, &env)
        .await
        .unwrap_err()
        .to_string();
    t.assert_refused(&err);
    t.assert_nothing_re_sent("x-aws-ec2-metadata-token-ttl-seconds")
        .await;
}

/// Refused before connecting: the error says so, and comes at once (a
/// connection attempt to 10.255.255.1 would wait for the timeout).
#[track_caller]
fn assert_refused_at_once(started: Instant, error: &str, origin: &str) {
    assert!(
        error.contains(&format!("refusing plain HTTP to {origin}")),
        "{error}"
    );
    assert!(error.contains("COFFER_ALLOW_INSECURE_HTTP"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(1), "{error}");
}

#[tokio::test]
async fn plain_http_off_loopback_is_refused_before_connecting() {
    let none = Env::from_pairs::<&str, &str>([]);
    // akeyless: at plan time, before the login.
    for (url, origin) in [
        ("http://10.255.255.1:8200", "http://10.255.255.1:8200"),
        ("http://gateway.invalid/api/v2", "http://gateway.invalid"),
    ] {
        let job = akeyless_job(url, "", API_KEY);
        let started = Instant::now();
        let err = resolve_error(&job, &none).await;
        assert_refused_at_once(started, &err, origin);
        // explain shows it as the secret's problem, without any request.
        let explained = resolve::explain(&job, &akeyless_vars(), &none);
        let problem = explained[0].problem.clone().unwrap_or_default();
        assert!(problem.contains("refusing plain HTTP"), "{problem}");
        // With the opt-in the plan accepts it (explain sends nothing).
        let allowed = Env::from_pairs([("COFFER_ALLOW_INSECURE_HTTP", "1")]);
        let explained = resolve::explain(&job, &akeyless_vars(), &allowed);
        assert_eq!(explained[0].problem, None, "{explained:?}");
        assert_eq!(explained[0].endpoint, url);
    }

    // GitHub's ID-token endpoint (its bearer token would travel in clear).
    let job = gitlab::load(OIDC_YAML, "deploy", &Variables::new()).unwrap();
    let env = Env::from_pairs([
        (
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            "http://10.255.255.1/_apis/pipelines/token?api-version=2.0",
        ),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token"),
    ]);
    let started = Instant::now();
    let err = coffer_ci::id_tokens::provide(&job, &mut Variables::new(), &Default::default(), &env)
        .await
        .unwrap_err()
        .to_string();
    assert_refused_at_once(started, &err, "http://10.255.255.1");

    // Metadata overrides that are not the metadata addresses.
    let env = Env::from_pairs([("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://10.255.255.1")]);
    let started = Instant::now();
    let err = cloud_id::azure_ad(&env, "", "api://coffer")
        .await
        .unwrap_err()
        .to_string();
    assert_refused_at_once(started, &err, "http://10.255.255.1");
    let env = Env::from_pairs([("GCE_METADATA_HOST", "10.255.255.1:80")]);
    let started = Instant::now();
    let err = cloud_id::gcp(&env, "aud").await.unwrap_err().to_string();
    assert_refused_at_once(started, &err, "http://10.255.255.1");

    let home = tempfile::tempdir().unwrap();
    let client = http_client(DEFAULT_TIMEOUT).unwrap();
    for (var, url) in [
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://10.255.255.1"),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://10.255.255.1/creds",
        ),
    ] {
        let env = Env::from_pairs([
            (var, url.to_owned()),
            ("HOME", home.path().display().to_string()),
        ]);
        let started = Instant::now();
        let err = aws::host_credentials(&client, &env)
            .await
            .unwrap_err()
            .to_string();
        assert_refused_at_once(started, &err, "http://10.255.255.1");
    }
}

/// Any 127.x address is loopback: plain HTTP to 127.0.0.2 is not refused
/// (the request reaches the server, which here answers with a redirect).
#[tokio::test]
async fn plain_http_to_other_loopback_addresses_is_accepted() {
    let (collector, collector_log) = recorder("127.0.0.1:0").await;
    let (gateway, gateway_log) = redirector("127.0.0.2:0", format!("http://{collector}/x")).await;
    assert!(gateway.starts_with("127.0.0.2:"), "{gateway}");
    let job = akeyless_job(&format!("http://{gateway}"), "", API_KEY);
    let err = resolve_error(&job, &Env::from_pairs::<&str, &str>([])).await;
    assert!(!err.contains("refusing plain HTTP"), "{err}");
    assert!(err.contains("HTTP 307"), "{err}");
    assert_eq!(gateway_log.lock().unwrap().len(), 1);
    assert!(collector_log.lock().unwrap().is_empty());
}

/// Answers every request with `400` and its body (the whole request when
/// it has none) as the reply: a provider, or something posing as one,
/// echoing its input.
async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let request = read_request(&mut stream).await;
                let echo = match request.split_once("\r\n\r\n") {
                    Some((_, body)) if !body.is_empty() => body.to_owned(),
                    _ => request,
                };
                let reply = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{echo}",
                    echo.len()
                );
                stream.write_all(reply.as_bytes()).await.ok();
                stream.shutdown().await.ok();
            });
        }
    });
    format!("http://{addr}")
}

/// Error messages quote the provider's reply; a credential the request
/// carried is redacted from them.
#[tokio::test]
async fn credentials_echoed_in_error_replies_are_redacted() {
    let client = http_client(DEFAULT_TIMEOUT).unwrap();
    let url = echo_server().await;
    let identity = WebIdentity {
        endpoint: format!("{url}/"),
        region: "us-east-1".into(),
        role_arn: "arn:aws:iam::123456789012:role/ci".into(),
        session_name: "ci".into(),
        token: SecretString::from("eyJ.S3CR3T-web-identity.sig".to_owned()),
    };
    let err = aws::assume_role_with_web_identity(&client, &identity)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("HTTP 400") && err.contains("[MASKED]"),
        "{err}"
    );
    assert!(!err.contains("S3CR3T"), "{err}");

    let request = TokenRequest {
        authority_host: url.clone(),
        tenant_id: "tenant".into(),
        client_id: "client".into(),
        assertion: SecretString::from("eyJ.S3CR3T-assertion.sig".to_owned()),
    };
    let err = azure::get_token(&client, &request)
        .await
        .unwrap_err()
        .to_string();
    // The echoed form body is quoted up to 200 characters, a cut that
    // falls inside the assertion: not even its beginning may show.
    assert!(err.contains("client_assertion="), "{err}");
    assert!(!err.contains("eyJ.S3") && !err.contains("S3CR3T"), "{err}");

    let token = AccessToken::new(SecretString::from("S3CR3T-access-token".to_owned()), None);
    let secret = AzureSecret {
        name: "db".into(),
        version: String::new(),
    };
    let err = azure::get_secret(&client, &url, &secret, &token)
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.contains("S3CR3T"), "{err}");

    let job = akeyless_job(&url, "", API_KEY);
    let err = resolve_error(&job, &Env::from_pairs::<&str, &str>([])).await;
    assert!(err.contains("HTTP 400"), "{err}");
    assert!(!err.contains("S3CR3T"), "{err}");
}
