//! Static secrets (rule type `item-rule`): generic values (text, JSON,
//! key-value) and password-manager entries (`type: password`: username,
//! password, URLs and custom fields, stored and returned as one JSON
//! object). Listing is in `list.rs`.

use std::sync::Arc;

use coffer_core::model::{Item, ItemSubType, ItemType, SealedVersion, SecretFormat, VersionInfo};
use coffer_core::name::normalize_name;
use coffer_core::policy::{Caps, RuleType};
use serde_json::{Map, Value, json};
use zeroize::Zeroizing;

use super::auth_methods::check_description;
use super::{date_field, name_param, require, require_any, without_nulls};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::{AppState, now_ms, random_id};
use crate::wire::Body;

/// Versions kept when `max-versions` is not set.
pub(super) const DEFAULT_MAX_VERSIONS: i32 = 30;
const MAX_MAX_VERSIONS: i64 = 1000;
/// Names per get-secret-value call.
const MAX_NAMES: usize = 100;
/// Fields of a password entry (`type: password`).
const PASSWORD_FIELDS: [&str; 4] = ["username", "password", "inject-url", "custom-field"];

/// The secret value from the body, validated against its format.
fn value_param(
    ctx: &Ctx,
    body: &Body,
    format: SecretFormat,
) -> Result<Zeroizing<String>, ApiError> {
    let value = match body.get("value") {
        None => return Err(ApiError::bad("missing required parameter value")),
        Some(Value::String(s)) => Zeroizing::new(s.clone()),
        // A JSON object sent as such (JSON/key-value secrets).
        Some(v @ Value::Object(_)) if format != SecretFormat::Text => Zeroizing::new(v.to_string()),
        Some(Value::Number(_) | Value::Bool(_)) => {
            Zeroizing::new(body.get("value").map(Value::to_string).unwrap_or_default())
        }
        Some(_) => return Err(ApiError::bad("value must be a string")),
    };
    let max = ctx.state.config.max_value_bytes;
    if value.len() > max {
        return Err(ApiError::TooLarge(format!(
            "secret value is larger than {max} bytes"
        )));
    }
    match format {
        SecretFormat::Text => {}
        SecretFormat::Json => {
            let parsed: Result<Value, _> = serde_json::from_str(&value);
            if !matches!(parsed, Ok(Value::Object(_))) {
                return Err(ApiError::bad(
                    "format json needs a value that is a JSON object, e.g. {\"user\":\"app\"}",
                ));
            }
        }
        SecretFormat::KeyValue => {
            let parsed: Result<Value, _> = serde_json::from_str(&value);
            let ok = matches!(&parsed, Ok(Value::Object(m)) if m.values().all(Value::is_string));
            if !ok {
                return Err(ApiError::bad(
                    "format key-value needs a JSON object whose values are strings, e.g. {\"user\":\"app\"}",
                ));
            }
        }
    }
    Ok(value)
}

/// Refuse the password-entry fields on a generic secret (they would be
/// dropped silently otherwise).
fn refuse_password_fields(body: &Body) -> Result<(), ApiError> {
    if let Some(f) = PASSWORD_FIELDS.iter().find(|f| body.get(f).is_some()) {
        return Err(ApiError::bad(format!(
            "{f} belongs to password secrets: pass type password (or put the data in value)"
        )));
    }
    Ok(())
}

