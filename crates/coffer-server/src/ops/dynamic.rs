//! Dynamic secrets (items of type `DYNAMIC_SECRET`, rule type `item-rule`):
//! MySQL/MariaDB and PostgreSQL producers that create a database user per
//! request. Every issued credential is a lease, written (with the
//! request's audit record) before the user is created; `crate::leases`
//! revokes it at expiry.

use coffer_core::dbsql::{self, DbKind, PasswordRules, Statements, Vars};
use coffer_core::model::{Item, ItemSubType, ItemType, Lease, LeaseState, Producer, SecretFormat};
use coffer_core::policy::{Caps, RuleType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::auth_methods::check_description;
use super::azure::{self, AzureApp};
use super::items::{open, seal, tags_param};
use super::targets::{
    ConnSettings, check_db_word, check_host, db_error, port_param, settings_error, target_spec,
};
use super::{allowed, name_param, refuse_unsupported, require, require_any, without_nulls};
use crate::dbconn::DbConnSpec;
use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::{AppState, now_ms, random_id};
use crate::wire::Body;

/// Live leases per dynamic secret when `max-leases` is not given.
pub(crate) const DEFAULT_MAX_LEASES: i64 = 1000;
const MAX_MAX_LEASES: i64 = 100_000;
/// The status of a producer whose last check connected.
pub(crate) const CONNECTED: &str = "ProducerConnected";

/// Options of the dynamic-secret operations Coffer does not implement.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "producer-encryption-key-name",
        "items are sealed with Coffer's own data key",
    ),
    (
        "producer-encryption-key",
        "items are sealed with Coffer's own data key",
    ),
    (
        "secure-access-delay",
        "secure remote access is an Akeyless SaaS feature",
    ),
    ("db-server-name", "the server name is the host"),
];

/// Field names of one database type's operations (the SDKs' spelling).
struct Fields {
    host: &'static str,
    port: &'static str,
    user: &'static str,
    password: &'static str,
    db_name: &'static str,
    creation: &'static str,
    revocation: &'static str,
}

const MYSQL: Fields = Fields {
    host: "mysql-host",
    port: "mysql-port",
    user: "mysql-username",
    password: "mysql-password",
    db_name: "mysql-dbname",
    creation: "mysql-screation-statements",
    revocation: "mysql-revocation-statements",
};

const POSTGRES: Fields = Fields {
    host: "postgresql-host",
    port: "postgresql-port",
    user: "postgresql-username",
    password: "postgresql-password",
    db_name: "postgresql-db-name",
    creation: "creation-statements",
    revocation: "revocation-statement",
};

fn fields(kind: DbKind) -> &'static Fields {
    match kind {
        DbKind::MySql => &MYSQL,
        DbKind::Postgres => &POSTGRES,
    }
}

/// The SDK defaults of the inline host and port (the Python SDK sends them
/// on every call): ignored when a target is named.
const SDK_DEFAULT_HOST: &str = "127.0.0.1";

/// What a dynamic secret does, without secrets (the inline connection's
/// password is the item's sealed value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct DynamicSettings {
    pub db_type: String,
    /// Either a target, or an inline connection.
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub conn: Option<ConnSettings>,
    /// Statement templates as given ("" = Coffer's defaults).
    #[serde(default)]
    pub creation: String,
    #[serde(default)]
    pub revocation: String,
    pub user_ttl: String,
    pub user_ttl_secs: u64,
    pub password_length: usize,
    pub password_rules: PasswordRules,
    #[serde(default)]
    pub username_template: String,
    pub max_leases: i64,
    /// Azure app-secret producers (`db_type` "azure"): the application.
    #[serde(default)]
    pub azure: Option<AzureApp>,
}

impl DynamicSettings {
    pub(crate) fn kind(&self) -> Result<DbKind, ApiError> {
        self.db_type
            .parse()
            .map_err(|_| ApiError::internal(format!("stored db type {:?}", self.db_type)))
    }
    pub(crate) fn creation(&self) -> Result<Statements, ApiError> {
        let kind = self.kind()?;
        if self.creation.is_empty() {
            Ok(Statements::default_creation(kind))
        } else {
            Ok(Statements::parse(kind, &self.creation)?)
        }
    }
    pub(crate) fn revocation(&self) -> Result<Option<Statements>, ApiError> {
        if self.revocation.is_empty() {
            Ok(None)
        } else {
            Ok(Some(Statements::parse(self.kind()?, &self.revocation)?))
        }
    }
}

/// The sealed part of a dynamic secret.
#[derive(Serialize, Deserialize)]
struct SecretPart {
    #[serde(default)]
    password: String,
}

impl Drop for SecretPart {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.password);
    }
}

/// A "true"/"false" string option of the password rules.
fn flag(body: &Body, key: &str, default: bool) -> Result<bool, ApiError> {
    body.bool_or(key, default)
}

pub(crate) fn password_rules(
    body: &Body,
    prev: Option<PasswordRules>,
) -> Result<PasswordRules, ApiError> {
    let d = prev.unwrap_or_default();
    Ok(PasswordRules {
        upper: flag(body, "use-capital-letters", d.upper)?,
        lower: flag(body, "use-lower-letters", d.lower)?,
        digit: flag(body, "use-numbers", d.digit)?,
        special: flag(body, "use-special-characters", d.special)?,
    })
}

pub(crate) fn password_length(body: &Body, prev: Option<usize>) -> Result<usize, ApiError> {
    match body.opt_i64("password-length")? {
        None => Ok(prev.unwrap_or(dbsql::password_len(None)?)),
        Some(n) => Ok(dbsql::password_len(Some(n))?),
    }
}

/// A fresh password from the settings.
pub(crate) fn new_password(
    len: usize,
    rules: PasswordRules,
) -> Result<Zeroizing<String>, ApiError> {
    let mut bytes = Zeroizing::new(vec![0u8; len * 4 + 64]);
    coffer_crypto::fill_random(&mut bytes)?;
    Ok(dbsql::password_from_bytes(&bytes, len, rules))
}

fn random_suffix() -> Result<String, ApiError> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 10];
    coffer_crypto::fill_random(&mut bytes)?;
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect())
}

