//! `audit list` / `audit verify`: through the API by default, straight from
//! the store with `--data-dir` / `--storage` (no server needed).

use anyhow::{Context as _, bail};
use coffer_client::ops::{AuditList, AuditVerify};
use coffer_client::{AuditListOutput, AuditRecord, AuditVerifyOutput};
use coffer_core::audit::Outcome;
use coffer_core::name::normalize_name;
use coffer_server::offline;
use coffer_store::AuditQuery;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{print_response, respond};
use crate::args::{AuditCommand, AuditListArgs, AuditSubcommand, AuditVerifyArgs};

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 10_000;

pub async fn run(a: AuditCommand) -> anyhow::Result<()> {
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
        .collect();
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

/// A time filter as the server takes it: RFC 3339 or Unix seconds → Unix ms.
fn parse_time_ms(flag: &str, text: &str) -> anyhow::Result<i64> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<i64>() {
        return Ok(secs.saturating_mul(1000));
    }
    let t = OffsetDateTime::parse(text, &Rfc3339).with_context(|| {
        format!(
            "--{flag} must be an RFC 3339 date (2026-11-22T03:16:25Z) or Unix seconds, not {text:?}"
        )
    })?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

fn offline_query(r: &AuditList) -> anyhow::Result<AuditQuery> {
    let outcome =
        match r.outcome.as_deref() {
            Some(o) => Some(Outcome::parse(o).with_context(|| {
                format!("--outcome must be allowed, denied or error, not {o:?}")
            })?),
            None => None,
        };
    let limit = r.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        bail!("--limit must be between 1 and {MAX_LIMIT}");
    }
    Ok(AuditQuery {
        since_ms: r
            .since
            .as_deref()
            .map(|t| parse_time_ms("since", t))
            .transpose()?,
        until_ms: r
            .until
            .as_deref()
            .map(|t| parse_time_ms("until", t))
            .transpose()?,
        access_id: r.access_id.clone().filter(|s| !s.is_empty()),
        // Item names are matched in their normalised form, as online.
        object: r.item.as_deref().filter(|s| !s.is_empty()).map(|item| {
            if item.starts_with('/') {
                normalize_name(item).unwrap_or_else(|_| item.to_string())
            } else {
                item.to_string()
            }
        }),
        operation: r.operation.clone(),
        outcome,
        after_seq: r.after_seq,
        limit,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A stored record in the shape `audit-list` returns.
fn wire_record(r: coffer_core::audit::AuditRecord) -> AuditRecord {
    // Second precision, as the server sends it.
    let secs = r.time_ms.div_euclid(1000);
    let time = OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| r.time_ms.to_string());
    AuditRecord {
        seq: r.seq,
        time,
        request_id: r.request_id,
        operation: r.operation,
        object: r.object,
        outcome: r.outcome.as_str().to_string(),
        status: r.status,
        error: r.error,
        access_id: r.access_id,
        auth_method: r.auth_method,
        identity: r.identity,
        client_type: r.client_type,
        peer: r.peer,
        prev_hash: hex(&r.prev_hash),
        hash: hex(&r.hash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_filters() {
        assert_eq!(
            parse_time_ms("since", "1700000000").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(
            parse_time_ms("since", "2026-11-22T04:16:25Z").unwrap(),
            1_795_320_985_000
        );
        assert!(parse_time_ms("since", "yesterday").is_err());
    }

    #[test]
    fn offline_query_validates_like_the_server() {
        let q = offline_query(&AuditList {
            outcome: Some("denied".into()),
            item: Some("/app/x".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(q.outcome, Some(Outcome::Denied));
        assert_eq!(q.object.as_deref(), Some("/app/x"));
        assert_eq!(q.limit, DEFAULT_LIMIT);
        assert!(
            offline_query(&AuditList {
                outcome: Some("maybe".into()),
                ..Default::default()
            })
            .is_err()
        );
        assert!(
            offline_query(&AuditList {
                limit: Some(MAX_LIMIT + 1),
                ..Default::default()
            })
            .is_err()
        );
    }
}
