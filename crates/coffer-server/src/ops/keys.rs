//! Keys (item type `CLASSIC_KEY`, rule type `item-rule`): `create-key`,
//! `create-classic-key`, `get-rsa-public`, `encrypt` / `decrypt`,
//! `rotate-key`, `update-classic-key-certificate`.
//!
//! A key's versions are its item's sealed versions (the stored form of
//! [`coffer_keys::keys::KeyMaterial`]: algorithm, secret bytes, certificate
//! chain). Rotation adds a version; old ones stay so old ciphertexts still
//! decrypt (their header names the version). The private part never
//! leaves the server: `read` lets a caller *use* a key (encrypt, decrypt,
//! public part), `update` rotate it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_core::model::{Item, ItemSubType, ItemType, SecretFormat};
use coffer_core::policy::{Caps, RuleType};
use coffer_keys::aead::{self, Context};
use coffer_keys::keys::{self as k, CertificateSubject, KeyAlg, KeyMaterial};
use serde_json::{Value, json};
use std::sync::Arc;
use zeroize::Zeroizing;

use super::items::{open, seal, tags_param};
use super::{name_param, refuse_unsupported, require};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::state::{AppState, now_ms, random_id};
use crate::wire::Body;

/// Versions a key keeps (every one: old ciphertexts must still decrypt).
pub(super) const KEY_MAX_VERSIONS: i32 = 1000;
/// Plaintext accepted by `encrypt` (after base64 decoding).
const MAX_PLAINTEXT: usize = 1 << 20;

/// Options of Akeyless's key operations that Coffer does not have.
const KEY_UNSUPPORTED: &[(&str, &str)] = &[
    (
        "customer-frg-id",
        "customer fragments are an Akeyless SaaS feature",
    ),
    (
        "conf-file-data",
        "CSR configuration files are not supported: use the certificate-* fields",
    ),
    (
        "protection-key-name",
        "every Coffer item is sealed with the server's data key",
    ),
    (
        "auto-rotate",
        "automatic key rotation is not supported yet: call rotate-key",
    ),
    (
        "rotation-interval",
        "automatic key rotation is not supported yet: call rotate-key",
    ),
    ("gpg-alg", "GPG keys are not supported"),
    (
        "expiration-event-in",
        "expiration notifications are not supported",
    ),
    (
        "rotation-event-in",
        "rotation notifications are not supported",
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
    ("certificate-format", "certificates are PEM"),
];

/// An item's latest version (from the 1-second sealed cache, like
/// get-secret-value) or a given one, checked to be of type `t`.
pub(crate) async fn item_version(
    state: &AppState,
    name: &str,
    version: Option<i32>,
    t: ItemType,
) -> Result<Arc<(Item, coffer_core::model::SealedVersion)>, ApiError> {
    let cached = if version.is_none() {
        state.items.get(name)
    } else {
        None
    };
    let found = match cached {
        Some(hit) => hit,
        None => {
            let what = if t == ItemType::Key { "key" } else { "item" };
            let found = state
                .store
                .get_item_value(name, version)
                .await?
                .ok_or_else(|| match version {
                    Some(n) => {
                        ApiError::NotFound(format!("version {n} of {what} {name:?} not found"))
                    }
                    None => ApiError::NotFound(format!("{what} {name:?} not found")),
                })?;
            let found = Arc::new(found);
            if version.is_none() {
                state.items.insert(name.to_owned(), found.clone());
            }
            found
        }
    };
    let item = &found.0;
    if item.pending_deletion() {
        return Err(super::items::pending_deletion(item));
    }
    if item.item_type != t {
        return Err(ApiError::bad(format!(
            "item {name:?} is {} ({}), not {}",
            item.item_type.described(),
            item.item_type.as_str(),
            t.described()
        )));
    }
    if !item.enabled {
        return Err(ApiError::Forbidden(format!("item {name:?} is disabled")));
    }
    Ok(found)
}

/// The key's latest (or given) version, opened.
pub(crate) async fn load_key(
    state: &AppState,
    name: &str,
    version: Option<i32>,
) -> Result<(Item, i32, Arc<KeyMaterial>), ApiError> {
    let found = item_version(state, name, version, ItemType::Key).await?;
    let (item, v) = &*found;
    let mut nonce = [0u8; 12];
    if let Some(n) = v.sealed.get(..12) {
        nonce.copy_from_slice(n);
    }
    let id = (item.id, v.version, nonce);
    if let Some(key) = state.opened_keys.get(&id) {
        return Ok((item.clone(), v.version, key));
    }
    state.keys.load_missing(&*state.store, v.key_id).await;
    let stored = open(state, item, v)?;
    let key = Arc::new(
        KeyMaterial::from_stored(&stored)
            .map_err(|e| ApiError::internal(format!("stored key {name}: {e}")))?,
    );
    state.opened_keys.insert(id, key.clone());
    Ok((item.clone(), v.version, key))
}

/// Run CPU-heavy key work (RSA generation takes up to seconds) off the
/// request threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("key task failed: {e}")))?
}