/// PostgreSQL's `VALID UNTIL` / a readable expiry for `{{expiration}}`.
fn expiration_text(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}+00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Settings and sealed secret from a create/update body.
fn settings_from_body(
    body: &Body,
    kind: DbKind,
    prev: Option<(&DynamicSettings, Zeroizing<String>)>,
) -> Result<(DynamicSettings, Zeroizing<String>), ApiError> {
    refuse_unsupported(body, super::SAAS_ONLY)?;
    refuse_unsupported(body, UNSUPPORTED)?;
    let f = fields(kind);
    let p = prev.as_ref().map(|(s, _)| *s);
    let target = body
        .opt_str("target-name")?
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let inline_given = [f.user, f.password, f.db_name].iter().any(|k| {
        body.opt_str(k)
            .ok()
            .flatten()
            .is_some_and(|v| !v.is_empty())
    }) || body
        .opt_str(f.host)?
        .is_some_and(|h| !h.is_empty() && h != SDK_DEFAULT_HOST)
        || body.opt_i64(f.port)?.is_some_and(|port| {
            port != i64::from(match kind {
                DbKind::MySql => 3306u16,
                DbKind::Postgres => 5432,
            })
        });
    let (target, conn, secret) = match target {
        Some(t) => {
            if inline_given {
                return Err(ApiError::bad(format!(
                    "give either target-name or an inline connection ({}, {}, ...), not both",
                    f.host, f.user
                )));
            }
            let t = coffer_core::name::normalize_name(&t)?;
            (Some(t), None, Zeroizing::new(String::new()))
        }
        None if !inline_given && p.is_some() => {
            let p = p.ok_or_else(|| ApiError::internal("unreachable"))?;
            let secret = prev.map(|(_, s)| s).unwrap_or_default();
            (p.target.clone(), p.conn.clone(), secret)
        }
        None => {
            let prev_conn = p.and_then(|p| p.conn.as_ref());
            let text = |key: &str, old: Option<&str>| -> Result<Option<String>, ApiError> {
                Ok(body
                    .opt_str(key)?
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| s.trim().to_owned())
                    .or_else(|| old.map(str::to_owned)))
            };
            let host = text(f.host, prev_conn.map(|c| c.host.as_str()))?
                .unwrap_or_else(|| SDK_DEFAULT_HOST.to_owned());
            check_host(f.host, &host)?;
            let port = port_param(
                body,
                f.port,
                prev_conn.map_or(
                    match kind {
                        DbKind::MySql => 3306,
                        DbKind::Postgres => 5432,
                    },
                    |c| c.port,
                ),
            )?;
            let user = text(f.user, prev_conn.map(|c| c.user.as_str()))?.ok_or_else(|| {
                ApiError::bad(format!(
                    "give target-name, or the admin connection ({} and {})",
                    f.user, f.password
                ))
            })?;
            check_db_word(f.user, &user)?;
            let db_name =
                text(f.db_name, prev_conn.map(|c| c.db_name.as_str()))?.unwrap_or_default();
            check_db_word(f.db_name, &db_name)?;
            let ssl = body.bool_or("ssl", prev_conn.is_some_and(|c| c.ssl))?;
            let cert = match super::targets::pem_param(body, "ssl-certificate")? {
                Some(c) => c,
                None => super::targets::pem_param(body, "db-server-certificates")?
                    .or_else(|| prev_conn.map(|c| c.ssl_certificate.clone()))
                    .unwrap_or_default(),
            };
            if !cert.is_empty() && !ssl {
                return Err(ApiError::bad(
                    "ssl-certificate is only used with ssl=true: pass ssl=true to connect over TLS",
                ));
            }
            let pwd = match body.opt_str(f.password)? {
                Some(pw) if !pw.is_empty() => Zeroizing::new(pw),
                _ => prev.map(|(_, s)| s).unwrap_or_default(),
            };
            if pwd.len() > 1024 {
                return Err(ApiError::bad(format!(
                    "{} is longer than 1024 bytes",
                    f.password
                )));
            }
            // The stored password goes only where it went before.
            if let Some(pc) = prev_conn
                && (pc.host != host || pc.port != port || pc.user != user)
                && body.opt_str(f.password)?.is_none_or(|p| p.is_empty())
            {
                return Err(ApiError::bad(format!(
                    "{} is required when {}, {} or {} change (the stored password is not sent to a new server)",
                    f.password, f.host, f.port, f.user
                )));
            }
            (
                None,
                Some(ConnSettings {
                    db_type: kind.as_str().to_owned(),
                    host,
                    port,
                    user,
                    db_name,
                    ssl,
                    ssl_certificate: cert,
                }),
                pwd,
            )
        }
    };
    let creation = match body.opt_str(f.creation)?.filter(|s| !s.trim().is_empty()) {
        Some(c) => {
            Statements::parse(kind, &c)
                .map_err(|e| ApiError::bad(format!("{}: {e}", f.creation)))?;
            c
        }
        None => p.map(|p| p.creation.clone()).unwrap_or_default(),
    };
    let revocation = match body.opt_str(f.revocation)?.filter(|s| !s.trim().is_empty()) {
        Some(c) => {
            Statements::parse(kind, &c)
                .map_err(|e| ApiError::bad(format!("{}: {e}", f.revocation)))?;
            c
        }
        None => p.map(|p| p.revocation.clone()).unwrap_or_default(),
    };
    let user_ttl = body
        .opt_str("user-ttl")?
        .filter(|s| !s.trim().is_empty())
        .or_else(|| p.map(|p| p.user_ttl.clone()))
        .unwrap_or_else(|| "60m".to_owned());
    let ttl = dbsql::parse_ttl(&user_ttl).map_err(|e| ApiError::bad(format!("user-ttl: {e}")))?;
    let username_template = match body.opt_str("custom-username-template")? {
        Some(t) if !t.trim().is_empty() => {
            dbsql::username_from_template(kind, Some(&t), "item", "abcdefghij", 0)
                .map_err(|e| ApiError::bad(format!("custom-username-template: {e}")))?;
            t
        }
        _ => p.map(|p| p.username_template.clone()).unwrap_or_default(),
    };
    let max_leases = match body.opt_i64("max-leases")? {
        None => p.map_or(DEFAULT_MAX_LEASES, |p| p.max_leases),
        Some(n) if (1..=MAX_MAX_LEASES).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::bad(format!(
                "max-leases must be between 1 and {MAX_MAX_LEASES}"
            )));
        }
    };
    let settings = DynamicSettings {
        db_type: kind.as_str().to_owned(),
        target,
        conn,
        creation,
        revocation,
        user_ttl,
        user_ttl_secs: ttl.as_secs(),
        password_length: password_length(body, p.map(|p| p.password_length))?,
        password_rules: password_rules(body, p.map(|p| p.password_rules))?,
        username_template,
        max_leases,
        azure: None,
    };
    Ok((settings, secret))
}

