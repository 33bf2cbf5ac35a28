//! Static secrets (rule type `item-rule`).

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine;
use coffer_core::model::{Item, ItemType, SealedVersion, SecretFormat, VersionInfo};
use coffer_core::name::{normalize_folder, normalize_name};
use coffer_core::policy::{Caps, RuleType, may_see_under};
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::auth_methods::check_description;
use super::{allowed, date_field, name_param, require, require_any, without_nulls};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::{AppState, now_ms, random_id};
use crate::wire::Body;

/// Versions kept when `max-versions` is not set.
const DEFAULT_MAX_VERSIONS: i32 = 30;
const MAX_MAX_VERSIONS: i64 = 1000;
/// Names per get-secret-value call.
const MAX_NAMES: usize = 100;
/// Items per list-items page.
const PAGE: usize = 1000;
const SCAN_BATCH: i64 = 2000;

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

fn seal(
    state: &AppState,
    item_id: i64,
    version: i32,
    value: &str,
) -> Result<SealedVersion, ApiError> {
    let key_id = state.keys.active_key_id;
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

fn open(state: &AppState, item: &Item, v: &SealedVersion) -> Result<Zeroizing<String>, ApiError> {
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

fn tags_param(body: &Body) -> Result<Vec<String>, ApiError> {
    let mut tags = body.list("tags")?;
    tags.extend(body.list("tag")?);
    if tags.len() > 50 || tags.iter().any(|t| t.len() > 128) {
        return Err(ApiError::bad("at most 50 tags of up to 128 bytes each"));
    }
    tags.sort();
    tags.dedup();
    Ok(tags)
}

pub async fn create_secret(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::CREATE)?;
    let format: SecretFormat = body.opt_str("format")?.unwrap_or_default().parse()?;
    let value = value_param(ctx, body, format)?;
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
    match body.opt_str("type")?.as_deref().unwrap_or("generic") {
        "" | "generic" | "password" => {}
        other => {
            return Err(ApiError::bad(format!(
                "type must be generic or password, not {:?}",
                coffer_core::name::truncate_for_message(other)
            )));
        }
    }
    let now = now_ms();
    let item = Item {
        id: random_id()?,
        name: name.clone(),
        item_type: ItemType::StaticSecret,
        format,
        description,
        tags: tags_param(body)?,
        max_versions: max_versions as i32,
        last_version: 1,
        enabled: true,
        created_ms: now,
        modified_ms: now,
    };
    let first = seal(&ctx.state, item.id, 1, &value)?;
    ctx.state
        .store
        .create_item(&item, &first)
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => ApiError::Conflict(format!(
                "item {name:?} already exists: use update-secret-val to add a version"
            )),
            other => other.into(),
        })?;
    ctx.state.items.remove(name.as_str());
    Ok(json!({"name": name}))
}

async fn find_item(state: &AppState, name: &str) -> Result<Item, ApiError> {
    state
        .store
        .get_item(name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("item {name:?} not found")))
}

pub async fn update_secret_val(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::UPDATE)?;
    let item = find_item(&ctx.state, &name).await?;
    if let Some(f) = body.opt_str("format")?.filter(|f| !f.is_empty()) {
        let f: SecretFormat = f.parse()?;
        if f != item.format {
            return Err(ApiError::bad(format!(
                "item {name:?} has format {}; the format of an existing secret cannot change",
                item.format.as_str()
            )));
        }
    }
    let value = value_param(ctx, body, item.format)?;
    let keep = if body.bool_or("keep-prev-version", true)? {
        if item.max_versions > 0 {
            item.max_versions
        } else {
            DEFAULT_MAX_VERSIONS
        }
    } else {
        1
    };
    let v = seal(&ctx.state, item.id, item.last_version + 1, &value)?;
    ctx.state
        .store
        .add_version(item.id, item.last_version, &v, keep)
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("item {name:?} was updated concurrently; retry"))
            }
            other => other.into(),
        })?;
    ctx.state.items.remove(name.as_str());
    Ok(json!({"name": name}))
}

pub async fn get_secret_value(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
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
    let mut out = serde_json::Map::with_capacity(names.len());
    for (raw, found) in raw_names.iter().zip(fetched) {
        let (item, v) = &*found;
        if !item.enabled {
            return Err(ApiError::Forbidden(format!(
                "item {:?} is disabled",
                item.name
            )));
        }
        let value = open(&state, item, v)?;
        out.insert(raw.clone(), Value::String(value.to_string()));
    }
    Ok(Value::Object(out))
}

