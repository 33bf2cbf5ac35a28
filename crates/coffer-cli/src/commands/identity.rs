//! Kubernetes, Azure AD and GCP auth methods, and `explain-access`.

use anyhow::Context as _;
use coffer_client::ExplainAccessOutput;
use coffer_client::ops::{
    CreateAuthMethodAzureAd, CreateAuthMethodGcp, CreateAuthMethodK8s, ExplainAccess,
};

use super::respond;
use crate::args::{
    CreateAuthMethodAzureAdArgs, CreateAuthMethodGcpArgs, CreateAuthMethodK8sArgs,
    ExplainAccessArgs,
};
use crate::output::{fields, note};
use crate::session::secret_or_stdin;

pub(super) async fn create_auth_method_k8s(a: CreateAuthMethodK8sArgs) -> anyhow::Result<()> {
    let k8s_ca_cert = match &a.k8s_ca_cert {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read --k8s-ca-cert {}", p.display()))?,
        ),
        None => None,
    };
    let token_reviewer_jwt = match a.token_reviewer_jwt {
        Some(t) => Some(secret_or_stdin(t, true)?),
        None => None,
    };
    let request = CreateAuthMethodK8s {
        name: a.name,
        bound_namespaces: a.bound_namespaces,
        bound_sa_names: a.bound_sa_names,
        bound_pod_names: a.bound_pod_names,
        audience: a.audience,
        k8s_issuer: a.k8s_issuer,
        jwks_uri: a.jwks_uri,
        jwks_json_data: a.jwks_json_data,
        k8s_host: a.k8s_host,
        k8s_ca_cert,
        token_reviewer_jwt,
        common: a.common.into(),
    };
    respond(&a.global, &request, |out| {
        note("Pods log in with: coffer auth --access-id <access_id> --access-type k8s (reads the pod's service-account token)");
        Ok(fields(&[("name", out.name), ("access_id", out.access_id)]))
    })
    .await
}

pub(super) async fn create_auth_method_azure_ad(
    a: CreateAuthMethodAzureAdArgs,
) -> anyhow::Result<()> {
    let request = CreateAuthMethodAzureAd {
        name: a.name,
        bound_tenant_id: a.bound_tenant_id,
        issuer: a.issuer,
        jwks_uri: a.jwks_uri,
        audience: a.audience,
        unique_identifier: a.unique_identifier,
        bound_spid: a.bound_spid,
        bound_group_id: a.bound_group_id,
        bound_sub_id: a.bound_sub_id,
        bound_rg_id: a.bound_rg_id,
        bound_providers: a.bound_providers,
        bound_resource_types: a.bound_resource_types,
        bound_resource_names: a.bound_resource_names,
        bound_resource_id: a.bound_resource_id,
        common: a.common.into(),
    };
    respond(&a.global, &request, |out| {
        note("Clients log in with access-type azure_ad and a cloud-id (the managed identity's access token, base64).");
        Ok(fields(&[("name", out.name), ("access_id", out.access_id)]))
    })
    .await
}

pub(super) async fn create_auth_method_gcp(a: CreateAuthMethodGcpArgs) -> anyhow::Result<()> {
    let request = CreateAuthMethodGcp {
        name: a.name,
        kind: Some(a.kind),
        audience: a.audience,
        jwks_uri: a.jwks_uri,
        unique_identifier: a.unique_identifier,
        bound_service_accounts: a.bound_service_accounts,
        bound_projects: a.bound_projects,
        bound_zones: a.bound_zones,
        bound_regions: a.bound_regions,
        common: a.common.into(),
    };
    respond(&a.global, &request, |out| {
        note("Clients log in with access-type gcp and a cloud-id (a Google-signed ID token for this method's audience, base64).");
        Ok(fields(&[("name", out.name), ("access_id", out.access_id)]))
    })
    .await
}

pub(super) async fn explain_access(a: ExplainAccessArgs) -> anyhow::Result<()> {
    let read = |s: Option<secrecy::SecretString>| s.map(|v| secret_or_stdin(v, true)).transpose();
    let request = ExplainAccess {
        access_id: a.access_id,
        jwt: read(a.jwt)?,
        cloud_id: read(a.cloud_id)?,
        gcp_audience: a.gcp_audience,
        k8s_service_account_token: read(a.k8s_service_account_token)?,
        uid_token: None,
        path: a.path,
        rule_type: a.rule_type,
    };
    respond(&a.global, &request, |out| Ok(format_explanation(&out))).await
}

/// Human-readable explanation: the login, then each association, then the
/// capabilities on the path.
pub(super) fn format_explanation(e: &ExplainAccessOutput) -> String {
    let mut t = String::new();
    t.push_str(&format!(
        "auth method {} ({}, {})\n",
        e.auth_method.name, e.auth_method.kind, e.auth_method.access_id
    ));
    if e.login.verified {
        t.push_str(&format!(
            "login: verified as {}\n",
            e.login.identity.as_deref().unwrap_or("?")
        ));
    } else if let Some(err) = &e.login.error {
        t.push_str(&format!("login: REFUSED: {err}\n"));
    } else if let Some(n) = &e.login.note {
        t.push_str(&format!("login: {n}\n"));
    }
    if e.associations.is_empty() {
        t.push_str("associations: none (this auth method grants nothing)\n");
    } else {
        t.push_str("associations:\n");
    }
    for a in &e.associations {
        let claims: Vec<String> = a
            .sub_claims
            .iter()
            .map(|(k, v)| format!("{k}={}", v.join("|")))
            .collect();
        let claims = if claims.is_empty() {
            "(no sub-claims)".to_string()
        } else {
            claims.join(" AND ")
        };
        if a.matched {
            t.push_str(&format!("  MATCH   {}  [{claims}]\n", a.role_name));
        } else {
            t.push_str(&format!(
                "  no      {}  [{claims}]: {}\n",
                a.role_name,
                a.reason.as_deref().unwrap_or("did not match")
            ));
        }
    }
    t.push_str(&format!(
        "roles granted: {}\n",
        if e.roles.is_empty() {
            "none".to_string()
        } else {
            e.roles.join(", ")
        }
    ));
    if let Some(path) = &e.path {
        for r in &e.rules {
            t.push_str(&format!(
                "  rule    {} {} [{}]\n",
                r.role,
                r.path,
                r.capabilities.join(", ")
            ));
        }
        let caps = if e.capabilities.is_empty() {
            if e.denied {
                "none (denied)".to_string()
            } else {
                "none".to_string()
            }
        } else {
            e.capabilities.join(", ")
        };
        t.push_str(&format!(
            "capabilities on {path} ({}): {caps}",
            e.rule_type.as_deref().unwrap_or("item-rule")
        ));
    }
    t.trim_end().to_string()
}
