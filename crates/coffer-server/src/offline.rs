//! Direct store access for audit tools, without a running server.

use std::path::PathBuf;

use anyhow::{Context, bail};
use coffer_core::audit::{Anchor, AuditRecord, ChainSealer, ChainVerifier, Outcome};
use coffer_core::name::normalize_name;
use coffer_crypto::RootKey;
use coffer_store::{AuditQuery, Store};

use crate::config::sqlite_url;
use crate::state::AuditMac;
use crate::timefmt::{parse_time, rfc3339};

/// Where to find the store and its root key.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OfflineArgs {
    /// Data directory of a dev/embedded server (coffer.db + root.key).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Storage URL (sqlite:// or postgres://); needs the root key too.
    #[arg(long)]
    pub storage: Option<String>,
    /// Root key file (default: <data-dir>/root.key; or set COFFER_ROOT_KEY).
    #[arg(long, env = "COFFER_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
    /// Audit anchor file written by the server (--audit-anchor-file): the
    /// chain must still contain every anchored head (detects truncation).
    #[arg(long)]
    pub anchor_file: Option<PathBuf>,
}

impl OfflineArgs {
    /// Is offline mode requested at all?
    pub fn is_set(&self) -> bool {
        self.data_dir.is_some() || self.storage.is_some()
    }
}

/// Audit filters as users give them (API fields or CLI flags), validated
/// into an [`AuditQuery`] in one place for the API and offline tools.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// RFC 3339 or Unix seconds; inclusive.
    pub since: Option<String>,
    /// RFC 3339 or Unix seconds; exclusive.
    pub until: Option<String>,
    pub access_id: Option<String>,
    pub item: Option<String>,
    pub operation: Option<String>,
    /// allowed, denied or error.
    pub outcome: Option<String>,
    /// 1..=10000, default 100.
    pub limit: Option<i64>,
    pub after_seq: Option<i64>,
}

pub const AUDIT_DEFAULT_LIMIT: i64 = 100;
pub const AUDIT_MAX_LIMIT: i64 = 10_000;

impl AuditFilter {
    /// Validate; the error says which filter is wrong and how to fix it.
    pub fn to_query(&self) -> Result<AuditQuery, String> {
        let time = |key: &str, v: &Option<String>| -> Result<Option<i64>, String> {
            match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                None => Ok(None),
                Some(s) => parse_time(s).map(Some).ok_or_else(|| {
                    format!("{key} must be an RFC 3339 time (2026-01-02T15:04:05Z) or Unix seconds")
                }),
            }
        };
        let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let outcome = match nonempty(&self.outcome) {
            None => None,
            Some(o) => {
                Some(Outcome::parse(o.trim()).ok_or("outcome must be allowed, denied or error")?)
            }
        };
        let limit = self.limit.unwrap_or(AUDIT_DEFAULT_LIMIT);
        if !(1..=AUDIT_MAX_LIMIT).contains(&limit) {
            return Err(format!("limit must be between 1 and {AUDIT_MAX_LIMIT}"));
        }
        // Object names are recorded normalised; match them the same way.
        let object = nonempty(&self.item).map(|item| normalize_name(&item).unwrap_or(item));
        Ok(AuditQuery {
            since_ms: time("since", &self.since)?,
            until_ms: time("until", &self.until)?,
            access_id: nonempty(&self.access_id),
            identity: None,
            object,
            operation: nonempty(&self.operation),
            outcome,
            after_seq: self.after_seq,
            limit,
        })
    }
}

/// A record as `audit-list` returns it: the stored fields plus `time` (RFC 3339).
pub fn record_json(r: &AuditRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("time".into(), serde_json::Value::String(rfc3339(r.time_ms)));
    }
    v
}

/// Outcome of verifying the audit chain.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    pub valid: bool,
    /// Records verified (those after the retention checkpoint).
    pub records: i64,
    /// Seq of the last record (the chain head).
    pub last_seq: i64,
    /// Copies of the chain head kept outside the database that were checked.
    pub anchors_checked: usize,
    /// Of those, anchors naming records since pruned by retention (vouched
    /// for by the checkpoint, not compared with records).
    pub anchors_pruned: usize,
    /// The retention checkpoint the chain starts after, when records were
    /// pruned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<CheckpointInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The pruned part of the chain, as `audit-verify` reports it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckpointInfo {
    /// Last pruned record.
    pub seq: i64,
    /// Its time (RFC 3339).
    pub time: String,
    pub hash: String,
}

