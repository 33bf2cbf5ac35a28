//! Certificate issuers (item types `SSH_CERT_ISSUER`, `PKI_CERT_ISSUER`):
//! create/update, `get-ssh-certificate`, `get-pki-certificate`, the
//! issued-certificate records (`cert-list`, `revoke-certificate`) and the
//! CRL (`GET /pki/crl/<issuer name>`).
//!
//! An issuer's settings (its signer key's name and its policy) are its
//! item's sealed versions. Creating or changing an issuer needs `read` on
//! its signer key; using it needs only `read` on the issuer, which is the
//! point: a CI job gets a short-lived certificate, never the CA key.
//! Every certificate issued is recorded (serial, subject, names, caller,
//! expiry) in the request's own transaction, with its audit record.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_core::model::{CertKind, IssuedCert, Item, ItemSubType, ItemType, SecretFormat};
use coffer_core::policy::{Caps, RuleType};
use coffer_keys::ssh::{CertType, SshIssuerPolicy, SshRequest};
use coffer_keys::x509::{PkiIssuerPolicy, PkiRequest, Revoked, SubjectKey};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use super::items::{DEFAULT_MAX_VERSIONS, open, seal, tags_param};
use super::keys::{check_signer, item_version, load_key, signing};
use super::{allowed, date_field, name_param, refuse_unsupported, require, without_nulls};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::{AppState, now_ms, random_id};
use crate::wire::Body;

/// Options of Akeyless's issuer operations that belong to its SaaS or
/// that Coffer does not have.
const ISSUER_UNSUPPORTED: &[(&str, &str)] = &[
    (
        "ProviderType",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "host-provider",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-api",
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
        "secure-access-enable",
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
        "secure-access-host",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-ssh",
        "secure remote access is an Akeyless SaaS feature",
    ),
    (
        "secure-access-ssh-creds-user",
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
    ("target", "secure remote access is an Akeyless SaaS feature"),
    (
        "fixed-user-claim-keyname",
        "externally provided users are not supported: name the user in cert-username",
    ),
    ("item-custom-fields", "custom fields are not supported yet"),
    (
        "delete_protection",
        "deletion protection is not supported yet",
    ),
    (
        "delete-protection",
        "deletion protection is not supported yet",
    ),
    (
        "allow-copy-ext-from-csr",
        "Coffer never copies extensions from a CSR unchecked",
    ),
    (
        "allowed-extra-extensions",
        "extra extensions are not supported",
    ),
    (
        "auto-renew",
        "certificate renewal is not supported: ask for a new certificate",
    ),
    (
        "scheduled-renew",
        "certificate renewal is not supported: ask for a new certificate",
    ),
    ("ca-target", "public CAs are an Akeyless SaaS feature"),
    (
        "gw-cluster-url",
        "there is no gateway: the CRL is served by every Coffer node",
    ),
    ("enable-acme", "ACME is not supported yet"),
    ("enable-scep", "SCEP is not supported"),
    ("scep-challenge-type", "SCEP is not supported"),
    ("scep-password", "SCEP is not supported"),
    (
        "create-private-ocsp",
        "OCSP is not supported yet: use the CRL",
    ),
    (
        "create-public-ocsp",
        "OCSP is not supported yet: use the CRL",
    ),
    ("ocsp-ttl", "OCSP is not supported yet: use the CRL"),
    (
        "create-public-crl",
        "the CRL is served by Coffer itself (GET /pki/crl/<issuer>)",
    ),
    (
        "destination-path",
        "issued certificates are recorded, not stored as items",
    ),
    (
        "protect-certificates",
        "issued certificates are recorded, not stored as items",
    ),
    (
        "expiration-event-in",
        "expiration notifications are not supported",
    ),
    ("basic-constraints", "use is-ca and max-path-len"),
    (
        "split-certificate-chain",
        "the chain is always returned apart, in parent_cert",
    ),
    ("add-tag", "changing tags is not supported yet"),
    ("rm-tag", "changing tags is not supported yet"),
];

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SshIssuer {
    signer_key: String,
    policy: SshIssuerPolicy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PkiIssuer {
    signer_key: String,
    policy: PkiIssuerPolicy,
}

/// `"-"` (the SDKs' default) and empty mean "none".
fn names_list(body: &Body, key: &str) -> Result<Vec<String>, ApiError> {
    Ok(body.list(key)?.into_iter().filter(|s| s != "-").collect())
}

/// A list field of an update: the current value when the field is absent.
fn kept_list(
    body: &Body,
    key: &str,
    current: Option<&Vec<String>>,
) -> Result<Vec<String>, ApiError> {
    match (body.get(key), current) {
        (None, Some(c)) => Ok(c.clone()),
        _ => names_list(body, key),
    }
}

/// A `{name: value}` object of strings (or its JSON text).
fn string_map(body: &Body, key: &str) -> Result<Option<BTreeMap<String, String>>, ApiError> {
    let bad = || ApiError::bad(format!("{key} must be an object of string values"));
    let m = match body.get(key) {
        None => return Ok(None),
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => m,
            _ => return Err(bad()),
        },
        Some(_) => return Err(bad()),
    };
    m.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            _ => Err(bad()),
        })
        .collect::<Result<BTreeMap<_, _>, _>>()
        .map(Some)
}

