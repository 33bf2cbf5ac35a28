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
use super::{date_field, name_param, refuse_unsupported, require, require_any, without_nulls};
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

/// Options of create-secret Coffer does not implement (beyond SAAS_ONLY).
const CREATE_SECRET_UNSUPPORTED: &[(&str, &str)] = &[
    (
        "providertype",
        "provider types belong to Akeyless's USC items",
    ),
    (
        "change-event",
        "event forwarding is not supported by Coffer",
    ),
    (
        "host-provider",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "lock-during-sra-session",
        "secure remote access is an Akeyless SaaS feature",
    ),
    ("lock-on-read", "item locking is not supported by Coffer"),
    ("lock-ttl", "item locking is not supported by Coffer"),
    (
        "target",
        "static secrets are not linked to targets in Coffer",
    ),
    (
        "secure-access-enforce-hosts-restriction",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-gateway",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-rdp-user",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-ssh-creds",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-ssh-user",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-url",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-web-browsing",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-web-proxy",
        "secure remote access is an Akeyless SaaS feature",
    ),
];

/// A protection key (`protection_key` on create, `key` on
/// update-secret-val): Coffer seals every value with its own data keys
/// (AES-256-GCM, wrapped by the server's root key, rotated with
/// `coffer operator rotate-data-key`), not with a key item the caller
/// names, so only an empty name (the default) is accepted.
fn refuse_protection_key(body: &Body, key: &str) -> Result<(), ApiError> {
    match body.opt_str(key)?.as_deref().map(str::trim) {
        None | Some("") => Ok(()),
        Some(_) => Err(ApiError::bad(format!(
            "{key}: Coffer does not seal values with a named protection key: every value is \
             sealed with the server's data keys (AES-256-GCM, wrapped by its root key; rotate them \
             with coffer operator rotate-data-key); omit {key} or send it empty"
        ))),
    }
}

pub(super) async fn create_secret(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::CREATE)?;
    refuse_personal(body)?;
    refuse_unsupported(body, super::SAAS_ONLY)?;
    refuse_unsupported(body, CREATE_SECRET_UNSUPPORTED)?;
    refuse_protection_key(body, "protection-key")?;
    // `multiline_value` only says how the CLI read the value: the value
    // is stored exactly as sent either way.
    body.bool_or("multiline-value", false)?;
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
        deletion_ms: 0,
    };
    let state = ctx.state.clone();
    refuse_pending_name(&state, &name).await?;
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

/// An item that is not pending deletion (404 otherwise, saying so).
pub(crate) async fn find_item(state: &AppState, name: &str) -> Result<Item, ApiError> {
    let item = find_item_any(state, name).await?;
    if item.pending_deletion() {
        return Err(pending_deletion(&item));
    }
    Ok(item)
}

/// An item, also one pending deletion (describe, delete, restore).
pub(crate) async fn find_item_any(state: &AppState, name: &str) -> Result<Item, ApiError> {
    state
        .store
        .get_item(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("item {name:?} not found")))
}

/// The 404 for an item pending deletion: when it goes, and how to keep it.
pub(crate) fn pending_deletion(item: &Item) -> ApiError {
    ApiError::NotFound(format!(
        "item {:?} is pending deletion (it will be purged at {}): restore it with restore-item to use it again",
        item.name,
        crate::timefmt::rfc3339(item.deletion_ms)
    ))
}

/// Refuse to create an item under a name that an item pending deletion
/// still holds (the name is free once it is purged, or restored and renamed).
pub(crate) async fn refuse_pending_name(state: &AppState, name: &str) -> Result<(), ApiError> {
    match state.store.get_item(name).await? {
        Some(item) if item.pending_deletion() => Err(ApiError::Conflict(format!(
            "item {name:?} is pending deletion until {}: its name cannot be reused until it is purged; \
             restore it with restore-item, or delete it now with delete-item delete-immediately=true",
            crate::timefmt::rfc3339(item.deletion_ms)
        ))),
        _ => Ok(()),
    }
}

