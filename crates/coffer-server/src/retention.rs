//! Audit retention (`--audit-retention`): every node prunes, every
//! `--audit-prune-interval`, the records older than the retention.
//!
//! Each batch of at most [`PRUNE_BATCH`] records is one store transaction
//! under the chain lock ([`coffer_store::Store::prune_audit`]): the store
//! verifies the records about to go, deletes them, writes the sealed
//! checkpoint of the last one and appends this job's own record
//! (`audit-prune`, object `audit-log seq A-B (N records)`). Nodes running
//! the job at the same time serialize on the lock; the later one starts
//! after the earlier one's checkpoint. Batches keep each transaction, and
//! so the time appends wait for the lock, short.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::bail;
use coffer_store::{Audit, PrunedRange};

use crate::state::{AppState, now_ms, system_record};

/// Records removed per transaction.
pub const PRUNE_BATCH: i64 = 5_000;

/// `90d`, `12h`, `30m`, `45s` → a duration of at least one second; None
/// when not given. A number without a unit is refused: `90` meant as days
/// would otherwise delete all but the last 90 seconds.
pub fn parse_retention(v: Option<&str>) -> anyhow::Result<Option<Duration>> {
    let Some(raw) = v.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let (digits, unit) = match raw.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => raw.split_at(i),
        None => bail!(
            "audit-retention {raw:?} has no unit: write {raw}d for days, {raw}h for hours, {raw}m for minutes or {raw}s for seconds"
        ),
    };
    let scale: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => bail!(
            "audit-retention {raw:?}: give a number with a unit s, m, h, d or w (e.g. 90d or 12h)"
        ),
    };
    let n: u64 = match digits.parse() {
        Ok(n) if n > 0 => n,
        _ => bail!("audit-retention {raw:?}: the number must be at least 1 (e.g. 90d)"),
    };
    // At most 100 years: beyond that it is "keep forever", say so.
    match n.checked_mul(scale) {
        Some(secs) if secs <= 100 * 365 * 86_400 => Ok(Some(Duration::from_secs(secs))),
        _ => bail!(
            "audit-retention {raw:?} is longer than 100 years; leave it unset to keep records forever"
        ),
    }
}

/// Wall-clock time the pruner trusts: the wall clock, but never more than
/// the monotonic time elapsed since the job started (plus a minute of
/// slack) beyond the wall clock it saw then. A clock stepped forward
/// (a bad NTP source, a VM restored with a wrong clock) would otherwise
/// make every record look older than the retention and delete them all.
#[derive(Debug, Clone, Copy)]
pub struct TrustedClock {
    wall0: i64,
    mono0: std::time::Instant,
}

/// Wall-clock advance beyond the monotonic clock that is still believed.
const CLOCK_SLACK_MS: i64 = 60_000;

impl TrustedClock {
    pub fn start() -> TrustedClock {
        TrustedClock {
            wall0: now_ms(),
            mono0: std::time::Instant::now(),
        }
    }

    /// `min(wall clock, start + monotonic elapsed + slack)`.
    pub fn now_ms(&self) -> i64 {
        self.bound(now_ms(), self.mono0.elapsed())
    }

