//! Changing auth methods, roles and associations in place (issue 13, item
//! 6): `auth-method-update-*`, `update-auth-method`, `reset-access-key`,
//! `update-role`, `update-assoc`, the aliases Terraform uses, duplicate
//! associations, and the delegation rules through every one of them.

mod common;

use axum::http::StatusCode;
use common::Harness;
use serde_json::{Value, json};

const JWKS: &str = "http://127.0.0.1:9/jwks";

/// An API-key method `name`; returns (access ID, access key).
async fn api_key(h: &Harness, name: &str, extra: Value) -> (String, String) {
    let mut body = json!({"name": name});
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let v = h.admin_ok("create-auth-method", body).await;
    (
        v["access_id"].as_str().unwrap().to_owned(),
        v["access_key"].as_str().unwrap().to_owned(),
    )
}

async fn login(h: &Harness, id: &str, key: &str) -> (StatusCode, Value) {
    h.call("auth", json!({"access-id": id, "access-key": key}))
        .await
}

async fn get_am(h: &Harness, name: &str) -> Value {
    h.admin_ok("auth-method-get", json!({"name": name})).await
}

#[tokio::test]
async fn auth_method_update_semantics() {
    let h = Harness::new().await;
    let (id, key) = api_key(
        &h,
        "/upd/am",
        json!({"jwt-ttl": 30, "description": "first", "bound-ips": ["127.0.0.0/8"]}),
    )
    .await;
    let (s, v) = login(&h, &id, &key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let token = v["token"].as_str().unwrap().to_owned();

    // Absent options keep their value; given ones replace it.
    let v = h
        .admin_ok(
            "auth-method-update-api-key",
            json!({"name": "/upd/am", "jwt-ttl": 15}),
        )
        .await;
    assert_eq!(v, json!({"name": "/upd/am"}));
    let got = get_am(&h, "/upd/am").await;
    assert_eq!(got["access_info"]["jwt_ttl"], 15);
    assert_eq!(got["description"], "first");
    assert_eq!(got["access_info"]["cidr_whitelist"], "127.0.0.0/8");
    assert_eq!(got["auth_method_access_id"], id.as_str());

    // Bound IPs take effect at once, for logins and for existing tokens.
    h.admin_ok(
        "update-auth-method",
        json!({"name": "/upd/am", "bound-ips": ["10.9.0.0/16"]}),
    )
    .await;
    h.fails(
        "list-items",
        json!({"token": token}),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    assert_eq!(login(&h, &id, &key).await.0, StatusCode::UNAUTHORIZED);
    // Access expiry in the past: same.
    h.admin_ok(
        "update-auth-method",
        json!({"name": "/upd/am", "bound-ips": [], "access-expires": 1}),
    )
    .await;
    assert_eq!(login(&h, &id, &key).await.0, StatusCode::UNAUTHORIZED);
    h.admin_ok(
        "update-auth-method",
        json!({"name": "/upd/am", "access-expires": 0}),
    )
    .await;
    let (s, _) = h.call("list-items", json!({"token": token})).await;
    assert_eq!(s, StatusCode::OK, "back in use once unbound");

    // Rename: same access ID, key, token; the old name is gone.
    let v = h
        .admin_ok(
            "auth-method-update-api-key",
            json!({"name": "/upd/am", "new-name": "upd/renamed", "description": "second"}),
        )
        .await;
    assert_eq!(v["name"], "/upd/renamed");
    h.fails(
        "auth-method-get",
        json!({"token": h.admin, "name": "/upd/am"}),
        StatusCode::NOT_FOUND,
    )
    .await;
    let got = get_am(&h, "/upd/renamed").await;
    assert_eq!(got["auth_method_access_id"], id.as_str());
    assert_eq!(got["description"], "second");
    let (s, v) = h.call("list-items", json!({"token": token})).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a token survives its method's rename: {v}"
    );
    assert_eq!(login(&h, &id, &key).await.0, StatusCode::OK);

    // Refusals change nothing.
    let before = get_am(&h, "/upd/renamed").await;
    for (body, needle) in [
        (
            json!({"name": "/upd/renamed", "jwt-ttl": -1}),
            "jwt-ttl is the token lifetime",
        ),
        (
            json!({"name": "/upd/renamed", "bound-ips": ["nonsense"]}),
            "bound-ips",
        ),
        (
            json!({"name": "/upd/renamed", "audit-logs-claims": ["sub"], "description": "x"}),
            "audit-logs-claims is not supported",
        ),
        (
            json!({"name": "/upd/renamed", "gw-bound-ips": ["10.0.0.0/8"]}),
            "gw-bound-ips is not supported",
        ),
        (
            json!({"name": "/upd/renamed", "product-type": ["sm"]}),
            "product-type is not supported",
        ),
        (
            json!({"name": "/upd/renamed", "delete_protection": "true"}),
            "delete_protection is not supported",
        ),
        (
            json!({"name": "/upd/renamed", "access-expires": -5}),
            "access-expires",
        ),
    ] {
        let mut body = body;
        body["token"] = json!(h.admin);
        h.fails_with(
            "auth-method-update-api-key",
            body,
            StatusCode::BAD_REQUEST,
            needle,
        )
        .await;
    }
    // The wrong type's operation names the right one.
    h.fails_with(
        "auth-method-update-k8s",
        json!({"token": h.admin, "name": "/upd/renamed", "k8s-host": "https://127.0.0.1:6443"}),
        StatusCode::BAD_REQUEST,
        "auth-method-update-api-key",
    )
    .await;
    h.fails(
        "auth-method-update-api-key",
        json!({"token": h.admin, "name": "/upd/none"}),
        StatusCode::NOT_FOUND,
    )
    .await;
    // Renaming onto a taken name is a conflict.
    api_key(&h, "/upd/other", json!({})).await;
    h.fails_with(
        "update-auth-method",
        json!({"token": h.admin, "name": "/upd/renamed", "new-name": "/upd/other"}),
        StatusCode::CONFLICT,
        "already exists",
    )
    .await;
    let after = get_am(&h, "/upd/renamed").await;
    assert_eq!(before, after, "refused updates changed nothing");

    // A shortened jwt-ttl applies to tokens issued before: a token issued
    // two minutes ago outlives a new 1-minute TTL.
    let (s, _) = h.call("list-items", json!({"token": token})).await;
    assert_eq!(s, StatusCode::OK);
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", h.dir.join("coffer.db").display()))
        .await
        .unwrap();
    sqlx::query("UPDATE tokens SET issued_ms = issued_ms - 120000 WHERE access_id = ?")
        .bind(&id)
        .execute(&db)
        .await
        .unwrap();
    h.admin_ok(
        "update-auth-method",
        json!({"name": "/upd/renamed", "jwt-ttl": 1}),
    )
    .await;
    h.fails_with(
        "list-items",
        json!({"token": token}),
        StatusCode::UNAUTHORIZED,
        "jwt-ttl",
    )
    .await;
    // A fresh login gets a working token again.
    let (s, v) = login(&h, &id, &key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let fresh = v["token"].as_str().unwrap().to_owned();
    let (s, _) = h.call("list-items", json!({"token": fresh})).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn typed_updates_replace_the_type_settings() {
    let h = Harness::new().await;
    let created = h
        .admin_ok(
            "auth-method-create-oauth2",
            json!({"name": "/upd/jwt", "jwks-uri": JWKS, "unique-identifier": "sub",
                   "audience": "coffer", "issuer": "https://issuer.example", "jwt-ttl": 10,
                   "lease-tied-to-token": true}),
        )
        .await;
    let id = created["access_id"].as_str().unwrap().to_owned();
    h.admin_ok(
        "auth-method-update-oauth2",
        json!({"name": "/upd/jwt", "jwks-uri": JWKS, "unique-identifier": "email",
               "audience": "other", "issuer": "https://issuer2.example"}),
    )
    .await;
    let got = get_am(&h, "/upd/jwt").await;
    let rules = &got["access_info"]["oauth2_access_rules"];
    assert_eq!(rules["audience"], "other");
    assert_eq!(rules["unique_identifier"], "email");
    assert_eq!(rules["issuer"], "https://issuer2.example");
    assert_eq!(got["access_info"]["jwt_ttl"], 10, "common options kept");
    assert_eq!(got["auth_method_access_id"], id.as_str());
    let stored = h
        .state
        .store
        .get_auth_method("/upd/jwt")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.config["lease_tied_to_token"],
        json!(true),
        "Coffer's own option is kept by a typed update: {}",
        stored.config
    );
    // The legacy name is the same operation, validated as create is: the
    // type's settings are the full desired state (no JWKS here).
    h.fails(
        "update-auth-method-oauth2",
        json!({"token": h.admin, "name": "/upd/jwt", "unique-identifier": "sub"}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    // Options of the type Coffer does not implement are refused.
    h.fails_with(
        "auth-method-update-oauth2",
        json!({"token": h.admin, "name": "/upd/jwt", "jwks-uri": JWKS, "unique-identifier": "sub",
               "audience": "other", "gateway-url": "https://gw.example"}),
        StatusCode::BAD_REQUEST,
        "gateway-url is not supported",
    )
    .await;
    // The generic update keeps the type's settings.
    h.admin_ok(
        "update-auth-method",
        json!({"name": "/upd/jwt", "description": "generic"}),
    )
    .await;
    let got = get_am(&h, "/upd/jwt").await;
    assert_eq!(
        got["access_info"]["oauth2_access_rules"]["audience"],
        "other"
    );
    assert_eq!(got["description"], "generic");
    // reset-access-key only for API keys.
    h.fails_with(
        "reset-access-key",
        json!({"token": h.admin, "name": "/upd/jwt"}),
        StatusCode::BAD_REQUEST,
        "only API-key methods",
    )
    .await;
}

#[tokio::test]
async fn reset_access_key_replaces_the_key_at_once() {
    let h = Harness::new().await;
    let (id, old_key) = api_key(&h, "/upd/rk", json!({})).await;
    let (s, v) = login(&h, &id, &old_key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let v = h
        .admin_ok("reset-access-key", json!({"name": "/upd/rk"}))
        .await;
    let obj = v.as_object().unwrap();
    assert_eq!(obj.len(), 1, "only the new key: {v}");
    let new_key = v["access_key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, old_key);
    assert_eq!(
        login(&h, &id, &old_key).await.0,
        StatusCode::UNAUTHORIZED,
        "the old key stops working at once"
    );
    let (s, v) = login(&h, &id, &new_key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        get_am(&h, "/upd/rk").await["auth_method_access_id"],
        id.as_str()
    );
    // Audited, without the key.
    let recs = h
        .audit_where(json!({"operation": "reset-access-key"}))
        .await;
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["object"], "/upd/rk");
    assert!(!recs[0].to_string().contains(&new_key));
    h.fails(
        "reset-access-key",
        json!({"token": h.admin, "name": "/upd/none"}),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn update_role_and_create_role_name() {
    let h = Harness::new().await;
    let v = h
        .admin_ok(
            "create-role",
            json!({"name": "upd//role", "description": "d1"}),
        )
        .await;
    assert_eq!(v, json!({"name": "/upd/role"}), "the name as stored");
    h.admin_ok(
        "set-role-rule",
        json!({"role-name": "/upd/role", "path": "/upd/*", "capability": ["read"], "rule-type": "item-rule"}),
    )
    .await;
    let (am_id, am_key) = api_key(&h, "/upd/role-am", json!({})).await;
    let assoc = h
        .admin_ok(
            "assoc-role-am",
            json!({"role-name": "/upd/role", "am-name": "/upd/role-am"}),
        )
        .await["assoc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The SDK's defaults mean "unchanged".
    let v = h
        .admin_ok(
            "update-role",
            json!({"name": "/upd/role", "description": "default_comment", "new-comment": "default_comment"}),
        )
        .await;
    assert_eq!(v, json!({"updated": true}));
    let got = h.admin_ok("get-role", json!({"name": "/upd/role"})).await;
    assert_eq!(got["description"], "d1");
    h.admin_ok(
        "update-role",
        json!({"name": "/upd/role", "new-comment": "d2", "audit-access": "own"}),
    )
    .await;
    let got = h.admin_ok("get-role", json!({"name": "/upd/role"})).await;
    assert_eq!(got["description"], "d2");
    assert_eq!(got["audit_access"], "own");
    // Refusals: values outside the documented set list it; documented but
    // unimplemented values are refused; "none" passes. Nothing changes.
    for (body, needle) in [
        (
            json!({"name": "/upd/role", "analytics-access": "bogus"}),
            "analytics-access must be one of none, own, all",
        ),
        (
            json!({"name": "/upd/role", "usage-reports-access": "all"}),
            "usage-reports-access is not supported",
        ),
        (
            json!({"name": "/upd/role", "unlock-secrets": "scoped"}),
            "unlock-secrets is not supported",
        ),
        (
            json!({"name": "/upd/role", "audit-access": "everything"}),
            "audit-access must be",
        ),
    ] {
        let mut body = body;
        body["token"] = json!(h.admin);
        body["new-name"] = json!("/upd/never");
        h.fails_with("update-role", body, StatusCode::BAD_REQUEST, needle)
            .await;
    }
    h.admin_ok(
        "update-role",
        json!({"name": "/upd/role", "event-forwarder-access": "none", "isi-access": ""}),
    )
    .await;
    // Rename keeps rules and associations; the method's token keeps the role.
    h.admin_ok(
        "update-role",
        json!({"name": "/upd/role", "new-name": "/upd/role2"}),
    )
    .await;
    h.fails(
        "get-role",
        json!({"token": h.admin, "name": "/upd/role"}),
        StatusCode::NOT_FOUND,
    )
    .await;
    let got = h.admin_ok("get-role", json!({"name": "/upd/role2"})).await;
    assert_eq!(got["description"], "d2");
    assert_eq!(got["rules"]["path_rules"][0]["path"], "/upd/*");
    assert_eq!(
        got["role_auth_methods_assoc"][0]["assoc_id"],
        assoc.as_str()
    );
    let token = h.login_key(&am_id, &am_key).await;
    h.admin_ok("create-secret", json!({"name": "/upd/s", "value": "v"}))
        .await;
    let (s, v) = h
        .call(
            "get-secret-value",
            json!({"token": token, "names": ["/upd/s"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Renaming onto a taken name.
    h.admin_ok("create-role", json!({"name": "/upd/taken"}))
        .await;
    h.fails_with(
        "update-role",
        json!({"token": h.admin, "name": "/upd/role2", "new-name": "/upd/taken"}),
        StatusCode::CONFLICT,
        "already exists",
    )
    .await;
    h.fails(
        "update-role",
        json!({"token": h.admin, "name": "/upd/none"}),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn update_assoc_and_duplicates() {
    let h = Harness::new().await;
    h.admin_ok("create-role", json!({"name": "/upd/r"})).await;
    api_key(&h, "/upd/a", json!({})).await;
    let first = h
        .admin_ok(
            "assoc-role-am",
            json!({"role-name": "/upd/r", "am-name": "/upd/a", "sub-claims": {"team": "a"}}),
        )
        .await["assoc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The same association again: 409 naming the existing one.
    let msg = h
        .fails(
            "assoc-role-am",
            json!({"token": h.admin, "role-name": "/upd/r", "am-name": "/upd/a", "sub-claims": {"team": ["a"]}}),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains(&first), "{msg}");
    // The order of values does not make it another association.
    api_key(&h, "/upd/b", json!({})).await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "/upd/r", "am-name": "/upd/b", "sub-claims": {"team": "x,y"}}),
    )
    .await;
    h.fails(
        "assoc-role-am",
        json!({"token": h.admin, "role-name": "/upd/r", "am-name": "/upd/b", "sub-claims": {"team": ["y", "x"]}}),
        StatusCode::CONFLICT,
    )
    .await;
    // Another case flag is another association.
    let second = h
        .admin_ok(
            "assoc-role-am",
            json!({"role-name": "/upd/r", "am-name": "/upd/a", "sub-claims": {"team": "a"}, "case-sensitive": "false"}),
        )
        .await["assoc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // update-assoc: CLI strings, objects with lists; case flag default true.
    let v = h
        .admin_ok(
            "update-assoc",
            json!({"assoc-id": second, "sub-claims": ["team=b,c", "env=prod"], "case-sensitive": "false"}),
        )
        .await;
    assert_eq!(v, json!({}));
    let role = h.admin_ok("get-role", json!({"name": "/upd/r"})).await;
    let a = role["role_auth_methods_assoc"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["assoc_id"] == second.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        a["auth_method_sub_claims"],
        json!({"env": ["prod"], "team": ["b", "c"]})
    );
    assert_eq!(a["sub_claims_case_sensitive"], false);
    h.admin_ok(
        "update-assoc",
        json!({"assoc-id": second, "sub-claims": {"team": ["d"]}}),
    )
    .await;
    let role = h.admin_ok("get-role", json!({"name": "/upd/r"})).await;
    let a = role["role_auth_methods_assoc"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["assoc_id"] == second.as_str())
        .unwrap()
        .clone();
    assert_eq!(a["auth_method_sub_claims"], json!({"team": ["d"]}));
    assert_eq!(a["sub_claims_case_sensitive"], true);
    // Updating into a copy of another association: 409, unchanged.
    let msg = h
        .fails(
            "update-assoc",
            json!({"token": h.admin, "assoc-id": second, "sub-claims": {"team": "a"}}),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(msg.contains(&first), "{msg}");
    // Bad input changes nothing; unknown IDs are 404 for the admin.
    h.fails(
        "update-assoc",
        json!({"token": h.admin, "assoc-id": second, "sub-claims": {"team": {"x": 1}}}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    h.fails(
        "update-assoc",
        json!({"token": h.admin, "assoc-id": "rac-none"}),
        StatusCode::NOT_FOUND,
    )
    .await;
    let role = h.admin_ok("get-role", json!({"name": "/upd/r"})).await;
    assert!(
        role["role_auth_methods_assoc"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["assoc_id"] == second.as_str()
                && a["auth_method_sub_claims"] == json!({"team": ["d"]}))
    );
    // force-sub-claims: an association of such a method keeps sub-claims.
    let jwt = h
        .admin_ok(
            "create-auth-method-oauth2",
            json!({"name": "/upd/j", "jwks-uri": JWKS, "unique-identifier": "sub", "audience": "coffer"}),
        )
        .await;
    assert!(jwt["access_id"].is_string());
    let ja = h
        .admin_ok(
            "assoc-role-am",
            json!({"role-name": "/upd/r", "am-name": "/upd/j", "sub-claims": {"sub": "x"}}),
        )
        .await["assoc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    h.fails_with(
        "update-assoc",
        json!({"token": h.admin, "assoc-id": ja, "sub-claims": {}}),
        StatusCode::BAD_REQUEST,
        "force-sub-claims",
    )
    .await;
    // Turning force-sub-claims on is refused while an association without
    // sub-claims would keep granting its role to every token; narrowing it
    // first lets the update through.
    h.admin_ok(
        "create-auth-method-oauth2",
        json!({"name": "/upd/j2", "jwks-uri": JWKS, "unique-identifier": "sub", "audience": "coffer", "force-sub-claims": false}),
    )
    .await;
    let open = h
        .admin_ok(
            "assoc-role-am",
            json!({"role-name": "/upd/r", "am-name": "/upd/j2"}),
        )
        .await["assoc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let msg = h
        .fails(
            "update-auth-method",
            json!({"token": h.admin, "name": "/upd/j2", "force-sub-claims": true}),
            StatusCode::CONFLICT,
        )
        .await;
    assert!(
        msg.contains("force-sub-claims") && msg.contains(&open),
        "{msg}"
    );
    let m = h
        .admin_ok("get-auth-method", json!({"name": "/upd/j2"}))
        .await;
    assert_eq!(m["access_info"]["force_sub_claims"], false, "{m}");
    h.admin_ok(
        "update-assoc",
        json!({"assoc-id": open, "sub-claims": {"sub": "x"}}),
    )
    .await;
    h.admin_ok(
        "update-auth-method",
        json!({"name": "/upd/j2", "force-sub-claims": true}),
    )
    .await;
    // Auth-method and role operations refuse a setting they do not take:
    // a misspelt bound-… must not silently admit more than meant.
    let msg = h
        .fails(
            "create-auth-method-oauth2",
            json!({"token": h.admin, "name": "/upd/typo", "jwks-uri": JWKS, "unique-identifier": "sub", "audience": "coffer", "bound-client-id": "x"}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(msg.contains("bound-client-id"), "{msg}");
    h.fails(
        "get-auth-method",
        json!({"token": h.admin, "name": "/upd/typo"}),
        StatusCode::NOT_FOUND,
    )
    .await;
    let msg = h
        .fails(
            "update-role",
            json!({"token": h.admin, "name": "/upd/r", "audit-acess": "all"}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(msg.contains("audit-acess"), "{msg}");
    // What the SDKs send by default is not a setting.
    h.admin_ok(
        "update-role",
        json!({"name": "/upd/r", "new-comment": "default_comment", "json": false}),
    )
    .await;
    // revoke-creds is revoke-token: the caller's own token ends.
    let (id, key) = api_key(&h, "/upd/rc", json!({})).await;
    let token = h.login_key(&id, &key).await;
    let (s, v) = h.call("revoke-creds", json!({"token": token})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    h.fails(
        "list-items",
        json!({"token": token}),
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // auth-method-list / auth-method-delete are the old operations.
    let list = h.admin_ok("auth-method-list", json!({})).await;
    assert!(
        list["auth_methods"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["auth_method_name"] == "/upd/rc")
    );
    let v = h
        .admin_ok("auth-method-delete", json!({"name": "/upd/rc"}))
        .await;
    assert_eq!(v, json!({"name": "/upd/rc"}));
}

/// A delegated manager (roles and auth methods under /team/, no audit
/// access) cannot escalate through any update.
#[tokio::test]
async fn updates_cannot_escalate() {
    let h = Harness::new().await;
    let (_, mgr) = h
        .identity(
            "/mgr",
            "/mgr-role",
            "none",
            &[
                (
                    "role-rule",
                    "/team/*",
                    &["read", "list", "create", "update"],
                ),
                (
                    "auth-method-rule",
                    "/team/*",
                    &["read", "list", "create", "update"],
                ),
                ("item-rule", "/team/*", &["read", "list"]),
            ],
        )
        .await;
    // A role under /team/ holding more than the manager, and one within.
    h.admin_ok("create-role", json!({"name": "/team/big"}))
        .await;
    h.admin_ok(
        "set-role-rule",
        json!({"role-name": "/team/big", "path": "/secret/*", "capability": ["read"], "rule-type": "item-rule"}),
    )
    .await;
    h.admin_ok("create-role", json!({"name": "/team/small"}))
        .await;
    h.admin_ok(
        "set-role-rule",
        json!({"role-name": "/team/small", "path": "/team/*", "capability": ["read"], "rule-type": "item-rule"}),
    )
    .await;
    let (big_am_id, _) = api_key(&h, "/team/big-am", json!({})).await;
    let big_assoc = h
        .admin_ok(
            "assoc-role-am",
            json!({"role-name": "/team/big", "am-name": "/team/big-am"}),
        )
        .await["assoc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    api_key(&h, "/team/small-am", json!({})).await;
    let small_assoc = h
        .admin_ok(
            "assoc-role-am",
            json!({"role-name": "/team/small", "am-name": "/team/small-am", "sub-claims": {"x": "1"}}),
        )
        .await["assoc_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before_big = h.admin_ok("get-role", json!({"name": "/team/big"})).await;
    let before_am = get_am(&h, "/team/big-am").await;

    let denied = |op: &'static str, body: Value| {
        let mut body = body;
        body["token"] = json!(mgr);
        let h = &h;
        async move {
            let (s, v) = h.call(op, body.clone()).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{op} {body} -> {v}");
        }
    };
    // update-role: renaming or touching a role above the caller.
    denied(
        "update-role",
        json!({"name": "/team/big", "new-name": "/team/mine"}),
    )
    .await;
    denied(
        "update-role",
        json!({"name": "/team/big", "description": "x"}),
    )
    .await;
    // ... raising audit access above its own.
    denied(
        "update-role",
        json!({"name": "/team/small", "audit-access": "all"}),
    )
    .await;
    // ... renaming into a name it may not create.
    denied(
        "update-role",
        json!({"name": "/team/small", "new-name": "/admin-ish"}),
    )
    .await;
    // update-assoc: widening who gets a role above the caller.
    denied(
        "update-assoc",
        json!({"assoc-id": big_assoc, "sub-claims": {"any": "*"}}),
    )
    .await;
    // update-auth-method / reset-access-key: a method carrying a role
    // above the caller (a new key or new bound settings would hand it out).
    denied(
        "update-auth-method",
        json!({"name": "/team/big-am", "bound-ips": []}),
    )
    .await;
    denied(
        "auth-method-update-api-key",
        json!({"name": "/team/big-am", "access-expires": 0}),
    )
    .await;
    denied("reset-access-key", json!({"name": "/team/big-am"})).await;
    denied(
        "update-auth-method",
        json!({"name": "/team/small-am", "new-name": "/elsewhere"}),
    )
    .await;
    // Methods and roles outside its scope.
    denied(
        "update-auth-method",
        json!({"name": "/admin", "description": "mine"}),
    )
    .await;
    denied("reset-access-key", json!({"name": "/admin"})).await;
    denied(
        "update-role",
        json!({"name": "/admin", "new-name": "/team/admin"}),
    )
    .await;
    // Nothing changed.
    assert_eq!(
        h.admin_ok("get-role", json!({"name": "/team/big"})).await,
        before_big
    );
    let after_am = get_am(&h, "/team/big-am").await;
    assert_eq!(after_am, before_am);
    assert_eq!(after_am["auth_method_access_id"], big_am_id.as_str());
    // Within its rights, the manager may.
    let (s, v) = h
        .call(
            "update-role",
            json!({"token": mgr, "name": "/team/small", "new-name": "/team/small2", "description": "ok"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = h
        .call(
            "update-assoc",
            json!({"token": mgr, "assoc-id": small_assoc, "sub-claims": {"x": "2"}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = h
        .call(
            "reset-access-key",
            json!({"token": mgr, "name": "/team/small-am"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = h
        .call(
            "auth-method-update-api-key",
            json!({"token": mgr, "name": "/team/small-am", "new-name": "/team/small-am2"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}
