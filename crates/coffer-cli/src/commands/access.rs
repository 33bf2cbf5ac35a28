//! Auth methods, roles, rules and associations.

use coffer_client::ops::{
    AssocRoleAm, CreateAuthMethod, CreateAuthMethodAwsIam, CreateAuthMethodOauth2, CreateRole,
    DeleteAssoc, DeleteAuthMethod, DeleteRole, DeleteRoleRule, GetAuthMethod, GetRole,
    ListAuthMethods, ListRoles, ResetAccessKey, SetRoleRule, UpdateAssoc, UpdateAuthMethod,
    UpdateRole,
};
use coffer_client::{AuthMethodInfo, RoleInfo};
use secrecy::ExposeSecret;

use super::{date, respond, sub_claims};
use crate::args::{
    AssocRoleAmArgs, CreateAuthMethodArgs, CreateAuthMethodAwsIamArgs, CreateAuthMethodOauth2Args,
    CreateRoleArgs, DeleteAssocArgs, DeleteRoleRuleArgs, NameArgs, NoArgs, SetRoleRuleArgs,
    UpdateAssocArgs, UpdateAuthMethodArgs, UpdateRoleArgs,
};
use crate::output::{fields, note};

pub(super) async fn create_auth_method(a: CreateAuthMethodArgs) -> anyhow::Result<()> {
    let request = CreateAuthMethod {
        name: a.name,
        access_expires: a.access_expires,
        common: a.common.into(),
    };
    respond(&a.global, &request, |out| {
        note("Save the access key now: it is not shown again.");
        Ok(fields(&[
            ("name", out.name),
            ("access_id", out.access_id),
            ("access_key", out.access_key.expose_secret().to_string()),
        ]))
    })
    .await
}

pub(super) async fn create_auth_method_oauth2(a: CreateAuthMethodOauth2Args) -> anyhow::Result<()> {
    let request = CreateAuthMethodOauth2 {
        name: a.name,
        unique_identifier: a.unique_identifier,
        jwks_uri: a.jwks_uri,
        jwks_json_data: a.jwks_json_data,
        issuer: a.issuer,
        audience: a.audience,
        bound_client_ids: a.bound_client_ids,
        common: a.common.into(),
        refuse_replay: a.refuse_replay,
        refuse_events: a.refuse_events,
    };
    let audience = request
        .audience
        .clone()
        .unwrap_or_else(|| "<audience>".to_owned());
    respond(&a.global, &request, move |out| {
        note(&oauth2_login_hint(&out.access_id, &audience));
        Ok(fields(&[("name", out.name), ("access_id", out.access_id)]))
    })
    .await
}

/// How CI jobs log in to a new OAuth2/JWT method: with the ID token their
/// CI mints for this audience (GitLab `id_tokens:`, GitHub Actions OIDC).
fn oauth2_login_hint(access_id: &str, audience: &str) -> String {
    format!(
        "Jobs log in with their CI's ID token for audience {audience}:\n  GitLab:  id_tokens: {{ COFFER_ID_TOKEN: {{ aud: {audience} }} }} in the job, then\n           coffer auth --access-id {access_id} --access-type jwt --jwt \"$COFFER_ID_TOKEN\"\n  GitHub:  permissions: id-token: write, then request the token for audience {audience}\n           (or let `coffer ci` fetch it) and pass it with --jwt\n  Test locally with `coffer dev oidc` and `coffer dev oidc mint --aud {audience}`."
    )
}

pub(super) async fn create_auth_method_aws_iam(
    a: CreateAuthMethodAwsIamArgs,
) -> anyhow::Result<()> {
    let request = CreateAuthMethodAwsIam {
        name: a.name,
        bound_aws_account_id: a.bound_aws_account_id,
        sts_url: a.sts_url,
        bound_arn: a.bound_arn,
        bound_role_name: a.bound_role_name,
        bound_role_id: a.bound_role_id,
        bound_resource_id: a.bound_resource_id,
        bound_user_name: a.bound_user_name,
        bound_user_id: a.bound_user_id,
        access_expires: a.access_expires,
        common: a.common.into(),
    };
    respond(&a.global, &request, |out| {
        note("Clients log in with access-type aws_iam and a cloud-id (a signed STS GetCallerIdentity request for this method's sts-url), e.g. the Akeyless GitHub Action with access-type: aws_iam.");
        Ok(fields(&[("name", out.name), ("access_id", out.access_id)]))
    })
    .await
}

