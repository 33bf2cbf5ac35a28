//! A conformance suite for [`Store`] implementations.
//!
//! Every check panics with a message naming what failed, like a test. Each
//! area is a separate function so a failure points at the area; [`run_all`]
//! runs them all. Names, IDs, access IDs and audit fields are unique per run,
//! so the suite can run repeatedly against the same database.
//!
//! Audit checks verify the records appended by the run, starting from the
//! chain head they found. When the store's chain starts empty they also
//! verify the whole chain with [`ChainVerifier`]; that requires every record
//! in the store to have been sealed by [`TestSealer`] (a fresh database).
// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use coffer_core::audit::{AuditRecord, ChainSealer, ChainVerifier, Outcome, head_bytes};
use coffer_core::model::{
    Association, AuditAccess, AuthMethod, AuthMethodKind, CertKind, IssuedCert, Item, ItemSubType,
    ItemType, Lease, LeaseState, Producer, Role, SealedVersion, SecretFormat, Target, TokenRecord,
    UidToken, VersionInfo,
};
use coffer_core::policy::{Caps, Rule, RuleType};
use futures::future::join_all;

use crate::{
    Audit, AuditQuery, BOOTSTRAPPED, CertFilter, ItemChange, LeaseFilter, LeaseScope, Result,
    Store, StoreError,
};

/// A fixed base time for the suite's records (2023-11-14).
const T0: i64 = 1_700_000_000_000;

/// Deterministic, non-cryptographic chain sealer for tests: two FNV-1a
/// lanes over the canonical bytes (16 bytes of output).
#[derive(Debug, Default, Clone, Copy)]
pub struct TestSealer;

impl ChainSealer for TestSealer {
    fn seal(&self, record: &AuditRecord) -> Vec<u8> {
        let mut a: u64 = 0xcbf2_9ce4_8422_2325;
        let mut b: u64 = 0x8422_2325_cbf2_9ce4;
        for &byte in &record.canonical_bytes() {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
            b = (b ^ u64::from(byte.rotate_left(3))).wrapping_mul(0x0000_0100_0000_01b3);
        }
        [a.to_be_bytes(), b.to_be_bytes()].concat()
    }
    fn seal_head(&self, seq: i64, hash: &[u8]) -> Vec<u8> {
        let mut a: u64 = 0x1234_5678_9abc_def0;
        for &byte in &head_bytes(seq, hash) {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        a.to_be_bytes().to_vec()
    }
    fn seal_checkpoint(&self, seq: i64, hash: &[u8], time_ms: i64) -> Vec<u8> {
        let mut a: u64 = 0x0fed_cba9_8765_4321;
        for &byte in &coffer_core::audit::checkpoint_bytes(seq, hash, time_ms) {
            a = (a ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        a.to_be_bytes().to_vec()
    }
}

/// A change's audit record, as the server builds it for a request.
pub fn change_record(operation: &str) -> AuditRecord {
    audit_record("p-change", "/changed", operation, T0)
}

/// Run one change with a fresh record and check its bookkeeping: a change
/// that happened (its record got a `seq`) added exactly that record at the
/// head of the chain and moved the generation by `$moves` (0 or 1); one
/// that did not (error, or nothing to change) added no record and left the
/// generation alone. Evaluates to `(result, changed)`.
macro_rules! checked {
    ($store:expr, $what:expr, $moves:expr, |$a:ident| $call:expr) => {{
        let store: &dyn Store = $store;
        let what: &str = $what;
        let g0 = ok(store.generation().await, "generation");
        let (h0, _) = head_pair(store).await;
        let mut rec = change_record(what);
        let r = {
            let $a = Audit::new(&mut rec, &TestSealer);
            $call.await
        };
        let g1 = ok(store.generation().await, "generation");
        let (h1, hash1) = head_pair(store).await;
        let changed = rec.seq != 0;
        if changed {
            assert!(
                r.is_ok(),
                "{what}: a record was written for a failed change"
            );
            assert_eq!(
                (h1, rec.seq),
                (h0 + 1, h0 + 1),
                "{what}: exactly one audit record"
            );
            assert_eq!(hash1, rec.hash, "{what}: the head is the change's record");
            assert_eq!(
                ok(store.audit_range(h0, 10).await, "audit_range"),
                vec![rec.clone()],
                "{what}: the stored record is the one given"
            );
            let moves: i64 = $moves;
            assert_eq!(g1, g0 + moves, "{what}: generation moved by {moves}");
        } else {
            assert_eq!(h1, h0, "{what}: no change, so no audit record");
            assert_eq!(g1, g0, "{what}: no change, so the generation stays");
        }
        (r, changed)
    }};
}

/// `Audit` for a change whose record the check does not look at.
macro_rules! au {
    () => {
        Audit::new(&mut change_record("change"), &TestSealer)
    };
}

/// Runs every check of the suite against `store`.
pub async fn run_all(store: &dyn Store) {
    backend_name(store).await;
    meta_and_generation(store).await;
    changes_are_audited(store).await;
    bootstrap(store).await;
    data_keys(store).await;
    auth_methods(store).await;
    roles_and_rules(store).await;
    associations(store).await;
    cascades(store).await;
    updates_and_renames(store).await;
    items(store).await;
    versions(store).await;
    delete_version(store).await;
    list_items(store).await;
    tokens(store).await;
    tokens_with_audit(store).await;
    audit_chain(store).await;
    audit_query(store).await;
    concurrent_audit(store).await;
    concurrent_add_version(store).await;
    uid_tokens(store).await;
    uid_revocation(store).await;
    concurrent_uid_rotation(store).await;
    concurrent_uid_child_and_revoke(store).await;
    producers_and_leases(store).await;
    certificates(store).await;
    login_nonces(store).await;
    update_item_meta(store).await;
    soft_deletion(store).await;
}

/// update-item: rename (and the names kept in leases), description, tags,
/// max versions; refusals change nothing.
pub async fn update_item_meta(store: &dyn Store) {
    let run = Run::new();
    let (it, key) = item_with_versions(store, &run, &run.name("meta/a"), 4).await;
    let other = item(&run, &run.name("meta/b"));
    ok(
        store.create_item(&other, &sealed(key, 1, 9), au!()).await,
        "create b",
    );
    // Tags: added, then removed; sorted, no duplicates.
    let change = ItemChange {
        add_tags: vec!["zz".into(), "env=prod".into(), "aa".into()],
        rm_tags: vec!["team:infra".into()],
        description: Some("new description".into()),
        modified_ms: T0 + 50,
        ..ItemChange::default()
    };
    let got = ok(store.update_item_meta(it.id, &change, au!()).await, "tags");
    assert_eq!(got.tags, vec!["aa", "env=prod", "zz"]);
    assert_eq!(got.description, "new description");
    assert_eq!(got.modified_ms, T0 + 50);
    let stored = ok(store.get_item(&it.name).await, "get").expect("item exists");
    assert_eq!(
        stored, got,
        "what update_item_meta returns is what is stored"
    );
    // Too many tags: refused, nothing changed.
    let too_many = ItemChange {
        add_tags: vec!["t1".into(), "t2".into()],
        max_tags: 4,
        modified_ms: T0 + 60,
        ..ItemChange::default()
    };
    assert!(matches!(
        store.update_item_meta(it.id, &too_many, au!()).await,
        Err(StoreError::Limit(_))
    ));
    assert_eq!(
        ok(store.get_item(&it.name).await, "get"),
        Some(stored.clone())
    );
    // Rename onto a taken name: Conflict, nothing changed.
    let onto = ItemChange {
        new_name: Some(other.name.clone()),
        modified_ms: T0 + 70,
        ..ItemChange::default()
    };
    expect_conflict(
        store.update_item_meta(it.id, &onto, au!()).await,
        &other.name,
        "rename onto a taken name",
    );
    assert_eq!(
        ok(store.get_item(&it.name).await, "get"),
        Some(stored.clone())
    );
    // max-versions lowered: the oldest versions go.
    let fewer = ItemChange {
        max_versions: Some(2),
        keep_versions: 2,
        modified_ms: T0 + 80,
        ..ItemChange::default()
    };
    let got = ok(store.update_item_meta(it.id, &fewer, au!()).await, "fewer");
    assert_eq!(got.max_versions, 2);
    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "versions")),
        vec![3, 4]
    );
    // Rename: the old name is free, the value reads under the new one.
    let new_name = run.name("meta/renamed");
    let rename = ItemChange {
        new_name: Some(new_name.clone()),
        modified_ms: T0 + 90,
        ..ItemChange::default()
    };
    let got = ok(
        store.update_item_meta(it.id, &rename, au!()).await,
        "rename",
    );
    assert_eq!(got.name, new_name);
    assert_eq!(got.id, it.id);
    assert!(ok(store.get_item(&it.name).await, "old name").is_none());
    let (read, v) = ok(store.get_item_value(&new_name, None).await, "value").expect("value");
    assert_eq!((read.id, v.version), (it.id, 4));
    // An item pending deletion cannot be updated.
    ok(
        store.mark_items_deleted(&[it.id], T0 + 1000, au!()).await,
        "mark",
    );
    expect_not_found(
        store.update_item_meta(it.id, &change, au!()).await,
        "item",
        "update of an item pending deletion",
    );
}

/// Pending deletion: all or nothing, visible in the item, restorable,
/// purged once when due (also by racing purgers), the name kept until then.
pub async fn soft_deletion(store: &dyn Store) {
    let run = Run::new();
    let (a, key) = item_with_versions(store, &run, &run.name("soft/a"), 2).await;
    let (b, _) = item_with_versions(store, &run, &run.name("soft/b"), 1).await;
    let (c, _) = item_with_versions(store, &run, &run.name("soft/c"), 1).await;
    // All or nothing: c is gone, so neither a nor b is marked.
    ok(store.delete_item(c.id, au!()).await, "delete c");
    expect_conflict(
        store
            .mark_items_deleted(&[a.id, b.id, c.id], T0 + 500, au!())
            .await,
        "pending deletion",
        "marking a set holding a missing item",
    );
    for it in [&a, &b] {
        let got = ok(store.get_item(&it.name).await, "get").expect("item");
        assert_eq!(got.deletion_ms, 0, "{} untouched", it.name);
    }
    ok(
        store
            .mark_items_deleted(&[a.id, b.id], T0 + 500, au!())
            .await,
        "mark a, b",
    );
    let got = ok(store.get_item(&a.name).await, "get").expect("item");
    assert_eq!(got.deletion_ms, T0 + 500);
    assert!(got.pending_deletion());
    // The name stays taken.
    let again = item(&run, &a.name);
    expect_conflict(
        store.create_item(&again, &sealed(key, 1, 3), au!()).await,
        &a.name,
        "the name of an item pending deletion",
    );
    // Due list: by time; restored items leave it.
    let due = ok(store.due_deletions(T0 + 499, 100).await, "due early");
    assert!(!due.iter().any(|i| i.id == a.id || i.id == b.id));
    let due = ok(store.due_deletions(T0 + 500, 10_000).await, "due");
    assert!(due.iter().any(|i| i.id == a.id) && due.iter().any(|i| i.id == b.id));
    assert!(ok(store.restore_item(b.id, au!()).await, "restore b"));
    let got = ok(store.get_item(&b.name).await, "get").expect("item");
    assert_eq!(got.deletion_ms, 0);
    assert!(!ok(
        store.purge_item(b.id, T0 + 600, au!()).await,
        "purge restored"
    ));
    assert!(ok(store.get_item(&b.name).await, "b kept").is_some());
    // Racing purgers: exactly one deletes a.
    let mut records: Vec<AuditRecord> = (0..4).map(|_| change_record("purge")).collect();
    let purges = records
        .iter_mut()
        .map(|r| store.purge_item(a.id, T0 + 600, Audit::new(r, &TestSealer)));
    let won = join_all(purges)
        .await
        .into_iter()
        .map(|r| ok(r, "purge race"))
        .filter(|&w| w)
        .count();
    assert_eq!(won, 1, "exactly one purger deletes the item");
    assert!(ok(store.get_item(&a.name).await, "a gone").is_none());
    assert!(ok(store.item_versions(a.id).await, "a versions").is_empty());
    // Its name is free again.
    ok(
        store.create_item(&again, &sealed(key, 1, 3), au!()).await,
        "reuse the purged name",
    );
}

/// Updating an auth method replaces its settings and keeps its access ID
/// and key; a rename takes its associations and tokens along; a name
/// taken or a stale read is a Conflict and changes nothing. A role rename
/// keeps its rules and associations. An association update replaces its
/// sub-claims and case flag only.
async fn updates_and_renames(store: &dyn Store) {
    let run = Run::new();
    let am = auth_method(&run, "upd");
    let other = auth_method(&run, "upd-other");
    ok(store.create_auth_method(&am, au!()).await, "create am");
    ok(
        store.create_auth_method(&other, au!()).await,
        "create other",
    );
    let ro = role(
        &run,
        "upd",
        vec![
            rule(RuleType::Item, "/upd/*", Caps::READ.union(Caps::LIST)),
            rule(RuleType::Role, "/x", Caps::DENY),
        ],
    );
    let other_role = role(&run, "upd-other", vec![]);
    ok(store.create_role(&ro, au!()).await, "create role");
    ok(
        store.create_role(&other_role, au!()).await,
        "create other role",
    );
    let assoc = association(&run, &ro.name, &am.name);
    ok(
        store.create_association(&assoc, au!()).await,
        "create assoc",
    );
    let tok = token(&run, &am, 7, T0 + 3_600_000);
    insert_token(store, &tok).await;

    // Settings and name change; access ID, kind, key, creation time stay.
    let mut changed = am.clone();
    changed.name = run.name("am/upd-renamed");
    changed.description = "new description".into();
    changed.access_expires_ms = 0;
    changed.bound_ips = vec!["127.0.0.1/32".into()];
    changed.token_ttl_secs = 60;
    changed.force_sub_claims = false;
    changed.config = serde_json::json!({"issuer": "https://other.example"});
    changed.modified_ms = T0 + 10;
    // Whatever the caller passes for these, they stay.
    changed.access_key_hash = Some(vec![0x01; 32]);
    changed.created_ms = T0 + 99;
    ok(
        store
            .update_auth_method(&am.name, am.modified_ms, &changed, au!())
            .await,
        "update_auth_method",
    );
    assert_eq!(
        ok(store.get_auth_method(&am.name).await, "get old name"),
        None,
        "the old name is gone"
    );
    let got = ok(store.get_auth_method(&changed.name).await, "get new name").expect("renamed");
    let mut expect = changed.clone();
    expect.access_key_hash = am.access_key_hash.clone();
    expect.created_ms = am.created_ms;
    assert_eq!(got, expect, "settings replaced, key and creation time kept");
    let by_id = ok(
        store.get_auth_method_by_access_id(&am.access_id).await,
        "by access id",
    )
    .expect("same access id");
    assert_eq!(by_id.name, changed.name);
    let assocs = ok(store.list_associations().await, "list assocs");
    let moved = assocs
        .iter()
        .find(|a| a.assoc_id == assoc.assoc_id)
        .expect("association kept");
    assert_eq!(moved.auth_method_name, changed.name, "association follows");
    let t = ok(store.get_token(&tok.token_hash).await, "get token").expect("token kept");
    assert_eq!(t.auth_method_name, changed.name, "token follows the rename");

    // Stale read, taken name, missing method: nothing changes.
    let r = store
        .update_auth_method(&changed.name, am.modified_ms, &changed, au!())
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "stale: {r:?}");
    let mut clash = changed.clone();
    clash.name = other.name.clone();
    clash.modified_ms = T0 + 11;
    let r = store
        .update_auth_method(&changed.name, changed.modified_ms, &clash, au!())
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "taken: {r:?}");
    let mut wrong_id = changed.clone();
    wrong_id.access_id = other.access_id.clone();
    let r = store
        .update_auth_method(&changed.name, changed.modified_ms, &wrong_id, au!())
        .await;
    assert!(
        matches!(r, Err(StoreError::Conflict(_))),
        "access ID: {r:?}"
    );
    let r = store
        .update_auth_method(&run.name("am/none"), 0, &changed, au!())
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "missing: {r:?}");
    assert_eq!(
        ok(store.get_auth_method(&changed.name).await, "get").as_ref(),
        Some(&expect),
        "refused updates changed nothing"
    );
    assert_eq!(
        ok(store.get_auth_method(&other.name).await, "get other").as_ref(),
        Some(&other)
    );

    // A new access key; only API-key methods with that access ID have one.
    assert!(ok(
        store
            .reset_access_key(&changed.name, &am.access_id, &[0x42; 32], T0 + 20, au!())
            .await,
        "reset_access_key"
    ));
    let got = ok(store.get_auth_method(&changed.name).await, "get").expect("method");
    assert_eq!(got.access_key_hash, Some(vec![0x42; 32]));
    assert_eq!(got.modified_ms, T0 + 20);
    assert!(
        !ok(
            store
                .reset_access_key(&changed.name, &other.access_id, &[0x43; 32], T0 + 21, au!())
                .await,
            "reset with another access ID"
        ),
        "the access ID must match"
    );
    let mut jwt = auth_method(&run, "upd-jwt");
    jwt.kind = AuthMethodKind::OAuth2;
    jwt.access_key_hash = None;
    ok(store.create_auth_method(&jwt, au!()).await, "create jwt");
    assert!(
        !ok(
            store
                .reset_access_key(&jwt.name, &jwt.access_id, &[0x44; 32], T0 + 22, au!())
                .await,
            "reset a keyless method"
        ),
        "a method without an access key gets none"
    );
    assert_eq!(
        ok(store.get_auth_method(&jwt.name).await, "get jwt").and_then(|m| m.access_key_hash),
        None
    );

    // Role rename: rules and associations follow.
    let mut ro2 = ro.clone();
    ro2.name = run.name("role/upd-renamed");
    ro2.description = "renamed".into();
    ro2.audit_access = AuditAccess::None;
    ro2.modified_ms = T0 + 30;
    ro2.rules = vec![];
    ro2.created_ms = T0 + 77;
    ok(
        store
            .update_role(&ro.name, ro.modified_ms, &ro2, au!())
            .await,
        "update_role",
    );
    assert_eq!(ok(store.get_role(&ro.name).await, "get old role"), None);
    let got = ok(store.get_role(&ro2.name).await, "get renamed role").expect("renamed role");
    assert_eq!(got.rules, ro.rules, "rules follow the rename");
    assert_eq!(
        (
            got.description.as_str(),
            got.audit_access,
            got.modified_ms,
            got.created_ms
        ),
        ("renamed", AuditAccess::None, T0 + 30, T0)
    );
    let assocs = ok(store.list_associations().await, "list assocs");
    let moved = assocs
        .iter()
        .find(|a| a.assoc_id == assoc.assoc_id)
        .expect("association kept");
    assert_eq!(moved.role_name, ro2.name, "association follows the role");
    let mut clash = ro2.clone();
    clash.name = other_role.name.clone();
    clash.modified_ms = T0 + 31;
    let r = store.update_role(&ro2.name, T0 + 30, &clash, au!()).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "taken: {r:?}");
    let r = store.update_role(&ro2.name, T0, &ro2, au!()).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "stale: {r:?}");
    assert_eq!(
        ok(store.get_role(&ro2.name).await, "get").map(|r| r.modified_ms),
        Some(T0 + 30),
        "refused role updates changed nothing"
    );

    // Association update: sub-claims and case flag only.
    let mut claims = BTreeMap::new();
    claims.insert("sub".to_owned(), vec!["svc-*".to_owned()]);
    assert!(ok(
        store
            .update_association(&assoc.assoc_id, &claims, true, au!())
            .await,
        "update_association"
    ));
    let got = ok(store.list_associations().await, "list")
        .into_iter()
        .find(|a| a.assoc_id == assoc.assoc_id)
        .expect("assoc");
    assert_eq!(
        got,
        Association {
            sub_claims: claims,
            case_sensitive: true,
            role_name: ro2.name.clone(),
            auth_method_name: changed.name.clone(),
            ..assoc.clone()
        }
    );
    // Policy data agrees with the single reads.
    let policy = ok(store.load_policy().await, "load_policy");
    assert!(policy.auth_methods.iter().any(|m| m.name == changed.name));
    assert!(policy.roles.iter().any(|r| r.name == ro2.name));
}

