//! Operations: the table of every operation ([`OPERATIONS`]) and one module
//! per family. Each handler authorizes through [`require`] (checked against
//! its table row by the pipeline) and returns the JSON response; the
//! pipeline in `http.rs` does decoding, authentication, audit and encoding.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use coffer_core::dbsql::DbKind;
use coffer_core::model::{AuthMethodKind, ItemType};
use coffer_core::policy::{Caps, RuleType, allows, allows_any};
use futures::future::BoxFuture;
use serde_json::Value;

use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::{Caller, now_ms};
use crate::wire::Body;

mod audit_ops;
mod auth;
mod auth_method_update;
mod auth_methods;
pub(crate) mod azure;
pub(crate) mod certs;
pub(crate) mod dynamic;
mod explain;
pub(crate) mod items;
pub(crate) mod keys;
mod list;
pub mod params;
pub mod returns;
mod roles;
pub(crate) mod rotated;
pub(crate) mod targets;
mod uid;

/// How an operation is authorized. The pipeline authenticates the token of
/// every operation but [`Access::Public`] ones, and after a successful
/// handler checks that the capabilities declared here were checked (a
/// handler that forgot `require` fails closed with a 500 instead of acting
/// unauthorized; the sweep test calls every operation with a role-less
/// token).
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// No token: the operation checks its own proof (login, UID holder).
    Public,
    /// Every listed capability, on the object(s) the request names.
    Requires(&'static [(RuleType, Caps)]),
    /// At least one of the capabilities.
    RequiresAny(RuleType, Caps),
    /// Lists only what the caller holds this capability on.
    Filtered(RuleType, Caps),
    /// Gated by the roles' `audit-access`.
    Audit,
    /// Acts on the caller's own token.
    OwnToken,
}

impl Access {
    pub fn needs_token(self) -> bool {
        !matches!(self, Access::Public)
    }

    /// A declared check the request did not make, if any.
    pub(crate) fn unchecked(self, checked: &[(RuleType, Caps)]) -> Option<String> {
        match self {
            Access::Requires(list) => list
                .iter()
                .find(|(t, c)| !checked.iter().any(|(t2, c2)| t2 == t && c2.contains(*c)))
                .map(|(t, c)| format!("{} {}", c.names().join("+"), t)),
            Access::RequiresAny(t, c) => {
                (!checked.iter().any(|(t2, c2)| *t2 == t && c2.intersects(c)))
                    .then(|| format!("one of {} {}", c.names().join("/"), t))
            }
            Access::Public | Access::Filtered(..) | Access::Audit | Access::OwnToken => None,
        }
    }
}

type Handler = for<'a> fn(&'a mut Ctx, &'a Body) -> BoxFuture<'a, Result<Value, ApiError>>;

/// One operation of the wire API.
pub struct Operation {
    pub name: &'static str,
    /// Other names of the same operation (Akeyless has old and new ones).
    pub aliases: &'static [&'static str],
    pub access: Access,
    /// The handler's path (`items::create_secret`): its module is the
    /// operation's family in the OpenAPI description.
    pub handler_path: &'static str,
    handler: Handler,
}

impl Operation {
    pub(crate) fn handler(&self) -> Handler {
        self.handler
    }
}

macro_rules! op {
    ($name:literal, [$($alias:literal),*], $access:expr, $handler:path $(, $arg:expr)?) => {
        Operation {
            name: $name,
            aliases: &[$($alias),*],
            access: $access,
            handler_path: stringify!($handler),
            handler: |ctx, body| Box::pin($handler(ctx, body $(, $arg)?)),
        }
    };
}

