//! Direct store access for audit tools, without a running server.

use std::path::PathBuf;

use anyhow::{Context, bail};
use coffer_core::audit::{AuditRecord, ChainSealer, ChainVerifier};
use coffer_crypto::RootKey;
use coffer_store::{AuditQuery, Store};

use crate::config::sqlite_url;
use crate::state::AuditMac;

/// Where to find the store and its root key.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OfflineArgs {
    /// Data directory of a dev/embedded server (coffer.db + root.key).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Storage URL (sqlite:// or postgres://); needs the root key too.
    #[arg(long, env = "COFFER_STORAGE_URL", hide_env_values = true)]
    pub storage: Option<String>,
    /// Root key file (default: <data-dir>/root.key; or set COFFER_ROOT_KEY).
    #[arg(long, env = "COFFER_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
}

impl OfflineArgs {
    /// Is offline mode requested at all?
    pub fn is_set(&self) -> bool {
        self.data_dir.is_some() || self.storage.is_some()
    }
}

/// Outcome of verifying the audit chain.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    pub valid: bool,
    pub records: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

async fn open(args: &OfflineArgs) -> anyhow::Result<(std::sync::Arc<dyn Store>, RootKey)> {
    let url = match (&args.storage, &args.data_dir) {
        (Some(u), _) => u.clone(),
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
    };
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

/// Walk the whole chain in pages and compare with the stored head.
pub async fn verify_chain(
    store: &dyn Store,
    sealer: &dyn ChainSealer,
) -> anyhow::Result<VerifyReport> {
    let (head_seq, _) = store.audit_head().await?;
    let mut verifier = ChainVerifier::new();
    let mut after = 0;
    loop {
        let page = store.audit_range(after, 5000).await?;
        for rec in &page {
            if let Err(e) = verifier.push(sealer, rec) {
                return Ok(VerifyReport {
                    valid: false,
                    records: verifier.count(),
                    error: Some(e.to_string()),
                });
            }
        }
        match page.last() {
            Some(last) if page.len() == 5000 => after = last.seq,
            _ => break,
        }
    }
    Ok(match verifier.finish(head_seq) {
        Ok(n) => VerifyReport {
            valid: true,
            records: n,
            error: None,
        },
        Err(e) => VerifyReport {
            valid: false,
            records: verifier.count(),
            error: Some(e.to_string()),
        },
    })
}

/// Verify the whole audit chain straight from storage.
pub async fn verify_audit(args: &OfflineArgs) -> anyhow::Result<VerifyReport> {
    let (store, key) = open(args).await?;
    let mac = AuditMac::new(&key);
    verify_chain(&*store, &mac).await
}

/// Query audit records straight from storage.
pub async fn list_audit(
    args: &OfflineArgs,
    query: &AuditQuery,
) -> anyhow::Result<Vec<AuditRecord>> {
    let (store, _key) = open(args).await?;
    Ok(store.query_audit(query).await?)
}