/// A login nonce is usable once, also when several callers race for it;
/// another nonce is independent; an expired one is refused, also when its
/// row is gone; used rows outlive their expiry by the purge grace.
async fn login_nonces(store: &dyn Store) {
    let run = Run::new();
    let a = run.name("nonce/a").into_bytes();
    let b = run.name("nonce/b").into_bytes();
    let old = run.name("nonce/old").into_bytes();
    assert!(ok(
        store.consume_login_nonce(&old, T0 + 10, T0).await,
        "consume old"
    ));
    assert!(ok(
        store.consume_login_nonce(&a, T0 + 60_000, T0).await,
        "consume a"
    ));
    assert!(
        !ok(
            store.consume_login_nonce(&a, T0 + 60_000, T0 + 1).await,
            "consume a again"
        ),
        "a nonce is used once"
    );
    assert!(ok(
        store.consume_login_nonce(&b, T0 + 60_000, T0).await,
        "consume b"
    ));
    // Consuming an expired nonce is refused: a replay that passed the
    // caller's expiry check just before the expiry and reaches the store
    // after it, and a nonce never used before.
    assert!(
        !ok(
            store.consume_login_nonce(&old, T0 + 10, T0 + 50).await,
            "replay old after expiry"
        ),
        "a used nonce replayed after its expiry is refused"
    );
    let late = run.name("nonce/late").into_bytes();
    for now in [T0 + 10, T0 + 11] {
        assert!(
            !ok(
                store.consume_login_nonce(&late, T0 + 10, now).await,
                "consume late"
            ),
            "an expired nonce is refused (now {now})"
        );
    }
    // The purge keeps used rows for the grace after their expiry: a node
    // whose clock runs ahead (past the expiry) purging must not let a node
    // whose clock runs behind (before the expiry) use the nonce again.
    let skew = run.name("nonce/skew").into_bytes();
    let e = T0 + 1_000;
    assert!(ok(
        store.consume_login_nonce(&skew, e, T0).await,
        "consume skew"
    ));
    let ahead = run.name("nonce/ahead").into_bytes();
    assert!(ok(
        store
            .consume_login_nonce(&ahead, e + 120_000, e + 60_000)
            .await,
        "consume on a node ahead"
    ));
    assert!(
        !ok(
            store.consume_login_nonce(&skew, e, e - 1).await,
            "replay skew on a node behind"
        ),
        "a used nonce is kept after its expiry for the purge grace"
    );
    // Beyond the grace the row is purged (the table does not grow).
    let later = run.name("nonce/later").into_bytes();
    let after = e + crate::LOGIN_NONCE_PURGE_GRACE_MS + 1;
    assert!(ok(
        store
            .consume_login_nonce(&later, after + 60_000, after)
            .await,
        "consume after the grace"
    ));
    assert!(
        ok(
            store.consume_login_nonce(&skew, e, e - 1).await,
            "skew after the purge"
        ),
        "a used row is purged once the grace has passed"
    );
    let race = run.name("nonce/race").into_bytes();
    let attempts = (0..8).map(|_| store.consume_login_nonce(&race, T0 + 60_000, T0));
    let won = join_all(attempts)
        .await
        .into_iter()
        .map(|r| ok(r, "consume race"))
        .filter(|&w| w)
        .count();
    assert_eq!(won, 1, "exactly one of several racing uses succeeds");
}

/// Retention: two pruners racing remove the old start of the chain in
/// contiguous, disjoint batches behind a sealed checkpoint; what remains
/// verifies from the checkpoint; nothing left to prune writes nothing.
/// Not part of [`run_all`] (whose checks read the chain from seq 1): run it
/// after the last `run_all` on a store.
/// Migrate `pool` (SQLite) only up to `version`: an older Coffer's schema.
pub async fn migrate_sqlite_up_to(pool: &sqlx::SqlitePool, version: i64) {
    crate::migrations::up_to(false, version)
        .run(pool)
        .await
        .expect("old SQLite migrations");
}

/// Migrate `pool` (PostgreSQL) only up to `version`.
pub async fn migrate_postgres_up_to(pool: &sqlx::PgPool, version: i64) {
    crate::migrations::up_to(true, version)
        .run(pool)
        .await
        .expect("old PostgreSQL migrations");
}

pub async fn audit_retention(store: &dyn Store) {
    use coffer_core::audit::checkpoint_bytes;
    const NEW: i64 = 4_000_000_000_000; // 2096: after every record above
    const CUTOFF: i64 = 3_000_000_000_000;
    let before = ok(store.audit_checkpoint().await, "audit_checkpoint");
    let (old_head, _) = head_pair(store).await;
    assert!(old_head > 3, "the checks above wrote records");
    let mut fresh: Vec<AuditRecord> = (0..10)
        .map(|i| audit_record("p-retained", "/kept", "get-secret-value", NEW + i))
        .collect();
    ok(
        store.append_audit(&mut fresh, &[], &[], &TestSealer).await,
        "append_audit",
    );
    // Two pruners at once, small batches, until neither finds anything.
    let mut ranges = Vec::new();
    loop {
        let mut ra = change_record("audit-prune");
        let mut rb = change_record("audit-prune");
        let (a, b) = tokio::join!(
            store.prune_audit(CUTOFF, 7, Audit::new(&mut ra, &TestSealer)),
            store.prune_audit(CUTOFF, 7, Audit::new(&mut rb, &TestSealer)),
        );
        let (a, b) = (ok(a, "prune a"), ok(b, "prune b"));
        for (range, rec) in [(a, &ra), (b, &rb)] {
            match range {
                Some(r) => {
                    assert!(rec.seq > 0, "a prune is audited");
                    assert!(
                        rec.object
                            .contains(&format!("{}-{}", r.first_seq, r.last_seq)),
                        "the prune record names its range: {}",
                        rec.object
                    );
                    assert!(r.count() <= 7, "batches are bounded");
                    ranges.push(r);
                }
                None => assert_eq!(rec.seq, 0, "nothing pruned, nothing recorded"),
            }
        }
        if a.is_none() && b.is_none() {
            break;
        }
    }
    ranges.sort_by_key(|r| r.first_seq);
    let start = before.as_ref().map_or(1, |c| c.seq + 1);
    assert_eq!(ranges.first().map(|r| r.first_seq), Some(start));
    for w in ranges.windows(2) {
        assert_eq!(
            w[0].last_seq + 1,
            w[1].first_seq,
            "contiguous, disjoint batches"
        );
    }
    // Everything older than the cutoff went: the records before the fresh
    // ones (the first prune records were appended after them and are old
    // too, but they follow the fresh ones).
    let cp = ok(store.audit_checkpoint().await, "audit_checkpoint").expect("a checkpoint");
    assert_eq!(cp.seq, old_head, "pruned up to the first fresh record");
    assert_eq!(ranges.last().map(|r| r.last_seq), Some(old_head));
    assert_eq!(
        cp.mac,
        TestSealer.seal_checkpoint(cp.seq, &cp.hash, cp.time_ms),
        "the checkpoint is sealed: {:?}",
        checkpoint_bytes(cp.seq, &cp.hash, cp.time_ms).len()
    );
    let first = ok(store.audit_range(0, 1).await, "audit_range");
    assert_eq!(
        first[0].seq,
        cp.seq + 1,
        "nothing before the checkpoint is left"
    );
    assert_eq!(
        first[0].prev_hash, cp.hash,
        "the first record links to the checkpoint"
    );
    // The rest verifies from the checkpoint.
    let mut verifier = ChainVerifier::new()
        .after_checkpoint(&TestSealer, &cp)
        .expect("checkpoint verifies");
    let mut after = 0;
    loop {
        let page = ok(store.audit_range(after, 1000).await, "audit_range");
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            verifier
                .push(&TestSealer, r)
                .expect("remaining chain verifies");
        }
    }
    let head = ok(store.audit_head().await, "audit_head");
    assert_eq!(verifier.finish(&TestSealer, &head), Ok(head.seq));
    // Filtered queries still return linked records.
    let kept = ok(
        store
            .query_audit(&AuditQuery {
                access_id: Some("p-retained".into()),
                limit: 100,
                ..Default::default()
            })
            .await,
        "query_audit",
    );
    assert_eq!(kept.len(), 10);
    assert_eq!(kept[0].prev_hash, cp.hash);
    assert_eq!(kept[1].prev_hash, kept[0].hash);
    // Nothing old enough any more: no record, no change.
    let mut again = change_record("audit-prune");
    let r = ok(
        store
            .prune_audit(CUTOFF, 7, Audit::new(&mut again, &TestSealer))
            .await,
        "prune again",
    );
    assert_eq!(r, None);
    assert_eq!(again.seq, 0);
    assert_eq!(ok(store.audit_head().await, "audit_head"), head);
}

// ---- fixtures ----

/// Unique names and IDs for one run of one check.
struct Run {
    tag: String,
    next_id: AtomicI64,
}

impl Run {
    fn new() -> Run {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let mut h = RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        let random = h.finish();
        Run {
            tag: format!("c{random:016x}"),
            // Random high bits, room for 2^16 IDs per run; never 0.
            next_id: AtomicI64::new((((random >> 17) as i64) << 16) | 1),
        }
    }
    /// `/<tag>/<suffix>`
    fn name(&self, suffix: &str) -> String {
        format!("/{}/{suffix}", self.tag)
    }
    /// `<tag>-<suffix>`, for things that are not paths.
    fn word(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.tag)
    }
    fn id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

fn auth_method(run: &Run, suffix: &str) -> AuthMethod {
    AuthMethod {
        name: run.name(&format!("am/{suffix}")),
        access_id: format!("p-{}{}a", run.tag, suffix.replace('/', "")),
        kind: AuthMethodKind::ApiKey,
        description: format!("auth method {suffix}"),
        access_key_hash: Some(vec![0xAB; 32]),
        access_expires_ms: T0 + 86_400_000,
        bound_ips: vec!["10.0.0.0/8".into(), "192.168.1.7/32".into()],
        token_ttl_secs: 3600,
        force_sub_claims: true,
        config: serde_json::json!({"issuer": "https://issuer.example", "n": 3, "list": [1, 2]}),
        created_ms: T0,
        modified_ms: T0 + 1,
    }
}

fn role(run: &Run, suffix: &str, rules: Vec<Rule>) -> Role {
    Role {
        name: run.name(&format!("role/{suffix}")),
        description: format!("role {suffix}"),
        audit_access: AuditAccess::Own,
        rules,
        created_ms: T0,
        modified_ms: T0,
    }
}

fn rule(rule_type: RuleType, path: &str, caps: Caps) -> Rule {
    Rule {
        rule_type,
        path: path.to_owned(),
        caps,
    }
}

fn association(run: &Run, role: &str, method: &str) -> Association {
    let mut sub_claims = BTreeMap::new();
    sub_claims.insert(
        "groups".to_owned(),
        vec!["dev*".to_owned(), "ops".to_owned()],
    );
    sub_claims.insert("ref".to_owned(), vec!["main".to_owned()]);
    Association {
        assoc_id: run.word(&format!("ass{}", run.id())),
        role_name: role.to_owned(),
        auth_method_name: method.to_owned(),
        sub_claims,
        case_sensitive: false,
        created_ms: T0,
    }
}

fn item(run: &Run, name: &str) -> Item {
    Item {
        id: run.id(),
        name: name.to_owned(),
        item_type: ItemType::StaticSecret,
        sub_type: ItemSubType::Generic,
        format: SecretFormat::KeyValue,
        description: "a secret".into(),
        tags: vec!["env=prod".into(), "team:infra".into()],
        max_versions: 5,
        last_version: 1,
        highest_version: 1,
        enabled: true,
        created_ms: T0,
        modified_ms: T0,
        deletion_ms: 0,
    }
}

fn sealed(key_id: i64, version: i32, fill: u8) -> SealedVersion {
    SealedVersion {
        version,
        key_id,
        sealed: vec![fill; 12 + 16 + usize::from(fill % 7)],
        created_ms: T0 + i64::from(version) * 1000,
    }
}

/// The store's data key (created by the first caller).
async fn data_key(store: &dyn Store, run: &Run) -> i64 {
    let keys = ok(
        store.ensure_data_key((run.id(), &[7; 40]), T0, au!()).await,
        "ensure_data_key",
    );
    keys.first().map(|(id, _)| *id).expect("a data key exists")
}

/// An item with versions `1..=n`, each sealed with a distinct fill byte.
async fn item_with_versions(store: &dyn Store, run: &Run, name: &str, n: i32) -> (Item, i64) {
    let key = data_key(store, run).await;
    let it = item(run, name);
    ok(
        store.create_item(&it, &sealed(key, 1, 1), au!()).await,
        "create_item",
    );
    for v in 2..=n {
        let fill = u8::try_from(v).unwrap_or(u8::MAX);
        ok(
            store
                .add_version(it.id, v - 1, &sealed(key, v, fill), 0, au!())
                .await,
            "add_version",
        );
    }
    (it, key)
}

fn token(run: &Run, method: &AuthMethod, n: u8, expires_ms: i64) -> TokenRecord {
    let mut claims = BTreeMap::new();
    claims.insert("sub".to_owned(), vec![format!("user{n}")]);
    claims.insert("aud".to_owned(), vec!["a".to_owned(), "b".to_owned()]);
    let mut token_hash = run.tag.as_bytes().to_vec();
    token_hash.push(n);
    TokenRecord {
        token_hash,
        access_id: method.access_id.clone(),
        auth_method_name: method.name.clone(),
        identity: format!("identity-{n}"),
        claims,
        issued_ms: T0,
        expires_ms,
    }
}

fn audit_record(access_id: &str, object: &str, operation: &str, time_ms: i64) -> AuditRecord {
    AuditRecord {
        seq: 0,
        time_ms,
        request_id: format!("req-{time_ms}"),
        operation: operation.to_owned(),
        object: object.to_owned(),
        outcome: Outcome::Allowed,
        status: 200,
        error: String::new(),
        access_id: access_id.to_owned(),
        auth_method: "/am".into(),
        identity: access_id.to_owned(),
        client_type: "cli".into(),
        peer: "127.0.0.1:5000".into(),
        prev_hash: Vec::new(),
        hash: Vec::new(),
    }
}

/// `(seq, hash)` of the chain head, after checking its MAC.
async fn head_pair(store: &dyn Store) -> (i64, Vec<u8>) {
    let head = ok(store.audit_head().await, "audit_head");
    if head.seq == 0 {
        assert!(
            head.hash.is_empty(),
            "an empty chain has an empty head hash"
        );
    } else {
        assert_eq!(
            head.mac,
            TestSealer.seal_head(head.seq, &head.hash),
            "the head's MAC covers its seq and hash"
        );
    }
    (head.seq, head.hash)
}

/// Store a minted token the way a login does: with its audit batch.
async fn insert_token(store: &dyn Store, t: &TokenRecord) {
    ok(
        store
            .append_audit(&mut [], std::slice::from_ref(t), &[], &TestSealer)
            .await,
        "append_audit with a token",
    );
}

// ---- assertion helpers ----

#[track_caller]
fn ok<T>(r: Result<T>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error: {e}"),
    }
}

