//! Universal Identity token operations, and a UID token used as the
//! credential of any other operation.
//!
//! Who may do what:
//! * `uid-generate-token`: an admin with `update` on the auth method
//!   (rule type `auth-method-rule`): a root token is a new credential for
//!   the method, like changing its settings.
//! * `uid-rotate-token`: the holder of the token itself (no session token).
//! * `uid-create-child-token`: the holder of the parent (`uid-token`), or an
//!   admin with `update` on the method (`token` + `auth-method-name` +
//!   `uid-token-id` of the parent).
//! * `uid-revoke-token`: the holder of the token or of one of its
//!   ancestors, or an admin with `update` on the method.
//! * `uid-list-children`: the holder (its subtree), or an admin with `read`
//!   on the method (every tree of the method).
//!
//! Revocation semantics: a revoked token can do nothing (log in, rotate,
//! make children, act as a token). `revokeSelf` revokes one token (its
//! children keep working); `revokeAll` revokes it and every token below it.
//! Session tokens minted by `auth` from a revoked UID token are deleted in
//! the same transaction, and every node drops its token cache (generation
//! bump), so they stop at once on this node and within a second on others.
//! Rotation keeps the session tokens minted with the old secret: they never
//! outlived the old expiry anyway (a session token's expiry is capped by
//! the UID token's at login), and rotating must not break running jobs.

use std::collections::HashMap;
use std::sync::Arc;

use coffer_core::model::{AuthMethod, AuthMethodKind, TokenRecord, UidToken};
use coffer_core::policy::{Caps, RuleType};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::auth::{Use, check_method_usable};
use super::auth_methods::check_description;
use super::{authenticate, name_param, refuse_unsupported, require};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::identity::uid::{self as uid_id, UidSettings};
use crate::state::{Caller, now_ms};
use crate::timefmt::go_time;
use crate::wire::Body;

/// Most live tokens one auth method may have (a guard against a token
/// holder filling the database with children).
const MAX_LIVE_TOKENS_PER_METHOD: i64 = 10_000;

/// A caller proven by a UID token, with its auth method.
struct Holder {
    token: UidToken,
    am: Arc<AuthMethod>,
}

/// Resolve a presented UID secret to a live token of an existing,
/// usable (access not expired, peer in bound IPs) UID auth method. Fills
/// the audit identity fields.
async fn holder(ctx: &mut Ctx, secret: &str) -> Result<Holder, ApiError> {
    let state = ctx.state.clone();
    let token = uid_id::lookup(&state, secret).await?.ok_or_else(|| {
        ApiError::Unauthorized(
            "invalid UID token: unknown, or replaced by a rotation (use the token the last uid-rotate-token returned)"
                .into(),
        )
    })?;
    ctx.access_id = token.access_id.clone();
    ctx.identity = token.token_id.clone();
    let am = state
        .snapshot()
        .by_access_id
        .get(&token.access_id)
        .filter(|am| am.kind == AuthMethodKind::UniversalIdentity)
        .cloned()
        .ok_or_else(|| {
            ApiError::Unauthorized("invalid UID token: its auth method no longer exists".into())
        })?;
    ctx.auth_method = am.name.clone();
    if let Some(e) = uid_id::unusable(&token, now_ms()) {
        return Err(e);
    }
    check_method_usable(&am, ctx.peer.ip(), Use::Login)?;
    Ok(Holder { token, am })
}

/// The `uid-token` parameter, if given.
fn uid_token_param(body: &Body) -> Result<Option<String>, ApiError> {
    Ok(body
        .opt_str("uid-token")?
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty()))
}

