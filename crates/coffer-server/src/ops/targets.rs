//! Targets (rule type `target-rule`): stored admin connections to MySQL /
//! MariaDB and PostgreSQL that dynamic and rotated secrets use. The
//! password is sealed like a secret value (AAD = target ID and version);
//! creating or updating a target connects first and says what failed.

use coffer_core::dbsql::DbKind;
use coffer_core::model::Target;
use coffer_core::policy::{Caps, RuleType};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::auth_methods::check_description;
use super::{allowed, date_field, name_param, refuse_unsupported, require, require_any};
use crate::dbconn::{DbConnSpec, DbError};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::{AppState, now_ms, random_id};
use crate::wire::Body;

/// Options of the target operations that Coffer does not implement.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "azure-client-id",
        "cloud-identity connections are not supported; use user-name and pwd",
    ),
    (
        "azure-client-secret",
        "cloud-identity connections are not supported; use user-name and pwd",
    ),
    (
        "azure-tenant-id",
        "cloud-identity connections are not supported; use user-name and pwd",
    ),
    (
        "cloud-service-provider",
        "cloud-identity connections are not supported; use user-name and pwd",
    ),
    (
        "client-certificate",
        "mutual TLS to the database is not supported yet",
    ),
    (
        "client-private-key",
        "mutual TLS to the database is not supported yet",
    ),
    (
        "client-key-passphrase",
        "mutual TLS to the database is not supported yet",
    ),
    (
        "enable-mtls",
        "mutual TLS to the database is not supported yet",
    ),
    (
        "cluster-mode",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    ("db-server-name", "the server name is the host; use host"),
    (
        "skip-server-name-validation",
        "TLS connections always verify the server",
    ),
    ("key", "targets are sealed with Coffer's own data key"),
    ("lock-on-read", "locking is not supported"),
    ("lock-ttl", "locking is not supported"),
    ("rotate-on-unlock", "locking is not supported"),
    (
        "delete-protection",
        "deletion protection is not supported yet",
    ),
    (
        "mongodb-atlas",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    (
        "mongodb-atlas-api-private-key",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    (
        "mongodb-atlas-api-public-key",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    (
        "mongodb-atlas-project-id",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    (
        "mongodb-default-auth-db",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    (
        "mongodb-uri-options",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    (
        "oracle-service-name",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    (
        "oracle-wallet-login-type",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    (
        "oracle-wallet-p12-file-data",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    (
        "oracle-wallet-sso-file-data",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    ("parent-target-name", "parent targets are not supported"),
    (
        "snowflake-account",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    (
        "snowflake-api-private-key",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    (
        "snowflake-api-private-key-password",
        "only MySQL/MariaDB and PostgreSQL targets are supported",
    ),
    ("max-versions", "targets keep their current version only"),
    (
        "keep-prev-version",
        "targets keep their current version only",
    ),
    (
        "new-name",
        "renaming a target is not supported; create a new one",
    ),
];

/// A database connection without its password: a target's details, or a
/// dynamic secret's inline connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ConnSettings {
    /// `mysql` or `postgres`.
    pub db_type: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    #[serde(default)]
    pub db_name: String,
    #[serde(default)]
    pub ssl: bool,
    /// PEM CA certificate(s) to verify the server with (TLS).
    #[serde(default)]
    pub ssl_certificate: String,
}

impl ConnSettings {
    pub(crate) fn kind(&self) -> Result<DbKind, ApiError> {
        self.db_type
            .parse::<DbKind>()
            .map_err(|_| ApiError::internal(format!("stored db type {:?}", self.db_type)))
    }

    pub(crate) fn spec(&self, password: &str) -> Result<DbConnSpec, ApiError> {
        Ok(DbConnSpec {
            kind: self.kind()?,
            host: self.host.clone(),
            port: self.port,
            user: self.user.clone(),
            password: SecretString::from(password.to_owned()),
            db_name: self.db_name.clone(),
            ssl: self.ssl,
            ssl_ca_pem: (!self.ssl_certificate.is_empty()).then(|| self.ssl_certificate.clone()),
        })
    }
}

/// Parse a database type as the Akeyless clients name it.
pub(crate) fn parse_db_type(s: &str) -> Result<DbKind, ApiError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "mysql" | "mariadb" => Ok(DbKind::MySql),
        "postgres" | "postgresql" | "pg" => Ok(DbKind::Postgres),
        other => Err(ApiError::bad(format!(
            "db-type {:?} is not supported: use mysql (also MariaDB) or postgres",
            coffer_core::name::truncate_for_message(other)
        ))),
    }
}

/// A port given as string or number; `default` when absent.
pub(crate) fn port_param(body: &Body, key: &str, default: u16) -> Result<u16, ApiError> {
    match body.opt_i64(key)? {
        None => Ok(default),
        Some(p) if (1..=65535).contains(&p) => Ok(p as u16),
        Some(_) => Err(ApiError::bad(format!("{key} must be a TCP port (1-65535)"))),
    }
}

/// A host name or address: no scheme, path, spaces or credentials.
pub(crate) fn check_host(key: &str, host: &str) -> Result<(), ApiError> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(format!(
            "{key} must be a host name or IP address (no scheme, port or path)"
        )))
    }
}

/// A database user or database name: printable, no quotes or control characters.
pub(crate) fn check_db_word(key: &str, v: &str) -> Result<(), ApiError> {
    let ok = v.len() <= 128
        && v.chars()
            .all(|c| !c.is_control() && !matches!(c, '\'' | '"' | '`' | '\\' | ';'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad(format!(
            "{key} must be at most 128 characters without quotes, backslashes or semicolons"
        )))
    }
}

/// A PEM certificate, given as PEM or base64 of PEM (the Akeyless CLI
/// sends files base64-encoded).
pub(crate) fn pem_param(body: &Body, key: &str) -> Result<Option<String>, ApiError> {
    let Some(raw) = body.opt_str(key)?.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let text = if raw.contains("-----BEGIN") {
        raw
    } else {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw.trim())
            .map_err(|_| ApiError::bad(format!("{key} must be a PEM certificate or its base64")))?;
        String::from_utf8(bytes)
            .map_err(|_| ApiError::bad(format!("{key} must be a PEM certificate or its base64")))?
    };
    if !text.contains("-----BEGIN CERTIFICATE-----") || text.len() > 64 * 1024 {
        return Err(ApiError::bad(format!(
            "{key} must hold PEM certificates (-----BEGIN CERTIFICATE-----), at most 64 KiB"
        )));
    }
    Ok(Some(text))
}

/// Turn a connection failure into the caller's error: what failed and what
/// to fix, never a password.
/// At run time (issuing, moving an expiry) a failing statement is the
/// database's answer, not the caller's mistake: 502, which clients may
/// retry (a concurrent GRANT, a lock timeout).
pub(crate) fn db_error(what: &str, e: DbError) -> ApiError {
    ApiError::Upstream(format!("{what}: {e}"))
}

/// Like [`db_error`] for settings being created or changed: the caller's
/// input is what is wrong, so 400.
pub(crate) fn settings_error(what: &str, e: DbError) -> ApiError {
    ApiError::bad(format!("{what}: {e}"))
}

fn seal_password(
    state: &AppState,
    id: i64,
    version: i32,
    pwd: &str,
) -> Result<(i64, Vec<u8>), ApiError> {
    let key_id = state.keys.active_key_id();
    let sealed = state
        .keys
        .data_key(key_id)?
        .seal(pwd.as_bytes(), &coffer_crypto::target_aad(id, version))?;
    Ok((key_id, sealed))
}

/// A target's password.
pub(crate) fn open_password(state: &AppState, t: &Target) -> Result<Zeroizing<String>, ApiError> {
    let plain = state
        .keys
        .data_key(t.key_id)?
        .open(&t.sealed, &coffer_crypto::target_aad(t.id, t.version))
        .map_err(|_| {
            ApiError::internal(format!(
                "target {} failed authentication: the row was modified or moved",
                t.name
            ))
        })?;
    let text = String::from_utf8(plain.to_vec())
        .map_err(|_| ApiError::internal("stored target password is not UTF-8"))?;
    Ok(Zeroizing::new(text))
}

pub(crate) fn settings_of(t: &Target) -> Result<ConnSettings, ApiError> {
    serde_json::from_value(t.details.clone())
        .map_err(|e| ApiError::internal(format!("target {} details: {e}", t.name)))
}

/// A target by name, or 404.
pub(crate) async fn find_target(state: &AppState, name: &str) -> Result<Target, ApiError> {
    state
        .store
        .get_target(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("target {name:?} not found")))
}

/// The connection of a target, ready to use.
pub(crate) async fn target_spec(
    state: &AppState,
    name: &str,
) -> Result<(ConnSettings, DbConnSpec), ApiError> {
    let t = find_target(state, name).await?;
    let settings = settings_of(&t)?;
    let pwd = crate::rotation::target_password(state, &t).await?;
    let spec = settings.spec(&pwd)?;
    Ok((settings, spec))
}

/// Settings of a target from a create/update body, over `previous`.
fn settings_from_body(
    body: &Body,
    previous: Option<(&ConnSettings, Zeroizing<String>)>,
) -> Result<(ConnSettings, Zeroizing<String>), ApiError> {
    refuse_unsupported(body, UNSUPPORTED)?;
    match body.opt_str("connection-type")?.as_deref().map(str::trim) {
        None | Some("" | "credentials") => {}
        Some(other) => {
            return Err(ApiError::bad(format!(
                "connection-type {:?} is not supported: use credentials (user-name and pwd)",
                coffer_core::name::truncate_for_message(other)
            )));
        }
    }
    let kind = match (body.opt_str("db-type")?, previous.as_ref()) {
        (Some(t), _) if !t.trim().is_empty() => parse_db_type(&t)?,
        (_, Some((p, _))) => p.kind()?,
        _ => {
            return Err(ApiError::bad(
                "missing required parameter db-type (mysql or postgres)",
            ));
        }
    };
    let default_port = match kind {
        DbKind::MySql => 3306,
        DbKind::Postgres => 5432,
    };
    let text = |key: &str, prev: Option<&str>| -> Result<Option<String>, ApiError> {
        Ok(body
            .opt_str(key)?
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().to_owned())
            .or_else(|| prev.map(str::to_owned)))
    };
    let prev = previous.as_ref().map(|(p, _)| *p);
    let host = text("host", prev.map(|p| p.host.as_str()))?
        .ok_or_else(|| ApiError::bad("missing required parameter host"))?;
    check_host("host", &host)?;
    let port = port_param(body, "port", prev.map_or(default_port, |p| p.port))?;
    let user = text("user-name", prev.map(|p| p.user.as_str()))?
        .ok_or_else(|| ApiError::bad("missing required parameter user-name"))?;
    check_db_word("user-name", &user)?;
    let db_name = text("db-name", prev.map(|p| p.db_name.as_str()))?.unwrap_or_default();
    check_db_word("db-name", &db_name)?;
    let ssl = body.bool_or("ssl", prev.is_some_and(|p| p.ssl))?;
    let cert = match pem_param(body, "ssl-certificate")? {
        Some(c) => c,
        None => match pem_param(body, "db-server-certificates")? {
            Some(c) => c,
            None => prev.map(|p| p.ssl_certificate.clone()).unwrap_or_default(),
        },
    };
    if !cert.is_empty() && !ssl {
        return Err(ApiError::bad(
            "ssl-certificate is only used with ssl=true: pass ssl=true to connect over TLS",
        ));
    }
    let pwd = match body.opt_str("pwd")? {
        Some(p) if !p.is_empty() => Zeroizing::new(p),
        _ => match previous {
            Some((_, p)) => p,
            None => Zeroizing::new(String::new()),
        },
    };
    if pwd.len() > 1024 {
        return Err(ApiError::bad("pwd is longer than 1024 bytes"));
    }
    // The stored password goes only where it went before.
    if let Some(p) = prev
        && (p.host != host || p.port != port || p.user != user)
        && body.opt_str("pwd")?.is_none_or(|p| p.is_empty())
    {
        return Err(ApiError::bad(
            "pwd is required when host, port or user-name change (the stored password is not sent to a new server)",
        ));
    }
    Ok((
        ConnSettings {
            db_type: kind.as_str().to_owned(),
            host,
            port,
            user,
            db_name,
            ssl,
            ssl_certificate: cert,
        },
        pwd,
    ))
}

fn description_param(body: &Body, previous: Option<&str>) -> Result<String, ApiError> {
    let d = body
        .opt_str("description")?
        .filter(|d| d != "default_metadata")
        .or(body.opt_str("comment")?)
        .or_else(|| previous.map(str::to_owned))
        .unwrap_or_default();
    check_description(&d)?;
    Ok(d)
}

pub(super) async fn create(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Target, &name, Caps::CREATE)?;
    let (settings, pwd) = settings_from_body(body, None)?;
    let description = description_param(body, None)?;
    let state = ctx.state.clone();
    if state.store.get_target(&name).await?.is_some() {
        return Err(ApiError::Conflict(format!(
            "target {name:?} already exists"
        )));
    }
    let spec = settings.spec(&pwd)?;
    state
        .db
        .check_admin(&spec)
        .await
        .map_err(|e| settings_error("the target's connection does not work", e))?;
    let id = random_id()?;
    let (key_id, sealed) = seal_password(&state, id, 1, &pwd)?;
    let now = now_ms();
    let t = Target {
        id,
        name: name.clone(),
        target_type: settings.db_type.clone(),
        description,
        details: serde_json::to_value(&settings).map_err(ApiError::internal)?,
        key_id,
        sealed,
        version: 1,
        created_ms: now,
        modified_ms: now,
    };
    state
        .store
        .create_target(&t, ctx.audit())
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("target {name:?} already exists"))
            }
            other => other.into(),
        })?;
    Ok(json!({"target_id": id}))
}

