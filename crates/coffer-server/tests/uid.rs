//! Universal Identity (UID) tokens end to end, in process: the real
//! router, state and SQLite store driven through `tower::ServiceExt`.

mod common;

use axum::http::StatusCode;
use common::Harness;
use serde_json::{Value, json};

/// A UID method with its token tree handles.
struct Method {
    name: String,
    access_id: String,
}

/// `base` with the fields of the object `extra` set on it.
fn with(mut base: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    base
}

/// (secret, token ID) of a `uid-*-token` response.
fn secret_and_id(v: &Value) -> (String, String) {
    (
        v["token"].as_str().unwrap().to_owned(),
        v["token_id"].as_str().unwrap().to_owned(),
    )
}

/// UID steps on top of the shared harness.
impl Harness {
    /// A UID method whose role reads `/uid/*`, plus the secret `/uid/db`.
    async fn method(&self, name: &str, settings: Value) -> Method {
        let v = self
            .admin_ok(
                "create-auth-method-universal-identity",
                with(json!({"name": name}), settings),
            )
            .await;
        let access_id = v["access_id"].as_str().unwrap().to_owned();
        let role = format!("{name}-role");
        self.admin_ok("create-role", json!({"name": role})).await;
        self.admin_ok(
            "set-role-rule",
            json!({"role-name": role, "path": "/uid/*", "capability": ["read"]}),
        )
        .await;
        self.admin_ok("assoc-role-am", json!({"role-name": role, "am-name": name}))
            .await;
        let _ = self
            .call(
                "create-secret",
                json!({"token": self.admin, "name": "/uid/db", "value": "uid-secret-value"}),
            )
            .await;
        Method {
            name: name.to_owned(),
            access_id,
        }
    }

    /// A root token: (secret, token ID).
    async fn root(&self, m: &Method) -> (String, String) {
        let v = self
            .admin_ok("uid-generate-token", json!({"auth-method-name": m.name}))
            .await;
        secret_and_id(&v)
    }

    /// A child of the holder's token: (secret, token ID).
    async fn child(&self, parent: &str, extra: Value) -> (String, String) {
        let v = self
            .ok(
                "uid-create-child-token",
                with(json!({"uid-token": parent}), extra),
            )
            .await;
        secret_and_id(&v)
    }

    async fn login(&self, m: &Method, uid: &str) -> (StatusCode, Value) {
        self.call(
            "auth",
            json!({"access-id": m.access_id, "access-type": "universal_identity", "uid-token": uid}),
        )
        .await
    }

    /// A session token from a UID login.
    async fn session(&self, m: &Method, uid: &str) -> String {
        let (s, v) = self.login(m, uid).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["token"].as_str().unwrap().to_owned()
    }

    /// A session token of a new API-key auth method `name` (no roles).
    async fn api_key_session(&self, name: &str) -> String {
        let am = self
            .admin_ok("create-auth-method", json!({"name": name}))
            .await;
        let v = self
            .ok(
                "auth",
                json!({"access-id": am["access_id"], "access-key": am["access_key"]}),
            )
            .await;
        v["token"].as_str().unwrap().to_owned()
    }

    async fn read(&self, token_field: &str, token: &str) -> StatusCode {
        let (s, v) = self
            .call(
                "get-secret-value",
                json!({token_field: token, "names": ["/uid/db"]}),
            )
            .await;
        if s == StatusCode::OK {
            assert_eq!(v["/uid/db"], "uid-secret-value");
        }
        s
    }