/// The store named by `--storage URL`, or the SQLite database of
/// `--data-dir DIR` (which must exist: a typo must not create a new store).
pub(crate) fn storage_url(
    storage: Option<&str>,
    data_dir: Option<&std::path::Path>,
) -> anyhow::Result<String> {
    Ok(match (storage, data_dir) {
        (Some(u), _) => u.to_owned(),
        (None, Some(d)) => {
            let db = d.join("coffer.db");
            if !db.exists() {
                bail!(
                    "{} does not exist: is {} a Coffer data directory?",
                    db.display(),
                    d.display()
                );
            }
            sqlite_url(&db)
        }
        (None, None) => bail!("give --data-dir DIR or --storage URL"),
    })
}

async fn open(args: &OfflineArgs) -> anyhow::Result<(std::sync::Arc<dyn Store>, RootKey)> {
    let url = storage_url(args.storage.as_deref(), args.data_dir.as_deref())?;
    let key = if let Some(f) = &args.root_key_file {
        RootKey::load_file(f)?
    } else if let Ok(k) = std::env::var("COFFER_ROOT_KEY") {
        RootKey::parse(&k)?
    } else if let Some(d) = &args.data_dir {
        RootKey::load_file(&d.join("root.key"))?
    } else {
        bail!(
            "the audit chain is keyed by the root key: give --root-key-file or set COFFER_ROOT_KEY"
        )
    };
    let store = coffer_store::open(&url)
        .await
        .with_context(|| format!("cannot open storage {}", coffer_store::redact_url(&url)))?;
    Ok((store, key))
}

/// Walk the chain in pages, from the retention checkpoint (whose MAC must
/// be valid) if records were pruned, up to the stored head (whose MAC must
/// be valid), and compare with `anchors` (copies of earlier heads kept
/// outside the database; those inside the pruned range are vouched for by
/// the checkpoint) and with `high_water` (the highest record this server
/// process wrote; 0 offline). A store that was bootstrapped always has
/// records, so an empty log without a checkpoint was wiped. A prune by
/// another node while this runs makes it start again (at most 3 times).
pub async fn verify_chain(
    store: &dyn Store,
    sealer: &dyn ChainSealer,
    anchors: &[Anchor],
    high_water: i64,
) -> anyhow::Result<VerifyReport> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match verify_once(store, sealer, anchors, high_water).await? {
            Walk::Done(report) => return Ok(report),
            Walk::PrunedMeanwhile if attempt < 3 => continue,
            Walk::PrunedMeanwhile => bail!(
                "the audit log was pruned three times while being verified; try again (or verify offline)"
            ),
        }
    }
}

enum Walk {
    Done(VerifyReport),
    /// The checkpoint moved while walking: start again.
    PrunedMeanwhile,
}