fn format_auth_method(am: &AuthMethodInfo) -> String {
    let info = &am.access_info;
    let expires = match info.access_expires {
        0 => "never".to_string(),
        t => t.to_string(),
    };
    let mut text = fields(&[
        ("name", am.auth_method_name.clone()),
        ("access_id", am.auth_method_access_id.clone()),
        ("type", info.rules_type.clone()),
        ("description", am.description.clone()),
        ("access_expires", expires),
        ("bound_ips", info.bound_ips.join(", ")),
        ("jwt_ttl", format!("{} min", info.jwt_ttl)),
        ("force_sub_claims", info.force_sub_claims.to_string()),
        (
            "jwks",
            info.oauth2_access_rules
                .as_ref()
                .map(|r| {
                    if r.jwks_uri.is_empty() {
                        "(inline)".to_string()
                    } else {
                        r.jwks_uri.clone()
                    }
                })
                .unwrap_or_default(),
        ),
        (
            "unique_identifier",
            info.oauth2_access_rules
                .as_ref()
                .map(|r| r.unique_identifier.clone())
                .unwrap_or_default(),
        ),
        (
            "issuer",
            info.oauth2_access_rules
                .as_ref()
                .map(|r| r.issuer.clone())
                .unwrap_or_default(),
        ),
        (
            "audience",
            info.oauth2_access_rules
                .as_ref()
                .map(|r| r.audience.clone())
                .unwrap_or_default(),
        ),
        (
            "bound_aws_account_id",
            info.aws_iam_access_rules
                .as_ref()
                .map(|r| r.account_id.join(", "))
                .unwrap_or_default(),
        ),
        (
            "bound_arn",
            info.aws_iam_access_rules
                .as_ref()
                .map(|r| r.arn.join(", "))
                .unwrap_or_default(),
        ),
        (
            "bound_role_name",
            info.aws_iam_access_rules
                .as_ref()
                .map(|r| r.role_name.join(", "))
                .unwrap_or_default(),
        ),
        (
            "sts_url",
            info.aws_iam_access_rules
                .as_ref()
                .map(|r| r.sts_endpoint.clone())
                .unwrap_or_default(),
        ),
        ("created", date(&am.creation_date)),
        ("modified", date(&am.modification_date)),
    ]);
    // The rules of the other access types (k8s, Azure AD, GCP, universal
    // identity), field by field as the server sends them.
    for (key, rules) in &info.other {
        let Some(map) = rules.as_object().filter(|_| key.ends_with("_access_rules")) else {
            continue;
        };
        for (field, value) in map {
            let shown = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            let inline_jwks = field.starts_with("jwks_json") && shown.len() > 64;
            if !shown.is_empty() && !inline_jwks {
                text.push_str(&format!("{field}: {shown}\n"));
            }
        }
    }
    if !am.auth_method_roles_assoc.is_empty() {
        text.push_str("roles:\n");
        for r in &am.auth_method_roles_assoc {
            text.push_str(&format!(
                "  {}  (assoc {}) {}\n",
                r.role_name,
                r.assoc_id,
                sub_claims(&r.auth_method_sub_claims)
            ));
        }
    }
    text
}

pub(super) async fn get_auth_method(a: NameArgs) -> anyhow::Result<()> {
    let request = GetAuthMethod { name: a.name };
    respond(&a.global, &request, |am| Ok(format_auth_method(&am))).await
}

pub(super) async fn list_auth_methods(a: NoArgs) -> anyhow::Result<()> {
    respond(&a.global, &ListAuthMethods {}, |out| {
        let width = out
            .auth_methods
            .iter()
            .map(|m| m.auth_method_name.len())
            .max()
            .unwrap_or(0);
        Ok(out
            .auth_methods
            .iter()
            .map(|m| {
                format!(
                    "{:<width$}  {}\n",
                    m.auth_method_name, m.auth_method_access_id
                )
            })
            .collect())
    })
    .await
}

pub(super) async fn delete_auth_method(a: NameArgs) -> anyhow::Result<()> {
    let request = DeleteAuthMethod { name: a.name };
    respond(&a.global, &request, |out| {
        Ok(format!("Deleted auth method {}", out.name))
    })
    .await
}

pub(super) async fn create_role(a: CreateRoleArgs) -> anyhow::Result<()> {
    let request = CreateRole {
        name: a.name,
        description: a.description,
        audit_access: a.audit_access,
    };
    respond(&a.global, &request, |_| {
        Ok(format!("Created role {}", request.name))
    })
    .await
}

fn format_role(role: &RoleInfo) -> String {
    let mut text = fields(&[
        ("name", role.role_name.clone()),
        ("description", role.description.clone()),
        ("audit_access", role.audit_access.clone()),
        ("created", date(&role.creation_date)),
        ("modified", date(&role.modification_date)),
    ]);
    if !role.rules.path_rules.is_empty() {
        text.push_str("rules:\n");
        for r in &role.rules.path_rules {
            text.push_str(&format!(
                "  {:<16} {}  {}\n",
                r.rule_type,
                r.path,
                r.capabilities.join(",")
            ));
        }
    }
    if !role.role_auth_methods_assoc.is_empty() {
        text.push_str("auth methods:\n");
        for m in &role.role_auth_methods_assoc {
            text.push_str(&format!(
                "  {} ({})  (assoc {}) {}\n",
                m.auth_method_name,
                m.auth_method_access_id,
                m.assoc_id,
                sub_claims(&m.auth_method_sub_claims)
            ));
        }
    }
    text
}

