//! Access roles, their rules and their associations (rule type `role-rule`).
//!
//! Delegation cannot escalate (`coffer_core::delegation`): besides the
//! `role-rule` / `auth-method-rule` capability an operation needs, a caller
//! may only create, change, associate, dissociate or delete roles whose
//! rights stay within its own, never raises `audit-access` above its own,
//! and lifts a `deny` only where it holds what the deny blocks.

use std::sync::Arc;

use coffer_core::delegation::{check_holds_role, check_lift_denies, check_role_change};
use coffer_core::model::{Association, AuditAccess, Role};
use coffer_core::name::normalize_rule_path;
use coffer_core::policy::{Caps, Rule, RuleType};
use coffer_core::subclaims::parse_sub_claims;
use serde_json::{Value, json};

use super::auth_methods::check_description;
use super::{
    allowed, date_field, grantor, holds_everywhere, name_param, refuse_unsupported, require,
    without_nulls,
};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::{PolicySnapshot, now_ms};
use crate::wire::Body;

/// Upper bound on rules per role, to keep policy evaluation cheap.
const MAX_RULES: usize = 1000;

pub(super) async fn create(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Role, &name, Caps::CREATE)?;
    // `comment` is the older name (still in the SDK; Terraform sends it).
    let description = match body.opt_str("description")? {
        Some(d) if !d.is_empty() => d,
        _ => body.opt_str("comment")?.unwrap_or_default(),
    };
    check_description(&description)?;
    let audit_access: AuditAccess = body.opt_str("audit-access")?.unwrap_or_default().parse()?;
    refuse_unsupported_access(body)?;
    let snap = ctx.state.snapshot();
    check_role_change(
        &grantor(ctx.caller()?),
        &name,
        None,
        Some((&[], audit_access)),
        snap.roles.values().map(|r| &**r),
    )?;
    let now = now_ms();
    let role = Role {
        name: name.clone(),
        description,
        audit_access,
        rules: Vec::new(),
        created_ms: now,
        modified_ms: now,
    };
    let state = ctx.state.clone();
    state
        .store
        .create_role(&role, ctx.audit())
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("role {name:?} already exists"))
            }
            other => other.into(),
        })?;
    state.policy_changed_reload().await;
    // The name as stored (normalized), so a client knows what to refer to.
    Ok(json!({"name": name}))
}

/// Akeyless role attributes Coffer does not implement, with the values
/// Akeyless documents for each: a value outside them is refused listing
/// them; a valid one is refused unless it is "none" (or unset), rather
/// than silently ignored.
const UNSUPPORTED_ACCESS: &[(&str, &[&str])] = &[
    ("analytics-access", &["none", "own", "all"]),
    ("gw-analytics-access", &["none", "scoped", "all"]),
    ("sra-reports-access", &["none", "scoped", "all"]),
    ("usage-reports-access", &["none", "all"]),
    ("event-center-access", &["none", "scoped", "all"]),
    ("event-forwarders-access", &["none", "all"]),
    ("event-forwarder-access", &["none", "all"]),
    ("approve-access-request", &["none", "scoped", "all"]),
    ("ara-reports-access", &["none", "scoped", "all"]),
    ("isi-access", &["none", "scoped", "all"]),
    ("reverse-rbac-access", &["none", "scoped", "all"]),
    ("unlock-secrets", &["none", "scoped", "all"]),
];

fn refuse_unsupported_access(body: &Body) -> Result<(), ApiError> {
    for (key, accepted) in UNSUPPORTED_ACCESS {
        let Some(v) = body.opt_str(key)? else {
            continue;
        };
        let v = v.trim().to_ascii_lowercase();
        if v.is_empty() || v == "none" {
            continue;
        }
        if !accepted.contains(&v.as_str()) {
            return Err(ApiError::bad(format!(
                "{key} must be one of {}, not {:?}",
                accepted.join(", "),
                coffer_core::name::truncate_for_message(&v)
            )));
        }
        return Err(ApiError::bad(format!(
            "{key} is not supported by Coffer (of the role access settings only audit-access is): omit it or pass none"
        )));
    }
    refuse_unsupported(
        body,
        &[(
            "delete_protection",
            "deletion protection is not supported yet",
        )],
    )?;
    Ok(())
}

