//! First start: an admin auth method bound to an admin role. The admin is
//! an ordinary identity (API key) whose role grants everything; there is no
//! special code path for it anywhere else.

use std::sync::Arc;

use coffer_core::model::{Association, AuditAccess, AuthMethod, AuthMethodKind, Role};
use coffer_core::policy::{Caps, Rule, RuleType};
use coffer_store::StoreError;
use secrecy::SecretString;

use crate::state::{AppState, now_ms};

pub const ADMIN_ROLE: &str = "/admin";
pub const ADMIN_AUTH_METHOD: &str = "/admin";
const BOOTSTRAPPED: &str = "bootstrapped";

pub struct AdminCredentials {
    pub access_id: String,
    pub access_key: SecretString,
}

/// Create the admin identity once. Returns its credentials only when this
/// call created them (they are never stored in plain text).
pub async fn ensure_admin(state: &Arc<AppState>) -> anyhow::Result<Option<AdminCredentials>> {
    let store = &state.store;
    if store.get_meta(BOOTSTRAPPED).await?.is_some() {
        return Ok(None);
    }
    let now = now_ms();
    let role = Role {
        name: ADMIN_ROLE.into(),
        description: "Full access (created at bootstrap)".into(),
        audit_access: AuditAccess::All,
        rules: RuleType::ALL
            .iter()
            .map(|t| Rule {
                rule_type: *t,
                path: "/*".into(),
                caps: Caps::ALL,
            })
            .collect(),
        created_ms: now,
        modified_ms: now,
    };
    ignore_conflict(store.create_role(&role).await)?;

    let access_key = coffer_crypto::new_access_key()?;
    let access_id = coffer_crypto::new_access_id(AuthMethodKind::ApiKey.type_char())?;
    let am = AuthMethod {
        name: ADMIN_AUTH_METHOD.into(),
        access_id: access_id.clone(),
        kind: AuthMethodKind::ApiKey,
        description: "Bootstrap administrator".into(),
        access_key_hash: Some(coffer_crypto::hash_secret(
            &state.keys.access_key_hasher,
            &access_key,
        )),
        access_expires_ms: 0,
        bound_ips: Vec::new(),
        token_ttl_secs: 0,
        force_sub_claims: false,
        config: serde_json::json!({}),
        created_ms: now,
        modified_ms: now,
    };
    let created = match store.create_auth_method(&am).await {
        Ok(()) => true,
        Err(StoreError::Conflict(_)) => false,
        Err(e) => return Err(e.into()),
    };
    if created {
        store
            .create_association(&Association {
                assoc_id: format!("rac-{}", coffer_crypto::random_alnum(16)?),
                role_name: ADMIN_ROLE.into(),
                auth_method_name: ADMIN_AUTH_METHOD.into(),
                sub_claims: Default::default(),
                case_sensitive: true,
                created_ms: now,
            })
            .await?;
    }
    let first = store
        .put_meta_if_absent(BOOTSTRAPPED, &now.to_string())
        .await?;
    store.bump_generation().await?;
    state
        .reload_policy()
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok((created && first).then_some(AdminCredentials {
        access_id,
        access_key,
    }))
}

fn ignore_conflict(r: Result<(), StoreError>) -> Result<(), StoreError> {
    match r {
        Err(StoreError::Conflict(_)) => Ok(()),
        other => other,
    }
}
