//! Rotated secrets (items of type `ROTATED_SECRET`, rule type
//! `item-rule`): a database user's password that Coffer changes on a
//! schedule or on request. The value (`{username, password}`) is versioned
//! like a static secret's; `crate::rotation` changes it crash-safely.

use coffer_core::dbsql::{DbKind, PasswordRules};
use coffer_core::model::{Item, ItemSubType, ItemType, Producer, SecretFormat};
use coffer_core::policy::{Caps, RuleType};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::auth_methods::check_description;
use super::dynamic::{password_length, password_rules};
use super::items::{DEFAULT_MAX_VERSIONS, open, seal, tags_param};
use super::targets::{check_db_word, find_target, settings_error, settings_of, target_spec};
use super::{date_field, name_param, refuse_unsupported, require, without_nulls};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::{AppState, now_ms, random_id};
use crate::wire::Body;

pub(crate) const INITIAL: &str = "RotationInitialStatus";
pub(crate) const SUCCEEDED: &str = "RotationSucceeded";
/// Rotation hour when none is given (as Akeyless: 14:00 UTC).
const DEFAULT_ROTATION_HOUR: i64 = 14;

const UNSUPPORTED: &[(&str, &str)] = &[
    ("key", "items are sealed with Coffer's own data key"),
    ("lock-during-sra-session", "locking is not supported"),
    ("lock-on-read", "locking is not supported"),
    ("lock-ttl", "locking is not supported"),
    ("rotate-on-unlock", "locking is not supported"),
    (
        "rotate-after-disconnect",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "rotation-event-in",
        "rotation notifications are not supported yet",
    ),
    ("grace-rotation", "grace rotation is for AWS keys"),
    (
        "rotator-custom-cmd",
        "custom rotation commands are for SSH targets",
    ),
    ("same-password", "linked targets are not supported"),
    (
        "new-name",
        "renaming a rotated secret is not supported; create a new one",
    ),
    ("host", "linked targets are not supported"),
];

/// Which password a rotated secret changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Rotator {
    /// The target's own admin user.
    Target,
    /// `rotated-username`'s.
    Password,
}

/// Rotated-secret settings (no secret).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RotatedSettings {
    pub db_type: String,
    pub target: String,
    pub rotator: Rotator,
    /// Connect as the rotated user itself (`use-user-creds`) or as the
    /// target's admin (`use-target-creds`).
    pub use_user_creds: bool,
    pub username: String,
    pub auto_rotate: bool,
    pub interval_days: i64,
    pub rotation_hour: i64,
    pub password_length: usize,
    pub password_rules: PasswordRules,
    pub max_versions: i32,
}

/// The value of a rotated secret's version.
#[derive(Serialize, Deserialize)]
pub(crate) struct Creds {
    pub username: String,
    pub password: String,
}

impl Drop for Creds {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.password);
    }
}

impl Creds {
    pub(crate) fn to_json(&self) -> Zeroizing<String> {
        Zeroizing::new(json!({"username": self.username, "password": self.password}).to_string())
    }
    pub(crate) fn parse(text: &str) -> Result<Creds, ApiError> {
        serde_json::from_str(text)
            .map_err(|_| ApiError::internal("sealed rotated value is not JSON"))
    }
}

/// Next automatic rotation after `from_ms`: `interval` days later, at the
/// rotation hour (UTC).
pub(crate) fn next_rotation(s: &RotatedSettings, from_ms: i64) -> i64 {
    if !s.auto_rotate {
        return 0;
    }
    const DAY: i64 = 86_400_000;
    let day = (from_ms + s.interval_days * DAY).div_euclid(DAY) * DAY;
    day + s.rotation_hour * 3_600_000
}

fn interval_param(body: &Body, prev: Option<i64>) -> Result<i64, ApiError> {
    match body.opt_i64("rotation-interval")? {
        None => Ok(prev.unwrap_or(30)),
        Some(d) if (1..=365).contains(&d) => Ok(d),
        Some(_) => Err(ApiError::bad(
            "rotation-interval must be between 1 and 365 days",
        )),
    }
}