fn secret_json(password: &str) -> Zeroizing<String> {
    Zeroizing::new(json!({"password": password}).to_string())
}

/// The producer row and parsed settings of a dynamic secret.
pub(crate) async fn load(
    state: &AppState,
    item: &Item,
) -> Result<(Producer, DynamicSettings), ApiError> {
    super::load_producer(state, item).await
}

/// The admin connection a dynamic secret uses now.
pub(crate) async fn connection(
    state: &AppState,
    item: &Item,
    s: &DynamicSettings,
) -> Result<DbConnSpec, ApiError> {
    if let Some(t) = &s.target {
        let (_, spec) = target_spec(state, t).await.map_err(|e| match e {
            ApiError::NotFound(m) => ApiError::Conflict(format!(
                "{m}: dynamic secret {:?} uses it; update its target-name",
                item.name
            )),
            other => other,
        })?;
        return Ok(spec);
    }
    let conn = s
        .conn
        .as_ref()
        .ok_or_else(|| ApiError::internal(format!("{} has no connection", item.name)))?;
    conn.spec(&sealed_secret(state, &item.name).await?)
}

/// The sealed part of a dynamic secret: an inline connection's admin
/// password, or an Azure producer's client secret.
pub(crate) async fn sealed_secret(
    state: &AppState,
    name: &str,
) -> Result<Zeroizing<String>, ApiError> {
    let (item, v) = state
        .store
        .get_item_value(name, None)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("item {name:?} not found")))?;
    state.keys.load_missing(&*state.store, v.key_id).await;
    let plain = open(state, &item, &v)?;
    let secret: SecretPart = serde_json::from_str(&plain)
        .map_err(|_| ApiError::internal("sealed producer secret is not JSON"))?;
    Ok(Zeroizing::new(secret.password.clone()))
}

/// A dynamic secret by name (404; 400 for another item type).
pub(crate) async fn find_dynamic(state: &AppState, name: &str) -> Result<Item, ApiError> {
    super::find_typed(state, name, ItemType::DynamicSecret).await
}

/// Check a producer: connect (the admin can create users) and, unless
/// skipped, a dry run that creates a user, logs in with it and drops it.
async fn check(
    state: &AppState,
    item_name: &str,
    s: &DynamicSettings,
    secret: &str,
    body: &Body,
) -> Result<(), ApiError> {
    let dry_run = !body.bool_or("skip-dry-run", false)?;
    let spec = match &s.target {
        Some(t) => target_spec(state, t).await?.1,
        None => s
            .conn
            .as_ref()
            .ok_or_else(|| ApiError::internal("no connection"))?
            .spec(secret)?,
    };
    let spec = &spec;
    state
        .db
        .check_admin(spec)
        .await
        .map_err(|e| settings_error("the admin connection does not work", e))?;
    if dry_run {
        let kind = s.kind()?;
        let name = dbsql::username_from_template(
            kind,
            Some(&s.username_template)
                .filter(|t| !t.is_empty())
                .map(String::as_str),
            item_name,
            &random_suffix()?,
            now_ms() / 1000,
        )?;
        let pwd = new_password(s.password_length, s.password_rules)?;
        let exp = expiration_text(now_ms() + 300_000);
        let vars = Vars {
            name: &name,
            password: &pwd,
            expiration: &exp,
        };
        state
            .db
            .dry_run(spec, &s.creation()?, s.revocation()?.as_ref(), &vars)
            .await
            .map_err(|e| settings_error("dry run failed (pass skip-dry-run=true to skip it)", e))?;
    }
    Ok(())
}

/// The `DSProducerDetails` view of a dynamic secret.
fn details(item: &Item, p: &Producer, s: &DynamicSettings, pwd: Option<&str>) -> Value {
    let conn = s.conn.as_ref();
    let (mc, mr, pc, pr) = match s.db_type.as_str() {
        "mysql" => (s.creation.as_str(), s.revocation.as_str(), "", ""),
        _ => ("", "", s.creation.as_str(), s.revocation.as_str()),
    };
    without_nulls(json!({
        "item_name": item.name,
        "item_id": item.id,
        "producer_type": s.db_type,
        "db_type": s.db_type,
        "db_host_name": conn.map(|c| c.host.clone()),
        "db_port": conn.map(|c| c.port.to_string()),
        "db_user_name": conn.map(|c| c.user.clone()),
        "db_pwd": pwd,
        "db_name": conn.map(|c| c.db_name.clone()),
        "ssl_connection_mode": conn.is_some_and(|c| c.ssl),
        "ssl_connection_certificate": conn.map(|c| c.ssl_certificate.clone()),
        "user_ttl": s.user_ttl,
        "tags": item.tags,
        "mysql_creation_statements": mc,
        "mysql_revocation_statements": mr,
        "postgres_creation_statements": pc,
        "postgres_revocation_statements": pr,
        "username_template": s.username_template,
        "password_length": s.password_length,
        "max_leases": s.max_leases,
        "item_targets_assoc": s.target.as_ref().map(|t| json!([{"target_name": t}])),
        "producer_status": p.status,
        "failure_message": if p.status == CONNECTED { "" } else { p.status.as_str() },
        "azure_tenant_id": s.azure.as_ref().map(|a| a.tenant_id.clone()),
        "azure_client_id": s.azure.as_ref().map(|a| a.client_id.clone()),
        "azure_app_object_id": s.azure.as_ref().map(|a| a.app_obj_id.clone()),
        "user_programmatic_access": s.azure.as_ref().map(|_| true),
    }))
}