const ROLE_UPDATE: &[(RuleType, Caps)] = &[(RuleType::Role, Caps::UPDATE)];
const AM_UPDATE: &[(RuleType, Caps)] = &[(RuleType::AuthMethod, Caps::UPDATE)];
const ITEM_CREATE: &[(RuleType, Caps)] = &[(RuleType::Item, Caps::CREATE)];
const ITEM_READ: &[(RuleType, Caps)] = &[(RuleType::Item, Caps::READ)];
const ITEM_UPDATE: &[(RuleType, Caps)] = &[(RuleType::Item, Caps::UPDATE)];
const ITEM_DELETE: &[(RuleType, Caps)] = &[(RuleType::Item, Caps::DELETE)];
const READ_OR_LIST: Caps = Caps::READ.union(Caps::LIST);

/// Every operation: name, aliases, access, handler. The one place to add one.
pub static OPERATIONS: &[Operation] = &[
    // logins and tokens
    op!("auth", [], Access::Public, auth::auth),
    op!("validate-token", [], Access::Public, auth::validate_token),
    op!(
        "revoke-token",
        ["revoke-creds"],
        Access::OwnToken,
        auth::revoke_token
    ),
    op!(
        "get-caller-identity",
        ["whoami"],
        Access::OwnToken,
        auth::get_caller_identity
    ),
    op!("oidc-auth-url", [], Access::Public, auth::oidc_auth_url),
    op!(
        "get-cert-challenge",
        [],
        Access::Public,
        auth::get_cert_challenge
    ),
    // universal identity tokens (holder or admin; see uid.rs)
    op!("uid-rotate-token", [], Access::Public, uid::rotate),
    op!(
        "uid-create-child-token",
        [],
        Access::Public,
        uid::create_child
    ),
    op!("uid-revoke-token", [], Access::Public, uid::revoke),
    op!("uid-list-children", [], Access::Public, uid::list_children),
    op!(
        "uid-generate-token",
        [],
        Access::Requires(&[(RuleType::AuthMethod, Caps::UPDATE)]),
        uid::generate
    ),
    // auth methods
    op!(
        "create-auth-method",
        ["auth-method-create-api-key"],
        Access::Requires(&[(RuleType::AuthMethod, Caps::CREATE)]),
        auth_methods::create_api_key
    ),
    op!(
        "create-auth-method-oauth2",
        ["auth-method-create-oauth2"],
        Access::Requires(&[(RuleType::AuthMethod, Caps::CREATE)]),
        auth_methods::create_typed,
        AuthMethodKind::OAuth2
    ),
    op!(
        "create-auth-method-k8s",
        ["auth-method-create-k8s"],
        Access::Requires(&[(RuleType::AuthMethod, Caps::CREATE)]),
        auth_methods::create_typed,
        AuthMethodKind::K8s
    ),
    op!(
        "create-auth-method-aws-iam",
        ["auth-method-create-aws-iam"],
        Access::Requires(&[(RuleType::AuthMethod, Caps::CREATE)]),
        auth_methods::create_typed,
        AuthMethodKind::AwsIam
    ),
    op!(
        "create-auth-method-azure-ad",
        ["auth-method-create-azure-ad"],
        Access::Requires(&[(RuleType::AuthMethod, Caps::CREATE)]),
        auth_methods::create_typed,
        AuthMethodKind::AzureAd
    ),
    op!(
        "create-auth-method-gcp",
        ["auth-method-create-gcp"],
        Access::Requires(&[(RuleType::AuthMethod, Caps::CREATE)]),
        auth_methods::create_typed,
        AuthMethodKind::Gcp
    ),
    op!(
        "create-auth-method-universal-identity",
        ["auth-method-create-universal-identity"],
        Access::Requires(&[(RuleType::AuthMethod, Caps::CREATE)]),
        auth_methods::create_typed,
        AuthMethodKind::UniversalIdentity
    ),
    op!(
        "create-auth-method-cert",
        ["auth-method-create-cert"],
        Access::Requires(&[(RuleType::AuthMethod, Caps::CREATE)]),
        auth_methods::create_typed,
        AuthMethodKind::Cert
    ),
    op!(
        "create-auth-method-oidc",
        ["auth-method-create-oidc"],
        Access::Requires(&[(RuleType::AuthMethod, Caps::CREATE)]),
        auth_methods::create_typed,
        AuthMethodKind::Oidc
    ),
    op!(
        "get-auth-method",
        ["auth-method-get"],
        Access::Requires(&[(RuleType::AuthMethod, Caps::READ)]),
        auth_methods::get
    ),
    op!(
        "list-auth-methods",
        ["auth-method-list"],
        Access::Filtered(RuleType::AuthMethod, Caps::LIST),
        auth_methods::list
    ),
    op!(
        "delete-auth-method",
        ["auth-method-delete"],
        Access::Requires(&[(RuleType::AuthMethod, Caps::DELETE)]),
        auth_methods::delete
    ),
    // changing auth methods (see auth_method_update.rs)
    op!(
        "update-auth-method",
        [],
        Access::Requires(AM_UPDATE),
        auth_method_update::update,
        None
    ),
    op!(
        "auth-method-update-api-key",
        [],
        Access::Requires(AM_UPDATE),
        auth_method_update::update,
        Some(AuthMethodKind::ApiKey)
    ),
    op!(
        "auth-method-update-oauth2",
        ["update-auth-method-oauth2"],
        Access::Requires(AM_UPDATE),
        auth_method_update::update,
        Some(AuthMethodKind::OAuth2)
    ),
    op!(
        "auth-method-update-k8s",
        ["update-auth-method-k8s"],
        Access::Requires(AM_UPDATE),
        auth_method_update::update,
        Some(AuthMethodKind::K8s)
    ),
    op!(
        "auth-method-update-aws-iam",
        ["update-auth-method-aws-iam"],
        Access::Requires(AM_UPDATE),
        auth_method_update::update,
        Some(AuthMethodKind::AwsIam)
    ),
    op!(
        "auth-method-update-azure-ad",
        ["update-auth-method-azure-ad"],
        Access::Requires(AM_UPDATE),
        auth_method_update::update,
        Some(AuthMethodKind::AzureAd)
    ),
    op!(
        "auth-method-update-gcp",
        ["update-auth-method-gcp"],
        Access::Requires(AM_UPDATE),
        auth_method_update::update,
        Some(AuthMethodKind::Gcp)
    ),
    op!(
        "auth-method-update-universal-identity",
        ["update-auth-method-universal-identity"],
        Access::Requires(AM_UPDATE),
        auth_method_update::update,
        Some(AuthMethodKind::UniversalIdentity)
    ),
    op!(
        "auth-method-update-cert",
        ["update-auth-method-cert"],
        Access::Requires(AM_UPDATE),
        auth_method_update::update,
        Some(AuthMethodKind::Cert)
    ),
    op!(
        "auth-method-update-oidc",
        ["update-auth-method-oidc"],
        Access::Requires(AM_UPDATE),
        auth_method_update::update,
        Some(AuthMethodKind::Oidc)
    ),
    op!(
        "reset-access-key",
        [],
        Access::Requires(AM_UPDATE),
        auth_method_update::reset_access_key
    ),
    // roles, rules and associations
    op!(
        "create-role",
        [],
        Access::Requires(&[(RuleType::Role, Caps::CREATE)]),
        roles::create
    ),
    op!(
        "get-role",
        [],
        Access::Requires(&[(RuleType::Role, Caps::READ)]),
        roles::get
    ),
    op!(
        "list-roles",
        [],
        Access::Filtered(RuleType::Role, Caps::LIST),
        roles::list
    ),
    op!(
        "delete-role",
        [],
        Access::Requires(&[(RuleType::Role, Caps::DELETE)]),
        roles::delete
    ),
    op!(
        "set-role-rule",
        [],
        Access::Requires(ROLE_UPDATE),
        roles::set_rule
    ),
    op!(
        "delete-role-rule",
        [],
        Access::Requires(ROLE_UPDATE),
        roles::delete_rule
    ),
    op!(
        "assoc-role-am",
        [],
        Access::Requires(&[
            (RuleType::Role, Caps::UPDATE),
            (RuleType::AuthMethod, Caps::UPDATE)
        ]),
        roles::assoc
    ),
    op!(
        "update-role",
        [],
        Access::Requires(ROLE_UPDATE),
        roles::update
    ),
    op!(
        "update-assoc",
        [],
        Access::Requires(&[
            (RuleType::Role, Caps::UPDATE),
            (RuleType::AuthMethod, Caps::UPDATE)
        ]),
        roles::update_assoc
    ),
    op!(
        "delete-assoc",
        [],
        Access::Requires(&[
            (RuleType::Role, Caps::UPDATE),
            (RuleType::AuthMethod, Caps::UPDATE)
        ]),
        roles::delete_assoc
    ),
    // static secrets
    op!(
        "create-secret",
        [],
        Access::Requires(&[(RuleType::Item, Caps::CREATE)]),
        items::create_secret
    ),
    op!(
        "update-secret-val",
        [],
        Access::Requires(&[(RuleType::Item, Caps::UPDATE)]),
        items::update_secret_val
    ),
    op!(
        "get-secret-value",
        [],
        Access::Requires(&[(RuleType::Item, Caps::READ)]),
        items::get_secret_value
    ),
    op!(
        "describe-item",
        [],
        Access::RequiresAny(RuleType::Item, Caps::READ.union(Caps::LIST)),
        items::describe_item
    ),
    op!(
        "list-items",
        [],
        Access::Filtered(RuleType::Item, Caps::LIST),
        list::list_items
    ),
    op!(
        "delete-item",
        [],
        Access::Requires(&[(RuleType::Item, Caps::DELETE)]),
        items::delete_item
    ),
    op!(
        "update-item",
        [],
        Access::Requires(ITEM_UPDATE),
        items::update_item
    ),
    op!(
        "get-tags",
        [],
        Access::RequiresAny(RuleType::Item, READ_OR_LIST),
        items::get_tags
    ),
    op!(
        "delete-items",
        [],
        Access::Requires(ITEM_DELETE),
        items::delete_items
    ),
    op!(
        "restore-item",
        [],
        Access::Requires(ITEM_DELETE),
        items::restore_item
    ),
    // targets: stored database connections
    op!(
        "target-create-db",
        ["create-db-target"],
        Access::Requires(&[(RuleType::Target, Caps::CREATE)]),
        targets::create
    ),
    op!(
        "target-update-db",
        ["update-db-target"],
        Access::Requires(&[(RuleType::Target, Caps::UPDATE)]),
        targets::update
    ),
    op!(
        "target-get",
        ["get-target"],
        Access::RequiresAny(RuleType::Target, READ_OR_LIST),
        targets::get
    ),
    op!(
        "target-get-details",
        ["get-target-details"],
        Access::RequiresAny(RuleType::Target, READ_OR_LIST),
        targets::get_details
    ),
    op!(
        "target-list",
        ["list-targets"],
        Access::Filtered(RuleType::Target, Caps::LIST),
        targets::list
    ),
    op!(
        "target-delete",
        ["delete-target"],
        Access::Requires(&[(RuleType::Target, Caps::DELETE)]),
        targets::delete
    ),
    // dynamic secrets and their leases
    op!(
        "dynamic-secret-create-mysql",
        ["gateway-create-producer-mysql"],
        Access::Requires(ITEM_CREATE),
        dynamic::create,
        DbKind::MySql
    ),
    op!(
        "dynamic-secret-create-postgresql",
        ["gateway-create-producer-postgresql"],
        Access::Requires(ITEM_CREATE),
        dynamic::create,
        DbKind::Postgres
    ),
    op!(
        "dynamic-secret-create-azure",
        ["gateway-create-producer-azure"],
        Access::Requires(ITEM_CREATE),
        dynamic::create_azure,
        false
    ),
    op!(
        "dynamic-secret-update-azure",
        ["gateway-update-producer-azure"],
        Access::Requires(ITEM_UPDATE),
        dynamic::create_azure,
        true
    ),
    op!(
        "dynamic-secret-update-mysql",
        ["gateway-update-producer-mysql"],
        Access::Requires(ITEM_UPDATE),
        dynamic::update,
        DbKind::MySql
    ),
    op!(
        "dynamic-secret-update-postgresql",
        ["gateway-update-producer-postgresql"],
        Access::Requires(ITEM_UPDATE),
        dynamic::update,
        DbKind::Postgres
    ),
    op!(
        "dynamic-secret-get",
        ["gateway-get-producer"],
        Access::RequiresAny(RuleType::Item, READ_OR_LIST),
        dynamic::get
    ),
    op!(
        "dynamic-secret-list",
        ["gateway-list-producers"],
        Access::Filtered(RuleType::Item, Caps::LIST),
        dynamic::list_producers,
        ItemType::DynamicSecret
    ),
    op!(
        "dynamic-secret-delete",
        ["gateway-delete-producer"],
        Access::Requires(ITEM_DELETE),
        dynamic::delete
    ),
    op!(
        "get-dynamic-secret-value",
        ["dynamic-secret-get-value"],
        Access::Requires(ITEM_READ),
        dynamic::get_value
    ),
    op!(
        "dynamic-secret-tmp-creds-get",
        ["gateway-get-producer-tmp-creds", "gateway-get-tmp-users"],
        Access::Requires(ITEM_READ),
        dynamic::tmp_creds_get
    ),
    op!(
        "dynamic-secret-tmp-creds-delete",
        [
            "gateway-revoke-producer-tmp-creds",
            "gateway-revoke-tmp-users"
        ],
        Access::Requires(ITEM_READ),
        dynamic::tmp_creds_delete
    ),
    op!(
        "dynamic-secret-tmp-creds-update",
        ["gateway-update-tmp-users"],
        Access::Requires(ITEM_READ),
        dynamic::tmp_creds_update
    ),
    op!(
        "lease-list",
        [],
        Access::Filtered(RuleType::Item, Caps::READ),
        dynamic::lease_list
    ),
    // rotated secrets
    op!(
        "rotated-secret-create-mysql",
        [],
        Access::Requires(&[
            (RuleType::Item, Caps::CREATE),
            (RuleType::Target, Caps::READ)
        ]),
        rotated::create,
        Some(DbKind::MySql)
    ),
    op!(
        "rotated-secret-create-postgresql",
        [],
        Access::Requires(&[
            (RuleType::Item, Caps::CREATE),
            (RuleType::Target, Caps::READ)
        ]),
        rotated::create,
        Some(DbKind::Postgres)
    ),
    op!(
        "create-rotated-secret",
        [],
        Access::Requires(&[
            (RuleType::Item, Caps::CREATE),
            (RuleType::Target, Caps::READ)
        ]),
        rotated::create,
        None
    ),
    op!(
        "rotated-secret-update-mysql",
        ["rotated-secret-update-postgresql", "update-rotated-secret"],
        Access::Requires(ITEM_UPDATE),
        rotated::update
    ),
    op!(
        "get-rotated-secret-value",
        ["rotated-secret-get-value"],
        Access::Requires(ITEM_READ),
        rotated::get_value
    ),
    op!(
        "gateway-rotate-secret",
        ["rotate-secret"],
        Access::Requires(ITEM_UPDATE),
        rotated::rotate_now
    ),
    op!(
        "rotated-secret-list",
        [],
        Access::Filtered(RuleType::Item, Caps::LIST),
        dynamic::list_producers,
        ItemType::RotatedSecret
    ),
    op!(
        "rotated-secret-delete",
        [],
        Access::Requires(ITEM_DELETE),
        rotated::delete
    ),
    // keys
    op!(
        "create-key",
        [],
        Access::Requires(ITEM_CREATE),
        keys::create,
        false
    ),
    op!(
        "create-classic-key",
        [],
        Access::Requires(ITEM_CREATE),
        keys::create,
        true
    ),
    op!(
        "get-rsa-public",
        [],
        Access::Requires(ITEM_READ),
        keys::get_public
    ),
    op!("encrypt", [], Access::Requires(ITEM_READ), keys::encrypt),
    op!("decrypt", [], Access::Requires(ITEM_READ), keys::decrypt),
    op!(
        "rotate-key",
        [],
        Access::Requires(ITEM_UPDATE),
        keys::rotate
    ),
    op!(
        "update-classic-key-certificate",
        [],
        Access::Requires(ITEM_UPDATE),
        keys::update_certificate
    ),
    // certificate issuers and issued certificates
    op!(
        "create-ssh-cert-issuer",
        [],
        Access::Requires(&[(RuleType::Item, Caps::CREATE), (RuleType::Item, Caps::READ)]),
        certs::ssh_issuer_save,
        false
    ),
    op!(
        "update-ssh-cert-issuer",
        [],
        Access::Requires(&[(RuleType::Item, Caps::UPDATE), (RuleType::Item, Caps::READ)]),
        certs::ssh_issuer_save,
        true
    ),
    op!(
        "get-ssh-certificate",
        [],
        Access::Requires(ITEM_READ),
        certs::get_ssh_certificate
    ),
    op!(
        "create-pki-cert-issuer",
        [],
        Access::Requires(&[(RuleType::Item, Caps::CREATE), (RuleType::Item, Caps::READ)]),
        certs::pki_issuer_save,
        false
    ),
    op!(
        "update-pki-cert-issuer",
        [],
        Access::Requires(&[(RuleType::Item, Caps::UPDATE), (RuleType::Item, Caps::READ)]),
        certs::pki_issuer_save,
        true
    ),
    op!(
        "get-pki-certificate",
        [],
        Access::Requires(ITEM_READ),
        certs::get_pki_certificate
    ),
    op!(
        "cert-list",
        ["list-certificates"],
        Access::Filtered(RuleType::Item, Caps::LIST),
        certs::cert_list
    ),
    op!(
        "revoke-certificate",
        [],
        Access::Requires(ITEM_UPDATE),
        certs::revoke_certificate
    ),
    // audit and explanations
    op!("audit-list", [], Access::Audit, audit_ops::list),
    op!("audit-verify", [], Access::Audit, audit_ops::verify),
    op!(
        "explain-access",
        [],
        Access::Requires(&[(RuleType::AuthMethod, Caps::READ)]),
        explain::explain_access
    ),
];

