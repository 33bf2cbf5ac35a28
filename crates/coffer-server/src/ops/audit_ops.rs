//! `audit-list` and `audit-verify`, gated by the roles' `audit-access`.

use coffer_core::audit::Outcome;
use coffer_core::model::AuditAccess;
use coffer_store::AuditQuery;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::Ctx;
use crate::timefmt::{parse_time, rfc3339};
use crate::wire::Body;

fn audit_access(ctx: &Ctx) -> Result<AuditAccess, ApiError> {
    let caller = ctx.caller()?;
    let mut best = AuditAccess::None;
    for r in &caller.roles {
        match r.audit_access {
            AuditAccess::All => return Ok(AuditAccess::All),
            AuditAccess::Own => best = AuditAccess::Own,
            AuditAccess::None => {}
        }
    }
    Ok(best)
}

fn time_param(body: &Body, key: &str) -> Result<Option<i64>, ApiError> {
    match body.opt_str(key)? {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => parse_time(&s).map(Some).ok_or_else(|| {
            ApiError::bad(format!(
                "{key} must be an RFC 3339 time (2026-01-02T15:04:05Z) or Unix seconds"
            ))
        }),
    }
}

pub async fn list(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let access = audit_access(ctx)?;
    let mut q = AuditQuery {
        since_ms: time_param(body, "since")?,
        until_ms: time_param(body, "until")?,
        access_id: body.opt_str("access-id")?.filter(|s| !s.is_empty()),
        object: body.opt_str("item")?.filter(|s| !s.is_empty()),
        operation: body.opt_str("operation")?.filter(|s| !s.is_empty()),
        outcome: None,
        after_seq: body.opt_i64("after-seq")?,
        limit: body.opt_i64("limit")?.unwrap_or(100).clamp(1, 10_000),
    };
    if let Some(o) = body.opt_str("outcome")?.filter(|s| !s.is_empty()) {
        q.outcome = Some(
            Outcome::parse(&o)
                .ok_or_else(|| ApiError::bad("outcome must be allowed, denied or error"))?,
        );
    }
    if let Some(item) = &q.object
        && item.starts_with('/')
    {
        q.object = Some(coffer_core::name::normalize_name(item).unwrap_or_else(|_| item.clone()));
    }
    match access {
        AuditAccess::None => {
            return Err(ApiError::Forbidden(
                "access denied: reading the audit log needs a role with audit-access own or all"
                    .into(),
            ));
        }
        AuditAccess::Own => {
            let own = ctx.caller()?.token.access_id.clone();
            if q.access_id.as_ref().is_some_and(|a| *a != own) {
                return Err(ApiError::Forbidden(
                    "access denied: audit-access own only shows the caller's own records".into(),
                ));
            }
            q.access_id = Some(own);
        }
        AuditAccess::All => {}
    }
    let records = ctx.state.store.query_audit(&q).await?;
    let next_seq = records.last().map(|r| r.seq).unwrap_or(0);
    let out: Vec<Value> = records
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("time".into(), Value::String(rfc3339(r.time_ms)));
            }
            v
        })
        .collect();
    Ok(json!({"records": out, "next_seq": next_seq}))
}

pub async fn verify(ctx: &mut Ctx, _body: &Body) -> Result<Value, ApiError> {
    if audit_access(ctx)? != AuditAccess::All {
        return Err(ApiError::Forbidden(
            "access denied: verifying the audit log needs a role with audit-access all".into(),
        ));
    }
    let report = crate::offline::verify_chain(&*ctx.state.store, &*ctx.state.keys.audit)
        .await
        .map_err(ApiError::internal)?;
    Ok(serde_json::to_value(report).unwrap_or(Value::Null))
}