/// A lifetime in seconds: a number, a numeric string, or a duration
/// (`90s`, `15m`, `24h`, `30d`).
fn seconds(body: &Body, key: &str) -> Result<Option<u64>, ApiError> {
    let raw = match body.get(key) {
        None => return Ok(None),
        Some(Value::Number(n)) => {
            return match n.as_u64() {
                Some(0) => Ok(None),
                Some(s) => Ok(Some(s)),
                None => Err(ApiError::bad(format!(
                    "{key} must be a positive number of seconds"
                ))),
            };
        }
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(_) => return Err(ApiError::bad(format!("{key} must be a number of seconds"))),
    };
    if raw.is_empty() || raw == "0" {
        return Ok(None);
    }
    if let Ok(n) = raw.parse::<u64>() {
        return Ok(Some(n));
    }
    let bad = || {
        ApiError::bad(format!(
            "{key} must be a number of seconds (or e.g. 15m, 24h, 30d), not {:?}",
            coffer_core::name::truncate_for_message(&raw)
        ))
    };
    let unit = [("s", 1u64), ("m", 60), ("h", 3600), ("d", 86_400)]
        .into_iter()
        .find_map(|(suffix, mult)| raw.strip_suffix(suffix).map(|n| (n, mult)));
    match unit {
        Some((num, mult)) => {
            let n = num.parse::<u64>().map_err(|_| bad())?;
            n.checked_mul(mult)
                .filter(|s| *s > 0)
                .map(Some)
                .ok_or_else(bad)
        }
        None => Err(bad()),
    }
}

async fn load_issuer<T: DeserializeOwned>(
    state: &AppState,
    name: &str,
    t: ItemType,
) -> Result<(Item, T), ApiError> {
    let found = item_version(state, name, None, t).await?;
    let (item, v) = &*found;
    state.keys.load_missing(&*state.store, v.key_id).await;
    let text = open(state, item, v)?;
    let settings = serde_json::from_str(&text)
        .map_err(|e| ApiError::internal(format!("settings of issuer {name}: {e}")))?;
    Ok((item.clone(), settings))
}

/// `signer-key-name` from the body, else the issuer's current one.
fn signer_name(body: &Body, current: Option<&str>, hint: &str) -> Result<String, ApiError> {
    match (
        body.opt_str("signer-key-name")?
            .filter(|s| !s.trim().is_empty()),
        current,
    ) {
        (Some(s), _) => Ok(s),
        (None, Some(c)) => Ok(c.to_owned()),
        (None, None) => Err(ApiError::bad(format!(
            "missing required parameter signer-key-name{hint}"
        ))),
    }
}

/// Create the issuer item, or add a version with its new settings; the
/// cached settings go at once, whatever the outcome.
async fn save_issuer(
    ctx: &mut Ctx,
    body: &Body,
    name: &str,
    t: ItemType,
    existing: Option<Item>,
    settings: &impl Serialize,
) -> Result<(), ApiError> {
    let text = zeroize::Zeroizing::new(
        serde_json::to_string(settings).map_err(|e| ApiError::internal(e.to_string()))?,
    );
    let state = ctx.state.clone();
    match existing {
        None => {
            super::items::refuse_pending_name(&state, name).await?;
            let description = body
                .opt_str("description")?
                .or(body.opt_str("metadata")?)
                .unwrap_or_default();
            super::auth_methods::check_description(&description)?;
            let now = now_ms();
            let item = Item {
                id: random_id()?,
                name: name.to_owned(),
                item_type: t,
                sub_type: ItemSubType::Generic,
                format: SecretFormat::Json,
                description,
                tags: tags_param(body)?,
                max_versions: 0,
                last_version: 1,
                highest_version: 1,
                enabled: true,
                created_ms: now,
                modified_ms: now,
                deletion_ms: 0,
            };
            let first = seal(&state, item.id, 1, &text)?;
            let created = state.store.create_item(&item, &first, ctx.audit()).await;
            state.items.remove(name);
            created.map_err(|e| match e {
                coffer_store::StoreError::Conflict(_) => {
                    ApiError::Conflict(format!("item {name:?} already exists"))
                }
                other => other.into(),
            })
        }
        Some(item) => {
            let v = seal(&state, item.id, item.highest_version + 1, &text)?;
            let added = state
                .store
                .add_version(
                    item.id,
                    item.highest_version,
                    &v,
                    DEFAULT_MAX_VERSIONS,
                    ctx.audit(),
                )
                .await;
            state.items.remove(name);
            added.map_err(|e| match e {
                coffer_store::StoreError::Conflict(_) => {
                    ApiError::Conflict(format!("issuer {name:?} was updated concurrently; retry"))
                }
                other => other.into(),
            })
        }
    }
}

