//! Access roles, their rules and their associations (rule type `role-rule`).

use coffer_core::model::{Association, AuditAccess, Role};
use coffer_core::name::normalize_rule_path;
use coffer_core::policy::{Caps, Rule, RuleType};
use coffer_core::subclaims::parse_sub_claims;
use serde_json::{Value, json};

use super::auth_methods::check_description;
use super::{allowed, date_field, name_param, require, without_nulls};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::{PolicySnapshot, now_ms};
use crate::wire::Body;

/// Upper bound on rules per role, to keep policy evaluation cheap.
const MAX_RULES: usize = 1000;

pub async fn create(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Role, &name, Caps::CREATE)?;
    let description = body.opt_str("description")?.unwrap_or_default();
    check_description(&description)?;
    let audit_access: AuditAccess = body.opt_str("audit-access")?.unwrap_or_default().parse()?;
    let now = now_ms();
    let role = Role {
        name: name.clone(),
        description,
        audit_access,
        rules: Vec::new(),
        created_ms: now,
        modified_ms: now,
    };
    ctx.state
        .store
        .create_role(&role)
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("role {name:?} already exists"))
            }
            other => other.into(),
        })?;
    ctx.state.policy_changed().await?;
    Ok(json!({}))
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
        "audit_access": role.audit_access.as_str(),
        "rules": {"admin": false, "path_rules": rules},
        "role_auth_methods_assoc": assocs,
        "creation_date": date_field(role.created_ms),
        "modification_date": date_field(role.modified_ms),
    }))
}

pub async fn get(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Role, &name, Caps::READ)?;
    let snap = ctx.state.snapshot();
    let role = snap
        .roles
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(format!("role {name:?} not found")))?;
    Ok(render(role, &snap))
}

pub async fn list(ctx: &mut Ctx, _body: &Body) -> Result<Value, ApiError> {
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

pub async fn delete(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Role, &name, Caps::DELETE)?;
    if !ctx.state.store.delete_role(&name).await? {
        return Err(ApiError::NotFound(format!("role {name:?} not found")));
    }
    ctx.state.policy_changed().await?;
    Ok(json!({}))
}

fn rule_type_param(body: &Body) -> Result<RuleType, ApiError> {
    Ok(body.opt_str("rule-type")?.unwrap_or_default().parse()?)
}

pub async fn set_rule(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
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
    let snap = ctx.state.snapshot();
    let existing = snap
        .roles
        .get(&role)
        .ok_or_else(|| ApiError::NotFound(format!("role {role:?} not found")))?;
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
    ctx.state
        .store
        .set_role_rule(&role, &rule, now_ms())
        .await?;
    ctx.state.policy_changed().await?;
    Ok(json!({}))
}

pub async fn delete_rule(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let role = name_param(ctx, body, "role-name")?;
    require(ctx, RuleType::Role, &role, Caps::UPDATE)?;
    let path = normalize_rule_path(&body.req_str("path")?)?;
    let rule_type = rule_type_param(body)?;
    ctx.set_object(format!("{role} {rule_type} {path}"));
    if !ctx
        .state
        .store
        .delete_role_rule(&role, rule_type, &path)
        .await?
    {
        return Err(ApiError::NotFound(format!(
            "role {role:?} has no {rule_type} for path {path:?}"
        )));
    }
    ctx.state.policy_changed().await?;
    Ok(json!({}))
}

pub async fn assoc(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let role = name_param(ctx, body, "role-name")?;
    let am_raw = body.req_str("am-name")?;
    let am_name = coffer_core::name::normalize_name(&am_raw)?;
    ctx.set_object(format!("{role} <- {am_name}"));
    require(ctx, RuleType::Role, &role, Caps::UPDATE)?;
    require(ctx, RuleType::AuthMethod, &am_name, Caps::READ)?;
    let snap = ctx.state.snapshot();
    if !snap.roles.contains_key(&role) {
        return Err(ApiError::NotFound(format!("role {role:?} not found")));
    }
    let am = snap
        .auth_methods
        .get(&am_name)
        .ok_or_else(|| ApiError::NotFound(format!("auth method {am_name:?} not found")))?;
    let sub_claims = parse_sub_claims(body.get("sub-claims").unwrap_or(&Value::Null))?;
    if sub_claims.len() > 32 {
        return Err(ApiError::bad("at most 32 sub-claims per association"));
    }
    if am.force_sub_claims && sub_claims.is_empty() {
        return Err(ApiError::bad(format!(
            "auth method {am_name:?} requires sub-claims on every role association (force-sub-claims is on), so that not every token it accepts gets this role: pass sub-claims such as project_path=group/app"
        )));
    }
    let assoc = Association {
        assoc_id: format!("rac-{}", coffer_crypto::random_alnum(16)?),
        role_name: role,
        auth_method_name: am_name,
        sub_claims,
        case_sensitive: body.bool_or("case-sensitive", true)?,
        created_ms: now_ms(),
    };
    ctx.state.store.create_association(&assoc).await?;
    ctx.state.policy_changed().await?;
    Ok(json!({"assoc_id": assoc.assoc_id}))
}

pub async fn delete_assoc(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let id = body.req_str("assoc-id")?;
    ctx.set_object(coffer_core::name::truncate_for_message(&id));
    let snap = ctx.state.snapshot();
    let assoc = snap
        .assocs
        .values()
        .flatten()
        .find(|a| a.assoc_id == id)
        .ok_or_else(|| ApiError::NotFound(format!("association {id:?} not found")))?;
    require(ctx, RuleType::Role, &assoc.role_name, Caps::UPDATE)?;
    ctx.state.store.delete_association(&id).await?;
    ctx.state.policy_changed().await?;
    Ok(json!({}))
}
