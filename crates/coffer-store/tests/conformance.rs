//! The conformance suite on both backends, plus backend specifics.
//!
//! PostgreSQL: `COFFER_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) must reach a server where
//! the user may create databases; each test creates a fresh database and
//! drops it afterwards. An unreachable server fails the test, unless
//! `COFFER_SKIP_POSTGRES=1`.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use coffer_core::audit::{AuditRecord, ChainSealer, ChainVerifier, Outcome};
use coffer_core::model::{
    Association, AuditAccess, AuthMethod, AuthMethodKind, Item, ItemSubType, ItemType, Role,
    SealedVersion, SecretFormat,
};
use coffer_store::conformance::{self, TestSealer, change_record};
use coffer_store::{Audit, PgStore, SqliteStore, Store, StoreError, redact_url};
use sqlx::{Connection, Executor, PgConnection};

// ---- SQLite ----

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_file_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open_url(&sqlite_url(&dir.path().join("coffer.db")))
        .await
        .expect("open SQLite store");
    conformance::run_all(&store).await;
    // Again on the same database: the suite must not depend on a fresh one.
    conformance::run_all(&store).await;
    conformance::audit_retention(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_key_rotation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open_url(&sqlite_url(&dir.path().join("coffer.db")))
        .await
        .expect("open SQLite store");
    conformance::key_rotation(&store).await;
    // Again on the same store (now with several keys and a derivation key).
    conformance::key_rotation(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_memory_conformance() {
    let store = SqliteStore::open_url("sqlite::memory:")
        .await
        .expect("open in-memory store");
    conformance::run_all(&store).await;
}

fn record(n: i64) -> AuditRecord {
    AuditRecord {
        seq: 0,
        time_ms: 1_700_000_000_000 + n,
        request_id: format!("r{n}"),
        operation: "create-secret".into(),
        object: "/app/db".into(),
        outcome: Outcome::Allowed,
        status: 200,
        error: String::new(),
        access_id: "p-abc".into(),
        auth_method: "/am".into(),
        identity: "p-abc".into(),
        client_type: "cli".into(),
        peer: "127.0.0.1:1".into(),
        prev_hash: Vec::new(),
        hash: Vec::new(),
    }
}

#[tokio::test]
async fn sqlite_persists_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(&dir.path().join("coffer.db"));
    let item = Item {
        id: 4242,
        name: "/app/db".into(),
        item_type: ItemType::StaticSecret,
        sub_type: ItemSubType::Generic,
        format: SecretFormat::Text,
        description: String::new(),
        tags: Vec::new(),
        max_versions: 0,
        last_version: 1,
        highest_version: 1,
        enabled: true,
        created_ms: 1,
        modified_ms: 1,
        deletion_ms: 0,
    };
    let v1 = SealedVersion {
        version: 1,
        key_id: 7,
        sealed: b"nonce-ciphertext-tag".to_vec(),
        created_ms: 1,
    };
    let v2 = SealedVersion {
        version: 2,
        sealed: b"nonce-ciphertext-tag-2".to_vec(),
        created_ms: 2,
        ..v1.clone()
    };
    let mut audit = vec![record(1), record(2)];
    {
        let store = SqliteStore::open_url(&url).await.expect("open");
        store
            .ensure_data_key(
                (7, b"wrapped key"),
                1,
                Audit::new(&mut change_record("key"), &TestSealer),
            )
            .await
            .expect("data key");
        store
            .append_audit(&mut audit, &[], &[], &TestSealer)
            .await
            .expect("audit");
        store
            .create_item(
                &item,
                &v1,
                Audit::new(&mut change_record("create"), &TestSealer),
            )
            .await
            .expect("create_item");
        store
            .add_version(
                item.id,
                1,
                &v2,
                0,
                Audit::new(&mut change_record("update"), &TestSealer),
            )
            .await
            .expect("add_version");
        let (role, am, assoc) = admin();
        assert!(
            store
                .bootstrap(
                    &role,
                    &am,
                    &assoc,
                    Audit::new(&mut change_record("bootstrap"), &TestSealer)
                )
                .await
                .expect("bootstrap")
        );
        store.close().await;
    }
    let store = SqliteStore::open_url(&url).await.expect("reopen");
    let expected_item = Item {
        last_version: 2,
        highest_version: 2,
        modified_ms: 2,
        ..item.clone()
    };
    assert_eq!(
        store.get_item_value("/app/db", None).await.expect("get"),
        Some((expected_item.clone(), v2))
    );
    assert_eq!(
        store.get_item_value("/app/db", Some(1)).await.expect("get"),
        Some((expected_item, v1))
    );
    assert_eq!(
        store.data_keys().await.expect("keys"),
        [(7, b"wrapped key".to_vec())]
    );
    assert!(
        store
            .get_meta(coffer_store::BOOTSTRAPPED)
            .await
            .expect("meta")
            .is_some()
    );
    assert_eq!(store.generation().await.expect("generation"), 1);
    let head = store.audit_head().await.expect("head");
    assert_eq!(head.seq, 6, "key, 2 records, create, update, bootstrap");
    let stored = store.audit_range(0, 10).await.expect("range");
    assert_eq!(stored[1..3], audit);
    let mut verifier = ChainVerifier::new();
    for r in &stored {
        verifier.push(&TestSealer, r).expect("chain verifies");
    }
    verifier.finish(&TestSealer, &head).expect("head matches");
    // Migrations are not re-applied on reopen, and appending continues the chain.
    let mut more = vec![record(3)];
    store
        .append_audit(&mut more, &[], &[], &TestSealer)
        .await
        .expect("audit");
    assert_eq!(more[0].seq, 7);
    assert_eq!(more[0].prev_hash, head.hash);
    assert_eq!(more[0].hash, TestSealer.seal(&more[0]));
    store.close().await;
}

#[cfg(unix)]
#[tokio::test]
async fn sqlite_file_is_private_and_wal() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("coffer.db");
    let store = SqliteStore::open_url(&sqlite_url(&path))
        .await
        .expect("open");
    store
        .ensure_data_key(
            (1, b"wrapped"),
            1,
            Audit::new(&mut change_record("key"), &TestSealer),
        )
        .await
        .expect("write");
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
    assert_eq!(mode(&path).expect("db file"), 0o600, "database file mode");
    // SQLite gives its WAL and shared-memory files the database's mode.
    for suffix in ["-wal", "-shm"] {
        let side = dir.path().join(format!("coffer.db{suffix}"));
        if let Ok(m) = mode(&side) {
            assert_eq!(m, 0o600, "{suffix} file mode");
        }
    }
    // The file is in WAL mode (a persistent setting, visible to any connection).
    let mut conn = <sqlx::SqliteConnection as Connection>::connect(&sqlite_url(&path))
        .await
        .expect("raw connection");
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    conn.close().await.ok();
    store.close().await;
}