fn render_item(item: &Item, versions: Option<&[VersionInfo]>) -> Value {
    let mut v = without_nulls(json!({
        "item_name": item.name,
        "item_id": item.id,
        "display_id": format!("{:x}", item.id),
        "item_type": item.item_type.as_str(),
        "item_sub_type": "generic",
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
        "item_general_info": {"static_secret_info": {"format": item.format.as_str()}},
    }));
    if let (Some(vs), Value::Object(m)) = (versions, &mut v) {
        let list: Vec<Value> = vs
            .iter()
            .map(|x| without_nulls(json!({"version": x.version, "creation_date": date_field(x.created_ms), "item_version_state": "Enabled"})))
            .collect();
        m.insert("item_versions".into(), Value::Array(list));
    }
    v
}

pub async fn describe_item(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require_any(ctx, RuleType::Item, &name, Caps::READ.union(Caps::LIST))?;
    let item = find_item(&ctx.state, &name).await?;
    let versions = ctx.state.store.list_versions(item.id).await?;
    Ok(render_item(&item, Some(&versions)))
}

pub async fn list_items(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let folder = normalize_folder(&body.opt_str("path")?.unwrap_or_default())?;
    ctx.set_object(folder.clone());
    let filter = body.opt_str("filter")?.filter(|f| !f.is_empty());
    let types = body.list("type")?;
    let current_folder = body.bool_or("current-folder", false)?;
    let minimal = body.bool_or("minimal-view", false)?;
    let after_token = match body.opt_str("pagination-token")?.filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(t.as_bytes())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    ApiError::bad("pagination-token is not one returned by list-items")
                })?,
        ),
    };
    let wants_static = types.is_empty()
        || types.iter().any(|t| {
            let t = t.to_ascii_lowercase().replace('_', "-");
            t == ItemType::StaticSecret.filter_name() || t == "static_secret"
        });
    let caller = ctx.caller()?.clone();
    let mut items: Vec<Value> = Vec::new();
    let mut folders: BTreeSet<String> = BTreeSet::new();
    let mut last_listed: Option<String> = None;
    let mut more = false;

    if wants_static && may_see_under(caller.rules(), RuleType::Item, &folder, Caps::LIST) {
        let mut after: Option<String> = None;
        loop {
            let batch = ctx
                .state
                .store
                .list_items(&folder, after.as_deref(), SCAN_BATCH)
                .await?;
            for item in &batch {
                if !allowed(&caller, RuleType::Item, &item.name, Caps::LIST) {
                    continue;
                }
                let rel = &item.name[folder.len()..];
                if let Some((sub, _)) = rel.split_once('/') {
                    folders.insert(format!("{folder}{sub}"));
                    if current_folder {
                        continue;
                    }
                }
                if filter
                    .as_ref()
                    .is_some_and(|f| !item.name.contains(f.as_str()))
                {
                    continue;
                }
                if after_token
                    .as_ref()
                    .is_some_and(|t| item.name.as_str() <= t.as_str())
                {
                    continue;
                }
                if items.len() < PAGE {
                    items.push(if minimal {
                        json!({"item_name": item.name, "item_type": item.item_type.as_str(), "item_id": item.id})
                    } else {
                        render_item(item, None)
                    });
                    last_listed = Some(item.name.clone());
                } else {
                    more = true;
                }
            }
            if (batch.len() as i64) < SCAN_BATCH {
                break;
            }
            after = batch.last().map(|i| i.name.clone());
        }
    }
    let next_page = match (more, last_listed) {
        (true, Some(last)) => {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last.as_bytes())
        }
        _ => String::new(),
    };
    // Akeyless returns null, not [], for empty lists.
    let items = if items.is_empty() {
        Value::Null
    } else {
        Value::Array(items)
    };
    let folders = if folders.is_empty() {
        Value::Null
    } else {
        json!(folders.into_iter().collect::<Vec<_>>())
    };
    Ok(json!({"items": items, "folders": folders, "next_page": next_page}))
}

pub async fn delete_item(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::DELETE)?;
    let version = body.opt_i64("version")?.unwrap_or(-1);
    let item = find_item(&ctx.state, &name).await?;
    let deleted = if version == -1 || version == 0 {
        ctx.state.store.delete_item(item.id).await?
    } else if version > 0 && version <= i64::from(i32::MAX) {
        ctx.state
            .store
            .delete_version(item.id, version as i32)
            .await?
    } else {
        return Err(ApiError::bad(
            "version must be a version number, or -1 for the whole item",
        ));
    };
    ctx.state.items.remove(name.as_str());
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
