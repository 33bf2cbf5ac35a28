//! The AWS Secrets Manager provider against a real moto server (STS
//! `AssumeRoleWithWebIdentity` and Secrets Manager), plus small local stubs
//! for what moto cannot do: STS error replies (moto accepts any token), the
//! request shape of a signed call, EC2 instance metadata and container
//! credentials.
//!
//! moto is `.venv-test/bin/moto_server` (tests/requirements.txt; override
//! with `COFFER_MOTO_SERVER`). Without it the moto tests print why and pass,
//! unless `COFFER_REQUIRE_MOTO` is set (CI), where they fail.
// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post, put};
use base64::Engine as _;
use coffer_ci::providers::aws::{
    self, Auth, AwsSecret, Credentials, Endpoints, JobSettings, SecretsManager,
};
use coffer_ci::providers::{DEFAULT_TIMEOUT, Env, ProviderError, http_client};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

const ACCOUNT: &str = "123456789012"; // moto's default account
const ROLE: &str = "arn:aws:iam::123456789012:role/gitlab-ci";
const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwcm9qZWN0X3BhdGg6Zy9wIn0.c2ln";

// ------------------------------------------------------------------ moto

struct Moto {
    url: String,
    /// The `sh` wrapper; moto dies when its stdin (held here) closes, that
    /// is when this test process exits.
    _wrapper: Mutex<Child>,
}

static MOTO: OnceLock<Option<Moto>> = OnceLock::new();

fn moto_binary() -> PathBuf {
    std::env::var_os("COFFER_MOTO_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv-test/bin/moto_server")
        })
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_moto() -> Option<Moto> {
    let bin = moto_binary();
    if !bin.exists() {
        let reason = format!(
            "moto not found at {} (install tests/requirements.txt into .venv-test)",
            bin.display()
        );
        if std::env::var_os("COFFER_REQUIRE_MOTO").is_some() {
            panic!("COFFER_REQUIRE_MOTO is set but {reason}");
        }
        eprintln!("SKIPPED: {reason}");
        return None;
    }
    let port = free_port();
    let log = std::env::temp_dir().join(format!("coffer-ci-moto-{port}.log"));
    // moto runs under a shell that kills it when our end of its stdin
    // closes, so no moto outlives the test process, whatever ends it.
    let mut wrapper = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" -H 127.0.0.1 -p "$1" >"$2" 2>&1 & pid=$!; echo "$pid"; cat >/dev/null; kill "$pid"; rm -f "$2""#)
        .arg(&bin)
        .arg(port.to_string())
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting moto_server");
    let mut pid = String::new();
    BufReader::new(wrapper.stdout.take().unwrap())
        .read_line(&mut pid)
        .unwrap();
    if let Some(pidfile) = std::env::var_os("COFFER_TEST_PIDFILE") {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(pidfile)
            .unwrap();
        writeln!(f, "{}", pid.trim()).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto_server did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Moto {
        url: format!("http://127.0.0.1:{port}"),
        _wrapper: Mutex::new(wrapper),
    })
}

/// The shared moto server, or `None` (test skipped, reason printed).
fn moto() -> Option<&'static Moto> {
    MOTO.get_or_init(start_moto).as_ref()
}

macro_rules! moto_or_skip {
    () => {
        match moto() {
            Some(m) => m,
            None => return,
        }
    };
}

fn endpoints(url: &str) -> Endpoints {
    Endpoints {
        sts: Some(url.to_string()),
        secrets_manager: Some(url.to_string()),
        allow_insecure_http: false,
    }
}

fn client() -> reqwest::Client {
    http_client(DEFAULT_TIMEOUT).unwrap()
}

fn admin() -> Credentials {
    Credentials::new(
        "AKIDCOFFERADMIN",
        SecretString::from("admin-secret"),
        None,
        None,
        "test admin",
    )
}

/// A Secrets Manager admin call to moto, signed by the provider's own code.
async fn admin_call(moto: &Moto, region: &str, operation: &str, body: Value) -> Value {
    let creds = admin();
    let client = client();
    let url = format!("{}/", moto.url);
    let reply = SecretsManager::new(&client, &url, region, &creds)
        .call(operation, &body, "admin")
        .await
        .unwrap_or_else(|e| panic!("{operation}: {e}"));
    serde_json::from_slice(&reply).unwrap()
}