fn hour_param(body: &Body, prev: Option<i64>) -> Result<i64, ApiError> {
    match body.opt_i64("rotation-hour")? {
        None => Ok(prev.unwrap_or(DEFAULT_ROTATION_HOUR)),
        Some(h) if (0..=23).contains(&h) => Ok(h),
        Some(_) => Err(ApiError::bad(
            "rotation-hour must be an hour of the day, 0-23 (UTC)",
        )),
    }
}

fn creds_param(body: &Body, prev: Option<bool>) -> Result<bool, ApiError> {
    match body
        .opt_str("authentication-credentials")?
        .as_deref()
        .map(str::trim)
    {
        None | Some("") => Ok(prev.unwrap_or(true)),
        Some("use-user-creds" | "use-self-creds") => Ok(true),
        Some("use-target-creds") => Ok(false),
        Some(other) => Err(ApiError::bad(format!(
            "authentication-credentials {:?}: use use-user-creds or use-target-creds",
            coffer_core::name::truncate_for_message(other)
        ))),
    }
}

fn max_versions_param(body: &Body, prev: Option<i32>) -> Result<i32, ApiError> {
    match body.opt_i64("max-versions")? {
        None | Some(0) => Ok(prev.unwrap_or(DEFAULT_MAX_VERSIONS)),
        Some(n) if (1..=1000).contains(&n) => Ok(n as i32),
        Some(_) => Err(ApiError::bad("max-versions must be between 1 and 1000")),
    }
}

/// A rotated secret by name (404; 400 for another item type).
pub(crate) async fn find_rotated(state: &AppState, name: &str) -> Result<Item, ApiError> {
    super::find_typed(state, name, ItemType::RotatedSecret).await
}

pub(crate) async fn load(
    state: &AppState,
    item: &Item,
) -> Result<(Producer, RotatedSettings), ApiError> {
    super::load_producer(state, item).await
}

