//! The request pipeline under attack (issue 9), in process: the operation
//! table and its sweep, delegation that cannot escalate, changes that stay
//! audited and effective when the client goes away, per-request bound IPs
//! and expiry, per-address back-off, existence oracles, version numbers,
//! password secrets, list filters, legacy item IDs. The socket-level
//! attacks (half-closed connections, slow-loris, truncation with anchors)
//! run against the real binary in `tests/system/test_attacks.py`.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use coffer_server::ops::{Access, OPERATIONS};
use common::{Harness, keys, now, serve_jwks, sign};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

const DENIED: StatusCode = StatusCode::FORBIDDEN;

/// Plausible parameters for any operation, so a refusal is about rights.
fn sweep_body(token: &str, admin_access_id: &str) -> Value {
    json!({
        "token": token,
        "name": "/sweep/x",
        "names": ["/sweep/x"],
        "key-name": "/sweep/x",
        "cert-issuer-name": "/sweep/x",
        "signer-key-name": "/sweep/key",
        "serial-number": "01",
        "alg": "AES256GCM",
        "plaintext": "p",
        "ciphertext": "AAAA",
        "public-key-data": "ssh-ed25519 AAAA",
        "cert-file-data": "-----BEGIN CERTIFICATE-----",
        "value": "v",
        "role-name": "/admin",
        "am-name": "/admin",
        "auth-method-name": "/admin",
        "access-id": admin_access_id,
        "path": "/sweep/*",
        "capability": ["read"],
        "assoc-id": "rac-doesnotexist0",
        "uid-token-id": "uid-none",
        "unique-identifier": "sub",
        "jwks-uri": "http://127.0.0.1:9/jwks",
        "audience": "coffer",
        "bound-aws-account-id": "123456789012",
        "bound-tenant-id": "t",
        "bound-service-account-emails": "a@b.iam.gserviceaccount.com",
        "k8s-host": "https://127.0.0.1:6443",
    })
}

#[tokio::test]
async fn every_operation_refuses_a_caller_without_roles() {
    let h = Harness::new().await;
    let created = h
        .admin_ok("create-auth-method", json!({"name": "/nobody"}))
        .await;
    let nobody = created["access_id"].as_str().unwrap().to_owned();
    let token = h
        .login_key(&nobody, created["access_key"].as_str().unwrap())
        .await;
    let admin_id = h
        .admin_ok("get-auth-method", json!({"name": "/admin"}))
        .await["auth_method_access_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut swept = 0;
    for op in OPERATIONS {
        // Public operations check their own proof; revoke-token acts on
        // the caller's own token (it would end this sweep).
        if matches!(op.access, Access::Public | Access::OwnToken) {
            continue;
        }
        let mut request = sweep_body(&token, &admin_id);
        if matches!(op.access, Access::Filtered(..)) {
            request["path"] = json!("/");
        }
        // Only what the operation takes: auth-method and role operations
        // refuse settings they do not declare.
        let params = coffer_server::ops::params::declared(op.name).unwrap();
        if let Some(m) = request.as_object_mut() {
            m.retain(|k, _| k == "token" || params.iter().any(|p| p.name == k.as_str()));
        }
        let (status, body) = h.call(op.name, request.clone()).await;
        match op.access {
            Access::Public | Access::OwnToken => unreachable!(),
            Access::Filtered(..) => {
                assert_eq!(status, StatusCode::OK, "{}: {body}", op.name);
                for key in [
                    "items",
                    "roles",
                    "auth_methods",
                    "folders",
                    "targets",
                    "producers",
                    "leases",
                    "certificates",
                ] {
                    if let Some(v) = body.get(key) {
                        assert!(
                            v.is_null() || v.as_array().is_some_and(Vec::is_empty),
                            "{} shows {key} to a caller without roles: {body}",
                            op.name
                        );
                    }
                }
            }
            Access::Requires(_) | Access::RequiresAny(..) | Access::Audit => {
                assert_eq!(status, DENIED, "{} answered {status}: {body}", op.name);
            }
        }
        swept += 1;
        // Aliases are the same operation.
        for alias in op.aliases {
            let (s, _) = h.call(alias, request.clone()).await;
            assert_eq!(s, status, "alias {alias} of {}", op.name);
        }
    }
    assert!(swept >= 25, "only {swept} operations swept");
    // Nothing was changed or read: no successful record for that caller
    // except its login.
    let mine = h
        .audit_where(json!({"access-id": nobody, "limit": 10000}))
        .await;
    let allowed: Vec<&Value> = mine
        .iter()
        .filter(|r| r["outcome"] == "allowed" && r["operation"] != "auth")
        .collect();
    for r in &allowed {
        assert!(
            [
                "list-items",
                "list-roles",
                "list-auth-methods",
                "target-list",
                "dynamic-secret-list",
                "rotated-secret-list",
                "lease-list",
                "cert-list",
            ]
            .contains(&r["operation"].as_str().unwrap()),
            "a role-less caller succeeded at {r}"
        );
    }
}

#[test]
fn the_operation_table_is_consistent() {
    let mut seen = std::collections::HashSet::new();
    let api_doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md"))
            .expect("docs/api.md");
    for op in OPERATIONS {
        for name in std::iter::once(&op.name).chain(op.aliases) {
            assert!(seen.insert(*name), "{name} appears twice in the table");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name} is not a normalised operation name"
            );
            assert_eq!(
                coffer_server::ops::find(name).map(|o| o.name),
                Some(op.name)
            );
        }
        assert!(
            api_doc.contains(&format!("`{}`", op.name)),
            "docs/api.md does not document `{}`",
            op.name
        );
    }
    assert!(coffer_server::ops::find("no-such-op").is_none());
}