/// `new-name` equal to the name (as Terraform may send it) is no rename.
fn refuse_rename(body: &Body, name: &str) -> Result<(), ApiError> {
    match body.opt_str("new-name")?.filter(|n| !n.trim().is_empty()) {
        Some(n) if coffer_core::name::normalize_name(&n)? != name => Err(ApiError::bad(
            "new-name: renaming an issuer is not supported; create a new one",
        )),
        _ => Ok(()),
    }
}

// ---- SSH ----

fn ssh_policy(body: &Body, current: Option<&SshIssuerPolicy>) -> Result<SshIssuerPolicy, ApiError> {
    let cert_type = match body.opt_str("cert-type")?.as_deref().map(str::trim) {
        None | Some("") => current.map_or(CertType::User, |c| c.cert_type),
        Some(t) if t.eq_ignore_ascii_case("user") => CertType::User,
        Some(t) if t.eq_ignore_ascii_case("host") => CertType::Host,
        Some(t) => {
            return Err(ApiError::bad(format!(
                "cert-type must be user or host, not {t:?}"
            )));
        }
    };
    if body.bool_or("external-username", false)? {
        return Err(ApiError::bad(
            "external-username is not supported: name the user in cert-username",
        ));
    }
    let ttl = seconds(body, "ttl")?
        .or(current.map(|c| c.ttl_secs))
        .ok_or_else(|| ApiError::bad("missing required parameter ttl (seconds)"))?;
    let extensions = match string_map(body, "extensions")? {
        Some(m) => Some(m),
        None => current.and_then(|c| c.extensions.clone()),
    };
    let critical_options = match string_map(body, "critical-options")? {
        Some(m) => m,
        None => current
            .map(|c| c.critical_options.clone())
            .unwrap_or_default(),
    };
    let p = SshIssuerPolicy {
        cert_type,
        allowed_users: kept_list(body, "allowed-users", current.map(|c| &c.allowed_users))?,
        principals: kept_list(body, "principals", current.map(|c| &c.principals))?,
        ttl_secs: ttl,
        extensions,
        critical_options,
    };
    p.validate()?;
    Ok(p)
}

/// create-ssh-cert-issuer (`update` false) / update-ssh-cert-issuer.
pub(super) async fn ssh_issuer_save(
    ctx: &mut Ctx,
    body: &Body,
    update: bool,
) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    let cap = if update { Caps::UPDATE } else { Caps::CREATE };
    require(ctx, RuleType::Item, &name, cap)?;
    refuse_unsupported(body, ISSUER_UNSUPPORTED)?;
    refuse_rename(body, &name)?;
    let state = ctx.state.clone();
    let current = if update {
        Some(load_issuer::<SshIssuer>(&state, &name, ItemType::SshCertIssuer).await?)
    } else {
        None
    };
    let signer = signer_name(
        body,
        current.as_ref().map(|(_, c)| c.signer_key.as_str()),
        "",
    )?;
    let signer_key = check_signer(ctx, &signer, false).await?;
    let policy = ssh_policy(body, current.as_ref().map(|(_, c)| &c.policy))?;
    let settings = SshIssuer { signer_key, policy };
    save_issuer(
        ctx,
        body,
        &name,
        ItemType::SshCertIssuer,
        current.map(|(i, _)| i),
        &settings,
    )
    .await?;
    Ok(json!({"name": name}))
}

