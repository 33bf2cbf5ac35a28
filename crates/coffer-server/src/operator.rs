//! `coffer operator`: offline (or beside running servers) operations on a
//! store: backup and restore of the embedded SQLite store, root-key
//! rotation, data-key rotation and a key status report.
//!
//! Key hierarchy (see `coffer-crypto`): the root key wraps the data keys
//! and the derivation key; the keyed hashes (access keys, tokens) and the
//! audit MAC derive from the derivation key, which is the root key itself
//! until the first root-key rotation stores the old root key's bytes,
//! wrapped by the new root key. So rotating the root key re-wraps a few
//! rows in one transaction and leaves every access key, token and audit
//! record valid; a crash leaves the store opening with exactly one of the
//! two keys.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use coffer_crypto::{DataKey, RootKey};
use coffer_store::{Audit, Resealed, Rewrap, SealedTable, Store};

use crate::config::{Config, RootKeySource, ServerArgs, sqlite_url};
use crate::state::{AuditMac, derivation_key, now_ms, random_id, system_record};

/// Where the store is and how to get its (current) root key: the same
/// sources as `coffer server` (COFFER_ROOT_KEY, --root-key-file,
/// --root-key-command; `<data-dir>/root.key` when none is given).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StoreArgs {
    /// Data directory (coffer.db, and root.key for --dev set-ups).
    #[arg(long, env = "COFFER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Storage URL: sqlite:///path/coffer.db or postgres://user@host/db.
    #[arg(long, env = "COFFER_STORAGE_URL", hide_env_values = true)]
    pub storage: Option<String>,
    /// File holding the current root key (default: <data-dir>/root.key).
    #[arg(long, env = "COFFER_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
    /// Command whose standard output is the current root key.
    #[arg(long, env = "COFFER_ROOT_KEY_COMMAND")]
    pub root_key_command: Option<String>,
}

/// The storage URL, and the data dir's `root.key` when it is the key used.
struct Resolved {
    url: String,
    /// Set when the key came from `<data-dir>/root.key` (a --dev set-up).
    dev_key_file: Option<PathBuf>,
    source: Option<RootKeySource>,
}

fn key_given(args: &StoreArgs) -> bool {
    args.root_key_file.is_some()
        || args.root_key_command.is_some()
        || std::env::var_os("COFFER_ROOT_KEY").is_some()
        // What scrub_root_key_env leaves in place of COFFER_ROOT_KEY.
        || std::env::var_os("COFFER_ROOT_KEY_FD").is_some()
}

/// Resolve through the server's own configuration rules. `need_key`:
/// fail when no root key is configured.
fn resolve(args: &StoreArgs, need_key: bool) -> anyhow::Result<Resolved> {
    let url = crate::offline::storage_url(args.storage.as_deref(), args.data_dir.as_deref())?;
    let mut server = ServerArgs {
        storage: Some(url.clone()),
        root_key_file: args.root_key_file.clone(),
        root_key_command: args.root_key_command.clone(),
        ..Default::default()
    };
    let mut dev_key_file = None;
    if !key_given(args)
        && let Some(d) = &args.data_dir
        && d.join("root.key").exists()
    {
        server.root_key_file = Some(d.join("root.key"));
        dev_key_file = Some(d.join("root.key"));
    }
    let has_key = key_given(args) || dev_key_file.is_some();
    if !has_key {
        if need_key {
            bail!(
                "no root key: give --root-key-file, --root-key-command or set COFFER_ROOT_KEY (the data directory has no root.key)"
            );
        }
        return Ok(Resolved {
            url,
            dev_key_file,
            source: None,
        });
    }
    let config = Config::resolve(&server)?;
    Ok(Resolved {
        url,
        dev_key_file,
        source: Some(config.root_key),
    })
}

fn load_key(r: &Resolved) -> anyhow::Result<RootKey> {
    match &r.source {
        Some(s) => crate::load_root_key(s),
        None => bail!("no root key configured"),
    }
}