async fn create_secret(moto: &Moto, region: &str, name: &str, value: &str) -> Value {
    admin_call(
        moto,
        region,
        "CreateSecret",
        json!({"Name": name, "SecretString": value}),
    )
    .await
}

fn job() -> JobSettings {
    JobSettings {
        region: "us-east-1".into(),
        role_arn: ROLE.into(),
        role_session_name: "42-7-gitlab.example.com".into(),
    }
}

fn oidc_secret(id: &str) -> AwsSecret {
    AwsSecret {
        secret_id: id.into(),
        token: SecretString::from(JWT),
        ..AwsSecret::default()
    }
}

async fn resolve(moto: &Moto, secret: &AwsSecret) -> Result<String, ProviderError> {
    aws::resolve(
        &client(),
        secret,
        &job(),
        &endpoints(&moto.url),
        &Env::from_pairs::<&str, &str>([]),
    )
    .await
    .map(|v| v.expose_secret().to_string())
}

// ------------------------------------------------------------ moto tests

#[tokio::test]
async fn web_identity_login_once_then_many_secrets_concurrently() {
    let moto = moto_or_skip!();
    for i in 0..20 {
        create_secret(
            moto,
            "us-east-1",
            &format!("oidc/app-{i}"),
            &format!(r#"{{"password":"pw-{i}"}}"#),
        )
        .await;
    }
    let client = client();
    let endpoints = endpoints(&moto.url);
    let first = aws::plan(&oidc_secret("oidc/app-0"), &job(), &endpoints).unwrap();
    let Auth::WebIdentity(login) = &first.auth else {
        panic!("expected AssumeRoleWithWebIdentity, got {:?}", first.auth)
    };
    assert_eq!(login.role_arn, ROLE);
    assert_eq!(login.session_name, "42-7-gitlab.example.com");
    let creds = aws::assume_role_with_web_identity(&client, login)
        .await
        .unwrap();
    assert!(creds.access_key_id().starts_with("ASIA"), "{creds:?}");
    assert!(creds.expiration().is_some());
    assert!(!creds.expires_within(Duration::from_secs(60)));
    assert!(creds.source().contains(ROLE));

    // Every secret plans to the same login: one exchange serves them all.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        let mut secret = oidc_secret(&format!("oidc/app-{i}"));
        secret.field = "password".into();
        let plan = aws::plan(&secret, &job(), &endpoints).unwrap();
        let Auth::WebIdentity(w) = &plan.auth else {
            panic!("expected web identity")
        };
        assert_eq!(w.cache_key(), login.cache_key());
        let (client, creds) = (client.clone(), creds.clone());
        tasks.spawn(async move {
            let value = aws::get_secret_value(&client, &plan, &creds).await.unwrap();
            (i, value.expose_secret().to_string())
        });
    }
    let mut seen = 0;
    while let Some(done) = tasks.join_next().await {
        let (i, value) = done.unwrap();
        assert_eq!(value, format!("pw-{i}"));
        seen += 1;
    }
    assert_eq!(seen, 20);

    // The whole secret without `field`.
    let whole = resolve(moto, &oidc_secret("oidc/app-3")).await.unwrap();
    assert_eq!(whole, r#"{"password":"pw-3"}"#);
}

#[tokio::test]
async fn field_extraction_rules() {
    let moto = moto_or_skip!();
    create_secret(
        moto,
        "us-east-1",
        "fields/app",
        r#"{"s":"text value","n":1000000,"f":1.5,"big":1234567,"b":true,"nested":{"a":1},"list":[1],"nothing":null}"#,
    )
    .await;
    create_secret(moto, "us-east-1", "fields/plain", "not json at all").await;
    let field = |name: &str, id: &str| {
        let mut s = oidc_secret(id);
        s.field = name.into();
        s
    };
    let ok = |r: Result<String, ProviderError>| r.unwrap();
    assert_eq!(
        ok(resolve(moto, &field("s", "fields/app")).await),
        "text value"
    );
    // JSON number text, not Go's %g (which would print 1e+06 / 1.234567e+06).
    assert_eq!(
        ok(resolve(moto, &field("n", "fields/app")).await),
        "1000000"
    );
    assert_eq!(
        ok(resolve(moto, &field("big", "fields/app")).await),
        "1234567"
    );
    assert_eq!(ok(resolve(moto, &field("f", "fields/app")).await), "1.5");
    assert_eq!(ok(resolve(moto, &field("b", "fields/app")).await), "true");
    for key in ["nested", "list", "nothing"] {
        let e = resolve(moto, &field(key, "fields/app")).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "key '{key}' in aws secrets manager response for secret 'fields/app' is not a string, number or boolean"
            )
        );
    }
    let e = resolve(moto, &field("absent", "fields/app"))
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "key 'absent' not found in AWS Secrets Manager response for secret 'fields/app'"
    );
    let e = resolve(moto, &field("s", "fields/plain"))
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.starts_with("failed to parse JSON for secret 'fields/plain': "),
        "{text}"
    );
    assert!(
        !text.contains("not json at all"),
        "the value leaked: {text}"
    );
}