/// The key ID of a certificate: who asked for it, as sshd logs it.
fn key_id(ctx: &Ctx) -> String {
    let mut id = if ctx.identity.is_empty() || ctx.identity == ctx.access_id {
        format!("{} (auth method {})", ctx.access_id, ctx.auth_method)
    } else {
        format!(
            "{} (auth method {}, access id {})",
            ctx.identity, ctx.auth_method, ctx.access_id
        )
    };
    id.retain(|c| !c.is_control());
    if id.len() > 1000 {
        let mut cut = 1000;
        while !id.is_char_boundary(cut) {
            cut -= 1;
        }
        id.truncate(cut);
    }
    id
}

fn random_bytes<const N: usize>() -> Result<[u8; N], ApiError> {
    let mut b = [0u8; N];
    coffer_crypto::fill_random(&mut b)?;
    Ok(b)
}

/// The issuer's signer key (latest version); a key deleted from under
/// the issuer is the issuer's fault, not the caller's.
async fn signer_of(
    state: &AppState,
    issuer: &str,
    key: &str,
) -> Result<(Item, i32, Arc<coffer_keys::keys::KeyMaterial>), ApiError> {
    load_key(state, key, None).await.map_err(|e| match e {
        ApiError::NotFound(_) => ApiError::bad(format!(
            "issuer {issuer:?} signs with key {key:?}, which no longer exists"
        )),
        other => other,
    })
}

pub(super) async fn get_ssh_certificate(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "cert-issuer-name")?;
    require(ctx, RuleType::Item, &name, Caps::READ)?;
    if body.bool_or("legacy-signing-alg-name", false)? {
        return Err(ApiError::bad(
            "legacy-signing-alg-name is not supported: RSA CAs sign with rsa-sha2-512",
        ));
    }
    // The SDKs send "-" when no user name was given.
    let usernames = names_list(body, "cert-username")?;
    let public_key = body
        .opt_str("public-key-data")?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| {
            ApiError::bad(
                "missing required parameter public-key-data (the OpenSSH public key to certify)",
            )
        })?;
    if public_key.len() > 16 * 1024 {
        return Err(ApiError::TooLarge(
            "public-key-data is larger than 16 KiB".into(),
        ));
    }
    let ttl = seconds(body, "ttl")?;
    let state = ctx.state.clone();
    let (issuer, settings) =
        load_issuer::<SshIssuer>(&state, &name, ItemType::SshCertIssuer).await?;
    let (_, signer_version, signer) = signer_of(&state, &name, &settings.signer_key).await?;
    let settings_key = settings.signer_key.clone();
    let key_id = key_id(ctx);
    // Serials are 64 random bits; the store's unique key is the backstop
    // (a duplicate fails its audit batch rather than issue twice).
    let serial = u64::from_be_bytes(random_bytes::<8>()?).max(1);
    let now = u64::try_from(now_ms() / 1000).unwrap_or(0);
    let alg = signer.alg();
    let issued = signing(alg, move || {
        let req = SshRequest {
            usernames: &usernames,
            public_key: &public_key,
            ttl_secs: ttl,
            key_id: &key_id,
            serial,
            now,
        };
        Ok(coffer_keys::ssh::sign(&settings.policy, &signer, &req)?)
    })
    .await?;
    ctx.issued = Some(IssuedCert {
        issuer_id: issuer.id,
        issuer_name: issuer.name.clone(),
        serial: format!("{:016x}", issued.serial),
        kind: CertKind::Ssh,
        signer_key: settings_key,
        signer_version,
        subject: issued.key_id.clone(),
        names: issued.principals.clone(),
        access_id: ctx.access_id.clone(),
        identity: ctx.identity.clone(),
        request_id: ctx.request_id.clone(),
        issued_ms: now_ms(),
        expires_ms: i64::try_from(issued.valid_before)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000),
        revoked_ms: 0,
        revocation_reason: String::new(),
    });
    Ok(json!({"data": issued.certificate, "path": ""}))
}

// ---- PKI ----