async fn open_store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    coffer_store::open(url)
        .await
        .with_context(|| format!("cannot open storage {}", coffer_store::redact_url(url)))
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Test-only pause between the steps of a rotation (see
/// [`coffer_store::TEST_STEP_DELAY_ENV`]), so a crash test can kill it
/// between any two of them.
async fn step_delay() {
    // Debug builds only: a release binary ignores the variable.
    if let Some(ms) = coffer_store::test_step_delay_ms() {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// The unwrapped data keys, or an error naming the key's fingerprint.
fn unwrap_all(
    root: &RootKey,
    wrapped: &[(i64, Vec<u8>)],
) -> anyhow::Result<HashMap<i64, Arc<DataKey>>> {
    let mut keys = HashMap::new();
    for (id, w) in wrapped {
        let dek = root
            .unwrap(w, &coffer_crypto::data_key_label(*id))
            .map_err(|_| {
                anyhow::anyhow!(
                    "the root key (fingerprint {}) cannot open this store's data keys: wrong root key for this storage",
                    root.fingerprint()
                )
            })?;
        keys.insert(*id, Arc::new(dek));
    }
    Ok(keys)
}

// ---- backup and restore ----

/// `coffer operator backup`: a consistent snapshot of a running (or
/// stopped) embedded store into a new 0600 file, checked afterwards.
pub async fn backup(args: &StoreArgs, to: &Path) -> anyhow::Result<()> {
    let r = resolve(args, false)?;
    if is_postgres(&r.url) {
        bail!(
            "a PostgreSQL store is backed up with PostgreSQL's own tools, not by coffer: pg_dump --format=custom --file=coffer.dump <database> (and pg_restore into an empty database to restore), plus the root key kept apart from the dump; see docs/operations.md, \"Backup and restore: PostgreSQL\""
        );
    }
    let src = coffer_store::backup::sqlite_path(&r.url)?;
    let started = Instant::now();
    coffer_store::backup::sqlite_snapshot(&src, to)
        .await
        .with_context(|| format!("backup of {} failed", src.display()))?;
    let took = started.elapsed();
    let check = coffer_store::backup::sqlite_check(to).await?;
    let size = std::fs::metadata(to)?.len();
    println!(
        "Backup written to {} ({size} bytes, mode 0600) in {:.2} s",
        to.display(),
        took.as_secs_f64()
    );
    println!(
        "  integrity: ok; {} items, {} data keys; audit chain head: record {} (hash {})",
        check.items, check.data_keys, check.audit_seq, check.audit_hash_hex
    );
    match &r.source {
        Some(_) => {
            let root = load_key(&r)?;
            let report = verify_copy(to, &root).await?;
            println!(
                "  the root key (fingerprint {}) opens it; audit chain verified: {report}",
                root.fingerprint()
            );
            println!(
                "The backup does NOT contain the root key. Restoring it needs the root key with fingerprint {}: keep that key safe, apart from the backup.",
                root.fingerprint()
            );
        }
        None => println!(
            "The backup does NOT contain the root key (none was given, so it was not checked against one): restoring it needs the root key this store uses."
        ),
    }
    Ok(())
}

/// Open a copy with the root key: the data keys must open and the audit
/// chain verify. Returns a one-line report.
async fn verify_copy(db: &Path, root: &RootKey) -> anyhow::Result<String> {
    let store = coffer_store::SqliteStore::open_url(&sqlite_url(db)).await?;
    let result = async {
        unwrap_all(root, &store.data_keys().await?)?;
        let base = derivation_key(root, &store).await?;
        let report = crate::offline::verify_chain(&store, &AuditMac::new(&base), &[], 0).await?;
        if !report.valid {
            bail!(
                "the audit chain of {} does not verify: {}",
                db.display(),
                report.error.unwrap_or_default()
            );
        }
        Ok(format!("{} records", report.records))
    }
    .await;
    store.close().await;
    result
}

/// `coffer operator restore`: lay a backup into a new, empty data dir.
pub async fn restore(
    from: &Path,
    data_dir: &Path,
    root_key_file: Option<&Path>,
) -> anyhow::Result<()> {
    if data_dir.exists() {
        let mut entries = std::fs::read_dir(data_dir)
            .with_context(|| format!("cannot read {}", data_dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "{} is not empty: restore only into a new or empty directory (nothing was changed)",
                data_dir.display()
            );
        }
    }
    coffer_store::backup::sqlite_check(from)
        .await
        .with_context(|| format!("{} is not a usable backup", from.display()))?;
    let root = root_key_file.map(RootKey::load_file).transpose()?;
    let created_dir = !data_dir.exists();
    crate::create_private_dir(data_dir)?;
    let db = data_dir.join("coffer.db");
    let copied = async {
        coffer_store::backup::sqlite_snapshot(from, &db).await?;
        let check = coffer_store::backup::sqlite_check(&db).await?;
        let report = match &root {
            Some(k) => Some(verify_copy(&db, k).await?),
            None => None,
        };
        anyhow::Ok((check, report))
    }
    .await;
    let (check, report) = match copied {
        Ok(x) => x,
        Err(e) => {
            // Leave nothing half-restored behind (the copy itself is made in
            // a temporary file and appears as coffer.db only when complete).
            for f in ["coffer.db", "coffer.db-wal", "coffer.db-shm"] {
                std::fs::remove_file(data_dir.join(f)).ok();
            }
            if created_dir {
                std::fs::remove_dir(data_dir).ok();
            }
            return Err(e);
        }
    };
    println!(
        "Restored {} into {} ({} items, {} data keys, audit head at record {})",
        from.display(),
        db.display(),
        check.items,
        check.data_keys,
        check.audit_seq
    );
    match (&root, report) {
        (Some(k), Some(report)) => println!(
            "  the root key (fingerprint {}) opens it; audit chain verified: {report}",
            k.fingerprint()
        ),
        _ => println!(
            "  not checked against a root key (give --root-key-file to check it opens and its audit chain verifies)"
        ),
    }
    println!(
        "Start the server with the original root key: coffer server --data-dir {} --root-key-file <the original key> (for a --dev data dir, copy the original root.key into {} first)",
        data_dir.display(),
        data_dir.display()
    );
    Ok(())
}

// ---- root-key rotation ----

/// `coffer operator rotate-root-key`: re-wrap every data key and the
/// derivation key under the key in `new_file` (generated there first when
/// the file does not exist), in one audited transaction.
pub async fn rotate_root_key(args: &StoreArgs, new_file: &Path) -> anyhow::Result<()> {
    let r = resolve(args, true)?;
    let old = load_key(&r)?;
    let store = open_store(&r.url).await?;
    let wrapped = store.data_keys().await?;
    if wrapped.is_empty() {
        bail!("this store has no data key yet: start the server once first (nothing was changed)");
    }
    let old_derivation = store.get_meta(coffer_store::DERIVATION_KEY).await?;
    // Check the current key before creating anything: a wrong key leaves no
    // stray new key file behind.
    let old_opens =
        unwrap_all(&old, &wrapped).is_ok() && derivation_key(&old, &*store).await.is_ok();
    if !old_opens {
        // Already rotated to this key (an earlier run committed, then died
        // or was re-run)?
        if new_file.exists() {
            let new = RootKey::load_file(new_file).context("the new root key file")?;
            if unwrap_all(&new, &wrapped).is_ok()
                && old_derivation.is_some()
                && derivation_key(&new, &*store).await.is_ok()
            {
                println!(
                    "The store already uses the new root key (fingerprint {}): nothing to re-wrap",
                    new.fingerprint()
                );
                install_dev_key(&r, new_file)?;
                return Ok(());
            }
        }
        bail!(
            "the current root key (fingerprint {}) cannot open this store's data keys, and neither can the new one: give the key the store uses now (nothing was changed)",
            old.fingerprint()
        );
    }
    // Written (synced, 0600) before the transaction: once it commits, the
    // new key is on disk.
    let new = if new_file.exists() {
        RootKey::load_file(new_file).context("the new root key file")?
    } else {
        let k = RootKey::create_file(new_file)?;
        println!(
            "Created the new root key {} (mode 0600, fingerprint {})",
            new_file.display(),
            k.fingerprint()
        );
        k
    };
    step_delay().await;
    if new.fingerprint() == old.fingerprint() {
        bail!(
            "the new root key is the current one (fingerprint {}): give another file, or a path that does not exist to generate one",
            old.fingerprint()
        );
    }
    let keys = unwrap_all(&old, &wrapped)?;
    let base = derivation_key(&old, &*store).await?;
    let mut rewrapped = Vec::with_capacity(wrapped.len());
    for (id, _) in &wrapped {
        let dek = &keys[id];
        rewrapped.push((*id, new.wrap(dek, &coffer_crypto::data_key_label(*id))?));
    }
    let new_derivation = base64::engine::general_purpose::STANDARD
        .encode(new.wrap_key(&base, coffer_crypto::DERIVATION_KEY_LABEL)?);
    step_delay().await;
    let audit = AuditMac::new(&base);
    let mut rec = system_record(
        "rotate-root-key",
        &format!(
            "root key {} -> {} ({} data keys re-wrapped)",
            old.fingerprint(),
            new.fingerprint(),
            wrapped.len()
        ),
    );
    store
        .rewrap_keys(
            &Rewrap {
                old: &wrapped,
                new: &rewrapped,
                old_derivation: old_derivation.as_deref(),
                new_derivation: &new_derivation,
            },
            Audit::new(&mut rec, &audit),
        )
        .await?;
    step_delay().await;
    println!(
        "Root key rotated: {} data keys and the derivation key are now wrapped by the new root key (fingerprint {}); the old key (fingerprint {}) no longer opens this store (audit record {})",
        wrapped.len(),
        new.fingerprint(),
        old.fingerprint(),
        rec.seq
    );
    install_dev_key(&r, new_file)?;
    println!(
        "Running servers keep working; restart each with the new root key (one at a time) before the next data-key rotation."
    );
    Ok(())
}

/// For a --dev data dir whose key is `<data-dir>/root.key`: put the new
/// key there (written beside it, synced, renamed over it).
fn install_dev_key(r: &Resolved, new_file: &Path) -> anyhow::Result<()> {
    let Some(dest) = &r.dev_key_file else {
        return Ok(());
    };
    if dest.canonicalize().ok() == new_file.canonicalize().ok() {
        return Ok(());
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read(new_file).with_context(|| format!("cannot read {}", new_file.display()))?,
    );
    let tmp = dest.with_file_name(".root.key.new");
    std::fs::remove_file(&tmp).ok();
    let placed = coffer_crypto::write_private_file(&tmp, &text)
        .with_context(|| format!("cannot write {}", tmp.display()))
        .and_then(|()| {
            std::fs::rename(&tmp, dest)
                .with_context(|| format!("cannot replace {}", dest.display()))
        });
    if placed.is_err() {
        // No copy of a key left lying around.
        std::fs::remove_file(&tmp).ok();
    }
    placed?;
    if let Some(dir) = dest.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all())?;
    }
    println!(
        "Replaced {} with the new root key (the data directory's key for --dev)",
        dest.display()
    );
    Ok(())
}

// ---- data-key rotation ----

/// Options of `coffer operator rotate-data-key`.
#[derive(Debug, Clone)]
pub struct DataKeyRotation {
    /// Values per batch (one transaction each).
    pub batch: usize,
    /// Time given to running servers to load the new key before values are
    /// re-sealed under it (they poll the store's generation).
    pub wait: Duration,
}

/// `coffer operator rotate-data-key`: add a data key for new writes, then
/// re-seal every value under it in batches. Re-running after an
/// interruption finishes the job instead of adding another key.
pub async fn rotate_data_key(args: &StoreArgs, opts: &DataKeyRotation) -> anyhow::Result<()> {
    let r = resolve(args, true)?;
    let root = load_key(&r)?;
    let store = open_store(&r.url).await?;
    let base = derivation_key(&root, &*store).await?;
    let audit = AuditMac::new(&base);
    let wrapped = store.data_keys().await?;
    if wrapped.is_empty() {
        bail!("this store has no data key yet: start the server once first");
    }
    let mut keys = unwrap_all(&root, &wrapped)?;
    let mut active = wrapped.last().map(|(id, _)| *id).unwrap_or_default();
    let pending = pending_values(&*store, active).await?;
    if keys.len() > 1 && pending > 0 {
        println!(
            "Resuming an unfinished rotation: {pending} values are not yet sealed with the newest data key {active:x}"
        );
    } else {
        let id = random_id()?;
        let dek = DataKey::generate()?;
        let w = root.wrap(&dek, &coffer_crypto::data_key_label(id))?;
        let mut rec = system_record("rotate-data-key", &format!("data key {id:x}"));
        store
            .add_data_key(id, &w, now_ms(), &wrapped, Audit::new(&mut rec, &audit))
            .await?;
        println!(
            "Added data key {id:x} (audit record {}): it seals new values from now on",
            rec.seq
        );
        if !opts.wait.is_zero() {
            println!(
                "Waiting {} s for running servers to load it...",
                opts.wait.as_secs()
            );
            tokio::time::sleep(opts.wait).await;
        }
        let wrapped = store.data_keys().await?;
        keys = unwrap_all(&root, &wrapped)?;
        active = wrapped.last().map(|(id, _)| *id).unwrap_or_default();
        if active != id {
            bail!(
                "another data key ({active:x}) was added meanwhile: run the command again to re-seal under it"
            );
        }
    }
    let active_key = keys[&active].clone();
    let started = Instant::now();
    let mut total = 0u64;
    for pass in 1..=10 {
        let todo = pending_values(&*store, active).await?;
        if todo == 0 {
            break;
        }
        if pass > 1 {
            println!("{todo} values were written under an older key meanwhile: another pass");
        }
        for table in SealedTable::ALL {
            total += reseal_table(
                &*store,
                &root,
                &mut keys,
                &active_key,
                active,
                table,
                opts,
                &audit,
            )
            .await?;
        }
    }
    let left = pending_values(&*store, active).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "Re-sealed {total} values under data key {active:x} in {secs:.2} s ({:.0} values/s)",
        total as f64 / secs.max(1e-9)
    );
    if left > 0 {
        bail!(
            "{left} values are still sealed with older keys (written by a server that has not loaded the new key?): run the command again"
        );
    }
    println!(
        "Every value is sealed with data key {active:x}; older data keys are kept (never deleted)."
    );
    Ok(())
}