pub(super) async fn update_secret_val(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::UPDATE)?;
    refuse_personal(body)?;
    refuse_protection_key(body, "key")?;
    // Informational (how the value was read; deprecated): the value is
    // stored as sent and every update adds a version.
    body.bool_or("multiline", false)?;
    body.bool_or("new-version", true)?;
    let expected_last = body.opt_i64("last-version")?.filter(|v| *v != 0);
    let state = ctx.state.clone();
    let item = find_item(&state, &name).await?;
    if item.item_type != ItemType::StaticSecret {
        return Err(wrong_type(&item));
    }
    if let Some(v) = expected_last
        && v != i64::from(item.last_version)
    {
        return Err(ApiError::Conflict(format!(
            "last-version {v}: the latest version of {name:?} is {} now (updated meanwhile); read it and retry",
            item.last_version
        )));
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
        if item.pending_deletion() {
            return Err(pending_deletion(item));
        }
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
        // Values are sealed with Coffer's data keys, not a named
        // protection key; Terraform reads (and sends back) this field.
        "protection_key_name": "",
        "item_state": if item.pending_deletion() { "PendingDeletion" } else { "Enabled" },
        "deletion_date": date_field(item.deletion_ms),
    }));
    if item.item_type == ItemType::StaticSecret {
        v["item_general_info"] = json!({"static_secret_info": {
            "format": item.format.as_str(),
            "max_versions": if item.max_versions > 0 { item.max_versions } else { DEFAULT_MAX_VERSIONS },
        }});
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

/// `username`, `website` and `websites` (the entry's inject URLs) of a
/// password entry, into `static_secret_info`; never the password.
async fn password_details(state: &AppState, item: &Item, v: &mut Value) -> Result<(), ApiError> {
    let Some((it, sealed)) = state.store.get_item_value(&item.name, None).await? else {
        return Ok(());
    };
    state.keys.load_missing(&*state.store, sealed.key_id).await;
    let plain = open(state, &it, &sealed)?;
    let Ok(Value::Object(entry)) = serde_json::from_str::<Value>(&plain) else {
        return Ok(());
    };
    let info = &mut v["item_general_info"]["static_secret_info"];
    if let Some(u) = entry.get("username").and_then(Value::as_str) {
        info["username"] = json!(u);
    }
    if let Some(urls) = entry.get("inject_url").and_then(Value::as_array) {
        if let Some(first) = urls.first() {
            info["website"] = first.clone();
        }
        info["websites"] = Value::Array(urls.clone());
    }
    Ok(())
}

pub(super) async fn describe_item(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require_any(ctx, RuleType::Item, &name, Caps::READ.union(Caps::LIST))?;
    let state = ctx.state.clone();
    let item = find_item_any(&state, &name).await?;
    let versions = state.store.list_versions(item.id).await?;
    let mut v = render_item(&item, Some(&versions));
    if item.pending_deletion() {
        // Its settings are not read while it is pending deletion: the
        // common fields, its state and its deletion date say enough.
        return Ok(v);
    }
    match item.item_type {
        ItemType::StaticSecret => {
            // A password entry's username and websites are shown, as
            // Akeyless does, to callers who may read the entry.
            if item.sub_type == ItemSubType::Password
                && super::allowed(ctx.caller()?, RuleType::Item, &name, Caps::READ)
            {
                password_details(&state, &item, &mut v).await?;
            }
        }
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

/// Days an item waits for its purge when `delete-in-days` is not given
/// (Akeyless's default; the Python SDK sends it on every call).
const DEFAULT_DELETE_IN_DAYS: i64 = 7;
const MAX_DELETE_IN_DAYS: i64 = 365;
const DAY_MS: i64 = 86_400_000;
/// Items one delete-items call may delete.
const MAX_BULK_DELETE: usize = 1000;

/// When a whole-item `delete-item` takes effect: `None` = at once
/// (`delete-immediately`, or `delete-in-days` 0), else the purge time.
fn deletion_time(body: &Body, now: i64) -> Result<Option<i64>, ApiError> {
    let immediately = body.bool_or("delete-immediately", false)?;
    match body.opt_i64("delete-in-days")? {
        _ if immediately => Ok(None),
        Some(0) => Ok(None),
        None => Ok(Some(now + DEFAULT_DELETE_IN_DAYS * DAY_MS)),
        Some(-1) => Err(ApiError::bad(
            "delete-in-days -1 deletes at once and needs delete-immediately=true",
        )),
        Some(days) if (1..=MAX_DELETE_IN_DAYS).contains(&days) => Ok(Some(now + days * DAY_MS)),
        Some(days) => Err(ApiError::bad(format!(
            "delete-in-days {days}: use 1 to {MAX_DELETE_IN_DAYS} days (the item is pending \
             deletion meanwhile and restore-item brings it back), or delete-immediately=true"
        ))),
    }
}

/// Item types whose deletion waits (soft deletion): those whose deletion
/// has no effect outside Coffer. Dynamic and rotated secrets are deleted
/// at once: deleting them revokes credentials or releases a target.
fn soft_deletable(t: ItemType) -> bool {
    matches!(
        t,
        ItemType::StaticSecret | ItemType::Key | ItemType::SshCertIssuer | ItemType::PkiCertIssuer
    )
}

pub(super) async fn delete_item(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::DELETE)?;
    let version = body.opt_i64("version")?.unwrap_or(-1);
    let now = now_ms();
    let when = deletion_time(body, now)?;
    let state = ctx.state.clone();
    let item = find_item_any(&state, &name).await?;
    if version != -1 {
        // One version (0 = the latest): deleted at once, never pending.
        if item.pending_deletion() {
            return Err(pending_deletion(&item));
        }
        if item.item_type != ItemType::StaticSecret {
            return Err(ApiError::bad(format!(
                "{:?} is a {}: delete it whole (version -1)",
                name,
                item.item_type.as_str()
            )));
        }
        let v = match version {
            0 => item.last_version,
            v if v > 0 && v <= i64::from(i32::MAX) => v as i32,
            _ => {
                return Err(ApiError::bad(
                    "version must be a version number, 0 for the latest, or -1 for the whole item",
                ));
            }
        };
        let deleted = state.store.delete_version(item.id, v, ctx.audit()).await;
        state.items.remove(name.as_str());
        if !deleted? {
            return Err(ApiError::NotFound(format!(
                "version {v} of item {name:?} not found"
            )));
        }
        return Ok(json!({
            "item_id": item.id,
            "item_name": name,
            "version_deleted": v,
            "deletion_date": crate::timefmt::rfc3339(now),
        }));
    }
    if item.pending_deletion() && when.is_some() {
        return Err(ApiError::Conflict(format!(
            "item {name:?} is pending deletion already (purged at {}): restore it with restore-item, \
             or delete it now with delete-immediately=true",
            crate::timefmt::rfc3339(item.deletion_ms)
        )));
    }
    if item.item_type == ItemType::Key {
        super::keys::before_delete(ctx, &item).await?;
    }
    if !soft_deletable(item.item_type)
        && when.is_some()
        && body
            .opt_i64("delete-in-days")?
            .is_some_and(|d| d != DEFAULT_DELETE_IN_DAYS)
    {
        return Err(ApiError::bad(format!(
            "{name:?} is a {}: it is deleted at once (its credentials are revoked first, which \
             cannot wait or be undone); omit delete-in-days or send delete-immediately=true",
            item.item_type.as_str()
        )));
    }
    let when = when.filter(|_| soft_deletable(item.item_type));
    if let Some(at) = when {
        let marked = state
            .store
            .mark_items_deleted(&[item.id], at, ctx.audit())
            .await;
        state.items.remove(name.as_str());
        marked.map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => ApiError::Conflict(format!(
                "item {name:?} changed meanwhile (deleted or pending deletion); describe it and retry"
            )),
            other => other.into(),
        })?;
        return Ok(json!({
            "item_id": item.id,
            "item_name": name,
            "version_deleted": -1,
            "deletion_date": crate::timefmt::rfc3339(at),
        }));
    }
    match item.item_type {
        ItemType::DynamicSecret => super::dynamic::revoke_before_delete(ctx, &item).await?,
        ItemType::RotatedSecret => super::rotated::before_delete(ctx, &item).await?,
        ItemType::StaticSecret
        | ItemType::Key
        | ItemType::SshCertIssuer
        | ItemType::PkiCertIssuer => {}
    }
    let deleted = if item.item_type == ItemType::DynamicSecret {
        state.store.delete_producer_item(item.id, ctx.audit()).await
    } else {
        state.store.delete_item(item.id, ctx.audit()).await
    };
    state.items.remove(name.as_str());
    if !deleted? {
        return Err(ApiError::NotFound(format!("item {name:?} not found")));
    }
    Ok(json!({
        "item_id": item.id,
        "item_name": name,
        "version_deleted": -1,
        "deletion_date": crate::timefmt::rfc3339(now),
    }))
}