pub(super) async fn get_role(a: NameArgs) -> anyhow::Result<()> {
    let request = GetRole { name: a.name };
    respond(&a.global, &request, |role| Ok(format_role(&role))).await
}

pub(super) async fn list_roles(a: NoArgs) -> anyhow::Result<()> {
    respond(&a.global, &ListRoles {}, |out| {
        Ok(out
            .roles
            .iter()
            .map(|r| format!("{}\n", r.role_name))
            .collect())
    })
    .await
}

pub(super) async fn delete_role(a: NameArgs) -> anyhow::Result<()> {
    let request = DeleteRole { name: a.name };
    respond(&a.global, &request, |_| {
        Ok(format!("Deleted role {}", request.name))
    })
    .await
}

pub(super) async fn set_role_rule(a: SetRoleRuleArgs) -> anyhow::Result<()> {
    let request = SetRoleRule {
        role_name: a.role_name,
        path: a.path,
        capability: a.capability,
        rule_type: a.rule_type,
    };
    respond(&a.global, &request, |_| {
        Ok(format!(
            "Role {}: {} on {} = {}",
            request.role_name,
            request.rule_type.as_deref().unwrap_or("item-rule"),
            request.path,
            request.capability.join(",")
        ))
    })
    .await
}

pub(super) async fn delete_role_rule(a: DeleteRoleRuleArgs) -> anyhow::Result<()> {
    let request = DeleteRoleRule {
        role_name: a.role_name,
        path: a.path,
        rule_type: a.rule_type,
    };
    respond(&a.global, &request, |_| {
        Ok(format!(
            "Role {}: removed {} on {}",
            request.role_name,
            request.rule_type.as_deref().unwrap_or("item-rule"),
            request.path
        ))
    })
    .await
}

pub(super) async fn assoc_role_am(a: AssocRoleAmArgs) -> anyhow::Result<()> {
    let request = AssocRoleAm {
        role_name: a.role_name.clone(),
        am_name: a.am_name.clone(),
        sub_claims: a.sub_claims_map(),
        case_sensitive: a.case_sensitive,
    };
    respond(&a.global, &request, |out| {
        Ok(fields(&[("assoc_id", out.assoc_id)]))
    })
    .await
}

pub(super) async fn delete_assoc(a: DeleteAssocArgs) -> anyhow::Result<()> {
    let request = DeleteAssoc {
        assoc_id: a.assoc_id,
    };
    respond(&a.global, &request, |_| {
        Ok(format!("Deleted association {}", request.assoc_id))
    })
    .await
}

pub(super) async fn update_assoc(a: UpdateAssocArgs) -> anyhow::Result<()> {
    let request = UpdateAssoc {
        assoc_id: a.assoc_id.clone(),
        sub_claims: a.sub_claims_map(),
        case_sensitive: a.case_sensitive,
    };
    respond(&a.global, &request, |_| {
        Ok(format!("Updated association {}", request.assoc_id))
    })
    .await
}

pub(super) async fn update_role(a: UpdateRoleArgs) -> anyhow::Result<()> {
    let request = UpdateRole {
        name: a.name,
        new_name: a.new_name,
        description: a.description,
        audit_access: a.audit_access,
    };
    respond(&a.global, &request, |_| {
        Ok(format!(
            "Updated role {}",
            request.new_name.as_deref().unwrap_or(&request.name)
        ))
    })
    .await
}

pub(super) async fn update_auth_method(a: UpdateAuthMethodArgs) -> anyhow::Result<()> {
    let request = UpdateAuthMethod {
        name: a.name,
        new_name: a.new_name,
        access_expires: a.access_expires,
        // `--bound-ips ''` clears them.
        bound_ips: a
            .bound_ips
            .map(|ips| ips.into_iter().filter(|ip| !ip.trim().is_empty()).collect()),
        jwt_ttl: a.jwt_ttl,
        force_sub_claims: a.force_sub_claims,
        description: a.description,
        lease_tied_to_token: None,
    };
    respond(&a.global, &request, |out| {
        Ok(format!("Updated auth method {}", out.name))
    })
    .await
}

pub(super) async fn reset_access_key(a: NameArgs) -> anyhow::Result<()> {
    let request = ResetAccessKey { name: a.name };
    respond(&a.global, &request, |out| {
        note("Save the access key now: it is not shown again; the old one no longer works.");
        Ok(fields(&[(
            "access_key",
            out.access_key.expose_secret().to_string(),
        )]))
    })
    .await
}