/// Values in every sealed table not under `active`.
async fn pending_values(store: &dyn Store, active: i64) -> anyhow::Result<i64> {
    let mut n = 0;
    for table in SealedTable::ALL {
        n += store
            .count_sealed(table)
            .await?
            .iter()
            .filter(|(k, _)| *k != active)
            .map(|(_, c)| c)
            .sum::<i64>();
    }
    Ok(n)
}

fn aad(table: SealedTable, id: i64, version: i32) -> Vec<u8> {
    match table {
        SealedTable::ItemVersions => coffer_crypto::value_aad(id, version),
        SealedTable::Targets => coffer_crypto::target_aad(id, version),
    }
}

#[allow(clippy::too_many_arguments)]
async fn reseal_table(
    store: &dyn Store,
    root: &RootKey,
    keys: &mut HashMap<i64, Arc<DataKey>>,
    active_key: &DataKey,
    active: i64,
    table: SealedTable,
    opts: &DataKeyRotation,
    mac: &AuditMac,
) -> anyhow::Result<u64> {
    let todo: i64 = store
        .count_sealed(table)
        .await?
        .iter()
        .filter(|(k, _)| *k != active)
        .map(|(_, c)| c)
        .sum();
    if todo == 0 {
        return Ok(0);
    }
    let mut after = (i64::MIN, i32::MIN);
    let mut done = 0u64;
    let limit = i64::try_from(opts.batch.clamp(1, 10_000)).unwrap_or(500);
    loop {
        let rows = store.sealed_rows(table, active, after, limit).await?;
        let Some(last) = rows.last() else { break };
        after = (last.id, last.version);
        let mut batch = Vec::with_capacity(rows.len());
        for row in &rows {
            if !keys.contains_key(&row.key_id) {
                *keys = unwrap_all(root, &store.data_keys().await?)?;
            }
            let key = keys.get(&row.key_id).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} row {} version {} uses data key {:x}, which does not exist",
                    table.as_str(),
                    row.id,
                    row.version,
                    row.key_id
                )
            })?;
            let aad = aad(table, row.id, row.version);
            let plain = key.open(&row.sealed, &aad).map_err(|_| {
                anyhow::anyhow!(
                    "{} row {} version {} does not decrypt (modified or moved): fix or delete it, then run again",
                    table.as_str(),
                    row.id,
                    row.version
                )
            })?;
            batch.push(Resealed {
                id: row.id,
                version: row.version,
                old_key_id: row.key_id,
                old_sealed: row.sealed.clone(),
                new_key_id: active,
                sealed: active_key.seal(&plain, &aad)?,
            });
        }
        let mut rec = system_record(
            "reseal-values",
            &format!("{} under data key {active:x}", table.as_str()),
        );
        done += store
            .reseal_rows(table, &batch, Audit::new(&mut rec, mac))
            .await?;
        println!("  {}: {done}/{todo} re-sealed", table.as_str());
    }
    Ok(done)
}