/// `update-role {name, new-name, description, audit-access, …}`:
/// `description` / `new-comment` "default_comment" (the SDK default) or
/// absent keep the description; a rename keeps the rules and
/// associations. Delegation: the caller must hold the role's rights before
/// and after (so it cannot rename or upgrade a role above its own), may
/// raise `audit-access` only up to its own, and needs `create` on a new
/// name.
pub(super) async fn update(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Role, &name, Caps::UPDATE)?;
    let new_name = match body.opt_str("new-name")? {
        Some(n) if !n.trim().is_empty() => coffer_core::name::normalize_name(&n)?,
        _ => name.clone(),
    };
    if new_name != name {
        ctx.set_object(format!("{name} -> {new_name}"));
        require(ctx, RuleType::Role, &new_name, Caps::CREATE)?;
    }
    refuse_unsupported_access(body)?;
    let existing = existing_role(ctx, &name)?;
    let description = [body.opt_str("description")?, body.opt_str("new-comment")?]
        .into_iter()
        .flatten()
        .find(|d| d != "default_comment");
    if let Some(d) = &description {
        check_description(d)?;
    }
    let audit_access = match body.opt_str("audit-access")? {
        Some(a) if !a.trim().is_empty() => a.parse::<AuditAccess>()?,
        _ => existing.audit_access,
    };
    let snap = ctx.state.snapshot();
    check_role_change(
        &grantor(ctx.caller()?),
        &name,
        Some((&existing.rules, existing.audit_access)),
        Some((&existing.rules, audit_access)),
        snap.roles.values().map(|r| &**r),
    )?;
    if new_name != name && snap.roles.contains_key(&new_name) {
        return Err(ApiError::Conflict(format!(
            "role {new_name:?} already exists: choose another new-name"
        )));
    }
    let role = Role {
        name: new_name.clone(),
        description: description.unwrap_or_else(|| existing.description.clone()),
        audit_access,
        rules: Vec::new(),
        created_ms: existing.created_ms,
        modified_ms: now_ms().max(existing.modified_ms + 1),
    };
    let state = ctx.state.clone();
    state
        .store
        .update_role(&name, existing.modified_ms, &role, ctx.audit())
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) if new_name != name => ApiError::Conflict(format!(
                "role {new_name:?} already exists, or {name:?} was changed by another request meanwhile: check and retry"
            )),
            coffer_store::StoreError::Conflict(_) => ApiError::Conflict(format!(
                "role {name:?} was changed by another request meanwhile: read it again and retry"
            )),
            coffer_store::StoreError::NotFound(_) => {
                ApiError::NotFound(format!("role {name:?} not found"))
            }
            other => other.into(),
        })?;
    state.policy_changed_reload().await;
    Ok(json!({"updated": true}))
}

/// The role named, once the caller is authorized to act on it.
fn existing_role(ctx: &Ctx, name: &str) -> Result<Arc<Role>, ApiError> {
    ctx.state
        .snapshot()
        .roles
        .get(name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("role {name:?} not found")))
}

/// Every role associated with auth method `am_name` is within the caller's
/// rights: needed to delete the method or mint a new credential for it
/// (that credential would carry those roles).
pub(super) fn check_method_roles_within(ctx: &Ctx, am_name: &str) -> Result<(), ApiError> {
    let snap = ctx.state.snapshot();
    let g = grantor(ctx.caller()?);
    for a in snap.assocs.get(am_name).into_iter().flatten() {
        if let Some(role) = snap.roles.get(&a.role_name) {
            check_holds_role(&g, &role.name, &role.rules, role.audit_access)?;
        }
    }
    Ok(())
}

fn render(role: &Role, snap: &PolicySnapshot) -> Value {
    let rules: Vec<Value> = role
        .rules
        .iter()
        .map(|r| json!({"path": r.path, "capabilities": r.caps.names(), "type": r.rule_type.as_str(), "ttl": 0}))
        .collect();
    let assocs: Vec<Value> = snap
        .assocs
        .values()
        .flatten()
        .filter(|a| a.role_name == role.name)
        .map(|a| {
            json!({
                "assoc_id": a.assoc_id,
                "auth_method_name": a.auth_method_name,
                "auth_method_access_id": snap.auth_methods.get(&a.auth_method_name).map(|m| m.access_id.clone()),
                "auth_method_sub_claims": a.sub_claims,
                "sub_claims_case_sensitive": a.case_sensitive,
            })
        })
        .collect();
    without_nulls(json!({
        "role_name": role.name,
        "description": role.description,
        // The SDK's Role model calls it comment.
        "comment": role.description,
        "audit_access": role.audit_access.as_str(),
        "rules": {"admin": false, "path_rules": rules},
        "role_auth_methods_assoc": assocs,
        "creation_date": date_field(role.created_ms),
        "modification_date": date_field(role.modified_ms),
    }))
}

