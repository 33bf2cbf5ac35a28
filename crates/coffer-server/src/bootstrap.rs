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
/// its credentials. With a bootstrap file (`out`), the credentials are
/// written to it and synced **before** the transaction commits: a crash
/// can leave a file naming an admin that does not exist (the next start
/// refuses the existing file), never an admin whose key is lost.
pub async fn ensure_admin(
    state: &Arc<AppState>,
    out: &mut CredentialsOut,
) -> anyhow::Result<Option<AdminCredentials>> {
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
    out.write_before_commit(&access_id, &access_key)?;
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
            let key_id = state.keys.active_key_id();
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

/// Where a first start's admin credentials go (never to the log stream).
pub enum CredentialsOut {
    /// The store is bootstrapped already: nothing will be created.
    Nothing,
    /// Returned to `run`, which prints them once (`--dev`, or a terminal).
    Print,
    /// `--bootstrap-file`: created (empty, 0600, exclusively) before
    /// anything else, filled and synced before the admin's transaction
    /// commits, removed again if this node does not create the admin.
    File(std::fs::File, std::path::PathBuf),
}

/// Decide where the credentials go, before the admin is created, so a
/// refusal changes nothing: an existing `--bootstrap-file` is refused, and
/// a non-dev first start with neither a file nor a terminal on stdout
/// refuses to start.
pub async fn prepare_output(state: &AppState) -> anyhow::Result<CredentialsOut> {
    use std::io::IsTerminal;
    if state
        .store
        .get_meta(coffer_store::BOOTSTRAPPED)
        .await?
        .is_some()
    {
        return Ok(CredentialsOut::Nothing);
    }
    if let Some(path) = &state.config.bootstrap_file {
        let mut open = std::fs::OpenOptions::new();
        open.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
        let file = open.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow::anyhow!(
                    "refusing to overwrite the bootstrap file {}: it exists already (it may hold an admin's credentials); move it away or name a new file. Nothing was created.",
                    path.display()
                )
            } else {
                anyhow::anyhow!("cannot create the bootstrap file {}: {e}", path.display())
            }
        })?;
        return Ok(CredentialsOut::File(file, path.clone()));
    }
    if state.config.dev || std::io::stdout().is_terminal() {
        return Ok(CredentialsOut::Print);
    }
    anyhow::bail!(
        "first start on an empty store: the bootstrap admin's credentials are shown once, and never written to logs. Give --bootstrap-file FILE (or COFFER_BOOTSTRAP_FILE, or bootstrap_file in the config file) to have them written to a new file with mode 0600, or start this first time with standard output on a terminal. Nothing was created."
    )
}

impl CredentialsOut {
    /// With a bootstrap file: write and sync the credentials into it (the
    /// admin is not created yet; a failure here creates nothing).
    fn write_before_commit(
        &mut self,
        access_id: &str,
        access_key: &SecretString,
    ) -> anyhow::Result<()> {
        use std::io::Write;
        let CredentialsOut::File(file, path) = self else {
            return Ok(());
        };
        let text = zeroize::Zeroizing::new(format!(
            "access_id: {access_id}\naccess_key: {}\n",
            secrecy::ExposeSecret::expose_secret(access_key)
        ));
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot write the bootstrap file {}: {e}; nothing was created",
                    path.display()
                )
            })
    }
}

/// After [`ensure_admin`]: keep the bootstrap file when this node created
/// the admin, else remove it (another node bootstrapped first, or the
/// bootstrap failed: its credentials were never valid). Returns the
/// credentials only when `run` should print them.
pub fn deliver(
    out: CredentialsOut,
    admin: anyhow::Result<Option<AdminCredentials>>,
) -> anyhow::Result<Option<AdminCredentials>> {
    match out {
        CredentialsOut::Nothing => admin,
        CredentialsOut::Print => admin,
        CredentialsOut::File(file, path) => {
            match admin {
                Ok(Some(_)) => {}
                other => {
                    drop(file);
                    std::fs::remove_file(&path).ok();
                    return other;
                }
            }
            drop(file);
            tracing::info!(
                path = %path.display(),
                "bootstrap admin created; its credentials were written to the bootstrap file (mode 0600)"
            );
            Ok(None)
        }
    }
}