// ---- status ----

/// `coffer operator key-status`: does the root key open the store, which
/// data key is active, how many values each key seals. Fails (non-zero
/// exit) when the root key does not open the store.
pub async fn key_status(args: &StoreArgs) -> anyhow::Result<()> {
    let r = resolve(args, true)?;
    let root = load_key(&r)?;
    let store = open_store(&r.url).await?;
    let wrapped = store.data_keys().await?;
    println!("root key fingerprint: {}", root.fingerprint());
    unwrap_all(&root, &wrapped)?;
    derivation_key(&root, &*store).await?;
    println!("opens this store: yes");
    let rotated = store
        .get_meta(coffer_store::DERIVATION_KEY)
        .await?
        .is_some();
    println!(
        "derivation key: {}",
        if rotated {
            "stored, wrapped by the root key (the root key was rotated)"
        } else {
            "the root key itself (never rotated)"
        }
    );
    let active = wrapped.last().map(|(id, _)| *id).unwrap_or_default();
    println!("data keys: {} (active: {active:x})", wrapped.len());
    for table in SealedTable::ALL {
        let counts = store.count_sealed(table).await?;
        let text: Vec<String> = counts
            .iter()
            .map(|(k, c)| format!("{k:x}{}={c}", if *k == active { " (active)" } else { "" }))
            .collect();
        println!("{}: {}", table.as_str(), text.join(", "));
    }
    Ok(())
}