/// An operation outside the table, for the pipeline's own tests.
#[cfg(test)]
pub(crate) fn test_operation(
    name: &'static str,
    access: Access,
    handler: Handler,
) -> &'static Operation {
    Box::leak(Box::new(Operation {
        name,
        aliases: &[],
        access,
        handler_path: "test",
        handler,
    }))
}

/// The operation a (normalised) name or alias names.
pub fn find(name: &str) -> Option<&'static Operation> {
    static BY_NAME: LazyLock<HashMap<&'static str, &'static Operation>> = LazyLock::new(|| {
        let mut m = HashMap::new();
        for op in OPERATIONS {
            for n in std::iter::once(&op.name).chain(op.aliases) {
                m.insert(*n, op);
            }
        }
        m
    });
    BY_NAME.get(name).copied()
}

/// Resolve the body's token to a caller: cache first, then the store. The
/// auth method's bound IPs and access expiry are checked on every request,
/// not only at login: a token is only as good as the method that minted it.
pub(crate) async fn authenticate(ctx: &mut Ctx, body: &Body) -> Result<(), ApiError> {
    let token = body.token().ok_or_else(|| {
        ApiError::Unauthorized(
            "missing token: log in with /auth and pass the token in the \"token\" field".into(),
        )
    })?;
    if token.len() > 4096 {
        return Err(ApiError::Unauthorized("invalid token".into()));
    }
    if crate::identity::uid::is_uid_secret(&token) {
        return uid::authenticate_uid(ctx, &token).await;
    }
    let state = ctx.state.clone();
    let snap = state.fresh_snapshot().await?;
    let hash = state.keys.token_hasher.hash(token.as_bytes());
    let rec = match state.tokens.get(&hash) {
        Some(rec) => rec,
        None => {
            let rec = state.store.get_token(&hash).await?.ok_or_else(|| {
                ApiError::Unauthorized("invalid token: unknown or revoked".into())
            })?;
            let rec = Arc::new(rec);
            if rec.expires_ms > now_ms() {
                state.tokens.insert(hash.clone(), rec.clone());
            }
            rec
        }
    };
    ctx.access_id = rec.access_id.clone();
    ctx.auth_method = rec.auth_method_name.clone();
    ctx.identity = rec.identity.clone();
    if rec.expires_ms <= now_ms() {
        state.tokens.remove(&hash);
        return Err(ApiError::Unauthorized(
            "token expired: log in again with /auth".into(),
        ));
    }
    // A deleted auth method takes its tokens with it, immediately.
    let am = match snap.by_access_id.get(&rec.access_id) {
        Some(am) if am.name == rec.auth_method_name => am,
        _ => {
            state.tokens.remove(&hash);
            return Err(ApiError::Unauthorized(
                "invalid token: its auth method no longer exists".into(),
            ));
        }
    };
    auth::check_method_usable(am, ctx.peer.ip(), auth::Use::Token)?;
    // A certificate since revoked, or a CA no longer trusted, by the
    // method's current settings ends the token too.
    if am.kind == AuthMethodKind::Cert {
        crate::identity::cert::token_still_trusted(am, &rec.claims).inspect_err(|_| {
            state.tokens.remove(&hash);
        })?;
    }
    // A jwt-ttl shortened since the token was issued applies to it too.
    if am.token_ttl_secs > 0
        && rec
            .issued_ms
            .saturating_add(am.token_ttl_secs.saturating_mul(1000))
            <= now_ms()
    {
        state.tokens.remove(&hash);
        return Err(ApiError::Unauthorized(format!(
            "token expired: auth method {:?} now gives tokens {} minutes (jwt-ttl); log in again with /auth",
            am.name,
            am.token_ttl_secs / 60
        )));
    }
    let roles = snap.roles_for(&rec);
    ctx.caller = Some(Caller { token: rec, roles });
    Ok(())
}

