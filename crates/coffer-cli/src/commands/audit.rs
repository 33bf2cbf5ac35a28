//! `audit list` / `audit verify`: through the API by default, straight from
//! the store with `--data-dir` / `--storage` (no server needed).

use anyhow::bail;
use coffer_client::ops::{AuditList, AuditVerify};
use coffer_client::{AuditListOutput, AuditRecord, AuditVerifyOutput};
use coffer_server::offline;
use coffer_store::AuditQuery;

use super::{print_response, respond};
use crate::args::{AuditCommand, AuditListArgs, AuditSubcommand, AuditVerifyArgs};

pub(super) async fn run(a: AuditCommand) -> anyhow::Result<()> {
    match a.command {
        AuditSubcommand::List(l) => list(l).await,
        AuditSubcommand::Verify(v) => verify(v).await,
    }
}

async fn list(a: AuditListArgs) -> anyhow::Result<()> {
    let request = AuditList {
        since: a.since,
        until: a.until,
        access_id: a.access_id,
        item: a.item,
        operation: a.operation,
        outcome: a.outcome,
        limit: a.limit,
        after_seq: a.after_seq,
    };
    if !a.offline.is_set() {
        return respond(&a.global, &request, |out| Ok(format_records(&out.records))).await;
    }
    let query = offline_query(&request)?;
    let records: Vec<AuditRecord> = offline::list_audit(&a.offline, &query)
        .await?
        .into_iter()
        .map(wire_record)
        .collect::<anyhow::Result<_>>()?;
    let output = AuditListOutput {
        next_seq: records
            .last()
            .map_or(query.after_seq.unwrap_or(0), |r| r.seq),
        records,
    };
    print_response::<AuditList>(a.global.json, serde_json::to_value(&output)?, |out| {
        Ok(format_records(&out.records))
    })
}

async fn verify(a: AuditVerifyArgs) -> anyhow::Result<()> {
    let raw = if a.offline.is_set() {
        let report = offline::verify_audit(&a.offline).await?;
        serde_json::to_value(AuditVerifyOutput {
            valid: report.valid,
            records: report.records,
            error: report.error,
        })?
    } else {
        let mut session = crate::session::Session::open(&a.global).await?;
        session.call(&AuditVerify {}).await?
    };
    let report: AuditVerifyOutput = coffer_client::decode::<AuditVerify>(raw.clone())?;
    print_response::<AuditVerify>(a.global.json, raw, |out| {
        Ok(format!(
            "Audit chain intact: {} records verified",
            out.records
        ))
    })
    .map(|()| report)
    .and_then(|report| {
        if report.valid {
            Ok(())
        } else {
            bail!(
                "audit chain is broken: {} ({} records checked)",
                report.error.as_deref().unwrap_or("no detail given"),
                report.records
            )
        }
    })
}

/// One line per record.
fn format_records(records: &[AuditRecord]) -> String {
    records
        .iter()
        .map(|r| {
            let mut line = format!(
                "{:>6}  {}  {:<7} {}  {:<20} {}",
                r.seq,
                r.time,
                r.outcome,
                r.status,
                r.operation,
                if r.object.is_empty() { "-" } else { &r.object },
            );
            if !r.access_id.is_empty() {
                line.push_str(&format!("  access_id={}", r.access_id));
            }
            if !r.identity.is_empty() {
                line.push_str(&format!("  identity={}", r.identity));
            }
            if !r.client_type.is_empty() {
                line.push_str(&format!("  client={}", r.client_type));
            }
            if !r.error.is_empty() {
                line.push_str(&format!("  error={:?}", r.error));
            }
            line.push('\n');
            line
        })
        .collect()
}

/// The same validation the server applies to `audit-list`.
fn offline_query(r: &AuditList) -> anyhow::Result<AuditQuery> {
    offline::AuditFilter {
        since: r.since.clone(),
        until: r.until.clone(),
        access_id: r.access_id.clone(),
        item: r.item.clone(),
        operation: r.operation.clone(),
        outcome: r.outcome.clone(),
        limit: r.limit,
        after_seq: r.after_seq,
    }
    .to_query()
    .map_err(|e| anyhow::anyhow!("--{e}"))
}

/// A stored record in the shape `audit-list` returns.
fn wire_record(r: coffer_core::audit::AuditRecord) -> anyhow::Result<AuditRecord> {
    Ok(serde_json::from_value(offline::record_json(&r))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_core::audit::Outcome;

    #[test]
    fn offline_query_validates_like_the_server() {
        let q = offline_query(&AuditList {
            outcome: Some("denied".into()),
            item: Some("app/x".into()),
            since: Some("1700000000".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.outcome, Some(Outcome::Denied));
        assert_eq!(q.object.as_deref(), Some("/app/x"));
        assert_eq!(q.since_ms, Some(1_700_000_000_000));
        assert_eq!(q.limit, offline::AUDIT_DEFAULT_LIMIT);
        for bad in [
            AuditList {
                outcome: Some("maybe".into()),
                ..Default::default()
            },
            AuditList {
                limit: Some(offline::AUDIT_MAX_LIMIT + 1),
                ..Default::default()
            },
            AuditList {
                since: Some("yesterday".into()),
                ..Default::default()
            },
        ] {
            assert!(offline_query(&bad).is_err());
        }
    }
}