/// `rotated-secret-create-mysql` / `-postgresql`, and the legacy
/// `create-rotated-secret` (`kind` None: taken from the target).
pub(super) async fn create(
    ctx: &mut Ctx,
    body: &Body,
    kind: Option<DbKind>,
) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::CREATE)?;
    refuse_unsupported(body, super::SAAS_ONLY)?;
    refuse_unsupported(body, UNSUPPORTED)?;
    let target_name = coffer_core::name::normalize_name(&body.req_str("target-name")?)?;
    // Rotating through a target uses its admin rights.
    require(ctx, RuleType::Target, &target_name, Caps::READ)?;
    let state = ctx.state.clone();
    let target = find_target(&state, &target_name).await?;
    let tsettings = settings_of(&target)?;
    let tkind = tsettings.kind()?;
    if let Some(k) = kind
        && k != tkind
    {
        return Err(ApiError::bad(format!(
            "target {target_name:?} is a {} target; use rotated-secret-create-{}",
            tsettings.db_type,
            if tkind == DbKind::MySql {
                "mysql"
            } else {
                "postgresql"
            }
        )));
    }
    if let Some(p) = body
        .opt_str("ProviderType")?
        .or(body.opt_str("provider-type")?)
        && !p.trim().is_empty()
        && !matches!(p.trim(), "mysql" | "postgres" | "postgresql")
    {
        return Err(ApiError::bad(
            "ProviderType: Coffer rotates MySQL/MariaDB and PostgreSQL passwords",
        ));
    }
    let rotator = match body.req_str("rotator-type")?.trim() {
        "target" => Rotator::Target,
        "password" => Rotator::Password,
        other => {
            return Err(ApiError::bad(format!(
                "rotator-type {:?}: use target (the target's own password) or password (rotated-username's)",
                coffer_core::name::truncate_for_message(other)
            )));
        }
    };
    let (_, spec) = target_spec(&state, &target_name).await?;
    let (username, password) = match rotator {
        Rotator::Target => {
            refuse_unsupported(
                body,
                &[
                    (
                        "rotated-username",
                        "rotator-type target rotates the target's own user",
                    ),
                    (
                        "rotated-password",
                        "rotator-type target rotates the target's own user",
                    ),
                ],
            )?;
            // Taking over the target's password changes the target.
            require(ctx, RuleType::Target, &target_name, Caps::UPDATE)?;
            if let Some(other) = rotating_item(&target)
                && other != name
            {
                return Err(ApiError::Conflict(format!(
                    "target {target_name:?} is rotated by {other:?} already"
                )));
            }
            (
                spec.user.clone(),
                Zeroizing::new(secrecy::ExposeSecret::expose_secret(&spec.password).to_owned()),
            )
        }
        Rotator::Password => {
            let u = body.req_str("rotated-username")?.trim().to_owned();
            check_db_word("rotated-username", &u)?;
            if u == spec.user {
                return Err(ApiError::bad(
                    "rotated-username is the target's own user: use rotator-type target (which needs update on the target)",
                ));
            }
            let p = Zeroizing::new(body.opt_str("rotated-password")?.unwrap_or_default());
            if p.is_empty() {
                return Err(ApiError::bad(
                    "missing required parameter rotated-password (the user's current password)",
                ));
            }
            (u, p)
        }
    };
    let auto_rotate = body.bool_or("auto-rotate", false)?;
    let s = RotatedSettings {
        db_type: tkind.as_str().to_owned(),
        target: target_name.clone(),
        rotator,
        use_user_creds: creds_param(body, None)?,
        username: username.clone(),
        auto_rotate,
        interval_days: interval_param(body, None)?,
        rotation_hour: hour_param(body, None)?,
        password_length: password_length(body, None)?,
        password_rules: password_rules(body, None)?,
        max_versions: max_versions_param(body, None)?,
    };
    // The stored value must log in from the start.
    if !body.bool_or("skip-dry-run", false)? {
        state
            .db
            .login_check(&crate::rotation::login_spec(&spec), &username, &password)
            .await
            .map_err(|e| {
                settings_error(
                    &format!("user {username:?} cannot log in with the given password"),
                    e,
                )
            })?;
    }
    let description = body
        .opt_str("description")?
        .or(body.opt_str("metadata")?)
        .unwrap_or_default();
    check_description(&description)?;
    super::items::refuse_pending_name(&state, &name).await?;
    if state.store.get_item(&name).await?.is_some() {
        return Err(ApiError::Conflict(format!("item {name:?} already exists")));
    }
    let now = now_ms();
    let item = Item {
        id: random_id()?,
        name: name.clone(),
        item_type: ItemType::RotatedSecret,
        sub_type: ItemSubType::Generic,
        format: SecretFormat::Json,
        description,
        tags: tags_param(body)?,
        max_versions: s.max_versions,
        last_version: 1,
        highest_version: 1,
        enabled: true,
        created_ms: now,
        modified_ms: now,
        deletion_ms: 0,
    };
    let p = Producer {
        item_id: item.id,
        target_name: Some(target_name.clone()),
        settings: serde_json::to_value(&s).map_err(ApiError::internal)?,
        status: INITIAL.into(),
        pending_version: None,
        last_rotation_ms: 0,
        next_rotation_ms: next_rotation(&s, now),
    };
    let creds = Creds {
        username,
        password: password.to_string(),
    };
    let first = seal(&state, item.id, 1, &creds.to_json())?;
    if rotator == Rotator::Target {
        // The target's password becomes this item's current value: linked
        // first (refused if another item won the target meanwhile), undone
        // if the item cannot be created.
        let rec = ctx.sub_record("target-update-db", &target_name);
        crate::rotation::link_target(&state, &target_name, Some(&name), rec).await?;
    }
    let created = state
        .store
        .create_producer(&item, &first, &p, ctx.audit())
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("item {name:?} already exists"))
            }
            other => other.into(),
        });
    if let Err(e) = created {
        if rotator == Rotator::Target {
            let rec = ctx.sub_record("target-update-db", &target_name);
            if let Err(undo) = crate::rotation::link_target(&state, &target_name, None, rec).await {
                tracing::error!(target = %target_name, error = %undo, "cannot unlink a target from a rotated secret that was not created");
            }
        }
        return Err(e);
    }
    Ok(json!({"name": name}))
}