async fn verify_once(
    store: &dyn Store,
    sealer: &dyn ChainSealer,
    anchors: &[Anchor],
    high_water: i64,
) -> anyhow::Result<Walk> {
    // The checkpoint, then the head: a prune only moves the checkpoint
    // below the head it saw, so read in this order a genuine checkpoint is
    // always below the head (read the other way round, a prune in between
    // could put it past the head and look like tampering). Records
    // appended while walking lie beyond the head and are left for the
    // next verify.
    let checkpoint = store.audit_checkpoint().await?;
    let head = store.audit_head().await?;
    let anchors_checked = anchors.len();
    let info = checkpoint.as_ref().map(|c| CheckpointInfo {
        seq: c.seq,
        time: rfc3339(c.time_ms),
        hash: hex::encode(&c.hash),
    });
    let fail = |records: i64, last_seq: i64, anchors_pruned: usize, error: String| {
        Walk::Done(VerifyReport {
            valid: false,
            records,
            last_seq,
            anchors_checked,
            anchors_pruned,
            checkpoint: info.clone(),
            error: Some(error),
        })
    };
    let mut verifier = match ChainVerifier::new().with_anchors(sealer, anchors) {
        Ok(v) => v,
        Err(e) => return Ok(fail(0, 0, 0, e.to_string())),
    };
    if let Some(cp) = &checkpoint {
        verifier = match verifier.after_checkpoint(sealer, cp) {
            Ok(v) => v,
            Err(e) => return Ok(fail(0, 0, 0, e.to_string())),
        };
    }
    let mut after = verifier.last_seq();
    'pages: loop {
        let page = store.audit_range(after, 5000).await?;
        for rec in &page {
            if rec.seq > head.seq {
                break 'pages;
            }
            if let Err(e) = verifier.push(sealer, rec) {
                if store.audit_checkpoint().await? != checkpoint {
                    return Ok(Walk::PrunedMeanwhile);
                }
                return Ok(fail(
                    verifier.count(),
                    verifier.last_seq(),
                    verifier.anchors_pruned(),
                    e.to_string(),
                ));
            }
        }
        match page.last() {
            Some(last) if page.len() == 5000 => after = last.seq,
            _ => break,
        }
    }
    let pruned = verifier.anchors_pruned();
    let last_seq = match verifier.finish(sealer, &head) {
        Ok(n) => n,
        Err(e) => {
            if store.audit_checkpoint().await? != checkpoint {
                return Ok(Walk::PrunedMeanwhile);
            }
            return Ok(fail(
                verifier.count(),
                verifier.last_seq(),
                pruned,
                e.to_string(),
            ));
        }
    };
    if last_seq < high_water {
        return Ok(fail(
            verifier.count(),
            last_seq,
            pruned,
            format!(
                "this server wrote record {high_water} but the log ends at {last_seq}: records were removed from the end"
            ),
        ));
    }
    if last_seq == 0 && store.get_meta(coffer_store::BOOTSTRAPPED).await?.is_some() {
        return Ok(fail(
            0,
            0,
            pruned,
            "the audit log is empty although this store was bootstrapped (which is audited): the log was wiped".into(),
        ));
    }
    Ok(Walk::Done(VerifyReport {
        valid: true,
        records: verifier.count(),
        last_seq,
        anchors_checked,
        anchors_pruned: pruned,
        checkpoint: info,
        error: None,
    }))
}

/// Verify the whole audit chain straight from storage.
pub async fn verify_audit(args: &OfflineArgs) -> anyhow::Result<VerifyReport> {
    let (store, key) = open(args).await?;
    let mac = AuditMac::new(&crate::state::derivation_key(&key, &*store).await?);
    let anchors = crate::anchor::read_anchors(args.anchor_file.as_deref())?;
    verify_chain(&*store, &mac, &anchors, 0).await
}

/// Records per page when exporting (through the API: the `audit-list` cap).
pub const EXPORT_PAGE: i64 = AUDIT_MAX_LIMIT;

/// The records of one export page after `after_seq` (the since/until
/// filter already validated into `query`).
pub fn export_page_query(query: &AuditQuery, after_seq: i64) -> AuditQuery {
    AuditQuery {
        after_seq: Some(after_seq),
        limit: EXPORT_PAGE,
        ..query.clone()
    }
}

/// Write `records` as JSON Lines (the `audit-list` shape, one per line).
pub fn write_json_lines(
    out: &mut dyn std::io::Write,
    records: &[AuditRecord],
) -> std::io::Result<()> {
    for r in records {
        serde_json::to_writer(&mut *out, &record_json(r))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Export the records of `filter` (since/until) straight from storage as
/// JSON Lines, page by page (constant memory); returns how many.
pub async fn export_audit(
    args: &OfflineArgs,
    filter: &AuditFilter,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<u64> {
    let query = filter.to_query().map_err(|e| anyhow::anyhow!("--{e}"))?;
    let (store, _key) = open(args).await?;
    let mut after = 0;
    let mut n = 0u64;
    loop {
        let page = store.query_audit(&export_page_query(&query, after)).await?;
        write_json_lines(out, &page)?;
        n += page.len() as u64;
        match page.last() {
            Some(last) if page.len() as i64 == EXPORT_PAGE => after = last.seq,
            _ => break,
        }
    }
    out.flush()?;
    Ok(n)
}

/// Query audit records straight from storage.
pub async fn list_audit(
    args: &OfflineArgs,
    query: &AuditQuery,
) -> anyhow::Result<Vec<AuditRecord>> {
    let (store, _key) = open(args).await?;
    Ok(store.query_audit(query).await?)
}