/// `dynamic-secret-create-mysql` / `-postgresql` and the legacy
/// `gateway-create-producer-*`.
pub(super) async fn create(ctx: &mut Ctx, body: &Body, kind: DbKind) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::CREATE)?;
    let (s, secret) = settings_from_body(body, kind, None)?;
    if let Some(t) = &s.target {
        // Using a target's admin rights needs read on the target.
        require(ctx, RuleType::Target, t, Caps::READ)?;
    }
    let description = body.opt_str("description")?.unwrap_or_default();
    check_description(&description)?;
    let state = ctx.state.clone();
    super::items::refuse_pending_name(&state, &name).await?;
    if state.store.get_item(&name).await?.is_some() {
        return Err(ApiError::Conflict(format!("item {name:?} already exists")));
    }
    let now = now_ms();
    let item = Item {
        id: random_id()?,
        name: name.clone(),
        item_type: ItemType::DynamicSecret,
        sub_type: ItemSubType::Generic,
        format: SecretFormat::Json,
        description,
        tags: tags_param(body)?,
        max_versions: 1,
        last_version: 1,
        highest_version: 1,
        enabled: true,
        created_ms: now,
        modified_ms: now,
        deletion_ms: 0,
    };
    check(&state, &name, &s, &secret, body).await?;
    let p = insert_new(ctx, &item, &s, &secret).await?;
    let d = details(&item, &p, &s, None);
    Ok(if ctx.op.starts_with("gateway-") {
        json!({"producer_details": d})
    } else {
        json!({"dynamic_secret_details": d})
    })
}

/// `dynamic-secret-update-*`: replaces the settings given (the rest stay).
pub(super) async fn update(ctx: &mut Ctx, body: &Body, kind: DbKind) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::UPDATE)?;
    if let Some(n) = body.opt_str("new-name")?.filter(|n| !n.trim().is_empty())
        && coffer_core::name::normalize_name(&n)? != name
    {
        return Err(ApiError::bad(
            "new-name: renaming a dynamic secret is not supported; create a new one",
        ));
    }
    let state = ctx.state.clone();
    let item = find_dynamic(&state, &name).await?;
    let (p, old) = load(&state, &item).await?;
    if old.azure.is_some() {
        return Err(ApiError::bad(format!(
            "dynamic secret {name:?} is an Azure producer; use dynamic-secret-update-azure"
        )));
    }
    if old.kind()? != kind {
        return Err(ApiError::bad(format!(
            "dynamic secret {name:?} is a {} producer; use dynamic-secret-update-{}",
            old.db_type,
            if old.db_type == "mysql" {
                "mysql"
            } else {
                "postgresql"
            }
        )));
    }
    let old_secret = sealed_secret(&state, &name).await?;
    let (s, secret) = settings_from_body(body, kind, Some((&old, old_secret)))?;
    if let Some(t) = &s.target {
        require(ctx, RuleType::Target, t, Caps::READ)?;
    }
    let server = |s: &DynamicSettings| {
        (
            s.target.clone(),
            s.conn.as_ref().map(|c| (c.host.clone(), c.port)),
        )
    };
    if server(&s) != server(&old) {
        refuse_with_live_leases(&state, &item, "its database connection cannot change").await?;
    }
    let description = match body.opt_str("description")? {
        Some(d) if d != "default_metadata" => d,
        _ => item.description.clone(),
    };
    check_description(&description)?;
    let tags = tags_param(body)?;
    check(&state, &name, &s, &secret, body).await?;
    let new_item = Item {
        description,
        tags: if tags.is_empty() {
            item.tags.clone()
        } else {
            tags
        },
        modified_ms: now_ms(),
        ..item.clone()
    };
    let v = seal(
        &state,
        item.id,
        item.highest_version + 1,
        &secret_json(&secret),
    )?;
    let np = Producer {
        target_name: s.target.clone(),
        settings: serde_json::to_value(&s).map_err(ApiError::internal)?,
        status: CONNECTED.into(),
        ..p
    };
    state
        .store
        .update_producer(&new_item, Some(&v), &np, 1, ctx.audit())
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => ApiError::Conflict(format!(
                "dynamic secret {name:?} was updated concurrently; retry"
            )),
            other => other.into(),
        })?;
    let d = details(&new_item, &np, &s, None);
    Ok(if ctx.op.starts_with("gateway-") {
        json!({"producer_details": d})
    } else {
        json!({"dynamic_secret_details": d})
    })
}

/// `dynamic-secret-get` / `gateway-get-producer`.
pub(super) async fn get(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require_any(ctx, RuleType::Item, &name, Caps::READ.union(Caps::LIST))?;
    let state = ctx.state.clone();
    let item = find_dynamic(&state, &name).await?;
    let (p, s) = load(&state, &item).await?;
    // The inline admin password only to a caller who may change the item
    // (`read` is what using the dynamic secret takes).
    let pwd = if s.conn.is_some() && allowed(ctx.caller()?, RuleType::Item, &name, Caps::UPDATE) {
        Some(sealed_secret(&state, &name).await?)
    } else {
        None
    };
    Ok(details(&item, &p, &s, pwd.as_deref().map(String::as_str)))
}

/// `dynamic-secret-list` / `gateway-list-producers` (and, with
/// `rotated`, `rotated-secret-list`): every producer the caller may list.
pub(super) async fn list_producers(
    ctx: &mut Ctx,
    body: &Body,
    t: ItemType,
) -> Result<Value, ApiError> {
    let _ = body;
    let state = ctx.state.clone();
    let caller = ctx.caller()?;
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state.store.list_items("", after.as_deref(), 1000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.name.clone());
        for item in page.iter().filter(|i| i.item_type == t) {
            if !allowed(caller, RuleType::Item, &item.name, Caps::LIST) {
                continue;
            }
            let p = state.store.get_producer(item.id).await?;
            let (status, kind) = match &p {
                Some(p) => (
                    p.status.clone(),
                    p.settings
                        .get("db_type")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                ),
                None => (String::new(), String::new()),
            };
            let ok =
                status == CONNECTED || status.starts_with("Rotation") && !status.contains("Failed");
            out.push(json!({
                "id": item.id,
                "name": item.name,
                "type": kind,
                "active": ok,
                "init": true,
                "failure_message": if ok { "" } else { status.as_str() },
            }));
        }
        if page.len() < 1000 {
            break;
        }
    }
    Ok(json!({"producers": out, "producers_errors": {}}))
}

