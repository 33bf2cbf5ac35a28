//! `audit list` / `audit verify`: through the API by default, straight from
//! the store with `--data-dir` / `--storage` (no server needed).

use anyhow::bail;
use coffer_client::ops::{AuditList, AuditVerify};
use coffer_client::{AuditListOutput, AuditRecord, AuditVerifyOutput};
use coffer_server::offline;
use coffer_store::AuditQuery;

use super::{print_response, respond};
use crate::args::{AuditCommand, AuditExportArgs, AuditListArgs, AuditSubcommand, AuditVerifyArgs};

pub(super) async fn run(a: AuditCommand) -> anyhow::Result<()> {
    match a.command {
        AuditSubcommand::List(l) => list(l).await,
        AuditSubcommand::Verify(v) => verify(v).await,
        AuditSubcommand::Export(e) => export(e).await,
    }
}

/// `audit export`: JSON Lines to `--output` (written to a temporary file
/// beside it and renamed at the end, so a failed export leaves no partial
/// file) or stdout. Pages through `audit-list` (or the store), so memory
/// stays constant however many records there are.
async fn export(a: AuditExportArgs) -> anyhow::Result<()> {
    use std::io::Write;
    // JSON Lines already (with or without --json); a filter would need the
    // whole log in memory: pipe it into jq instead.
    if crate::output::jq_expression().is_some() {
        return Err(crate::output::UsageError(
            "--jq-expression does not apply to `coffer audit export`, which streams JSON Lines: pipe its output into jq".to_owned(),
        )
        .into());
    }
    let filter = offline::AuditFilter {
        since: a.since.clone(),
        until: a.until.clone(),
        ..Default::default()
    };
    // Refuse bad times before connecting or creating anything.
    filter.to_query().map_err(|e| anyhow::anyhow!("--{e}"))?;
    let (mut out, temp): (Box<dyn Write>, Option<tempfile_path::Temp>) = match &a.output {
        Some(path) => {
            let t = tempfile_path::Temp::create(path)?;
            (Box::new(std::io::BufWriter::new(t.file()?)), Some(t))
        }
        None => (
            Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            None,
        ),
    };
    let n = if a.offline.is_set() {
        offline::export_audit(&a.offline, &filter, &mut *out).await?
    } else {
        let mut session = crate::session::Session::open(&a.global).await?;
        let mut after = 0;
        let mut n = 0u64;
        loop {
            let raw = session
                .call(&AuditList {
                    since: a.since.clone(),
                    until: a.until.clone(),
                    limit: Some(offline::EXPORT_PAGE),
                    after_seq: Some(after),
                    ..Default::default()
                })
                .await?;
            let records = raw
                .get("records")
                .and_then(|r| r.as_array())
                .ok_or_else(|| anyhow::anyhow!("audit-list answered without a records list"))?;
            for r in records {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
            }
            n += records.len() as u64;
            let last = records
                .last()
                .and_then(|r| r.get("seq"))
                .and_then(|s| s.as_i64());
            match last {
                Some(seq) if records.len() as i64 == offline::EXPORT_PAGE => after = seq,
                _ => break,
            }
        }
        n
    };
    out.flush()?;
    drop(out);
    if let Some(t) = temp {
        let target = t.target.clone();
        t.persist()?;
        eprintln!("Exported {n} audit records to {}", target.display());
    }
    Ok(())
}

/// A file written next to its target and renamed over it when complete.
mod tempfile_path {
    use std::path::PathBuf;

    use anyhow::Context;

    pub(super) struct Temp {
        pub(super) target: PathBuf,
        path: PathBuf,
        done: bool,
    }

    impl Temp {
        pub(super) fn create(target: &std::path::Path) -> anyhow::Result<Temp> {
            let name = target
                .file_name()
                .with_context(|| format!("--output {} is not a file name", target.display()))?;
            let mut tmp = name.to_os_string();
            tmp.push(format!(".partial-{}", std::process::id()));
            let path = target.with_file_name(tmp);
            let mut open = std::fs::OpenOptions::new();
            open.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
            open.open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            Ok(Temp {
                target: target.to_path_buf(),
                path,
                done: false,
            })
        }
        pub(super) fn file(&self) -> anyhow::Result<std::fs::File> {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&self.path)
                .with_context(|| format!("cannot open {}", self.path.display()))
        }
        pub(super) fn persist(mut self) -> anyhow::Result<()> {
            std::fs::rename(&self.path, &self.target)
                .with_context(|| format!("cannot move the export to {}", self.target.display()))?;
            self.done = true;
            Ok(())
        }
    }

    impl Drop for Temp {
        fn drop(&mut self) {
            if !self.done {
                std::fs::remove_file(&self.path).ok();
            }
        }
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