#[track_caller]
fn expect_conflict<T: Debug>(r: Result<T>, mentions: &str, what: &str) {
    match r {
        Err(StoreError::Conflict(msg)) => assert!(
            msg.contains(mentions),
            "{what}: Conflict message {msg:?} should mention {mentions:?}"
        ),
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

#[track_caller]
fn expect_not_found<T: Debug>(r: Result<T>, mentions: &str, what: &str) {
    match r {
        Err(StoreError::NotFound(msg)) => assert!(
            msg.contains(mentions),
            "{what}: NotFound message {msg:?} should mention {mentions:?}"
        ),
        other => panic!("{what}: expected NotFound, got {other:?}"),
    }
}

fn versions_of(v: &[VersionInfo]) -> Vec<i32> {
    v.iter().map(|v| v.version).collect()
}

fn names(items: &[Item]) -> Vec<&str> {
    items.iter().map(|i| i.name.as_str()).collect()
}

// ---- checks ----

pub async fn backend_name(store: &dyn Store) {
    assert!(
        matches!(store.backend(), "sqlite" | "postgres"),
        "backend() is {:?}",
        store.backend()
    );
}

pub async fn meta_and_generation(store: &dyn Store) {
    let run = Run::new();
    assert_eq!(
        ok(store.get_meta(&run.word("meta")).await, "get_meta"),
        None
    );
    let g0 = ok(store.generation().await, "generation");
    assert!(g0 >= 0, "generation starts at 0");
    // Concurrent policy changes: each moves the generation once, none is lost.
    let ams: Vec<AuthMethod> = (0..20)
        .map(|i| auth_method(&run, &format!("gen{i}")))
        .collect();
    let mut recs: Vec<AuditRecord> = (0..20).map(|_| change_record("create")).collect();
    let done = join_all(
        ams.iter()
            .zip(recs.iter_mut())
            .map(|(am, rec)| store.create_auth_method(am, Audit::new(rec, &TestSealer))),
    )
    .await;
    for r in done {
        ok(r, "create_auth_method");
    }
    assert_eq!(
        ok(store.generation().await, "generation"),
        g0 + 20,
        "20 concurrent changes move the generation by 20"
    );
    let mut seqs: Vec<i64> = recs.iter().map(|r| r.seq).collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 20, "each change has its own audit record");
    assert!(seqs[0] > 0, "every record was written");
}

/// Every changing method writes its request's audit record in its own
/// transaction, and policy and revocation changes move the generation;
/// failures and no-ops write neither.
pub async fn changes_are_audited(store: &dyn Store) {
    let run = Run::new();
    let key = data_key(store, &run).await;
    // auth methods
    let am = auth_method(&run, "audited");
    let (r, changed) = checked!(store, "create_auth_method", 1, |a| store
        .create_auth_method(&am, a));
    ok(r, "create_auth_method");
    assert!(changed);
    let (r, changed) = checked!(store, "create_auth_method dup", 1, |a| store
        .create_auth_method(&am, a));
    assert!(r.is_err() && !changed, "duplicate auth method");
    // roles and rules
    let ro = role(
        &run,
        "audited",
        vec![rule(RuleType::Item, "/a/*", Caps::READ)],
    );
    let (r, _) = checked!(store, "create_role", 1, |a| store.create_role(&ro, a));
    ok(r, "create_role");
    let (r, changed) = checked!(store, "create_role dup", 1, |a| store.create_role(&ro, a));
    assert!(r.is_err() && !changed, "duplicate role");
    let extra = rule(RuleType::Role, "/b", Caps::UPDATE);
    let (r, changed) = checked!(store, "set_role_rule", 1, |a| store
        .set_role_rule(&ro.name, &extra, T0, a));
    ok(r, "set_role_rule");
    assert!(changed);
    let (r, changed) = checked!(store, "set_role_rule missing role", 1, |a| store
        .set_role_rule(&run.name("role/none"), &extra, T0, a));
    assert!(r.is_err() && !changed, "rule on a missing role");
    let (r, changed) = checked!(store, "delete_role_rule", 1, |a| store.delete_role_rule(
        &ro.name,
        RuleType::Role,
        "/b",
        a
    ));
    assert!(ok(r, "delete_role_rule") && changed);
    let (r, changed) = checked!(store, "delete_role_rule again", 1, |a| store
        .delete_role_rule(&ro.name, RuleType::Role, "/b", a));
    assert!(!ok(r, "delete_role_rule again") && !changed);
    // associations
    let assoc = association(&run, &ro.name, &am.name);
    let (r, changed) = checked!(store, "create_association", 1, |a| store
        .create_association(&assoc, a));
    ok(r, "create_association");
    assert!(changed);
    let orphan = association(&run, &run.name("role/none"), &am.name);
    let (r, changed) = checked!(store, "create_association orphan", 1, |a| store
        .create_association(&orphan, a));
    assert!(r.is_err() && !changed, "association of a missing role");
    let (r, changed) = checked!(store, "update_association", 1, |a| store
        .update_association(&assoc.assoc_id, &BTreeMap::new(), true, a));
    assert!(ok(r, "update_association") && changed);
    let (r, changed) = checked!(store, "update_association missing", 1, |a| store
        .update_association(&run.word("no-assoc"), &BTreeMap::new(), true, a));
    assert!(!ok(r, "update_association missing") && !changed);
    // updates and renames of auth methods and roles
    let mut am2 = am.clone();
    am2.name = run.name("am/audited-renamed");
    am2.modified_ms = T0 + 2;
    let (r, changed) = checked!(store, "update_auth_method", 1, |a| store
        .update_auth_method(&am.name, am.modified_ms, &am2, a));
    ok(r, "update_auth_method");
    assert!(changed);
    let (r, changed) = checked!(store, "update_auth_method stale", 1, |a| store
        .update_auth_method(&am2.name, am.modified_ms, &am2, a));
    assert!(
        matches!(r, Err(StoreError::Conflict(_))) && !changed,
        "a stale update of an auth method"
    );
    let (r, changed) = checked!(store, "reset_access_key", 1, |a| store.reset_access_key(
        &am2.name,
        &am2.access_id,
        &[0xCD; 32],
        T0 + 3,
        a
    ));
    assert!(ok(r, "reset_access_key") && changed);
    let (r, changed) = checked!(store, "reset_access_key missing", 1, |a| store
        .reset_access_key(&am.name, &am2.access_id, &[0xCD; 32], T0 + 3, a));
    assert!(!ok(r, "reset_access_key missing") && !changed);
    let mut ro2 = ro.clone();
    ro2.name = run.name("role/audited-renamed");
    ro2.modified_ms = T0 + 5;
    let stored_role = ok(store.get_role(&ro.name).await, "get_role").expect("role");
    let (r, changed) = checked!(store, "update_role", 1, |a| store.update_role(
        &ro.name,
        stored_role.modified_ms,
        &ro2,
        a
    ));
    ok(r, "update_role");
    assert!(changed);
    let (r, changed) = checked!(store, "update_role missing", 1, |a| store.update_role(
        &ro.name,
        stored_role.modified_ms,
        &ro2,
        a
    ));
    assert!(
        matches!(r, Err(StoreError::NotFound(_))) && !changed,
        "update of a missing role"
    );
    // Back to the names the rest of this check uses.
    let mut back = am.clone();
    back.modified_ms = T0 + 4;
    ok(
        store
            .update_auth_method(&am2.name, T0 + 3, &back, au!())
            .await,
        "rename the auth method back",
    );
    let mut back = ro.clone();
    back.modified_ms = T0 + 6;
    ok(
        store
            .update_role(&ro2.name, ro2.modified_ms, &back, au!())
            .await,
        "rename the role back",
    );
    let (r, changed) = checked!(store, "delete_association", 1, |a| store
        .delete_association(&assoc.assoc_id, a));
    assert!(ok(r, "delete_association") && changed);
    let (r, changed) = checked!(store, "delete_association again", 1, |a| store
        .delete_association(&assoc.assoc_id, a));
    assert!(!ok(r, "delete_association again") && !changed);
    // items: no generation move
    let it = item(&run, &run.name("audited/item"));
    let (r, changed) = checked!(store, "create_item", 0, |a| store.create_item(
        &it,
        &sealed(key, 1, 1),
        a
    ));
    ok(r, "create_item");
    assert!(changed);
    let (r, changed) = checked!(store, "create_item dup", 0, |a| store.create_item(
        &it,
        &sealed(key, 1, 1),
        a
    ));
    assert!(r.is_err() && !changed, "duplicate item");
    let (r, changed) = checked!(store, "add_version", 0, |a| store.add_version(
        it.id,
        1,
        &sealed(key, 2, 2),
        0,
        a
    ));
    ok(r, "add_version");
    assert!(changed);
    let (r, changed) = checked!(store, "add_version stale", 0, |a| store.add_version(
        it.id,
        1,
        &sealed(key, 2, 3),
        0,
        a
    ));
    assert!(r.is_err() && !changed, "stale add_version");
    let (r, changed) = checked!(store, "delete_version", 0, |a| store
        .delete_version(it.id, 2, a));
    assert!(ok(r, "delete_version") && changed);
    let (r, changed) = checked!(store, "delete_version missing", 0, |a| store
        .delete_version(it.id, 2, a));
    assert!(!ok(r, "delete_version missing") && !changed);
    let new_id = run.id();
    let v1 = ok(store.item_versions(it.id).await, "item_versions");
    let (r, changed) = checked!(store, "renumber_item", 0, |a| store
        .renumber_item(it.id, new_id, &v1, a));
    ok(r, "renumber_item");
    assert!(changed);
    // update-item, soft deletion, restore, purge
    let change = ItemChange {
        new_name: Some(run.name("audited/renamed")),
        add_tags: vec!["x".into()],
        modified_ms: T0 + 5,
        ..ItemChange::default()
    };
    let (r, changed) = checked!(store, "update_item_meta", 0, |a| store
        .update_item_meta(new_id, &change, a));
    ok(r, "update_item_meta");
    assert!(changed);
    let (r, changed) = checked!(store, "update_item_meta missing", 0, |a| store
        .update_item_meta(run.id(), &change, a));
    assert!(r.is_err() && !changed, "update of a missing item");
    let (r, changed) = checked!(store, "mark_items_deleted", 0, |a| store
        .mark_items_deleted(&[new_id], T0 + 100, a));
    ok(r, "mark_items_deleted");
    assert!(changed);
    let (r, changed) = checked!(store, "mark_items_deleted again", 0, |a| store
        .mark_items_deleted(&[new_id], T0 + 100, a));
    assert!(r.is_err() && !changed, "an item pending deletion already");
    let (r, changed) = checked!(store, "restore_item", 0, |a| store.restore_item(new_id, a));
    assert!(ok(r, "restore_item") && changed);
    let (r, changed) = checked!(store, "restore_item again", 0, |a| store
        .restore_item(new_id, a));
    assert!(!ok(r, "restore_item again") && !changed);
    ok(
        store.mark_items_deleted(&[new_id], T0 + 100, au!()).await,
        "mark_items_deleted",
    );
    let (r, changed) = checked!(store, "purge_item not due", 0, |a| store.purge_item(
        new_id,
        T0 + 99,
        a
    ));
    assert!(!ok(r, "purge_item not due") && !changed);
    let (r, changed) = checked!(store, "purge_item", 0, |a| store.purge_item(
        new_id,
        T0 + 100,
        a
    ));
    assert!(ok(r, "purge_item") && changed);
    let (r, changed) = checked!(store, "purge_item again", 0, |a| store.purge_item(
        new_id,
        T0 + 100,
        a
    ));
    assert!(!ok(r, "purge_item again") && !changed);
    let (it2, _) = item_with_versions(store, &run, &run.name("audited/item2"), 1).await;
    let (r, changed) = checked!(store, "delete_item", 0, |a| store.delete_item(it2.id, a));
    assert!(ok(r, "delete_item") && changed);
    let new_id = it2.id;
    let (r, changed) = checked!(store, "delete_item again", 0, |a| store
        .delete_item(new_id, a));
    assert!(!ok(r, "delete_item again") && !changed);
    // session tokens: revocation moves the generation
    let t = token(&run, &am, 9, T0 + 10_000_000);
    insert_token(store, &t).await;
    let (r, changed) = checked!(store, "revoke_token", 1, |a| store
        .revoke_token(&t.token_hash, a));
    assert!(ok(r, "revoke_token") && changed);
    let (r, changed) = checked!(store, "revoke_token again", 1, |a| store
        .revoke_token(&t.token_hash, a));
    assert!(!ok(r, "revoke_token again") && !changed);
    // UID tokens: minting does not move the generation, rotation and
    // revocation do (other nodes must drop the old secret).
    let um = uid_method(&run, "audited-uid");
    ok(
        store.create_auth_method(&um, au!()).await,
        "create uid method",
    );
    let ut = uid(&run, &um, "audited", None);
    let (r, changed) = checked!(store, "insert_uid_token", 0, |a| store
        .insert_uid_token(&ut, a));
    ok(r, "insert_uid_token");
    assert!(changed);
    let new_hash = uid_hash(&run, "audited", 2);
    let (r, changed) = checked!(store, "rotate_uid_token", 1, |a| store.rotate_uid_token(
        &ut.token_id,
        &ut.token_hash,
        &new_hash,
        T0 + 1,
        a
    ));
    assert!(ok(r, "rotate_uid_token").is_some() && changed);
    let (r, changed) = checked!(store, "rotate_uid_token stale", 1, |a| store
        .rotate_uid_token(&ut.token_id, &ut.token_hash, &new_hash, T0 + 2, a));
    assert!(ok(r, "rotate_uid_token stale").is_none() && !changed);
    let (r, changed) = checked!(store, "revoke_uid_token", 1, |a| store.revoke_uid_token(
        &ut.token_id,
        true,
        T0 + 3,
        a
    ));
    assert_eq!(ok(r, "revoke_uid_token"), vec![ut.token_id.clone()]);
    assert!(changed);
    // deletions of roles and methods
    let (r, changed) = checked!(store, "delete_role", 1, |a| store.delete_role(&ro.name, a));
    assert!(ok(r, "delete_role") && changed);
    let (r, changed) = checked!(store, "delete_role again", 1, |a| store
        .delete_role(&ro.name, a));
    assert!(!ok(r, "delete_role again") && !changed);
    let (r, changed) = checked!(store, "delete_auth_method", 1, |a| store
        .delete_auth_method(&am.name, a));
    assert!(ok(r, "delete_auth_method") && changed);
    let (r, changed) = checked!(store, "delete_auth_method again", 1, |a| store
        .delete_auth_method(&am.name, a));
    assert!(!ok(r, "delete_auth_method again") && !changed);

    // A record carries one change: reusing a written record is refused
    // and changes nothing.
    let mut rec = change_record("reuse");
    let r2 = role(&run, "reuse", Vec::new());
    ok(
        store
            .create_role(&r2, Audit::new(&mut rec, &TestSealer))
            .await,
        "create_role",
    );
    let r3 = role(&run, "reuse-2", Vec::new());
    assert!(
        store
            .create_role(&r3, Audit::new(&mut rec, &TestSealer))
            .await
            .is_err(),
        "a second change on one record must be refused"
    );
    assert_eq!(ok(store.get_role(&r3.name).await, "get_role"), None);
}

/// First start: everything at once, and only once.
pub async fn bootstrap(store: &dyn Store) {
    let run = Run::new();
    let already = ok(store.get_meta(BOOTSTRAPPED).await, "get_meta").is_some();
    let admin_role = role(&run, "admin", vec![rule(RuleType::Item, "/*", Caps::ALL)]);
    let admin = auth_method(&run, "admin");
    let assoc = association(&run, &admin_role.name, &admin.name);
    let (r, changed) = checked!(store, "bootstrap", 1, |a| store.bootstrap(
        &admin_role,
        &admin,
        &assoc,
        a
    ));
    let created = ok(r, "bootstrap");
    assert_eq!(created, !already, "bootstrap creates only on a fresh store");
    assert_eq!(changed, created);
    if created {
        assert_eq!(
            ok(store.get_role(&admin_role.name).await, "get_role").as_ref(),
            Some(&admin_role)
        );
        assert_eq!(
            ok(store.get_auth_method(&admin.name).await, "get").as_ref(),
            Some(&admin)
        );
        assert!(
            ok(store.list_associations().await, "list")
                .iter()
                .any(|a| a.assoc_id == assoc.assoc_id)
        );
    }
    assert!(ok(store.get_meta(BOOTSTRAPPED).await, "get_meta").is_some());
    // Again (e.g. another node): nothing changes.
    let again = role(&run, "admin2", Vec::new());
    let (r, changed) = checked!(store, "bootstrap again", 1, |a| store
        .bootstrap(&again, &admin, &assoc, a));
    assert!(!ok(r, "bootstrap again") && !changed);
    assert_eq!(ok(store.get_role(&again.name).await, "get_role"), None);

    // The policy snapshot sees everything, with the generation.
    let snap = ok(store.load_policy().await, "load_policy");
    assert_eq!(snap.generation, ok(store.generation().await, "generation"));
    assert_eq!(snap.roles, ok(store.list_roles().await, "list_roles"));
    assert_eq!(
        snap.auth_methods,
        ok(store.list_auth_methods().await, "list_auth_methods")
    );
    assert_eq!(
        snap.associations,
        ok(store.list_associations().await, "list_associations")
    );
}

pub async fn data_keys(store: &dyn Store) {
    let run = Run::new();
    let (a, b) = (run.id(), run.id());
    let first = ok(
        store.ensure_data_key((a, &[1; 48]), T0, au!()).await,
        "ensure_data_key",
    );
    assert!(!first.is_empty(), "ensure_data_key returns the keys");
    let again = ok(
        store.ensure_data_key((b, &[2; 40]), T0, au!()).await,
        "ensure_data_key again",
    );
    assert_eq!(again, first, "a second first key is not added");
    assert_eq!(ok(store.data_keys().await, "data_keys"), first);
    assert!(
        first.windows(2).all(|w| w[0].0 < w[1].0),
        "data_keys ordered by id"
    );
}

pub async fn auth_methods(store: &dyn Store) {
    let run = Run::new();
    let am = auth_method(&run, "one");
    ok(
        store.create_auth_method(&am, au!()).await,
        "create_auth_method",
    );
    let mut other = auth_method(&run, "two");
    other.kind = AuthMethodKind::OAuth2;
    other.access_key_hash = None;
    other.bound_ips = Vec::new();
    other.force_sub_claims = false;
    other.config = serde_json::Value::Null;
    ok(
        store.create_auth_method(&other, au!()).await,
        "create_auth_method",
    );

    assert_eq!(
        ok(store.get_auth_method(&am.name).await, "get").as_ref(),
        Some(&am)
    );
    assert_eq!(
        ok(store.get_auth_method(&other.name).await, "get").as_ref(),
        Some(&other)
    );
    assert_eq!(
        ok(
            store.get_auth_method_by_access_id(&am.access_id).await,
            "by access id"
        )
        .as_ref(),
        Some(&am)
    );
    assert_eq!(
        ok(
            store.get_auth_method(&run.name("am/none")).await,
            "get missing"
        ),
        None
    );
    assert_eq!(
        ok(
            store.get_auth_method_by_access_id("p-nonexistent").await,
            "by access id"
        ),
        None
    );

    let mut same_name = auth_method(&run, "three");
    same_name.name = am.name.clone();
    expect_conflict(
        store.create_auth_method(&same_name, au!()).await,
        &am.name,
        "same name",
    );
    let mut same_access_id = auth_method(&run, "four");
    same_access_id.access_id = am.access_id.clone();
    expect_conflict(
        store.create_auth_method(&same_access_id, au!()).await,
        &am.access_id,
        "same access ID",
    );

    let all = ok(store.list_auth_methods().await, "list_auth_methods");
    let ours: Vec<&AuthMethod> = all.iter().filter(|m| m.name.contains(&run.tag)).collect();
    assert_eq!(ours, [&am, &other], "list_auth_methods, ordered by name");
    assert!(
        all.windows(2).all(|w| w[0].name < w[1].name),
        "ordered by name"
    );

    assert!(ok(
        store.delete_auth_method(&am.name, au!()).await,
        "delete"
    ));
    assert!(!ok(
        store.delete_auth_method(&am.name, au!()).await,
        "delete again"
    ));
    assert_eq!(
        ok(store.get_auth_method(&am.name).await, "get deleted"),
        None
    );
    assert_eq!(
        ok(
            store.get_auth_method_by_access_id(&am.access_id).await,
            "get deleted"
        ),
        None
    );
}

pub async fn roles_and_rules(store: &dyn Store) {
    let run = Run::new();
    let items_rule = rule(RuleType::Item, "/app/*", Caps::READ.union(Caps::LIST));
    let deny_rule = rule(RuleType::Item, "/app/secret", Caps::DENY);
    let r = role(&run, "dev", vec![items_rule.clone(), deny_rule.clone()]);
    ok(store.create_role(&r, au!()).await, "create_role");
    let bare = role(&run, "bare", Vec::new());
    ok(
        store.create_role(&bare, au!()).await,
        "create_role without rules",
    );
    expect_conflict(
        store.create_role(&r, au!()).await,
        &r.name,
        "duplicate role",
    );

    assert_eq!(
        ok(store.get_role(&r.name).await, "get_role").as_ref(),
        Some(&r)
    );
    assert_eq!(
        ok(store.get_role(&bare.name).await, "get_role").as_ref(),
        Some(&bare)
    );
    assert_eq!(
        ok(store.get_role(&run.name("role/none")).await, "get missing"),
        None
    );

    let all = ok(store.list_roles().await, "list_roles");
    let ours: Vec<&Role> = all.iter().filter(|x| x.name.contains(&run.tag)).collect();
    assert_eq!(
        ours,
        [&bare, &r],
        "list_roles (with rules), ordered by name"
    );

    // New rule: appended; modified_ms moves.
    let role_rule = rule(RuleType::Role, "/app/*", Caps::READ);
    ok(
        store
            .set_role_rule(&r.name, &role_rule, T0 + 50, au!())
            .await,
        "set_role_rule",
    );
    // Same (type, path): replaced in place.
    let wider = rule(RuleType::Item, "/app/*", Caps::ALL);
    ok(
        store.set_role_rule(&r.name, &wider, T0 + 60, au!()).await,
        "set_role_rule replace",
    );
    let got = ok(store.get_role(&r.name).await, "get_role").expect("role exists");
    assert_eq!(
        got.rules,
        vec![wider.clone(), deny_rule.clone(), role_rule.clone()]
    );
    assert_eq!(got.modified_ms, T0 + 60, "set_role_rule bumps modified_ms");
    assert_eq!(got.created_ms, T0);
    expect_not_found(
        store
            .set_role_rule(&run.name("role/none"), &wider, T0, au!())
            .await,
        &run.name("role/none"),
        "set_role_rule on a missing role",
    );

    assert!(ok(
        store
            .delete_role_rule(&r.name, RuleType::Item, "/app/secret", au!())
            .await,
        "delete_role_rule"
    ));
    assert!(!ok(
        store
            .delete_role_rule(&r.name, RuleType::Item, "/app/secret", au!())
            .await,
        "delete_role_rule again"
    ));
    assert!(!ok(
        store
            .delete_role_rule(&r.name, RuleType::Target, "/app/*", au!())
            .await,
        "delete_role_rule of another type"
    ));
    let got = ok(store.get_role(&r.name).await, "get_role").expect("role exists");
    assert_eq!(got.rules, vec![wider, role_rule]);

    assert!(ok(store.delete_role(&r.name, au!()).await, "delete_role"));
    assert!(!ok(
        store.delete_role(&r.name, au!()).await,
        "delete_role again"
    ));
    assert_eq!(ok(store.get_role(&r.name).await, "get deleted"), None);
    // Its rules went with it: a new role of that name starts empty.
    let reborn = role(&run, "dev", Vec::new());
    ok(store.create_role(&reborn, au!()).await, "re-create role");
    assert_eq!(
        ok(store.get_role(&r.name).await, "get").map(|x| x.rules),
        Some(vec![])
    );
}

pub async fn associations(store: &dyn Store) {
    let run = Run::new();
    let am = auth_method(&run, "m");
    ok(
        store.create_auth_method(&am, au!()).await,
        "create_auth_method",
    );
    let r = role(&run, "r", Vec::new());
    ok(store.create_role(&r, au!()).await, "create_role");

    let a = association(&run, &r.name, &am.name);
    ok(
        store.create_association(&a, au!()).await,
        "create_association",
    );
    let mut b = association(&run, &r.name, &am.name);
    b.sub_claims.clear();
    b.case_sensitive = true;
    b.created_ms = T0 + 1;
    ok(
        store.create_association(&b, au!()).await,
        "create_association",
    );
    expect_conflict(
        store.create_association(&a, au!()).await,
        &a.assoc_id,
        "duplicate association",
    );

    let mut no_role = association(&run, &run.name("role/none"), &am.name);
    expect_not_found(
        store.create_association(&no_role, au!()).await,
        &no_role.role_name,
        "association to a missing role",
    );
    no_role.role_name = r.name.clone();
    no_role.auth_method_name = run.name("am/none");
    expect_not_found(
        store.create_association(&no_role, au!()).await,
        &no_role.auth_method_name,
        "association to a missing auth method",
    );

    let all = ok(store.list_associations().await, "list_associations");
    let ours: Vec<&Association> = all.iter().filter(|x| x.role_name == r.name).collect();
    assert_eq!(ours, [&a, &b], "list_associations");

    assert!(ok(
        store.delete_association(&a.assoc_id, au!()).await,
        "delete_association"
    ));
    assert!(!ok(
        store.delete_association(&a.assoc_id, au!()).await,
        "delete again"
    ));
    let all = ok(store.list_associations().await, "list_associations");
    assert!(!all.iter().any(|x| x.assoc_id == a.assoc_id));
    assert!(all.iter().any(|x| x.assoc_id == b.assoc_id));
}

/// Deleting an auth method takes its associations and tokens along;
/// deleting a role takes its rules and associations.
pub async fn cascades(store: &dyn Store) {
    let run = Run::new();
    let am = auth_method(&run, "m");
    let keep = auth_method(&run, "keep");
    ok(
        store.create_auth_method(&am, au!()).await,
        "create_auth_method",
    );
    ok(
        store.create_auth_method(&keep, au!()).await,
        "create_auth_method",
    );
    let r1 = role(&run, "r1", vec![rule(RuleType::Item, "/x", Caps::READ)]);
    let r2 = role(&run, "r2", Vec::new());
    ok(store.create_role(&r1, au!()).await, "create_role");
    ok(store.create_role(&r2, au!()).await, "create_role");
    let a1 = association(&run, &r1.name, &am.name);
    let a2 = association(&run, &r2.name, &am.name);
    let a3 = association(&run, &r1.name, &keep.name);
    let a4 = association(&run, &r2.name, &keep.name);
    for a in [&a1, &a2, &a3, &a4] {
        ok(
            store.create_association(a, au!()).await,
            "create_association",
        );
    }
    let t_gone = token(&run, &am, 1, T0 + 1_000_000);
    let t_kept = token(&run, &keep, 2, T0 + 1_000_000);
    insert_token(store, &t_gone).await;
    insert_token(store, &t_kept).await;

    assert!(ok(
        store.delete_auth_method(&am.name, au!()).await,
        "delete_auth_method"
    ));
    let left: Vec<String> = ok(store.list_associations().await, "list_associations")
        .into_iter()
        .filter(|x| x.role_name.contains(&run.tag))
        .map(|x| x.assoc_id)
        .collect();
    assert_eq!(
        left,
        [a3.assoc_id.as_str(), a4.assoc_id.as_str()],
        "after delete_auth_method"
    );
    assert_eq!(
        ok(store.get_token(&t_gone.token_hash).await, "get_token"),
        None,
        "tokens go with their auth method"
    );
    assert_eq!(
        ok(store.get_token(&t_kept.token_hash).await, "get_token").as_ref(),
        Some(&t_kept)
    );

    assert!(ok(store.delete_role(&r1.name, au!()).await, "delete_role"));
    let left: Vec<String> = ok(store.list_associations().await, "list_associations")
        .into_iter()
        .filter(|x| x.role_name.contains(&run.tag))
        .map(|x| x.assoc_id)
        .collect();
    assert_eq!(left, [a4.assoc_id.as_str()], "after delete_role");
    assert_eq!(
        ok(store.get_role(&r2.name).await, "get_role").as_ref(),
        Some(&r2),
        "other roles are untouched"
    );
}

pub async fn items(store: &dyn Store) {
    let run = Run::new();
    let key = data_key(store, &run).await;
    let it = item(&run, &run.name("app/db"));
    let v1 = sealed(key, 1, 1);
    ok(store.create_item(&it, &v1, au!()).await, "create_item");

    assert_eq!(
        ok(store.get_item(&it.name).await, "get_item").as_ref(),
        Some(&it)
    );
    assert_eq!(
        ok(store.get_item(&run.name("app/none")).await, "get missing"),
        None
    );
    assert_eq!(
        ok(store.get_item_value(&it.name, None).await, "latest"),
        Some((it.clone(), v1.clone()))
    );
    assert_eq!(
        ok(store.get_item_value(&it.name, Some(1)).await, "version 1"),
        Some((it.clone(), v1.clone()))
    );
    assert_eq!(
        ok(store.get_item_value(&it.name, Some(2)).await, "version 2"),
        None
    );
    assert_eq!(
        ok(store.get_item_value(&it.name, Some(0)).await, "version 0"),
        None
    );
    assert_eq!(
        ok(
            store.get_item_value(&run.name("app/none"), None).await,
            "missing"
        ),
        None
    );

    let mut same_name = item(&run, &it.name);
    same_name.id = run.id();
    expect_conflict(
        store.create_item(&same_name, &v1, au!()).await,
        &it.name,
        "duplicate item name",
    );
    let mut same_id = item(&run, &run.name("app/other"));
    same_id.id = it.id;
    expect_conflict(
        store.create_item(&same_id, &v1, au!()).await,
        &it.id.to_string(),
        "duplicate item ID",
    );
    assert_eq!(
        ok(store.get_item(&same_id.name).await, "get"),
        None,
        "a refused create leaves nothing behind"
    );
    let no_key = item(&run, &run.name("app/nokey"));
    let r = store
        .create_item(&no_key, &sealed(run.id(), 1, 1), au!())
        .await;
    assert!(r.is_err(), "create_item with an unknown data key must fail");
    assert_eq!(ok(store.get_item(&no_key.name).await, "get"), None);

    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "list_versions")),
        [1]
    );
    assert!(ok(store.delete_item(it.id, au!()).await, "delete_item"));
    assert!(!ok(
        store.delete_item(it.id, au!()).await,
        "delete_item again"
    ));
    assert_eq!(ok(store.get_item(&it.name).await, "get deleted"), None);
    assert_eq!(
        ok(store.get_item_value(&it.name, None).await, "deleted"),
        None
    );
    assert!(ok(store.list_versions(it.id).await, "list_versions").is_empty());
    // The name is free again.
    ok(store.create_item(&it, &v1, au!()).await, "re-create item");
}

