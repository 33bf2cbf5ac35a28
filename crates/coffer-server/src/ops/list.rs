//! `list-items`: the items under a folder (recursively, or only the folder
//! itself with `current-folder`), its subfolders, and the filters the
//! Akeyless SDKs send.
//!
//! Work per call is bounded whatever the tree looks like: a call reads at
//! most [`SCAN_BUDGET`] rows, in name order from the pagination token. A
//! page ends when it holds [`PAGE`] items or the budget is spent; either
//! way `next_page` (and `has_next`) says where the next call continues, so
//! a filter that matches little costs several short calls, never one that
//! scans the whole subtree. Subfolders are found by skipping over each one
//! (one short query per subfolder), listed on the first page only.
//!
//! Filters: `filter` (name contains), `tag` (exact tag), `type`, `sub-types`
//! (generic, password), `modified-after` (Unix seconds). `advanced-filter`
//! (usernames and websites inside password entries) is refused, as is a
//! personal `accessibility`; `ara-only`/`sra-only` match nothing (Coffer
//! has no such items).

use std::collections::BTreeSet;

use base64::Engine;
use coffer_core::model::{Item, ItemSubType, ItemType};
use coffer_core::name::normalize_folder;
use coffer_core::policy::{Caps, RuleType, may_see_under};
use serde_json::{Value, json};

use super::allowed;
use super::items::render_item;
use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::Caller;
use crate::wire::Body;

/// Items per page.
const PAGE: usize = 1000;
/// Rows read from the store per call, at most.
const SCAN_BUDGET: usize = 10_000;
/// Rows per store query.
const BATCH: i64 = 500;
/// Subfolders listed, at most.
const MAX_FOLDERS: usize = 1000;

/// The item types Akeyless lists (`type`). `key`, `classic-key` and
/// `dfc-key` all mean Coffer's keys.
const KNOWN_TYPES: &[&str] = &[
    "static-secret",
    "dynamic-secret",
    "rotated-secret",
    "key",
    "classic-key",
    "dfc-key",
    "certificate",
    "ssh-cert-issuer",
    "pki-cert-issuer",
    "tokenizer",
];

/// Above every item name (names are printable ASCII): `folder/` followed by
/// this is past everything in that folder.
const PAST: char = '\u{10FFFF}';

struct Filters {
    name: Option<String>,
    tag: Option<String>,
    types: Option<Vec<ItemType>>,
    sub_types: Option<Vec<ItemSubType>>,
    modified_after_ms: Option<i64>,
    /// `ara-only` / `sra-only`: no Coffer item has those features.
    none: bool,
    /// `pending-deletion` (Coffer's own): list only the items pending
    /// deletion (otherwise they are not listed).
    pending: bool,
}

impl Filters {
    fn from_body(body: &Body) -> Result<Filters, ApiError> {
        if body
            .opt_str("advanced-filter")?
            .is_some_and(|f| !f.trim().is_empty())
        {
            return Err(ApiError::bad(
                "advanced-filter (usernames and websites inside password entries) is not supported by Coffer: use filter to match item names",
            ));
        }
        match body.opt_str("accessibility")?.as_deref().map(str::trim) {
            None | Some("" | "regular") => {}
            Some(_) => {
                return Err(ApiError::bad(
                    "accessibility must be regular: personal items are not supported by Coffer",
                ));
            }
        }
        let mut types = Vec::new();
        let raw_types = body.list("type")?;
        for t in &raw_types {
            let t = t.trim().to_ascii_lowercase().replace('_', "-");
            if !KNOWN_TYPES.contains(&t.as_str()) {
                return Err(ApiError::bad(format!(
                    "unknown item type {:?} in type: use {}",
                    coffer_core::name::truncate_for_message(&t),
                    KNOWN_TYPES.join(", ")
                )));
            }
            let t = match t.as_str() {
                "key" | "dfc-key" => "classic-key".to_owned(),
                _ => t,
            };
            if let Some(it) = ItemType::ALL.iter().find(|it| it.filter_name() == t) {
                types.push(*it);
            }
        }
        let mut sub_types = Vec::new();
        let raw_sub_types = body.list("sub-types")?;
        for t in &raw_sub_types {
            sub_types.push(t.parse::<ItemSubType>().map_err(|_| {
                ApiError::bad(format!(
                    "unknown sub-type {:?}: use generic or password",
                    coffer_core::name::truncate_for_message(t)
                ))
            })?);
        }
        let modified_after_ms = match body.opt_i64("modified-after")? {
            None | Some(0) => None,
            Some(s) if s > 0 => Some(s.saturating_mul(1000)),
            Some(_) => {
                return Err(ApiError::bad(
                    "modified-after must be a Unix time in seconds",
                ));
            }
        };
        Ok(Filters {
            name: body.opt_str("filter")?.filter(|f| !f.is_empty()),
            tag: body.opt_str("tag")?.filter(|t| !t.is_empty()),
            types: (!raw_types.is_empty()).then_some(types),
            sub_types: (!raw_sub_types.is_empty()).then_some(sub_types),
            modified_after_ms,
            none: body.bool_or("ara-only", false)? || body.bool_or("sra-only", false)?,
            pending: body.bool_or("pending-deletion", false)?,
        })
    }

    fn matches(&self, item: &Item) -> bool {
        !self.none
            && self
                .name
                .as_ref()
                .is_none_or(|f| item.name.contains(f.as_str()))
            && self.tag.as_ref().is_none_or(|t| item.tags.contains(t))
            && self
                .types
                .as_ref()
                .is_none_or(|ts| ts.contains(&item.item_type))
            && self
                .sub_types
                .as_ref()
                .is_none_or(|ts| ts.contains(&item.sub_type))
            && self
                .modified_after_ms
                .is_none_or(|after| item.modified_ms > after)
    }
}