pub(super) async fn get(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Role, &name, Caps::READ)?;
    let snap = ctx.state.snapshot();
    let role = snap
        .roles
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("role {name:?} not found")))?;
    Ok(render(role, &snap))
}

pub(super) async fn list(ctx: &mut Ctx, _body: &Body) -> Result<Value, ApiError> {
    let caller = ctx.caller()?;
    let snap = ctx.state.snapshot();
    let mut roles: Vec<_> = snap
        .roles
        .values()
        .filter(|r| allowed(caller, RuleType::Role, &r.name, Caps::LIST))
        .collect();
    roles.sort_by(|a, b| a.name.cmp(&b.name));
    let out: Vec<Value> = roles.iter().map(|r| render(r, &snap)).collect();
    Ok(json!({"roles": out, "next_page": ""}))
}

pub(super) async fn delete(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Role, &name, Caps::DELETE)?;
    let role = existing_role(ctx, &name)?;
    let snap = ctx.state.snapshot();
    check_role_change(
        &grantor(ctx.caller()?),
        &name,
        Some((&role.rules, role.audit_access)),
        None,
        snap.roles.values().map(|r| &**r),
    )?;
    let state = ctx.state.clone();
    if !state.store.delete_role(&name, ctx.audit()).await? {
        return Err(ApiError::NotFound(format!("role {name:?} not found")));
    }
    state.policy_changed_reload().await;
    Ok(json!({}))
}

fn rule_type_param(body: &Body) -> Result<RuleType, ApiError> {
    Ok(body.opt_str("rule-type")?.unwrap_or_default().parse()?)
}

pub(super) async fn set_rule(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let role = name_param(ctx, body, "role-name")?;
    require(ctx, RuleType::Role, &role, Caps::UPDATE)?;
    let path = normalize_rule_path(&body.req_str("path")?)?;
    let caps = Caps::parse(&body.list("capability")?)?;
    if caps.is_empty() {
        return Err(ApiError::bad(
            "missing required parameter capability (read, list, create, update, delete or deny)",
        ));
    }
    let rule_type = rule_type_param(body)?;
    refuse_rule_ttl(body)?;
    let existing = existing_role(ctx, &role)?;
    if existing.rules.len() >= MAX_RULES
        && !existing
            .rules
            .iter()
            .any(|r| r.rule_type == rule_type && r.path == path)
    {
        return Err(ApiError::bad(format!(
            "a role holds at most {MAX_RULES} rules"
        )));
    }
    let rule = Rule {
        rule_type,
        path: path.clone(),
        caps,
    };
    ctx.set_object(format!("{role} {rule_type} {path}"));
    // The role after the change: the rule replaces one with the same type and path.
    let mut after: Vec<Rule> = existing
        .rules
        .iter()
        .filter(|r| !(r.rule_type == rule_type && r.path == path))
        .cloned()
        .collect();
    after.push(rule.clone());
    check_rules_change(ctx, &existing, &after)?;
    let state = ctx.state.clone();
    state
        .store
        .set_role_rule(&role, &rule, now_ms(), ctx.audit())
        .await?;
    state.policy_changed_reload().await;
    Ok(json!({}))
}

/// The delegation check of replacing `role`'s rules with `after`.
fn check_rules_change(ctx: &Ctx, role: &Role, after: &[Rule]) -> Result<(), ApiError> {
    let snap = ctx.state.snapshot();
    check_role_change(
        &grantor(ctx.caller()?),
        &role.name,
        Some((&role.rules, role.audit_access)),
        Some((after, role.audit_access)),
        snap.roles.values().map(|r| &**r),
    )?;
    Ok(())
}

/// Rule TTLs (temporary access) are not implemented: refuse rather than
/// grant forever what was meant to expire.
fn refuse_rule_ttl(body: &Body) -> Result<(), ApiError> {
    match body.opt_i64("ttl")? {
        None | Some(0) => Ok(()),
        Some(_) => Err(ApiError::bad(
            "ttl (temporary rules) is not supported by Coffer: omit it or pass 0, and delete the rule when access should end",
        )),
    }
}