pub async fn versions(store: &dyn Store) {
    let run = Run::new();
    let (it, key) = item_with_versions(store, &run, &run.name("v/a"), 1).await;

    let v2 = sealed(key, 2, 2);
    ok(
        store.add_version(it.id, 1, &v2, 0, au!()).await,
        "add_version",
    );
    let (got, value) = ok(store.get_item_value(&it.name, None).await, "latest").expect("item");
    assert_eq!(value, v2);
    assert_eq!(got.last_version, 2);
    assert_eq!(
        got.modified_ms, v2.created_ms,
        "modified_ms follows the new version"
    );
    assert_eq!(got.created_ms, it.created_ms);
    assert_eq!(
        ok(store.get_item_value(&it.name, Some(1)).await, "v1").map(|x| x.1.version),
        Some(1)
    );

    // Stale expectation: a concurrent update won.
    expect_conflict(
        store.add_version(it.id, 1, &v2, 0, au!()).await,
        "",
        "stale expected_last",
    );
    // Version number that does not follow expected_last.
    expect_conflict(
        store
            .add_version(it.id, 2, &sealed(key, 4, 4), 0, au!())
            .await,
        "",
        "version != expected_last + 1",
    );
    expect_not_found(
        store
            .add_version(run.id(), 1, &sealed(key, 2, 2), 0, au!())
            .await,
        "",
        "add_version on a missing item",
    );
    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "list_versions")),
        [1, 2],
        "refused updates change nothing"
    );

    // keep <= 0 keeps everything.
    for v in 3..=5 {
        ok(
            store
                .add_version(it.id, v - 1, &sealed(key, v, 5), -1, au!())
                .await,
            "add_version",
        );
    }
    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "list")),
        [1, 2, 3, 4, 5]
    );
    // keep = 3 prunes to the newest three.
    ok(
        store
            .add_version(it.id, 5, &sealed(key, 6, 6), 3, au!())
            .await,
        "add_version keep 3",
    );
    let listed = ok(store.list_versions(it.id).await, "list_versions");
    assert_eq!(versions_of(&listed), [4, 5, 6]);
    assert_eq!(listed[2].created_ms, sealed(key, 6, 6).created_ms);
    assert_eq!(
        ok(store.get_item_value(&it.name, Some(3)).await, "pruned"),
        None
    );
    // keep = 1 keeps only the new one.
    ok(
        store
            .add_version(it.id, 6, &sealed(key, 7, 7), 1, au!())
            .await,
        "add_version keep 1",
    );
    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "list")),
        [7]
    );
    // keep larger than the count prunes nothing.
    ok(
        store
            .add_version(it.id, 7, &sealed(key, 8, 8), 10, au!())
            .await,
        "add_version keep 10",
    );
    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "list")),
        [7, 8]
    );
    assert_eq!(
        ok(store.get_item(&it.name).await, "get").map(|i| i.last_version),
        Some(8)
    );
    expect_not_found(
        store
            .add_version(it.id, 8, &sealed(run.id(), 9, 9), 0, au!())
            .await,
        "",
        "add_version with an unknown data key",
    );
    assert_eq!(
        ok(store.get_item(&it.name).await, "get").map(|i| i.last_version),
        Some(8),
        "a failed add_version is rolled back"
    );
}

