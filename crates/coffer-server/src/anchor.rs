//! Anchors: copies of the audit chain head kept outside the database.
//!
//! The head row is MACed with the audit key, so nobody without the key can
//! point it at an earlier record or reset it. But someone who can write the
//! database could put back an *older* genuine head (from a backup) after
//! deleting the records that followed it. An anchor, written elsewhere,
//! defeats that: `audit verify` requires the chain to still contain every
//! anchored record with the anchored hash.
//!
//! Every `--audit-anchor-interval` (default 60 s) and at start-up, if the
//! head moved, the server logs it (INFO, target `coffer::audit_anchor`, so a
//! log shipper keeps a copy) and appends it as one JSON line to
//! `--audit-anchor-file` when configured (a file outside the database's
//! reach, e.g. on another volume or a WORM mount). Anchors carry the head's
//! MAC, so a forged anchor is refused rather than trusted.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use coffer_core::audit::{Anchor, ChainSealer};

use crate::state::{AppState, now_ms};

/// The anchors in `path` (one JSON object per line); none when no file is
/// configured or it does not exist yet.
pub fn read_anchors(path: Option<&Path>) -> anyhow::Result<Vec<Anchor>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read anchor file {}", path.display()));
        }
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<Anchor>(l).with_context(|| {
                format!(
                    "line {} of anchor file {} is not an audit anchor",
                    i + 1,
                    path.display()
                )
            })
        })
        .collect()
}

fn append(path: &Path, anchor: &Anchor) -> anyhow::Result<()> {
    let mut open = std::fs::OpenOptions::new();
    open.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let mut f = open
        .open(path)
        .with_context(|| format!("cannot open anchor file {}", path.display()))?;
    let mut line = serde_json::to_vec(anchor)?;
    line.push(b'\n');
    f.write_all(&line)?;
    f.sync_data()?;
    Ok(())
}

/// Anchor the current head if it moved since `last`; returns the head seq.
pub async fn anchor_once(state: &AppState, last: i64) -> anyhow::Result<i64> {
    let head = state.store.audit_head().await?;
    if head.seq == last || head.seq == 0 {
        return Ok(head.seq);
    }
    if head.mac != state.keys.audit.seal_head(head.seq, &head.hash) {
        // Never copy a forged head out of the database as if it were true.
        anyhow::bail!(
            "the audit chain head (record {}) does not carry a valid MAC: it was modified outside Coffer; run `coffer audit verify`",
            head.seq
        );
    }
    let anchor = Anchor {
        seq: head.seq,
        hash: head.hash,
        mac: head.mac,
        time_ms: now_ms(),
    };
    tracing::info!(
        target: "coffer::audit_anchor",
        seq = anchor.seq,
        hash = %hex::encode(&anchor.hash),
        mac = %hex::encode(&anchor.mac),
        "audit anchor"
    );
    if let Some(path) = &state.config.audit_anchor_file {
        append(path, &anchor)?;
    }
    Ok(anchor.seq)
}

/// Anchor at start-up and then every interval.
pub async fn anchor_loop(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.config.audit_anchor_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = 0;
    loop {
        tick.tick().await;
        match anchor_once(&state, last).await {
            Ok(seq) => last = seq,
            Err(e) => tracing::error!(error = %e, "audit anchoring failed"),
        }
    }
}