pub(super) async fn delete_rule(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let role = name_param(ctx, body, "role-name")?;
    require(ctx, RuleType::Role, &role, Caps::UPDATE)?;
    let path = normalize_rule_path(&body.req_str("path")?)?;
    let rule_type = rule_type_param(body)?;
    ctx.set_object(format!("{role} {rule_type} {path}"));
    let existing = existing_role(ctx, &role)?;
    let missing = || {
        ApiError::NotFound(format!(
            "role {role:?} has no {rule_type} for path {path:?}"
        ))
    };
    if !existing
        .rules
        .iter()
        .any(|r| r.rule_type == rule_type && r.path == path)
    {
        return Err(missing());
    }
    let after: Vec<Rule> = existing
        .rules
        .iter()
        .filter(|r| !(r.rule_type == rule_type && r.path == path))
        .cloned()
        .collect();
    check_rules_change(ctx, &existing, &after)?;
    let state = ctx.state.clone();
    if !state
        .store
        .delete_role_rule(&role, rule_type, &path, ctx.audit())
        .await?
    {
        return Err(missing());
    }
    state.policy_changed_reload().await;
    Ok(json!({}))
}

pub(super) async fn assoc(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let role = name_param(ctx, body, "role-name")?;
    let am_raw = body.req_str("am-name")?;
    let am_name = coffer_core::name::normalize_name(&am_raw)?;
    ctx.set_object(format!("{role} <- {am_name}"));
    require(ctx, RuleType::Role, &role, Caps::UPDATE)?;
    // Associating changes who the method's credentials are: update, not read.
    require(ctx, RuleType::AuthMethod, &am_name, Caps::UPDATE)?;
    let snap = ctx.state.snapshot();
    let role_obj = existing_role(ctx, &role)?;
    let am = snap
        .auth_methods
        .get(&am_name)
        .ok_or_else(|| ApiError::NotFound(format!("auth method {am_name:?} not found")))?;
    check_holds_role(
        &grantor(ctx.caller()?),
        &role,
        &role_obj.rules,
        role_obj.audit_access,
    )?;
    let sub_claims = parse_sub_claims(body.get("sub-claims").unwrap_or(&Value::Null))?;
    if sub_claims.len() > 32 {
        return Err(ApiError::bad("at most 32 sub-claims per association"));
    }
    if am.force_sub_claims && sub_claims.is_empty() {
        return Err(ApiError::bad(format!(
            "auth method {am_name:?} requires sub-claims on every role association (force-sub-claims is on), so that not every token it accepts gets this role: pass sub-claims such as project_path=group/app"
        )));
    }
    let case_sensitive = body.bool_or("case-sensitive", true)?;
    refuse_duplicate(&snap, &role, &am_name, &sub_claims, case_sensitive, None)?;
    let assoc = Association {
        assoc_id: format!("rac-{}", coffer_crypto::random_alnum(16)?),
        role_name: role,
        auth_method_name: am_name,
        sub_claims,
        case_sensitive,
        created_ms: now_ms(),
    };
    let state = ctx.state.clone();
    state.store.create_association(&assoc, ctx.audit()).await?;
    state.policy_changed_reload().await;
    Ok(json!({"assoc_id": assoc.assoc_id}))
}

/// Sub-claims with their values as sets: "a,b" and "b,a" grant the same.
fn claim_sets(
    c: &coffer_core::subclaims::SubClaims,
) -> std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> {
    c.iter()
        .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
        .collect()
}

/// An association identical to an existing one (same role, method,
/// sub-claims and case flag; `except` is the one being changed) is
/// refused, naming the existing one.
fn refuse_duplicate(
    snap: &PolicySnapshot,
    role: &str,
    am_name: &str,
    sub_claims: &coffer_core::subclaims::SubClaims,
    case_sensitive: bool,
    except: Option<&str>,
) -> Result<(), ApiError> {
    let wanted = claim_sets(sub_claims);
    let same = snap.assocs.get(am_name).into_iter().flatten().find(|a| {
        a.role_name == role
            && claim_sets(&a.sub_claims) == wanted
            && a.case_sensitive == case_sensitive
            && Some(a.assoc_id.as_str()) != except
    });
    match same {
        Some(a) => Err(ApiError::Conflict(format!(
            "role {role:?} is already associated with auth method {am_name:?} with these sub-claims: association {}",
            a.assoc_id
        ))),
        None => Ok(()),
    }
}