pub async fn delete_version(store: &dyn Store) {
    let run = Run::new();
    let (it, key) = item_with_versions(store, &run, &run.name("dv/a"), 4).await;

    // A middle version.
    assert!(ok(
        store.delete_version(it.id, 2, au!()).await,
        "delete_version 2"
    ));
    assert!(!ok(
        store.delete_version(it.id, 2, au!()).await,
        "delete_version 2 again"
    ));
    assert!(!ok(
        store.delete_version(it.id, 9, au!()).await,
        "delete_version 9"
    ));
    assert!(!ok(
        store.delete_version(run.id(), 1, au!()).await,
        "delete_version on a missing item"
    ));
    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "list")),
        [1, 3, 4]
    );
    assert_eq!(
        ok(store.get_item(&it.name).await, "get").map(|i| i.last_version),
        Some(4)
    );

    // The latest: last_version falls back to the highest remaining.
    assert!(ok(
        store.delete_version(it.id, 4, au!()).await,
        "delete_version 4"
    ));
    assert_eq!(
        ok(store.get_item(&it.name).await, "get").map(|i| i.last_version),
        Some(3)
    );
    assert_eq!(
        ok(store.get_item_value(&it.name, None).await, "latest").map(|x| x.1),
        Some(sealed(key, 3, 3))
    );
    // The deleted number is never given again: a client pinned to
    // version 4 must not silently get another value.
    assert_eq!(
        ok(store.get_item(&it.name).await, "get").map(|i| i.highest_version),
        Some(4)
    );
    expect_conflict(
        store
            .add_version(it.id, 3, &sealed(key, 4, 40), 0, au!())
            .await,
        "version 4",
        "reusing a deleted version number",
    );
    ok(
        store
            .add_version(it.id, 4, &sealed(key, 5, 50), 0, au!())
            .await,
        "add_version after delete",
    );
    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "list")),
        [1, 3, 5]
    );
    assert_eq!(
        ok(
            store.get_item_value(&it.name, Some(4)).await,
            "deleted version"
        ),
        None
    );
    // Pruning keeps the newest versions even with gaps.
    ok(
        store
            .add_version(it.id, 5, &sealed(key, 6, 60), 3, au!())
            .await,
        "add_version keep 3",
    );
    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "list")),
        [3, 5, 6]
    );

    // The last remaining version takes the item with it.
    assert!(ok(store.delete_version(it.id, 3, au!()).await, "delete 3"));
    assert!(ok(store.delete_version(it.id, 6, au!()).await, "delete 6"));
    assert_eq!(
        ok(store.get_item(&it.name).await, "get").map(|i| (i.last_version, i.highest_version)),
        Some((5, 6))
    );
    assert!(ok(
        store.delete_version(it.id, 5, au!()).await,
        "delete the only version"
    ));
    assert_eq!(
        ok(store.get_item(&it.name).await, "get"),
        None,
        "item deleted with its last version"
    );
    assert!(ok(store.list_versions(it.id).await, "list").is_empty());
    assert!(!ok(
        store.delete_item(it.id, au!()).await,
        "delete_item after"
    ));
}

/// Prefix listing must be an exact "starts with": `_`, `%` and `\` are
/// ordinary characters and case matters (a naive `LIKE 'prefix%'` fails).
pub async fn list_items(store: &dyn Store) {
    let run = Run::new();
    let key = data_key(store, &run).await;
    let root = run.name("");
    let rel = [
        "a_b",
        "a_b/x",
        "aXb/y",
        "a%c/z",
        "a%/w",
        "A_b/q",
        "a/1",
        "a/10",
        "a/2",
        "a/3",
        "ab",
        "a\\b/e",
        "a\\\\",
        "é/x",
        "éa",
        "f\u{10FFFF}/x",
        "f\u{10FFFF}\u{10FFFF}",
        "g",
    ];
    for r in rel {
        let it = item(&run, &format!("{root}{r}"));
        ok(
            store.create_item(&it, &sealed(key, 1, 1), au!()).await,
            "create_item",
        );
    }
    let root_str = root.as_str();
    let list = |prefix: String, after: Option<String>, limit: i64| async move {
        let got = ok(
            store.list_items(&prefix, after.as_deref(), limit).await,
            "list_items",
        );
        names(&got)
            .iter()
            .map(|n| n.strip_prefix(root_str).unwrap_or(n).to_owned())
            .collect::<Vec<String>>()
    };
    let p = |s: &str| format!("{root}{s}");

    // Byte-wise order: 'A' < 'a' < ...; '%' < '/' < '1' < 'X' < '\' < '_' < 'b'.
    let mut all_sorted: Vec<&str> = rel.to_vec();
    all_sorted.sort_unstable();
    assert_eq!(
        list(root.clone(), None, 100).await,
        all_sorted,
        "whole run, ordered by name"
    );

    assert_eq!(
        list(p("a_"), None, 100).await,
        ["a_b", "a_b/x"],
        "'_' is not a wildcard"
    );
    assert_eq!(
        list(p("a%"), None, 100).await,
        ["a%/w", "a%c/z"],
        "'%' is not a wildcard"
    );
    assert_eq!(
        list(p("a\\"), None, 100).await,
        ["a\\\\", "a\\b/e"],
        "'\\' is not an escape"
    );
    assert_eq!(list(p("a\\\\"), None, 100).await, ["a\\\\"]);
    assert_eq!(list(p("A"), None, 100).await, ["A_b/q"], "case-sensitive");
    assert_eq!(
        list(p("a/"), None, 100).await,
        ["a/1", "a/10", "a/2", "a/3"]
    );
    assert_eq!(list(p("a/1"), None, 100).await, ["a/1", "a/10"]);
    assert_eq!(list(p("é"), None, 100).await, ["é/x", "éa"]);
    assert_eq!(
        list(p("f\u{10FFFF}"), None, 100).await,
        ["f\u{10FFFF}/x", "f\u{10FFFF}\u{10FFFF}"],
        "prefix ending in the highest character"
    );
    assert_eq!(
        list(p("a_b/x"), None, 100).await,
        ["a_b/x"],
        "exact name is its own prefix"
    );
    assert!(list(p("zz"), None, 100).await.is_empty());
    assert!(list(p("a_b/xy"), None, 100).await.is_empty());

    // Pagination: after_name is exclusive, limit is honoured.
    assert_eq!(list(p("a/"), None, 2).await, ["a/1", "a/10"]);
    assert_eq!(list(p("a/"), Some(p("a/10")), 2).await, ["a/2", "a/3"]);
    assert_eq!(list(p("a/"), Some(p("a/3")), 2).await, Vec::<String>::new());
    assert_eq!(
        list(p("a/"), Some(p("a/25")), 10).await,
        ["a/3"],
        "after a name not stored"
    );
    assert_eq!(
        list(p("a/"), Some(p("0")), 10).await.len(),
        4,
        "after a name before the prefix"
    );
    assert!(list(p("a/"), None, 0).await.is_empty(), "limit 0");
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = list(root.clone(), after.clone(), 5).await;
        if page.is_empty() {
            break;
        }
        after = page.last().map(|n| p(n));
        paged.extend(page);
    }
    assert_eq!(paged, all_sorted, "paging through everything");
    // The empty prefix matches every name.
    assert_eq!(
        list(String::new(), Some(root.clone()), 3).await,
        all_sorted[..3],
        "empty prefix"
    );

    // Listing returns full metadata.
    let got = ok(store.list_items(&p("g"), None, 10).await, "list_items");
    assert_eq!(got.len(), 1);
    let mut expected = item(&run, &p("g"));
    expected.id = got[0].id;
    assert_eq!(got[0], expected);
}

/// Tokens written in the audit batch of their logins: one transaction;
/// a token whose auth method is gone (or whose hash exists) is skipped
/// without failing the batch.
pub async fn tokens_with_audit(store: &dyn Store) {
    let run = Run::new();
    let am = auth_method(&run, "tok-audit");
    ok(
        store.create_auth_method(&am, au!()).await,
        "create_auth_method",
    );
    let now = T0 + 10_000;
    let a = token(&run, &am, 1, now + 60_000);
    let b = token(&run, &am, 2, now + 60_000);
    let mut orphan = token(&run, &am, 3, now + 60_000);
    orphan.auth_method_name = run.name("am/none");
    let mut wrong_id = token(&run, &am, 4, now + 60_000);
    wrong_id.access_id = "p-notthisone".into();
    let who = run.word("login");
    let mut recs: Vec<AuditRecord> = (0..2)
        .map(|i| audit_record(&who, "/am", "auth", T0 + i))
        .collect();
    let (seq0, _) = head_pair(store).await;
    ok(
        store
            .append_audit(
                &mut recs,
                &[a.clone(), orphan.clone(), wrong_id.clone(), b.clone()],
                &[],
                &TestSealer,
            )
            .await,
        "append_audit with tokens",
    );
    assert!(recs.iter().all(|r| r.seq > seq0), "records appended");
    for t in [&a, &b] {
        assert_eq!(
            ok(store.get_token(&t.token_hash).await, "get").as_ref(),
            Some(t),
            "token written with its audit batch"
        );
    }
    for t in [&orphan, &wrong_id] {
        assert_eq!(
            ok(store.get_token(&t.token_hash).await, "get skipped"),
            None,
            "a token whose auth method does not exist is not written"
        );
    }
    // A repeated hash is skipped, the first token stays.
    let mut dup = a.clone();
    dup.identity = "someone-else".into();
    ok(
        store.append_audit(&mut [], &[dup], &[], &TestSealer).await,
        "tokens without records",
    );
    assert_eq!(
        ok(store.get_token(&a.token_hash).await, "get").as_ref(),
        Some(&a)
    );
}

pub async fn tokens(store: &dyn Store) {
    let run = Run::new();
    let am = auth_method(&run, "tok");
    ok(
        store.create_auth_method(&am, au!()).await,
        "create_auth_method",
    );
    let now = T0 + 10_000;
    let live = token(&run, &am, 1, now + 60_000);
    let expired = token(&run, &am, 2, now - 1);
    let boundary = token(&run, &am, 3, now);
    for t in [&live, &expired, &boundary] {
        insert_token(store, t).await;
    }
    // A hash that exists already is not overwritten.
    let mut dup = live.clone();
    dup.identity = "someone else".into();
    insert_token(store, &dup).await;
    assert_eq!(
        ok(store.get_token(&live.token_hash).await, "get").as_ref(),
        Some(&live),
        "a duplicate token hash must not replace the stored token"
    );
    // A token whose auth method was deleted meanwhile is skipped.
    let mut orphan = token(&run, &am, 4, now + 60_000);
    orphan.auth_method_name = run.name("am/none");
    insert_token(store, &orphan).await;
    assert_eq!(
        ok(store.get_token(&orphan.token_hash).await, "get orphan"),
        None,
        "a token of a missing auth method is not stored"
    );

    assert_eq!(
        ok(store.get_token(&live.token_hash).await, "get").as_ref(),
        Some(&live)
    );
    assert_eq!(
        ok(store.get_token(&expired.token_hash).await, "get expired").as_ref(),
        Some(&expired),
        "get_token returns expired tokens (the caller checks)"
    );
    assert_eq!(
        ok(store.get_token(b"no such token").await, "get missing"),
        None
    );

    let purged = ok(
        store.purge_expired_tokens(now).await,
        "purge_expired_tokens",
    );
    assert!(purged >= 2, "purged {purged}, expected at least 2");
    assert_eq!(ok(store.get_token(&expired.token_hash).await, "get"), None);
    assert_eq!(
        ok(store.get_token(&boundary.token_hash).await, "get"),
        None,
        "a token expiring at now_ms is expired"
    );
    assert!(ok(store.get_token(&live.token_hash).await, "get").is_some());

    assert!(ok(
        store.revoke_token(&live.token_hash, au!()).await,
        "revoke_token"
    ));
    assert!(!ok(
        store.revoke_token(&live.token_hash, au!()).await,
        "revoke again"
    ));
    assert_eq!(
        ok(store.get_token(&live.token_hash).await, "get revoked"),
        None
    );
}

/// Check the records after `(start_seq, start_hash)` as stored: gapless,
/// linked and sealed by [`TestSealer`]; and the head points at the last one.
/// Returns how many records were checked.
async fn verify_chain_from(store: &dyn Store, start_seq: i64, start_hash: &[u8]) -> i64 {
    let mut expected_seq = start_seq + 1;
    let mut prev = start_hash.to_vec();
    loop {
        let page = ok(
            store.audit_range(expected_seq - 1, 1000).await,
            "audit_range",
        );
        if page.is_empty() {
            break;
        }
        for r in &page {
            assert_eq!(r.seq, expected_seq, "audit chain gap");
            assert_eq!(r.prev_hash, prev, "audit record {} is not linked", r.seq);
            assert_eq!(r.hash, TestSealer.seal(r), "audit record {} hash", r.seq);
            prev = r.hash.clone();
            expected_seq += 1;
        }
    }
    let head = head_pair(store).await;
    assert_eq!(
        head,
        (expected_seq - 1, prev),
        "audit head is the last record"
    );

    if start_seq == 0 {
        // The whole chain: also run the verifier the server uses.
        let mut verifier = ChainVerifier::new();
        let mut after = 0;
        loop {
            let page = ok(store.audit_range(after, 1000).await, "audit_range");
            let Some(last) = page.last() else { break };
            after = last.seq;
            for r in &page {
                if let Err(e) = verifier.push(&TestSealer, r) {
                    panic!("audit chain does not verify: {e}");
                }
            }
        }
        let full = ok(store.audit_head().await, "audit_head");
        if let Err(e) = verifier.finish(&TestSealer, &full) {
            panic!("audit chain does not verify: {e}");
        }
    }
    expected_seq - 1 - start_seq
}

pub async fn audit_chain(store: &dyn Store) {
    let run = Run::new();
    let (seq0, hash0) = head_pair(store).await;
    if seq0 == 0 {
        assert!(hash0.is_empty(), "an empty chain has an empty head hash");
    }
    let who = run.word("chain");

    // Nothing to append: no change.
    ok(
        store.append_audit(&mut [], &[], &[], &TestSealer).await,
        "append nothing",
    );
    assert_eq!(head_pair(store).await, (seq0, hash0.clone()));

    let mut batch: Vec<AuditRecord> = (0..3)
        .map(|i| audit_record(&who, "/obj", "get-secret-value", T0 + i))
        .collect();
    batch[1].outcome = Outcome::Denied;
    batch[1].status = 403;
    batch[1].error = "not authorized".into();
    batch[2].outcome = Outcome::Error;
    batch[2].status = 500;
    ok(
        store.append_audit(&mut batch, &[], &[], &TestSealer).await,
        "append_audit",
    );

    // The store filled in seq, prev_hash and hash.
    assert_eq!(
        batch.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [seq0 + 1, seq0 + 2, seq0 + 3]
    );
    assert_eq!(
        batch[0].prev_hash, hash0,
        "first record links to the old head"
    );
    assert_eq!(batch[1].prev_hash, batch[0].hash);
    assert_eq!(batch[2].prev_hash, batch[1].hash);
    for r in &batch {
        assert_eq!(
            r.hash,
            TestSealer.seal(r),
            "hash covers the final seq and prev_hash"
        );
    }
    assert_eq!(head_pair(store).await, (seq0 + 3, batch[2].hash.clone()));
    // ... and stored exactly that.
    assert_eq!(ok(store.audit_range(seq0, 10).await, "audit_range"), batch);
    assert_eq!(
        ok(store.audit_range(seq0 + 1, 1).await, "audit_range limit 1"),
        batch[1..2]
    );
    assert!(ok(store.audit_range(seq0 + 3, 10).await, "audit_range at head").is_empty());
    assert!(ok(store.audit_range(seq0, 0).await, "audit_range limit 0").is_empty());

    // A big batch: one transaction, consecutive seqs (exercises chunked inserts).
    let mut big: Vec<AuditRecord> = (0..517)
        .map(|i| audit_record(&who, &format!("/obj/{i}"), "list-items", T0 + 100 + i))
        .collect();
    ok(
        store.append_audit(&mut big, &[], &[], &TestSealer).await,
        "append 517",
    );
    assert_eq!(big[0].seq, seq0 + 4);
    assert_eq!(big[516].seq, seq0 + 520);
    assert_eq!(big[0].prev_hash, batch[2].hash);
    assert_eq!(
        ok(store.audit_range(seq0 + 3, 10_000).await, "audit_range"),
        big,
        "stored big batch"
    );
    assert_eq!(
        ok(store.audit_range(0, 20_000).await, "audit_range").len(),
        usize::try_from((seq0 + 520).min(10_000)).unwrap_or(10_000),
        "audit_range limit is capped at 10 000"
    );

    assert_eq!(verify_chain_from(store, seq0, &hash0).await, 520);
}

pub async fn audit_query(store: &dyn Store) {
    let run = Run::new();
    let alice = run.word("alice");
    let bob = run.word("bob");
    let obj_a = run.name("obj/a");
    let obj_b = run.name("obj/b");
    let read = run.word("get-secret-value");
    let list = run.word("list-items");
    let mut recs = vec![
        audit_record(&alice, &obj_a, &read, T0 + 10),
        audit_record(&alice, &obj_b, &list, T0 + 20),
        audit_record(&bob, &obj_a, &read, T0 + 30),
        audit_record(&bob, &obj_b, &read, T0 + 40),
        audit_record(&alice, &obj_a, &read, T0 + 50),
    ];
    recs[2].outcome = Outcome::Denied;
    recs[2].status = 403;
    recs[4].outcome = Outcome::Error;
    recs[4].status = 500;
    ok(
        store.append_audit(&mut recs, &[], &[], &TestSealer).await,
        "append_audit",
    );
    let seqs = |r: Vec<AuditRecord>| r.into_iter().map(|r| r.seq).collect::<Vec<_>>();
    let s: Vec<i64> = recs.iter().map(|r| r.seq).collect();
    let q = |f: &dyn Fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        async move { seqs(ok(store.query_audit(&q).await, "query_audit")) }
    };

    assert_eq!(
        q(&|q| q.access_id = Some(alice.clone())).await,
        [s[0], s[1], s[4]]
    );
    assert_eq!(
        q(&|q| q.object = Some(obj_a.clone())).await,
        [s[0], s[2], s[4]]
    );
    assert_eq!(q(&|q| q.operation = Some(list.clone())).await, [s[1]]);
    assert_eq!(
        q(&|q| {
            q.operation = Some(read.clone());
            q.access_id = Some(bob.clone());
        })
        .await,
        [s[2], s[3]],
        "filters are AND-ed"
    );
    assert_eq!(
        q(&|q| {
            q.object = Some(obj_a.clone());
            q.outcome = Some(Outcome::Denied);
        })
        .await,
        [s[2]]
    );
    assert_eq!(
        q(&|q| {
            q.object = Some(obj_a.clone());
            q.outcome = Some(Outcome::Allowed);
        })
        .await,
        [s[0]]
    );
    assert_eq!(
        q(&|q| {
            q.object = Some(obj_a.clone());
            q.since_ms = Some(T0 + 30);
        })
        .await,
        [s[2], s[4]],
        "since_ms is inclusive"
    );
    assert_eq!(
        q(&|q| {
            q.object = Some(obj_a.clone());
            q.until_ms = Some(T0 + 30);
        })
        .await,
        [s[0]],
        "until_ms is exclusive"
    );
    assert_eq!(
        q(&|q| {
            q.access_id = Some(alice.clone());
            q.since_ms = Some(T0 + 15);
            q.until_ms = Some(T0 + 51);
        })
        .await,
        [s[1], s[4]]
    );
    assert_eq!(
        q(&|q| {
            q.access_id = Some(alice.clone());
            q.after_seq = Some(s[0]);
        })
        .await,
        [s[1], s[4]],
        "after_seq pages"
    );
    assert_eq!(
        q(&|q| {
            q.object = Some(obj_b.clone());
            q.limit = 1;
        })
        .await,
        [s[1]],
        "limit"
    );
    assert_eq!(
        q(&|q| {
            q.object = Some(obj_b.clone());
            q.limit = -5;
        })
        .await,
        [s[1], s[3]],
        "limit <= 0 means the default"
    );
    assert!(
        q(&|q| q.access_id = Some(run.word("nobody")))
            .await
            .is_empty()
    );
    // Returned records are complete.
    let got = ok(
        store
            .query_audit(&AuditQuery {
                object: Some(obj_b.clone()),
                access_id: Some(bob.clone()),
                ..AuditQuery::default()
            })
            .await,
        "query_audit",
    );
    assert_eq!(got, [recs[3].clone()]);
    // No filter: the newest records are all there, in order.
    let everything = ok(
        store
            .query_audit(&AuditQuery {
                after_seq: Some(s[0] - 1),
                ..AuditQuery::default()
            })
            .await,
        "query_audit",
    );
    assert_eq!(seqs(everything)[..5], s[..]);
}

