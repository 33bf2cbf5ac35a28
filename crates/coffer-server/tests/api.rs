//! In-process API tests: the real router, state and SQLite store, driven
//! through `tower::ServiceExt::oneshot` (no socket). End-to-end tests with
//! the real binary live in `coffer-cli/tests`.
// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{Request, StatusCode};
use coffer_server::state::AppState;
use coffer_server::{Config, ServerArgs};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Harness {
    _dir: Option<tempfile::TempDir>,
    dir: std::path::PathBuf,
    state: Arc<AppState>,
    app: Router,
    admin_id: String,
    admin_key: String,
}

async fn start_in(
    dir: &std::path::Path,
    peer: &str,
) -> (Arc<AppState>, Router, Option<(String, String)>) {
    let config = Config::resolve(&ServerArgs {
        dev: true,
        data_dir: Some(dir.to_path_buf()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    })
    .unwrap();
    let (state, admin) = coffer_server::build(&config).await.unwrap();
    let peer: SocketAddr = peer.parse().unwrap();
    let app = coffer_server::http::router(state.clone()).layer(MockConnectInfo(peer));
    let creds = admin.map(|a| {
        (
            a.access_id,
            secrecy::ExposeSecret::expose_secret(&a.access_key).to_owned(),
        )
    });
    (state, app, creds)
}

impl Harness {
    async fn new() -> Harness {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let (state, app, creds) = start_in(&dir, "127.0.0.1:40000").await;
        let (admin_id, admin_key) = creds.expect("first start creates the admin");
        Harness {
            _dir: Some(tmp),
            dir,
            state,
            app,
            admin_id,
            admin_key,
        }
    }

    async fn raw(&self, path: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        raw(&self.app, path, body).await
    }

    async fn call(&self, op: &str, body: Value) -> (StatusCode, Value) {
        self.raw(&format!("/{op}"), body.to_string()).await
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        let (s, v) = self.call(op, body.clone()).await;
        assert_eq!(s, StatusCode::OK, "{op} {body} -> {v}");
        v
    }

    async fn login(&self, id: &str, key: &str) -> String {
        let v = self
            .ok(
                "auth",
                json!({"access-id": id, "access-key": key, "access-type": "access_key"}),
            )
            .await;
        v["token"].as_str().unwrap().to_owned()
    }

    async fn admin(&self) -> String {
        self.login(&self.admin_id.clone(), &self.admin_key.clone())
            .await
    }

    /// A new API-key identity bound to a new role with the given item rules.
    async fn identity(
        &self,
        admin: &str,
        name: &str,
        rules: &[(&str, &[&str])],
    ) -> (String, String) {
        let am = self
            .ok("create-auth-method", json!({"token": admin, "name": name}))
            .await;
        let role = format!("{name}-role");
        self.ok("create-role", json!({"token": admin, "name": role}))
            .await;
        for (path, caps) in rules {
            self.ok(
                "set-role-rule",
                json!({"token": admin, "role-name": role, "path": path, "capability": caps}),
            )
            .await;
        }
        self.ok(
            "assoc-role-am",
            json!({"token": admin, "role-name": role, "am-name": name}),
        )
        .await;
        (
            am["access_id"].as_str().unwrap().to_owned(),
            am["access_key"].as_str().unwrap().to_owned(),
        )
    }

    async fn audit(&self, admin: &str) -> Vec<Value> {
        let v = self
            .ok("audit-list", json!({"token": admin, "limit": 10000}))
            .await;
        v["records"].as_array().unwrap().clone()
    }
}

async fn raw(app: &Router, path: &str, body: impl Into<Body>) -> (StatusCode, Value) {
    let req = Request::post(path)
        .header("content-type", "application/json")
        .header("akeylessclienttype", "test-suite")
        .body(body.into())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

#[tokio::test]
async fn static_secret_lifecycle() {
    let h = Harness::new().await;
    let t = h.admin().await;
    h.ok(
        "create-secret",
        json!({"token": t, "name": "/app/db", "value": "v1", "tags": "a,b", "description": "db"}),
    )
    .await;
    let (s, v) = h
        .call(
            "create-secret",
            json!({"token": t, "name": "app/db", "value": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    h.ok(
        "update-secret-val",
        json!({"token": t, "name": "/app/db", "value": "v2"}),
    )
    .await;
    h.ok(
        "update-secret-val",
        json!({"token": t, "name": "/app/db", "value": "v3"}),
    )
    .await;
    let v = h
        .ok(
            "get-secret-value",
            json!({"token": t, "names": ["/app/db"]}),
        )
        .await;
    assert_eq!(v, json!({"/app/db": "v3"}));
    let v = h
        .ok(
            "get-secret-value",
            json!({"token": t, "names": "/app/db", "version": "1"}),
        )
        .await;
    assert_eq!(v["/app/db"], "v1");
    let d = h
        .ok(
            "describe-item",
            json!({"token": t, "name": "/app/db", "show-versions": "true"}),
        )
        .await;
    assert_eq!(d["item_type"], "STATIC_SECRET");
    assert_eq!(d["last_version"], 3);
    assert_eq!(d["is_enabled"], true);
    assert_eq!(d["item_tags"], json!(["a", "b"]));
    assert_eq!(d["item_versions"].as_array().unwrap().len(), 3);
    for key in ["creation_date", "modification_date"] {
        assert!(d[key].as_str().unwrap().ends_with('Z'), "{key}: {}", d[key]);
    }
    // keep-prev-version=false drops the older versions.
    h.ok(
        "update-secret-val",
        json!({"token": t, "name": "/app/db", "value": "v4", "keep-prev-version": "false"}),
    )
    .await;
    let (s, _) = h
        .call(
            "get-secret-value",
            json!({"token": t, "names": ["/app/db"], "version": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // JSON secrets come back as their JSON text; several names at once.
    h.ok("create-secret", json!({"token": t, "name": "/app/json", "format": "json", "value": "{\"user\":\"u\",\"n\":1}"}))
        .await;
    let (s, v) = h
        .call(
            "create-secret",
            json!({"token": t, "name": "/app/bad", "format": "json", "value": "nope"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // An update: the Python SDK's default `format: "text"` means
    // "unchanged"; the value must still be JSON; another format is refused.
    h.ok(
        "update-secret-val",
        json!({"token": t, "name": "/app/json", "format": "text", "value": "{\"user\":\"u\",\"n\":1}"}),
    )
    .await;
    for (format, value) in [("text", "not json"), ("key-value", "{\"k\":\"v\"}")] {
        let (s, v) = h
            .call(
                "update-secret-val",
                json!({"token": t, "name": "/app/json", "format": format, "value": value}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{format}: {v}");
    }
    let v = h
        .ok(
            "get-secret-value",
            json!({"token": t, "names": "/app/db,/app/json"}),
        )
        .await;
    assert_eq!(v["/app/db"], "v4");
    let j: Value = serde_json::from_str(v["/app/json"].as_str().unwrap()).unwrap();
    assert_eq!(j["user"], "u");
    // list-items: folders and items.
    h.ok(
        "create-secret",
        json!({"token": t, "name": "/app/sub/x", "value": "x"}),
    )
    .await;
    let l = h
        .ok(
            "list-items",
            json!({"token": t, "path": "/app", "current-folder": true}),
        )
        .await;
    let names: Vec<&str> = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["/app/db", "/app/json"]);
    assert_eq!(l["folders"], json!(["/app/sub"]));
    let l = h
        .ok("list-items", json!({"token": t, "path": "/nothing"}))
        .await;
    assert_eq!(l["items"], Value::Null);
    assert_eq!(l["folders"], Value::Null);
    // delete one version, then the item.
    h.ok(
        "update-secret-val",
        json!({"token": t, "name": "/app/sub/x", "value": "y"}),
    )
    .await;
    h.ok(
        "delete-item",
        json!({"token": t, "name": "/app/sub/x", "version": 2}),
    )
    .await;
    let v = h
        .ok(
            "get-secret-value",
            json!({"token": t, "names": ["/app/sub/x"]}),
        )
        .await;
    assert_eq!(v["/app/sub/x"], "x");
    // A delay beyond a year is refused, and nothing is deleted.
    let (s, v) = h
        .call(
            "delete-item",
            json!({"token": t, "name": "/app/sub/x", "delete-in-days": 400}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("delete-in-days"),
        "{v}"
    );
    // The Python SDK's defaults: pending deletion for 7 days (see
    // items_lifecycle.rs), the value no longer readable.
    h.ok(
        "delete-item",
        json!({"token": t, "name": "/app/sub/x", "delete-in-days": 7, "delete-immediately": false}),
    )
    .await;
    let (s, _) = h
        .call(
            "get-secret-value",
            json!({"token": t, "names": ["/app/sub/x"]}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rbac_default_deny_and_deny_wins() {
    let h = Harness::new().await;
    let admin = h.admin().await;
    for n in ["/app/a", "/app/topSecret", "/other/b"] {
        h.ok(
            "create-secret",
            json!({"token": admin, "name": n, "value": format!("value of {n}")}),
        )
        .await;
    }
    let (id, key) = h
        .identity(
            &admin,
            "/ci",
            &[("/app/*", &["read", "list"]), ("/app/topSecret", &["deny"])],
        )
        .await;
    let t = h.login(&id, &key).await;
    let v = h
        .ok("get-secret-value", json!({"token": t, "names": ["/app/a"]}))
        .await;
    assert_eq!(v["/app/a"], "value of /app/a");
    for denied in ["/other/b", "/app/topSecret", "/app/missing-but-denied"] {
        let (s, v) = h
            .call("get-secret-value", json!({"token": t, "names": [denied]}))
            .await;
        if denied == "/app/missing-but-denied" {
            // read on /app/* but the item is absent
            assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
        } else {
            assert_eq!(s, StatusCode::FORBIDDEN, "{denied}: {v}");
            assert!(v["error"].as_str().unwrap().contains("access denied"));
        }
    }
    // A mixed request fails as a whole and returns nothing.
    let (s, v) = h
        .call(
            "get-secret-value",
            json!({"token": t, "names": ["/app/a", "/other/b"]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(v.get("/app/a").is_none());
    // Cannot write, cannot manage roles.
    let (s, _) = h
        .call(
            "create-secret",
            json!({"token": t, "name": "/app/new", "value": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = h
        .call("create-role", json!({"token": t, "name": "/mine"}))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // list-items only shows what may be listed.
    let l = h.ok("list-items", json!({"token": t, "path": "/"})).await;
    let names: Vec<&str> = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["item_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["/app/a"]);
    assert_eq!(l["folders"], json!(["/app"]));
    // A second role granting the denied path does not override deny.
    h.ok("create-role", json!({"token": admin, "name": "/grant-all"}))
        .await;
    h.ok(
        "set-role-rule",
        json!({"token": admin, "role-name": "/grant-all", "path": "/*", "capability": "read"}),
    )
    .await;
    h.ok(
        "assoc-role-am",
        json!({"token": admin, "role-name": "/grant-all", "am-name": "/ci"}),
    )
    .await;
    let (s, _) = h
        .call(
            "get-secret-value",
            json!({"token": t, "names": ["/app/topSecret"]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let v = h
        .ok(
            "get-secret-value",
            json!({"token": t, "names": ["/other/b"]}),
        )
        .await;
    assert_eq!(v["/other/b"], "value of /other/b");
    // Removing the association takes the rights away at once.
    let role = h
        .ok("get-role", json!({"token": admin, "name": "/grant-all"}))
        .await;
    let assoc = role["role_auth_methods_assoc"][0]["assoc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.ok("delete-assoc", json!({"token": admin, "assoc-id": assoc}))
        .await;
    let (s, _) = h
        .call(
            "get-secret-value",
            json!({"token": t, "names": ["/other/b"]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Deleting the auth method kills its tokens.
    h.ok("delete-auth-method", json!({"token": admin, "name": "/ci"}))
        .await;
    let (s, _) = h
        .call("get-secret-value", json!({"token": t, "names": ["/app/a"]}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn wire_leniency_and_errors() {
    let h = Harness::new().await;
    let body =
        json!({"access_id": h.admin_id, "access_key": h.admin_key, "access-type": "api_key"})
            .to_string();
    for path in ["/auth", "/v2/auth", "/api/v2/auth", "//api//v2///auth/"] {
        let (s, v) = h.raw(path, body.clone()).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
        assert!(v["token"].as_str().unwrap().starts_with("t-"));
        assert!(v["expiration"].as_str().unwrap().ends_with("+0000 UTC"));
        assert_eq!(v["creds"]["access_id"], h.admin_id.as_str());
    }
    let (s, v) = h.raw("/auth", "{not json").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v["error"].as_str().unwrap().contains("not valid JSON"));
    let (s, _) = h.raw("/auth", "[1,2]").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let big = format!("{{\"value\":\"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let (s, v) = h.raw("/create-secret", big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    let (s, _) = h.raw("/no-such-op", "{}").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = h.call("get-secret-value", json!({"names": ["/a"]})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["error"].as_str().unwrap().contains("missing token"));
    let (s, _) = h
        .call(
            "get-secret-value",
            json!({"token": format!("t-{}", "0".repeat(64)), "names": ["/a"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let t = h.admin().await;
    // uid-token works as the token field.
    h.ok("list-items", json!({"uid-token": t})).await;
    // Bad names change nothing.
    for bad in ["/a/../b", "/a\u{0}b", "", "/x*"] {
        let (s, v) = h
            .call(
                "create-secret",
                json!({"token": t, "name": bad, "value": "x"}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad:?}: {v}");
    }
    let long = format!("/{}", "a".repeat(10_000));
    let (s, _) = h
        .call(
            "create-secret",
            json!({"token": t, "name": long, "value": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let big_value = "x".repeat(65 * 1024);
    let (s, _) = h
        .call(
            "create-secret",
            json!({"token": t, "name": "/big", "value": big_value}),
        )
        .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    let l = h.ok("list-items", json!({"token": t})).await;
    assert_eq!(l["items"], Value::Null, "nothing was created");
    // validate-token and revoke-token.
    let v = h.ok("validate-token", json!({"token": t})).await;
    assert_eq!(v["is_valid"], true);
    h.ok("revoke-token", json!({"token": t})).await;
    let v = h.ok("validate-token", json!({"token": t})).await;
    assert_eq!(v["is_valid"], false);
    let (s, _) = h.call("list-items", json!({"token": t})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn login_checks_and_throttle() {
    let h = Harness::new().await;
    let admin = h.admin().await;
    // bound-ips is checked against the socket peer (127.0.0.1 here), never X-Forwarded-For.
    let am = h
        .ok(
            "create-auth-method",
            json!({"token": admin, "name": "/bound", "bound-ips": "10.0.0.0/8"}),
        )
        .await;
    let req = Request::post("/auth")
        .header("x-forwarded-for", "10.1.1.1")
        .body(Body::from(
            json!({"access-id": am["access_id"], "access-key": am["access_key"]}).to_string(),
        ))
        .unwrap();
    let resp = h.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // access-expires in the past.
    let am = h
        .ok(
            "create-auth-method",
            json!({"token": admin, "name": "/expired", "access-expires": 1000}),
        )
        .await;
    let (s, v) = h
        .call(
            "auth",
            json!({"access-id": am["access_id"], "access-key": am["access_key"]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["error"].as_str().unwrap().contains("expired"));
    // Access IDs carry the type character.
    let id = am["access_id"].as_str().unwrap();
    assert!(
        id.starts_with("p-") && id.len() == 14 && id.as_bytes()[12] == b'a',
        "{id}"
    );
    // Wrong keys: same message as an unknown ID, then slowed down.
    let (s, v1) = h
        .call(
            "auth",
            json!({"access-id": h.admin_id, "access-key": "wrong"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, v2) = h
        .call(
            "auth",
            json!({"access-id": "p-doesnotexist", "access-key": "wrong"}),
        )
        .await;
    assert_eq!(v1, v2);
    let mut saw_429 = false;
    for _ in 0..8 {
        let (s, _) = h
            .call(
                "auth",
                json!({"access-id": h.admin_id, "access-key": "wrong"}),
            )
            .await;
        saw_429 |= s == StatusCode::TOO_MANY_REQUESTS;
    }
    assert!(saw_429, "failed logins are throttled");
    // Even the right key is refused during the back-off window.
    let (s, _) = h
        .call(
            "auth",
            json!({"access-id": h.admin_id, "access-key": h.admin_key}),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // force-sub-claims refuses a bare association.
    let _ = h
        .ok(
            "create-auth-method",
            json!({"token": admin, "name": "/forced", "force-sub-claims": "true"}),
        )
        .await;
    h.ok("create-role", json!({"token": admin, "name": "/r"}))
        .await;
    let (s, v) = h
        .call(
            "assoc-role-am",
            json!({"token": admin, "role-name": "/r", "am-name": "/forced"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        v["error"].as_str().unwrap().contains("force-sub-claims"),
        "{v}"
    );
    h.ok(
        "assoc-role-am",
        json!({"token": admin, "role-name": "/r", "am-name": "/forced", "sub-claims": {"user": "alice,bob"}}),
    )
    .await;
    let r = h
        .ok("get-role", json!({"token": admin, "name": "/r"}))
        .await;
    assert_eq!(
        r["role_auth_methods_assoc"][0]["auth_method_sub_claims"]["user"],
        json!(["alice", "bob"])
    );
}

#[tokio::test]
async fn audit_records_every_request_without_secrets() {
    let h = Harness::new().await;
    let admin = h.admin().await;
    h.ok(
        "create-secret",
        json!({"token": admin, "name": "/a/s", "value": "MARKER-VALUE-123"}),
    )
    .await;
    let (id, key) = h.identity(&admin, "/reader", &[("/a/*", &["read"])]).await;
    let t = h.login(&id, &key).await;
    h.ok("get-secret-value", json!({"token": t, "names": ["/a/s"]}))
        .await;
    let _ = h
        .call("get-secret-value", json!({"token": t, "names": ["/b/s"]}))
        .await;
    let _ = h
        .call(
            "get-secret-value",
            json!({"token": "t-forged", "names": ["/a/s"]}),
        )
        .await;
    let _ = h.raw("/get-secret-value", "{broken").await;
    let recs = h.audit(&admin).await;
    let text = serde_json::to_string(&recs).unwrap();
    for secret in ["MARKER-VALUE-123", &key, &t, &admin, &h.admin_key] {
        assert!(!text.contains(secret), "audit leaks a secret");
    }
    let find = |op: &str, outcome: &str, object: &str| {
        recs.iter()
            .any(|r| r["operation"] == op && r["outcome"] == outcome && r["object"] == object)
    };
    assert!(find("get-secret-value", "allowed", "/a/s"));
    assert!(find("get-secret-value", "denied", "/b/s"));
    let reader = recs
        .iter()
        .find(|r| r["operation"] == "get-secret-value" && r["outcome"] == "allowed")
        .unwrap();
    assert_eq!(reader["access_id"], id.as_str());
    assert_eq!(reader["auth_method"], "/reader");
    assert_eq!(reader["client_type"], "test-suite");
    assert_eq!(reader["peer"], "127.0.0.1");
    assert!(recs.iter().any(|r| r["status"] == 401));
    assert!(recs.iter().any(|r| r["status"] == 400));
    // Filters and the audit-access gate.
    let v = h
        .ok(
            "audit-list",
            json!({"token": admin, "access-id": id, "outcome": "denied"}),
        )
        .await;
    assert_eq!(v["records"].as_array().unwrap().len(), 1);
    let (s, _) = h.call("audit-list", json!({"token": t})).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let v = h.ok("audit-verify", json!({"token": admin})).await;
    assert_eq!(v["valid"], true, "{v}");
    assert!(v["records"].as_i64().unwrap() >= 8);
}

async fn sqlite(dir: &std::path::Path) -> sqlx::SqlitePool {
    let url = format!("sqlite://{}", dir.join("coffer.db").display());
    sqlx::SqlitePool::connect(&url).await.unwrap()
}

#[tokio::test]
async fn audit_failure_fails_closed() {
    let h = Harness::new().await;
    let admin = h.admin().await;
    h.ok(
        "create-secret",
        json!({"token": admin, "name": "/s", "value": "do-not-return"}),
    )
    .await;
    let db = sqlite(&h.dir).await;
    sqlx::query("CREATE TRIGGER block_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'disk full'); END")
        .execute(&db)
        .await
        .unwrap();
    let (s, v) = h
        .call("get-secret-value", json!({"token": admin, "names": ["/s"]}))
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!v.to_string().contains("do-not-return"));
    assert!(v["error"].as_str().unwrap().contains("audit log"));
    sqlx::query("DROP TRIGGER block_audit")
        .execute(&db)
        .await
        .unwrap();
    let v = h
        .ok("get-secret-value", json!({"token": admin, "names": ["/s"]}))
        .await;
    assert_eq!(v["/s"], "do-not-return");
}

#[tokio::test]
async fn ciphertext_moved_between_rows_does_not_open() {
    let h = Harness::new().await;
    let admin = h.admin().await;
    h.ok(
        "create-secret",
        json!({"token": admin, "name": "/one", "value": "first"}),
    )
    .await;
    h.ok(
        "create-secret",
        json!({"token": admin, "name": "/two", "value": "second"}),
    )
    .await;
    let db = sqlite(&h.dir).await;
    // Copy /one's sealed value over /two's.
    sqlx::query(
        "UPDATE item_versions SET sealed = (SELECT v.sealed FROM item_versions v JOIN items i ON i.id = v.item_id WHERE i.name = '/one') \
         WHERE item_id = (SELECT id FROM items WHERE name = '/two')",
    )
    .execute(&db)
    .await
    .unwrap();
    let (s, v) = h
        .call(
            "get-secret-value",
            json!({"token": admin, "names": ["/two"]}),
        )
        .await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    assert!(!v.to_string().contains("first"));
}

#[tokio::test]
async fn restart_keeps_everything_and_expired_tokens_fail() {
    let h = Harness::new().await;
    let admin = h.admin().await;
    h.ok(
        "create-secret",
        json!({"token": admin, "name": "/keep", "value": "kept"}),
    )
    .await;
    let (id, key) = h
        .identity(&h.admin().await, "/svc", &[("/keep", &["read"])])
        .await;
    let svc = h.login(&id, &key).await;
    drop(h.app.clone());
    // "Restart": a new state on the same data directory.
    let (_state2, app2, creds) = start_in(&h.dir, "127.0.0.1:40001").await;
    assert!(
        creds.is_none(),
        "credentials are only created and shown once"
    );
    let (s, v) = raw(
        &app2,
        "/get-secret-value",
        json!({"token": admin, "names": ["/keep"]}).to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["/keep"], "kept");
    // Expire the service token in storage; a fresh node sees it expired.
    let db = sqlite(&h.dir).await;
    sqlx::query("UPDATE tokens SET expires_ms = 1")
        .execute(&db)
        .await
        .unwrap();
    let (_state3, app3, _) = start_in(&h.dir, "127.0.0.1:40002").await;
    let (s, v) = raw(
        &app3,
        "/get-secret-value",
        json!({"token": svc, "names": ["/keep"]}).to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");
    let _ = &h.state;
}

#[tokio::test]
async fn get_caller_identity_tells_a_token_about_itself() {
    let h = Harness::new().await;
    let admin = h.admin().await;
    let (id, key) = h
        .identity(&admin, "/whoami/ci", &[("/app/*", &["read"])])
        .await;
    let t = h.login(&id, &key).await;
    for op in ["get-caller-identity", "whoami"] {
        let v = h.ok(op, json!({"token": t})).await;
        assert_eq!(v["access_id"], id.as_str(), "{v}");
        assert_eq!(v["auth_method_name"], "/whoami/ci", "{v}");
        assert_eq!(v["auth_method_type"], "api_key", "{v}");
        assert_eq!(
            v["roles"],
            json!([{"name": "/whoami/ci-role", "audit_access": "none"}])
        );
        assert!(v["ttl"].as_i64().unwrap() > 0, "{v}");
        assert!(v["expiration"].as_str().unwrap().ends_with("UTC"), "{v}");
        assert!(!v.to_string().contains(&t), "never echoes the token");
    }
    // Without a valid token: 401, as every authenticated operation.
    let (s, _) = h
        .call("get-caller-identity", json!({"token": "t-nope"}))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    h.ok("revoke-token", json!({"token": t})).await;
    let (s, _) = h.call("get-caller-identity", json!({"token": t})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