/// Refuse the per-request options Coffer does not implement.
fn refuse_value_options(body: &Body, s: &DynamicSettings) -> Result<(), ApiError> {
    refuse_unsupported(
        body,
        &[
            (
                "args",
                "dynamic secrets take no per-request arguments in Coffer",
            ),
            ("host", "gateway host selection does not apply to Coffer"),
            (
                "dbname",
                "the database name is part of the dynamic secret's settings",
            ),
        ],
    )?;
    if let Some(t) = body.opt_str("target")?.filter(|t| !t.trim().is_empty()) {
        let t = coffer_core::name::normalize_name(&t)?;
        if s.target.as_deref() != Some(t.as_str()) {
            return Err(ApiError::bad(format!(
                "target {t:?}: this dynamic secret uses {}",
                s.target
                    .as_deref()
                    .map_or("an inline connection".to_owned(), |t| format!(
                        "target {t:?}"
                    ))
            )));
        }
    }
    match body.opt_i64("timeout")? {
        None => Ok(()),
        Some(t) if (0..=300).contains(&t) => Ok(()),
        Some(_) => Err(ApiError::bad("timeout must be between 0 and 300 seconds")),
    }
}

/// `get-dynamic-secret-value` / `dynamic-secret-get-value`: create a
/// database user and return `{id, user, password, ttl_in_minutes}` (every
/// value a string).
pub(super) async fn get_value(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::READ)?;
    let state = ctx.state.clone();
    let item = find_dynamic(&state, &name).await?;
    let (_, s) = load(&state, &item).await?;
    refuse_value_options(body, &s)?;
    if let Some(app) = &s.azure {
        return azure_value(ctx, &item, &s, app).await;
    }
    let kind = s.kind()?;
    let spec = connection(&state, &item, &s).await?;
    let username = dbsql::username_from_template(
        kind,
        Some(&s.username_template)
            .filter(|t| !t.is_empty())
            .map(String::as_str),
        &name,
        &random_suffix()?,
        now_ms() / 1000,
    )?;
    let password = new_password(s.password_length, s.password_rules)?;
    let now = now_ms();
    let ttl_ms = i64::try_from(s.user_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
    let expires_ms = now + ttl_ms;
    let lease = new_lease(ctx, &item, &username, now, expires_ms)?;
    // Durable before the user exists: a crash from here on leaves a lease
    // the reaper revokes, never an unknown user.
    state
        .store
        .insert_lease(&lease, s.max_leases, ctx.audit())
        .await?;
    let exp = expiration_text(expires_ms);
    let vars = Vars {
        name: &username,
        password: &password,
        expiration: &exp,
    };
    let creation = s.creation()?;
    if let Err(e) = state.db.create_user(&spec, &creation, &vars).await {
        // Whatever part of the user exists goes now, not at expiry.
        let st = state.clone();
        let id = lease.id.clone();
        let rec = ctx.sub_record("lease-revoke", &name);
        tokio::spawn(async move {
            crate::leases::revoke_one(&st, &id, rec, "creation failed").await;
        });
        return Err(db_error("could not create the database user", e));
    }
    let minutes = (s.user_ttl_secs.div_ceil(60)).to_string();
    Ok(json!({
        "id": username,
        "user": username,
        "password": password.as_str(),
        "ttl_in_minutes": minutes,
    }))
}

/// The lease of credentials about to be issued to the caller (tied to
/// its session token when its auth method says so).
fn new_lease(
    ctx: &Ctx,
    item: &Item,
    id: &str,
    now: i64,
    expires_ms: i64,
) -> Result<Lease, ApiError> {
    let caller = ctx.caller()?;
    // Universal identity callers present their identity token itself, which
    // has no session-token row to outlive: their credentials are not tied.
    let tied = ctx
        .state
        .snapshot()
        .by_access_id
        .get(&caller.token.access_id)
        .is_some_and(|am| {
            crate::leases::tied_to_token(am)
                && am.kind != coffer_core::model::AuthMethodKind::UniversalIdentity
        });
    Ok(Lease {
        id: id.to_owned(),
        item_id: item.id,
        item_name: item.name.clone(),
        access_id: caller.token.access_id.clone(),
        identity: caller.token.identity.clone(),
        token_hash: (tied && !caller.token.token_hash.is_empty())
            .then(|| caller.token.token_hash.clone()),
        created_ms: now,
        expires_ms,
        state: LeaseState::Live,
        attempts: 0,
        next_attempt_ms: 0,
        last_error: String::new(),
        revoked_ms: 0,
    })
}