/// `uid-token` used in place of `token` by any operation: the caller is
/// the token's auth method (roles through its associations; the token's ID
/// is the `token_id` claim). Cached like session tokens; rotation and
/// revocation drop the cache entry.
pub(super) async fn authenticate_uid(ctx: &mut Ctx, secret: &str) -> Result<(), ApiError> {
    let state = ctx.state.clone();
    let hash = uid_id::hash(&state, secret);
    let snap = state.fresh_snapshot().await?;
    let cached = state.tokens.get(&hash).filter(|rec| {
        rec.expires_ms > now_ms()
            && snap
                .by_access_id
                .get(&rec.access_id)
                .is_some_and(|am| am.name == rec.auth_method_name)
    });
    let rec = match cached {
        Some(rec) => {
            ctx.access_id = rec.access_id.clone();
            ctx.auth_method = rec.auth_method_name.clone();
            ctx.identity = rec.identity.clone();
            if let Some(am) = snap.by_access_id.get(&rec.access_id) {
                check_method_usable(am, ctx.peer.ip(), Use::Token)?;
            }
            rec
        }
        None => {
            state.tokens.remove(&hash);
            let h = holder(ctx, secret).await?;
            let rec = Arc::new(TokenRecord {
                token_hash: hash.clone(),
                access_id: h.token.access_id.clone(),
                auth_method_name: h.am.name.clone(),
                identity: h.token.token_id.clone(),
                claims: uid_id::claims(&h.token),
                issued_ms: h.token.created_ms,
                expires_ms: h.token.expires_ms,
            });
            state.tokens.insert(hash.clone(), rec.clone());
            // A rotation or revocation that committed after our read may
            // have cleared the cache before we filled it: read again. If it
            // commits after this read, its cache clear comes after our
            // insert and removes the entry.
            let again = uid_id::lookup(&state, secret).await?;
            if let Some(e) = match &again {
                None => Some(ApiError::Unauthorized(
                    "invalid UID token: replaced by a rotation".into(),
                )),
                Some(t) => uid_id::unusable(t, now_ms()),
            } {
                state.tokens.remove(&hash);
                return Err(e);
            }
            rec
        }
    };
    // The snapshot may have moved while the store was read.
    let roles = state.snapshot().roles_for(&rec);
    ctx.caller = Some(Caller { token: rec, roles });
    Ok(())
}

/// Whether the request's credential is a UID token.
pub(super) fn called_with_uid(body: &Body) -> bool {
    body.token().is_some_and(|t| uid_id::is_uid_secret(&t))
}

/// The UID auth method an admin names in `auth-method-name`, after
/// checking the admin holds `need` on it.
fn admin_method(ctx: &mut Ctx, body: &Body, need: Caps) -> Result<Arc<AuthMethod>, ApiError> {
    if body
        .opt_str("auth-method-name")?
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(ApiError::bad(
            "missing required parameter auth-method-name (or pass uid-token to act as a UID token holder)",
        ));
    }
    let name = name_param(ctx, body, "auth-method-name")?;
    require(ctx, RuleType::AuthMethod, &name, need)?;
    let am = ctx
        .state
        .snapshot()
        .auth_methods
        .get(&name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("auth method {name:?} not found")))?;
    if am.kind != AuthMethodKind::UniversalIdentity {
        return Err(ApiError::bad(format!(
            "auth method {name:?} is a {} method: UID tokens belong to universal_identity methods",
            am.kind
        )));
    }
    Ok(am)
}

/// `description`, or the deprecated `comment`.
fn comment_param(body: &Body) -> Result<String, ApiError> {
    let c = match body.opt_str("description")? {
        Some(d) if !d.trim().is_empty() => d,
        _ => body.opt_str("comment")?.unwrap_or_default(),
    };
    let c = c.trim().to_owned();
    check_description(&c)?;
    if c.chars().any(char::is_control) {
        return Err(ApiError::bad(
            "comment/description must not contain control characters",
        ));
    }
    Ok(c)
}

fn token_response(secret: &SecretString, token: &UidToken) -> Value {
    json!({
        "token": secret.expose_secret(),
        "token_id": token.token_id,
        "expiration": go_time(token.expires_ms),
    })
}

fn store_insert_error(e: coffer_store::StoreError) -> ApiError {
    match e {
        coffer_store::StoreError::NotFound(what) => ApiError::Conflict(format!(
            "{what} not found: it was revoked, expired or deleted meanwhile"
        )),
        other => other.into(),
    }
}

