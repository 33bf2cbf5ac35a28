//! `audit-list` and `audit-verify`, gated by the roles' `audit-access`.

use coffer_core::model::AuditAccess;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::http::Ctx;
use crate::offline::{AuditFilter, record_json};
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

pub(super) async fn list(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let access = audit_access(ctx)?;
    let filter = AuditFilter {
        since: body.opt_str("since")?,
        until: body.opt_str("until")?,
        access_id: body.opt_str("access-id")?,
        item: body.opt_str("item")?,
        operation: body.opt_str("operation")?,
        outcome: body.opt_str("outcome")?,
        limit: body.opt_i64("limit")?,
        after_seq: body.opt_i64("after-seq")?,
    };
    let mut q = filter.to_query().map_err(ApiError::BadRequest)?;
    match access {
        AuditAccess::None => {
            return Err(ApiError::Forbidden(
                "access denied: reading the audit log needs a role with audit-access own or all"
                    .into(),
            ));
        }
        AuditAccess::Own => {
            // Own = this identity: one access ID is shared by every job of
            // a JWT method, so the identity (unique-identifier claim, UID
            // token ID) narrows it to the caller's own records.
            let token = &ctx.caller()?.token;
            if q.access_id.as_ref().is_some_and(|a| *a != token.access_id) {
                return Err(ApiError::Forbidden(
                    "access denied: audit-access own only shows the caller's own records".into(),
                ));
            }
            q.access_id = Some(token.access_id.clone());
            q.identity = Some(token.identity.clone());
        }
        AuditAccess::All => {}
    }
    let records = ctx.state.store.query_audit(&q).await?;
    let next_seq = records.last().map(|r| r.seq).unwrap_or(0);
    let out: Vec<Value> = records.iter().map(record_json).collect();
    Ok(json!({"records": out, "next_seq": next_seq}))
}

pub(super) async fn verify(ctx: &mut Ctx, _body: &Body) -> Result<Value, ApiError> {
    if audit_access(ctx)? != AuditAccess::All {
        return Err(ApiError::Forbidden(
            "access denied: verifying the audit log needs a role with audit-access all".into(),
        ));
    }
    let state = ctx.state.clone();
    let anchors = crate::anchor::read_anchors(state.config.audit_anchor_file.as_deref())
        .map_err(ApiError::internal)?;
    let report = crate::offline::verify_chain(
        &*state.store,
        &*state.keys.audit,
        &anchors,
        state
            .audit_high_water
            .load(std::sync::atomic::Ordering::Acquire),
    )
    .await
    .map_err(ApiError::internal)?;
    Ok(serde_json::to_value(report).unwrap_or(Value::Null))
}