#[tokio::test]
async fn sqlite_relative_url_and_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no/such/dir/coffer.db");
    match SqliteStore::open_url(&sqlite_url(&missing)).await {
        Err(StoreError::Config(msg)) => assert!(msg.contains("coffer.db"), "{msg}"),
        Err(e) => panic!("expected a Config error, got {e}"),
        Ok(_) => panic!("opened a database in a missing directory"),
    }
    match coffer_store::open("mysql://u:secret@host/db").await {
        Err(StoreError::Config(msg)) => assert!(!msg.contains("secret"), "{msg}"),
        Err(e) => panic!("expected a Config error, got {e}"),
        Ok(_) => panic!("opened an unsupported URL"),
    }
    let store = coffer_store::open(&sqlite_url(&dir.path().join("via-open.db")))
        .await
        .expect("open()");
    assert_eq!(store.backend(), "sqlite");
}

// ---- PostgreSQL ----

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh, uniquely named database; `None` when PostgreSQL tests are
/// explicitly skipped.
struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    async fn create(purpose: &str) -> Option<TestDb> {
        let admin_url = std::env::var("COFFER_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned());
        let mut admin = match PgConnection::connect(&admin_url).await {
            Ok(conn) => conn,
            Err(e) if std::env::var("COFFER_SKIP_POSTGRES").as_deref() == Ok("1") => {
                eprintln!(
                    "SKIPPED PostgreSQL test {purpose}: {} unreachable ({e}) and COFFER_SKIP_POSTGRES=1",
                    redact_url(&admin_url)
                );
                return None;
            }
            Err(e) => panic!(
                "PostgreSQL is not reachable at {}: {e}\n\
                 Start PostgreSQL, point COFFER_TEST_POSTGRES_URL at a server where the user \
                 may create databases, or set COFFER_SKIP_POSTGRES=1 to skip these tests.",
                redact_url(&admin_url)
            ),
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("coffer_test_{}_{nanos}", std::process::id());
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        admin.close().await.ok();
        let url = with_database(&admin_url, &name);
        Some(TestDb {
            admin_url,
            name,
            url,
        })
    }

    async fn drop_db(self) {
        match PgConnection::connect(&self.admin_url).await {
            Ok(mut admin) => {
                let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
                if let Err(e) = admin.execute(sqlx::AssertSqlSafe(sql)).await {
                    eprintln!("could not drop test database {}: {e}", self.name);
                }
                admin.close().await.ok();
            }
            Err(e) => eprintln!("could not drop test database {}: {e}", self.name),
        }
    }

    /// Run `test` on this database, then drop it, even if `test` panicked.
    async fn run<F, Fut>(self, test: F)
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let outcome = tokio::spawn(test(self.url.clone())).await;
        self.drop_db().await;
        if let Err(e) = outcome {
            match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("test task failed: {e}"),
            }
        }
    }
}