fn pki_policy(body: &Body, current: Option<&PkiIssuerPolicy>) -> Result<PkiIssuerPolicy, ApiError> {
    // An update changes what it names and keeps the rest.
    let mut p = match current {
        Some(c) => c.clone(),
        None => PkiIssuerPolicy::new(0),
    };
    match seconds(body, "ttl")? {
        Some(t) => p.ttl_secs = t,
        None if current.is_none() => {
            return Err(ApiError::bad("missing required parameter ttl (seconds)"));
        }
        None => {}
    }
    let set_bool = |field: &mut bool, key: &str, invert: bool| -> Result<(), ApiError> {
        if body.get(key).is_some() {
            *field = body.bool_or(key, false)? != invert;
        }
        Ok(())
    };
    set_bool(&mut p.allow_subdomains, "allow-subdomains", false)?;
    set_bool(&mut p.allow_any_name, "allow-any-name", false)?;
    set_bool(&mut p.disable_wildcards, "disable-wildcards", false)?;
    set_bool(&mut p.enforce_hostnames, "not-enforce-hostnames", true)?;
    set_bool(&mut p.server_flag, "server-flag", false)?;
    set_bool(&mut p.client_flag, "client-flag", false)?;
    set_bool(&mut p.code_signing_flag, "code-signing-flag", false)?;
    set_bool(&mut p.critical_key_usage, "critical-key-usage", false)?;
    set_bool(&mut p.is_ca, "is-ca", false)?;
    set_bool(&mut p.require_cn, "not-require-cn", true)?;
    let set_list = |field: &mut Vec<String>, key: &str| -> Result<(), ApiError> {
        if body.get(key).is_some() {
            *field = body.list(key)?;
        }
        Ok(())
    };
    set_list(&mut p.allowed_domains, "allowed-domains")?;
    set_list(&mut p.allowed_uri_sans, "allowed-uri-sans")?;
    set_list(&mut p.organizations, "organizations")?;
    set_list(&mut p.organizational_units, "organizational-units")?;
    set_list(&mut p.country, "country")?;
    set_list(&mut p.locality, "locality")?;
    set_list(&mut p.province, "province")?;
    set_list(&mut p.street_address, "street-address")?;
    set_list(&mut p.postal_code, "postal-code")?;
    let ku = body.list("key-usage")?;
    if !ku.is_empty() {
        p.key_usage = ku;
    }
    if body.get("allowed-ip-sans").is_some() {
        p.allowed_ip_sans = body
            .list("allowed-ip-sans")?
            .into_iter()
            .map(|s| {
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        ApiError::bad(format!(
                            "allowed-ip-sans: {s:?} is not an IP address or CIDR"
                        ))
                    })
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(n) = body.opt_i64("max-path-len")? {
        p.max_path_len =
            i32::try_from(n).map_err(|_| ApiError::bad("max-path-len is out of range"))?;
    }
    p.normalize();
    p.validate()?;
    Ok(p)
}

/// create-pki-cert-issuer (`update` false) / update-pki-cert-issuer.
pub(super) async fn pki_issuer_save(
    ctx: &mut Ctx,
    body: &Body,
    update: bool,
) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    let cap = if update { Caps::UPDATE } else { Caps::CREATE };
    require(ctx, RuleType::Item, &name, cap)?;
    refuse_unsupported(body, ISSUER_UNSUPPORTED)?;
    refuse_rename(body, &name)?;
    // Every PKI issuer's CRL is served: `create-private-crl` asks for
    // what is always there (still checked to be a boolean).
    body.bool_or("create-private-crl", false)?;
    let state = ctx.state.clone();
    let current = if update {
        Some(load_issuer::<PkiIssuer>(&state, &name, ItemType::PkiCertIssuer).await?)
    } else {
        None
    };
    let signer = signer_name(
        body,
        current.as_ref().map(|(_, c)| c.signer_key.as_str()),
        " (Coffer is a private CA)",
    )?;
    let signer_key = check_signer(ctx, &signer, true).await?;
    let policy = pki_policy(body, current.as_ref().map(|(_, c)| &c.policy))?;
    let settings = PkiIssuer { signer_key, policy };
    save_issuer(
        ctx,
        body,
        &name,
        ItemType::PkiCertIssuer,
        current.map(|(i, _)| i),
        &settings,
    )
    .await?;
    Ok(json!({"name": name}))
}

fn b64_field(body: &Body, key: &str) -> Result<Option<Vec<u8>>, ApiError> {
    match body.opt_str(key)?.filter(|s| !s.trim().is_empty()) {
        None => Ok(None),
        Some(s) => {
            if s.len() > 64 * 1024 {
                return Err(ApiError::TooLarge(format!("{key} is larger than 64 KiB")));
            }
            // GitLab's `public_key_data` / `csr_data` may arrive as PEM text.
            if s.trim_start().starts_with("-----BEGIN") {
                return Ok(Some(s.trim().as_bytes().to_vec()));
            }
            let compact: String = s.split_whitespace().collect();
            B64.decode(compact)
                .map(Some)
                .map_err(|_| ApiError::bad(format!("{key} must be base64 (of PEM or DER)")))
        }
    }
}