/// Signing with `alg`: RSA (milliseconds) off the request threads, EC and
/// Ed25519 (tens of microseconds) inline, where a thread hop would cost
/// more than the signature.
pub(crate) async fn signing<T: Send + 'static>(
    alg: KeyAlg,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if matches!(alg, KeyAlg::Rsa2048 | KeyAlg::Rsa3072 | KeyAlg::Rsa4096) {
        blocking(f).await
    } else {
        f()
    }
}

/// The self-signed certificate fields, if `generate-self-signed-certificate`.
fn self_signed_request(body: &Body) -> Result<Option<(CertificateSubject, u32)>, ApiError> {
    let wanted = body.bool_or("generate-self-signed-certificate", false)?;
    let given = [
        "certificate-ttl",
        "certificate-common-name",
        "certificate-organization",
        "certificate-country",
        "certificate-locality",
        "certificate-province",
    ]
    .into_iter()
    .find(|f| {
        body.opt_str(f)
            .ok()
            .flatten()
            .is_some_and(|v| !v.is_empty() && v != "0")
    });
    if !wanted {
        if let Some(f) = given {
            return Err(ApiError::bad(format!(
                "{f} needs generate-self-signed-certificate=true"
            )));
        }
        return Ok(None);
    }
    if let Some(d) = body.opt_str("certificate-digest-algo")?
        && !d.is_empty()
        && !d.eq_ignore_ascii_case("sha256")
    {
        return Err(ApiError::bad(
            "certificate-digest-algo: Coffer signs with SHA-256 (SHA-384 for EC384 keys); omit it",
        ));
    }
    let ttl = body.opt_i64("certificate-ttl")?.ok_or_else(|| {
        ApiError::bad("certificate-ttl (days) is required with generate-self-signed-certificate")
    })?;
    let ttl = u32::try_from(ttl)
        .map_err(|_| ApiError::bad("certificate-ttl must be a positive number of days"))?;
    let subject = CertificateSubject {
        common_name: body
            .opt_str("certificate-common-name")?
            .unwrap_or_default()
            .trim()
            .to_owned(),
        organization: body
            .opt_str("certificate-organization")?
            .filter(|s| !s.is_empty()),
        country: body
            .opt_str("certificate-country")?
            .filter(|s| !s.is_empty()),
        locality: body
            .opt_str("certificate-locality")?
            .filter(|s| !s.is_empty()),
        province: body
            .opt_str("certificate-province")?
            .filter(|s| !s.is_empty()),
    };
    Ok(Some((subject, ttl)))
}

/// PEM text given directly, or base64 of it (the Akeyless CLI sends file
/// contents base64-encoded).
fn pem_or_base64(field: &str, raw: &str) -> Result<String, ApiError> {
    let t = raw.trim();
    if t.starts_with("-----BEGIN") {
        return Ok(t.to_owned());
    }
    let bytes = B64
        .decode(t.split_whitespace().collect::<String>())
        .map_err(|_| ApiError::bad(format!("{field} must be PEM text or base64 of it")))?;
    String::from_utf8(bytes).map_err(|_| ApiError::bad(format!("{field} must be PEM text")))
}