/// `url` with its database name replaced by `db` (query string kept).
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    let mut out = format!("{}/{db}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_conformance() {
    let Some(db) = TestDb::create("postgres_conformance").await else {
        return;
    };
    db.run(|url| async move {
        let store = PgStore::connect(&url).await.expect("connect");
        assert_eq!(store.backend(), "postgres");
        conformance::run_all(&store).await;
        conformance::run_all(&store).await;
        conformance::audit_retention(&store).await;
        store.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_key_rotation() {
    let Some(db) = TestDb::create("postgres_key_rotation").await else {
        return;
    };
    db.run(|url| async move {
        let store = PgStore::connect(&url).await.expect("connect");
        conformance::key_rotation(&store).await;
        conformance::key_rotation(&store).await;
        store.close().await;
    })
    .await;
}

/// Two nodes on one database: migrations run once, appends from both
/// serialize into one chain, and racing updates yield one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_nodes() {
    let Some(db) = TestDb::create("postgres_two_nodes").await else {
        return;
    };
    db.run(|url| async move {
        let (a, b) = tokio::join!(PgStore::connect(&url), PgStore::connect(&url));
        let nodes: [Arc<PgStore>; 2] = [
            Arc::new(a.expect("node a connects")),
            Arc::new(b.expect("node b connects")),
        ];

        let mut tasks = Vec::new();
        for task in 0..12 {
            let node = Arc::clone(&nodes[task % 2]);
            tasks.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                for batch in 0..10 {
                    let mut recs: Vec<AuditRecord> = (0..1 + (task + batch) % 4)
                        .map(|i| record(i as i64))
                        .collect();
                    node.append_audit(&mut recs, &[], &[], &TestSealer)
                        .await
                        .expect("append");
                    seqs.extend(recs.iter().map(|r| r.seq));
                }
                seqs
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.expect("append task"));
        }
        all.sort_unstable();
        let n = all.len() as i64;
        assert_eq!(all, (1..=n).collect::<Vec<_>>(), "one gapless chain");
        let mut verifier = ChainVerifier::new();
        let mut after = 0;
        loop {
            let page = nodes[1].audit_range(after, 1000).await.expect("range");
            let Some(last) = page.last() else { break };
            after = last.seq;
            for r in &page {
                verifier.push(&TestSealer, r).expect("chain verifies");
            }
        }
        let head = nodes[0].audit_head().await.expect("head");
        assert_eq!(verifier.finish(&TestSealer, &head), Ok(n));

        // Both nodes create the first data key at once: one key survives
        // and both see it.
        let mut ka = change_record("key a");
        let mut kb = change_record("key b");
        let (ka_keys, kb_keys) = tokio::join!(
            nodes[0].ensure_data_key((1, b"k"), 1, Audit::new(&mut ka, &TestSealer)),
            nodes[1].ensure_data_key((2, b"other"), 1, Audit::new(&mut kb, &TestSealer)),
        );
        let (ka_keys, kb_keys) = (ka_keys.expect("key a"), kb_keys.expect("key b"));
        assert_eq!(ka_keys.len(), 1, "one first data key");
        assert_eq!(ka_keys, kb_keys, "both nodes load the same key");
        let key_id = ka_keys[0].0;
        assert_eq!(
            (ka.seq != 0) as u8 + (kb.seq != 0) as u8,
            1,
            "one key record"
        );

        // Both nodes bootstrap at once: exactly one creates the admin.
        let (role, am, assoc) = admin();
        let mut other = admin();
        other.1.access_id = "p-otheradmina".into();
        let mut ra = change_record("bootstrap a");
        let mut rb = change_record("bootstrap b");
        let (a, b) = tokio::join!(
            nodes[0].bootstrap(&role, &am, &assoc, Audit::new(&mut ra, &TestSealer)),
            nodes[1].bootstrap(
                &other.0,
                &other.1,
                &other.2,
                Audit::new(&mut rb, &TestSealer)
            ),
        );
        let (a, b) = (a.expect("bootstrap a"), b.expect("bootstrap b"));
        assert!(a ^ b, "exactly one node bootstraps (a={a}, b={b})");
        let methods = nodes[0].list_auth_methods().await.expect("methods");
        assert_eq!(methods.len(), 1, "one admin auth method");
        let winner = if a { &am } else { &other.1 };
        assert_eq!(&methods[0], winner, "the admin that was reported created");

        // Racing updates of one item from both nodes.
        let item = Item {
            id: 99,
            name: "/race".into(),
            item_type: ItemType::StaticSecret,
            sub_type: ItemSubType::Generic,
            format: SecretFormat::Text,
            description: String::new(),
            tags: Vec::new(),
            max_versions: 0,
            last_version: 1,
            highest_version: 1,
            enabled: true,
            created_ms: 1,
            modified_ms: 1,
            deletion_ms: 0,
        };
        let v = move |version: i32, fill: u8| SealedVersion {
            version,
            key_id,
            sealed: vec![fill; 30],
            created_ms: 1,
        };
        nodes[0]
            .create_item(
                &item,
                &v(1, 0),
                Audit::new(&mut change_record("create"), &TestSealer),
            )
            .await
            .expect("create");
        let racers = (0..10u8).map(|n| {
            let node = Arc::clone(&nodes[usize::from(n % 2)]);
            tokio::spawn(async move {
                let mut rec = change_record("update");
                node.add_version(99, 1, &v(2, n), 0, Audit::new(&mut rec, &TestSealer))
                    .await
            })
        });
        let mut wins = 0;
        for r in racers {
            match r.await.expect("racer") {
                Ok(()) => wins += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("unexpected error {e}"),
            }
        }
        assert_eq!(wins, 1, "exactly one update wins");
        let versions = nodes[1].list_versions(99).await.expect("versions");
        assert_eq!(
            versions.iter().map(|v| v.version).collect::<Vec<_>>(),
            [1, 2]
        );

        for node in nodes {
            node.close().await;
        }
    })
    .await;
}

/// An admin role, auth method and their association, for bootstrap tests.
fn admin() -> (Role, AuthMethod, Association) {
    let role = Role {
        name: "/admin".into(),
        description: "admin".into(),
        audit_access: AuditAccess::All,
        rules: Vec::new(),
        created_ms: 1,
        modified_ms: 1,
    };
    let am = AuthMethod {
        name: "/admin".into(),
        access_id: "p-adminadmina".into(),
        kind: AuthMethodKind::ApiKey,
        description: String::new(),
        access_key_hash: Some(vec![1; 32]),
        access_expires_ms: 0,
        bound_ips: Vec::new(),
        token_ttl_secs: 0,
        force_sub_claims: false,
        config: serde_json::json!({}),
        created_ms: 1,
        modified_ms: 1,
    };
    let assoc = Association {
        assoc_id: "rac-admin".into(),
        role_name: "/admin".into(),
        auth_method_name: "/admin".into(),
        sub_claims: Default::default(),
        case_sensitive: true,
        created_ms: 1,
    };
    (role, am, assoc)
}

#[test]
fn database_name_replacement() {
    assert_eq!(
        with_database("postgres://u:p@h:5432/postgres?sslmode=disable", "x"),
        "postgres://u:p@h:5432/x?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
}

// ---- upgrading a database written before migration 6 ----

/// A chain as Coffer wrote it before migration 6: `prev_hash` stored.
fn old_chain(n: i64) -> Vec<AuditRecord> {
    let mut prev = Vec::new();
    (1..=n)
        .map(|i| {
            let mut r = record(i);
            r.seq = i;
            r.request_id = format!("old-{i}");
            r.access_id = format!("p-{}", i % 3);
            r.prev_hash = std::mem::take(&mut prev);
            r.hash = TestSealer.seal(&r);
            prev = r.hash.clone();
            r
        })
        .collect()
}

macro_rules! write_old_chain {
    ($pool:expr, $recs:expr) => {{
        for r in $recs {
            sqlx::query(
                "INSERT INTO audit_log (seq, time_ms, request_id, operation, object, outcome, \
                 status, error, access_id, auth_method, identity, client_type, peer, prev_hash, \
                 hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
            )
            .bind(r.seq)
            .bind(r.time_ms)
            .bind(r.request_id.as_str())
            .bind(r.operation.as_str())
            .bind(r.object.as_str())
            .bind(r.outcome.as_str())
            .bind(i32::from(r.status))
            .bind(r.error.as_str())
            .bind(r.access_id.as_str())
            .bind(r.auth_method.as_str())
            .bind(r.identity.as_str())
            .bind(r.client_type.as_str())
            .bind(r.peer.as_str())
            .bind(r.prev_hash.as_slice())
            .bind(r.hash.as_slice())
            .execute($pool)
            .await
            .expect("insert a record in the old schema");
        }
        let last = $recs.last().expect("records");
        sqlx::query("UPDATE audit_head SET seq = $1, hash = $2, mac = $3 WHERE id = 1")
            .bind(last.seq)
            .bind(last.hash.as_slice())
            .bind(TestSealer.seal_head(last.seq, &last.hash))
            .execute($pool)
            .await
            .expect("old head");
    }};
}

/// After the upgrade: the old records read back unchanged (their
/// `prev_hash` joined in), the chain verifies, new records link on, a
/// filtered list still shows `prev_hash`, and retention prunes behind a
/// checkpoint that verify accepts.
#[allow(clippy::expect_used)] // test code: a failed expectation is a failed test
async fn check_upgraded(store: &dyn Store, old: &[AuditRecord]) {
    let n = old.len() as i64;
    let read = store.audit_range(0, 1000).await.expect("range");
    assert_eq!(read, old, "old records read back unchanged");
    let mut new = vec![record(1000), record(1001)];
    store
        .append_audit(&mut new, &[], &[], &TestSealer)
        .await
        .expect("append after the upgrade");
    assert_eq!(new[0].seq, n + 1);
    assert_eq!(new[0].prev_hash, old[old.len() - 1].hash);
    let verify = |from: Option<coffer_core::audit::Checkpoint>| async move {
        let mut v = ChainVerifier::new();
        if let Some(cp) = &from {
            v = v.after_checkpoint(&TestSealer, cp).expect("checkpoint");
        }
        for r in store.audit_range(v.last_seq(), 1000).await.expect("range") {
            v.push(&TestSealer, &r).expect("chain verifies");
        }
        v.finish(&TestSealer, &store.audit_head().await.expect("head"))
    };
    assert_eq!(verify(None).await, Ok(n + 2));
    // A filtered page (an access ID) carries the joined prev_hash too.
    let page = store
        .query_audit(&coffer_store::AuditQuery {
            access_id: Some("p-1".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("query");
    assert!(!page.is_empty());
    for r in &page {
        assert_eq!(r, &old[usize::try_from(r.seq - 1).expect("seq")]);
    }
    // Retention on the upgraded log: prune the first half.
    let mut rec = change_record("audit-prune");
    let cut = old[usize::try_from(n / 2).expect("n")].time_ms;
    let range = store
        .prune_audit(cut, 1000, Audit::new(&mut rec, &TestSealer))
        .await
        .expect("prune")
        .expect("something pruned");
    assert_eq!((range.first_seq, range.last_seq), (1, n / 2));
    let cp = store.audit_checkpoint().await.expect("checkpoint");
    assert_eq!(verify(cp).await, Ok(n + 3));
    // The first record after the checkpoint shows the pruned one's hash.
    let first = &store.audit_range(0, 1).await.expect("range")[0];
    assert_eq!(first.seq, n / 2 + 1);
    assert_eq!(
        first.prev_hash,
        old[usize::try_from(n / 2 - 1).expect("n")].hash
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrade_from_migration_5() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = sqlite_url(&dir.path().join("coffer.db"));
    let old = old_chain(40);
    {
        let opts: sqlx::sqlite::SqliteConnectOptions =
            format!("{url}?mode=rwc").parse().expect("options");
        let pool = sqlx::SqlitePool::connect_with(opts)
            .await
            .expect("old pool");
        conformance::migrate_sqlite_up_to(&pool, 5).await;
        write_old_chain!(&pool, &old);
        pool.close().await;
    }
    let store = SqliteStore::open_url(&url).await.expect("upgrade");
    check_upgraded(&store, &old).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrade_from_migration_5() {
    let Some(db) = TestDb::create("postgres_upgrade").await else {
        return;
    };
    db.run(|url| async move {
        let old = old_chain(40);
        {
            let pool = sqlx::PgPool::connect(&url).await.expect("old pool");
            conformance::migrate_postgres_up_to(&pool, 5).await;
            write_old_chain!(&pool, &old);
            pool.close().await;
        }
        let store = PgStore::connect(&url).await.expect("upgrade");
        check_upgraded(&store, &old).await;
        store.close().await;
    })
    .await;
}

/// A rolling upgrade of several nodes on PostgreSQL: once a new node has
/// migrated the database, nodes of the previous version still running
/// append their records the old way (with `prev_hash`, migration 6 keeps
/// the column, nullable) and the new nodes' records link on; the chain
/// verifies across both.
#[tokio::test]
#[allow(clippy::expect_used)] // test code: a failed expectation is a failed test
async fn postgres_old_nodes_keep_writing_during_a_rolling_upgrade() {
    let Some(db) = TestDb::create("postgres_roll").await else {
        return;
    };
    db.run(|url| async move {
        let chain = old_chain(6);
        let (before, during) = chain.split_at(4);
        let pool = sqlx::PgPool::connect(&url).await.expect("old pool");
        conformance::migrate_postgres_up_to(&pool, 5).await;
        write_old_chain!(&pool, before);
        // A new node starts: it migrates the database to the latest version.
        let store = PgStore::connect(&url).await.expect("upgrade");
        // An old node, still running, appends the way it always did.
        write_old_chain!(&pool, during);
        pool.close().await;
        // The new node appends after it, then everything verifies.
        let mut new = vec![record(1000)];
        store
            .append_audit(&mut new, &[], &[], &TestSealer)
            .await
            .expect("append after the old node's records");
        assert_eq!(new[0].seq, 7);
        assert_eq!(new[0].prev_hash, chain[5].hash);
        let mut v = ChainVerifier::new();
        let all = store.audit_range(0, 1000).await.expect("range");
        assert_eq!(&all[..6], &chain[..]);
        for r in &all {
            v.push(&TestSealer, r).expect("chain verifies");
        }
        assert_eq!(
            v.finish(&TestSealer, &store.audit_head().await.expect("head")),
            Ok(7)
        );
        store.close().await;
    })
    .await;
}