/// `uid-generate-token {auth-method-name}` → `{token, token_id, expiration}`:
/// a new root token with the method's TTL and deny flags.
pub(super) async fn generate(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    if body
        .opt_str("auth-method-name")?
        .is_none_or(|s| s.trim().is_empty())
    {
        return Err(ApiError::bad("missing required parameter auth-method-name"));
    }
    let am = admin_method(ctx, body, Caps::UPDATE)?;
    // A new credential of the method gets every role associated with it.
    super::roles::check_method_roles_within(ctx, &am.name)?;
    let s = uid_id::settings_of(&am)?;
    mint(ctx, body, &am, &s, None, s.ttl_minutes).await
}

/// Mint and store a new token of `am` living `ttl_minutes`: a root token
/// (`parent` None) with the method's deny flags, or a child of `parent`
/// with the `child-deny-*` flags of `body` (deny-rotate also when the
/// parent is). Takes the `description`/`comment` of `body`, and refuses
/// when the method already has [`MAX_LIVE_TOKENS_PER_METHOD`] live tokens.
async fn mint(
    ctx: &mut Ctx,
    body: &Body,
    am: &AuthMethod,
    s: &UidSettings,
    parent: Option<&UidToken>,
    ttl_minutes: i64,
) -> Result<Value, ApiError> {
    let comment = comment_param(body)?;
    let state = ctx.state.clone();
    if state
        .store
        .count_live_uid_tokens(&am.access_id, now_ms())
        .await?
        >= MAX_LIVE_TOKENS_PER_METHOD
    {
        return Err(too_many_tokens());
    }
    let secret = uid_id::new_secret()?;
    let now = now_ms();
    let token = UidToken {
        token_id: uid_id::new_token_id()?,
        token_hash: uid_id::hash_new(&state, &secret),
        parent_id: parent.map(|p| p.token_id.clone()),
        access_id: am.access_id.clone(),
        depth: parent.map_or(1, |p| p.depth + 1),
        ttl_secs: ttl_minutes * 60,
        expires_ms: now + ttl_minutes * 60_000,
        deny_rotate: match parent {
            None => s.deny_rotate,
            Some(p) => p.deny_rotate || body.bool_or("child-deny-rotate", false)?,
        },
        deny_inheritance: match parent {
            None => s.deny_inheritance,
            Some(_) => body.bool_or("child-deny-inheritance", false)?,
        },
        comment,
        revoked: false,
        last_rotated_ms: 0,
        created_ms: now,
        modified_ms: now,
    };
    state
        .store
        .insert_uid_token(&token, ctx.audit())
        .await
        .map_err(store_insert_error)?;
    Ok(token_response(&secret, &token))
}

fn too_many_tokens() -> ApiError {
    ApiError::Conflict(format!(
        "this auth method already has {MAX_LIVE_TOKENS_PER_METHOD} live UID tokens: revoke unused ones (uid-revoke-token)"
    ))
}

/// `uid-rotate-token {uid-token}` → `{token, token_id, expiration}`: a new
/// secret for the same token, TTL restarted. The old secret stops working
/// at once. Of concurrent rotations of one secret exactly one wins; the
/// others get 409 and their (old) secret is dead.
pub(super) async fn rotate(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    refuse_unsupported(
        body,
        &[
            ("with-manual-ack", "rotation takes effect at once"),
            ("send-manual-ack-token", "rotation takes effect at once"),
            ("fork", "create a child with uid-create-child-token"),
        ],
    )?;
    let secret = uid_token_param(body)?.ok_or_else(|| {
        ApiError::bad("missing required parameter uid-token (the UID token to rotate)")
    })?;
    let h = holder(ctx, &secret).await?;
    ctx.set_object(h.token.token_id.clone());
    if h.token.deny_rotate {
        return Err(ApiError::Forbidden(format!(
            "UID token {} is deny-rotate: it cannot be rotated and ends at its expiry",
            h.token.token_id
        )));
    }
    let state = ctx.state.clone();
    let new_secret = uid_id::new_secret()?;
    let new_hash = uid_id::hash_new(&state, &new_secret);
    let now = now_ms();
    let expires = state
        .store
        .rotate_uid_token(
            &h.token.token_id,
            &h.token.token_hash,
            &new_hash,
            now,
            ctx.audit(),
        )
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "UID token {} was rotated, revoked or expired by a concurrent request: this secret is no longer valid",
                h.token.token_id
            ))
        })?;
    // The old secret must stop here now, and on other nodes within a
    // second (the rotation moved the generation in its transaction).
    state.tokens.remove(&h.token.token_hash);
    let rotated = UidToken {
        token_hash: new_hash,
        expires_ms: expires,
        last_rotated_ms: now,
        modified_ms: now,
        ..h.token
    };
    Ok(token_response(&new_secret, &rotated))
}