pub(super) async fn get_pki_certificate(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "cert-issuer-name")?;
    require(ctx, RuleType::Item, &name, Caps::READ)?;
    refuse_unsupported(
        body,
        &[("extra-extensions", "extra extensions are not supported")],
    )?;
    if let Some(n) = body.opt_i64("max-path-len")?
        && n != -1
    {
        return Err(ApiError::bad(
            "max-path-len per request is not supported: the issuer's max-path-len applies",
        ));
    }
    let csr = b64_field(body, "csr-data-base64")?;
    let key = b64_field(body, "key-data-base64")?;
    let (key_bytes, is_csr) = match (csr, key) {
        (Some(c), None) => (c, true),
        (None, Some(k)) => (k, false),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "give csr-data-base64 or key-data-base64, not both",
            ));
        }
        (None, None) => {
            return Err(ApiError::bad(
                "missing csr-data-base64 (a CSR) or key-data-base64 (a public key): Coffer never generates your private key",
            ));
        }
    };
    let common_name = body
        .opt_str("common-name")?
        .filter(|s| !s.trim().is_empty());
    let alt_names = body.list("alt-names")?;
    let uri_sans = body.list("uri-sans")?;
    let eku = body.list("extended-key-usage")?;
    let ttl = seconds(body, "ttl")?;
    let state = ctx.state.clone();
    let (issuer, settings) =
        load_issuer::<PkiIssuer>(&state, &name, ItemType::PkiCertIssuer).await?;
    let (_, signer_version, signer) = signer_of(&state, &name, &settings.signer_key).await?;
    let settings_key = settings.signer_key.clone();
    // 16 random bytes (the top bit cleared by `issue`); the store's unique
    // key is the backstop.
    let serial = random_bytes::<16>()?;
    let alg = signer.alg();
    let (issued, parent) = signing(alg, move || {
        let req = PkiRequest {
            key: if is_csr {
                SubjectKey::Csr(&key_bytes)
            } else {
                SubjectKey::PublicKey(&key_bytes)
            },
            common_name: common_name.as_deref(),
            alt_names: &alt_names,
            uri_sans: &uri_sans,
            ttl_secs: ttl,
            extended_key_usage: &eku,
            serial,
            now: time::OffsetDateTime::now_utc(),
        };
        let issued = coffer_keys::x509::issue(&settings.policy, &signer, &req)?;
        let parent = coffer_keys::x509::parent_chain(&signer)?;
        Ok((issued, parent))
    })
    .await?;
    let mut names = issued.dns_names.clone();
    names.extend(issued.ip_sans.iter().cloned());
    names.extend(issued.uri_sans.iter().cloned());
    ctx.issued = Some(IssuedCert {
        issuer_id: issuer.id,
        issuer_name: issuer.name.clone(),
        serial: issued.serial_hex.clone(),
        kind: CertKind::Pki,
        signer_key: settings_key,
        signer_version,
        subject: issued.subject.clone(),
        names,
        access_id: ctx.access_id.clone(),
        identity: ctx.identity.clone(),
        request_id: ctx.request_id.clone(),
        issued_ms: now_ms(),
        expires_ms: i64::try_from(i128::from(issued.not_after.unix_timestamp()) * 1000)
            .unwrap_or(i64::MAX),
        revoked_ms: 0,
        revocation_reason: String::new(),
    });
    Ok(json!({
        "data": issued.certificate_pem,
        "parent_cert": parent,
        "cert_display_id": issued.serial_hex,
        "cert_item_id": 0,
        "path": "",
        "reading_token": "",
    }))
}

// ---- records, revocation, CRL ----

fn render_cert(c: &IssuedCert) -> Value {
    without_nulls(json!({
        "issuer_name": c.issuer_name,
        "serial_number": c.serial,
        "kind": c.kind.as_str(),
        "subject": c.subject,
        "names": c.names,
        "access_id": c.access_id,
        "identity": c.identity,
        "request_id": c.request_id,
        "issued_at": date_field(c.issued_ms),
        "expires_at": date_field(c.expires_ms),
        "revoked": c.revoked_ms > 0,
        "revoked_at": date_field(c.revoked_ms),
        "revocation_reason": if c.revoked_ms > 0 { Value::String(c.revocation_reason.clone()) } else { Value::Null },
    }))
}