/// `restore-item` (Coffer's own: Akeyless has no restore operation):
/// cancel a pending deletion.
pub(super) async fn restore_item(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::DELETE)?;
    let state = ctx.state.clone();
    let item = find_item_any(&state, &name).await?;
    if !item.pending_deletion() {
        return Err(ApiError::bad(format!(
            "item {name:?} is not pending deletion: there is nothing to restore"
        )));
    }
    let restored = state.store.restore_item(item.id, ctx.audit()).await;
    state.items.remove(name.as_str());
    if !restored? {
        return Err(ApiError::NotFound(format!(
            "item {name:?} was purged or restored meanwhile"
        )));
    }
    Ok(json!({"item_id": item.id, "item_name": name, "restored": true}))
}

/// Options of update-item Coffer does not implement.
const UPDATE_ITEM_UNSUPPORTED: &[(&str, &str)] = &[
    (
        "providertype",
        "provider types belong to Akeyless's USC items",
    ),
    (
        "cert-file-data",
        "use update-classic-key-certificate to change a key's certificate",
    ),
    (
        "certificate-format",
        "certificates are issued by PKI issuers, not stored as items",
    ),
    (
        "change-event",
        "event forwarding is not supported by Coffer",
    ),
    (
        "expiration-event-in",
        "certificate expiration events are not supported by Coffer",
    ),
    ("gcp-sm-regions", "USC items are an Akeyless SaaS feature"),
    ("usc-tags", "USC items are an Akeyless SaaS feature"),
    (
        "use-tags-as-filter",
        "USC items are an Akeyless SaaS feature",
    ),
    (
        "host-provider",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "lock-during-sra-session",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "rotate-after-disconnect",
        "secure remote access is an Akeyless SaaS feature",
    ),
    ("lock-on-read", "item locking is not supported by Coffer"),
    ("lock-ttl", "item locking is not supported by Coffer"),
    (
        "rotate-on-unlock",
        "item locking is not supported by Coffer",
    ),
    (
        "target",
        "items are linked to targets by their own operations (target-name of the rotated and dynamic secret operations)",
    ),
    (
        "secure-access-add-host",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-rm-host",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-allow-external-user",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-allow-port-forwading",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-allow-port-forwarding",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-api",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-aws-account-id",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-aws-native-cli",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-aws-region",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-bastion-api",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-bastion-ssh",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-cluster-endpoint",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-dashboard-url",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-enforce-hosts-restriction",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-gateway",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-rd-gateway-server",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-rdp-domain",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-rdp-user",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-ssh",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-ssh-creds",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-ssh-creds-user",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-url",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-use-internal-bastion",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-use-internal-ssh-access",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-web-browsing",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-web-proxy",
        "secure remote access is an Akeyless SaaS feature",
    ),
];