/// `uid-create-child-token {uid-token | token + auth-method-name +
/// uid-token-id, child-ttl, child-deny-rotate, child-deny-inheritance,
/// description | comment}` → `{token, token_id, expiration}`.
///
/// The child's TTL defaults to the parent's and may not exceed it nor the
/// method's child-ttl-limit; a deny-rotate parent makes deny-rotate
/// children (a child cannot outlast what its parent could); a
/// deny-inheritance parent makes none; depth is capped by tree-length.
pub(super) async fn create_child(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let (parent, am) = match uid_token_param(body)? {
        Some(secret) => {
            let h = holder(ctx, &secret).await?;
            (h.token, h.am)
        }
        None => {
            authenticate(ctx, body).await?;
            let am = admin_method(ctx, body, Caps::UPDATE)?;
            super::roles::check_method_roles_within(ctx, &am.name)?;
            let parent_id = body
                .opt_str("uid-token-id")?
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    ApiError::bad(
                        "missing required parameter uid-token-id (the parent token's ID, see uid-list-children) or uid-token",
                    )
                })?;
            let parent = find_in_method(ctx, &am, &parent_id).await?;
            if let Some(e) = uid_id::unusable(&parent, now_ms()) {
                return Err(ApiError::Conflict(format!(
                    "cannot create a child of this token: {e}"
                )));
            }
            (parent, am)
        }
    };
    ctx.set_object(parent.token_id.clone());
    let s: UidSettings = uid_id::settings_of(&am)?;
    if parent.deny_inheritance {
        return Err(ApiError::Forbidden(format!(
            "UID token {} is deny-inheritance: it cannot create child tokens",
            parent.token_id
        )));
    }
    let depth = parent.depth + 1;
    if depth > s.tree_length {
        return Err(ApiError::bad(format!(
            "UID token {} is at depth {} and this auth method's tree-length is {}: no deeper tokens",
            parent.token_id, parent.depth, s.tree_length
        )));
    }
    let limit = (parent.ttl_secs / 60).min(s.child_ttl_limit_minutes).max(1);
    let child_ttl = match body.opt_i64("child-ttl")? {
        None | Some(0) => limit,
        Some(m) if (1..=limit).contains(&m) => m,
        Some(m) => {
            return Err(ApiError::bad(format!(
                "child-ttl {m} is out of range: 1 to {limit} minutes (no more than the parent token's TTL and the method's child-ttl-limit)"
            )));
        }
    };
    mint(ctx, body, &am, &s, Some(&parent), child_ttl).await
}

/// A token of `am` by ID; NotFound (naming the method) otherwise.
async fn find_in_method(ctx: &Ctx, am: &AuthMethod, id: &str) -> Result<UidToken, ApiError> {
    let shown = coffer_core::name::truncate_for_message(id);
    ctx.state
        .store
        .get_uid_token(id)
        .await?
        .filter(|t| t.access_id == am.access_id)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "UID token {shown:?} not found in auth method {:?}",
                am.name
            ))
        })
}