/// The JSON value of a password entry: the body's `username`, `password`,
/// `inject-url` (list) and `custom-field` (string map) over `previous`
/// (the current entry, when updating). `value`, which the SDKs require
/// even for password secrets, may be empty, a JSON object with those
/// fields, or the password itself; it never silently loses data.
fn password_value(
    ctx: &Ctx,
    body: &Body,
    previous: Option<&str>,
) -> Result<Zeroizing<String>, ApiError> {
    let mut entry: Map<String, Value> = match previous {
        Some(p) => match serde_json::from_str(p) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        },
        None => Map::new(),
    };
    match body.get("value") {
        None => {}
        Some(Value::String(v)) if v.is_empty() => {}
        Some(Value::Object(m)) => entry.extend(m.clone()),
        Some(Value::String(v)) => match serde_json::from_str::<Value>(v) {
            Ok(Value::Object(m)) => entry.extend(m),
            _ => {
                if body
                    .opt_str("password")?
                    .is_some_and(|p| p.as_str() != v.as_str())
                {
                    return Err(ApiError::bad(
                        "a password secret got both value and a different password: pass the password once (password, or value)",
                    ));
                }
                entry.insert("password".into(), Value::String(v.clone()));
            }
        },
        Some(_) => return Err(ApiError::bad("value must be a string")),
    }
    if let Some(u) = body.opt_str("username")? {
        entry.insert("username".into(), Value::String(u));
    }
    if let Some(p) = body.opt_str("password")? {
        entry.insert("password".into(), Value::String(p));
    }
    let urls = body.list("inject-url")?;
    if !urls.is_empty() {
        entry.insert("inject_url".into(), json!(urls));
    }
    match body.get("custom-field") {
        None => {}
        Some(Value::Object(m)) if m.values().all(Value::is_string) => {
            entry.insert("custom_field".into(), Value::Object(m.clone()));
        }
        Some(_) => {
            return Err(ApiError::bad(
                "custom-field must be an object of string values, e.g. {\"pin\":\"1234\"}",
            ));
        }
    }
    if entry
        .get("password")
        .is_none_or(|p| p.as_str().is_none_or(|p| p.is_empty()))
    {
        return Err(ApiError::bad(
            "missing required parameter password (type password)",
        ));
    }
    let value = Zeroizing::new(Value::Object(entry).to_string());
    let max = ctx.state.config.max_value_bytes;
    if value.len() > max {
        return Err(ApiError::TooLarge(format!(
            "secret value is larger than {max} bytes"
        )));
    }
    Ok(value)
}

/// `accessibility` other than "regular" (personal password manager items)
/// is an Akeyless SaaS feature Coffer does not have.
fn refuse_personal(body: &Body) -> Result<(), ApiError> {
    match body.opt_str("accessibility")?.as_deref().map(str::trim) {
        None | Some("" | "regular") => Ok(()),
        Some(_) => Err(ApiError::bad(
            "accessibility must be regular: personal items are not supported by Coffer",
        )),
    }
}

pub(crate) fn seal(
    state: &AppState,
    item_id: i64,
    version: i32,
    value: &str,
) -> Result<SealedVersion, ApiError> {
    let key_id = state.keys.active_key_id();
    let sealed = state.keys.data_key(key_id)?.seal(
        value.as_bytes(),
        &coffer_crypto::value_aad(item_id, version),
    )?;
    Ok(SealedVersion {
        version,
        key_id,
        sealed,
        created_ms: now_ms(),
    })
}

pub(crate) fn open(
    state: &AppState,
    item: &Item,
    v: &SealedVersion,
) -> Result<Zeroizing<String>, ApiError> {
    let plain = state
        .keys
        .data_key(v.key_id)?
        .open(&v.sealed, &coffer_crypto::value_aad(item.id, v.version))
        .map_err(|_| {
            ApiError::internal(format!(
                "version {} of item {} failed authentication: the row was modified or moved",
                v.version, item.name
            ))
        })?;
    let text = String::from_utf8(plain.to_vec())
        .map_err(|_| ApiError::internal("stored value is not UTF-8"))?;
    Ok(Zeroizing::new(text))
}

/// The plain value of an item's version (`None`: the current one).
pub(crate) async fn open_item_value(
    state: &AppState,
    name: &str,
    version: Option<i32>,
) -> Result<Zeroizing<String>, ApiError> {
    let (item, v) = state
        .store
        .get_item_value(name, version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("item {name:?} not found")))?;
    state.keys.load_missing(&*state.store, v.key_id).await;
    open(state, &item, &v)
}

pub(super) fn tags_param(body: &Body) -> Result<Vec<String>, ApiError> {
    let mut tags = body.list("tags")?;
    tags.extend(body.list("tag")?);
    if tags.len() > 50 || tags.iter().any(|t| t.len() > 128) {
        return Err(ApiError::bad("at most 50 tags of up to 128 bytes each"));
    }
    tags.sort();
    tags.dedup();
    Ok(tags)
}