/// An Azure producer's value: a new client secret of the application,
/// `{"id", "secret": passwordCredential, "ttl_in_minutes"}` (seed 004's
/// `.secret.displayName` / `.secret.secretText`).
async fn azure_value(
    ctx: &mut Ctx,
    item: &Item,
    s: &DynamicSettings,
    app: &AzureApp,
) -> Result<Value, ApiError> {
    let state = ctx.state.clone();
    let client_secret = sealed_secret(&state, &item.name).await?;
    let id = dbsql::username_from_template(
        DbKind::Postgres,
        Some("coffer_{{item}}_{{random}}"),
        &item.name,
        &random_suffix()?,
        0,
    )?;
    let now = now_ms();
    let expires_ms =
        now + i64::try_from(s.user_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
    let lease = new_lease(ctx, item, &id, now, expires_ms)?;
    state
        .store
        .insert_lease(&lease, s.max_leases, ctx.audit())
        .await?;
    let end = crate::timefmt::rfc3339(expires_ms);
    match azure::add_secret(&state, app, &client_secret, &id, &end).await {
        Ok(cred) => Ok(json!({
            "id": id,
            "secret": cred,
            "ttl_in_minutes": s.user_ttl_secs.div_ceil(60).to_string(),
        })),
        Err(e) => {
            let st = state.clone();
            let rec = ctx.sub_record("lease-revoke", &item.name);
            tokio::spawn(async move {
                crate::leases::revoke_one(&st, &id, rec, "creation failed").await;
            });
            Err(e)
        }
    }
}

/// Options of `dynamic-secret-create-azure` Coffer does not implement.
const UNSUPPORTED_AZURE: &[(&str, &str)] = &[
    (
        "user-portal-access",
        "Coffer issues application client secrets only (user-programmatic-access)",
    ),
    (
        "user-principal-name",
        "Coffer issues application client secrets, not users",
    ),
    (
        "user-group-obj-id",
        "Coffer issues application client secrets, not users",
    ),
    (
        "user-role-template-id",
        "Coffer issues application client secrets, not users",
    ),
    (
        "fixed-user-only",
        "Coffer issues application client secrets, not users",
    ),
    (
        "fixed-user-claim-keyname",
        "Coffer issues application client secrets, not users",
    ),
    (
        "target-name",
        "Azure targets are not supported; give azure-tenant-id, azure-client-id and azure-client-secret",
    ),
    (
        "custom-username-template",
        "client secret names are Coffer's lease IDs",
    ),
    ("password-length", "Entra ID generates client secrets"),
];

/// `dynamic-secret-create-azure` / `dynamic-secret-update-azure` (and the
/// legacy `gateway-*-producer-azure`): client secrets of an Entra ID
/// application.
pub(super) async fn create_azure(
    ctx: &mut Ctx,
    body: &Body,
    update: bool,
) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(
        ctx,
        RuleType::Item,
        &name,
        if update { Caps::UPDATE } else { Caps::CREATE },
    )?;
    refuse_unsupported(body, super::SAAS_ONLY)?;
    refuse_unsupported(body, UNSUPPORTED)?;
    refuse_unsupported(body, UNSUPPORTED_AZURE)?;
    if !body.bool_or("user-programmatic-access", true)? {
        return Err(ApiError::bad(
            "user-programmatic-access=false (Azure users) is not supported: Coffer issues application client secrets",
        ));
    }
    let state = ctx.state.clone();
    let prev = if update {
        let item = find_dynamic(&state, &name).await?;
        let (p, s) = load(&state, &item).await?;
        let Some(app) = s.azure.clone() else {
            return Err(ApiError::bad(format!(
                "dynamic secret {name:?} is a {} producer, not an Azure one",
                s.db_type
            )));
        };
        Some((item, p, s, app, sealed_secret(&state, &name).await?))
    } else {
        super::items::refuse_pending_name(&state, &name).await?;
        if state.store.get_item(&name).await?.is_some() {
            return Err(ApiError::Conflict(format!("item {name:?} already exists")));
        }
        None
    };
    let text = |key: &str, old: Option<&str>| -> Result<String, ApiError> {
        body.opt_str(key)?
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .or_else(|| old.map(str::to_owned))
            .ok_or_else(|| ApiError::bad(format!("missing required parameter {key}")))
    };
    let old_app = prev.as_ref().map(|p| &p.3);
    let app = AzureApp::new(
        text("azure-tenant-id", old_app.map(|a| a.tenant_id.as_str()))?,
        text("azure-client-id", old_app.map(|a| a.client_id.as_str()))?,
        text("app-obj-id", old_app.map(|a| a.app_obj_id.as_str()))?,
    )?;
    if let Some(old) = old_app
        && *old != app
        && body
            .opt_str("azure-client-secret")?
            .is_none_or(|s| s.is_empty())
    {
        return Err(ApiError::bad(
            "azure-client-secret is required when azure-tenant-id, azure-client-id or app-obj-id change",
        ));
    }
    if let Some((item, _, _, old, _)) = &prev
        && *old != app
    {
        refuse_with_live_leases(&state, item, "its application cannot change").await?;
    }
    let secret = match body
        .opt_str("azure-client-secret")?
        .filter(|s| !s.is_empty())
    {
        Some(s) if s.len() <= 1024 => Zeroizing::new(s),
        Some(_) => {
            return Err(ApiError::bad(
                "azure-client-secret is longer than 1024 bytes",
            ));
        }
        None => match &prev {
            Some(p) => p.4.clone(),
            None => {
                return Err(ApiError::bad(
                    "missing required parameter azure-client-secret",
                ));
            }
        },
    };
    let old_s = prev.as_ref().map(|p| &p.2);
    let user_ttl = body
        .opt_str("user-ttl")?
        .filter(|s| !s.trim().is_empty())
        .or_else(|| old_s.map(|s| s.user_ttl.clone()))
        .unwrap_or_else(|| "60m".to_owned());
    let ttl = dbsql::parse_ttl(&user_ttl).map_err(|e| ApiError::bad(format!("user-ttl: {e}")))?;
    let max_leases = match body.opt_i64("max-leases")? {
        None => old_s.map_or(DEFAULT_MAX_LEASES, |s| s.max_leases),
        Some(n) if (1..=MAX_MAX_LEASES).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::bad(format!(
                "max-leases must be between 1 and {MAX_MAX_LEASES}"
            )));
        }
    };
    if !body.bool_or("skip-dry-run", false)? {
        azure::check(&state, &app, &secret)
            .await
            .map_err(|e| match e {
                ApiError::Upstream(m) => {
                    ApiError::bad(format!("the Azure settings do not work: {m}"))
                }
                other => other,
            })?;
    }
    let s = DynamicSettings {
        db_type: "azure".into(),
        target: None,
        conn: None,
        creation: String::new(),
        revocation: String::new(),
        user_ttl,
        user_ttl_secs: ttl.as_secs(),
        password_length: 0,
        password_rules: PasswordRules::default(),
        username_template: String::new(),
        max_leases,
        azure: Some(app),
    };
    let description = match body.opt_str("description")? {
        Some(d) if d != "default_metadata" => d,
        _ => prev
            .as_ref()
            .map(|p| p.0.description.clone())
            .unwrap_or_default(),
    };
    check_description(&description)?;
    let tags = tags_param(body)?;
    let now = now_ms();
    match prev {
        Some((item, p, _, _, _)) => {
            let new_item = Item {
                description,
                tags: if tags.is_empty() {
                    item.tags.clone()
                } else {
                    tags
                },
                modified_ms: now,
                ..item.clone()
            };
            let v = seal(
                &state,
                item.id,
                item.highest_version + 1,
                &secret_json(&secret),
            )?;
            let np = Producer {
                settings: serde_json::to_value(&s).map_err(ApiError::internal)?,
                status: CONNECTED.into(),
                ..p
            };
            state
                .store
                .update_producer(&new_item, Some(&v), &np, 1, ctx.audit())
                .await?;
            Ok(json!({"dynamic_secret_details": details(&new_item, &np, &s, None)}))
        }
        None => {
            let item = Item {
                id: random_id()?,
                name: name.clone(),
                item_type: ItemType::DynamicSecret,
                sub_type: ItemSubType::Generic,
                format: SecretFormat::Json,
                description,
                tags,
                max_versions: 1,
                last_version: 1,
                highest_version: 1,
                enabled: true,
                created_ms: now,
                modified_ms: now,
                deletion_ms: 0,
            };
            let p = insert_new(ctx, &item, &s, &secret).await?;
            let d = details(&item, &p, &s, None);
            Ok(if ctx.op.starts_with("gateway-") {
                json!({"producer_details": d})
            } else {
                json!({"dynamic_secret_details": d})
            })
        }
    }
}