/// cert-list: issued certificates of the issuers the caller may list.
pub(super) async fn cert_list(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let issuer = match body
        .opt_str("cert-issuer-name")?
        .filter(|s| !s.trim().is_empty())
    {
        Some(n) => {
            let n = coffer_core::name::normalize_name(&n)?;
            ctx.set_object(n.clone());
            Some(n)
        }
        None => None,
    };
    let limit = body.opt_i64("limit")?.unwrap_or(1000);
    if !(1..=10_000).contains(&limit) {
        return Err(ApiError::bad("limit must be between 1 and 10000"));
    }
    let f = coffer_store::CertFilter {
        issuer_name: issuer,
        revoked_only: body.bool_or("revoked-only", false)?,
        not_expired_at_ms: if body.bool_or("include-expired", false)? {
            0
        } else {
            now_ms()
        },
        limit,
    };
    let found = ctx.state.store.list_certificates(&f).await?;
    let caller = ctx.caller()?;
    let shown: Vec<Value> = found
        .iter()
        .filter(|c| allowed(caller, RuleType::Item, &c.issuer_name, Caps::LIST))
        .map(render_cert)
        .collect();
    Ok(json!({"certificates": shown}))
}

/// revoke-certificate: record a PKI certificate's revocation; it appears
/// in the issuer's CRL from then on.
pub(super) async fn revoke_certificate(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "cert-issuer-name")?;
    require(ctx, RuleType::Item, &name, Caps::UPDATE)?;
    let serial = body
        .req_str("serial-number")?
        .trim()
        .trim_start_matches("0x")
        .replace(':', "")
        .to_ascii_lowercase();
    if serial.is_empty() || serial.len() > 64 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad(
            "serial-number must be the certificate's serial in hex",
        ));
    }
    let reason = body.opt_str("reason")?.unwrap_or_default();
    if reason.len() > 256 || reason.chars().any(char::is_control) {
        return Err(ApiError::bad("reason: at most 256 printable characters"));
    }
    let state = ctx.state.clone();
    let item = super::items::find_item(&state, &name).await?;
    match item.item_type {
        ItemType::PkiCertIssuer => {}
        ItemType::SshCertIssuer => {
            return Err(ApiError::bad(
                "SSH certificates cannot be revoked centrally (sshd reads no CRL): keep their ttl short, or list the serial in sshd's RevokedKeys",
            ));
        }
        other => {
            return Err(ApiError::bad(format!(
                "item {name:?} is a {}, not a PKI certificate issuer",
                other.as_str()
            )));
        }
    }
    // Serials are stored as written in the certificate (lowercase hex,
    // whole bytes: 16 for PKI); accept them without leading zeros too.
    let stripped = serial.trim_start_matches('0');
    let mut candidates = vec![serial.clone()];
    for width in [stripped.len() + stripped.len() % 2, 32] {
        if width >= stripped.len() {
            candidates.push(format!("{stripped:0>width$}"));
        }
    }
    let mut found = None;
    for c in candidates {
        if let Some(rec) = state.store.get_certificate(item.id, &c).await? {
            found = Some(rec);
            break;
        }
    }
    let serial = found.map(|c| c.serial).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no certificate with serial {serial} from issuer {name:?}"
        ))
    })?;
    let done = state
        .store
        .revoke_certificate(item.id, &serial, now_ms(), &reason, ctx.audit())
        .await?;
    // Every cached CRL may now be missing it (issuers share keys).
    state.crls.clear();
    if !done {
        return Err(ApiError::Conflict(format!(
            "certificate {serial} of issuer {name:?} is already revoked"
        )));
    }
    Ok(json!({"cert_issuer_name": name, "serial_number": serial, "revoked": true}))
}