pub(super) async fn create_secret(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::CREATE)?;
    refuse_personal(body)?;
    let sub_type: ItemSubType = body.opt_str("type")?.unwrap_or_default().parse()?;
    let (format, value) = match sub_type {
        ItemSubType::Generic => {
            refuse_password_fields(body)?;
            let format: SecretFormat = body.opt_str("format")?.unwrap_or_default().parse()?;
            (format, value_param(ctx, body, format)?)
        }
        // `format` is for generic secrets only (the SDKs always send "text").
        ItemSubType::Password => (SecretFormat::Json, password_value(ctx, body, None)?),
    };
    let description = body
        .opt_str("description")?
        .or(body.opt_str("metadata")?)
        .unwrap_or_default();
    check_description(&description)?;
    let max_versions = body.opt_i64("max-versions")?.unwrap_or(0);
    if !(0..=MAX_MAX_VERSIONS).contains(&max_versions) {
        return Err(ApiError::bad(format!(
            "max-versions must be between 1 and {MAX_MAX_VERSIONS} (0 = default {DEFAULT_MAX_VERSIONS})"
        )));
    }
    let now = now_ms();
    let item = Item {
        id: random_id()?,
        name: name.clone(),
        item_type: ItemType::StaticSecret,
        sub_type,
        format,
        description,
        tags: tags_param(body)?,
        max_versions: max_versions as i32,
        last_version: 1,
        highest_version: 1,
        enabled: true,
        created_ms: now,
        modified_ms: now,
    };
    let state = ctx.state.clone();
    let first = seal(&state, item.id, 1, &value)?;
    let created = state.store.create_item(&item, &first, ctx.audit()).await;
    state.items.remove(name.as_str());
    created.map_err(|e| match e {
        coffer_store::StoreError::Conflict(_) => ApiError::Conflict(format!(
            "item {name:?} already exists: use update-secret-val to add a version"
        )),
        other => other.into(),
    })?;
    Ok(json!({"name": name}))
}

pub(crate) async fn find_item(state: &AppState, name: &str) -> Result<Item, ApiError> {
    state
        .store
        .get_item(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("item {name:?} not found")))
}

pub(super) async fn update_secret_val(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::UPDATE)?;
    refuse_personal(body)?;
    let state = ctx.state.clone();
    let item = find_item(&state, &name).await?;
    if item.item_type != ItemType::StaticSecret {
        return Err(wrong_type(&item));
    }
    let value = match item.sub_type {
        ItemSubType::Password => {
            // Fields not given keep their current values.
            let current = state
                .store
                .get_item_value(&name, None)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("item {name:?} not found")))?;
            state
                .keys
                .load_missing(&*state.store, current.1.key_id)
                .await;
            let previous = open(&state, &current.0, &current.1)?;
            password_value(ctx, body, Some(&previous))?
        }
        ItemSubType::Generic => {
            refuse_password_fields(body)?;
            generic_update_value(ctx, body, &item)?
        }
    };
    let keep = if body.bool_or("keep-prev-version", true)? {
        if item.max_versions > 0 {
            item.max_versions
        } else {
            DEFAULT_MAX_VERSIONS
        }
    } else {
        1
    };
    // Version numbers are never reused, even after the newest was deleted.
    let v = seal(&state, item.id, item.highest_version + 1, &value)?;
    let added = state
        .store
        .add_version(item.id, item.highest_version, &v, keep, ctx.audit())
        .await;
    state.items.remove(name.as_str());
    added.map_err(|e| match e {
        coffer_store::StoreError::Conflict(_) => {
            ApiError::Conflict(format!("item {name:?} was updated concurrently; retry"))
        }
        other => other.into(),
    })?;
    Ok(json!({"name": name}))
}

/// The new value of a generic secret, in its (unchangeable) format.
fn generic_update_value(
    ctx: &Ctx,
    body: &Body,
    item: &Item,
) -> Result<Zeroizing<String>, ApiError> {
    let name = &item.name;
    if let Some(f) = body.opt_str("format")?.filter(|f| !f.is_empty()) {
        let f: SecretFormat = f.parse()?;
        // The Python SDK sends its model default `format: "text"` with
        // every update; like the other SDK defaults it means "unchanged"
        // (the value is still checked against the item's own format).
        // Any other format than the item's is a mistake worth refusing.
        if f != item.format && f != SecretFormat::Text {
            return Err(ApiError::bad(format!(
                "item {name:?} has format {}; the format of an existing secret cannot change",
                item.format.as_str()
            )));
        }
    }
    value_param(ctx, body, item.format)
}