/// Most tags an item may carry.
const MAX_TAGS: usize = 50;

/// `add-tag` / `rm-tag`: checked like create's tags.
fn tag_list(body: &Body, key: &str) -> Result<Vec<String>, ApiError> {
    let tags = body.list(key)?;
    if tags.len() > MAX_TAGS || tags.iter().any(|t| t.len() > 128) {
        return Err(ApiError::bad(format!(
            "{key}: at most {MAX_TAGS} tags of up to 128 bytes each"
        )));
    }
    Ok(tags)
}

/// A description field, `None` when absent or the SDKs' "leave unchanged"
/// placeholder `default_metadata`.
fn description_field(body: &Body, key: &str) -> Result<Option<String>, ApiError> {
    Ok(body.opt_str(key)?.filter(|d| d != "default_metadata"))
}

/// `update-item`: rename, description, tags and max versions of any item.
/// A rename needs what doing it by hand needs: read, update and delete on
/// the old name and create on the new one, so that an item is never
/// moved out of a path the caller may not read into one someone can.
pub(super) async fn update_item(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::UPDATE)?;
    refuse_personal(body)?;
    refuse_unsupported(body, super::SAAS_ONLY)?;
    refuse_unsupported(body, UPDATE_ITEM_UNSUPPORTED)?;
    let new_name = match body.opt_str("new-name")?.filter(|n| !n.trim().is_empty()) {
        Some(raw) => Some(normalize_name(&raw)?).filter(|n| *n != name),
        None => None,
    };
    let description = match description_field(body, "description")? {
        Some(d) => Some(d),
        None => description_field(body, "new-metadata")?,
    };
    if let Some(d) = &description {
        check_description(d)?;
    }
    let add_tags = tag_list(body, "add-tag")?;
    let rm_tags = tag_list(body, "rm-tag")?;
    let max_versions = match body.opt_i64("max-versions")? {
        None => None,
        Some(m) if (0..=MAX_MAX_VERSIONS).contains(&m) => Some(m as i32),
        Some(_) => {
            return Err(ApiError::bad(format!(
                "max-versions must be between 1 and {MAX_MAX_VERSIONS} (0 = default {DEFAULT_MAX_VERSIONS})"
            )));
        }
    };
    if let Some(n) = &new_name {
        require(ctx, RuleType::Item, &name, Caps::READ.union(Caps::DELETE))?;
        require(ctx, RuleType::Item, n, Caps::CREATE)?;
    }
    let state = ctx.state.clone();
    let item = find_item(&state, &name).await?;
    if max_versions.is_some() && item.item_type != ItemType::StaticSecret {
        let hint = match item.item_type {
            ItemType::RotatedSecret => "set it with rotated-secret-update-* max-versions",
            ItemType::Key => "keys keep every version so old ciphertexts decrypt",
            _ => "its versions are its settings",
        };
        return Err(ApiError::bad(format!(
            "max-versions applies to static secrets; {name:?} is a {} ({hint})",
            item.item_type.as_str()
        )));
    }
    if let Some(n) = &new_name {
        if item.item_type == ItemType::Key {
            let users = super::certs::issuers_using(&state, &item.name).await?;
            if !users.is_empty() {
                return Err(ApiError::Conflict(format!(
                    "key {name:?} signs for issuers {} (by name): give them another signer-key-name before renaming it",
                    users.join(", ")
                )));
            }
        }
        refuse_pending_name(&state, n).await?;
    }
    let change = coffer_store::ItemChange {
        new_name: new_name.clone(),
        description,
        add_tags,
        rm_tags,
        max_tags: MAX_TAGS,
        max_versions,
        keep_versions: match max_versions {
            Some(m) if m > 0 => m,
            _ => DEFAULT_MAX_VERSIONS,
        },
        modified_ms: now_ms(),
    };
    let updated = state
        .store
        .update_item_meta(item.id, &change, ctx.audit())
        .await;
    state.items.remove(name.as_str());
    if let Some(n) = &new_name {
        state.items.remove(n.as_str());
    }
    updated.map_err(|e| match e {
        coffer_store::StoreError::Conflict(_) => ApiError::Conflict(format!(
            "item {:?} already exists: pick another new-name",
            new_name.as_deref().unwrap_or_default()
        )),
        coffer_store::StoreError::NotFound(_) => {
            ApiError::NotFound(format!("item {name:?} was deleted meanwhile"))
        }
        other => other.into(),
    })?;
    Ok(json!({"updated": true}))
}