fn decode_token(t: &str) -> Result<String, ApiError> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(t.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::bad("pagination-token is not one returned by list-items"))
}

fn encode_token(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name.as_bytes())
}

pub(super) async fn list_items(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let folder = normalize_folder(&body.opt_str("path")?.unwrap_or_default())?;
    ctx.set_object(folder.clone());
    let filters = Filters::from_body(body)?;
    let current_folder = body.bool_or("current-folder", false)?;
    let minimal = body.bool_or("minimal-view", false)?;
    let paginate = match body
        .opt_str("auto-pagination")?
        .as_deref()
        .map(|s| s.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("" | "enabled" | "true") => true,
        Some("disabled" | "false") => false,
        Some(_) => return Err(ApiError::bad("auto-pagination must be enabled or disabled")),
    };
    let token = match body.opt_str("pagination-token")?.filter(|t| !t.is_empty()) {
        Some(t) => {
            let after = decode_token(&t)?;
            if !after.starts_with(&folder) {
                return Err(ApiError::bad(
                    "pagination-token belongs to another path: pass the same path as the call that returned it",
                ));
            }
            Some(after)
        }
        None => None,
    };
    let caller = ctx.caller()?.clone();
    let state = ctx.state.clone();
    let visible = may_see_under(caller.rules(), RuleType::Item, &folder, Caps::LIST);

    let mut items: Vec<Value> = Vec::new();
    let mut next: Option<String> = None;
    if visible && !filters.none {
        let mut after = token.clone();
        let mut scanned = 0usize;
        'scan: loop {
            let batch = state
                .store
                .list_items(&folder, after.as_deref(), BATCH)
                .await?;
            let full = batch.len() as i64 == BATCH;
            for item in &batch {
                scanned += 1;
                after = Some(item.name.clone());
                let nested = item.name[folder.len()..].contains('/');
                // Items pending deletion are listed only when asked for
                // (describe-item shows them, restore-item brings them back).
                if (current_folder && nested)
                    || item.pending_deletion() != filters.pending
                    || !allowed(&caller, RuleType::Item, &item.name, Caps::LIST)
                    || !filters.matches(item)
                {
                    if scanned >= SCAN_BUDGET {
                        next = after.clone();
                        break 'scan;
                    }
                    continue;
                }
                items.push(if minimal {
                    json!({"item_name": item.name, "item_type": item.item_type.as_str(), "item_id": item.id})
                } else {
                    render_item(item, None)
                });
                if items.len() >= PAGE || scanned >= SCAN_BUDGET {
                    next = after.clone();
                    break 'scan;
                }
            }
            if !full {
                break;
            }
            if current_folder {
                // Skip the rest of the subfolder the batch ended in.
                if let Some(last) = &after
                    && let Some((sub, _)) = last[folder.len()..].split_once('/')
                {
                    after = Some(format!("{folder}{sub}/{PAST}"));
                }
            }
        }
        // Nothing after the last row read: no next page after all.
        if let Some(n) = &next
            && state
                .store
                .list_items(&folder, Some(n), 1)
                .await?
                .is_empty()
        {
            next = None;
        }
    }
    let folders = if token.is_none() && visible {
        subfolders(ctx, &caller, &folder).await?
    } else {
        BTreeSet::new()
    };
    let next_page = match next {
        Some(n) if paginate => encode_token(&n),
        _ => String::new(),
    };
    let has_next = !next_page.is_empty();
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
    Ok(json!({"items": items, "folders": folders, "next_page": next_page, "has_next": has_next}))
}

/// The direct subfolders of `folder` holding at least one item the caller
/// may list: one query per subfolder (it skips over each), plus at most a
/// bounded scan inside a subfolder whose first items the caller may not see.
async fn subfolders(
    ctx: &Ctx,
    caller: &Caller,
    folder: &str,
) -> Result<BTreeSet<String>, ApiError> {
    let store = &ctx.state.store;
    let mut out = BTreeSet::new();
    let mut after: Option<String> = None;
    let mut scanned = 0usize;
    while out.len() < MAX_FOLDERS && scanned < SCAN_BUDGET {
        let batch = store.list_items(folder, after.as_deref(), BATCH).await?;
        let Some(first_nested) = batch
            .iter()
            .inspect(|_| scanned += 1)
            .find(|i| i.name[folder.len()..].contains('/'))
        else {
            if (batch.len() as i64) < BATCH {
                break;
            }
            after = batch.last().map(|i| i.name.clone());
            continue;
        };
        let sub = match first_nested.name[folder.len()..].split_once('/') {
            Some((sub, _)) => format!("{folder}{sub}"),
            None => break,
        };
        let inside = format!("{sub}/");
        if may_see_under(caller.rules(), RuleType::Item, &inside, Caps::LIST) {
            // A listable item inside? Look at a bounded number of them.
            let mut probe: Option<String> = None;
            'probe: while scanned < SCAN_BUDGET {
                let rows = store.list_items(&inside, probe.as_deref(), BATCH).await?;
                for i in &rows {
                    scanned += 1;
                    if allowed(caller, RuleType::Item, &i.name, Caps::LIST) {
                        out.insert(sub.clone());
                        break 'probe;
                    }
                }
                if (rows.len() as i64) < BATCH {
                    break;
                }
                probe = rows.last().map(|i| i.name.clone());
            }
        }
        after = Some(format!("{inside}{PAST}"));
    }
    Ok(out)
}