pub(super) async fn get_secret_value(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let raw_names = body.list("names")?;
    let raw_names = if raw_names.is_empty() {
        body.list("name")?
    } else {
        raw_names
    };
    ctx.set_object(coffer_core::name::truncate_for_message(
        &raw_names.join(","),
    ));
    if raw_names.is_empty() {
        return Err(ApiError::bad("missing required parameter names"));
    }
    if raw_names.len() > MAX_NAMES {
        return Err(ApiError::bad(format!(
            "at most {MAX_NAMES} names per request"
        )));
    }
    let version = match body.opt_i64("version")? {
        None | Some(0) => None,
        Some(v) if v > 0 && v <= i64::from(i32::MAX) => Some(v as i32),
        Some(_) => {
            return Err(ApiError::bad(
                "version must be a positive version number (omit it for the latest)",
            ));
        }
    };
    let mut names = Vec::with_capacity(raw_names.len());
    for raw in &raw_names {
        names.push(normalize_name(raw)?);
    }
    ctx.set_object(names.join(","));
    // Authorize everything before touching storage: a denied name fails the
    // whole call without revealing whether any item exists.
    for name in &names {
        require(ctx, RuleType::Item, name, Caps::READ)?;
    }
    let state = ctx.state.clone();
    let fetched = futures::future::try_join_all(names.iter().map(|n| {
        let state = state.clone();
        async move {
            if version.is_none()
                && let Some(hit) = state.items.get(n.as_str())
            {
                return Ok(hit);
            }
            let found =
                state
                    .store
                    .get_item_value(n, version)
                    .await?
                    .ok_or_else(|| match version {
                        Some(v) => {
                            ApiError::NotFound(format!("version {v} of item {n:?} not found"))
                        }
                        None => ApiError::NotFound(format!("item {n:?} not found")),
                    })?;
            let found = Arc::new(found);
            if version.is_none() {
                state.items.insert(n.clone(), found.clone());
            }
            Ok::<_, ApiError>(found)
        }
    }))
    .await?;
    let mut out = Map::with_capacity(names.len());
    for (raw, found) in raw_names.iter().zip(fetched) {
        let (item, v) = &*found;
        if item.item_type != ItemType::StaticSecret {
            return Err(wrong_type(item));
        }
        if !item.enabled {
            return Err(ApiError::Forbidden(format!(
                "item {:?} is disabled",
                item.name
            )));
        }
        state.keys.load_missing(&*state.store, v.key_id).await;
        let value = open(&state, item, v)?;
        out.insert(raw.clone(), Value::String(value.to_string()));
    }
    Ok(Value::Object(out))
}

/// get-secret-value / update-secret-val on a dynamic or rotated secret:
/// say which operation serves it (and never return its sealed settings).
fn wrong_type(item: &Item) -> ApiError {
    let hint = match item.item_type {
        ItemType::StaticSecret => "get-secret-value",
        ItemType::DynamicSecret => "get-dynamic-secret-value",
        ItemType::RotatedSecret => "get-rotated-secret-value",
        ItemType::Key => "encrypt, decrypt or get-rsa-public",
        ItemType::SshCertIssuer => "get-ssh-certificate",
        ItemType::PkiCertIssuer => "get-pki-certificate",
    };
    ApiError::bad(format!(
        "item {:?} is a {}: use {hint}",
        item.name,
        item.item_type.as_str()
    ))
}

pub(super) fn render_item(item: &Item, versions: Option<&[VersionInfo]>) -> Value {
    let mut v = without_nulls(json!({
        "item_name": item.name,
        "item_id": item.id,
        "display_id": format!("{:x}", item.id),
        "item_type": item.item_type.as_str(),
        "item_sub_type": item.sub_type.as_str(),
        "item_metadata": item.description,
        "item_tags": item.tags,
        "item_size": 0,
        "last_version": item.last_version,
        "is_enabled": item.enabled,
        "is_access_request_enabled": false,
        "auto_rotate": false,
        "rotation_interval": 0,
        "with_customer_fragment": false,
        "delete_protection": false,
        "max_versions": if item.max_versions > 0 { item.max_versions } else { DEFAULT_MAX_VERSIONS },
        "creation_date": date_field(item.created_ms),
        "modification_date": date_field(item.modified_ms),
    }));
    if item.item_type == ItemType::StaticSecret {
        v["item_general_info"] = json!({"static_secret_info": {"format": item.format.as_str()}});
    }
    if let (Some(vs), Value::Object(m)) = (versions, &mut v) {
        let list: Vec<Value> = vs
            .iter()
            .map(|x| without_nulls(json!({"version": x.version, "creation_date": date_field(x.created_ms), "item_version_state": "Enabled"})))
            .collect();
        m.insert("item_versions".into(), Value::Array(list));
    }
    v
}