/// Refuse a change while the item has live credentials (they were created
/// on the current server, which their revocation needs).
pub(crate) async fn refuse_with_live_leases(
    state: &AppState,
    item: &Item,
    what: &str,
) -> Result<(), ApiError> {
    let live = state
        .store
        .list_leases(coffer_store::LeaseFilter {
            item_id: item.id,
            live_only: true,
            failing_only: false,
            limit: 1,
        })
        .await?;
    if live.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Conflict(format!(
            "{:?} has live credentials: {what} until they are revoked (dynamic-secret-tmp-creds-delete with revoke-all, or let them expire)",
            item.name
        )))
    }
}

/// Store a new dynamic secret: the item, its sealed secret, its settings.
async fn insert_new(
    ctx: &mut Ctx,
    item: &Item,
    s: &DynamicSettings,
    secret: &str,
) -> Result<Producer, ApiError> {
    let state = ctx.state.clone();
    let p = Producer {
        item_id: item.id,
        target_name: s.target.clone(),
        settings: serde_json::to_value(s).map_err(ApiError::internal)?,
        status: CONNECTED.into(),
        pending_version: None,
        last_rotation_ms: 0,
        next_rotation_ms: 0,
    };
    let first = seal(&state, item.id, 1, &secret_json(secret))?;
    state
        .store
        .create_producer(item, &first, &p, ctx.audit())
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("item {:?} already exists", item.name))
            }
            other => other.into(),
        })?;
    Ok(p)
}

/// `TmpUserData` of a lease.
fn tmp_user(l: &Lease, kind: &str) -> Value {
    without_nulls(json!({
        "id": l.id,
        "access_id": l.access_id,
        "creation_date": super::date_field(l.created_ms),
        "expiration_date": super::date_field(l.expires_ms),
        "dynamic_secret_type": kind,
        "host": "",
        "custom_ttl": (l.expires_ms - l.created_ms).max(0) / 60_000,
        "sub_claims": {},
        "identity": l.identity,
        "revocation_attempts": l.attempts,
        "last_error": (!l.last_error.is_empty()).then(|| l.last_error.clone()),
    }))
}

/// `dynamic-secret-tmp-creds-get`: the live credentials of a dynamic
/// secret, as a top-level JSON array.
pub(super) async fn tmp_creds_get(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::READ)?;
    let state = ctx.state.clone();
    let item = find_dynamic(&state, &name).await?;
    let (_, s) = load(&state, &item).await?;
    let leases = state
        .store
        .list_leases(coffer_store::LeaseFilter {
            item_id: item.id,
            live_only: true,
            failing_only: false,
            limit: 0,
        })
        .await?;
    Ok(Value::Array(
        leases.iter().map(|l| tmp_user(l, &s.db_type)).collect(),
    ))
}

/// Is the lease the caller's own (same access ID and identity)?
fn own(ctx: &Ctx, l: &Lease) -> Result<bool, ApiError> {
    let c = ctx.caller()?;
    Ok(c.token.access_id == l.access_id && c.token.identity == l.identity)
}

/// A live lease of the item, by `tmp-creds-id`.
async fn lease_param(state: &AppState, body: &Body, item: &Item) -> Result<Lease, ApiError> {
    let id = body.req_str("tmp-creds-id")?;
    match state.store.get_lease(id.trim()).await? {
        Some(l) if l.item_id == item.id && l.state == LeaseState::Live => Ok(l),
        _ => Err(ApiError::NotFound(format!(
            "temporary credentials {:?} of {:?} not found (or already revoked)",
            coffer_core::name::truncate_for_message(&id),
            item.name
        ))),
    }
}

/// `dynamic-secret-tmp-creds-delete`: revoke one lease (`tmp-creds-id`)
/// or all (`revoke-all`), now. Another identity's leases need `delete`.
pub(super) async fn tmp_creds_delete(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::READ)?;
    refuse_unsupported(
        body,
        &[
            ("soft-delete", "Coffer always drops the database user"),
            ("host", "gateway host selection does not apply to Coffer"),
        ],
    )?;
    let state = ctx.state.clone();
    let item = find_dynamic(&state, &name).await?;
    let all = body.bool_or("revoke-all", false)?;
    let rec = ctx.sub_record("lease-revoke", &name);
    let (revoked, failed) = if all {
        require(ctx, RuleType::Item, &name, Caps::DELETE)?;
        crate::leases::revoke_scope(
            &state,
            coffer_store::LeaseScope::Item(item.id),
            &rec,
            "revoked on request",
        )
        .await?
    } else {
        let l = lease_param(&state, body, &item).await?;
        if !own(ctx, &l)? {
            require(ctx, RuleType::Item, &name, Caps::DELETE)?;
        }
        crate::leases::revoke_scope(
            &state,
            coffer_store::LeaseScope::One(&l.id),
            &rec,
            "revoked on request",
        )
        .await?
    };
    if let Some((id, err)) = failed.first() {
        return Err(ApiError::Upstream(format!(
            "{} of {} credentials could not be revoked yet (first: {id}: {err}); Coffer keeps retrying",
            failed.len(),
            failed.len() + revoked.len()
        )));
    }
    Ok(json!({"revoked": revoked}))
}