/// `get-tags`: the item's tags, as a top-level JSON array.
pub(super) async fn get_tags(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require_any(ctx, RuleType::Item, &name, Caps::READ.union(Caps::LIST))?;
    let item = find_item_any(&ctx.state, &name).await?;
    Ok(json!(item.tags))
}

/// `delete-items`: every item under `path` (and/or the names in `item`),
/// pending deletion for the default 7 days, all or nothing: one item the
/// caller may not delete (or that must be deleted on its own) refuses
/// the whole call, naming it; the rest is one transaction with one
/// audit record.
pub(super) async fn delete_items(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    // A caller who may delete nothing at all learns nothing more.
    if !coffer_core::policy::may_see_under(ctx.caller()?.rules(), RuleType::Item, "/", Caps::DELETE)
    {
        return Err(ApiError::Forbidden(
            "access denied: no role of this caller grants delete on any item".into(),
        ));
    }
    let raw_path = body.opt_str("path")?.filter(|p| !p.trim().is_empty());
    let names = body.list("item")?;
    if raw_path.is_none() && names.is_empty() {
        return Err(ApiError::bad(
            "missing required parameter path (or item): the folder whose items to delete",
        ));
    }
    let folder = match &raw_path {
        Some(p) => Some(coffer_core::name::normalize_folder(p)?),
        None => None,
    };
    ctx.set_object(
        folder
            .clone()
            .unwrap_or_else(|| coffer_core::name::truncate_for_message(&names.join(","))),
    );
    if folder.as_deref() == Some("/") {
        return Err(ApiError::bad(
            "path / would delete every item: name a folder, e.g. /team/app",
        ));
    }
    let state = ctx.state.clone();
    let mut found: Vec<Item> = Vec::new();
    if let Some(folder) = &folder {
        let mut after: Option<String> = None;
        loop {
            let batch = state
                .store
                .list_items(folder, after.as_deref(), 500)
                .await?;
            let full = batch.len() == 500;
            after = batch.last().map(|i| i.name.clone());
            found.extend(batch.into_iter().filter(|i| !i.pending_deletion()));
            if found.len() > MAX_BULK_DELETE {
                return Err(ApiError::bad(format!(
                    "more than {MAX_BULK_DELETE} items under {folder:?}: delete its subfolders one at a time"
                )));
            }
            if !full {
                break;
            }
        }
    }
    for raw in &names {
        let n = normalize_name(raw)?;
        if found.iter().any(|i| i.name == n) {
            continue;
        }
        found.push(find_item(&state, &n).await?);
    }
    if found.len() > MAX_BULK_DELETE {
        return Err(ApiError::bad(format!(
            "at most {MAX_BULK_DELETE} items per delete-items call"
        )));
    }
    // Permissions first, for every item: all or nothing.
    let caller = ctx.caller()?.clone();
    if let Some(denied) = found
        .iter()
        .find(|i| !super::allowed(&caller, RuleType::Item, &i.name, Caps::DELETE))
    {
        return Err(ApiError::Forbidden(format!(
            "access denied: no role of this caller grants delete on item {:?}; nothing was deleted",
            denied.name
        )));
    }
    if found.is_empty() {
        // Nothing to delete: still only for a caller who could delete there.
        let under = folder.as_deref().unwrap_or("/");
        if !coffer_core::policy::may_see_under(caller.rules(), RuleType::Item, under, Caps::DELETE)
        {
            return Err(ApiError::Forbidden(format!(
                "access denied: no role of this caller grants delete under {under:?}"
            )));
        }
    }
    ctx.checked(RuleType::Item, Caps::DELETE);
    if let Some(i) = found.iter().find(|i| !soft_deletable(i.item_type)) {
        return Err(ApiError::bad(format!(
            "{:?} is a {}: delete it on its own with delete-item (its credentials are revoked first); nothing was deleted",
            i.name,
            i.item_type.as_str()
        )));
    }
    for key in found.iter().filter(|i| i.item_type == ItemType::Key) {
        let users = super::certs::issuers_using(&state, &key.name).await?;
        if let Some(user) = users.iter().find(|u| !found.iter().any(|i| &i.name == *u)) {
            return Err(ApiError::Conflict(format!(
                "key {:?} signs for issuer {user:?}, which is not deleted with it; nothing was deleted",
                key.name
            )));
        }
    }
    let at = now_ms() + DEFAULT_DELETE_IN_DAYS * DAY_MS;
    let ids: Vec<i64> = found.iter().map(|i| i.id).collect();
    let marked = if ids.is_empty() {
        Ok(())
    } else {
        state.store.mark_items_deleted(&ids, at, ctx.audit()).await
    };
    for i in &found {
        state.items.remove(i.name.as_str());
    }
    marked.map_err(|e| match e {
        coffer_store::StoreError::Conflict(_) => ApiError::Conflict(
            "items under the path changed meanwhile (deleted or pending deletion); nothing was deleted: retry".into(),
        ),
        other => other.into(),
    })?;
    let deleted: Vec<&str> = found.iter().map(|i| i.name.as_str()).collect();
    Ok(without_nulls(json!({
        "deleted_items": deleted,
        "failed_deleted_items": {},
        "path": folder,
    })))
}