/// The hostile review's escalation, step by step.
#[tokio::test]
async fn a_role_manager_cannot_escalate() {
    let h = Harness::new().await;
    h.admin_ok(
        "create-secret",
        json!({"name": "/prod/db", "value": "prod-secret"}),
    )
    .await;
    let (_, mgr) = h
        .identity(
            "/team/mgr",
            "/team/manager",
            "none",
            &[
                (
                    "role-rule",
                    "/team/*",
                    &["read", "list", "create", "update", "delete"],
                ),
                (
                    "auth-method-rule",
                    "/team/*",
                    &["read", "list", "create", "update"],
                ),
            ],
        )
        .await;
    let call = |op: &'static str, mut body: Value| {
        body["token"] = json!(mgr);
        let h = &h;
        async move { h.call(op, body).await }
    };
    // audit-access above its own
    let (s, v) = call(
        "create-role",
        json!({"name": "/team/pwn", "audit-access": "all"}),
    )
    .await;
    assert_eq!(s, DENIED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("audit-access"), "{v}");
    // a plain role is fine
    let (s, v) = call("create-role", json!({"name": "/team/pwn"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // every rule type on /* is refused, with the right named
    for rule_type in ["item-rule", "role-rule", "auth-method-rule", "target-rule"] {
        let (s, v) = call(
            "set-role-rule",
            json!({"role-name": "/team/pwn", "path": "/*", "capability": ["read", "list", "create", "update", "delete"], "rule-type": rule_type}),
        )
        .await;
        assert_eq!(s, DENIED, "{rule_type}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("does not hold"),
            "{v}"
        );
    }
    // its own role cannot grow either
    let (s, _) = call(
        "set-role-rule",
        json!({"role-name": "/team/manager", "path": "/prod/*", "capability": ["read"]}),
    )
    .await;
    assert_eq!(s, DENIED);
    // within its rights: allowed
    let (s, v) = call(
        "set-role-rule",
        json!({"role-name": "/team/pwn", "path": "/team/sub/*", "capability": ["read", "update"], "rule-type": "role-rule"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = call("create-auth-method", json!({"name": "/team/am"})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = call(
        "assoc-role-am",
        json!({"role-name": "/team/pwn", "am-name": "/team/am"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // the rest of the attack: no reads, no audit, no deny on /admin
    let (s, _) = call("get-secret-value", json!({"names": ["/prod/db"]})).await;
    assert_eq!(s, DENIED);
    let (s, _) = call("audit-list", json!({})).await;
    assert_eq!(s, DENIED);
    let (s, _) = call(
        "set-role-rule",
        json!({"role-name": "/admin", "path": "/*", "capability": ["deny"]}),
    )
    .await;
    assert_eq!(s, DENIED);
    let (s, _) = call(
        "assoc-role-am",
        json!({"role-name": "/admin", "am-name": "/team/am"}),
    )
    .await;
    assert_eq!(s, DENIED);

    // A manager who may update and delete every auth method still cannot
    // take the admin's method away, nor mint credentials of a method whose
    // roles hold more than it does.
    let (_, ops) = h
        .identity(
            "/ops/mgr",
            "/ops/manager",
            "none",
            &[
                (
                    "auth-method-rule",
                    "/*",
                    &["read", "list", "update", "delete"],
                ),
                ("role-rule", "/ops/*", &["read", "update"]),
            ],
        )
        .await;
    let (s, v) = h
        .call(
            "delete-auth-method",
            json!({"token": ops, "name": "/admin"}),
        )
        .await;
    assert_eq!(s, DENIED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("/admin"), "{v}");
    h.admin_ok(
        "create-auth-method-universal-identity",
        json!({"name": "/ops/uid"}),
    )
    .await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "/admin", "am-name": "/ops/uid"}),
    )
    .await;
    let (s, v) = h
        .call(
            "uid-generate-token",
            json!({"token": ops, "auth-method-name": "/ops/uid"}),
        )
        .await;
    assert_eq!(s, DENIED, "{v}");
    // Lifting a deny needs what the deny blocks.
    h.admin_ok("create-role", json!({"name": "/team/block"}))
        .await;
    h.admin_ok(
        "set-role-rule",
        json!({"role-name": "/team/block", "path": "/team/secret*", "capability": ["deny"], "rule-type": "role-rule"}),
    )
    .await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "/team/block", "am-name": "/team/mgr"}),
    )
    .await;
    let (s, v) = call("delete-role", json!({"name": "/team/block"})).await;
    assert_eq!(s, DENIED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("deny"), "{v}");
    // Every refusal is audited as denied and changed nothing.
    let roles = h.admin_ok("get-role", json!({"name": "/team/pwn"})).await;
    assert_eq!(
        roles["rules"]["path_rules"].as_array().unwrap().len(),
        1,
        "{roles}"
    );
    assert_eq!(roles["audit_access"], "none");
}

/// Requests whose client goes away (their future dropped at a random
/// point) still finish: every committed change has its audit record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_requests_finish_and_are_audited() {
    let h = Harness::new().await;
    let n = 120;
    for i in 0..n {
        let body = json!({"token": h.admin, "name": format!("/storm/{i}"), "value": "v"});
        // Give up after 0..2 ms: mostly mid-request.
        let wait = Duration::from_micros((i * 37 % 2000) as u64);
        tokio::time::timeout(wait, h.call("create-secret", body))
            .await
            .ok();
    }
    // Let the abandoned ones finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let listed = h.admin_ok("list-items", json!({"path": "/storm"})).await;
    let items: Vec<String> = listed["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["item_name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    let audited: std::collections::HashSet<String> = h
        .audit_where(json!({"operation": "create-secret", "outcome": "allowed", "limit": 10000}))
        .await
        .iter()
        .map(|r| r["object"].as_str().unwrap().to_owned())
        .collect();
    for name in &items {
        assert!(
            audited.contains(name),
            "{name} was created without an audit record"
        );
    }
    assert_eq!(items.len(), audited.len(), "an audited creation is missing");
    let v = h.admin_ok("audit-verify", json!({})).await;
    assert_eq!(v["valid"], true, "{v}");
}

/// A policy change whose client gave up takes effect at once anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_policy_changes_take_effect() {
    let h = Harness::new().await;
    h.admin_ok("create-secret", json!({"name": "/app/x", "value": "v"}))
        .await;
    let (_, reader) = h
        .identity(
            "/am/reader",
            "/role/reader",
            "none",
            &[("item-rule", "/app/*", &["read"])],
        )
        .await;
    h.ok(
        "get-secret-value",
        json!({"token": reader, "names": ["/app/x"]}),
    )
    .await;
    // Abandon the deletion of the rule as soon as it is sent.
    let body = json!({"token": h.admin, "role-name": "/role/reader", "path": "/app/*"});
    tokio::time::timeout(Duration::from_micros(50), h.call("delete-role-rule", body))
        .await
        .ok();
    // Once its record is there, the rule no longer grants anything here.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while h
        .audit_where(json!({"operation": "delete-role-rule", "outcome": "allowed"}))
        .await
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the deletion never finished"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    h.fails(
        "get-secret-value",
        json!({"token": reader, "names": ["/app/x"]}),
        DENIED,
    )
    .await;
}

#[tokio::test]
async fn bound_ips_and_expiry_hold_on_every_request() {
    let h = Harness::new().await;
    h.admin_ok("create-secret", json!({"name": "/ip/x", "value": "v"}))
        .await;
    let am = h
        .admin_ok(
            "create-auth-method",
            json!({"name": "/am/bound", "bound-ips": ["127.0.0.1/32"], "access-expires": now() + 3}),
        )
        .await;
    h.admin_ok("create-role", json!({"name": "/role/bound"}))
        .await;
    h.admin_ok(
        "set-role-rule",
        json!({"role-name": "/role/bound", "path": "/ip/*", "capability": ["read"]}),
    )
    .await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "/role/bound", "am-name": "/am/bound"}),
    )
    .await;
    let (id, key) = (
        am["access_id"].as_str().unwrap(),
        am["access_key"].as_str().unwrap(),
    );
    // Login from another address is refused; from the bound one it works.
    let (s, _) = h
        .call_from(
            "127.0.0.2:5000",
            "auth",
            json!({"access-id": id, "access-key": key}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let token = h.login_key(id, key).await;
    let read = json!({"token": token, "names": ["/ip/x"]});
    h.ok("get-secret-value", read.clone()).await;
    // The token used from elsewhere is refused.
    let (s, v) = h
        .call_from("127.0.0.2:5000", "get-secret-value", read.clone())
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("bound IPs"), "{v}");
    // After the method's access expires, the token stops.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (s, v) = h.call("get-secret-value", read).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");
}