/// `split-level` and `hash-algorithm`: the Python SDK always sends their
/// defaults (3, "SHA256"); anything else asks for something Coffer does
/// not do.
fn check_sdk_defaults(body: &Body) -> Result<(), ApiError> {
    if let Some(n) = body.opt_i64("split-level")?
        && n != 3
        && n != 0
    {
        return Err(ApiError::bad(
            "split-level: Coffer does not split keys into fragments; omit it",
        ));
    }
    if let Some(h) = body.opt_str("hash-algorithm")?
        && !h.is_empty()
        && !h.eq_ignore_ascii_case("sha256")
    {
        return Err(ApiError::bad(
            "hash-algorithm: only SHA256 is supported; omit it",
        ));
    }
    Ok(())
}

/// create-key (`classic` false) and create-classic-key (`classic` true).
pub(super) async fn create(ctx: &mut Ctx, body: &Body, classic: bool) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::CREATE)?;
    refuse_unsupported(body, KEY_UNSUPPORTED)?;
    check_sdk_defaults(body)?;
    let alg: KeyAlg = body.req_str("alg")?.parse()?;
    // Akeyless makes EC and Ed25519 keys with create-classic-key only;
    // create-key accepts them too rather than send the user elsewhere.
    let key_data = body.opt_str("key-data")?.filter(|s| !s.trim().is_empty());
    let cert_data = body
        .opt_str("cert-file-data")?
        .filter(|s| !s.trim().is_empty());
    if !classic && (key_data.is_some() || cert_data.is_some()) {
        return Err(ApiError::bad(
            "key-data and cert-file-data belong to create-classic-key",
        ));
    }
    let self_signed = self_signed_request(body)?;
    if self_signed.is_some() && alg.is_symmetric() {
        return Err(ApiError::bad(format!(
            "generate-self-signed-certificate needs a signing key (RSA, EC256, EC384, Ed25519), not {alg}"
        )));
    }
    if self_signed.is_some() && cert_data.is_some() {
        return Err(ApiError::bad(
            "give cert-file-data or generate-self-signed-certificate, not both",
        ));
    }
    let description = body
        .opt_str("description")?
        .or(body.opt_str("metadata")?)
        .unwrap_or_default();
    super::auth_methods::check_description(&description)?;
    let tags = tags_param(body)?;
    let imported = match key_data {
        Some(d) => {
            let t = d.trim();
            let bytes = if t.starts_with("-----BEGIN") {
                Zeroizing::new(t.as_bytes().to_vec())
            } else {
                Zeroizing::new(
                    B64.decode(t.split_whitespace().collect::<String>())
                        .map_err(|_| ApiError::bad("key-data must be base64"))?,
                )
            };
            Some(bytes)
        }
        None => None,
    };
    let cert_pem = cert_data
        .map(|c| pem_or_base64("cert-file-data", &c))
        .transpose()?;
    let key = blocking(move || {
        let key = match imported {
            Some(bytes) => KeyMaterial::import(alg, &bytes)?,
            None => KeyMaterial::generate(alg)?,
        };
        let key = match (cert_pem, self_signed) {
            (Some(pem), _) => key.with_certificate_chain(&pem)?,
            (None, Some((subject, days))) => {
                let pem = k::self_signed_ca(&key, &subject, days, time::OffsetDateTime::now_utc())?;
                key.with_certificate_chain(&pem)?
            }
            (None, None) => key,
        };
        Ok(key)
    })
    .await?;
    let public = if alg.is_symmetric() {
        None
    } else {
        Some(key.public_key()?)
    };
    super::items::refuse_pending_name(&ctx.state, &name).await?;
    let now = now_ms();
    let item = Item {
        id: random_id()?,
        name: name.clone(),
        item_type: ItemType::Key,
        sub_type: ItemSubType::Generic,
        format: SecretFormat::Text,
        description,
        tags,
        max_versions: KEY_MAX_VERSIONS,
        last_version: 1,
        highest_version: 1,
        enabled: true,
        created_ms: now,
        modified_ms: now,
        deletion_ms: 0,
    };
    let state = ctx.state.clone();
    let first = seal(&state, item.id, 1, &key.to_stored())?;
    let created = state.store.create_item(&item, &first, ctx.audit()).await;
    state.items.remove(name.as_str());
    created.map_err(|e| match e {
        coffer_store::StoreError::Conflict(_) => {
            ApiError::Conflict(format!("item {name:?} already exists"))
        }
        other => other.into(),
    })?;
    if classic {
        Ok(json!({
            "classic_key_id": format!("{:x}", item.id),
            "classic_key_name": name,
            "classic_key_type": alg.as_str(),
            "public_key": public.map(|p| p.pem).unwrap_or_default(),
        }))
    } else {
        Ok(json!({
            "display_id": format!("{:x}", item.id),
            "item_id": item.id,
            "fragment_results": [],
        }))
    }
}