/// The CRL of a PKI issuer, PEM: every unexpired certificate revoked
/// that its signer key's current version signed (whichever issuer issued
/// it), signed now, valid for a day; cached for a few seconds. Public,
/// like every CA's CRL: any failure but an internal one is "no CRL here",
/// so the route reveals nothing about other items.
pub(crate) async fn crl_pem(
    state: &AppState,
    name: &str,
    key_version: Option<i32>,
) -> Result<Arc<String>, ApiError> {
    let none =
        || ApiError::NotFound("no CRL at this address: GET /pki/crl/<PKI issuer name>".into());
    let name = coffer_core::name::normalize_name(name).map_err(|_| none())?;
    let cache_key = match key_version {
        Some(v) => format!("{name}?key-version={v}"),
        None => name.clone(),
    };
    if let Some(hit) = state.crls.get(cache_key.as_str()) {
        return Ok(hit);
    }
    let keep_internal = |e: ApiError| match e {
        ApiError::Internal(_) => e,
        _ => none(),
    };
    let (_, settings) = load_issuer::<PkiIssuer>(state, &name, ItemType::PkiCertIssuer)
        .await
        .map_err(keep_internal)?;
    let (_, version, signer) = load_key(state, &settings.signer_key, key_version)
        .await
        .map_err(keep_internal)?;
    let now = now_ms();
    let revoked = state
        .store
        .revoked_certificates(&settings.signer_key, version, now)
        .await?;
    let list: Vec<Revoked> = revoked
        .iter()
        .map(|c| Revoked {
            serial_hex: c.serial.clone(),
            revoked_at: time::OffsetDateTime::from_unix_timestamp(c.revoked_ms / 1000)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
        })
        .collect();
    let this_update = time::OffsetDateTime::from_unix_timestamp(now / 1000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let next_update = this_update + time::Duration::days(1);
    // Milliseconds since the epoch: grows with every CRL this node signs.
    let number = u64::try_from(now).unwrap_or(0);
    let alg = signer.alg();
    let pem = signing(alg, move || {
        Ok(coffer_keys::x509::crl(
            &signer,
            &list,
            number,
            this_update,
            next_update,
        )?)
    })
    .await
    .map_err(keep_internal)?;
    let pem = Arc::new(pem);
    state.crls.insert(cache_key, pem.clone());
    Ok(pem)
}

/// describe-item's issuer details, in Akeyless's shape.
pub(super) async fn describe(state: &AppState, item: &Item, v: &mut Value) -> Result<(), ApiError> {
    let details = match item.item_type {
        ItemType::SshCertIssuer => {
            let (_, s) = load_issuer::<SshIssuer>(state, &item.name, item.item_type).await?;
            v["cert_issuer_signer_key_name"] = Value::String(s.signer_key.clone());
            json!({
                "cert_issuer_type": "SSH",
                "max_ttl": s.policy.ttl_secs,
                "ssh_cert_issuer_details": {
                    "allowed_users": s.policy.allowed_users,
                    "principals": s.policy.principals,
                    "cert_type": match s.policy.cert_type { CertType::User => 1, CertType::Host => 2 },
                    "extensions": s.policy.extensions,
                    "critical_options": s.policy.critical_options,
                },
            })
        }
        ItemType::PkiCertIssuer => {
            let (_, s) = load_issuer::<PkiIssuer>(state, &item.name, item.item_type).await?;
            v["cert_issuer_signer_key_name"] = Value::String(s.signer_key.clone());
            let p = &s.policy;
            json!({
                "cert_issuer_type": "PKI",
                "max_ttl": p.ttl_secs,
                "pki_cert_issuer_details": {
                    "allowed_domains_list": p.allowed_domains,
                    "allow_subdomains": p.allow_subdomains,
                    "allow_any_name": p.allow_any_name,
                    "disable_wildcards": p.disable_wildcards,
                    "enforce_hostnames": p.enforce_hostnames,
                    "allowed_uri_sans": p.allowed_uri_sans,
                    "allowed_ip_sans": p.allowed_ip_sans.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "server_flag": p.server_flag,
                    "client_flag": p.client_flag,
                    "code_signing_flag": p.code_signing_flag,
                    "key_usage_list": p.key_usage,
                    "non_critical_key_usage": !p.critical_key_usage,
                    "organization_list": p.organizations,
                    "organization_unit_list": p.organizational_units,
                    "country": p.country,
                    "locality": p.locality,
                    "province": p.province,
                    "street_address": p.street_address,
                    "postal_code": p.postal_code,
                    "is_ca": p.is_ca,
                    "max_path_len": p.max_path_len,
                    "require_cn": p.require_cn,
                    "create_private_crl": true,
                    "certificate_authority_mode": "internal",
                },
            })
        }
        _ => return Ok(()),
    };
    v["certificate_issue_details"] = details.clone();
    v["item_general_info"] = json!({"cert_issue_details": details});
    Ok(())
}

/// The issuers (SSH and PKI) that sign with key `key_name`.
pub(super) async fn issuers_using(
    state: &AppState,
    key_name: &str,
) -> Result<Vec<String>, ApiError> {
    #[derive(Deserialize)]
    struct Signer {
        signer_key: String,
    }
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = state.store.list_items("", after.as_deref(), 1000).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.name.clone());
        for it in page.iter().filter(|i| {
            matches!(
                i.item_type,
                ItemType::SshCertIssuer | ItemType::PkiCertIssuer
            )
        }) {
            let (_, s) = load_issuer::<Signer>(state, &it.name, it.item_type).await?;
            if s.signer_key == key_name {
                out.push(it.name.clone());
            }
        }
        if page.len() < 1000 {
            break;
        }
    }
    Ok(out)
}