#[tokio::test]
async fn version_stage_and_version_id() {
    let moto = moto_or_skip!();
    let created = create_secret(moto, "us-east-1", "versions/db", "first").await;
    let v1 = created["VersionId"].as_str().unwrap().to_string();
    let put = admin_call(
        moto,
        "us-east-1",
        "PutSecretValue",
        json!({"SecretId": "versions/db", "SecretString": "second"}),
    )
    .await;
    let v2 = put["VersionId"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);

    let with = |stage: &str, id: &str| {
        let mut s = oidc_secret("versions/db");
        s.version_stage = stage.into();
        s.version_id = id.into();
        s
    };
    assert_eq!(resolve(moto, &with("", "")).await.unwrap(), "second");
    assert_eq!(
        resolve(moto, &with("AWSCURRENT", "")).await.unwrap(),
        "second"
    );
    assert_eq!(
        resolve(moto, &with("AWSPREVIOUS", "")).await.unwrap(),
        "first"
    );
    assert_eq!(resolve(moto, &with("", &v1)).await.unwrap(), "first");
    assert_eq!(resolve(moto, &with("", &v2)).await.unwrap(), "second");
    let e = resolve(moto, &with("NOSUCHSTAGE", "")).await.unwrap_err();
    assert!(
        matches!(&e, ProviderError::Api { code, .. } if code == "ResourceNotFoundException"),
        "{e:?}"
    );
}