/// get-rsa-public: `{pem, raw, ssh}` of any signing key (RSA, EC, Ed25519).
pub(super) async fn get_public(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::READ)?;
    let (_, _, key) = load_key(&ctx.state, &name, None).await?;
    if key.alg().is_symmetric() {
        return Err(ApiError::bad(format!(
            "key {name:?} is an {} key and has no public part",
            key.alg()
        )));
    }
    let p = key.public_key()?;
    Ok(json!({"pem": p.pem, "raw": p.raw, "ssh": p.ssh}))
}

/// `encryption-context`: an object of strings (or a JSON text of one).
fn context_param(body: &Body) -> Result<Context, ApiError> {
    let bad = || {
        ApiError::bad(
            "encryption-context must be an object of string values, e.g. {\"app\":\"web\"}",
        )
    };
    let map = match body.get("encryption-context") {
        None => return Ok(Context::new()),
        Some(Value::Object(m)) => m.clone(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(Context::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => m,
            _ => return Err(bad()),
        },
        Some(_) => return Err(bad()),
    };
    if map.len() > 64 {
        return Err(ApiError::bad("encryption-context: at most 64 entries"));
    }
    map.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) if k.len() <= 256 && s.len() <= 4096 => Ok((k, s)),
            _ => Err(bad()),
        })
        .collect()
}

/// `display-id` / `item-id` name the key another way; Coffer takes the
/// name (which the SDKs require anyway) and refuses a different key.
fn check_key_refs(body: &Body, item: &Item) -> Result<(), ApiError> {
    if let Some(id) = body.opt_i64("item-id")?
        && id != 0
        && id != item.id
    {
        return Err(ApiError::bad("item-id does not match key-name"));
    }
    if let Some(d) = body.opt_str("display-id")?
        && !d.is_empty()
        && d != format!("{:x}", item.id)
    {
        return Err(ApiError::bad("display-id does not match key-name"));
    }
    Ok(())
}

fn version_param(body: &Body) -> Result<Option<i32>, ApiError> {
    match body.opt_i64("version")? {
        None | Some(0) => Ok(None),
        Some(v) if v > 0 && v <= i64::from(i32::MAX) => Ok(Some(v as i32)),
        Some(_) => Err(ApiError::bad("version must be a positive key version")),
    }
}

pub(super) async fn encrypt(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "key-name")?;
    require(ctx, RuleType::Item, &name, Caps::READ)?;
    let context = context_param(body)?;
    let plaintext = match body.opt_str("plaintext")? {
        None => return Err(ApiError::bad("missing required parameter plaintext")),
        Some(p) => Zeroizing::new(p),
    };
    let plain: Zeroizing<Vec<u8>> = match body.opt_str("input-format")?.as_deref().map(str::trim) {
        None | Some("") => Zeroizing::new(plaintext.as_bytes().to_vec()),
        Some(f) if f.eq_ignore_ascii_case("base64") => Zeroizing::new(
            B64.decode(plaintext.trim())
                .map_err(|_| ApiError::bad("plaintext is not base64 (input-format base64)"))?,
        ),
        Some(_) => return Err(ApiError::bad("input-format must be base64 (or omitted)")),
    };
    if plain.len() > MAX_PLAINTEXT {
        return Err(ApiError::TooLarge(format!(
            "plaintext is larger than {MAX_PLAINTEXT} bytes: encrypt a data key instead"
        )));
    }
    let version = version_param(body)?;
    let (item, v, key) = load_key(&ctx.state, &name, version).await?;
    check_key_refs(body, &item)?;
    let ct = aead::encrypt(&key, v, item.id, &context, &plain)?;
    Ok(json!({"result": B64.encode(ct)}))
}