/// `uid-revoke-token {revoke-token (ID or secret), revoke-type
/// (revokeSelf | revokeAll), auth-method-name | uid-token}`.
pub(super) async fn revoke(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let target = body.req_str("revoke-token")?.trim().to_owned();
    let descendants = match body
        .req_str("revoke-type")?
        .trim()
        .to_ascii_lowercase()
        .replace(['-', '_'], "")
        .as_str()
    {
        "revokeself" | "self" => false,
        "revokeall" | "all" => true,
        _ => {
            return Err(ApiError::bad(
                "revoke-type must be revokeSelf (this token only) or revokeAll (this token and every token below it)",
            ));
        }
    };
    let state = ctx.state.clone();
    let (target, am) = match uid_token_param(body)? {
        Some(secret) => {
            let h = holder(ctx, &secret).await?;
            if let Some(name) = body.opt_str("auth-method-name")?
                && !name.trim().is_empty()
                && coffer_core::name::normalize_name(&name).ok().as_deref()
                    != Some(h.am.name.as_str())
            {
                return Err(ApiError::bad(
                    "auth-method-name does not name the uid-token's auth method",
                ));
            }
            let target = resolve_target(ctx, &h.am, &target).await?;
            // Only the token itself or one of its ancestors may revoke it.
            let tokens = state.store.list_uid_tokens(&h.am.access_id).await?;
            if !is_ancestor_or_self(&tokens, &h.token.token_id, &target.token_id) {
                return Err(ApiError::Forbidden(format!(
                    "UID token {} may revoke only itself and the tokens below it, not {}",
                    h.token.token_id, target.token_id
                )));
            }
            (target, h.am)
        }
        None => {
            authenticate(ctx, body).await?;
            let am = admin_method(ctx, body, Caps::UPDATE)?;
            let target = resolve_target(ctx, &am, &target).await?;
            (target, am)
        }
    };
    ctx.set_object(target.token_id.clone());
    let revoked = state
        .store
        .revoke_uid_token(&target.token_id, descendants, now_ms(), ctx.audit())
        .await?;
    // Session tokens minted from the revoked tokens are gone from the
    // store; drop every cached token here now (other nodes follow the
    // generation the revocation moved).
    state.policy_changed();
    Ok(json!({
        "token_id": target.token_id,
        "auth_method_name": am.name,
        "revoke_type": if descendants { "revokeAll" } else { "revokeSelf" },
        "revoked": revoked,
    }))
}

/// The token a `revoke-token` value names: an ID, or a secret (never echoed).
async fn resolve_target(ctx: &Ctx, am: &AuthMethod, value: &str) -> Result<UidToken, ApiError> {
    if uid_id::is_uid_secret(value) {
        uid_id::lookup(&ctx.state, value)
            .await?
            .filter(|t| t.access_id == am.access_id)
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "revoke-token is not a current UID token secret of auth method {:?}; pass the token ID (uid-…) instead",
                    am.name
                ))
            })
    } else {
        find_in_method(ctx, am, value).await
    }
}

/// Is `ancestor` the token `id` or above it?
fn is_ancestor_or_self(tokens: &[UidToken], ancestor: &str, id: &str) -> bool {
    let parents: HashMap<&str, Option<&str>> = tokens
        .iter()
        .map(|t| (t.token_id.as_str(), t.parent_id.as_deref()))
        .collect();
    let mut at = Some(id);
    // Bounded by the number of tokens even if the stored tree were corrupt.
    for _ in 0..=tokens.len() {
        match at {
            Some(x) if x == ancestor => return true,
            Some(x) => at = parents.get(x).copied().flatten(),
            None => return false,
        }
    }
    false
}