pub(super) async fn update(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Target, &name, Caps::UPDATE)?;
    let state = ctx.state.clone();
    let old = find_target(&state, &name).await?;
    if let Some(owner) = super::rotated::rotating_item(&old)
        && body.opt_str("pwd")?.is_some_and(|p| !p.is_empty())
    {
        return Err(ApiError::Conflict(format!(
            "the password of target {name:?} is rotated by {owner:?}: rotate it with gateway-rotate-secret instead"
        )));
    }
    let old_settings = settings_of(&old)?;
    let old_pwd = crate::rotation::target_password(&state, &old).await?;
    let (settings, pwd) = settings_from_body(body, Some((&old_settings, old_pwd)))?;
    if settings.db_type != old_settings.db_type {
        return Err(ApiError::bad(format!(
            "target {name:?} is a {} target: its db-type cannot change; create a new target",
            old_settings.db_type
        )));
    }
    let description = description_param(body, Some(&old.description))?;
    if (&settings.host, settings.port) != (&old_settings.host, old_settings.port) {
        refuse_moving_live_leases(&state, &name, "its host and port cannot change").await?;
    }
    let spec = settings.spec(&pwd)?;
    state.db.check_admin(&spec).await.map_err(|e| {
        settings_error(
            "the target's new connection does not work (nothing was changed)",
            e,
        )
    })?;
    let mut details = serde_json::to_value(&settings).map_err(ApiError::internal)?;
    if let Some(owner) = super::rotated::rotating_item(&old) {
        details["rotated_by"] = Value::String(owner);
    }
    let version = old.version + 1;
    let (key_id, sealed) = seal_password(&state, old.id, version, &pwd)?;
    let t = Target {
        description,
        details,
        key_id,
        sealed,
        version,
        modified_ms: now_ms(),
        ..old
    };
    state
        .store
        .update_target(&t, ctx.audit())
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("target {name:?} was updated concurrently; retry"))
            }
            other => other.into(),
        })?;
    Ok(json!({"target_id": t.id}))
}