#[tokio::test]
async fn version_id_with_version_stage_fails_before_any_request() {
    // Endpoints on a closed port: any request would be a transport error.
    let closed = format!("http://127.0.0.1:{}", free_port());
    let mut secret = oidc_secret("versions/db");
    secret.version_id = "01234567-89ab-cdef-0123-456789abcdef".into();
    secret.version_stage = "AWSCURRENT".into();
    let e = aws::resolve(
        &client(),
        &secret,
        &job(),
        &endpoints(&closed),
        &Env::from_pairs::<&str, &str>([]),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ProviderError::Config(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "secret 'versions/db': version_id and version_stage are mutually exclusive; set only one"
    );
}

#[tokio::test]
async fn secret_binary_is_standard_padded_base64() {
    let moto = moto_or_skip!();
    let bytes: Vec<u8> = vec![0x00, 0xff, 0xfe, 0x10, 0x80]; // 5 bytes → one '='
    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
    assert!(encoded.ends_with('='));
    admin_call(
        moto,
        "us-east-1",
        "CreateSecret",
        json!({"Name": "binary/key", "SecretBinary": encoded}),
    )
    .await;
    assert_eq!(
        resolve(moto, &oidc_secret("binary/key")).await.unwrap(),
        encoded
    );
}

#[tokio::test]
async fn missing_secret_is_a_readable_error() {
    let moto = moto_or_skip!();
    let e = resolve(moto, &oidc_secret("does/not/exist"))
        .await
        .unwrap_err();
    let ProviderError::Api {
        status,
        code,
        message,
    } = &e
    else {
        panic!("expected an API error, got {e:?}")
    };
    assert_eq!(code, "ResourceNotFoundException");
    assert!((400..500).contains(status));
    assert!(message.contains("secret 'does/not/exist'"), "{message}");
    assert!(message.contains("ResourceNotFoundException: "), "{message}");
    assert!(
        message.contains("can't find the specified secret"),
        "{message}"
    );
    assert!(!message.contains(JWT));
    assert!(e.is_config_error());
}

#[tokio::test]
async fn arn_secret_id_is_fetched_from_the_arn_region() {
    let moto = moto_or_skip!();
    let created = create_secret(
        moto,
        "eu-west-1",
        "shared-api-keys",
        r#"{"production_key":"pk-1"}"#,
    )
    .await;
    let arn = created["ARN"].as_str().unwrap().to_string();
    assert!(
        arn.starts_with(&format!(
            "arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:shared-api-keys-"
        )),
        "{arn}"
    );
    // The job's region is us-east-1; the ARN's region wins for the fetch.
    let mut secret = oidc_secret(&arn);
    secret.field = "production_key".into();
    let plan = aws::plan(&secret, &job(), &endpoints(&moto.url)).unwrap();
    assert_eq!(plan.region, "eu-west-1");
    let Auth::WebIdentity(w) = &plan.auth else {
        panic!("expected web identity")
    };
    assert_eq!(w.region, "us-east-1", "STS stays in the job's region");
    assert_eq!(resolve(moto, &secret).await.unwrap(), "pk-1");
    // The same name in us-east-1 does not exist: the region really matters.
    let e = resolve(moto, &oidc_secret("shared-api-keys"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Api { code, .. } if code == "ResourceNotFoundException"),
        "{e:?}"
    );
    // A per-secret region that contradicts the ARN is refused up front.
    secret.region = "us-east-1".into();
    let e = resolve(moto, &secret).await.unwrap_err();
    assert!(matches!(e, ProviderError::Config(_)), "{e:?}");
    assert!(e.to_string().contains("is in region eu-west-1"), "{e}");
}

#[tokio::test]
async fn host_credentials_from_environment_variables() {
    let moto = moto_or_skip!();
    create_secret(moto, "us-east-1", "host/env", "from-host").await;
    let env = Env::from_pairs([
        ("AWS_ACCESS_KEY_ID", "AKIDHOSTENV"),
        ("AWS_SECRET_ACCESS_KEY", "host-secret"),
        ("AWS_SESSION_TOKEN", "host-session"),
    ]);
    let client = client();
    let creds = aws::host_credentials(&client, &env).await.unwrap();
    assert_eq!(creds.access_key_id(), "AKIDHOSTENV");
    assert_eq!(creds.source(), "environment variables");

    let secret = AwsSecret {
        secret_id: "host/env".into(),
        ..AwsSecret::default()
    };
    let job = JobSettings {
        region: "us-east-1".into(),
        ..JobSettings::default()
    };
    let plan = aws::plan(&secret, &job, &endpoints(&moto.url)).unwrap();
    assert!(matches!(plan.auth, Auth::Host));
    let value = aws::resolve(&client, &secret, &job, &endpoints(&moto.url), &env)
        .await
        .unwrap();
    assert_eq!(value.expose_secret(), "from-host");
}

#[tokio::test]
async fn host_credentials_from_the_shared_credentials_file() {
    let moto = moto_or_skip!();
    create_secret(moto, "us-east-1", "host/file", "from-file").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials");
    std::fs::write(
        &path,
        "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = d\n\n\
         [ci]\naws_access_key_id = AKIDCIPROFILE\naws_secret_access_key = c\n",
    )
    .unwrap();
    let env = Env::from_pairs([
        ("AWS_SHARED_CREDENTIALS_FILE", path.to_str().unwrap()),
        ("AWS_CONFIG_FILE", dir.path().join("none").to_str().unwrap()),
        ("AWS_PROFILE", "ci"),
    ]);
    let client = client();
    let creds = aws::host_credentials(&client, &env).await.unwrap();
    assert_eq!(creds.access_key_id(), "AKIDCIPROFILE");
    assert!(creds.source().contains("profile ci"), "{}", creds.source());
    let secret = AwsSecret {
        secret_id: "host/file".into(),
        region: "us-east-1".into(),
        ..AwsSecret::default()
    };
    let value = aws::resolve(
        &client,
        &secret,
        &JobSettings::default(),
        &endpoints(&moto.url),
        &env,
    )
    .await
    .unwrap();
    assert_eq!(value.expose_secret(), "from-file");
}

#[tokio::test]
async fn host_credentials_config_file_and_home() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".aws")).unwrap();
    std::fs::write(
        dir.path().join(".aws/config"),
        "[profile dev]\nregion = eu-west-1\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = x\n",
    )
    .unwrap();
    let home = dir.path().to_str().unwrap();
    let client = client();
    let env = Env::from_pairs([("HOME", home), ("AWS_PROFILE", "dev")]);
    let creds = aws::host_credentials(&client, &env).await.unwrap();
    assert_eq!(creds.access_key_id(), "AKIDCONFIG");

    // An explicit profile that exists nowhere is an error, not a fallback.
    let env = Env::from_pairs([("HOME", home), ("AWS_PROFILE", "nope")]);
    let e = aws::host_credentials(&client, &env).await.unwrap_err();
    assert!(matches!(e, ProviderError::Credentials(_)), "{e:?}");
    assert!(
        e.to_string().contains("AWS_PROFILE is set to 'nope'"),
        "{e}"
    );
}

