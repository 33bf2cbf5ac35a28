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

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::fmt::Debug;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use coffer_core::audit::{AuditRecord, ChainSealer, ChainVerifier, Outcome};
use coffer_core::model::{
    Association, AuditAccess, AuthMethod, AuthMethodKind, Item, ItemType, Role, SealedVersion,
    SecretFormat, TokenRecord, UidToken, VersionInfo,
};
use coffer_core::policy::{Caps, Rule, RuleType};
use futures::future::join_all;

use crate::{AuditQuery, Result, Store, StoreError};

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
}

/// Runs every check of the suite against `store`.
pub async fn run_all(store: &dyn Store) {
    backend_name(store).await;
    meta_and_generation(store).await;
    data_keys(store).await;
    auth_methods(store).await;
    roles_and_rules(store).await;
    associations(store).await;
    cascades(store).await;
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
        format: SecretFormat::KeyValue,
        description: "a secret".into(),
        tags: vec!["env=prod".into(), "team:infra".into()],
        max_versions: 5,
        last_version: 1,
        enabled: true,
        created_ms: T0,
        modified_ms: T0,
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

async fn data_key(store: &dyn Store, run: &Run) -> i64 {
    let id = run.id();
    ok(
        store.insert_data_key(id, &[7; 40], T0).await,
        "insert_data_key",
    );
    id
}

/// An item with versions `1..=n`, each sealed with a distinct fill byte.
async fn item_with_versions(store: &dyn Store, run: &Run, name: &str, n: i32) -> (Item, i64) {
    let key = data_key(store, run).await;
    let it = item(run, name);
    ok(
        store.create_item(&it, &sealed(key, 1, 1)).await,
        "create_item",
    );
    for v in 2..=n {
        let fill = u8::try_from(v).unwrap_or(u8::MAX);
        ok(
            store
                .add_version(it.id, v - 1, &sealed(key, v, fill), 0)
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
    let key = run.word("meta");
    assert_eq!(ok(store.get_meta(&key).await, "get_meta"), None);
    assert!(ok(
        store.put_meta_if_absent(&key, "one").await,
        "put_meta_if_absent"
    ));
    assert!(
        !ok(
            store.put_meta_if_absent(&key, "two").await,
            "put_meta_if_absent again"
        ),
        "put_meta_if_absent must report an existing key"
    );
    assert_eq!(
        ok(store.get_meta(&key).await, "get_meta").as_deref(),
        Some("one"),
        "put_meta_if_absent must not overwrite"
    );

    let g0 = ok(store.generation().await, "generation");
    assert!(g0 >= 0, "generation starts at 0");
    assert_eq!(ok(store.bump_generation().await, "bump_generation"), g0 + 1);
    assert_eq!(ok(store.generation().await, "generation"), g0 + 1);

    // Concurrent bumps: each gets its own value, none is lost.
    let bumps = join_all((0..20).map(|_| store.bump_generation())).await;
    let mut seen: Vec<i64> = bumps
        .into_iter()
        .map(|r| ok(r, "bump_generation"))
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        ((g0 + 2)..=(g0 + 21)).collect::<Vec<_>>(),
        "concurrent bumps"
    );
    assert_eq!(ok(store.generation().await, "generation"), g0 + 21);
}

pub async fn data_keys(store: &dyn Store) {
    let run = Run::new();
    let (a, b) = (run.id(), run.id());
    ok(
        store.insert_data_key(b, &[2; 40], T0).await,
        "insert_data_key",
    );
    ok(
        store.insert_data_key(a, &[1; 48], T0).await,
        "insert_data_key",
    );
    expect_conflict(
        store.insert_data_key(a, &[9; 40], T0).await,
        &a.to_string(),
        "duplicate data key",
    );
    let keys = ok(store.data_keys().await, "data_keys");
    let ours: Vec<&(i64, Vec<u8>)> = keys.iter().filter(|(id, _)| *id == a || *id == b).collect();
    assert_eq!(
        ours,
        [&(a, vec![1; 48]), &(b, vec![2; 40])],
        "data keys, by id"
    );
    assert!(
        keys.windows(2).all(|w| w[0].0 < w[1].0),
        "data_keys ordered by id"
    );
}

pub async fn auth_methods(store: &dyn Store) {
    let run = Run::new();
    let am = auth_method(&run, "one");
    ok(store.create_auth_method(&am).await, "create_auth_method");
    let mut other = auth_method(&run, "two");
    other.kind = AuthMethodKind::OAuth2;
    other.access_key_hash = None;
    other.bound_ips = Vec::new();
    other.force_sub_claims = false;
    other.config = serde_json::Value::Null;
    ok(store.create_auth_method(&other).await, "create_auth_method");

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
        store.create_auth_method(&same_name).await,
        &am.name,
        "same name",
    );
    let mut same_access_id = auth_method(&run, "four");
    same_access_id.access_id = am.access_id.clone();
    expect_conflict(
        store.create_auth_method(&same_access_id).await,
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

    assert!(ok(store.delete_auth_method(&am.name).await, "delete"));
    assert!(!ok(
        store.delete_auth_method(&am.name).await,
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
    ok(store.create_role(&r).await, "create_role");
    let bare = role(&run, "bare", Vec::new());
    ok(store.create_role(&bare).await, "create_role without rules");
    expect_conflict(store.create_role(&r).await, &r.name, "duplicate role");

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
        store.set_role_rule(&r.name, &role_rule, T0 + 50).await,
        "set_role_rule",
    );
    // Same (type, path): replaced in place.
    let wider = rule(RuleType::Item, "/app/*", Caps::ALL);
    ok(
        store.set_role_rule(&r.name, &wider, T0 + 60).await,
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
            .set_role_rule(&run.name("role/none"), &wider, T0)
            .await,
        &run.name("role/none"),
        "set_role_rule on a missing role",
    );

    assert!(ok(
        store
            .delete_role_rule(&r.name, RuleType::Item, "/app/secret")
            .await,
        "delete_role_rule"
    ));
    assert!(!ok(
        store
            .delete_role_rule(&r.name, RuleType::Item, "/app/secret")
            .await,
        "delete_role_rule again"
    ));
    assert!(!ok(
        store
            .delete_role_rule(&r.name, RuleType::Target, "/app/*")
            .await,
        "delete_role_rule of another type"
    ));
    let got = ok(store.get_role(&r.name).await, "get_role").expect("role exists");
    assert_eq!(got.rules, vec![wider, role_rule]);

    assert!(ok(store.delete_role(&r.name).await, "delete_role"));
    assert!(!ok(store.delete_role(&r.name).await, "delete_role again"));
    assert_eq!(ok(store.get_role(&r.name).await, "get deleted"), None);
    // Its rules went with it: a new role of that name starts empty.
    let reborn = role(&run, "dev", Vec::new());
    ok(store.create_role(&reborn).await, "re-create role");
    assert_eq!(
        ok(store.get_role(&r.name).await, "get").map(|x| x.rules),
        Some(vec![])
    );
}

pub async fn associations(store: &dyn Store) {
    let run = Run::new();
    let am = auth_method(&run, "m");
    ok(store.create_auth_method(&am).await, "create_auth_method");
    let r = role(&run, "r", Vec::new());
    ok(store.create_role(&r).await, "create_role");

    let a = association(&run, &r.name, &am.name);
    ok(store.create_association(&a).await, "create_association");
    let mut b = association(&run, &r.name, &am.name);
    b.sub_claims.clear();
    b.case_sensitive = true;
    b.created_ms = T0 + 1;
    ok(store.create_association(&b).await, "create_association");
    expect_conflict(
        store.create_association(&a).await,
        &a.assoc_id,
        "duplicate association",
    );

    let mut no_role = association(&run, &run.name("role/none"), &am.name);
    expect_not_found(
        store.create_association(&no_role).await,
        &no_role.role_name,
        "association to a missing role",
    );
    no_role.role_name = r.name.clone();
    no_role.auth_method_name = run.name("am/none");
    expect_not_found(
        store.create_association(&no_role).await,
        &no_role.auth_method_name,
        "association to a missing auth method",
    );

    let all = ok(store.list_associations().await, "list_associations");
    let ours: Vec<&Association> = all.iter().filter(|x| x.role_name == r.name).collect();
    assert_eq!(ours, [&a, &b], "list_associations");

    assert!(ok(
        store.delete_association(&a.assoc_id).await,
        "delete_association"
    ));
    assert!(!ok(
        store.delete_association(&a.assoc_id).await,
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
    ok(store.create_auth_method(&am).await, "create_auth_method");
    ok(store.create_auth_method(&keep).await, "create_auth_method");
    let r1 = role(&run, "r1", vec![rule(RuleType::Item, "/x", Caps::READ)]);
    let r2 = role(&run, "r2", Vec::new());
    ok(store.create_role(&r1).await, "create_role");
    ok(store.create_role(&r2).await, "create_role");
    let a1 = association(&run, &r1.name, &am.name);
    let a2 = association(&run, &r2.name, &am.name);
    let a3 = association(&run, &r1.name, &keep.name);
    let a4 = association(&run, &r2.name, &keep.name);
    for a in [&a1, &a2, &a3, &a4] {
        ok(store.create_association(a).await, "create_association");
    }
    let t_gone = token(&run, &am, 1, T0 + 1_000_000);
    let t_kept = token(&run, &keep, 2, T0 + 1_000_000);
    ok(store.insert_token(&t_gone).await, "insert_token");
    ok(store.insert_token(&t_kept).await, "insert_token");

    assert!(ok(
        store.delete_auth_method(&am.name).await,
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

    assert!(ok(store.delete_role(&r1.name).await, "delete_role"));
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
    ok(store.create_item(&it, &v1).await, "create_item");

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
        store.create_item(&same_name, &v1).await,
        &it.name,
        "duplicate item name",
    );
    let mut same_id = item(&run, &run.name("app/other"));
    same_id.id = it.id;
    expect_conflict(
        store.create_item(&same_id, &v1).await,
        &it.id.to_string(),
        "duplicate item ID",
    );
    assert_eq!(
        ok(store.get_item(&same_id.name).await, "get"),
        None,
        "a refused create leaves nothing behind"
    );
    let no_key = item(&run, &run.name("app/nokey"));
    let r = store.create_item(&no_key, &sealed(run.id(), 1, 1)).await;
    assert!(r.is_err(), "create_item with an unknown data key must fail");
    assert_eq!(ok(store.get_item(&no_key.name).await, "get"), None);

    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "list_versions")),
        [1]
    );
    assert!(ok(store.delete_item(it.id).await, "delete_item"));
    assert!(!ok(store.delete_item(it.id).await, "delete_item again"));
    assert_eq!(ok(store.get_item(&it.name).await, "get deleted"), None);
    assert_eq!(
        ok(store.get_item_value(&it.name, None).await, "deleted"),
        None
    );
    assert!(ok(store.list_versions(it.id).await, "list_versions").is_empty());
    // The name is free again.
    ok(store.create_item(&it, &v1).await, "re-create item");
}

pub async fn versions(store: &dyn Store) {
    let run = Run::new();
    let (it, key) = item_with_versions(store, &run, &run.name("v/a"), 1).await;

    let v2 = sealed(key, 2, 2);
    ok(store.add_version(it.id, 1, &v2, 0).await, "add_version");
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
        store.add_version(it.id, 1, &v2, 0).await,
        "",
        "stale expected_last",
    );
    // Version number that does not follow expected_last.
    expect_conflict(
        store.add_version(it.id, 2, &sealed(key, 4, 4), 0).await,
        "",
        "version != expected_last + 1",
    );
    expect_not_found(
        store.add_version(run.id(), 1, &sealed(key, 2, 2), 0).await,
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
                .add_version(it.id, v - 1, &sealed(key, v, 5), -1)
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
        store.add_version(it.id, 5, &sealed(key, 6, 6), 3).await,
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
        store.add_version(it.id, 6, &sealed(key, 7, 7), 1).await,
        "add_version keep 1",
    );
    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "list")),
        [7]
    );
    // keep larger than the count prunes nothing.
    ok(
        store.add_version(it.id, 7, &sealed(key, 8, 8), 10).await,
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
            .add_version(it.id, 8, &sealed(run.id(), 9, 9), 0)
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
    assert!(ok(store.delete_version(it.id, 2).await, "delete_version 2"));
    assert!(!ok(
        store.delete_version(it.id, 2).await,
        "delete_version 2 again"
    ));
    assert!(!ok(
        store.delete_version(it.id, 9).await,
        "delete_version 9"
    ));
    assert!(!ok(
        store.delete_version(run.id(), 1).await,
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
    assert!(ok(store.delete_version(it.id, 4).await, "delete_version 4"));
    assert_eq!(
        ok(store.get_item(&it.name).await, "get").map(|i| i.last_version),
        Some(3)
    );
    assert_eq!(
        ok(store.get_item_value(&it.name, None).await, "latest").map(|x| x.1),
        Some(sealed(key, 3, 3))
    );
    // Updates continue from there.
    ok(
        store.add_version(it.id, 3, &sealed(key, 4, 40), 0).await,
        "add_version after delete",
    );
    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "list")),
        [1, 3, 4]
    );
    // Pruning keeps the newest versions even with gaps.
    ok(
        store.add_version(it.id, 4, &sealed(key, 5, 50), 3).await,
        "add_version keep 3",
    );
    assert_eq!(
        versions_of(&ok(store.list_versions(it.id).await, "list")),
        [3, 4, 5]
    );

    // The last remaining version takes the item with it.
    assert!(ok(store.delete_version(it.id, 3).await, "delete 3"));
    assert!(ok(store.delete_version(it.id, 5).await, "delete 5"));
    assert_eq!(
        ok(store.get_item(&it.name).await, "get").map(|i| i.last_version),
        Some(4)
    );
    assert!(ok(
        store.delete_version(it.id, 4).await,
        "delete the only version"
    ));
    assert_eq!(
        ok(store.get_item(&it.name).await, "get"),
        None,
        "item deleted with its last version"
    );
    assert!(ok(store.list_versions(it.id).await, "list").is_empty());
    assert!(!ok(store.delete_item(it.id).await, "delete_item after"));
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
            store.create_item(&it, &sealed(key, 1, 1)).await,
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
    ok(store.create_auth_method(&am).await, "create_auth_method");
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
    let (seq0, _) = ok(store.audit_head().await, "audit_head");
    ok(
        store
            .append_audit(
                &mut recs,
                &[a.clone(), orphan.clone(), wrong_id.clone(), b.clone()],
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
        store.append_audit(&mut [], &[dup], &TestSealer).await,
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
    ok(store.create_auth_method(&am).await, "create_auth_method");
    let now = T0 + 10_000;
    let live = token(&run, &am, 1, now + 60_000);
    let expired = token(&run, &am, 2, now - 1);
    let boundary = token(&run, &am, 3, now);
    for t in [&live, &expired, &boundary] {
        ok(store.insert_token(t).await, "insert_token");
    }
    expect_conflict(store.insert_token(&live).await, "token", "duplicate token");
    let mut orphan = token(&run, &am, 4, now + 60_000);
    orphan.auth_method_name = run.name("am/none");
    expect_not_found(
        store.insert_token(&orphan).await,
        &orphan.auth_method_name,
        "token of a missing auth method",
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
        store.revoke_token(&live.token_hash).await,
        "revoke_token"
    ));
    assert!(!ok(
        store.revoke_token(&live.token_hash).await,
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
    let head = ok(store.audit_head().await, "audit_head");
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
        if let Err(e) = verifier.finish(head.0) {
            panic!("audit chain does not verify: {e}");
        }
    }
    expected_seq - 1 - start_seq
}

pub async fn audit_chain(store: &dyn Store) {
    let run = Run::new();
    let (seq0, hash0) = ok(store.audit_head().await, "audit_head");
    if seq0 == 0 {
        assert!(hash0.is_empty(), "an empty chain has an empty head hash");
    }
    let who = run.word("chain");

    // Nothing to append: no change.
    ok(
        store.append_audit(&mut [], &[], &TestSealer).await,
        "append nothing",
    );
    assert_eq!(
        ok(store.audit_head().await, "audit_head"),
        (seq0, hash0.clone())
    );

    let mut batch: Vec<AuditRecord> = (0..3)
        .map(|i| audit_record(&who, "/obj", "get-secret-value", T0 + i))
        .collect();
    batch[1].outcome = Outcome::Denied;
    batch[1].status = 403;
    batch[1].error = "not authorized".into();
    batch[2].outcome = Outcome::Error;
    batch[2].status = 500;
    ok(
        store.append_audit(&mut batch, &[], &TestSealer).await,
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
    assert_eq!(
        ok(store.audit_head().await, "audit_head"),
        (seq0 + 3, batch[2].hash.clone())
    );
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
        store.append_audit(&mut big, &[], &TestSealer).await,
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
        store.append_audit(&mut recs, &[], &TestSealer).await,
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
    let (seq0, hash0) = ok(store.audit_head().await, "audit_head");
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
                    store.append_audit(&mut recs, &[], &TestSealer).await,
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
            async move { (store.add_version(it.id, round, &v, 3).await, v) }
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
    ok(store.create_auth_method(&am).await, "create_auth_method");
    ok(store.create_auth_method(&other).await, "create_auth_method");

    let root = uid(&run, &am, "root", None);
    ok(store.insert_uid_token(&root).await, "insert root");
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
        store.insert_uid_token(&root).await,
        &root.token_id,
        "same token ID",
    );
    let same_hash = UidToken {
        token_id: run.word("uid-samehash"),
        ..root.clone()
    };
    expect_conflict(
        store.insert_uid_token(&same_hash).await,
        "UID token",
        "same hash",
    );
    // The message of a hash conflict names the ID, never the hash.
    match store.insert_uid_token(&same_hash).await {
        Err(StoreError::Conflict(msg)) => assert!(!msg.contains(":root"), "{msg}"),
        other => panic!("same hash: expected Conflict, got {other:?}"),
    }

    let child = uid(&run, &am, "child", Some(&root));
    let grandchild = uid(&run, &am, "grandchild", Some(&child));
    ok(store.insert_uid_token(&child).await, "insert child");
    ok(
        store.insert_uid_token(&grandchild).await,
        "insert grandchild",
    );
    let with_flags = UidToken {
        deny_rotate: true,
        deny_inheritance: true,
        comment: "flags, and a 'quote'".into(),
        ..uid(&run, &am, "flags", Some(&root))
    };
    ok(
        store.insert_uid_token(&with_flags).await,
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
            .insert_uid_token(&uid(
                &run,
                &am,
                "orphan",
                Some(&uid(&run, &am, "nope", None)),
            ))
            .await,
        &run.word("uid-nope"),
        "child of a missing parent",
    );
    let foreign_root = uid(&run, &other, "foreign", None);
    ok(
        store.insert_uid_token(&foreign_root).await,
        "insert foreign root",
    );
    let cross = uid(&run, &am, "cross", Some(&foreign_root));
    expect_not_found(
        store.insert_uid_token(&cross).await,
        &foreign_root.token_id,
        "child of another method's token",
    );
    let late = UidToken {
        created_ms: root.expires_ms,
        ..uid(&run, &am, "late", Some(&root))
    };
    expect_not_found(
        store.insert_uid_token(&late).await,
        &root.token_id,
        "child of a parent expired at creation time",
    );
    let mut no_method = uid(&run, &am, "nomethod", None);
    no_method.access_id = format!("p-{}zzu", run.tag);
    expect_not_found(
        store.insert_uid_token(&no_method).await,
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
                .rotate_uid_token(&root.token_id, b"stale hash", &new_hash, now)
                .await,
            "rotate from a wrong hash"
        ),
        None
    );
    assert_eq!(
        ok(
            store
                .rotate_uid_token(&root.token_id, &root.token_hash, &new_hash, now)
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
                    now
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
                    now
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
                    child.expires_ms
                )
                .await,
            "rotate expired"
        ),
        None,
        "expired tokens do not rotate"
    );
    expect_conflict(
        store
            .rotate_uid_token(&child.token_id, &child.token_hash, &new_hash, now)
            .await,
        "UID token",
        "rotate to a hash in use",
    );

    // Tokens go with their auth method.
    assert!(ok(
        store.delete_auth_method(&am.name).await,
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
    ok(store.create_auth_method(&am).await, "create_auth_method");
    let root = uid(&run, &am, "root", None);
    let child = uid(&run, &am, "child", Some(&root));
    let grandchild = uid(&run, &am, "grandchild", Some(&child));
    let sibling = uid(&run, &am, "sibling", Some(&root));
    for t in [&root, &child, &grandchild, &sibling] {
        ok(store.insert_uid_token(t).await, "insert_uid_token");
    }
    let sessions: Vec<TokenRecord> = [&root, &child, &grandchild, &sibling]
        .iter()
        .enumerate()
        .map(|(n, t)| session_of(&run, &am, n as u8 + 10, &t.token_id))
        .collect();
    let unrelated = session_of(&run, &am, 20, "some-other-identity");
    for t in sessions.iter().chain([&unrelated]) {
        ok(store.insert_token(t).await, "insert_token");
    }
    let live = |t: &TokenRecord| {
        let hash = t.token_hash.clone();
        async move { ok(store.get_token(&hash).await, "get_token").is_some() }
    };

    // revokeSelf: only the token; its children stay.
    let now = T0 + 1000;
    assert_eq!(
        ok(
            store.revoke_uid_token(&child.token_id, false, now).await,
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
            store.revoke_uid_token(&child.token_id, false, now).await,
            "revoke again"
        ),
        Vec::<String>::new(),
        "revoking twice revokes nothing new"
    );
    expect_not_found(
        store
            .insert_uid_token(&uid(&run, &am, "late", Some(&child)))
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
                    now
                )
                .await,
            "rotate revoked"
        ),
        None,
        "revoked tokens do not rotate"
    );

    // revokeAll: the whole subtree, through the already revoked child.
    let mut all = ok(
        store.revoke_uid_token(&root.token_id, true, now + 1).await,
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
            .revoke_uid_token(&run.word("uid-none"), true, now)
            .await,
        &run.word("uid-none"),
        "revoke a missing token",
    );
}

pub async fn concurrent_uid_rotation(store: &dyn Store) {
    let run = Run::new();
    let am = uid_method(&run, "rot");
    ok(store.create_auth_method(&am).await, "create_auth_method");
    let t = uid(&run, &am, "race", None);
    ok(store.insert_uid_token(&t).await, "insert_uid_token");
    let mut current = t.token_hash.clone();
    for round in 1..=3u8 {
        let attempts = (0..8u8).map(|n| {
            let old = current.clone();
            let new = uid_hash(&run, &format!("race{round}"), n);
            let id = t.token_id.clone();
            async move {
                let r = store
                    .rotate_uid_token(&id, &old, &new, T0 + i64::from(round))
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
    ok(store.create_auth_method(&am).await, "create_auth_method");
    let root = uid(&run, &am, "root", None);
    let mid = uid(&run, &am, "mid", Some(&root));
    ok(store.insert_uid_token(&root).await, "insert root");
    ok(store.insert_uid_token(&mid).await, "insert mid");
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
    let inserts = join_all(children.iter().map(|c| store.insert_uid_token(c)));
    let revoke = store.revoke_uid_token(&root.token_id, true, T0 + 5);
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