/// A target as the clients read it; `target_items_assoc` lists the items
/// using it that `caller` may list.
async fn render(
    state: &AppState,
    t: &Target,
    caller: &crate::state::Caller,
) -> Result<Value, ApiError> {
    let mut items = state.store.target_items(&t.name).await?;
    items.retain(|i| allowed(caller, RuleType::Item, i, Caps::LIST));
    let assoc: Vec<Value> = items
        .iter()
        .map(|i| json!({"item_name": i, "relationship": "use"}))
        .collect();
    Ok(super::without_nulls(json!({
        "target_id": t.id,
        "target_name": t.name,
        "target_type": t.target_type,
        "target_sub_type": "",
        "comment": t.description,
        "description": t.description,
        "last_version": t.version,
        "creation_date": date_field(t.created_ms),
        "modification_date": date_field(t.modified_ms),
        "target_items_assoc": assoc,
        "with_customer_fragment": false,
        "delete_protection": false,
    })))
}

fn refuse_other_version(body: &Body, t: &Target) -> Result<(), ApiError> {
    match body.opt_i64("target-version")? {
        None | Some(0) => Ok(()),
        Some(v) if v == i64::from(t.version) => Ok(()),
        Some(v) => Err(ApiError::NotFound(format!(
            "version {v} of target {:?} not found: Coffer keeps the current version ({}) only",
            t.name, t.version
        ))),
    }
}