#[tokio::test]
async fn failed_logins_elsewhere_do_not_lock_the_owner_out() {
    let h = Harness::new().await;
    let am = h
        .admin_ok("create-auth-method", json!({"name": "/am/owner"}))
        .await;
    let id = am["access_id"].as_str().unwrap();
    for _ in 0..8 {
        let (s, _) = h
            .call_from(
                "127.0.0.2:6000",
                "auth",
                json!({"access-id": id, "access-key": "wrong-guess"}),
            )
            .await;
        assert!(s == StatusCode::UNAUTHORIZED || s == StatusCode::TOO_MANY_REQUESTS);
    }
    let (s, _) = h
        .call_from(
            "127.0.0.2:6000",
            "auth",
            json!({"access-id": id, "access-key": am["access_key"]}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "the guesser is slowed down"
    );
    // The owner, from its own address, logs in at once.
    h.login_key(id, am["access_key"].as_str().unwrap()).await;
}

#[tokio::test]
async fn deleted_version_numbers_are_never_reused() {
    let h = Harness::new().await;
    h.admin_ok("create-secret", json!({"name": "/v/x", "value": "one"}))
        .await;
    h.admin_ok("update-secret-val", json!({"name": "/v/x", "value": "two"}))
        .await;
    h.admin_ok(
        "update-secret-val",
        json!({"name": "/v/x", "value": "three"}),
    )
    .await;
    h.admin_ok("delete-item", json!({"name": "/v/x", "version": 3}))
        .await;
    h.admin_ok(
        "update-secret-val",
        json!({"name": "/v/x", "value": "four"}),
    )
    .await;
    // A client pinned to version 3 gets "not found", never "four".
    let (s, v) = h
        .call(
            "get-secret-value",
            json!({"token": h.admin, "names": ["/v/x"], "version": 3}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let v = h
        .admin_ok("get-secret-value", json!({"names": ["/v/x"], "version": 4}))
        .await;
    assert_eq!(v["/v/x"], "four");
    let d = h.admin_ok("describe-item", json!({"name": "/v/x"})).await;
    assert_eq!(d["last_version"], 4);
    let versions: Vec<i64> = d["item_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 4]);
}

#[tokio::test]
async fn password_secrets_keep_their_fields() {
    let h = Harness::new().await;
    h.admin_ok(
        "create-secret",
        json!({"name": "/pw/db", "type": "password", "format": "text", "accessibility": "regular",
               "username": "app", "password": "s3cret", "inject-url": ["https://db.example"],
               "custom-field": {"pin": "1234"}}),
    )
    .await;
    let v = h
        .admin_ok("get-secret-value", json!({"names": ["/pw/db"]}))
        .await;
    let entry: Value = serde_json::from_str(v["/pw/db"].as_str().unwrap()).unwrap();
    assert_eq!(entry["username"], "app");
    assert_eq!(entry["password"], "s3cret");
    assert_eq!(entry["inject_url"], json!(["https://db.example"]));
    assert_eq!(entry["custom_field"], json!({"pin": "1234"}));
    let d = h.admin_ok("describe-item", json!({"name": "/pw/db"})).await;
    assert_eq!(d["item_sub_type"], "password");
    // An update of the password keeps the username.
    h.admin_ok(
        "update-secret-val",
        json!({"name": "/pw/db", "password": "n3w"}),
    )
    .await;
    let v = h
        .admin_ok("get-secret-value", json!({"names": ["/pw/db"]}))
        .await;
    let entry: Value = serde_json::from_str(v["/pw/db"].as_str().unwrap()).unwrap();
    assert_eq!(
        (entry["username"].as_str(), entry["password"].as_str()),
        (Some("app"), Some("n3w"))
    );
    // Mixing the shapes is refused, and changes nothing.
    h.fails_with(
        "create-secret",
        json!({"token": h.admin, "name": "/pw/bad", "type": "password", "value": "v", "password": "p"}),
        StatusCode::BAD_REQUEST,
        "password once",
    )
    .await;
    // value as the password, or as the whole entry, is kept.
    h.admin_ok(
        "create-secret",
        json!({"name": "/pw/v", "type": "password", "value": "{\"username\":\"u\",\"password\":\"p\"}"}),
    )
    .await;
    let v = h
        .admin_ok("get-secret-value", json!({"names": ["/pw/v"]}))
        .await;
    let entry: Value = serde_json::from_str(v["/pw/v"].as_str().unwrap()).unwrap();
    assert_eq!(entry, json!({"username": "u", "password": "p"}));
    h.fails_with(
        "create-secret",
        json!({"token": h.admin, "name": "/pw/bad", "value": "v", "username": "u"}),
        StatusCode::BAD_REQUEST,
        "type password",
    )
    .await;
    h.fails_with(
        "create-secret",
        json!({"token": h.admin, "name": "/pw/bad", "type": "password", "username": "u"}),
        StatusCode::BAD_REQUEST,
        "password",
    )
    .await;
    h.fails(
        "describe-item",
        json!({"token": h.admin, "name": "/pw/bad"}),
        StatusCode::NOT_FOUND,
    )
    .await;
}

fn item_names(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|i| i["item_name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn list_items_pages_and_filters() {
    let h = Harness::new().await;
    for i in 0..1100 {
        h.admin_ok(
            "create-secret",
            json!({"name": format!("/many/{i:04}"), "value": "v"}),
        )
        .await;
    }
    h.admin_ok(
        "create-secret",
        json!({"name": "/many/sub/tagged", "value": "v", "tags": ["env=prod"]}),
    )
    .await;
    h.admin_ok(
        "create-secret",
        json!({"name": "/many/sub/pw", "type": "password", "password": "p"}),
    )
    .await;
    let first = h.admin_ok("list-items", json!({"path": "/many"})).await;
    assert_eq!(item_names(&first).len(), 1000);
    assert_eq!(first["has_next"], true);
    assert_eq!(first["folders"], json!(["/many/sub"]));
    let token = first["next_page"].as_str().unwrap();
    assert!(!token.is_empty());
    let second = h
        .admin_ok(
            "list-items",
            json!({"path": "/many", "pagination-token": token}),
        )
        .await;
    assert_eq!(item_names(&second).len(), 102);
    assert_eq!(second["next_page"], "");
    assert_eq!(second["has_next"], false);
    // Filters.
    let tagged = h
        .admin_ok("list-items", json!({"path": "/many", "tag": "env=prod"}))
        .await;
    assert_eq!(item_names(&tagged), ["/many/sub/tagged"]);
    let pw = h
        .admin_ok(
            "list-items",
            json!({"path": "/many", "sub-types": ["password"]}),
        )
        .await;
    assert_eq!(item_names(&pw), ["/many/sub/pw"]);
    let later = h
        .admin_ok(
            "list-items",
            json!({"path": "/many", "modified-after": now() + 3600}),
        )
        .await;
    assert!(item_names(&later).is_empty());
    let dynamic = h
        .admin_ok(
            "list-items",
            json!({"path": "/many", "type": ["dynamic-secret"]}),
        )
        .await;
    assert!(item_names(&dynamic).is_empty());
    let current = h
        .admin_ok(
            "list-items",
            json!({"path": "/many/sub", "current-folder": true, "minimal-view": true}),
        )
        .await;
    assert_eq!(item_names(&current), ["/many/sub/pw", "/many/sub/tagged"]);
    let disabled = h
        .admin_ok(
            "list-items",
            json!({"path": "/many", "auto-pagination": "disabled"}),
        )
        .await;
    assert_eq!(disabled["next_page"], "");
    // What it cannot do it refuses.
    for (body, needle) in [
        (json!({"type": ["bogus"]}), "unknown item type"),
        (json!({"sub-types": ["bogus"]}), "sub-type"),
        (json!({"advanced-filter": "app"}), "advanced-filter"),
        (json!({"accessibility": "personal"}), "personal"),
        (json!({"pagination-token": "!!"}), "pagination-token"),
    ] {
        let mut body = body;
        body["token"] = json!(h.admin);
        body["path"] = json!("/many");
        h.fails_with("list-items", body, StatusCode::BAD_REQUEST, needle)
            .await;
    }
}

#[tokio::test]
async fn list_auth_methods_filters() {
    let h = Harness::new().await;
    h.admin_ok("create-auth-method", json!({"name": "/ci/key"}))
        .await;
    h.admin_ok(
        "create-auth-method-universal-identity",
        json!({"name": "/ci/uid"}),
    )
    .await;
    let names = |v: &Value| -> Vec<String> {
        v["auth_methods"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["auth_method_name"].as_str().unwrap().to_owned())
            .collect()
    };
    let uid = h
        .admin_ok("list-auth-methods", json!({"type": ["universal_identity"]}))
        .await;
    assert_eq!(names(&uid), ["/ci/uid"]);
    let keys = h
        .admin_ok(
            "list-auth-methods",
            json!({"type": ["api_key"], "filter": "/ci/"}),
        )
        .await;
    assert_eq!(names(&keys), ["/ci/key"]);
    let saml = h
        .admin_ok("list-auth-methods", json!({"type": ["saml2"]}))
        .await;
    assert!(names(&saml).is_empty());
    h.fails_with(
        "list-auth-methods",
        json!({"token": h.admin, "type": ["bogus"]}),
        StatusCode::BAD_REQUEST,
        "unknown auth method type",
    )
    .await;
}

#[tokio::test]
async fn probing_reveals_nothing() {
    let h = Harness::new().await;
    let (_, limited) = h
        .identity(
            "/team/viewer",
            "/team/viewer",
            "none",
            &[
                ("auth-method-rule", "/team/*", &["read"]),
                ("role-rule", "/team/*", &["update"]),
            ],
        )
        .await;
    let admin_id = h
        .admin_ok("get-auth-method", json!({"name": "/admin"}))
        .await["auth_method_access_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_assoc = h.admin_ok("get-role", json!({"name": "/admin"})).await
        ["role_auth_methods_assoc"][0]["assoc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // An existing method or association the caller may not read and a
    // missing one: one answer, naming neither (explain-access repeats the
    // access ID it was given; delete-assoc's answers are identical).
    for (op, field, existing, missing, echoes_id) in [
        (
            "explain-access",
            "access-id",
            &admin_id,
            "p-doesnotexist",
            true,
        ),
        (
            "delete-assoc",
            "assoc-id",
            &admin_assoc,
            "rac-nothere",
            false,
        ),
    ] {
        let exists = h
            .fails(op, json!({"token": limited, field: existing}), DENIED)
            .await;
        let absent = h
            .fails(op, json!({"token": limited, field: missing}), DENIED)
            .await;
        assert!(!exists.contains("/admin"), "{op}: {exists}");
        if echoes_id {
            assert_eq!(
                exists.replace(existing.as_str(), "X"),
                absent.replace(missing, "X"),
                "{op}"
            );
        } else {
            assert_eq!(exists, absent, "{op}");
        }
    }
    // The admin, who may see everything, is told what is missing.
    h.fails(
        "delete-assoc",
        json!({"token": h.admin, "assoc-id": "rac-nothere"}),
        StatusCode::NOT_FOUND,
    )
    .await;
    h.fails(
        "explain-access",
        json!({"token": h.admin, "access-id": "p-doesnotexist"}),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn audit_access_own_is_one_identity_not_the_whole_access_id() {
    let h = Harness::new().await;
    let k = keys();
    let (jwks_uri, _) = serve_jwks(k.jwks.clone()).await;
    let am = h
        .admin_ok(
            "create-auth-method-oauth2",
            json!({"name": "/ci/jobs", "jwks-uri": jwks_uri, "unique-identifier": "sub",
                   "audience": "coffer"}),
        )
        .await;
    let id = am["access_id"].as_str().unwrap().to_owned();
    h.admin_ok(
        "create-role",
        json!({"name": "/role/jobs", "audit-access": "own"}),
    )
    .await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "/role/jobs", "am-name": "/ci/jobs", "sub-claims": {"project": "app"}}),
    )
    .await;
    let job = |sub: &str| {
        sign(
            &k.rsa,
            Algorithm::RS256,
            "rsa1",
            &json!({"sub": sub, "project": "app", "aud": "coffer", "exp": now() + 300, "iat": now()}),
        )
    };
    let (s, a) = h.jwt_auth(&id, &job("job-a")).await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let (s, b) = h.jwt_auth(&id, &job("job-b")).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Job A does something; job B must not see it.
    let _ = h
        .call(
            "get-secret-value",
            json!({"token": a["token"], "names": ["/x"]}),
        )
        .await;
    let seen = h
        .ok("audit-list", json!({"token": b["token"], "limit": 1000}))
        .await;
    for r in seen["records"].as_array().unwrap() {
        assert_eq!(
            r["identity"], "job-b",
            "job B sees another job's record: {r}"
        );
    }
    let seen_a = h
        .ok("audit-list", json!({"token": a["token"], "limit": 1000}))
        .await;
    assert!(
        seen_a["records"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["operation"] == "get-secret-value"),
        "job A sees its own record"
    );
}

#[tokio::test]
async fn legacy_large_item_ids_are_renumbered_for_json_clients() {
    use coffer_core::model::{Item, ItemSubType, ItemType, SealedVersion, SecretFormat};
    let h = Harness::new().await;
    let state = &h.state;
    let old_id: i64 = (1 << 60) + 12345;
    let key_id = state.keys.active_key_id();
    let sealed = state
        .keys
        .data_key(key_id)
        .unwrap()
        .seal(b"legacy value", &coffer_crypto::value_aad(old_id, 1))
        .unwrap();
    let item = Item {
        id: old_id,
        name: "/legacy/x".into(),
        item_type: ItemType::StaticSecret,
        sub_type: ItemSubType::Generic,
        format: SecretFormat::Text,
        description: String::new(),
        tags: vec![],
        max_versions: 0,
        last_version: 1,
        highest_version: 1,
        enabled: true,
        created_ms: 1,
        modified_ms: 1,
        deletion_ms: 0,
    };
    let mut rec = coffer_server::state::system_record("test-insert", "/legacy/x");
    state
        .store
        .create_item(
            &item,
            &SealedVersion {
                version: 1,
                key_id,
                sealed,
                created_ms: 1,
            },
            coffer_store::Audit::new(&mut rec, &*state.keys.audit),
        )
        .await
        .unwrap();
    coffer_server::bootstrap::renumber_large_item_ids(state)
        .await
        .unwrap();
    let d = h
        .admin_ok("describe-item", json!({"name": "/legacy/x"}))
        .await;
    let id = d["item_id"].as_i64().unwrap();
    assert!(
        id > 0 && id < (1 << 53),
        "item_id {id} is not exact in JavaScript"
    );
    let v = h
        .admin_ok("get-secret-value", json!({"names": ["/legacy/x"]}))
        .await;
    assert_eq!(v["/legacy/x"], "legacy value");
    assert!(
        !h.audit_where(json!({"operation": "renumber-item"}))
            .await
            .is_empty()
    );
    let v = h.admin_ok("audit-verify", json!({})).await;
    assert_eq!(v["valid"], true, "{v}");
}