/// Many concurrent appenders (on PostgreSQL: many connections contending
/// for the chain lock) leave one gapless, verifiable chain.
pub async fn concurrent_audit(store: &dyn Store) {
    let run = Run::new();
    let (seq0, hash0) = head_pair(store).await;
    let who = run.word("conc");
    let tasks = (0..16).map(|task| {
        let who = who.clone();
        async move {
            let mut mine = Vec::new();
            for batch in 0..8 {
                let mut recs: Vec<AuditRecord> = (0..(1 + (task + batch) % 5))
                    .map(|i| audit_record(&who, &format!("/t{task}/{batch}/{i}"), "op", T0))
                    .collect();
                ok(
                    store.append_audit(&mut recs, &[], &[], &TestSealer).await,
                    "concurrent append_audit",
                );
                // Within a batch the seqs are consecutive.
                assert!(recs.windows(2).all(|w| w[1].seq == w[0].seq + 1));
                mine.extend(recs.into_iter().map(|r| r.seq));
            }
            mine
        }
    });
    let mut all: Vec<i64> = join_all(tasks).await.into_iter().flatten().collect();
    let n = i64::try_from(all.len()).unwrap_or(i64::MAX);
    all.sort_unstable();
    assert_eq!(
        all,
        ((seq0 + 1)..=(seq0 + n)).collect::<Vec<_>>(),
        "unique, gapless seqs"
    );
    assert_eq!(verify_chain_from(store, seq0, &hash0).await, n);
}