/// Refuse a change to a target while dynamic secrets using it have live
/// credentials (their revocation needs the server they were created on).
async fn refuse_moving_live_leases(
    state: &AppState,
    name: &str,
    what: &str,
) -> Result<(), ApiError> {
    for item_name in state.store.target_items(name).await? {
        if let Some(item) = state.store.get_item(&item_name).await?
            && item.item_type == coffer_core::model::ItemType::DynamicSecret
        {
            super::dynamic::refuse_with_live_leases(
                state,
                &item,
                &format!("target {name:?} uses it, so {what}"),
            )
            .await?;
        }
    }
    Ok(())
}

pub(super) async fn get(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require_any(ctx, RuleType::Target, &name, Caps::READ.union(Caps::LIST))?;
    let state = ctx.state.clone();
    let t = find_target(&state, &name).await?;
    render(&state, &t, ctx.caller()?).await
}

pub(super) async fn get_details(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require_any(ctx, RuleType::Target, &name, Caps::READ.union(Caps::LIST))?;
    let state = ctx.state.clone();
    let t = find_target(&state, &name).await?;
    refuse_other_version(body, &t)?;
    let settings = settings_of(&t)?;
    let may_read = allowed(ctx.caller()?, RuleType::Target, &name, Caps::READ);
    let mut details = json!({
        "connection_type": "credentials",
        "db_host_name": settings.host,
        "db_port": settings.port.to_string(),
        "db_user_name": settings.user,
        "db_name": settings.db_name,
        "ssl_connection_mode": settings.ssl,
        "ssl_connection_certificate": settings.ssl_certificate,
    });
    if may_read {
        let pwd = crate::rotation::target_password(&state, &t).await?;
        details["db_pwd"] = Value::String(pwd.as_str().to_owned());
    }
    Ok(json!({
        "target": render(&state, &t, ctx.caller()?).await?,
        "value": {"db_target_details": details},
    }))
}