pub(super) async fn describe_item(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require_any(ctx, RuleType::Item, &name, Caps::READ.union(Caps::LIST))?;
    let state = ctx.state.clone();
    let item = find_item(&state, &name).await?;
    let versions = state.store.list_versions(item.id).await?;
    let mut v = render_item(&item, Some(&versions));
    match item.item_type {
        ItemType::StaticSecret => {}
        ItemType::DynamicSecret => {
            let (p, s) = super::dynamic::load(&state, &item).await?;
            v["item_general_info"] = json!({"dynamic_secret_producer_details": {
                "producer_status": p.status,
                "producer_type": s.db_type,
                "user_ttl": s.user_ttl,
                "failure_message": if p.status == super::dynamic::CONNECTED { "" } else { p.status.as_str() },
            }});
            if let Some(t) = &s.target {
                v["item_targets_assoc"] = json!([{"target_name": t, "target_type": s.db_type}]);
            }
        }
        ItemType::RotatedSecret => {
            let (p, s) = super::rotated::load(&state, &item).await?;
            super::rotated::describe(&mut v, &p, &s);
        }
        ItemType::Key => super::keys::describe(&state, &item, &mut v).await?,
        ItemType::SshCertIssuer | ItemType::PkiCertIssuer => {
            super::certs::describe(&state, &item, &mut v).await?;
        }
    }
    Ok(v)
}

/// The SDK default of `delete-in-days`: the Python SDK sends it on every
/// call, so it cannot be told from a request for a 7-day delay.
const SDK_DEFAULT_DELETE_IN_DAYS: i64 = 7;

/// Coffer deletes at once (no pending deletion yet): a request for a
/// delay other than the SDK's default is refused rather than honoured
/// early.
fn check_immediate_deletion(body: &Body) -> Result<(), ApiError> {
    if body.bool_or("delete-immediately", false)? {
        return Ok(());
    }
    match body.opt_i64("delete-in-days")? {
        None | Some(-1 | 0 | SDK_DEFAULT_DELETE_IN_DAYS) => Ok(()),
        Some(days) => Err(ApiError::bad(format!(
            "delete-in-days {days}: Coffer has no pending deletion and deletes at once; \
             omit delete-in-days or send delete-immediately=true"
        ))),
    }
}

pub(super) async fn delete_item(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::DELETE)?;
    let version = body.opt_i64("version")?.unwrap_or(-1);
    check_immediate_deletion(body)?;
    let state = ctx.state.clone();
    let item = find_item(&state, &name).await?;
    if item.item_type != ItemType::StaticSecret {
        if version != -1 && version != 0 {
            return Err(ApiError::bad(format!(
                "{:?} is a {}: delete it whole (version -1)",
                name,
                item.item_type.as_str()
            )));
        }
        match item.item_type {
            ItemType::DynamicSecret => super::dynamic::revoke_before_delete(ctx, &item).await?,
            ItemType::RotatedSecret => super::rotated::before_delete(ctx, &item).await?,
            ItemType::Key => super::keys::before_delete(ctx, &item).await?,
            ItemType::StaticSecret | ItemType::SshCertIssuer | ItemType::PkiCertIssuer => {}
        }
    }
    let deleted = if item.item_type == ItemType::DynamicSecret {
        state.store.delete_producer_item(item.id, ctx.audit()).await
    } else if version == -1 || version == 0 {
        state.store.delete_item(item.id, ctx.audit()).await
    } else if version > 0 && version <= i64::from(i32::MAX) {
        state
            .store
            .delete_version(item.id, version as i32, ctx.audit())
            .await
    } else {
        return Err(ApiError::bad(
            "version must be a version number, or -1 for the whole item",
        ));
    };
    state.items.remove(name.as_str());
    let deleted = deleted?;
    if !deleted {
        return Err(ApiError::NotFound(format!(
            "version {version} of item {name:?} not found"
        )));
    }
    Ok(json!({
        "item_id": item.id,
        "item_name": name,
        "version_deleted": if version == 0 { -1 } else { version },
        "deletion_date": crate::timefmt::rfc3339(now_ms()),
    }))
}