/// Of several concurrent updates from the same version, exactly one wins.
pub async fn concurrent_add_version(store: &dyn Store) {
    let run = Run::new();
    let (it, key) = item_with_versions(store, &run, &run.name("race/a"), 1).await;
    for round in 1..=4 {
        let attempts = (0..8u8).map(|n| {
            let v = sealed(key, round + 1, n + 10);
            async move { (store.add_version(it.id, round, &v, 3, au!()).await, v) }
        });
        let results = join_all(attempts).await;
        let mut winners = Vec::new();
        for (r, v) in results {
            match r {
                Ok(()) => winners.push(v),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("concurrent add_version: unexpected error {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one update wins");
        assert_eq!(
            ok(store.get_item_value(&it.name, None).await, "latest").map(|x| x.1),
            Some(winners[0].clone()),
            "the winner's value is stored"
        );
    }
    let listed = versions_of(&ok(store.list_versions(it.id).await, "list_versions"));
    assert_eq!(listed, [3, 4, 5], "no duplicate versions, pruned to 3");
}

// ---- Universal Identity tokens ----

/// A Universal Identity auth method.
fn uid_method(run: &Run, suffix: &str) -> AuthMethod {
    AuthMethod {
        kind: AuthMethodKind::UniversalIdentity,
        access_key_hash: None,
        bound_ips: Vec::new(),
        force_sub_claims: false,
        config: serde_json::json!({"ttl_minutes": 60}),
        ..auth_method(run, suffix)
    }
}

/// A live UID token (expires an hour after `T0`); `parent` sets depth.
fn uid(run: &Run, method: &AuthMethod, suffix: &str, parent: Option<&UidToken>) -> UidToken {
    UidToken {
        token_id: run.word(&format!("uid-{suffix}")),
        token_hash: uid_hash(run, suffix, 0),
        parent_id: parent.map(|p| p.token_id.clone()),
        access_id: method.access_id.clone(),
        depth: parent.map_or(1, |p| p.depth + 1),
        ttl_secs: 3600,
        expires_ms: T0 + 3_600_000,
        deny_rotate: false,
        deny_inheritance: false,
        comment: format!("token {suffix}"),
        revoked: false,
        last_rotated_ms: 0,
        created_ms: T0,
        modified_ms: T0,
    }
}

/// A distinct fake keyed hash per run, token and generation.
fn uid_hash(run: &Run, suffix: &str, generation: u8) -> Vec<u8> {
    let mut h = format!("{}:{suffix}", run.tag).into_bytes();
    h.push(generation);
    h
}

/// A session token minted from a UID token (its identity is the UID token's ID).
fn session_of(run: &Run, method: &AuthMethod, n: u8, identity: &str) -> TokenRecord {
    TokenRecord {
        identity: identity.to_owned(),
        ..token(run, method, n, T0 + 3_600_000)
    }
}

pub async fn uid_tokens(store: &dyn Store) {
    let run = Run::new();
    let am = uid_method(&run, "uid");
    let other = uid_method(&run, "uidother");
    ok(
        store.create_auth_method(&am, au!()).await,
        "create_auth_method",
    );
    ok(
        store.create_auth_method(&other, au!()).await,
        "create_auth_method",
    );

    let root = uid(&run, &am, "root", None);
    ok(store.insert_uid_token(&root, au!()).await, "insert root");
    assert_eq!(
        ok(store.get_uid_token(&root.token_id).await, "get").as_ref(),
        Some(&root)
    );
    assert_eq!(
        ok(
            store.get_uid_token_by_hash(&root.token_hash).await,
            "by hash"
        )
        .as_ref(),
        Some(&root)
    );
    assert_eq!(
        ok(store.get_uid_token("uid-nonexistent").await, "get missing"),
        None
    );
    assert_eq!(
        ok(
            store.get_uid_token_by_hash(b"no such hash").await,
            "missing hash"
        ),
        None
    );
    expect_conflict(
        store.insert_uid_token(&root, au!()).await,
        &root.token_id,
        "same token ID",
    );
    let same_hash = UidToken {
        token_id: run.word("uid-samehash"),
        ..root.clone()
    };
    expect_conflict(
        store.insert_uid_token(&same_hash, au!()).await,
        "UID token",
        "same hash",
    );
    // The message of a hash conflict names the ID, never the hash.
    match store.insert_uid_token(&same_hash, au!()).await {
        Err(StoreError::Conflict(msg)) => assert!(!msg.contains(":root"), "{msg}"),
        other => panic!("same hash: expected Conflict, got {other:?}"),
    }

    let child = uid(&run, &am, "child", Some(&root));
    let grandchild = uid(&run, &am, "grandchild", Some(&child));
    ok(store.insert_uid_token(&child, au!()).await, "insert child");
    ok(
        store.insert_uid_token(&grandchild, au!()).await,
        "insert grandchild",
    );
    let with_flags = UidToken {
        deny_rotate: true,
        deny_inheritance: true,
        comment: "flags, and a 'quote'".into(),
        ..uid(&run, &am, "flags", Some(&root))
    };
    ok(
        store.insert_uid_token(&with_flags, au!()).await,
        "insert with flags",
    );
    assert_eq!(
        ok(store.get_uid_token(&with_flags.token_id).await, "get").as_ref(),
        Some(&with_flags),
        "flags and comment round-trip"
    );

    // Children need a live parent of the same method.
    expect_not_found(
        store
            .insert_uid_token(
                &uid(&run, &am, "orphan", Some(&uid(&run, &am, "nope", None))),
                au!(),
            )
            .await,
        &run.word("uid-nope"),
        "child of a missing parent",
    );
    let foreign_root = uid(&run, &other, "foreign", None);
    ok(
        store.insert_uid_token(&foreign_root, au!()).await,
        "insert foreign root",
    );
    let cross = uid(&run, &am, "cross", Some(&foreign_root));
    expect_not_found(
        store.insert_uid_token(&cross, au!()).await,
        &foreign_root.token_id,
        "child of another method's token",
    );
    let late = UidToken {
        created_ms: root.expires_ms,
        ..uid(&run, &am, "late", Some(&root))
    };
    expect_not_found(
        store.insert_uid_token(&late, au!()).await,
        &root.token_id,
        "child of a parent expired at creation time",
    );
    let mut no_method = uid(&run, &am, "nomethod", None);
    no_method.access_id = format!("p-{}zzu", run.tag);
    expect_not_found(
        store.insert_uid_token(&no_method, au!()).await,
        &no_method.access_id,
        "token of a missing auth method",
    );

    let listed = ok(
        store.list_uid_tokens(&am.access_id).await,
        "list_uid_tokens",
    );
    let ids: Vec<&str> = listed.iter().map(|t| t.token_id.as_str()).collect();
    assert_eq!(ids.len(), 4, "list_uid_tokens: {ids:?}");
    for t in &listed {
        if let Some(p) = &t.parent_id {
            let parent_at = ids.iter().position(|i| i == p).expect("parent listed");
            let at = ids.iter().position(|i| *i == t.token_id).expect("listed");
            assert!(parent_at < at, "parents before children: {ids:?}");
        }
    }
    assert_eq!(
        ok(store.list_uid_tokens(&other.access_id).await, "list other").len(),
        1,
        "tokens are listed per method"
    );
    assert_eq!(
        ok(
            store.count_live_uid_tokens(&am.access_id, T0).await,
            "count"
        ),
        4
    );
    assert_eq!(
        ok(
            store
                .count_live_uid_tokens(&am.access_id, root.expires_ms)
                .await,
            "count at expiry"
        ),
        0,
        "a token expiring at now_ms is not live"
    );

    // Rotation is a compare-and-swap on the current hash.
    let now = T0 + 60_000;
    let new_hash = uid_hash(&run, "root", 1);
    assert_eq!(
        ok(
            store
                .rotate_uid_token(&root.token_id, b"stale hash", &new_hash, now, au!())
                .await,
            "rotate from a wrong hash"
        ),
        None
    );
    assert_eq!(
        ok(
            store
                .rotate_uid_token(&root.token_id, &root.token_hash, &new_hash, now, au!())
                .await,
            "rotate"
        ),
        Some(now + root.ttl_secs * 1000),
        "rotation restarts the TTL"
    );
    let rotated = ok(store.get_uid_token(&root.token_id).await, "get").expect("rotated root");
    assert_eq!(rotated.token_hash, new_hash);
    assert_eq!(rotated.expires_ms, now + 3_600_000);
    assert_eq!(rotated.last_rotated_ms, now);
    assert_eq!(rotated.modified_ms, now);
    assert_eq!(
        ok(
            store.get_uid_token_by_hash(&root.token_hash).await,
            "old hash"
        ),
        None,
        "the old secret is gone"
    );
    assert_eq!(
        ok(
            store
                .rotate_uid_token(
                    &root.token_id,
                    &root.token_hash,
                    &uid_hash(&run, "root", 2),
                    now,
                    au!()
                )
                .await,
            "rotate from the old hash"
        ),
        None,
        "the old hash cannot rotate again"
    );
    assert_eq!(
        ok(
            store
                .rotate_uid_token(
                    &with_flags.token_id,
                    &with_flags.token_hash,
                    &uid_hash(&run, "flags", 1),
                    now,
                    au!()
                )
                .await,
            "rotate deny-rotate"
        ),
        None,
        "deny-rotate tokens do not rotate"
    );
    assert_eq!(
        ok(
            store
                .rotate_uid_token(
                    &child.token_id,
                    &child.token_hash,
                    &uid_hash(&run, "child", 1),
                    child.expires_ms,
                    au!()
                )
                .await,
            "rotate expired"
        ),
        None,
        "expired tokens do not rotate"
    );
    expect_conflict(
        store
            .rotate_uid_token(&child.token_id, &child.token_hash, &new_hash, now, au!())
            .await,
        "UID token",
        "rotate to a hash in use",
    );

    // Tokens go with their auth method.
    assert!(ok(
        store.delete_auth_method(&am.name, au!()).await,
        "delete_auth_method"
    ));
    assert_eq!(
        ok(
            store.list_uid_tokens(&am.access_id).await,
            "list after delete"
        ),
        Vec::<UidToken>::new()
    );
    assert_eq!(ok(store.get_uid_token(&child.token_id).await, "get"), None);
    assert_eq!(
        ok(store.list_uid_tokens(&other.access_id).await, "other kept").len(),
        1
    );
}

pub async fn uid_revocation(store: &dyn Store) {
    let run = Run::new();
    let am = uid_method(&run, "rev");
    ok(
        store.create_auth_method(&am, au!()).await,
        "create_auth_method",
    );
    let root = uid(&run, &am, "root", None);
    let child = uid(&run, &am, "child", Some(&root));
    let grandchild = uid(&run, &am, "grandchild", Some(&child));
    let sibling = uid(&run, &am, "sibling", Some(&root));
    for t in [&root, &child, &grandchild, &sibling] {
        ok(store.insert_uid_token(t, au!()).await, "insert_uid_token");
    }
    let sessions: Vec<TokenRecord> = [&root, &child, &grandchild, &sibling]
        .iter()
        .enumerate()
        .map(|(n, t)| session_of(&run, &am, n as u8 + 10, &t.token_id))
        .collect();
    let unrelated = session_of(&run, &am, 20, "some-other-identity");
    for t in sessions.iter().chain([&unrelated]) {
        insert_token(store, t).await;
    }
    let live = |t: &TokenRecord| {
        let hash = t.token_hash.clone();
        async move { ok(store.get_token(&hash).await, "get_token").is_some() }
    };

    // revokeSelf: only the token; its children stay.
    let now = T0 + 1000;
    assert_eq!(
        ok(
            store
                .revoke_uid_token(&child.token_id, false, now, au!())
                .await,
            "revoke self"
        ),
        std::slice::from_ref(&child.token_id)
    );
    let c = ok(store.get_uid_token(&child.token_id).await, "get").expect("child kept");
    assert!(c.revoked && c.modified_ms == now, "child revoked: {c:?}");
    assert!(
        !ok(store.get_uid_token(&grandchild.token_id).await, "get")
            .expect("gc")
            .revoked
    );
    assert!(
        !live(&sessions[1]).await,
        "sessions minted from the child are deleted"
    );
    assert!(live(&sessions[2]).await, "the grandchild's sessions stay");
    assert!(live(&sessions[0]).await, "the root's sessions stay");
    assert_eq!(
        ok(
            store
                .revoke_uid_token(&child.token_id, false, now, au!())
                .await,
            "revoke again"
        ),
        Vec::<String>::new(),
        "revoking twice revokes nothing new"
    );
    expect_not_found(
        store
            .insert_uid_token(&uid(&run, &am, "late", Some(&child)), au!())
            .await,
        &child.token_id,
        "child of a revoked token",
    );
    assert_eq!(
        ok(
            store
                .rotate_uid_token(
                    &child.token_id,
                    &child.token_hash,
                    &uid_hash(&run, "child", 1),
                    now,
                    au!()
                )
                .await,
            "rotate revoked"
        ),
        None,
        "revoked tokens do not rotate"
    );

    // revokeAll: the whole subtree, through the already revoked child.
    let mut all = ok(
        store
            .revoke_uid_token(&root.token_id, true, now + 1, au!())
            .await,
        "revoke all",
    );
    all.sort();
    let mut expected = vec![
        root.token_id.clone(),
        grandchild.token_id.clone(),
        sibling.token_id.clone(),
    ];
    expected.sort();
    assert_eq!(all, expected, "newly revoked by revokeAll");
    for t in ok(store.list_uid_tokens(&am.access_id).await, "list") {
        assert!(t.revoked, "{} revoked", t.token_id);
    }
    for s in &sessions {
        assert!(!live(s).await, "sessions of the subtree are deleted");
    }
    assert!(live(&unrelated).await, "other sessions of the method stay");
    assert_eq!(
        ok(
            store.count_live_uid_tokens(&am.access_id, T0).await,
            "count"
        ),
        0
    );
    expect_not_found(
        store
            .revoke_uid_token(&run.word("uid-none"), true, now, au!())
            .await,
        &run.word("uid-none"),
        "revoke a missing token",
    );
}

pub async fn concurrent_uid_rotation(store: &dyn Store) {
    let run = Run::new();
    let am = uid_method(&run, "rot");
    ok(
        store.create_auth_method(&am, au!()).await,
        "create_auth_method",
    );
    let t = uid(&run, &am, "race", None);
    ok(store.insert_uid_token(&t, au!()).await, "insert_uid_token");
    let mut current = t.token_hash.clone();
    for round in 1..=3u8 {
        let attempts = (0..8u8).map(|n| {
            let old = current.clone();
            let new = uid_hash(&run, &format!("race{round}"), n);
            let id = t.token_id.clone();
            async move {
                let r = store
                    .rotate_uid_token(&id, &old, &new, T0 + i64::from(round), au!())
                    .await;
                (r, new)
            }
        });
        let mut winners = Vec::new();
        for (r, new) in join_all(attempts).await {
            if ok(r, "concurrent rotate").is_some() {
                winners.push(new);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one rotation wins");
        let stored = ok(store.get_uid_token(&t.token_id).await, "get").expect("token");
        assert_eq!(
            stored.token_hash, winners[0],
            "the winner's secret is current"
        );
        current = winners.remove(0);
    }
}

/// Children created while their ancestor's subtree is revoked either fail
/// or end up revoked: none survives live.
pub async fn concurrent_uid_child_and_revoke(store: &dyn Store) {
    let run = Run::new();
    let am = uid_method(&run, "crev");
    ok(
        store.create_auth_method(&am, au!()).await,
        "create_auth_method",
    );
    let root = uid(&run, &am, "root", None);
    let mid = uid(&run, &am, "mid", Some(&root));
    ok(store.insert_uid_token(&root, au!()).await, "insert root");
    ok(store.insert_uid_token(&mid, au!()).await, "insert mid");
    let children: Vec<UidToken> = (0..12)
        .map(|n| {
            uid(
                &run,
                &am,
                &format!("kid{n}"),
                Some(if n % 2 == 0 { &mid } else { &root }),
            )
        })
        .collect();
    let mut recs: Vec<AuditRecord> = children.iter().map(|_| change_record("child")).collect();
    let mut revoke_rec = change_record("revoke");
    let inserts = join_all(
        children
            .iter()
            .zip(recs.iter_mut())
            .map(|(c, rec)| store.insert_uid_token(c, Audit::new(rec, &TestSealer))),
    );
    let revoke = store.revoke_uid_token(
        &root.token_id,
        true,
        T0 + 5,
        Audit::new(&mut revoke_rec, &TestSealer),
    );
    let (inserted, revoked) = futures::join!(inserts, revoke);
    ok(revoked, "revoke all");
    for r in inserted {
        match r {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => panic!("concurrent child insert: unexpected error {e}"),
        }
    }
    for t in ok(store.list_uid_tokens(&am.access_id).await, "list") {
        assert!(
            t.revoked,
            "{} escaped the revocation of its ancestor",
            t.token_id
        );
    }
}

// ---- targets, producers (dynamic and rotated secrets), leases ----

fn target(run: &Run, suffix: &str, key_id: i64) -> Target {
    Target {
        id: run.id(),
        name: run.name(&format!("target/{suffix}")),
        target_type: "mysql".into(),
        description: "db".into(),
        details: serde_json::json!({"host": "127.0.0.1", "port": 3306}),
        key_id,
        sealed: vec![3; 40],
        version: 1,
        created_ms: T0,
        modified_ms: T0,
    }
}

fn producer(item_id: i64, target: Option<&str>) -> Producer {
    Producer {
        item_id,
        target_name: target.map(str::to_owned),
        settings: serde_json::json!({"db_type": "mysql"}),
        status: "ProducerConnected".into(),
        pending_version: None,
        last_rotation_ms: 0,
        next_rotation_ms: 0,
    }
}

fn lease(run: &Run, item: &Item, n: u32, expires_ms: i64) -> Lease {
    Lease {
        id: run.word(&format!("lease{n}")),
        item_id: item.id,
        item_name: item.name.clone(),
        access_id: "p-x".into(),
        identity: "job".into(),
        token_hash: None,
        created_ms: T0,
        expires_ms,
        state: LeaseState::Live,
        attempts: 0,
        next_attempt_ms: 0,
        last_error: String::new(),
        revoked_ms: 0,
    }
}

/// Targets, producers and leases: every change audited, targets guarded
/// while used, two-phase rotation, lease caps, and claims that never give
/// one lease to two nodes.
pub async fn producers_and_leases(store: &dyn Store) {
    let run = Run::new();
    let key = data_key(store, &run).await;
    // targets
    let t = target(&run, "a", key);
    let (r, changed) = checked!(store, "create_target", 0, |a| store.create_target(&t, a));
    ok(r, "create_target");
    assert!(changed);
    let (r, changed) = checked!(store, "create_target dup", 0, |a| store
        .create_target(&t, a));
    assert!(
        matches!(r, Err(StoreError::Conflict(_))) && !changed,
        "duplicate target"
    );
    let t2 = Target {
        version: 2,
        description: "db 2".into(),
        ..t.clone()
    };
    let (r, changed) = checked!(store, "update_target", 0, |a| store.update_target(&t2, a));
    ok(r, "update_target");
    assert!(changed);
    let (r, changed) = checked!(store, "update_target stale", 0, |a| store
        .update_target(&t2, a));
    assert!(
        matches!(r, Err(StoreError::Conflict(_))) && !changed,
        "stale target update"
    );
    assert_eq!(
        ok(store.get_target(&t.name).await, "get_target"),
        Some(t2.clone())
    );
    // a dynamic secret using it
    let mut it = item(&run, &run.name("producer/ds"));
    it.item_type = ItemType::DynamicSecret;
    let p = producer(it.id, Some(&t.name));
    let (r, changed) = checked!(store, "create_producer", 0, |a| store.create_producer(
        &it,
        &sealed(key, 1, 1),
        &p,
        a
    ));
    ok(r, "create_producer");
    assert!(changed);
    assert_eq!(
        ok(store.get_producer(it.id).await, "get_producer"),
        Some(p.clone())
    );
    assert_eq!(
        ok(store.target_items(&t.name).await, "target_items"),
        vec![it.name.clone()]
    );
    let (r, changed) = checked!(store, "delete_target in use", 0, |a| store
        .delete_target(&t.name, false, a));
    assert!(
        matches!(r, Err(StoreError::Limit(_))) && !changed,
        "target in use deleted"
    );
    let p2 = Producer {
        status: "error".into(),
        ..p.clone()
    };
    let (r, changed) = checked!(store, "update_producer", 0, |a| store.update_producer(
        &it,
        Some(&sealed(key, 2, 2)),
        &p2,
        1,
        a
    ));
    ok(r, "update_producer");
    assert!(changed);
    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "list_versions")),
        vec![2]
    );
    // leases: cap, claims, finish once, failures
    let mut l1 = lease(&run, &it, 1, T0);
    l1.token_hash = Some(vec![1, 2, 3]);
    let (r, changed) = checked!(store, "insert_lease", 0, |a| store.insert_lease(&l1, 2, a));
    ok(r, "insert_lease");
    assert!(changed);
    let l2 = lease(&run, &it, 2, T0 + 1_000_000);
    ok(store.insert_lease(&l2, 2, au!()).await, "insert_lease 2");
    let l3 = lease(&run, &it, 3, T0);
    let (r, changed) = checked!(store, "insert_lease over cap", 0, |a| store
        .insert_lease(&l3, 2, a));
    assert!(
        matches!(r, Err(StoreError::Limit(_))) && !changed,
        "lease cap"
    );
    // Due at T0 + 10: l1 (expired). Two claimers at once: one gets it.
    let now = T0 + 10;
    let (a, b) = futures::join!(
        store.claim_leases(LeaseScope::Due, "node-a", now, now + 60_000, 10),
        store.claim_leases(LeaseScope::Due, "node-b", now, now + 60_000, 10)
    );
    let (a, b) = (ok(a, "claim a"), ok(b, "claim b"));
    assert_eq!(a.len() + b.len(), 1, "one lease, one claimer: {a:?} {b:?}");
    let (holder, other) = if a.is_empty() {
        ("node-b", "node-a")
    } else {
        ("node-a", "node-b")
    };
    let (r, changed) = checked!(store, "finish_lease by non-holder", 0, |a| store
        .finish_lease(&l1.id, other, now, a));
    assert!(!ok(r, "finish_lease other") && !changed);
    let (r, changed) = checked!(store, "fail_lease", 0, |a| store.fail_lease(
        &l1.id,
        holder,
        "unreachable",
        now + 5_000,
        a
    ));
    assert!(ok(r, "fail_lease") && changed);
    let failing = ok(
        store
            .list_leases(LeaseFilter {
                failing_only: true,
                ..Default::default()
            })
            .await,
        "list failing",
    );
    assert!(
        failing
            .iter()
            .any(|l| l.id == l1.id && l.attempts == 1 && l.last_error == "unreachable")
    );
    // Not due again before its next attempt.
    let early = ok(
        store
            .claim_leases(LeaseScope::Due, holder, now + 1, now + 60_000, 10)
            .await,
        "claim early",
    );
    assert!(
        early.iter().all(|l| l.id != l1.id),
        "retried before its backoff"
    );
    let again = ok(
        store
            .claim_leases(
                LeaseScope::One(&l1.id),
                holder,
                now + 6_000,
                now + 66_000,
                10,
            )
            .await,
        "claim one",
    );
    assert_eq!(again.len(), 1);
    let (r, changed) = checked!(store, "finish_lease", 0, |a| store.finish_lease(
        &l1.id,
        holder,
        now + 6_000,
        a
    ));
    assert!(ok(r, "finish_lease") && changed);
    let (r, changed) = checked!(store, "finish_lease again", 0, |a| store.finish_lease(
        &l1.id,
        holder,
        now + 6_000,
        a
    ));
    assert!(
        !ok(r, "finish_lease again") && !changed,
        "a lease revoked twice"
    );
    let (r, changed) = checked!(store, "set_lease_expiry", 0, |a| store.set_lease_expiry(
        &l2.id,
        T0 + 5,
        now + 6_000,
        a
    ));
    assert!(ok(r, "set_lease_expiry") && changed);
    let (r, changed) = checked!(store, "set_lease_expiry revoked", 0, |a| store
        .set_lease_expiry(&l1.id, T0 + 5, now + 6_000, a));
    assert!(!ok(r, "set_lease_expiry revoked") && !changed);
    let item_scope = ok(
        store
            .claim_leases(
                LeaseScope::Item(it.id),
                "node-a",
                now + 7_000,
                now + 67_000,
                10,
            )
            .await,
        "claim item",
    );
    assert_eq!(
        item_scope.iter().map(|l| l.id.as_str()).collect::<Vec<_>>(),
        vec![l2.id.as_str()]
    );
    ok(
        store.finish_lease(&l2.id, "node-a", now, au!()).await,
        "finish l2",
    );
    let got = ok(store.get_lease(&l1.id).await, "get_lease").expect("lease kept");
    assert_eq!(got.state, LeaseState::Revoked);
    // Leases tied to a session token are due when the token is gone.
    let am = auth_method(&run, "lease-token");
    ok(store.create_auth_method(&am, au!()).await, "create am");
    let tok = token(&run, &am, 5, T0 + 100_000);
    insert_token(store, &tok).await;
    let mut l4 = lease(&run, &it, 4, T0 + 10_000_000);
    l4.token_hash = Some(tok.token_hash.clone());
    ok(
        store.insert_lease(&l4, 10, au!()).await,
        "insert tied lease",
    );
    let claimed = ok(
        store
            .claim_leases(LeaseScope::Due, "node-a", T0 + 20, T0 + 60_000, 10)
            .await,
        "claim tied",
    );
    assert!(
        claimed.iter().all(|l| l.id != l4.id),
        "tied lease due while its token lives"
    );
    ok(
        store.revoke_token(&tok.token_hash, au!()).await,
        "revoke token",
    );
    let claimed = ok(
        store
            .claim_leases(LeaseScope::Due, "node-a", T0 + 30, T0 + 60_000, 10)
            .await,
        "claim tied after revoke",
    );
    assert!(
        claimed.iter().any(|l| l.id == l4.id),
        "tied lease not due after its token went"
    );
    ok(
        store.finish_lease(&l4.id, "node-a", T0 + 30, au!()).await,
        "finish l4",
    );
    assert_eq!(ok(store.count_live_leases().await, "count"), 0);

    // rotation: pending, promote, drop
    let mut rt = item(&run, &run.name("producer/rot"));
    rt.item_type = ItemType::RotatedSecret;
    ok(
        store
            .create_producer(
                &rt,
                &sealed(key, 1, 1),
                &producer(rt.id, Some(&t.name)),
                au!(),
            )
            .await,
        "create rotated",
    );
    assert!(ok(
        store.claim_producer(rt.id, "node-a", T0, T0 + 1000).await,
        "claim"
    ));
    assert!(!ok(
        store
            .claim_producer(rt.id, "node-b", T0 + 1, T0 + 1000)
            .await,
        "claim held"
    ));
    let (r, changed) = checked!(store, "add_pending_version", 0, |a| store
        .add_pending_version(rt.id, 1, &sealed(key, 2, 2), a));
    ok(r, "add_pending_version");
    assert!(changed);
    let (r, changed) = checked!(store, "add_pending_version twice", 0, |a| store
        .add_pending_version(rt.id, 2, &sealed(key, 3, 3), a));
    assert!(r.is_err() && !changed, "two pending rotations");
    let cur = ok(store.get_item_value(&rt.name, None).await, "current").expect("item");
    assert_eq!(cur.1.version, 1, "a pending version is not current");
    assert_eq!(
        ok(store.due_rotations(T0, 10).await, "due"),
        Vec::<String>::new(),
        "a claimed item is not due"
    );
    ok(store.release_producer(rt.id, "node-a").await, "release");
    assert!(
        ok(store.due_rotations(T0, 10).await, "due").contains(&rt.name),
        "a pending rotation is due"
    );
    // Only the holder of the claim may finish a rotation.
    assert!(ok(
        store
            .claim_producer(rt.id, "node-b", T0 + 2, T0 + 1000)
            .await,
        "claim b"
    ));
    let (r, changed) = checked!(store, "promote_pending by non-holder", 0, |a| store
        .promote_pending(
            rt.id,
            "node-a",
            2,
            5,
            "RotationSucceeded",
            T0 + 5,
            T0 + 100,
            a
        ));
    assert!(r.is_err() && !changed, "a node without the claim promoted");
    assert!(ok(
        store
            .claim_producer(rt.id, "node-b", T0 + 3, T0 + 2000)
            .await,
        "the holder extends its claim"
    ));
    let (r, changed) = checked!(store, "promote_pending", 0, |a| store.promote_pending(
        rt.id,
        "node-b",
        2,
        5,
        "RotationSucceeded",
        T0 + 5,
        T0 + 100,
        a
    ));
    ok(r, "promote_pending");
    assert!(changed);
    let cur = ok(store.get_item_value(&rt.name, None).await, "current").expect("item");
    assert_eq!(cur.1.version, 2);
    let rp = ok(store.get_producer(rt.id).await, "producer").expect("producer");
    assert_eq!(
        (rp.pending_version, rp.last_rotation_ms, rp.next_rotation_ms),
        (None, T0 + 5, T0 + 100)
    );
    ok(
        store
            .add_pending_version(rt.id, 2, &sealed(key, 3, 3), au!())
            .await,
        "pending 3",
    );
    assert!(ok(
        store
            .claim_producer(rt.id, "node-a", T0 + 10, T0 + 1000)
            .await,
        "claim again"
    ));
    let (r, changed) = checked!(store, "set_producer_status keep pending", 0, |a| store
        .set_producer_status(rt.id, "node-a", "RotationFailed: both", T0 + 150, None, a));
    ok(r, "set_producer_status keep pending");
    assert!(changed);
    let rp = ok(store.get_producer(rt.id).await, "producer").expect("producer");
    assert_eq!(
        (rp.pending_version, rp.next_rotation_ms),
        (Some(3), T0 + 150)
    );
    assert!(
        ok(store.due_rotations(T0 + 100, 10).await, "due").is_empty(),
        "a pending rotation is not retried before its next try"
    );
    assert!(ok(
        store
            .claim_producer(rt.id, "node-a", T0 + 200, T0 + 1000)
            .await,
        "claim once more"
    ));
    let (r, changed) = checked!(store, "set_producer_status", 0, |a| store
        .set_producer_status(rt.id, "node-a", "RotationFailed: x", T0 + 200, Some(3), a));
    ok(r, "set_producer_status");
    assert!(changed);
    assert_eq!(
        versions_of(&ok(store.list_versions(rt.id).await, "versions")),
        vec![1, 2],
        "the dropped pending version is gone"
    );
    // a dynamic secret with live credentials is not deleted
    let mut d2 = item(&run, &run.name("producer/ds2"));
    d2.item_type = ItemType::DynamicSecret;
    ok(
        store
            .create_producer(&d2, &sealed(key, 1, 1), &producer(d2.id, None), au!())
            .await,
        "create ds2",
    );
    let l5 = lease(&run, &d2, 5, T0 + 10_000_000);
    ok(store.insert_lease(&l5, 10, au!()).await, "insert l5");
    let (r, changed) = checked!(store, "delete_producer_item with a live lease", 0, |a| {
        store.delete_producer_item(d2.id, a)
    });
    assert!(
        matches!(r, Err(StoreError::Limit(_))) && !changed,
        "deleted with a live lease"
    );
    let claimed = ok(
        store
            .claim_leases(LeaseScope::One(&l5.id), "node-a", T0 + 40, T0 + 60_000, 1)
            .await,
        "claim l5",
    );
    assert_eq!(claimed.len(), 1);
    ok(
        store.finish_lease(&l5.id, "node-a", T0 + 40, au!()).await,
        "finish l5",
    );
    let (r, changed) = checked!(store, "delete_producer_item", 0, |a| store
        .delete_producer_item(d2.id, a));
    assert!(ok(r, "delete_producer_item") && changed);
    assert_eq!(ok(store.get_producer(d2.id).await, "producer gone"), None);
    // force deletion of a used target
    let (r, changed) = checked!(store, "delete_target force", 0, |a| store
        .delete_target(&t.name, true, a));
    assert!(ok(r, "delete_target force") && changed);
    assert_eq!(ok(store.get_target(&t.name).await, "get_target"), None);
}

/// Issued-certificate records: unique serials per issuer, listing with
/// filters, revocation once, every change audited.
pub async fn certificates(store: &dyn Store) {
    let run = Run::new();
    let issuer = run.name("pki/issuer");
    let signer = run.name("pki/ca-key");
    let id = run.id();
    let cert = |serial: &str, expires_ms: i64| IssuedCert {
        issuer_id: id,
        issuer_name: issuer.clone(),
        serial: serial.into(),
        kind: CertKind::Pki,
        signer_key: signer.clone(),
        signer_version: 2,
        subject: "CN=api.example.com".into(),
        names: vec!["api.example.com".into(), "10.0.0.1".into()],
        access_id: "p-abc".into(),
        identity: "job 42".into(),
        request_id: "req-1".into(),
        issued_ms: T0,
        expires_ms,
        revoked_ms: 0,
        revocation_reason: String::new(),
    };
    let a = cert("0a1b", T0 + 3_600_000);
    let b = cert("0a1c", T0 + 60_000);
    for c in [&a, &b] {
        let (r, changed) = checked!(store, "insert_certificate", 0, |au| store
            .insert_certificate(c, au));
        ok(r, "insert_certificate");
        assert!(changed);
    }
    let (r, changed) = checked!(store, "insert_certificate dup", 0, |au| store
        .insert_certificate(&a, au));
    assert!(
        matches!(r, Err(StoreError::Conflict(_))) && !changed,
        "a serial is unique per issuer"
    );
    // Group commit: a certificate written with its request's audit record;
    // a duplicate serial fails the whole batch, writing nothing.
    let c = cert("0b00", T0 + 90_000);
    let mut recs = vec![change_record("issue")];
    ok(
        store
            .append_audit(&mut recs, &[], std::slice::from_ref(&c), &TestSealer)
            .await,
        "append_audit with a certificate",
    );
    assert!(recs[0].seq > 0);
    assert_eq!(
        ok(store.get_certificate(id, "0b00").await, "get_certificate"),
        Some(c.clone())
    );
    let before = head_pair(store).await;
    let mut recs = vec![change_record("issue dup")];
    let dup = store
        .append_audit(
            &mut recs,
            &[],
            &[cert("0b01", T0 + 1), c.clone()],
            &TestSealer,
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    assert_eq!(head_pair(store).await, before, "nothing of a failed batch");
    assert_eq!(
        ok(store.get_certificate(id, "0b01").await, "get_certificate"),
        None
    );
    // The same serial under another issuer is another certificate.
    let other = IssuedCert {
        issuer_id: run.id(),
        issuer_name: run.name("pki/other"),
        kind: CertKind::Ssh,
        ..a.clone()
    };
    let (r, _) = checked!(store, "insert_certificate other issuer", 0, |au| store
        .insert_certificate(&other, au));
    ok(r, "insert_certificate other issuer");
    assert_eq!(
        ok(store.get_certificate(id, "0a1b").await, "get_certificate"),
        Some(a.clone())
    );
    assert_eq!(
        ok(store.get_certificate(id, "ffff").await, "get_certificate"),
        None
    );
    let mine = CertFilter {
        issuer_name: Some(issuer.clone()),
        ..CertFilter::default()
    };
    let listed = ok(store.list_certificates(&mine).await, "list_certificates");
    assert_eq!(listed.len(), 3, "this issuer's certificates");
    let live = ok(
        store
            .list_certificates(&CertFilter {
                not_expired_at_ms: T0 + 120_000,
                ..mine.clone()
            })
            .await,
        "list_certificates live",
    );
    assert_eq!(live, vec![a.clone()], "expired ones are filtered out");
    // revocation: once, audited
    let (r, changed) = checked!(store, "revoke_certificate", 0, |au| store
        .revoke_certificate(id, "0a1b", T0 + 5, "key compromise", au));
    assert!(ok(r, "revoke_certificate") && changed);
    let (r, changed) = checked!(store, "revoke_certificate again", 0, |au| store
        .revoke_certificate(id, "0a1b", T0 + 6, "again", au));
    assert!(!ok(r, "revoke_certificate again") && !changed);
    let (r, changed) = checked!(store, "revoke_certificate missing", 0, |au| store
        .revoke_certificate(id, "dead", T0 + 6, "", au));
    assert!(!ok(r, "revoke_certificate missing") && !changed);
    // The other issuer's certificate with the same serial, signed by the
    // same key version, is revoked too: the CRL of that key lists both.
    let (r, _) = checked!(store, "revoke_certificate other issuer", 0, |au| store
        .revoke_certificate(other.issuer_id, "0a1b", T0 + 7, "", au));
    assert!(ok(r, "revoke_certificate other issuer"));
    let revoked = ok(
        store.revoked_certificates(&signer, 2, T0).await,
        "revoked_certificates",
    );
    assert_eq!(revoked.len(), 2, "every revocation of the signing key");
    assert!(
        ok(
            store.revoked_certificates(&signer, 1, T0).await,
            "revoked_certificates"
        )
        .is_empty(),
        "another key version signed none of them"
    );
    let revoked = ok(
        store
            .list_certificates(&CertFilter {
                issuer_name: Some(issuer.clone()),
                revoked_only: true,
                ..CertFilter::default()
            })
            .await,
        "list_certificates revoked",
    );
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].serial, "0a1b");
    assert_eq!(revoked[0].revoked_ms, T0 + 5);
    assert_eq!(revoked[0].revocation_reason, "key compromise");
}

