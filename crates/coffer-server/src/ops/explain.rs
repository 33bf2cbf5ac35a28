//! `explain-access`: for a login proof (a CI job's JWT, a k8s token, a
//! cloud identity…), which role associations of the auth method match,
//! which fail and on which claim, and the resulting capabilities on a path.
//!
//! The proof is verified exactly as `auth` would (signature, expiry,
//! issuer, audience, bindings), but no token is minted and a `jti` is not
//! remembered, so explaining a job's token does not burn it. A failed
//! verification is part of the answer, not an error. The caller needs
//! `read` on the auth method (`auth-method-rule`): the answer shows the
//! method's associations and its roles' rules.

use coffer_core::model::AuthMethodKind;
use coffer_core::policy::{Caps, RuleType, effective};
use coffer_core::subclaims::{ClaimMismatch, Claims, match_sub_claims};
use serde_json::{Value, json};

use super::require;
use crate::error::ApiError;
use crate::http::Ctx;
use crate::identity;
use crate::wire::Body;

pub(super) async fn explain_access(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let state = ctx.state.clone();
    let snap = state.snapshot();
    // Authorize before revealing anything: a method that does not exist and
    // one the caller may not read get the same answer, unless the caller
    // may read every auth method anyway.
    let caller = ctx.caller()?;
    let hidden = |what: String| {
        if super::holds_everywhere(caller, RuleType::AuthMethod, Caps::READ) {
            ApiError::NotFound(format!("{what} not found"))
        } else {
            ApiError::Forbidden(format!(
                "access denied: no {what} that this caller may read (it needs read on the auth method, auth-method-rule)"
            ))
        }
    };
    let am = if let Some(id) = body.opt_str("access-id")?.filter(|s| !s.trim().is_empty()) {
        let shown = coffer_core::name::truncate_for_message(id.trim());
        snap.by_access_id
            .get(id.trim())
            .filter(|am| super::allowed(caller, RuleType::AuthMethod, &am.name, Caps::READ))
            .cloned()
            .ok_or_else(|| hidden(format!("auth method with access ID {shown:?}")))?
    } else if let Some(name) = body.opt_str("auth-method-name")? {
        let name = coffer_core::name::normalize_name(&name)?;
        ctx.set_object(name.clone());
        require(ctx, RuleType::AuthMethod, &name, Caps::READ)?;
        snap.auth_methods
            .get(&name)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("auth method {name:?} not found")))?
    } else {
        return Err(ApiError::bad(
            "missing required parameter access-id (or auth-method-name): the auth method the job logs in to",
        ));
    };
    ctx.set_object(am.name.clone());
    require(ctx, RuleType::AuthMethod, &am.name, Caps::READ)?;
    let rule_type: RuleType = body.opt_str("rule-type")?.unwrap_or_default().parse()?;
    let path = match body.opt_str("path")?.filter(|p| !p.trim().is_empty()) {
        Some(p) => Some(coffer_core::name::normalize_name(&p)?),
        None => None,
    };

    // Verify the proof as a login would, without minting or remembering.
    let (login, claims): (Value, Claims) = if am.kind == AuthMethodKind::ApiKey {
        (
            json!({"verified": false, "note": "API-key logins carry no claims; only associations without sub-claims apply"}),
            Claims::new(),
        )
    } else {
        match identity::verify_for_explain(ctx, &state, &am, body).await {
            Ok(v) => (json!({"verified": true, "identity": v.identity}), v.claims),
            Err(ApiError::Unauthorized(m)) | Err(ApiError::BadRequest(m)) => {
                (json!({"verified": false, "error": m}), Claims::new())
            }
            Err(e) => return Err(e),
        }
    };
    let verified = login["verified"] == json!(true) || am.kind == AuthMethodKind::ApiKey;

    let mut matched_roles = Vec::new();
    let mut assocs = Vec::new();
    for a in snap.assocs.get(&am.name).into_iter().flatten() {
        let result = if verified {
            match_sub_claims(&a.sub_claims, &claims, a.case_sensitive)
        } else {
            Err(ClaimMismatch::Missing {
                claim: "(login failed)".into(),
            })
        };
        let mut entry = json!({
            "assoc_id": a.assoc_id,
            "role_name": a.role_name,
            "sub_claims": a.sub_claims,
            "case_sensitive": a.case_sensitive,
            "matched": result.is_ok(),
        });
        match result {
            Ok(()) => {
                if let Some(role) = snap.roles.get(&a.role_name)
                    && !matched_roles
                        .iter()
                        .any(|r: &std::sync::Arc<coffer_core::model::Role>| r.name == role.name)
                {
                    matched_roles.push(role.clone());
                }
            }
            Err(_) if !verified => {
                entry["reason"] = json!("the login proof did not verify");
            }
            Err(ClaimMismatch::Missing { claim }) => {
                entry["failed_claim"] = json!(claim);
                entry["reason"] = json!(format!("the token has no {claim:?} claim"));
            }
            Err(ClaimMismatch::NoValueMatches { claim }) => {
                let got = claims.get(&claim).cloned().unwrap_or_default();
                let want = a.sub_claims.get(&claim).cloned().unwrap_or_default();
                entry["failed_claim"] = json!(claim);
                entry["reason"] = json!(format!(
                    "claim {claim:?} is {got:?}; the association wants one of {want:?}{}",
                    if a.case_sensitive {
                        ""
                    } else {
                        " (case-insensitive)"
                    }
                ));
            }
        }
        assocs.push(entry);
    }

    let mut out = json!({
        "auth_method": {"name": am.name, "access_id": am.access_id, "type": am.kind.as_str()},
        "login": login,
        "claims": claims,
        "associations": assocs,
        "roles": matched_roles.iter().map(|r| r.name.clone()).collect::<Vec<_>>(),
    });
    if let Some(path) = path {
        let rules: Vec<_> = matched_roles
            .iter()
            .flat_map(|r| r.rules.iter().map(move |rule| (r, rule)))
            .filter(|(_, rule)| rule.rule_type == rule_type && rule.covers(&path))
            .collect();
        let caps = effective(rules.iter().map(|(_, r)| *r), rule_type, &path);
        let denied = rules.iter().any(|(_, r)| r.caps.contains(Caps::DENY));
        out["path"] = json!(path);
        out["rule_type"] = json!(rule_type.as_str());
        out["capabilities"] = json!(caps.names());
        out["denied"] = json!(denied);
        out["rules"] = rules
            .iter()
            .map(|(role, r)| json!({"role": role.name, "path": r.path, "capabilities": r.caps.names()}))
            .collect();
    }
    Ok(out)
}