/// `uid-list-children {uid-token | token + auth-method-name}` →
/// `{max_depth, number_of_tokens, root}`: the holder's token and every
/// token below it; for an admin, every tree of the method under a root
/// node standing for the auth method (depth 0, its access ID as `id`).
/// Revoked and expired tokens are shown (flagged); secrets never are.
pub(super) async fn list_children(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let state = ctx.state.clone();
    let (top, am) = match uid_token_param(body)? {
        Some(secret) => {
            let h = holder(ctx, &secret).await?;
            (Some(h.token), h.am)
        }
        None => {
            authenticate(ctx, body).await?;
            (None, admin_method(ctx, body, Caps::READ)?)
        }
    };
    let tokens = state.store.list_uid_tokens(&am.access_id).await?;
    let mut children: HashMap<Option<&str>, Vec<&UidToken>> = HashMap::new();
    for t in &tokens {
        children.entry(t.parent_id.as_deref()).or_default().push(t);
    }
    let mut count = 0usize;
    let mut max_depth = 0i32;
    let root = match &top {
        Some(t) => {
            ctx.set_object(t.token_id.clone());
            render_node(t, &children, &mut count, &mut max_depth)
        }
        None => {
            let mut kids = Map::new();
            for t in children.get(&None).into_iter().flatten() {
                kids.insert(
                    t.token_id.clone(),
                    render_node(t, &children, &mut count, &mut max_depth),
                );
            }
            json!({
                "id": am.access_id,
                "comment": format!("auth method {}", am.name),
                "depth": 0,
                "ttl": uid_id::settings_of(&am).map(|s| s.ttl_minutes).unwrap_or_default(),
                "deny_rotate": false,
                "deny_inheritance": false,
                "revoked": false,
                "children": kids,
            })
        }
    };
    Ok(json!({
        "max_depth": max_depth,
        "number_of_tokens": count,
        "root": root,
    }))
}

/// One token and its subtree (`UIDTokenDetails`). Parents are stored
/// before children and never form cycles, so the recursion is bounded by
/// the tree-length.
fn render_node(
    t: &UidToken,
    children: &HashMap<Option<&str>, Vec<&UidToken>>,
    count: &mut usize,
    max_depth: &mut i32,
) -> Value {
    *count += 1;
    *max_depth = (*max_depth).max(t.depth);
    let mut kids = Map::new();
    if t.depth <= uid_id::MAX_TREE_LENGTH {
        for c in children
            .get(&Some(t.token_id.as_str()))
            .into_iter()
            .flatten()
        {
            kids.insert(
                c.token_id.clone(),
                render_node(c, children, count, max_depth),
            );
        }
    }
    let mut v = json!({
        "id": t.token_id,
        "comment": t.comment,
        "depth": t.depth,
        "ttl": t.ttl_secs / 60,
        "deny_rotate": t.deny_rotate,
        "deny_inheritance": t.deny_inheritance,
        "revoked": t.revoked,
        "expired_date": go_time(t.expires_ms),
        "children": kids,
    });
    if t.last_rotated_ms > 0 {
        v["last_rotate"] = Value::String(go_time(t.last_rotated_ms));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, parent: Option<&str>) -> UidToken {
        UidToken {
            token_id: id.into(),
            token_hash: id.as_bytes().to_vec(),
            parent_id: parent.map(String::from),
            access_id: "p-x".into(),
            depth: 1,
            ttl_secs: 60,
            expires_ms: 1,
            deny_rotate: false,
            deny_inheritance: false,
            comment: String::new(),
            revoked: false,
            last_rotated_ms: 0,
            created_ms: 0,
            modified_ms: 0,
        }
    }

    #[test]
    fn ancestry() {
        let tokens = [
            t("r", None),
            t("c", Some("r")),
            t("g", Some("c")),
            t("s", Some("r")),
        ];
        assert!(is_ancestor_or_self(&tokens, "r", "g"));
        assert!(is_ancestor_or_self(&tokens, "c", "g"));
        assert!(is_ancestor_or_self(&tokens, "g", "g"));
        assert!(!is_ancestor_or_self(&tokens, "g", "c"));
        assert!(!is_ancestor_or_self(&tokens, "s", "g"));
        assert!(!is_ancestor_or_self(&tokens, "c", "s"));
        // A corrupt cycle does not loop forever.
        let cycle = [t("a", Some("b")), t("b", Some("a"))];
        assert!(!is_ancestor_or_self(&cycle, "z", "a"));
    }
}