// ---- key rotation (coffer operator rotate-root-key / rotate-data-key) ----

/// Key rotation: adding a data key is a compare-and-swap on every existing
/// key's wrapping (a key wrapped by a replaced root key never gets in);
/// re-wrapping every data key and the derivation key is one all-or-nothing
/// compare-and-swap (a stale key, a missing key or a stale derivation key
/// changes nothing, even after earlier rows of the same transaction were
/// updated); re-sealing replaces a value only while it is exactly as read,
/// so a writer racing with it always wins; each change writes exactly its
/// audit record. Not part of [`run_all`] (it adds data keys, which some
/// checks there assume are only ever the first): run it on its own store.
pub async fn key_rotation(store: &dyn Store) {
    use crate::{DERIVATION_KEY, Resealed, Rewrap, SealedTable};
    let run = Run::new();
    let first = data_key(store, &run).await;
    let before = ok(store.data_keys().await, "data_keys");

    // -- add_data_key --
    let k2 = run.id();
    let mut stale = before.clone();
    stale[0].1.push(0);
    for (what, view) in [
        ("add_data_key, stale wrapping", stale.clone()),
        ("add_data_key, a key missing", Vec::new()),
    ] {
        let (r, changed) = checked!(store, what, 0, |a| store
            .add_data_key(k2, &[9; 40], T0, &view, a));
        assert!(
            matches!(r, Err(StoreError::Conflict(_))) && !changed,
            "{what}: refused ({r:?})"
        );
    }
    // Created "earlier" than the first key: still made the newest.
    let (r, changed) = checked!(store, "add_data_key", 1, |a| store.add_data_key(
        k2,
        &[9; 40],
        T0 - 1000,
        &before,
        a
    ));
    ok(r, "add_data_key");
    assert!(changed);
    let keys = ok(store.data_keys().await, "data_keys");
    assert_eq!(keys.len(), before.len() + 1, "one key added");
    assert_eq!(
        keys.last().map(|k| k.0),
        Some(k2),
        "the new key is the active one"
    );
    let (r, changed) = checked!(store, "add_data_key, ID taken", 0, |a| store
        .add_data_key(k2, &[8; 40], T0, &keys, a));
    assert!(matches!(r, Err(StoreError::Conflict(_))) && !changed);
    assert_eq!(ok(store.data_keys().await, "data_keys"), keys);

    // -- rewrap_keys --
    let d0 = ok(store.get_meta(DERIVATION_KEY).await, "get_meta");
    let rewrapped = |from: &[(i64, Vec<u8>)], tag: &[u8]| -> Vec<(i64, Vec<u8>)> {
        from.iter()
            .map(|(id, w)| (*id, [w.as_slice(), tag].concat()))
            .collect()
    };
    let new1 = rewrapped(&keys, b"-r1");
    let d1 = format!("{}-d1", run.tag);
    // The last key stale: every earlier row is updated in the transaction
    // before the mismatch shows, and all of it must roll back.
    let mut stale_last = keys.clone();
    if let Some(k) = stale_last.last_mut() {
        k.1.push(1);
    }
    let wrong_derivation = Some("not the stored one".to_owned());
    type Keys = Vec<(i64, Vec<u8>)>;
    let bad: [(&str, Keys, Keys, Option<String>); 3] = [
        (
            "rewrap, a key missing",
            keys[1..].to_vec(),
            new1[1..].to_vec(),
            d0.clone(),
        ),
        ("rewrap, stale key", stale_last, new1.clone(), d0.clone()),
        (
            "rewrap, stale derivation key",
            keys.clone(),
            new1.clone(),
            if d0.is_some() { None } else { wrong_derivation },
        ),
    ];
    for (what, old, new, old_d) in &bad {
        let rw = Rewrap {
            old,
            new,
            old_derivation: old_d.as_deref(),
            new_derivation: &d1,
        };
        let (r, changed) = checked!(store, what, 0, |a| store.rewrap_keys(&rw, a));
        assert!(
            matches!(r, Err(StoreError::Conflict(_))) && !changed,
            "{what}: refused ({r:?})"
        );
        assert_eq!(
            ok(store.data_keys().await, "data_keys"),
            keys,
            "{what}: no key changed"
        );
        assert_eq!(
            ok(store.get_meta(DERIVATION_KEY).await, "get_meta"),
            d0,
            "{what}: derivation key unchanged"
        );
    }
    let mut other_ids = new1.clone();
    other_ids[0].0 = run.id();
    let rw = Rewrap {
        old: &keys,
        new: &other_ids,
        old_derivation: d0.as_deref(),
        new_derivation: &d1,
    };
    let (r, changed) = checked!(store, "rewrap, other IDs", 0, |a| store.rewrap_keys(&rw, a));
    assert!(r.is_err() && !changed, "rewrap with other IDs refused");
    // Two rotations in a row: the first inserts or swaps the derivation
    // key, the second swaps it.
    let new2 = rewrapped(&new1, b"-r2");
    let d2 = format!("{}-d2", run.tag);
    for (what, old, new, old_d, new_d) in [
        ("rewrap", &keys, &new1, d0.clone(), &d1),
        ("rewrap again", &new1, &new2, Some(d1.clone()), &d2),
    ] {
        let rw = Rewrap {
            old,
            new,
            old_derivation: old_d.as_deref(),
            new_derivation: new_d,
        };
        let (r, changed) = checked!(store, what, 0, |a| store.rewrap_keys(&rw, a));
        ok(r, what);
        assert!(changed, "{what}: audited");
        assert_eq!(&ok(store.data_keys().await, "data_keys"), new, "{what}");
        assert_eq!(
            ok(store.get_meta(DERIVATION_KEY).await, "get_meta").as_ref(),
            Some(new_d),
            "{what}: derivation key"
        );
        // The same rotation replayed (its view is stale now) changes nothing.
        let (r, changed) = checked!(store, "rewrap replayed", 0, |a| store.rewrap_keys(&rw, a));
        assert!(matches!(r, Err(StoreError::Conflict(_))) && !changed);
    }
    // A data key wrapped under the replaced root key cannot be added.
    let (r, changed) = checked!(store, "add_data_key after rewrap", 0, |a| store
        .add_data_key(run.id(), &[5; 40], T0, &keys, a));
    assert!(matches!(r, Err(StoreError::Conflict(_))) && !changed);

    // -- sealed_rows, count_sealed, reseal_rows (item versions) --
    let (it, _) = item_with_versions(store, &run, &run.name("reseal/item"), 3).await;
    let mine = |rows: Vec<crate::SealedRow>| -> Vec<crate::SealedRow> {
        rows.into_iter().filter(|r| r.id == it.id).collect()
    };
    let page1 = mine(ok(
        store
            .sealed_rows(SealedTable::ItemVersions, k2, (it.id, i32::MIN), 2)
            .await,
        "sealed_rows",
    ));
    assert_eq!(
        page1.iter().map(|r| r.version).collect::<Vec<_>>(),
        vec![1, 2],
        "first page"
    );
    assert!(page1.iter().all(|r| r.key_id == first));
    let page2 = mine(ok(
        store
            .sealed_rows(SealedTable::ItemVersions, k2, (it.id, 2), 2)
            .await,
        "sealed_rows",
    ));
    assert_eq!(page2.first().map(|r| r.version), Some(3), "next page");
    let counts = ok(
        store.count_sealed(SealedTable::ItemVersions).await,
        "count_sealed",
    );
    assert!(
        counts.iter().any(|(k, n)| *k == first && *n >= 3),
        "count_sealed: {counts:?}"
    );
    let reseal = |r: &crate::SealedRow, fill: u8| Resealed {
        id: r.id,
        version: r.version,
        old_key_id: r.key_id,
        old_sealed: r.sealed.clone(),
        new_key_id: k2,
        sealed: vec![fill; 40],
    };
    // Not as read (other bytes under the same key and version, or another
    // key): nothing written, not even the record.
    let mut other_bytes = reseal(&page1[0], 0xE1);
    other_bytes.old_sealed.push(0);
    let mut other_key = reseal(&page1[0], 0xE1);
    other_key.old_key_id = k2;
    for (what, row) in [
        ("reseal, other bytes", other_bytes),
        ("reseal, other key", other_key),
    ] {
        let (r, changed) = checked!(store, what, 0, |a| store.reseal_rows(
            SealedTable::ItemVersions,
            std::slice::from_ref(&row),
            a
        ));
        assert_eq!(ok(r, what), 0, "{what}: nothing re-sealed");
        assert!(!changed, "{what}: no record");
    }
    let batch: Vec<Resealed> = page1.iter().map(|r| reseal(r, 0xE2)).collect();
    let (r, changed) = checked!(store, "reseal_rows", 0, |a| store.reseal_rows(
        SealedTable::ItemVersions,
        &batch,
        a
    ));
    assert_eq!(ok(r, "reseal_rows"), 2);
    assert!(changed, "a re-seal is audited");
    let (r, changed) = checked!(store, "reseal_rows again", 0, |a| store.reseal_rows(
        SealedTable::ItemVersions,
        &batch,
        a
    ));
    assert_eq!(ok(r, "reseal_rows again"), 0);
    assert!(!changed);
    let versions = ok(store.item_versions(it.id).await, "item_versions");
    let by_version = |v: i32| versions.iter().find(|s| s.version == v).expect("version");
    for v in [1, 2] {
        assert_eq!(
            (by_version(v).key_id, by_version(v).sealed.clone()),
            (k2, vec![0xE2; 40]),
            "version {v} re-sealed"
        );
    }
    assert_eq!(by_version(3).key_id, first, "version 3 untouched");
    assert!(
        mine(ok(
            store
                .sealed_rows(SealedTable::ItemVersions, k2, (it.id, i32::MIN), 10)
                .await,
            "sealed_rows",
        ))
        .iter()
        .all(|r| r.version == 3),
        "only version 3 is left under an older key"
    );

    // -- a writer racing the re-seal of a target password --
    let t = target(&run, "reseal", first);
    ok(store.create_target(&t, au!()).await, "create_target");
    let mut current = t.clone();
    let (mut resealed_first, mut writer_only) = (0, 0);
    for round in 0..30u8 {
        let row = Resealed {
            id: current.id,
            version: current.version,
            old_key_id: current.key_id,
            old_sealed: current.sealed.clone(),
            new_key_id: k2,
            sealed: vec![0xA0 ^ round; 40],
        };
        let written = Target {
            version: current.version + 1,
            key_id: first,
            sealed: vec![round; 41],
            modified_ms: T0 + i64::from(round),
            ..current.clone()
        };
        let mut ra = change_record("reseal-values");
        let mut rb = change_record("update-target");
        let (n, w) = tokio::join!(
            store.reseal_rows(
                SealedTable::Targets,
                std::slice::from_ref(&row),
                Audit::new(&mut ra, &TestSealer)
            ),
            store.update_target(&written, Audit::new(&mut rb, &TestSealer)),
        );
        ok(w, "the writer always succeeds");
        match ok(n, "reseal_rows racing") {
            0 => {
                writer_only += 1;
                assert_eq!(ra.seq, 0, "no row re-sealed: no record");
            }
            1 => {
                resealed_first += 1;
                assert!(ra.seq > 0, "re-sealed: audited");
            }
            n => panic!("{n} rows re-sealed for one"),
        }
        let stored = ok(store.get_target(&t.name).await, "get_target").expect("target");
        assert_eq!(
            (stored.version, stored.key_id, stored.sealed.clone()),
            (written.version, written.key_id, written.sealed.clone()),
            "round {round}: the writer's value is kept (a re-seal never overwrites a newer write)"
        );
        current = stored;
    }
    assert_eq!(resealed_first + writer_only, 30);
    // With no writer, the target's current password is re-sealed.
    let row = Resealed {
        id: current.id,
        version: current.version,
        old_key_id: current.key_id,
        old_sealed: current.sealed.clone(),
        new_key_id: k2,
        sealed: vec![0xCC; 40],
    };
    let (r, changed) = checked!(store, "reseal target", 0, |a| store.reseal_rows(
        SealedTable::Targets,
        std::slice::from_ref(&row),
        a
    ));
    assert_eq!(ok(r, "reseal target"), 1);
    assert!(changed);
    let stored = ok(store.get_target(&t.name).await, "get_target").expect("target");
    assert_eq!(
        (stored.version, stored.key_id, stored.sealed),
        (current.version, k2, vec![0xCC; 40])
    );
}