/// Refuse unless the caller holds every capability in `need` on the object.
pub fn require(ctx: &mut Ctx, rule_type: RuleType, name: &str, need: Caps) -> Result<(), ApiError> {
    let caller = ctx.caller()?;
    if allows(caller.rules(), rule_type, name, need) {
        ctx.checked(rule_type, need);
        Ok(())
    } else {
        Err(denied(rule_type, name, need))
    }
}

/// Refuse unless the caller holds at least one capability of `any`.
pub fn require_any(
    ctx: &mut Ctx,
    rule_type: RuleType,
    name: &str,
    any: Caps,
) -> Result<(), ApiError> {
    let caller = ctx.caller()?;
    if allows_any(caller.rules(), rule_type, name, any) {
        ctx.checked(rule_type, any);
        Ok(())
    } else {
        Err(denied(rule_type, name, any))
    }
}

fn denied(rule_type: RuleType, name: &str, need: Caps) -> ApiError {
    ApiError::Forbidden(format!(
        "access denied: no role of this caller grants {} on {} {name:?}",
        need.names().join("+"),
        rule_type
    ))
}

/// Can the caller `need` on the object? (For filtering lists.)
pub fn allowed(caller: &Caller, rule_type: RuleType, name: &str, need: Caps) -> bool {
    allows(caller.rules(), rule_type, name, need)
}