/// `dynamic-secret-tmp-creds-update`: a new TTL (minutes from now), at
/// most the dynamic secret's own `user-ttl`. Another identity's leases
/// need `update`.
pub(super) async fn tmp_creds_update(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::READ)?;
    let state = ctx.state.clone();
    let item = find_dynamic(&state, &name).await?;
    let (_, s) = load(&state, &item).await?;
    let l = lease_param(&state, body, &item).await?;
    if !own(ctx, &l)? {
        require(ctx, RuleType::Item, &name, Caps::UPDATE)?;
    }
    let minutes = body
        .opt_i64("new-ttl-min")?
        .ok_or_else(|| ApiError::bad("missing required parameter new-ttl-min"))?;
    let max_min = i64::try_from(s.user_ttl_secs.div_ceil(60)).unwrap_or(i64::MAX);
    if minutes < 1 || minutes > max_min {
        return Err(ApiError::bad(format!(
            "new-ttl-min must be between 1 and {max_min} (the dynamic secret's user-ttl {})",
            s.user_ttl
        )));
    }
    let now = now_ms();
    let expires = now + minutes * 60_000;
    if expires > l.expires_ms {
        // Lengthening credentials is more than using them.
        require(ctx, RuleType::Item, &name, Caps::UPDATE)?;
        if s.azure.is_some() {
            return Err(ApiError::bad(
                "an Azure client secret's end date cannot be moved: issue new credentials instead",
            ));
        }
        // The database's own expiry moves first (PostgreSQL VALID UNTIL),
        // so the lease never outlives a password that still works.
        let spec = connection(&state, &item, &s).await?;
        state
            .db
            .set_valid_until(&spec, &l.id, &expiration_text(expires))
            .await
            .map_err(|e| db_error("could not move the role's expiry", e))?;
    }
    if !state
        .store
        .set_lease_expiry(&l.id, expires, now, ctx.audit())
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "temporary credentials {:?} are being revoked (or were revoked meanwhile)",
            l.id
        )));
    }
    Ok(json!({"id": l.id, "expiration_date": super::date_field(expires)}))
}

/// Revoke every live lease of a dynamic secret before it is deleted;
/// refuse the deletion while some cannot be revoked.
pub(crate) async fn revoke_before_delete(ctx: &mut Ctx, item: &Item) -> Result<(), ApiError> {
    let state = ctx.state.clone();
    let rec = ctx.sub_record("lease-revoke", &item.name);
    let (_, failed) = crate::leases::revoke_scope(
        &state,
        coffer_store::LeaseScope::Item(item.id),
        &rec,
        "dynamic secret deleted",
    )
    .await?;
    if let Some((id, err)) = failed.first() {
        return Err(ApiError::Conflict(format!(
            "{} live credentials of {:?} could not be revoked (first: {id}: {err}); the dynamic secret is kept until they are",
            failed.len(),
            item.name
        )));
    }
    Ok(())
}

/// `dynamic-secret-delete` / `gateway-delete-producer`.
pub(super) async fn delete(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::DELETE)?;
    let state = ctx.state.clone();
    let item = find_dynamic(&state, &name).await?;
    revoke_before_delete(ctx, &item).await?;
    if !state
        .store
        .delete_producer_item(item.id, ctx.audit())
        .await?
    {
        return Err(ApiError::NotFound(format!("item {name:?} not found")));
    }
    state.items.remove(name.as_str());
    Ok(if ctx.op.starts_with("gateway-") {
        json!({"producer_name": name})
    } else {
        json!({"dynamic_secret_name": name})
    })
}

/// `lease-list` (Coffer's own): leases of every dynamic secret the caller
/// may read; `name` narrows to one, `failing` to leases whose revocation
/// failed, `all` includes revoked ones.
pub(super) async fn lease_list(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let state = ctx.state.clone();
    let item_id = match body.opt_str("name")?.filter(|n| !n.trim().is_empty()) {
        Some(n) => {
            let n = coffer_core::name::normalize_name(&n)?;
            ctx.set_object(n.clone());
            if !allowed(ctx.caller()?, RuleType::Item, &n, Caps::READ) {
                return Ok(json!({"leases": []}));
            }
            match state.store.get_item(&n).await? {
                Some(i) if i.item_type == ItemType::DynamicSecret => i.id,
                _ => return Ok(json!({"leases": []})),
            }
        }
        None => 0,
    };
    let limit = body.opt_i64("limit")?.unwrap_or(10_000);
    if !(1..=100_000).contains(&limit) {
        return Err(ApiError::bad("limit must be between 1 and 100000"));
    }
    let leases = state
        .store
        .list_leases(coffer_store::LeaseFilter {
            item_id,
            live_only: !body.bool_or("all", false)?,
            failing_only: body.bool_or("failing", false)?,
            limit,
        })
        .await?;
    let caller = ctx.caller()?;
    let out: Vec<Value> = leases
        .iter()
        .filter(|l| allowed(caller, RuleType::Item, &l.item_name, Caps::READ))
        .map(|l| {
            without_nulls(json!({
                "id": l.id,
                "item_name": l.item_name,
                "access_id": l.access_id,
                "identity": l.identity,
                "state": l.state.as_str(),
                "creation_date": super::date_field(l.created_ms),
                "expiration_date": super::date_field(l.expires_ms),
                "revocation_date": super::date_field(l.revoked_ms),
                "tied_to_token": l.token_hash.is_some(),
                "revocation_attempts": l.attempts,
                "last_error": (!l.last_error.is_empty()).then(|| l.last_error.clone()),
                "next_attempt_date": (l.attempts > 0).then(|| super::date_field(l.next_attempt_ms)),
            }))
        })
        .collect();
    Ok(json!({"leases": out}))
}