/// The rotated secret that owns a target's password, if any.
pub(crate) fn rotating_item(t: &coffer_core::model::Target) -> Option<String> {
    t.details
        .get("rotated_by")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// `rotated-secret-update-*` / `update-rotated-secret`: schedule, password
/// policy, description and tags.
pub(super) async fn update(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::UPDATE)?;
    refuse_unsupported(body, super::SAAS_ONLY)?;
    refuse_unsupported(body, UNSUPPORTED)?;
    refuse_unsupported(
        body,
        &[
            (
                "rotated-username",
                "the rotated user cannot change; create a new rotated secret",
            ),
            (
                "rotated-password",
                "set a new password by rotating (gateway-rotate-secret)",
            ),
            ("keep-prev-version", "use max-versions"),
        ],
    )?;
    let state = ctx.state.clone();
    let item = find_rotated(&state, &name).await?;
    let (p, old) = load(&state, &item).await?;
    let s = RotatedSettings {
        use_user_creds: creds_param(body, Some(old.use_user_creds))?,
        auto_rotate: body.bool_or("auto-rotate", old.auto_rotate)?,
        interval_days: interval_param(body, Some(old.interval_days))?,
        rotation_hour: hour_param(body, Some(old.rotation_hour))?,
        password_length: password_length(body, Some(old.password_length))?,
        password_rules: password_rules(body, Some(old.password_rules))?,
        max_versions: max_versions_param(body, Some(old.max_versions))?,
        ..old.clone()
    };
    let description = match body.opt_str("description")? {
        Some(d) if d != "default_metadata" => d,
        _ => item.description.clone(),
    };
    check_description(&description)?;
    let mut tags = item.tags.clone();
    tags.extend(body.list("add-tag")?);
    let rm = body.list("rm-tag")?;
    tags.retain(|t| !rm.contains(t));
    tags.sort();
    tags.dedup();
    let schedule_changed = s.auto_rotate != old.auto_rotate
        || s.interval_days != old.interval_days
        || s.rotation_hour != old.rotation_hour;
    // A changed schedule starts from now (enabling auto-rotate on an old
    // item does not rotate it at once).
    let np = Producer {
        settings: serde_json::to_value(&s).map_err(ApiError::internal)?,
        next_rotation_ms: if schedule_changed {
            next_rotation(&s, now_ms())
        } else {
            p.next_rotation_ms
        },
        ..p
    };
    let new_item = Item {
        description,
        tags,
        max_versions: s.max_versions,
        modified_ms: now_ms(),
        ..item
    };
    state
        .store
        .update_producer(&new_item, None, &np, 0, ctx.audit())
        .await?;
    Ok(json!({"name": name}))
}

/// `get-rotated-secret-value` (`names`, one string) and
/// `rotated-secret-get-value` (`name`): `{"value": {username, password}}`.
pub(super) async fn get_value(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let key = if body.get("names").is_some() {
        "names"
    } else {
        "name"
    };
    // `names` is one string; a one-element list (what a get-secret-value
    // habit sends) is taken too.
    let names = body.list(key)?;
    if names.len() > 1 {
        return Err(ApiError::bad(format!(
            "{key} names one rotated secret; call once per secret"
        )));
    }
    let name = name_param(ctx, body, key).or_else(|e| match names.first() {
        Some(n) => {
            let n = coffer_core::name::normalize_name(n)?;
            ctx.set_object(n.clone());
            Ok::<String, ApiError>(n)
        }
        None => Err(e),
    })?;
    require(ctx, RuleType::Item, &name, Caps::READ)?;
    refuse_unsupported(body, &[("host", "linked targets are not supported")])?;
    let state = ctx.state.clone();
    let item = find_rotated(&state, &name).await?;
    let version = match body.opt_i64("version")? {
        None | Some(0) => None,
        Some(v) if v > 0 && v <= i64::from(i32::MAX) => Some(v as i32),
        Some(_) => return Err(ApiError::bad("version must be a positive version number")),
    };
    if let Some(v) = version {
        let (p, _) = load(&state, &item).await?;
        if p.pending_version == Some(v) {
            return Err(ApiError::NotFound(format!(
                "version {v} of {name:?} is a rotation in progress, not yet confirmed"
            )));
        }
    }
    let (it, v) = state
        .store
        .get_item_value(&name, version)
        .await?
        .ok_or_else(|| match version {
            Some(v) => ApiError::NotFound(format!("version {v} of item {name:?} not found")),
            None => ApiError::NotFound(format!("item {name:?} not found")),
        })?;
    state.keys.load_missing(&*state.store, v.key_id).await;
    let plain = open(&state, &it, &v)?;
    let creds = Creds::parse(&plain)?;
    Ok(
        json!({"value": {"username": creds.username, "password": creds.password}, "version": v.version}),
    )
}