/// Does the caller hold `caps` on every object of `rule_type`? Then a
/// missing object may be reported as missing; otherwise "missing" and "not
/// yours" get one answer, so that probing reveals nothing.
pub fn holds_everywhere(caller: &Caller, rule_type: RuleType, caps: Caps) -> bool {
    let all = coffer_core::policy::Rule {
        rule_type,
        path: "/*".into(),
        caps,
    };
    coffer_core::delegation::within([&all], caller.rules()).is_ok()
}

/// The caller's rights for delegation checks.
pub fn grantor(caller: &Caller) -> coffer_core::delegation::Grantor<'_> {
    coffer_core::delegation::Grantor::new(caller.roles.iter().map(|r| &**r))
}

impl From<coffer_core::delegation::DelegationError> for ApiError {
    fn from(e: coffer_core::delegation::DelegationError) -> Self {
        ApiError::Forbidden(e.to_string())
    }
}

/// Normalise a name parameter and record it as the audit object.
pub fn name_param(ctx: &mut Ctx, body: &Body, key: &str) -> Result<String, ApiError> {
    let raw = body.req_str(key)?;
    ctx.set_object(coffer_core::name::truncate_for_message(&raw));
    let name = coffer_core::name::normalize_name(&raw)?;
    ctx.set_object(name.clone());
    Ok(name)
}

