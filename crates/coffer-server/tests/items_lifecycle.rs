//! update-item, get-tags, delete-items, soft deletion (delete-item with
//! delete-in-days), restore-item and the purge job, in process.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use common::Harness;
use serde_json::{Value, json};

const DAY_MS: i64 = 86_400_000;

async fn secret(h: &Harness, name: &str, value: &str) {
    h.admin_ok("create-secret", json!({"name": name, "value": value}))
        .await;
}

async fn value(h: &Harness, name: &str) -> (StatusCode, Value) {
    h.call(
        "get-secret-value",
        json!({"token": h.admin, "names": [name]}),
    )
    .await
}

async fn describe(h: &Harness, name: &str) -> Value {
    h.admin_ok("describe-item", json!({"name": name})).await
}

/// Allowed audit records of `operation` on `object`.
async fn records(h: &Harness, operation: &str, object: &str) -> usize {
    h.audit()
        .await
        .iter()
        .filter(|r| {
            r["operation"] == operation && r["object"] == object && r["outcome"] == "allowed"
        })
        .count()
}

#[tokio::test]
async fn update_item_description_tags_and_max_versions() {
    let h = Harness::new().await;
    h.admin_ok(
        "create-secret",
        json!({"name": "/app/db", "value": "v1", "description": "first", "tags": ["a", "b"]}),
    )
    .await;
    // The SDK's placeholder leaves the description alone; tags are added
    // and removed in one call.
    let out = h
        .admin_ok(
            "update-item",
            json!({"name": "/app/db", "description": "default_metadata",
                   "new-metadata": "default_metadata", "add-tag": ["c", "a"], "rm-tag": ["b"]}),
        )
        .await;
    assert_eq!(out, json!({"updated": true}));
    let d = describe(&h, "/app/db").await;
    assert_eq!(d["item_metadata"], "first");
    assert_eq!(d["item_tags"], json!(["a", "c"]));
    let tags = h.admin_ok("get-tags", json!({"name": "/app/db"})).await;
    assert_eq!(tags, json!(["a", "c"]), "get-tags is a top-level array");
    // description, else the deprecated new-metadata.
    h.admin_ok(
        "update-item",
        json!({"name": "/app/db", "new-metadata": "via new-metadata"}),
    )
    .await;
    assert_eq!(
        describe(&h, "/app/db").await["item_metadata"],
        "via new-metadata"
    );
    h.admin_ok(
        "update-item",
        json!({"name": "/app/db", "description": "second", "new-metadata": "ignored"}),
    )
    .await;
    assert_eq!(describe(&h, "/app/db").await["item_metadata"], "second");
    // max-versions lowered keeps the newest versions.
    for v in ["v2", "v3", "v4"] {
        h.admin_ok("update-secret-val", json!({"name": "/app/db", "value": v}))
            .await;
    }
    h.admin_ok(
        "update-item",
        json!({"name": "/app/db", "max-versions": "2"}),
    )
    .await;
    let d = h
        .admin_ok(
            "describe-item",
            json!({"name": "/app/db", "show-versions": true}),
        )
        .await;
    let versions: Vec<i64> = d["item_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![3, 4]);
    assert_eq!(d["max_versions"], 2);
    // Refusals change nothing.
    let before = describe(&h, "/app/db").await;
    h.fails_with(
        "update-item",
        json!({"token": h.admin, "name": "/app/db", "secure-access-enable": "true", "description": "x"}),
        StatusCode::BAD_REQUEST,
        "secure-access-enable is not supported by Coffer",
    )
    .await;
    h.fails_with(
        "update-item",
        json!({"token": h.admin, "name": "/app/db", "lock-on-read": "true"}),
        StatusCode::BAD_REQUEST,
        "lock-on-read",
    )
    .await;
    h.fails_with(
        "update-item",
        json!({"token": h.admin, "name": "/app/db", "max-versions": "5000", "description": "x"}),
        StatusCode::BAD_REQUEST,
        "max-versions",
    )
    .await;
    let many: Vec<String> = (0..49).map(|i| format!("t{i}")).collect();
    h.fails_with(
        "update-item",
        json!({"token": h.admin, "name": "/app/db", "add-tag": many}),
        StatusCode::CONFLICT,
        "at most 50",
    )
    .await;
    h.fails_with(
        "update-item",
        json!({"token": h.admin, "name": "/app/none", "description": "x"}),
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    assert_eq!(describe(&h, "/app/db").await, before);
    // Works for other item types too (a key: max-versions refused).
    h.admin_ok(
        "create-classic-key",
        json!({"name": "/keys/k", "alg": "AES256GCM"}),
    )
    .await;
    h.admin_ok(
        "update-item",
        json!({"name": "/keys/k", "description": "a key", "add-tag": ["crypto"]}),
    )
    .await;
    let d = describe(&h, "/keys/k").await;
    assert_eq!(
        (d["item_metadata"].clone(), d["item_tags"].clone()),
        (json!("a key"), json!(["crypto"]))
    );
    h.fails_with(
        "update-item",
        json!({"token": h.admin, "name": "/keys/k", "max-versions": "3"}),
        StatusCode::BAD_REQUEST,
        "keys keep every version",
    )
    .await;
}

#[tokio::test]
async fn update_item_rename_and_its_permissions() {
    let h = Harness::new().await;
    secret(&h, "/secret/x", "classified").await;
    secret(&h, "/public/taken", "t").await;
    // The same name (Terraform sends new-name = name) is no rename.
    h.admin_ok(
        "update-item",
        json!({"name": "/secret/x", "new-name": "/secret/x", "description": "d"}),
    )
    .await;
    // May update /secret but not read it, may create under /public.
    let (_, mover) = h
        .identity(
            "/mover",
            "mover",
            "none",
            &[
                ("item-rule", "/secret/*", &["update", "delete", "list"]),
                (
                    "item-rule",
                    "/public/*",
                    &["create", "read", "update", "delete"],
                ),
            ],
        )
        .await;
    h.fails_with(
        "update-item",
        json!({"token": mover, "name": "/secret/x", "new-name": "/public/x"}),
        StatusCode::FORBIDDEN,
        "access denied",
    )
    .await;
    // The description alone needs only update.
    h.ok(
        "update-item",
        json!({"token": mover, "name": "/secret/x", "description": "moved? no"}),
    )
    .await;
    // Read on the source but no create on the target: refused too.
    let (_, reader) = h
        .identity(
            "/reader",
            "reader",
            "none",
            &[
                ("item-rule", "/secret/*", &["read", "update", "delete"]),
                ("item-rule", "/public/*", &["read"]),
            ],
        )
        .await;
    h.fails_with(
        "update-item",
        json!({"token": reader, "name": "/secret/x", "new-name": "/public/x"}),
        StatusCode::FORBIDDEN,
        "create",
    )
    .await;
    assert_eq!(value(&h, "/secret/x").await.0, StatusCode::OK);
    assert_eq!(value(&h, "/public/x").await.0, StatusCode::NOT_FOUND);
    // Onto a taken name: refused, both intact.
    h.fails_with(
        "update-item",
        json!({"token": h.admin, "name": "/secret/x", "new-name": "/public/taken"}),
        StatusCode::CONFLICT,
        "already exists",
    )
    .await;
    // Rename with every right: the value (sealed for the item's ID) reads
    // under the new name, the old one is gone, one record.
    let id = describe(&h, "/secret/x").await["item_id"].clone();
    h.admin_ok(
        "update-item",
        json!({"name": "/secret/x", "new-name": "/public/x"}),
    )
    .await;
    let (s, v) = value(&h, "/public/x").await;
    assert_eq!(
        (s, v["/public/x"].clone()),
        (StatusCode::OK, json!("classified"))
    );
    assert_eq!(value(&h, "/secret/x").await.0, StatusCode::NOT_FOUND);
    assert_eq!(describe(&h, "/public/x").await["item_id"], id);
    assert_eq!(records(&h, "update-item", "/secret/x").await, 3);
}

#[tokio::test]
async fn soft_delete_restore_and_purge() {
    let h = Harness::new().await;
    secret(&h, "/app/a", "alpha").await;
    // The Python SDK's defaults: 7 days, not immediately.
    let out = h
        .admin_ok(
            "delete-item",
            json!({"name": "/app/a", "delete-in-days": 7, "delete-immediately": false, "version": -1}),
        )
        .await;
    assert_eq!(out["version_deleted"], -1);
    let date = out["deletion_date"].as_str().unwrap().to_owned();
    // Not readable, saying why and how to restore.
    let (s, v) = value(&h, "/app/a").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("pending deletion") && msg.contains("restore-item"),
        "{msg}"
    );
    // describe-item shows the state and the date.
    let d = describe(&h, "/app/a").await;
    assert_eq!(d["item_state"], "PendingDeletion");
    assert_eq!(d["deletion_date"], date.as_str());
    // Not listed; the name is taken; no update.
    let l = h.admin_ok("list-items", json!({"path": "/app"})).await;
    assert!(l["items"].as_array().is_none_or(|i| i.is_empty()), "{l}");
    // Coffer's own filter lists exactly the items pending deletion.
    let l = h
        .admin_ok(
            "list-items",
            json!({"path": "/app", "pending-deletion": true}),
        )
        .await;
    assert_eq!(l["items"][0]["item_name"], "/app/a", "{l}");
    assert_eq!(l["items"][0]["item_state"], "PendingDeletion", "{l}");
    h.fails_with(
        "create-secret",
        json!({"token": h.admin, "name": "/app/a", "value": "new"}),
        StatusCode::CONFLICT,
        "cannot be reused until it is purged",
    )
    .await;
    h.fails_with(
        "update-secret-val",
        json!({"token": h.admin, "name": "/app/a", "value": "new"}),
        StatusCode::NOT_FOUND,
        "pending deletion",
    )
    .await;
    h.fails_with(
        "delete-item",
        json!({"token": h.admin, "name": "/app/a"}),
        StatusCode::CONFLICT,
        "pending deletion already",
    )
    .await;
    // Restore: readable again, listed again.
    h.admin_ok("restore-item", json!({"name": "/app/a"})).await;
    let (s, v) = value(&h, "/app/a").await;
    assert_eq!((s, v["/app/a"].clone()), (StatusCode::OK, json!("alpha")));
    assert_eq!(describe(&h, "/app/a").await["item_state"], "Enabled");
    h.fails_with(
        "restore-item",
        json!({"token": h.admin, "name": "/app/a"}),
        StatusCode::BAD_REQUEST,
        "not pending deletion",
    )
    .await;
    // Bad delays change nothing.
    h.fails_with(
        "delete-item",
        json!({"token": h.admin, "name": "/app/a", "delete-in-days": -1}),
        StatusCode::BAD_REQUEST,
        "delete-immediately",
    )
    .await;
    h.fails_with(
        "delete-item",
        json!({"token": h.admin, "name": "/app/a", "delete-in-days": 1000}),
        StatusCode::BAD_REQUEST,
        "delete-in-days",
    )
    .await;
    assert_eq!(value(&h, "/app/a").await.0, StatusCode::OK);
    // Purge: nothing before the date, the item (and only it) after.
    secret(&h, "/app/keep", "k").await;
    h.admin_ok(
        "delete-item",
        json!({"name": "/app/a", "delete-in-days": 2}),
    )
    .await;
    let now = coffer_server::state::now_ms();
    assert_eq!(
        coffer_server::purge::purge_once(&h.state, now + DAY_MS)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        describe(&h, "/app/a").await["item_state"],
        "PendingDeletion"
    );
    assert_eq!(
        coffer_server::purge::purge_once(&h.state, now + 3 * DAY_MS)
            .await
            .unwrap(),
        1
    );
    h.fails_with(
        "describe-item",
        json!({"token": h.admin, "name": "/app/a"}),
        StatusCode::NOT_FOUND,
        "not found",
    )
    .await;
    assert_eq!(value(&h, "/app/keep").await.0, StatusCode::OK);
    assert_eq!(records(&h, "item-purge", "/app/a").await, 1);
    // The name is free again.
    secret(&h, "/app/a", "again").await;
    // delete-immediately deletes at once (also an item pending deletion).
    h.admin_ok(
        "delete-item",
        json!({"name": "/app/a", "delete-in-days": -1, "delete-immediately": true}),
    )
    .await;
    secret(&h, "/app/a", "third").await;
    h.admin_ok("delete-item", json!({"name": "/app/a"})).await;
    h.admin_ok(
        "delete-item",
        json!({"name": "/app/a", "delete-immediately": true}),
    )
    .await;
    secret(&h, "/app/a", "fourth").await;
}

#[tokio::test]
async fn version_delete_with_soft_deletion() {
    let h = Harness::new().await;
    secret(&h, "/v/s", "one").await;
    for v in ["two", "three"] {
        h.admin_ok("update-secret-val", json!({"name": "/v/s", "value": v}))
            .await;
    }
    // A version goes at once (the SDK's delete-in-days default is ignored).
    let out = h
        .admin_ok(
            "delete-item",
            json!({"name": "/v/s", "version": 2, "delete-in-days": 7, "delete-immediately": false}),
        )
        .await;
    assert_eq!(out["version_deleted"], 2);
    let (s, _) = h
        .call(
            "get-secret-value",
            json!({"token": h.admin, "names": ["/v/s"], "version": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // 0 = the latest version.
    let out = h
        .admin_ok("delete-item", json!({"name": "/v/s", "version": 0}))
        .await;
    assert_eq!(out["version_deleted"], 3);
    let (_, v) = value(&h, "/v/s").await;
    assert_eq!(v["/v/s"], "one");
    assert_eq!(describe(&h, "/v/s").await["item_state"], "Enabled");
    // A version of an item pending deletion: refused.
    h.admin_ok("delete-item", json!({"name": "/v/s"})).await;
    h.fails_with(
        "delete-item",
        json!({"token": h.admin, "name": "/v/s", "version": 1}),
        StatusCode::NOT_FOUND,
        "pending deletion",
    )
    .await;
}

#[tokio::test]
async fn delete_items_is_all_or_nothing() {
    let h = Harness::new().await;
    for n in [
        "/bulk/a",
        "/bulk/b",
        "/bulk/sub/c",
        "/bulk/locked/d",
        "/bulky/e",
    ] {
        secret(&h, n, "v").await;
    }
    let (_, token) = h
        .identity(
            "/bulker",
            "bulker",
            "none",
            &[
                ("item-rule", "/bulk/*", &["delete", "read", "list"]),
                ("item-rule", "/bulk/locked/*", &["deny"]),
            ],
        )
        .await;
    h.fails_with(
        "delete-items",
        json!({"token": token, "path": "/bulk"}),
        StatusCode::FORBIDDEN,
        "/bulk/locked/d",
    )
    .await;
    for n in ["/bulk/a", "/bulk/b", "/bulk/sub/c", "/bulk/locked/d"] {
        assert_eq!(value(&h, n).await.0, StatusCode::OK, "{n} kept");
    }
    // The admin may: everything under /bulk (not /bulky), one record.
    let out = h.admin_ok("delete-items", json!({"path": "/bulk"})).await;
    assert_eq!(out["path"], "/bulk/");
    let mut deleted: Vec<String> = out["deleted_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    deleted.sort();
    assert_eq!(
        deleted,
        vec!["/bulk/a", "/bulk/b", "/bulk/locked/d", "/bulk/sub/c"]
    );
    assert_eq!(out["failed_deleted_items"], json!({}));
    for n in ["/bulk/a", "/bulk/sub/c"] {
        assert_eq!(value(&h, n).await.0, StatusCode::NOT_FOUND, "{n} pending");
        assert_eq!(describe(&h, n).await["item_state"], "PendingDeletion");
    }
    assert_eq!(value(&h, "/bulky/e").await.0, StatusCode::OK);
    let recs = h
        .audit()
        .await
        .into_iter()
        .filter(|r| r["operation"] == "delete-items" && r["outcome"] == "allowed")
        .count();
    assert_eq!(recs, 1, "one record for the whole deletion");
    // Restorable one by one.
    h.admin_ok("restore-item", json!({"name": "/bulk/a"})).await;
    assert_eq!(value(&h, "/bulk/a").await.0, StatusCode::OK);
    // Nothing left under the path but /bulk/a: a second call deletes it.
    let out = h.admin_ok("delete-items", json!({"path": "/bulk"})).await;
    assert_eq!(out["deleted_items"], json!(["/bulk/a"]));
    // A path is required, and / is refused.
    h.fails_with(
        "delete-items",
        json!({"token": h.admin}),
        StatusCode::BAD_REQUEST,
        "path",
    )
    .await;
    h.fails_with(
        "delete-items",
        json!({"token": h.admin, "path": "/"}),
        StatusCode::BAD_REQUEST,
        "every item",
    )
    .await;
}

#[tokio::test]
async fn update_secret_val_options() {
    let h = Harness::new().await;
    secret(&h, "/o/s", "one").await;
    // key: only empty (Terraform sends back protection_key_name "").
    assert_eq!(describe(&h, "/o/s").await["protection_key_name"], "");
    h.admin_ok(
        "update-secret-val",
        json!({"name": "/o/s", "value": "two", "key": "", "multiline": false}),
    )
    .await;
    h.fails_with(
        "update-secret-val",
        json!({"token": h.admin, "name": "/o/s", "value": "x", "key": "/my/key"}),
        StatusCode::BAD_REQUEST,
        "data keys",
    )
    .await;
    h.fails_with(
        "create-secret",
        json!({"token": h.admin, "name": "/o/p", "value": "x", "protection_key": "/my/key"}),
        StatusCode::BAD_REQUEST,
        "protection-key",
    )
    .await;
    // last-version: optimistic concurrency.
    h.fails_with(
        "update-secret-val",
        json!({"token": h.admin, "name": "/o/s", "value": "x", "last-version": 1}),
        StatusCode::CONFLICT,
        "latest version",
    )
    .await;
    h.admin_ok(
        "update-secret-val",
        json!({"name": "/o/s", "value": "three", "last-version": 2}),
    )
    .await;
    // keep-prev-version false keeps only the new version.
    h.admin_ok(
        "update-secret-val",
        json!({"name": "/o/s", "value": "four", "keep-prev-version": "false"}),
    )
    .await;
    let d = h
        .admin_ok(
            "describe-item",
            json!({"name": "/o/s", "show-versions": true}),
        )
        .await;
    assert_eq!(d["item_versions"].as_array().unwrap().len(), 1);
    assert_eq!(d["last_version"], 4);
    // Unknown formats and types are refused with the accepted ones.
    h.fails_with(
        "create-secret",
        json!({"token": h.admin, "name": "/o/f", "value": "x", "format": "yaml"}),
        StatusCode::BAD_REQUEST,
        "text, json or key-value",
    )
    .await;
    h.fails_with(
        "create-secret",
        json!({"token": h.admin, "name": "/o/f", "value": "x", "type": "ssh"}),
        StatusCode::BAD_REQUEST,
        "generic or password",
    )
    .await;
    // multiline_value is accepted: the value is stored as sent.
    h.admin_ok(
        "create-secret",
        json!({"name": "/o/m", "value": "a\nb", "multiline_value": true}),
    )
    .await;
    assert_eq!(value(&h, "/o/m").await.1["/o/m"], "a\nb");
}

#[tokio::test]
async fn password_entry_shapes() {
    let h = Harness::new().await;
    h.admin_ok(
        "create-secret",
        json!({"name": "/pw/db", "value": "", "type": "password", "username": "app",
               "password": "pw-S3CR3T", "inject-url": ["https://db.example"],
               "custom-field": {"pin": "42"}, "format": "text"}),
    )
    .await;
    // The value: one JSON object with every field.
    let (_, v) = value(&h, "/pw/db").await;
    let entry: Value = serde_json::from_str(v["/pw/db"].as_str().unwrap()).unwrap();
    assert_eq!(
        entry,
        json!({"username": "app", "password": "pw-S3CR3T",
               "inject_url": ["https://db.example"], "custom_field": {"pin": "42"}})
    );
    // describe-item: the sub-type, username and websites, never the password.
    let d = describe(&h, "/pw/db").await;
    assert_eq!(d["item_sub_type"], "password");
    let info = &d["item_general_info"]["static_secret_info"];
    assert_eq!(info["username"], "app");
    assert_eq!(info["website"], "https://db.example");
    assert_eq!(info["websites"], json!(["https://db.example"]));
    assert!(!d.to_string().contains("pw-S3CR3T"), "{d}");
    // A caller who may only list sees no username.
    let (_, lister) = h
        .identity(
            "/lister",
            "lister",
            "none",
            &[("item-rule", "/pw/*", &["list"])],
        )
        .await;
    let d = h
        .ok("describe-item", json!({"token": lister, "name": "/pw/db"}))
        .await;
    assert!(
        d["item_general_info"]["static_secret_info"]
            .get("username")
            .is_none(),
        "{d}"
    );
    // Password fields on a generic secret are refused, not dropped.
    h.fails_with(
        "create-secret",
        json!({"token": h.admin, "name": "/pw/g", "value": "x", "username": "u"}),
        StatusCode::BAD_REQUEST,
        "password secrets",
    )
    .await;
    // key-value: values must be strings.
    h.fails_with(
        "create-secret",
        json!({"token": h.admin, "name": "/pw/kv", "value": "{\"a\":1}", "format": "key-value"}),
        StatusCode::BAD_REQUEST,
        "key-value",
    )
    .await;
    h.admin_ok(
        "create-secret",
        json!({"name": "/pw/kv", "value": {"a": "1"}, "format": "key-value"}),
    )
    .await;
    assert_eq!(
        describe(&h, "/pw/kv").await["item_general_info"]["static_secret_info"]["format"],
        "key-value"
    );
}

#[tokio::test]
async fn keys_and_issuers_soft_delete() {
    let h = Harness::new().await;
    h.admin_ok(
        "create-classic-key",
        json!({"name": "/k/aes", "alg": "AES256GCM"}),
    )
    .await;
    h.admin_ok(
        "create-classic-key",
        json!({"name": "/k/ssh", "alg": "Ed25519"}),
    )
    .await;
    h.admin_ok(
        "create-ssh-cert-issuer",
        json!({"name": "/k/issuer", "signer-key-name": "/k/ssh", "allowed-users": "ubuntu", "ttl": 60}),
    )
    .await;
    let enc = json!({"token": h.admin, "key-name": "/k/aes", "plaintext": "aGVsbG8="});
    h.ok("encrypt", enc.clone()).await;
    h.admin_ok("delete-item", json!({"name": "/k/aes"})).await;
    h.fails_with(
        "encrypt",
        enc.clone(),
        StatusCode::NOT_FOUND,
        "pending deletion",
    )
    .await;
    let d = describe(&h, "/k/aes").await;
    assert_eq!(
        (d["item_type"].clone(), d["item_state"].clone()),
        (json!("CLASSIC_KEY"), json!("PendingDeletion"))
    );
    h.admin_ok("restore-item", json!({"name": "/k/aes"})).await;
    h.ok("encrypt", enc).await;
    // A key an issuer signs with is neither deleted nor renamed.
    h.fails_with(
        "delete-item",
        json!({"token": h.admin, "name": "/k/ssh"}),
        StatusCode::CONFLICT,
        "/k/issuer",
    )
    .await;
    h.fails_with(
        "update-item",
        json!({"token": h.admin, "name": "/k/ssh", "new-name": "/k/ssh2"}),
        StatusCode::CONFLICT,
        "/k/issuer",
    )
    .await;
    // delete-items takes the key only with its issuer.
    let out = h.admin_ok("delete-items", json!({"path": "/k"})).await;
    assert_eq!(out["deleted_items"].as_array().unwrap().len(), 3, "{out}");
    assert_eq!(
        describe(&h, "/k/issuer").await["item_state"],
        "PendingDeletion"
    );
    // Purging takes the keys and the issuer, one record each.
    let now = coffer_server::state::now_ms();
    assert_eq!(
        coffer_server::purge::purge_once(&h.state, now + 8 * DAY_MS)
            .await
            .unwrap(),
        3
    );
    for n in ["/k/aes", "/k/ssh", "/k/issuer"] {
        assert_eq!(records(&h, "item-purge", n).await, 1, "{n}");
    }
}