pub(super) async fn decrypt(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "key-name")?;
    require(ctx, RuleType::Item, &name, Caps::READ)?;
    let context = context_param(body)?;
    let ct = B64
        .decode(body.req_str("ciphertext")?.trim())
        .map_err(|_| ApiError::bad("ciphertext must be base64"))?;
    let base64_out = match body.opt_str("output-format")?.as_deref().map(str::trim) {
        None | Some("") => false,
        Some(f) if f.eq_ignore_ascii_case("base64") => true,
        Some(_) => return Err(ApiError::bad("output-format must be base64 (or omitted)")),
    };
    let version = aead::ciphertext_key_version(&ct)?;
    if let Some(asked) = version_param(body)?
        && asked != version
    {
        return Err(ApiError::bad(format!(
            "version {asked} was given but the ciphertext was made with version {version}"
        )));
    }
    let (item, _, key) = load_key(&ctx.state, &name, Some(version)).await?;
    check_key_refs(body, &item)?;
    let plain = aead::decrypt(&key, item.id, &context, &ct)?;
    let result = if base64_out {
        B64.encode(&*plain)
    } else {
        String::from_utf8(plain.to_vec())
            .map_err(|_| ApiError::bad("the plaintext is binary: ask for output-format base64"))?
    };
    Ok(json!({"result": result}))
}

/// rotate-key: a new version of the same algorithm. A signing key whose
/// latest version carries a self-signed certificate gets a new one with
/// the same subject and lifetime; one with a CA-issued certificate must
/// get its new certificate from that CA (update-classic-key-certificate).
pub(super) async fn rotate(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::UPDATE)?;
    let state = ctx.state.clone();
    let (item, _, old) = load_key(&state, &name, None).await?;
    if item.highest_version >= KEY_MAX_VERSIONS {
        return Err(ApiError::Conflict(format!(
            "key {name:?} has {KEY_MAX_VERSIONS} versions, the most Coffer keeps: create a new key"
        )));
    }
    let alg = old.alg();
    let renewed_cert = old
        .certificate_chain()
        .map(coffer_keys::cert_info::self_signed_subject)
        .transpose()?
        .flatten();
    let key = blocking(move || {
        let key = KeyMaterial::generate(alg)?;
        Ok(match renewed_cert {
            Some((subject, days)) => {
                let pem = k::self_signed_ca(&key, &subject, days, time::OffsetDateTime::now_utc())?;
                key.with_certificate_chain(&pem)?
            }
            None => key,
        })
    })
    .await?;
    let version = item.highest_version + 1;
    let v = seal(&state, item.id, version, &key.to_stored())?;
    state
        .store
        .add_version(
            item.id,
            item.highest_version,
            &v,
            KEY_MAX_VERSIONS,
            ctx.audit(),
        )
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("key {name:?} was rotated concurrently; retry"))
            }
            other => other.into(),
        })?;
    state.items.remove(name.as_str());
    Ok(json!({
        "name": name,
        "item_id": item.id,
        "new_item_version": version,
        "classic_key_type": alg.as_str(),
    }))
}

