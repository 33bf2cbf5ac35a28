//! First start: an admin auth method bound to an admin role. The admin is
//! an ordinary identity (API key) whose role grants everything; there is no
//! special code path for it anywhere else. Also the start-up data
//! migrations that need the keys (the store's SQL migrations cannot).

use std::sync::Arc;

use coffer_core::model::{Association, AuditAccess, AuthMethod, AuthMethodKind, Role};
use coffer_core::policy::{Caps, Rule, RuleType};
use coffer_store::Audit;
use secrecy::SecretString;

use crate::state::{AppState, MAX_JSON_SAFE_ID, now_ms, random_id, system_record};

pub const ADMIN_ROLE: &str = "/admin";
pub const ADMIN_AUTH_METHOD: &str = "/admin";

pub struct AdminCredentials {
    pub access_id: String,
    pub access_key: SecretString,
}

/// Create the admin identity once. Returns its credentials only when this
/// call created them (they are never stored in plain text). Role, method,
/// association and the "bootstrapped" marker are written in one
/// transaction with their audit record, so two nodes starting together on
/// a fresh database create exactly one admin, and the one that did prints
/// its credentials.
pub async fn ensure_admin(state: &Arc<AppState>) -> anyhow::Result<Option<AdminCredentials>> {
    let store = &state.store;
    if store.get_meta(coffer_store::BOOTSTRAPPED).await?.is_some() {
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
    let assoc = Association {
        assoc_id: format!("rac-{}", coffer_crypto::random_alnum(16)?),
        role_name: ADMIN_ROLE.into(),
        auth_method_name: ADMIN_AUTH_METHOD.into(),
        sub_claims: Default::default(),
        case_sensitive: true,
        created_ms: now,
    };
    let mut rec = system_record("bootstrap", ADMIN_AUTH_METHOD);
    rec.access_id = access_id.clone();
    let created = store
        .bootstrap(&role, &am, &assoc, Audit::new(&mut rec, &*state.keys.audit))
        .await?;
    if created {
        state.audited(rec.seq);
    }
    state
        .reload_policy()
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(created.then_some(AdminCredentials {
        access_id,
        access_key,
    }))
}

/// Give items created before IDs were kept below 2^53 an ID every JSON
/// client reads exactly (JavaScript rounds larger `item_id`s). The ID is
/// bound into each version's ciphertext, so the versions are re-sealed for
/// the new ID; each item is renumbered in one audited transaction.
pub async fn renumber_large_item_ids(state: &Arc<AppState>) -> anyhow::Result<()> {
    let items = state
        .store
        .items_with_id_at_least(MAX_JSON_SAFE_ID + 1)
        .await?;
    for item in items {
        let versions = state.store.item_versions(item.id).await?;
        let new_id = random_id()?;
        let mut resealed = Vec::with_capacity(versions.len());
        for v in &versions {
            let plain = state
                .keys
                .data_key(v.key_id)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .open(&v.sealed, &coffer_crypto::value_aad(item.id, v.version))
                .map_err(|_| {
                    anyhow::anyhow!(
                        "version {} of item {} does not decrypt: it cannot be renumbered",
                        v.version,
                        item.name
                    )
                })?;
            let key_id = state.keys.active_key_id;
            let sealed = state
                .keys
                .data_key(key_id)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .seal(&plain, &coffer_crypto::value_aad(new_id, v.version))?;
            resealed.push(coffer_core::model::SealedVersion {
                version: v.version,
                key_id,
                sealed,
                created_ms: v.created_ms,
            });
        }
        let mut rec = system_record("renumber-item", &item.name);
        state
            .store
            .renumber_item(
                item.id,
                new_id,
                &resealed,
                Audit::new(&mut rec, &*state.keys.audit),
            )
            .await?;
        state.audited(rec.seq);
        tracing::info!(item = %item.name, old_id = item.id, new_id, "item renumbered below 2^53 for JSON clients");
    }
    Ok(())
}