pub(super) async fn list(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    if body
        .opt_str("pagination-token")?
        .is_some_and(|t| !t.trim().is_empty())
    {
        return Err(ApiError::bad(
            "pagination-token: target-list returns every target in one page; send none",
        ));
    }
    let filter = body.opt_str("filter")?.unwrap_or_default();
    let mut types = Vec::new();
    for t in body.list("type")? {
        types.push(parse_db_type(&t)?.as_str());
    }
    let state = ctx.state.clone();
    let caller = ctx.caller()?;
    let mut out = Vec::new();
    for t in state.store.list_targets().await? {
        if !allowed(caller, RuleType::Target, &t.name, Caps::LIST)
            || (!filter.is_empty() && !t.name.contains(filter.as_str()))
            || (!types.is_empty() && !types.contains(&t.target_type.as_str()))
        {
            continue;
        }
        out.push(render(&state, &t, ctx.caller()?).await?);
    }
    Ok(json!({"targets": out}))
}

pub(super) async fn delete(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Target, &name, Caps::DELETE)?;
    let force = body.bool_or("force-deletion", false)?;
    let state = ctx.state.clone();
    let t = find_target(&state, &name).await?;
    refuse_other_version(body, &t)?;
    if force {
        refuse_moving_live_leases(&state, &name, "it cannot be deleted").await?;
    }
    if !state.store.delete_target(&name, force, ctx.audit()).await? {
        return Err(ApiError::NotFound(format!("target {name:?} not found")));
    }
    Ok(json!({"target_name": name}))
}