    fn bound(&self, wall: i64, elapsed: Duration) -> i64 {
        let limit = self
            .wall0
            .saturating_add(i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
            .saturating_add(CLOCK_SLACK_MS);
        if wall > limit {
            tracing::warn!(
                target: "coffer::audit_retention",
                wall_clock = %crate::timefmt::go_time(wall),
                trusted = %crate::timefmt::go_time(limit),
                "the wall clock jumped forward since this server started; audit retention prunes by the time the monotonic clock vouches for (restart the server once the clock is right)"
            );
            limit
        } else {
            wall
        }
    }
}

/// Anchors of `--audit-anchor-file` with a valid MAC, by seq.
fn anchor_hashes(state: &AppState) -> anyhow::Result<std::collections::BTreeMap<i64, Vec<u8>>> {
    use coffer_core::audit::ChainSealer;
    Ok(
        crate::anchor::read_anchors(state.config.audit_anchor_file.as_deref())?
            .into_iter()
            // A forged anchor is `audit verify`'s to report; it does not
            // stop retention.
            .filter(|a| a.mac == state.keys.audit.seal_head(a.seq, &a.hash))
            .map(|a| (a.seq, a.hash))
            .collect(),
    )
}

/// Refuse to prune records an anchor contradicts: once pruned, the anchor
/// falls inside the checkpoint's range and is no longer compared, so
/// pruning would erase the evidence of a rewritten log.
async fn check_anchors_before(
    state: &AppState,
    anchors: &std::collections::BTreeMap<i64, Vec<u8>>,
    cutoff: i64,
) -> anyhow::Result<()> {
    let after = state.store.audit_checkpoint().await?.map_or(0, |c| c.seq);
    if anchors
        .range(after + 1..=after + PRUNE_BATCH)
        .next()
        .is_none()
    {
        return Ok(());
    }
    let records = state.store.audit_range(after, PRUNE_BATCH).await?;
    for r in records.iter().take_while(|r| r.time_ms < cutoff) {
        if let Some(h) = anchors.get(&r.seq)
            && *h != r.hash
        {
            bail!(
                "audit record {} does not match its anchor in the anchor file: the log was rewritten; nothing is pruned until `coffer audit verify` passes",
                r.seq
            );
        }
    }
    Ok(())
}

/// Prune everything older than `retention` now, batch by batch; returns
/// the ranges removed.
pub async fn prune_once(state: &AppState, retention: Duration) -> anyhow::Result<Vec<PrunedRange>> {
    prune_once_at(state, retention, now_ms()).await
}

/// [`prune_once`] at a given (trusted) time.
pub async fn prune_once_at(
    state: &AppState,
    retention: Duration,
    now: i64,
) -> anyhow::Result<Vec<PrunedRange>> {
    let cutoff = now.saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let anchors = anchor_hashes(state)?;
    let mut done = Vec::new();
    loop {
        check_anchors_before(state, &anchors, cutoff).await?;
        let mut rec = system_record("audit-prune", "audit-log");
        let pruned = state
            .store
            .prune_audit(
                cutoff,
                PRUNE_BATCH,
                Audit::new(&mut rec, &*state.keys.audit),
            )
            .await?;
        let Some(range) = pruned else { break };
        state.audit_high_water.fetch_max(rec.seq, Ordering::AcqRel);
        tracing::info!(
            target: "coffer::audit_retention",
            first_seq = range.first_seq,
            last_seq = range.last_seq,
            records = range.count(),
            "audit records pruned"
        );
        done.push(range);
        if range.count() < PRUNE_BATCH {
            break;
        }
    }
    Ok(done)
}

/// Run [`prune_once`] every `--audit-prune-interval`, starting now.
pub async fn prune_loop(state: Arc<AppState>, retention: Duration) {
    let mut tick = tokio::time::interval(state.config.audit_prune_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let clock = TrustedClock::start();
    loop {
        tick.tick().await;
        if let Err(e) = prune_once_at(&state, retention, clock.now_ms()).await {
            tracing::error!(error = %e, "audit retention failed; nothing was pruned");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_values() {
        let d = |s| parse_retention(Some(s)).unwrap().unwrap().as_secs();
        assert_eq!(d("90d"), 90 * 86_400);
        assert_eq!(d("12h"), 43_200);
        assert_eq!(d("30m"), 1_800);
        assert_eq!(d("5s"), 5);
        assert!(parse_retention(Some("7")).is_err(), "a bare number");
        assert_eq!(d("2w"), 14 * 86_400);
        assert!(parse_retention(None).unwrap().is_none());
        assert!(parse_retention(Some(" ")).unwrap().is_none());
        for bad in ["0d", "d", "90 days", "-1h", "1.5h", "99999999999w", "90"] {
            assert!(parse_retention(Some(bad)).is_err(), "{bad}");
        }
        let msg = parse_retention(Some("90")).unwrap_err().to_string();
        assert!(msg.contains("90d"), "{msg}");
    }

    #[test]
    fn a_clock_jumped_forward_is_not_believed() {
        let c = TrustedClock {
            wall0: 1_000_000,
            mono0: std::time::Instant::now(),
        };
        let hour = Duration::from_secs(3600);
        // Normal progress (and a little drift) is believed.
        assert_eq!(
            c.bound(1_000_000 + 3_600_000 + 5, hour),
            3_600_000 + 1_000_005
        );
        // Ten years ahead after an hour: only an hour (and the slack).
        let ten_years = 10 * 365 * 86_400_000;
        assert_eq!(
            c.bound(1_000_000 + ten_years, hour),
            1_000_000 + 3_600_000 + CLOCK_SLACK_MS
        );
        // A clock stepped back prunes less, as it says.
        assert_eq!(c.bound(500, hour), 500);
    }
}
