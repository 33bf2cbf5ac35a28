//! Shared by the in-process integration tests: a dev-mode server behind
//! the real router, an admin token, JWT signing keys and a local JWKS
//! server on 127.0.0.1.
// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used)]
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_server::state::AppState;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tower::ServiceExt;

pub(crate) struct Harness {
    _dir: tempfile::TempDir,
    /// The server's data directory (its SQLite database is `coffer.db`).
    pub dir: PathBuf,
    pub state: Arc<AppState>,
    pub app: Router,
    pub admin: String,
}

impl Harness {
    pub(crate) async fn new() -> Harness {
        Self::with_args(|_| {}).await
    }

    /// A harness whose server settings `adjust` changes first.
    pub(crate) async fn with_args(adjust: impl FnOnce(&mut coffer_server::ServerArgs)) -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut args = coffer_server::ServerArgs {
            dev: true,
            data_dir: Some(dir.clone()),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        };
        adjust(&mut args);
        let mut config = coffer_server::Config::resolve(&args).unwrap();
        config.jwks_refetch_secs = 30;
        let (state, admin) = coffer_server::build(&config).await.unwrap();
        let peer: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let app = coffer_server::http::router(state.clone()).layer(MockConnectInfo(peer));
        let admin = admin.expect("first start creates the admin");
        let mut h = Harness {
            _dir: tmp,
            dir,
            state,
            app,
            admin: String::new(),
        };
        let v = h
            .ok(
                "auth",
                json!({"access-id": admin.access_id, "access-key": secrecy::ExposeSecret::expose_secret(&admin.access_key)}),
            )
            .await;
        h.admin = v["token"].as_str().unwrap().to_owned();
        h
    }

    pub(crate) async fn call(&self, op: &str, body: Value) -> (StatusCode, Value) {
        send(self.app.clone(), op, body).await
    }

    /// `call` from another client address (bound IPs, back-off).
    pub(crate) async fn call_from(&self, peer: &str, op: &str, body: Value) -> (StatusCode, Value) {
        let peer: SocketAddr = peer.parse().unwrap();
        let app = coffer_server::http::router(self.state.clone()).layer(MockConnectInfo(peer));
        send(app, op, body).await
    }

    /// Log in with an API key; returns the token.
    pub(crate) async fn login_key(&self, access_id: &str, access_key: &str) -> String {
        let v = self
            .ok(
                "auth",
                json!({"access-id": access_id, "access-key": access_key}),
            )
            .await;
        v["token"].as_str().unwrap().to_owned()
    }

    /// An API-key auth method `am` holding role `role` with `rules`
    /// (`(rule type, path, capabilities)`) and `audit_access`; returns
    /// (access ID, token).
    pub(crate) async fn identity(
        &self,
        am: &str,
        role: &str,
        audit_access: &str,
        rules: &[(&str, &str, &[&str])],
    ) -> (String, String) {
        let created = self
            .admin_ok("create-auth-method", json!({"name": am}))
            .await;
        self.admin_ok(
            "create-role",
            json!({"name": role, "audit-access": audit_access}),
        )
        .await;
        for (rule_type, path, caps) in rules {
            self.admin_ok(
                "set-role-rule",
                json!({"role-name": role, "path": path, "capability": caps, "rule-type": rule_type}),
            )
            .await;
        }
        self.admin_ok("assoc-role-am", json!({"role-name": role, "am-name": am}))
            .await;
        let id = created["access_id"].as_str().unwrap().to_owned();
        let token = self
            .login_key(&id, created["access_key"].as_str().unwrap())
            .await;
        (id, token)
    }

    pub(crate) async fn ok(&self, op: &str, body: Value) -> Value {
        let (s, v) = self.call(op, body.clone()).await;
        assert_eq!(s, StatusCode::OK, "{op} {body} -> {v}");
        v
    }

    /// Expect `status`; returns the error message.
    pub(crate) async fn fails(&self, op: &str, body: Value, status: StatusCode) -> String {
        let (s, v) = self.call(op, body.clone()).await;
        assert_eq!(s, status, "{op} {body} -> {v}");
        v["error"].as_str().unwrap_or_default().to_owned()
    }

    /// Expect `status` and an error message that mentions `needle`.
    pub(crate) async fn fails_with(&self, op: &str, body: Value, status: StatusCode, needle: &str) {
        let msg = self.fails(op, body, status).await;
        assert!(msg.contains(needle), "{op}: {msg}");
    }

    pub(crate) async fn admin_ok(&self, op: &str, mut body: Value) -> Value {
        body["token"] = json!(self.admin);
        self.ok(op, body).await
    }

    pub(crate) async fn jwt_auth(&self, access_id: &str, jwt: &str) -> (StatusCode, Value) {
        self.call(
            "auth",
            json!({"access-id": access_id, "access-type": "jwt", "jwt": jwt}),
        )
        .await
    }

    pub(crate) async fn audit(&self) -> Vec<Value> {
        self.audit_where(json!({"limit": 10000})).await
    }

    /// The audit records `audit-list` returns for `filter`.
    pub(crate) async fn audit_where(&self, filter: Value) -> Vec<Value> {
        let v = self.admin_ok("audit-list", filter).await;
        v["records"].as_array().unwrap().clone()
    }
}

/// POST `body` to `/<op>` through `app`; (status, JSON body or null).
pub(crate) async fn send(app: Router, op: &str, body: Value) -> (StatusCode, Value) {
    let req = Request::post(format!("/{op}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub(crate) struct Keys {
    pub rsa: EncodingKey,
    pub rsa_pem_public: Vec<u8>,
    pub ec: EncodingKey,
    pub jwks: Value,
}

pub(crate) fn keys() -> Keys {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
    use aws_lc_rs::signature::KeyPair as _;
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der: Pkcs8V1Der = kp.as_der().unwrap();
    let rsa = coffer_server::dev_oidc::rsa_encoding_key(der.as_ref()).unwrap();
    let public: PublicKeyX509Der = kp.public_key().as_der().unwrap();
    let rsa_pem_public = format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        STANDARD.encode(public.as_ref())
    )
    .into_bytes();
    let doc = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &aws_lc_rs::rand::SystemRandom::new(),
    )
    .unwrap();
    let ec = EncodingKey::from_ec_der(doc.as_ref());
    let mut rj =
        serde_json::to_value(Jwk::from_encoding_key(&rsa, Algorithm::RS256).unwrap()).unwrap();
    rj["kid"] = json!("rsa1");
    let mut ej =
        serde_json::to_value(Jwk::from_encoding_key(&ec, Algorithm::ES256).unwrap()).unwrap();
    ej["kid"] = json!("ec1");
    Keys {
        rsa,
        rsa_pem_public,
        ec,
        jwks: json!({"keys": [rj, ej]}),
    }
}

/// Serve `jwks` at http://127.0.0.1:<port>/jwks, counting fetches.
pub(crate) async fn serve_jwks(jwks: Value) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let h = h.clone();
            let jwks = jwks.clone();
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                axum::Json(jwks)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    (format!("http://127.0.0.1:{port}/jwks"), hits)
}

pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) fn sign(key: &EncodingKey, alg: Algorithm, kid: &str, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, claims, key).unwrap()
}