#[tokio::test]
async fn no_host_credentials_lists_what_was_tried() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env::from_pairs([
        ("HOME", dir.path().to_str().unwrap()),
        ("AWS_ACCESS_KEY_ID", "AKIDONLY"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let e = aws::host_credentials(&client(), &env).await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ProviderError::Credentials(_)), "{e:?}");
    for part in [
        "no AWS credentials found on this host",
        "AWS_SECRET_ACCESS_KEY is not",
        ".aws/credentials (not found)",
        ".aws/config (not found)",
        "container credentials",
        "AWS_EC2_METADATA_DISABLED=true",
        "AWS_ROLE_ARN",
    ] {
        assert!(text.contains(part), "missing {part:?} in: {text}");
    }
}

#[tokio::test]
async fn role_arn_is_required_with_a_jwt() {
    let closed = format!("http://127.0.0.1:{}", free_port());
    let job = JobSettings {
        region: "us-east-1".into(),
        ..JobSettings::default()
    };
    let e = aws::resolve(
        &client(),
        &oidc_secret("app/db"),
        &job,
        &endpoints(&closed),
        &Env::from_pairs::<&str, &str>([]),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, ProviderError::Config(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "Role ARN is required when using JWT for AWS authentication"
    );
}

// ------------------------------------------------------- local stubs

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

/// STS stub: checks the form exactly and answers with AWS's error document
/// for a token it does not accept.
async fn sts_stub(
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> (StatusCode, String) {
    let expect = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", ROLE),
        ("RoleSessionName", "42-7-gitlab.example.com"),
    ];
    for (key, value) in expect {
        if form.get(key).map(String::as_str) != Some(value) {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameterValue</Code><Message>bad {key}</Message></Error></ErrorResponse>"
                ),
            );
        }
    }
    match form.get("WebIdentityToken").map(String::as_str) {
        Some("garbage-reply") => (StatusCode::OK, "<html>not sts</html>".to_string()),
        Some(JWT) => (
            StatusCode::FORBIDDEN,
            r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>AccessDenied</Code>
    <Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message>
  </Error>
  <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
</ErrorResponse>"#
                .to_string(),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>InvalidIdentityToken</Code>
    <Message>Couldn&apos;t retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements</Message>
  </Error>
  <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
</ErrorResponse>"#
                .to_string(),
        ),
    }
}