    async fn db(&self) -> sqlx::SqlitePool {
        let url = format!("sqlite://{}", self.dir.join("coffer.db").display());
        sqlx::SqlitePool::connect(&url).await.unwrap()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn generate_login_and_read_through_the_role() {
    let h = Harness::new().await;
    let m = h.method("/machines/uid", json!({"ttl": 30})).await;
    assert_eq!(
        m.access_id.chars().rev().nth(1),
        Some('u'),
        "type character"
    );
    let am = h
        .ok("get-auth-method", json!({"token": h.admin, "name": m.name}))
        .await;
    assert_eq!(am["access_info"]["rules_type"], "universal_identity");
    let rules = &am["access_info"]["universal_identity_access_rules"];
    assert_eq!(rules["ttl"], 30);
    assert_eq!(rules["deny_rotate"], false);
    assert_eq!(rules["deny_inheritance"], false);
    assert_eq!(rules["tree_length"], 200);
    assert_eq!(rules["child_ttl_limit"], 43200);

    let (uid, id) = h.root(&m).await;
    assert!(uid.starts_with("u-") && uid.len() == 66, "{uid}");
    assert!(id.starts_with("uid-"));
    let (s, v) = h.login(&m, &uid).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let session = v["token"].as_str().unwrap();
    assert!(session.starts_with("t-"));
    assert_eq!(v["creds"]["access_id"], m.access_id.as_str());
    assert_eq!(v["creds"]["sub_claims"]["token_id"], json!([id]));
    assert_eq!(h.read("token", session).await, StatusCode::OK);
    // Only what the role grants.
    h.ok(
        "create-secret",
        json!({"token": h.admin, "name": "/other/x", "value": "x"}),
    )
    .await;
    h.fails(
        "get-secret-value",
        json!({"token": session, "names": ["/other/x"]}),
        StatusCode::FORBIDDEN,
    )
    .await;
    // The audit names the caller by the UID token's ID.
    let recs = h
        .audit_where(json!({"operation": "get-secret-value", "outcome": "allowed"}))
        .await;
    assert!(
        recs.iter()
            .any(|r| r["identity"] == id.as_str() && r["auth_method"] == m.name.as_str()),
        "{recs:?}"
    );

    // Wrong type, wrong method, garbage: refused.
    let other = h.method("/machines/other", json!({})).await;
    let (other_uid, _) = h.root(&other).await;
    assert_eq!(h.login(&m, &other_uid).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.login(&m, &format!("u-{}", "0".repeat(64))).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = h
        .call(
            "auth",
            json!({"access-id": m.access_id, "access-type": "universal_identity"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let (s, _) = h
        .call(
            "auth",
            json!({"access-id": m.access_id, "access-type": "access_key", "access-key": uid}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Generating needs update on the method (auth-method-rule).
    h.admin_ok("create-auth-method", json!({"name": "/ops"}))
        .await;
    let reader = h.api_key_session("/ops2").await;
    h.admin_ok("create-role", json!({"name": "ops-read"})).await;
    h.admin_ok(
        "set-role-rule",
        json!({"role-name": "ops-read", "path": "/machines/*", "capability": ["read", "list"], "rule-type": "auth-method-rule"}),
    )
    .await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "ops-read", "am-name": "/ops2"}),
    )
    .await;
    h.fails(
        "uid-generate-token",
        json!({"token": reader, "auth-method-name": m.name}),
        StatusCode::FORBIDDEN,
    )
    .await;
    // ... while read is enough to list the trees.
    let tree = h
        .ok(
            "uid-list-children",
            json!({"token": reader, "auth-method-name": m.name}),
        )
        .await;
    assert_eq!(tree["number_of_tokens"], 1);
    assert!(tree["root"]["children"][&id].is_object(), "{tree}");
    // Not a UID method; missing name.
    h.fails(
        "uid-generate-token",
        json!({"token": h.admin, "auth-method-name": "/ops"}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    h.fails(
        "uid-generate-token",
        json!({"token": h.admin}),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn rotation_replaces_the_secret_and_resets_the_ttl() {
    let h = Harness::new().await;
    let m = h.method("/rot", json!({"ttl": 10})).await;
    let (old, id) = h.root(&m).await;
    // Use the old secret directly once, so it sits in the token cache.
    assert_eq!(h.read("uid-token", &old).await, StatusCode::OK);
    // Age the token: 1 minute left.
    sqlx::query("UPDATE uid_tokens SET expires_ms = ? WHERE token_id = ?")
        .bind(now_ms() + 60_000)
        .bind(&id)
        .execute(&h.db().await)
        .await
        .unwrap();
    let before = now_ms();
    let v = h.ok("uid-rotate-token", json!({"uid-token": old})).await;
    let new = v["token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(new.starts_with("u-"));
    assert_eq!(v["token_id"], id.as_str());
    let t = h.state.store.get_uid_token(&id).await.unwrap().unwrap();
    assert!(
        t.expires_ms >= before + 10 * 60_000 && t.expires_ms <= now_ms() + 10 * 60_000,
        "TTL restarts at 10 minutes: {}",
        t.expires_ms - before
    );
    assert!(t.last_rotated_ms >= before);
    // The old secret is dead everywhere at once, the new one works.
    assert_eq!(h.read("uid-token", &old).await, StatusCode::UNAUTHORIZED);
    assert_eq!(h.login(&m, &old).await.0, StatusCode::UNAUTHORIZED);
    h.fails(
        "uid-rotate-token",
        json!({"uid-token": old}),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(h.read("uid-token", &new).await, StatusCode::OK);
    let session = h.session(&m, &new).await;
    assert_eq!(h.read("token", &session).await, StatusCode::OK);
    let tree = h.ok("uid-list-children", json!({"uid-token": new})).await;
    assert!(tree["root"]["last_rotate"].is_string(), "{tree}");
    // Akeyless' manual-ack mode is refused, not ignored.
    h.fails_with(
        "uid-rotate-token",
        json!({"uid-token": new, "with-manual-ack": true}),
        StatusCode::BAD_REQUEST,
        "with-manual-ack",
    )
    .await;
    h.fails("uid-rotate-token", json!({}), StatusCode::BAD_REQUEST)
        .await;
}

#[tokio::test]
async fn concurrent_rotations_have_exactly_one_winner() {
    let h = Harness::new().await;
    let m = h.method("/race", json!({})).await;
    let (uid, _) = h.root(&m).await;
    let body = json!({"uid-token": uid});
    let results =
        futures::future::join_all((0..8).map(|_| h.call("uid-rotate-token", body.clone()))).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .map(|(_, v)| v)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (s, v) in &results {
        assert!(
            [
                StatusCode::OK,
                StatusCode::CONFLICT,
                StatusCode::UNAUTHORIZED
            ]
            .contains(s),
            "{s} {v}"
        );
    }
    let new = winners[0]["token"].as_str().unwrap();
    assert_eq!(h.read("uid-token", new).await, StatusCode::OK);
    assert_eq!(h.read("uid-token", &uid).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn children_limits_and_deny_flags() {
    let h = Harness::new().await;
    let m = h
        .method(
            "/tree",
            json!({"ttl": 60, "child-ttl-limit": 30, "tree-length": 3}),
        )
        .await;
    let (root, root_id) = h.root(&m).await;
    // TTL: default is the limit, and neither the limit nor the parent's TTL can be exceeded.
    h.fails_with(
        "uid-create-child-token",
        json!({"uid-token": root, "child-ttl": 31}),
        StatusCode::BAD_REQUEST,
        "1 to 30",
    )
    .await;
    let (child, child_id) = h
        .child(&root, json!({"child-ttl": 20, "comment": "build agent"}))
        .await;
    let (s, _) = h
        .call(
            "uid-create-child-token",
            json!({"uid-token": child, "child-ttl": 21}),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a child's TTL is capped by its parent's"
    );
    let (grandchild, grandchild_id) = h.child(&child, json!({})).await;
    // tree-length 3: no great-grandchildren.
    h.fails_with(
        "uid-create-child-token",
        json!({"uid-token": grandchild}),
        StatusCode::BAD_REQUEST,
        "tree-length",
    )
    .await;
    let stored = h
        .state
        .store
        .get_uid_token(&grandchild_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.ttl_secs, 20 * 60, "default child TTL = the parent's");
    assert_eq!(stored.depth, 3);
    assert_eq!(stored.parent_id.as_deref(), Some(child_id.as_str()));
    // Children log in and read like their root.
    let s = h.session(&m, &grandchild).await;
    assert_eq!(h.read("token", &s).await, StatusCode::OK);

    // The tree as its root holder sees it, and as the child sees it.
    let tree = h.ok("uid-list-children", json!({"uid-token": root})).await;
    assert_eq!(tree["number_of_tokens"], 3);
    assert_eq!(tree["max_depth"], 3);
    assert_eq!(tree["root"]["id"], root_id.as_str());
    let c = &tree["root"]["children"][&child_id];
    assert_eq!(c["comment"], "build agent");
    assert_eq!(c["ttl"], 20);
    assert_eq!(c["depth"], 2);
    assert!(c["expired_date"].as_str().unwrap().ends_with("UTC"));
    assert!(c["children"][&grandchild_id].is_object());
    let text = tree.to_string();
    for secret in [&root, &child, &grandchild] {
        assert!(!text.contains(secret.as_str()), "listing leaks a secret");
    }
    let sub = h.ok("uid-list-children", json!({"uid-token": child})).await;
    assert_eq!(sub["number_of_tokens"], 2);
    assert_eq!(sub["root"]["id"], child_id.as_str());

    // deny-inheritance and deny-rotate on a child.
    let (locked, _) = h
        .child(
            &root,
            json!({"child-deny-inheritance": true, "child-deny-rotate": "true"}),
        )
        .await;
    h.fails_with(
        "uid-create-child-token",
        json!({"uid-token": locked}),
        StatusCode::FORBIDDEN,
        "deny-inheritance",
    )
    .await;
    h.fails_with(
        "uid-rotate-token",
        json!({"uid-token": locked}),
        StatusCode::FORBIDDEN,
        "deny-rotate",
    )
    .await;
    assert_eq!(h.read("uid-token", &locked).await, StatusCode::OK);

    // An admin makes a child of a token it names by ID.
    let v = h
        .ok(
            "uid-create-child-token",
            json!({"token": h.admin, "auth-method-name": m.name, "uid-token-id": root_id, "child-ttl": 5}),
        )
        .await;
    let admin_child = h
        .state
        .store
        .get_uid_token(v["token_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(admin_child.parent_id.as_deref(), Some(root_id.as_str()));
    assert_eq!(admin_child.ttl_secs, 300);
    h.fails(
        "uid-create-child-token",
        json!({"token": h.admin, "auth-method-name": m.name}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    h.fails(
        "uid-create-child-token",
        json!({"token": h.admin, "auth-method-name": m.name, "uid-token-id": "uid-nope"}),
        StatusCode::NOT_FOUND,
    )
    .await;

    // Method-level flags apply to root tokens; a deny-rotate parent makes
    // deny-rotate children.
    let strict = h
        .method(
            "/strict",
            json!({"deny-rotate": true, "deny-inheritance": "false"}),
        )
        .await;
    let (sroot, _) = h.root(&strict).await;
    h.fails(
        "uid-rotate-token",
        json!({"uid-token": sroot}),
        StatusCode::FORBIDDEN,
    )
    .await;
    let (schild, _) = h.child(&sroot, json!({})).await;
    h.fails(
        "uid-rotate-token",
        json!({"uid-token": schild}),
        StatusCode::FORBIDDEN,
    )
    .await;
    let sealed = h.method("/sealed", json!({"deny-inheritance": true})).await;
    let (seroot, _) = h.root(&sealed).await;
    h.fails(
        "uid-create-child-token",
        json!({"uid-token": seroot}),
        StatusCode::FORBIDDEN,
    )
    .await;
    h.ok("uid-rotate-token", json!({"uid-token": seroot})).await;
    // A bad setting is a 400 at creation.
    h.fails(
        "create-auth-method-universal-identity",
        json!({"token": h.admin, "name": "/bad", "ttl": 100000}),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

#[tokio::test]
async fn revoke_self_and_revoke_all() {
    let h = Harness::new().await;
    let m = h.method("/rev", json!({})).await;
    let (root, root_id) = h.root(&m).await;
    let (child, child_id) = h.child(&root, json!({})).await;
    let (grandchild, grandchild_id) = h.child(&child, json!({})).await;
    let (sibling, sibling_id) = h.child(&root, json!({})).await;
    let child_session = h.session(&m, &child).await;
    let grandchild_session = h.session(&m, &grandchild).await;
    let root_session = h.session(&m, &root).await;
    // Cache the child's direct use too.
    assert_eq!(h.read("uid-token", &child).await, StatusCode::OK);
    assert_eq!(h.read("token", &child_session).await, StatusCode::OK);

    // A holder can revoke only itself and what is below it.
    h.fails_with(
        "uid-revoke-token",
        json!({"uid-token": grandchild, "revoke-token": child_id, "revoke-type": "revokeSelf"}),
        StatusCode::FORBIDDEN,
        "only itself",
    )
    .await;
    h.fails(
        "uid-revoke-token",
        json!({"uid-token": sibling, "revoke-token": child_id, "revoke-type": "revokeAll"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    h.fails(
        "uid-revoke-token",
        json!({"uid-token": root, "revoke-token": child_id, "revoke-type": "sometimes"}),
        StatusCode::BAD_REQUEST,
    )
    .await;

    // revokeSelf by the root holder: the child and its sessions stop at
    // once; the grandchild lives on.
    let v = h
        .ok(
            "uid-revoke-token",
            json!({"uid-token": root, "revoke-token": child_id, "revoke-type": "revokeSelf"}),
        )
        .await;
    assert_eq!(v["revoked"], json!([child_id]));
    assert_eq!(h.read("uid-token", &child).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.read("token", &child_session).await,
        StatusCode::UNAUTHORIZED
    );
    let (s, v) = h.login(&m, &child).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["error"].as_str().unwrap().contains("revoked"), "{v}");
    h.fails(
        "uid-rotate-token",
        json!({"uid-token": child}),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(h.read("uid-token", &grandchild).await, StatusCode::OK);
    assert_eq!(h.read("token", &grandchild_session).await, StatusCode::OK);
    let tree = h.ok("uid-list-children", json!({"uid-token": root})).await;
    assert_eq!(tree["root"]["children"][&child_id]["revoked"], true);

    // A non-admin API-key caller cannot revoke as an admin.
    let nobody = h.api_key_session("/ops").await;
    h.fails(
        "uid-revoke-token",
        json!({"token": nobody, "auth-method-name": m.name, "revoke-token": root_id, "revoke-type": "revokeAll"}),
        StatusCode::FORBIDDEN,
    )
    .await;

    // revokeAll by an admin: the whole tree, through the revoked child.
    let v = h
        .ok(
            "uid-revoke-token",
            json!({"token": h.admin, "auth-method-name": m.name, "revoke-token": root_id, "revoke-type": "revokeAll"}),
        )
        .await;
    let mut revoked: Vec<String> = serde_json::from_value(v["revoked"].clone()).unwrap();
    revoked.sort();
    let mut expected = vec![root_id.clone(), grandchild_id.clone(), sibling_id.clone()];
    expected.sort();
    assert_eq!(revoked, expected);
    for uid in [&root, &grandchild, &sibling] {
        assert_eq!(h.read("uid-token", uid).await, StatusCode::UNAUTHORIZED);
        assert_eq!(h.login(&m, uid).await.0, StatusCode::UNAUTHORIZED);
    }
    for session in [&root_session, &grandchild_session] {
        assert_eq!(h.read("token", session).await, StatusCode::UNAUTHORIZED);
    }
    // Revoking by secret works too, and an unknown secret is not echoed.
    let (fresh, fresh_id) = h.root(&m).await;
    let ghost = format!("u-{}", "ab".repeat(32));
    let msg = h
        .fails(
            "uid-revoke-token",
            json!({"token": h.admin, "auth-method-name": m.name, "revoke-token": ghost, "revoke-type": "revokeSelf"}),
            StatusCode::NOT_FOUND,
        )
        .await;
    assert!(!msg.contains(&ghost), "{msg}");
    let v = h
        .ok(
            "uid-revoke-token",
            json!({"uid-token": fresh, "revoke-token": fresh, "revoke-type": "revokeSelf"}),
        )
        .await;
    assert_eq!(v["revoked"], json!([fresh_id]));
    assert!(!v.to_string().contains(&fresh));
    assert_eq!(h.read("uid-token", &fresh).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn expired_tokens_do_nothing() {
    let h = Harness::new().await;
    let m = h.method("/exp", json!({})).await;
    let (uid, id) = h.root(&m).await;
    sqlx::query("UPDATE uid_tokens SET expires_ms = 1 WHERE token_id = ?")
        .bind(&id)
        .execute(&h.db().await)
        .await
        .unwrap();
    let (s, v) = h.login(&m, &uid).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(v["error"].as_str().unwrap().contains("expired"), "{v}");
    for (op, body) in [
        ("uid-rotate-token", json!({"uid-token": uid})),
        ("uid-create-child-token", json!({"uid-token": uid})),
        ("uid-list-children", json!({"uid-token": uid})),
        (
            "get-secret-value",
            json!({"uid-token": uid, "names": ["/uid/db"]}),
        ),
    ] {
        h.fails_with(op, body, StatusCode::UNAUTHORIZED, "expired")
            .await;
    }
    // An admin cannot hang children off it either.
    h.fails(
        "uid-create-child-token",
        json!({"token": h.admin, "auth-method-name": m.name, "uid-token-id": id}),
        StatusCode::CONFLICT,
    )
    .await;
}

#[tokio::test]
async fn session_tokens_never_outlive_their_uid_token() {
    let h = Harness::new().await;
    // Sessions of this method would last 10 hours; UID tokens 5 minutes.
    let m = h.method("/short", json!({"ttl": 5, "jwt-ttl": 600})).await;
    let (uid, id) = h.root(&m).await;
    let (s, v) = h.login(&m, &uid).await;
    assert_eq!(s, StatusCode::OK);
    let t = h.state.store.get_uid_token(&id).await.unwrap().unwrap();
    let expiry_secs = v["creds"]["expiry"].as_i64().unwrap();
    assert!(
        expiry_secs * 1000 <= t.expires_ms,
        "session expiry {expiry_secs} s is after the UID token's {} ms",
        t.expires_ms
    );
    assert!(expiry_secs * 1000 > now_ms() + 4 * 60_000);
    let session = v["token"].as_str().unwrap().to_owned();
    assert_eq!(h.read("token", &session).await, StatusCode::OK);
    // Revocation ends the session at once.
    h.ok(
        "uid-revoke-token",
        json!({"uid-token": uid, "revoke-token": id, "revoke-type": "revokeSelf"}),
    )
    .await;
    assert_eq!(h.read("token", &session).await, StatusCode::UNAUTHORIZED);
    // Deleting the method takes its UID tokens with it.
    let (uid2, id2) = h.root(&m).await;
    h.ok(
        "delete-auth-method",
        json!({"token": h.admin, "name": m.name}),
    )
    .await;
    assert!(h.state.store.get_uid_token(&id2).await.unwrap().is_none());
    assert_eq!(h.read("uid-token", &uid2).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn uid_token_as_the_token_of_any_operation() {
    let h = Harness::new().await;
    let m = h.method("/direct", json!({})).await;
    let (uid, id) = h.root(&m).await;
    // In the uid-token field, or in the token field.
    assert_eq!(h.read("uid-token", &uid).await, StatusCode::OK);
    assert_eq!(h.read("token", &uid).await, StatusCode::OK);
    // Only what the role grants.
    h.fails(
        "create-secret",
        json!({"uid-token": uid, "name": "/uid/new", "value": "x"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    h.fails_with(
        "revoke-token",
        json!({"uid-token": uid}),
        StatusCode::BAD_REQUEST,
        "uid-revoke-token",
    )
    .await;
    // The audit names the token's ID.
    let recs = h
        .audit_where(json!({"operation": "get-secret-value"}))
        .await;
    assert!(
        recs.iter()
            .any(|r| r["identity"] == id.as_str() && r["outcome"] == "allowed"),
        "{recs:?}"
    );
    // A malformed or unknown uid-token is a 401.
    for bad in ["u-short", &format!("u-{}", "f".repeat(64))] {
        assert_eq!(h.read("uid-token", bad).await, StatusCode::UNAUTHORIZED);
    }
    // Bound IPs apply to direct use too (the harness peer is 127.0.0.1).
    let fenced = h
        .method("/fenced", json!({"bound-ips": "10.0.0.0/8"}))
        .await;
    let (f, _) = h.root(&fenced).await;
    h.fails_with(
        "get-secret-value",
        json!({"uid-token": f, "names": ["/uid/db"]}),
        StatusCode::UNAUTHORIZED,
        "bound IPs",
    )
    .await;
    assert_eq!(h.login(&fenced, &f).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn no_secret_in_audit_records_or_error_messages() {
    let h = Harness::new().await;
    let m = h.method("/quiet", json!({})).await;
    let (root, root_id) = h.root(&m).await;
    let (child, _) = h.child(&root, json!({})).await;
    let rotated = h.ok("uid-rotate-token", json!({"uid-token": child})).await;
    let rotated = rotated["token"].as_str().unwrap().to_owned();
    let session = h.session(&m, &root).await;
    let mut errors = Vec::new();
    for (op, body) in [
        (
            "auth",
            json!({"access-id": m.access_id, "access-type": "universal_identity", "uid-token": child}),
        ),
        ("uid-rotate-token", json!({"uid-token": child})),
        ("uid-create-child-token", json!({"uid-token": child})),
        (
            "get-secret-value",
            json!({"uid-token": child, "names": ["/uid/db"]}),
        ),
        (
            "uid-revoke-token",
            json!({"uid-token": rotated, "revoke-token": root, "revoke-type": "revokeAll"}),
        ),
        (
            "uid-revoke-token",
            json!({"token": h.admin, "auth-method-name": m.name, "revoke-token": child, "revoke-type": "revokeAll"}),
        ),
    ] {
        let (s, v) = h.call(op, body).await;
        assert!(!s.is_success(), "{op}: {v}");
        errors.push(v.to_string());
    }
    h.ok(
        "uid-revoke-token",
        json!({"uid-token": root, "revoke-token": root_id, "revoke-type": "revokeAll"}),
    )
    .await;
    let recs = h.audit().await;
    let audit = serde_json::to_string(&recs).unwrap();
    assert!(audit.contains(&root_id), "the audit names tokens by ID");
    for secret in [&root, &child, &rotated, &session] {
        assert!(!audit.contains(secret.as_str()), "audit leaks a secret");
        for e in &errors {
            assert!(!e.contains(secret.as_str()), "error leaks a secret: {e}");
        }
    }
    assert!(
        recs.iter()
            .any(|r| r["operation"] == "uid-rotate-token" && r["outcome"] == "denied"),
        "failed UID operations are audited"
    );
}