/// Optional RFC 3339 date field: omitted rather than empty.
pub fn date_field(ms: i64) -> Value {
    if ms <= 0 {
        Value::Null
    } else {
        Value::String(crate::timefmt::rfc3339(ms))
    }
}

/// Drop null fields so no date is ever an empty string or null placeholder.
pub fn without_nulls(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|_, x| !x.is_null());
    }
    v
}

/// Options of Akeyless's item operations that belong to its SaaS (agentic
/// rules, secure remote access) or that Coffer does not have yet.
pub(crate) const SAAS_ONLY: &[(&str, &str)] = &[
    (
        "ara-enabled",
        "agentic runtime authority is an Akeyless SaaS feature",
    ),
    (
        "enable-agentic-runtime-authority",
        "agentic runtime authority is an Akeyless SaaS feature",
    ),
    ("enable-ai-quorum", "AI quorum is an Akeyless SaaS feature"),
    ("input-rule", "agentic rules are an Akeyless SaaS feature"),
    ("output-rule", "agentic rules are an Akeyless SaaS feature"),
    ("item-custom-fields", "custom fields are not supported yet"),
    (
        "delete-protection",
        "deletion protection is not supported yet",
    ),
    (
        "secure-access-enable",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-bastion-issuer",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-certificate-issuer",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-db-name",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-db-schema",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-host",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-web",
        "secure remote access is an Akeyless SaaS feature",
    ),
];