#[tokio::test]
async fn sts_error_replies_become_readable_errors() {
    let url = serve(Router::new().route("/", post(sts_stub))).await;
    let client = client();
    let mut secret = oidc_secret("app/db");
    secret.token = SecretString::from("not-a-valid-token-value");
    let plan = aws::plan(&secret, &job(), &endpoints(&url)).unwrap();
    let Auth::WebIdentity(login) = &plan.auth else {
        panic!("expected web identity")
    };
    let e = aws::assume_role_with_web_identity(&client, login)
        .await
        .unwrap_err();
    let ProviderError::Api {
        status,
        code,
        message,
    } = &e
    else {
        panic!("expected an API error, got {e:?}")
    };
    assert_eq!((*status, code.as_str()), (400, "InvalidIdentityToken"));
    assert!(message.starts_with(&format!(
        "AWS STS AssumeRoleWithWebIdentity for role {ROLE} failed (HTTP 400): InvalidIdentityToken: Couldn't retrieve verification key"
    )), "{message}");
    assert!(message.contains("check the ID token"), "{message}");
    assert!(!message.contains("not-a-valid-token-value"));

    let plan = aws::plan(&oidc_secret("app/db"), &job(), &endpoints(&url)).unwrap();
    let Auth::WebIdentity(login) = &plan.auth else {
        panic!("expected web identity")
    };
    let e = aws::assume_role_with_web_identity(&client, login)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ProviderError::Api { status: 403, code, .. } if code == "AccessDenied"),
        "{e:?}"
    );
    assert!(e.to_string().contains("trust policy"), "{e}");

    let mut garbage = oidc_secret("app/db");
    garbage.token = SecretString::from("garbage-reply");
    let plan = aws::plan(&garbage, &job(), &endpoints(&url)).unwrap();
    let Auth::WebIdentity(login) = &plan.auth else {
        panic!("expected web identity")
    };
    let e = aws::assume_role_with_web_identity(&client, login)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Transport(_)), "{e:?}");
    assert!(e.to_string().contains("unexpected reply"), "{e}");
}

#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<(HeaderMap, String)>>>);

#[tokio::test]
async fn get_secret_value_request_is_signed_json() {
    let recorded = Recorded::default();
    let url = serve(
        Router::new()
            .route(
                "/",
                post(
                    |State(r): State<Recorded>, headers: HeaderMap, body: String| async move {
                        r.0.lock().unwrap().push((headers, body));
                        (
                            [("content-type", "application/x-amz-json-1.1")],
                            r#"{"ARN":"arn","Name":"app/db","SecretString":"v","VersionId":"1"}"#,
                        )
                    },
                ),
            )
            .with_state(recorded.clone()),
    )
    .await;
    let creds = Credentials::new(
        "ASIATEST",
        SecretString::from("s"),
        Some(SecretString::from("session-token-x")),
        None,
        "test",
    );
    let mut secret = oidc_secret("app/db");
    secret.version_stage = "AWSPREVIOUS".into();
    secret.region = "eu-north-1".into();
    let plan = aws::plan(&secret, &job(), &endpoints(&url)).unwrap();
    let value = aws::get_secret_value(&client(), &plan, &creds)
        .await
        .unwrap();
    assert_eq!(value.expose_secret(), "v");

    let calls = recorded.0.lock().unwrap();
    let (headers, body) = &calls[0];
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_string();
    assert_eq!(header("x-amz-target"), "secretsmanager.GetSecretValue");
    assert_eq!(header("content-type"), "application/x-amz-json-1.1");
    assert_eq!(header("x-amz-security-token"), "session-token-x");
    let authorization = header("authorization");
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=ASIATEST/"),
        "{authorization}"
    );
    assert!(
        authorization.contains("/eu-north-1/secretsmanager/aws4_request"),
        "{authorization}"
    );
    for signed in [
        "content-type",
        "host",
        "x-amz-date",
        "x-amz-security-token",
        "x-amz-target",
    ] {
        assert!(
            authorization.contains(signed),
            "{signed} not signed: {authorization}"
        );
    }
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        body,
        json!({"SecretId": "app/db", "VersionStage": "AWSPREVIOUS"})
    );
}