/// `update-assoc {assoc-id, sub-claims, case-sensitive}`: replaces the
/// association's sub-claims (a JSON object of string or list values, or
/// CLI-style `key=v1,v2` strings) and case flag (default true). The same
/// checks as `assoc-role-am` (the caller holds the role; force-sub-claims),
/// and, as narrowing sub-claims takes the role's denies off some holders,
/// those of `delete-assoc`.
pub(super) async fn update_assoc(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let assoc = permitted_assoc(ctx, body)?;
    let sub_claims = parse_sub_claims(body.get("sub-claims").unwrap_or(&Value::Null))?;
    if sub_claims.len() > 32 {
        return Err(ApiError::bad("at most 32 sub-claims per association"));
    }
    let case_sensitive = body.bool_or("case-sensitive", true)?;
    let snap = ctx.state.snapshot();
    if let Some(am) = snap.auth_methods.get(&assoc.auth_method_name)
        && am.force_sub_claims
        && sub_claims.is_empty()
    {
        return Err(ApiError::bad(format!(
            "auth method {:?} requires sub-claims on every role association (force-sub-claims is on): pass sub-claims such as project_path=group/app",
            assoc.auth_method_name
        )));
    }
    if let Some(role) = snap.roles.get(&assoc.role_name) {
        let g = grantor(ctx.caller()?);
        check_holds_role(&g, &role.name, &role.rules, role.audit_access)?;
        check_lift_denies(
            &g,
            &role.name,
            role.rules.iter(),
            snap.roles.values().flat_map(|r| r.rules.iter()),
        )?;
    }
    refuse_duplicate(
        &snap,
        &assoc.role_name,
        &assoc.auth_method_name,
        &sub_claims,
        case_sensitive,
        Some(&assoc.assoc_id),
    )?;
    let state = ctx.state.clone();
    if !state
        .store
        .update_association(&assoc.assoc_id, &sub_claims, case_sensitive, ctx.audit())
        .await?
    {
        return Err(ApiError::NotFound(format!(
            "association {:?} not found",
            assoc.assoc_id
        )));
    }
    state.policy_changed_reload().await;
    Ok(json!({}))
}

/// The association `assoc-id` names, once the caller may change it
/// (update on both its role and its auth method). An association that
/// does not exist and one the caller may not change get the same answer,
/// unless the caller may change every association anyway.
fn permitted_assoc(ctx: &mut Ctx, body: &Body) -> Result<Association, ApiError> {
    let id = body.req_str("assoc-id")?;
    ctx.set_object(coffer_core::name::truncate_for_message(&id));
    let snap = ctx.state.snapshot();
    let caller = ctx.caller()?;
    // Authorize before revealing anything: an association that does not
    // exist and one the caller may not change get the same answer, unless
    // the caller may change every association anyway.
    let found = snap.assocs.values().flatten().find(|a| a.assoc_id == id);
    let permitted = found.filter(|a| {
        allowed(caller, RuleType::Role, &a.role_name, Caps::UPDATE)
            && allowed(
                caller,
                RuleType::AuthMethod,
                &a.auth_method_name,
                Caps::UPDATE,
            )
    });
    let Some(assoc) = permitted.cloned() else {
        let everywhere = holds_everywhere(caller, RuleType::Role, Caps::UPDATE)
            && holds_everywhere(caller, RuleType::AuthMethod, Caps::UPDATE);
        return Err(if everywhere && found.is_none() {
            ApiError::NotFound(format!(
                "association {:?} not found",
                coffer_core::name::truncate_for_message(&id)
            ))
        } else {
            ApiError::Forbidden(
                "access denied: no association with this ID that this caller may change (it needs update on both the role and the auth method)"
                    .into(),
            )
        });
    };
    require(ctx, RuleType::Role, &assoc.role_name, Caps::UPDATE)?;
    require(
        ctx,
        RuleType::AuthMethod,
        &assoc.auth_method_name,
        Caps::UPDATE,
    )?;
    ctx.set_object(format!(
        "{} <- {} ({})",
        assoc.role_name, assoc.auth_method_name, assoc.assoc_id
    ));
    Ok(assoc)
}

pub(super) async fn delete_assoc(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let assoc = permitted_assoc(ctx, body)?;
    let id = assoc.assoc_id.clone();
    let snap = ctx.state.snapshot();
    if let Some(role) = snap.roles.get(&assoc.role_name) {
        let g = grantor(ctx.caller()?);
        check_holds_role(&g, &role.name, &role.rules, role.audit_access)?;
        // The method's holders lose the role's denies too.
        check_lift_denies(
            &g,
            &role.name,
            role.rules.iter(),
            snap.roles.values().flat_map(|r| r.rules.iter()),
        )?;
    }
    let state = ctx.state.clone();
    if !state.store.delete_association(&id, ctx.audit()).await? {
        return Err(ApiError::NotFound(format!(
            "association {:?} not found",
            coffer_core::name::truncate_for_message(&id)
        )));
    }
    state.policy_changed_reload().await;
    Ok(json!({}))
}