/// update-classic-key-certificate: attach a certificate (chain, leaf
/// first) to the key's latest version, e.g. an intermediate CA
/// certificate issued by another issuer. Adds a version with the same key.
pub(super) async fn update_certificate(ctx: &mut Ctx, body: &Body) -> Result<Value, ApiError> {
    let name = name_param(ctx, body, "name")?;
    require(ctx, RuleType::Item, &name, Caps::UPDATE)?;
    if let Some(f) = body.opt_str("format")?
        && !f.is_empty()
        && !f.eq_ignore_ascii_case("pem")
    {
        return Err(ApiError::bad("format: certificates are PEM"));
    }
    let pem = pem_or_base64("cert-file-data", &body.req_str("cert-file-data")?)?;
    let state = ctx.state.clone();
    let (item, _, key) = load_key(&state, &name, None).await?;
    let key = KeyMaterial::clone(&key).with_certificate_chain(&pem)?;
    if item.highest_version >= KEY_MAX_VERSIONS {
        return Err(ApiError::Conflict(format!(
            "key {name:?} has {KEY_MAX_VERSIONS} versions, the most Coffer keeps"
        )));
    }
    let version = item.highest_version + 1;
    let v = seal(&state, item.id, version, &key.to_stored())?;
    state
        .store
        .add_version(
            item.id,
            item.highest_version,
            &v,
            KEY_MAX_VERSIONS,
            ctx.audit(),
        )
        .await
        .map_err(|e| match e {
            coffer_store::StoreError::Conflict(_) => {
                ApiError::Conflict(format!("key {name:?} was updated concurrently; retry"))
            }
            other => other.into(),
        })?;
    state.items.remove(name.as_str());
    Ok(json!({"name": name, "new_item_version": version}))
}

/// describe-item's key details: algorithm, public part, certificates.
pub(super) async fn describe(state: &AppState, item: &Item, v: &mut Value) -> Result<(), ApiError> {
    let (_, _, key) = load_key(state, &item.name, None).await?;
    let public = if key.alg().is_symmetric() {
        None
    } else {
        Some(key.public_key()?)
    };
    v["item_general_info"] = json!({"classic_key_details": {
        "key_type": key.alg().as_str(),
        "public_key": public.as_ref().map(|p| p.pem.clone()).unwrap_or_default(),
    }});
    if let Some(p) = public {
        v["public_value"] = Value::String(p.ssh);
    }
    if let Some(chain) = key.certificate_chain() {
        v["certificates"] = Value::String(chain.to_owned());
    }
    Ok(())
}

/// The signer key of an issuer: it must exist, be a signing key, and the
/// caller creating or changing the issuer must be allowed to use it
/// (otherwise an issuer would launder access to a key it cannot read).
pub(super) async fn check_signer(
    ctx: &mut Ctx,
    signer: &str,
    needs_certificate: bool,
) -> Result<String, ApiError> {
    let signer = coffer_core::name::normalize_name(signer)?;
    require(ctx, RuleType::Item, &signer, Caps::READ)?;
    // One lookup: load_key checks existence and type.
    let (_, _, key) = load_key(&ctx.state, &signer, None)
        .await
        .map_err(|e| match e {
            ApiError::NotFound(_) => ApiError::bad(format!(
                "signer-key-name {signer:?}: no such key (create it with create-classic-key)"
            )),
            other => other,
        })?;
    if key.alg().is_symmetric() {
        return Err(ApiError::bad(format!(
            "signer-key-name {signer:?} is an {} key: issuers sign with RSA, EC256, EC384 or Ed25519 keys",
            key.alg()
        )));
    }
    if needs_certificate && key.certificate_chain().is_none() {
        return Err(ApiError::bad(format!(
            "signer-key-name {signer:?} has no certificate: create the key with \
             generate-self-signed-certificate (a root CA), or attach a CA certificate with \
             update-classic-key-certificate"
        )));
    }
    Ok(signer)
}

/// A key that issuers sign with cannot be deleted from under them: the
/// refusal names them (delete or re-point them first).
pub(super) async fn before_delete(ctx: &mut Ctx, item: &Item) -> Result<(), ApiError> {
    let users = super::certs::issuers_using(&ctx.state, &item.name).await?;
    if users.is_empty() {
        return Ok(());
    }
    Err(ApiError::Conflict(format!(
        "key {:?} signs for issuers {}: delete them or give them another signer-key-name first",
        item.name,
        users.join(", ")
    )))
}