/// Refuse Akeyless options Coffer does not implement, rather than
/// silently doing something else. An option counts as given when it is
/// not empty, `false` or 0.
pub(crate) fn refuse_unsupported(body: &Body, keys: &[(&str, &str)]) -> Result<(), ApiError> {
    for (key, why) in keys {
        if body.get(key).is_some_and(crate::wire::is_set) {
            return Err(ApiError::bad(format!(
                "{key} is not supported by Coffer: {why}"
            )));
        }
    }
    Ok(())
}

/// An item of one type by name (404; 400 naming its type otherwise).
pub(crate) async fn find_typed(
    state: &crate::state::AppState,
    name: &str,
    t: ItemType,
) -> Result<coffer_core::model::Item, ApiError> {
    let item = items::find_item(state, name).await?;
    if item.item_type != t {
        return Err(ApiError::bad(format!(
            "item {name:?} is {} ({}), not {}",
            item.item_type.described(),
            item.item_type.as_str(),
            t.described()
        )));
    }
    Ok(item)
}

/// The settings row of a dynamic or rotated secret, with its settings
/// parsed.
pub(crate) async fn load_producer<T: serde::de::DeserializeOwned>(
    state: &crate::state::AppState,
    item: &coffer_core::model::Item,
) -> Result<(coffer_core::model::Producer, T), ApiError> {
    let p = state
        .store
        .get_producer(item.id)
        .await?
        .ok_or_else(|| ApiError::internal(format!("item {} has no producer row", item.name)))?;
    let s: T = serde_json::from_value(p.settings.clone())
        .map_err(|e| ApiError::internal(format!("settings of {}: {e}", item.name)))?;
    Ok((p, s))
}
