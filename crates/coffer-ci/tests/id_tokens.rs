//! ID tokens outside GitLab: given on the command line, already set, or
//! requested from GitHub Actions' OIDC endpoint (a local server speaking
//! its protocol: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<aud>` with
//! `Authorization: Bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN` →
//! `{"count":…,"value":"<JWT>"}`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use coffer_ci::gitlab::{self, Variables};
use coffer_ci::id_tokens::{parse_given, provide};
use coffer_ci::providers::Env;
use secrecy::ExposeSecret;

const YAML: &str = r#"
deploy:
  id_tokens:
    AWS_ID_TOKEN:
      aud: sts.amazonaws.com
    AKEYLESS_JWT:
      aud: [https://coffer.example, second]
    UNUSED:
      aud: nobody
  secrets:
    A:
      aws_secrets_manager: app/db#password
    B:
      token: $AKEYLESS_JWT
      akeyless:
        name: /app/b
"#;

async fn github_stub() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/_apis/pipelines/token",
        axum::routing::get(
            move |headers: HeaderMap, Query(q): Query<BTreeMap<String, String>>| {
                let log = log.clone();
                async move {
                    if headers.get("authorization").and_then(|v| v.to_str().ok())
                        != Some("Bearer request-token")
                    {
                        return (
                            StatusCode::UNAUTHORIZED,
                            axum::Json(serde_json::json!({"message": "bad"})),
                        );
                    }
                    let aud = q.get("audience").cloned().unwrap_or_default();
                    assert_eq!(q.get("api-version").map(String::as_str), Some("2.0"));
                    log.lock().unwrap().push(aud.clone());
                    (
                        StatusCode::OK,
                        axum::Json(
                            serde_json::json!({"count": 1, "value": format!("jwt-for-{aud}")}),
                        ),
                    )
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    (
        format!("http://127.0.0.1:{port}/_apis/pipelines/token?api-version=2.0"),
        seen,
    )
}

#[tokio::test]
async fn github_actions_oidc_and_precedence() {
    let job = gitlab::load(YAML, "deploy", &Variables::new()).unwrap();
    let (url, seen) = github_stub().await;
    let env = Env::from_pairs([
        ("ACTIONS_ID_TOKEN_REQUEST_URL", url.as_str()),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-token"),
    ]);
    // Nothing given: both used tokens come from GitHub, with their aud;
    // the unused one is not requested.
    let mut vars = Variables::new();
    provide(&job, &mut vars, &BTreeMap::new(), &env)
        .await
        .unwrap();
    assert_eq!(vars.get("AWS_ID_TOKEN"), Some("jwt-for-sts.amazonaws.com"));
    assert_eq!(
        vars.get("AKEYLESS_JWT"),
        Some("jwt-for-https://coffer.example")
    );
    assert_eq!(vars.get("UNUSED"), None);
    let mut asked = seen.lock().unwrap().clone();
    asked.sort();
    assert_eq!(asked, ["https://coffer.example", "sts.amazonaws.com"]);

    // --id-token wins over a set variable, which wins over GitHub.
    let given = parse_given(&["AKEYLESS_JWT=from-cli".into()]).unwrap();
    let mut vars = Variables::new();
    vars.insert("AWS_ID_TOKEN", "from-gitlab");
    provide(&job, &mut vars, &given, &env).await.unwrap();
    assert_eq!(vars.get("AKEYLESS_JWT"), Some("from-cli"));
    assert_eq!(vars.get("AWS_ID_TOKEN"), Some("from-gitlab"));
    assert_eq!(seen.lock().unwrap().len(), 2, "no new request");
    assert_eq!(given["AKEYLESS_JWT"].expose_secret(), "from-cli");

    // A refused request names the token.
    let bad = Env::from_pairs([
        ("ACTIONS_ID_TOKEN_REQUEST_URL", url.as_str()),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "wrong"),
    ]);
    let e = provide(&job, &mut Variables::new(), &BTreeMap::new(), &bad)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("ID token") && e.contains("HTTP 401"), "{e}");

    // Outside any CI: a clear error naming the token and how to pass it.
    let e = provide(
        &job,
        &mut Variables::new(),
        &BTreeMap::new(),
        &Env::from_pairs::<&str, &str>([]),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("--id-token") && e.contains("is not available"),
        "{e}"
    );
}