/// `gateway-rotate-secret`: rotate now.
pub(super) async fn rotate_now(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::UPDATE)?;
    refuse_unsupported(
        body,
        &[
            (
                "rotate-all-services",
                "services rotation is for Windows targets",
            ),
            (
                "RotateAllServicesBoolean",
                "services rotation is for Windows targets",
            ),
            (
                "rotateallservicesboolean",
                "services rotation is for Windows targets",
            ),
        ],
    )?;
    let state = ctx.state.clone();
    let item = find_rotated(&state, &name).await?;
    let rec = ctx.sub_record("rotate", &name);
    crate::rotation::rotate(&state, &item, rec).await?;
    Ok(json!({"name": name}))
}

/// `rotated-secret-delete` (and delete-item): the item goes; a target it
/// rotated keeps the current password.
pub(crate) async fn before_delete(ctx: &mut Ctx, item: &Item) -> Result<(), ApiError> {
    let state = ctx.state.clone();
    // Not in the middle of a rotation (the claim is kept: the item goes).
    let now = now_ms();
    if !state
        .store
        .claim_producer(item.id, &state.request_prefix, now, now + 120_000)
        .await?
    {
        return Err(ApiError::Conflict(format!(
            "{:?} is being rotated right now: retry in a minute",
            item.name
        )));
    }
    let (_, s) = load(&state, item).await?;
    if s.rotator == Rotator::Target {
        let rec = ctx.sub_record("target-update-db", &s.target);
        crate::rotation::link_target(&state, &s.target, None, rec).await?;
    }
    Ok(())
}

pub(super) async fn delete(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::DELETE)?;
    let state = ctx.state.clone();
    let item = find_rotated(&state, &name).await?;
    before_delete(ctx, &item).await?;
    if !state.store.delete_item(item.id, ctx.audit()).await? {
        return Err(ApiError::NotFound(format!("item {name:?} not found")));
    }
    state.items.remove(name.as_str());
    Ok(json!({"item_id": item.id, "item_name": name, "version_deleted": -1}))
}

/// The `describe-item` fields of a rotated secret.
pub(crate) fn describe(v: &mut Value, p: &Producer, s: &RotatedSettings) {
    let ok = p.status == SUCCEEDED || p.status == INITIAL;
    v["auto_rotate"] = json!(s.auto_rotate);
    v["rotation_interval"] = json!(s.interval_days);
    v["item_targets_assoc"] = json!([{"target_name": s.target, "target_type": s.db_type}]);
    v["last_rotation_date"] = date_field(p.last_rotation_ms);
    v["next_rotation_date"] = date_field(p.next_rotation_ms);
    v["item_general_info"] = without_nulls(json!({
        "rotated_secret_details": without_nulls(json!({
            "rotator_type": match s.rotator { Rotator::Target => "target", Rotator::Password => "password" },
            "rotator_creds_type": if s.use_user_creds { "use-user-creds" } else { "use-target-creds" },
            "rotator_status": if ok { p.status.as_str() } else { "RotationFailed" },
            "last_rotation_error": (!ok).then(|| p.status.clone()),
            "rotation_hour": s.rotation_hour,
            "rotation_statement": "",
            "number_of_versions_to_save": s.max_versions,
            "max_versions": s.max_versions,
            "pending_version": p.pending_version,
        })),
    }));
    if let Value::Object(m) = v {
        m.retain(|_, x| !x.is_null());
    }
}