#[tokio::test]
async fn secret_with_no_value() {
    let url = serve(Router::new().route(
        "/",
        post(|| async { r#"{"ARN":"arn","Name":"empty","VersionId":"1"}"# }),
    ))
    .await;
    let plan = aws::plan(&oidc_secret("empty"), &job(), &endpoints(&url)).unwrap();
    let e = aws::get_secret_value(&client(), &plan, &admin())
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "secret contains no value");
}

const IMDS_TOKEN: &str = "imds-session-token";

fn metadata_document() -> Value {
    json!({
        "Code": "Success",
        "LastUpdated": "2026-11-22T07:00:00Z",
        "Type": "AWS-HMAC",
        "AccessKeyId": "ASIAIMDS",
        "SecretAccessKey": "imds-secret",
        "Token": "imds-session",
        "Expiration": "2099-01-01T00:00:00Z"
    })
}

#[tokio::test]
async fn ec2_instance_metadata_v2() {
    let hits = Arc::new(AtomicUsize::new(0));
    let token_ok = |headers: &HeaderMap| {
        headers
            .get("x-aws-ec2-metadata-token")
            .and_then(|v| v.to_str().ok())
            == Some(IMDS_TOKEN)
    };
    let router = Router::new()
        .route(
            "/latest/api/token",
            put(|headers: HeaderMap| async move {
                match headers.get("x-aws-ec2-metadata-token-ttl-seconds") {
                    Some(_) => (StatusCode::OK, IMDS_TOKEN.to_string()),
                    None => (StatusCode::BAD_REQUEST, String::new()),
                }
            }),
        )
        .route(
            "/latest/meta-data/iam/security-credentials/",
            get(move |headers: HeaderMap| async move {
                if token_ok(&headers) {
                    (StatusCode::OK, "runner-manager-role\n".to_string())
                } else {
                    (StatusCode::UNAUTHORIZED, String::new())
                }
            }),
        )
        .route(
            "/latest/meta-data/iam/security-credentials/runner-manager-role",
            get({
                let hits = hits.clone();
                move |headers: HeaderMap| async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    if token_ok(&headers) {
                        (StatusCode::OK, metadata_document().to_string())
                    } else {
                        (StatusCode::UNAUTHORIZED, String::new())
                    }
                }
            }),
        );
    let url = serve(router).await;
    let env = Env::from_pairs([
        ("HOME", "/nonexistent"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", url.as_str()),
    ]);
    let creds = aws::host_credentials(&client(), &env).await.unwrap();
    assert_eq!(creds.access_key_id(), "ASIAIMDS");
    assert!(creds.source().contains("runner-manager-role"));
    assert!(creds.expiration().is_some());
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // No role attached: the documented "no EC2 IMDS role found".
    let bare = serve(Router::new().route("/latest/api/token", put(|| async { IMDS_TOKEN }))).await;
    let env = Env::from_pairs([
        ("HOME", "/nonexistent"),
        ("AWS_EC2_METADATA_SERVICE_ENDPOINT", bare.as_str()),
    ]);
    let e = aws::host_credentials(&client(), &env).await.unwrap_err();
    assert!(e.to_string().contains("no EC2 IMDS role found"), "{e}");
}

#[tokio::test]
async fn container_credentials() {
    let router = Router::new().route(
        "/v1/credentials",
        get(|headers: HeaderMap| async move {
            if headers.get("authorization").and_then(|v| v.to_str().ok())
                == Some("pod-identity-token")
            {
                (StatusCode::OK, metadata_document().to_string())
            } else {
                (StatusCode::FORBIDDEN, String::new())
            }
        }),
    );
    let url = serve(router).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "pod-identity-token\n").unwrap();
    let full_uri = format!("{url}/v1/credentials");
    let env = Env::from_pairs([
        ("HOME", "/nonexistent"),
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", full_uri.as_str()),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            token_file.to_str().unwrap(),
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]);
    let creds = aws::host_credentials(&client(), &env).await.unwrap();
    assert_eq!(creds.access_key_id(), "ASIAIMDS");
    assert!(creds.source().starts_with("container credentials"));

    // Plain HTTP to anything but loopback or the ECS/EKS agents is refused.
    let env = Env::from_pairs([
        ("HOME", "/nonexistent"),
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://example.com/creds",
        ),
    ]);
    let e = aws::host_credentials(&client(), &env).await.unwrap_err();
    assert!(e.to_string().contains("must be https"), "{e}");
}
