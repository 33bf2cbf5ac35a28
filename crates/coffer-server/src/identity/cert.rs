//! `cert` methods: a client certificate chained to a CA stored in the
//! method, and proof that the caller holds its private key.
//!
//! The private key never leaves the client. A login takes two requests:
//!
//! 1. `get-cert-challenge {access-id, cert-data}` checks the certificate
//!    (chain, dates, usage, bindings, revoked serials) and returns a
//!    challenge: a random nonce, an expiry ([`CHALLENGE_TTL_MS`]) and a MAC
//!    over both, the access ID and the certificate's hash. No node keeps
//!    it: any node checks the MAC.
//! 2. `auth {access-type: cert, access-id, cert-data, cert-challenge,
//!    signed-cert-challenge}`: the certificate is checked again, the MAC,
//!    expiry and binding of the challenge, then the signature by the
//!    certificate's key of the challenge's text behind the fixed prefix
//!    `coffer-cert-login-v1\0` ([`coffer_core::cert_login::signed_message`]:
//!    the key never signs a bare server-chosen text) (RSA PKCS#1 v1.5 or PSS,
//!    ECDSA, Ed25519: what `openssl dgst -sha256 -sign key.pem` makes, and
//!    SHA-384 for P-384 keys). Last, the challenge is used up in the store
//!    (`consume_login_nonce`), so it logs in once on whichever node it
//!    reaches first.
//!
//! A body carrying `key-data` (a private key) is refused without looking
//! at it. The Coffer token never outlives any certificate of the verified
//! path, the CA included (webpki does not check the trust anchor's dates,
//! so this module does). The token's claims carry the leaf's serial, the
//! intermediates' serials and the fingerprint of the CA certificate that
//! anchored the path: every request of the token re-checks them against
//! the method's current `revoked-cert-ids` and CA ([`token_still_trusted`]).
//!
//! Path building and signature checks run in `spawn_blocking`: a hostile
//! chain (`get-cert-challenge` needs no token) must not stall an async
//! worker.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use coffer_core::glob::wildcard_match;
use coffer_core::model::AuthMethod;
use coffer_core::subclaims::Claims;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::{Verified, bounded_list, settings};
use crate::error::ApiError;
use crate::state::{AppState, now_ms};
use crate::wire::Body;

/// How long a challenge can be answered.
pub(crate) const CHALLENGE_TTL_MS: i64 = 60_000;
/// Largest `certificate-data` (the CA bundle) and `cert-data` accepted.
const MAX_PEM_BYTES: usize = 256 * 1024;
/// Most certificates in a CA bundle or a presented chain.
const MAX_CERTS: usize = 16;
const NONCE_LEN: usize = 16;
const MAC_LEN: usize = 32;
const CHALLENGE_LEN: usize = NONCE_LEN + 8 + MAC_LEN;
// The CLI checks a challenge's form against coffer-core's constants.
const _: () = assert!(CHALLENGE_LEN == coffer_core::cert_login::CHALLENGE_BYTES);

/// Claim: SHA-256 (lowercase hex) of the CA certificate of the method's
/// `certificate-data` that anchored the certificate's path.
const CA_FINGERPRINT_CLAIM: &str = "ca_fingerprint";
/// Claim: serial numbers of the intermediate CA certificates of the path.
const INTERMEDIATE_SERIALS_CLAIM: &str = "intermediate_serial_numbers";

/// The certificate fields `unique-identifier` may name (the sub-claim that
/// names the caller in the audit log and the token).
const IDENTIFIERS: &[&str] = &[
    "common_name",
    "organizational_unit",
    "dns_sans",
    "email_sans",
    "uri_sans",
    "serial_number",
];

const KEY_DATA_REFUSED: &str = "key-data is refused: Coffer never accepts a private key. Sign the challenge locally instead: POST /get-cert-challenge {access-id, cert-data} returns a challenge; sign its text behind the prefix coffer-cert-login-v1 and a NUL byte with the certificate's key (e.g. printf 'coffer-cert-login-v1\\000%s' \"$CHALLENGE\" | openssl dgst -sha256 -sign key.pem | base64 -w0) and send auth with cert-data, cert-challenge and signed-cert-challenge (coffer auth --access-type cert --cert-file-name F --key-file-name K does all of it)";

/// Stored settings of a cert method.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct CertConfig {
    /// The trusted CA certificate(s), PEM.
    pub ca_pem: String,
    pub unique_identifier: String,
    #[serde(default)]
    pub bound_common_names: Vec<String>,
    #[serde(default)]
    pub bound_dns_sans: Vec<String>,
    #[serde(default)]
    pub bound_email_sans: Vec<String>,
    #[serde(default)]
    pub bound_uri_sans: Vec<String>,
    #[serde(default)]
    pub bound_organizational_units: Vec<String>,
    /// `oid:value-glob`, every one required.
    #[serde(default)]
    pub bound_extensions: Vec<String>,
    /// Serial numbers, lowercase hex without separators or leading zeros.
    #[serde(default)]
    pub revoked_cert_ids: Vec<String>,
    /// SHA-256 (lowercase hex) of each certificate of `ca_pem`, for the
    /// per-request check of tokens ([`token_still_trusted`]).
    #[serde(default)]
    pub ca_fingerprints: Vec<String>,
}

/// The settings of `create-auth-method-cert` (and of an update, which
/// replaces them all, as for every other kind).
pub(crate) fn settings_from_body(body: &Body) -> Result<Value, ApiError> {
    if body.bool_or("require-crl-dp", false)? {
        return Err(ApiError::bad(
            "require-crl-dp is not supported: Coffer does not fetch CRLs from distribution points; list the serial numbers of revoked certificates in revoked-cert-ids instead",
        ));
    }
    let data = body.opt_str("certificate-data")?.unwrap_or_default();
    if data.trim().is_empty() {
        return Err(ApiError::bad(
            "missing required parameter certificate-data: the CA certificate(s) that sign the client certificates, PEM, base64-encoded (e.g. base64 -w0 ca.pem)",
        ));
    }
    let ca_pem = pem_text(&data, "certificate-data").map_err(ApiError::BadRequest)?;
    check_ca_bundle(&ca_pem)?;
    let ca_fingerprints = ca_fingerprints(&ca_pem).map_err(ApiError::BadRequest)?;
    let unique_identifier = match body.opt_str("unique-identifier")? {
        Some(u) if !u.trim().is_empty() => {
            let u = u.trim().to_ascii_lowercase();
            if !IDENTIFIERS.contains(&u.as_str()) {
                return Err(ApiError::bad(format!(
                    "unique-identifier {:?} is not a certificate field Coffer knows: use one of {}",
                    coffer_core::name::truncate_for_message(&u),
                    IDENTIFIERS.join(", ")
                )));
            }
            u
        }
        _ => "common_name".to_owned(),
    };
    let bound_extensions = bounded_list(body, "bound-extensions")?;
    for e in &bound_extensions {
        parse_extension_rule(e)?;
    }
    let ids = body.list("revoked-cert-ids")?;
    if ids.len() > 10_000 {
        return Err(ApiError::bad(
            "revoked-cert-ids accepts at most 10000 serial numbers",
        ));
    }
    let revoked_cert_ids = ids
        .iter()
        .map(|id| {
            normalize_serial(id).ok_or_else(|| {
                ApiError::bad(format!(
                    "revoked-cert-ids entry {:?} is not a serial number in hex (e.g. 1f:2a:03 or 1F2A03, as openssl x509 -serial prints it)",
                    coffer_core::name::truncate_for_message(id)
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let cfg = CertConfig {
        ca_pem,
        unique_identifier,
        bound_common_names: bounded_list(body, "bound-common-names")?,
        bound_dns_sans: bounded_list(body, "bound-dns-sans")?,
        bound_email_sans: bounded_list(body, "bound-email-sans")?,
        bound_uri_sans: bounded_list(body, "bound-uri-sans")?,
        bound_organizational_units: bounded_list(body, "bound-organizational-units")?,
        bound_extensions,
        revoked_cert_ids,
        ca_fingerprints,
    };
    serde_json::to_value(&cfg).map_err(ApiError::internal)
}

fn fingerprint(der: &[u8]) -> String {
    hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, der).as_ref())
}

/// SHA-256 of each certificate of a CA bundle.
fn ca_fingerprints(ca_pem: &str) -> Result<Vec<String>, String> {
    Ok(pem_certs(ca_pem, "certificate-data")?
        .iter()
        .map(|d| fingerprint(d))
        .collect())
}

/// What a token of a cert method must still satisfy, read from the stored
/// settings (other fields, the CA bundle among them, are skipped, not
/// copied).
#[derive(Deserialize)]
struct TokenRules {
    #[serde(default)]
    revoked_cert_ids: Vec<String>,
    #[serde(default)]
    ca_fingerprints: Vec<String>,
    #[serde(default)]
    bound_common_names: Vec<String>,
    #[serde(default)]
    bound_dns_sans: Vec<String>,
    #[serde(default)]
    bound_email_sans: Vec<String>,
    #[serde(default)]
    bound_uri_sans: Vec<String>,
    #[serde(default)]
    bound_organizational_units: Vec<String>,
}

/// Every request of a token minted by a cert login: the certificate it
/// logged in with must still be trusted by the method as it is now. A
/// serial (of the leaf or of an intermediate of its path) added to
/// `revoked-cert-ids`, a CA bundle no longer holding the CA certificate
/// that anchored the path, or `bound-*` name settings its certificate no
/// longer matches, end the token at once (on every node within
/// the sync interval, when the method's change reaches its snapshot).
pub(crate) fn token_still_trusted(am: &AuthMethod, claims: &Claims) -> Result<(), ApiError> {
    let refused = |why: String| {
        ApiError::Unauthorized(format!(
            "token refused: {why}; log in again with a certificate auth method {:?} trusts",
            am.name
        ))
    };
    let rules = TokenRules::deserialize(&am.config)
        .map_err(|e| ApiError::internal(format!("cert settings of {:?}: {e}", am.name)))?;
    let empty = Vec::new();
    let serials = claims
        .get("serial_number")
        .unwrap_or(&empty)
        .iter()
        .chain(claims.get(INTERMEDIATE_SERIALS_CLAIM).unwrap_or(&empty));
    for serial in serials {
        if rules.revoked_cert_ids.contains(serial) {
            return Err(refused(format!(
                "the certificate it logged in with (or a CA of its path), serial {serial}, is now in revoked-cert-ids of auth method {:?}",
                am.name
            )));
        }
    }
    let fp = claims
        .get(CA_FINGERPRINT_CLAIM)
        .and_then(|v| v.first())
        .ok_or_else(|| refused("it carries no CA fingerprint".into()))?;
    let trusted = if rules.ca_fingerprints.is_empty() {
        // Settings stored before fingerprints were: compute them.
        let c: CertConfig = settings(am)?;
        ca_fingerprints(&c.ca_pem)
            .map_err(ApiError::internal)?
            .contains(fp)
    } else {
        rules.ca_fingerprints.contains(fp)
    };
    if !trusted {
        return Err(refused(format!(
            "the CA certificate that issued its certificate (SHA-256 {fp}) is no longer in certificate-data of auth method {:?}",
            am.name
        )));
    }
    // The name bindings as they are now (bound-extensions are checked at
    // login only: the token does not carry the certificate's extensions).
    check_name_bindings(
        [
            &rules.bound_common_names,
            &rules.bound_dns_sans,
            &rules.bound_email_sans,
            &rules.bound_uri_sans,
            &rules.bound_organizational_units,
        ],
        claims,
    )
    .map_err(refused)?;
    Ok(())
}

/// `cert_access_rules` of `get-auth-method` (the SDK's CertAccessRules).
pub(crate) fn rules_json(am: &AuthMethod) -> Value {
    let c: CertConfig = serde_json::from_value(am.config.clone()).unwrap_or_default();
    json!({
        "certificate": base64::engine::general_purpose::STANDARD.encode(&c.ca_pem),
        "unique_identifier": c.unique_identifier,
        "bound_common_names": c.bound_common_names,
        "bound_dns_sans": c.bound_dns_sans,
        "bound_email_sans": c.bound_email_sans,
        "bound_uri_sans": c.bound_uri_sans,
        "bound_organizational_units": c.bound_organizational_units,
        "bound_extensions": c.bound_extensions,
        "revoked_cert_ids": c.revoked_cert_ids,
        "require_crl_dp": false,
    })
}

/// PEM text from a parameter: base64 of the PEM (as the SDKs send it), or
/// the PEM itself.
fn pem_text(data: &str, key: &str) -> Result<String, String> {
    let data = data.trim();
    if data.len() > MAX_PEM_BYTES * 2 {
        return Err(format!("{key} is larger than {} bytes", MAX_PEM_BYTES * 2));
    }
    if data.starts_with("-----BEGIN") {
        return Ok(data.to_owned());
    }
    let compact: String = data.split_ascii_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&compact)
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(compact.trim_end_matches('='))
        })
        .map_err(|_| {
            format!("{key} must be PEM certificate(s), base64-encoded (e.g. base64 -w0 cert.pem)")
        })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        format!("{key} does not decode to PEM text: send the PEM file, base64-encoded")
    })?;
    if !text.trim_start().starts_with("-----BEGIN") {
        return Err(format!(
            "{key} does not decode to PEM (-----BEGIN CERTIFICATE-----): send the PEM file, base64-encoded"
        ));
    }
    Ok(text)
}

/// The DER certificates of a PEM text, in order.
fn pem_certs(pem: &str, key: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for part in x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes()) {
        let part = part.map_err(|e| format!("{key}: bad PEM ({e})"))?;
        if part.label == "CERTIFICATE" {
            out.push(part.contents);
        } else if part.label.contains("PRIVATE KEY") {
            return Err(format!(
                "{key} contains a private key: send certificates only (the private key never leaves the client)"
            ));
        }
        if out.len() > MAX_CERTS {
            return Err(format!("{key} holds more than {MAX_CERTS} certificates"));
        }
    }
    if out.is_empty() {
        return Err(format!(
            "{key} holds no certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(out)
}

fn parse<'a>(der: &'a [u8], what: &str) -> Result<X509Certificate<'a>, String> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| format!("{what} is not a valid X.509 certificate ({e})"))
}

fn check_ca_bundle(pem: &str) -> Result<(), ApiError> {
    let ders = pem_certs(pem, "certificate-data").map_err(ApiError::BadRequest)?;
    for (i, der) in ders.iter().enumerate() {
        let what = format!("certificate {} of certificate-data", i + 1);
        let cert = parse(der, &what).map_err(ApiError::BadRequest)?;
        if !cert.is_ca() {
            return Err(ApiError::bad(format!(
                "{what} ({}) is not a CA certificate (no basicConstraints CA:TRUE): give the CA that signs the client certificates, not a client certificate",
                cert.subject()
            )));
        }
        webpki::anchor_from_trusted_cert(&CertificateDer::from(der.as_slice()))
            .map_err(|e| ApiError::bad(format!("{what} cannot be used as a trust anchor: {e}")))?;
    }
    Ok(())
}

/// `abc:def` or `0ABC` → `abc`/`abcdef`: lowercase hex, no separators,
/// no leading zeros (so `00:1f` and `1F` name the same serial).
fn normalize_serial(s: &str) -> Option<String> {
    let hex: String = s
        .trim()
        .trim_start_matches("0x")
        .chars()
        .filter(|c| *c != ':' && *c != ' ')
        .collect();
    if hex.is_empty() || hex.len() > 128 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let t = hex.trim_start_matches('0').to_ascii_lowercase();
    Some(if t.is_empty() { "0".into() } else { t })
}

fn serial_of(cert: &X509Certificate<'_>) -> String {
    normalize_serial(&hex::encode(cert.raw_serial())).unwrap_or_else(|| "0".into())
}

/// `oid:value-glob` → (oid, glob).
fn parse_extension_rule(rule: &str) -> Result<(&str, &str), ApiError> {
    match rule.split_once(':') {
        Some((oid, value))
            if !oid.is_empty()
                && oid.split('.').count() >= 2
                && oid
                    .split('.')
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())) =>
        {
            Ok((oid, value))
        }
        _ => Err(ApiError::bad(format!(
            "bound-extensions entry {:?} must be oid:value (e.g. 1.3.6.1.4.1.311.21.7:*; the value is a glob matched against the extension's string value)",
            coffer_core::name::truncate_for_message(rule)
        ))),
    }
}

/// What a certificate says about its holder, as sub-claims.
fn claims_of(cert: &X509Certificate<'_>) -> Claims {
    let mut c = Claims::new();
    let mut put = |k: &str, v: &str| {
        c.entry(k.to_owned()).or_default().push(v.to_owned());
    };
    for cn in cert.subject().iter_common_name() {
        if let Ok(s) = cn.as_str() {
            put("common_name", s);
        }
    }
    for ou in cert.subject().iter_organizational_unit() {
        if let Ok(s) = ou.as_str() {
            put("organizational_unit", s);
        }
    }
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(s) => put("dns_sans", s),
                GeneralName::RFC822Name(s) => put("email_sans", s),
                GeneralName::URI(s) => put("uri_sans", s),
                _ => {}
            }
        }
    }
    put("serial_number", &serial_of(cert));
    c
}

fn fail(msg: impl std::fmt::Display) -> ApiError {
    ApiError::Unauthorized(format!("cert authentication failed: {msg}"))
}

/// A presented certificate that passed every check of the method.
struct Checked {
    leaf_der: Vec<u8>,
    claims: Claims,
    identity: String,
    not_after_ms: i64,
}

/// The body's `cert-data`, required.
fn cert_data(body: &Body) -> Result<String, ApiError> {
    let data = body.opt_str("cert-data")?.unwrap_or_default();
    if data.trim().is_empty() {
        return Err(ApiError::bad(
            "missing required parameter cert-data: the client certificate (PEM, base64-encoded; intermediates may follow it)",
        ));
    }
    Ok(data)
}

/// [`check_cert`] on a blocking thread: path building over a hostile
/// chain (up to [`MAX_CERTS`] certificates against as many anchors, each
/// step a signature check) must not hold an async worker.
async fn check_cert_blocking(cfg: CertConfig, data: String) -> Result<Checked, ApiError> {
    tokio::task::spawn_blocking(move || check_cert(&cfg, &data))
        .await
        .map_err(ApiError::internal)?
}

/// Unix milliseconds of a certificate's notAfter.
fn not_after_ms(cert: &X509Certificate<'_>) -> i64 {
    cert.validity().not_after.timestamp().saturating_mul(1000)
}

/// Check `cert-data` against the method: chain to its CA, dates (the CA's
/// too), client usage, revoked serials and bindings.
fn check_cert(cfg: &CertConfig, data: &str) -> Result<Checked, ApiError> {
    let pem = pem_text(data, "cert-data").map_err(ApiError::BadRequest)?;
    let chain = pem_certs(&pem, "cert-data").map_err(ApiError::BadRequest)?;
    let ca = pem_certs(&cfg.ca_pem, "the stored CA").map_err(ApiError::internal)?;
    let ca_ders: Vec<CertificateDer<'_>> = ca
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let anchors: Vec<TrustAnchor<'_>> = ca_ders
        .iter()
        .map(webpki::anchor_from_trusted_cert)
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    let leaf_der = CertificateDer::from(chain[0].as_slice());
    let intermediates: Vec<CertificateDer<'_>> = chain[1..]
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let leaf = parse(&chain[0], "cert-data").map_err(fail)?;
    let ee = webpki::EndEntityCert::try_from(&leaf_der)
        .map_err(|e| fail(format!("the client certificate cannot be parsed ({e})")))?;
    let now = now_ms();
    let time = UnixTime::since_unix_epoch(Duration::from_millis(u64::try_from(now).unwrap_or(0)));
    let path = ee
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            time,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| fail(chain_error(&e, &leaf)))?;
    if let Ok(Some(ku)) = leaf.key_usage()
        && !ku.value.digital_signature()
    {
        return Err(fail(
            "the certificate's key usage does not include digitalSignature, so its key may not sign a login challenge",
        ));
    }
    // webpki checks the dates of the leaf and the intermediates, not the
    // trust anchor's: check them here, and end the token with the first
    // certificate of the path to expire. Several CA certificates may share
    // the anchor's name and key (a renewed CA): the one valid now that
    // lasts longest anchors the path.
    let now_secs = now / 1000;
    let candidates: Vec<(usize, X509Certificate<'_>)> = anchors
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == path.anchor())
        .map(|(i, _)| {
            parse(&ca[i], "the stored CA")
                .map(|c| (i, c))
                .map_err(ApiError::internal)
        })
        .collect::<Result<_, _>>()?;
    let valid_now = |c: &X509Certificate<'_>| {
        let v = c.validity();
        v.not_before.timestamp() <= now_secs && now_secs < v.not_after.timestamp()
    };
    let (anchor_index, anchor) = match candidates
        .iter()
        .filter(|(_, c)| valid_now(c))
        .max_by_key(|(_, c)| c.validity().not_after.timestamp())
    {
        Some((i, c)) => (*i, c),
        None => {
            let Some((_, c)) = candidates.first() else {
                return Err(ApiError::internal(
                    "the verified path's anchor is not one of the CA's",
                ));
            };
            let v = c.validity();
            return Err(fail(if v.not_after.timestamp() <= now_secs {
                format!(
                    "the CA certificate {} of this auth method expired on {}",
                    c.subject(),
                    v.not_after
                )
            } else {
                format!(
                    "the CA certificate {} of this auth method is not valid before {}",
                    c.subject(),
                    v.not_before
                )
            }));
        }
    };
    let mut path_not_after_ms = not_after_ms(&leaf).min(not_after_ms(anchor));
    let mut intermediate_serials = Vec::new();
    for c in path.intermediate_certificates() {
        let der = c.der();
        let cert = parse(&der, "an intermediate of cert-data").map_err(fail)?;
        path_not_after_ms = path_not_after_ms.min(not_after_ms(&cert));
        intermediate_serials.push(serial_of(&cert));
    }
    // Revoked serials: the client certificate and every intermediate of the
    // verified path.
    let leaf_serial = serial_of(&leaf);
    if cfg.revoked_cert_ids.contains(&leaf_serial) {
        return Err(fail(format!(
            "the client certificate {} (serial {leaf_serial}) is revoked (revoked-cert-ids of this auth method)",
            leaf.subject()
        )));
    }
    for serial in &intermediate_serials {
        if cfg.revoked_cert_ids.contains(serial) {
            return Err(fail(format!(
                "intermediate CA certificate with serial {serial} is revoked (revoked-cert-ids of this auth method)"
            )));
        }
    }
    let mut claims = claims_of(&leaf);
    check_bindings(cfg, &leaf, &claims)?;
    let key = cfg.unique_identifier.as_str();
    let identity = claims
        .get(key)
        .and_then(|v| v.first())
        .cloned()
        .ok_or_else(|| {
            fail(format!(
                "the certificate has no {key}, the unique-identifier of this auth method"
            ))
        })?;
    // For the per-request check of the token (after the bindings: these
    // are not certificate fields a binding names).
    claims.insert(
        CA_FINGERPRINT_CLAIM.to_owned(),
        vec![fingerprint(&ca[anchor_index])],
    );
    if !intermediate_serials.is_empty() {
        claims.insert(INTERMEDIATE_SERIALS_CLAIM.to_owned(), intermediate_serials);
    }
    Ok(Checked {
        leaf_der: chain[0].clone(),
        claims,
        identity,
        not_after_ms: path_not_after_ms,
    })
}

fn chain_error(e: &webpki::Error, leaf: &X509Certificate<'_>) -> String {
    use webpki::Error as E;
    let v = leaf.validity();
    match e {
        E::CertExpired { .. } => format!(
            "a certificate of the chain has expired (the client certificate is valid {} to {})",
            v.not_before, v.not_after
        ),
        E::CertNotValidYet { .. } => format!(
            "a certificate of the chain is not valid yet (the client certificate is valid {} to {})",
            v.not_before, v.not_after
        ),
        E::UnknownIssuer => format!(
            "certificate {} (issuer {}) does not chain to the CA of this auth method: send the certificate its CA signed, with any intermediates after it in cert-data",
            leaf.subject(),
            leaf.issuer()
        ),
        E::RequiredEkuNotFoundContext(_) => {
            "the certificate's extended key usage does not allow client authentication (clientAuth)"
                .into()
        }
        E::CaUsedAsEndEntity => {
            "a CA certificate cannot log in: present a client certificate".into()
        }
        other => format!("the certificate chain does not verify ({other})"),
    }
}

/// Each non-empty binding needs one of its patterns to match one of the
/// certificate's values (globs, case-insensitive for names and e-mails);
/// every `bound-extensions` rule must match.
fn check_bindings(
    cfg: &CertConfig,
    leaf: &X509Certificate<'_>,
    claims: &Claims,
) -> Result<(), ApiError> {
    check_name_bindings(
        [
            &cfg.bound_common_names,
            &cfg.bound_dns_sans,
            &cfg.bound_email_sans,
            &cfg.bound_uri_sans,
            &cfg.bound_organizational_units,
        ],
        claims,
    )
    .map_err(fail)?;
    for rule in &cfg.bound_extensions {
        let (oid, glob) = parse_extension_rule(rule)?;
        let value = leaf
            .iter_extensions()
            .find(|e| e.oid.to_id_string() == oid)
            .and_then(|e| {
                x509_parser::der_parser::parse_der(e.value)
                    .ok()
                    .and_then(|(_, o)| o.as_str().ok().map(str::to_owned))
            });
        match value {
            Some(v) if wildcard_match(glob, &v, true) => {}
            Some(v) => {
                return Err(fail(format!(
                    "extension {oid} of the certificate is {v:?}, which does not match bound-extensions {rule:?}"
                )));
            }
            None => {
                return Err(fail(format!(
                    "the certificate has no extension {oid} with a string value (bound-extensions {rule:?})"
                )));
            }
        }
    }
    Ok(())
}

/// The `bound-*` name settings against a certificate's claims, in the
/// order common names, DNS SANs, e-mail SANs, URI SANs, organizational
/// units (at login, and for a token on every request).
fn check_name_bindings(lists: [&Vec<String>; 5], claims: &Claims) -> Result<(), String> {
    const BINDINGS: [(&str, &str, bool); 5] = [
        ("bound-common-names", "common_name", false),
        ("bound-dns-sans", "dns_sans", false),
        ("bound-email-sans", "email_sans", false),
        ("bound-uri-sans", "uri_sans", true),
        ("bound-organizational-units", "organizational_unit", true),
    ];
    let empty = Vec::new();
    for ((setting, claim, case_sensitive), patterns) in BINDINGS.into_iter().zip(lists) {
        if patterns.is_empty() {
            continue;
        }
        let values = claims.get(claim).unwrap_or(&empty);
        let ok = patterns
            .iter()
            .any(|p| values.iter().any(|v| wildcard_match(p, v, case_sensitive)));
        if !ok {
            return Err(format!(
                "the certificate's {claim} {values:?} matches none of {setting} {patterns:?}"
            ));
        }
    }
    Ok(())
}

fn refuse_key_data(body: &Body) -> Result<(), ApiError> {
    if body
        .opt_str("key-data")?
        .is_some_and(|k| !k.trim().is_empty())
    {
        return Err(ApiError::bad(KEY_DATA_REFUSED));
    }
    Ok(())
}

/// The MAC binding a challenge's nonce and expiry to the method and the
/// certificate it was issued for.
fn challenge_mac(
    state: &AppState,
    access_id: &str,
    leaf_der: &[u8],
    nonce: &[u8],
    expires_ms: i64,
) -> Vec<u8> {
    let mut msg = Vec::with_capacity(64 + access_id.len());
    msg.extend_from_slice(b"coffer cert challenge v1\0");
    msg.extend_from_slice(access_id.as_bytes());
    msg.push(0);
    msg.extend_from_slice(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf_der).as_ref());
    msg.extend_from_slice(nonce);
    msg.extend_from_slice(&expires_ms.to_be_bytes());
    state.keys.login_nonce_mac.hash(&msg)
}

/// `get-cert-challenge {access-id, cert-data}` → `{challenge}`.
pub(crate) async fn issue_challenge(
    state: &AppState,
    am: &AuthMethod,
    body: &Body,
) -> Result<Value, ApiError> {
    refuse_key_data(body)?;
    let cfg: CertConfig = settings(am)?;
    let checked = check_cert_blocking(cfg, cert_data(body)?).await?;
    let mut nonce = [0u8; NONCE_LEN];
    coffer_crypto::fill_random(&mut nonce)?;
    let expires_ms = now_ms() + CHALLENGE_TTL_MS;
    let mac = challenge_mac(state, &am.access_id, &checked.leaf_der, &nonce, expires_ms);
    let mut raw = Vec::with_capacity(CHALLENGE_LEN);
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(&expires_ms.to_be_bytes());
    raw.extend_from_slice(&mac);
    Ok(json!({
        "challenge": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
    }))
}

/// A login: the certificate, then the challenge and its signature, then
/// the challenge is used up (on every node).
pub(crate) async fn login(
    state: &Arc<AppState>,
    am: &AuthMethod,
    body: &Body,
) -> Result<Verified, ApiError> {
    refuse_key_data(body)?;
    let cfg: CertConfig = settings(am)?;
    let checked = check_cert_blocking(cfg, cert_data(body)?).await?;
    let challenge = body.opt_str("cert-challenge")?.unwrap_or_default();
    let signature = body.opt_str("signed-cert-challenge")?.unwrap_or_default();
    if challenge.trim().is_empty() || signature.trim().is_empty() {
        return Err(ApiError::bad(
            "a cert login needs cert-challenge and signed-cert-challenge: get a challenge from POST /get-cert-challenge {access-id, cert-data}, sign coffer-cert-login-v1, a NUL byte and its text with the certificate's private key (base64 of the signature) and send both with cert-data (coffer auth --access-type cert --cert-file-name F --key-file-name K does this)",
        ));
    }
    let challenge = challenge.trim();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(challenge)
        .ok()
        .filter(|r| r.len() == CHALLENGE_LEN)
        .ok_or_else(|| fail("cert-challenge is not a challenge this server issued"))?;
    let (nonce, rest) = raw.split_at(NONCE_LEN);
    let (exp, mac) = rest.split_at(8);
    let expires_ms = i64::from_be_bytes(exp.try_into().map_err(ApiError::internal)?);
    let expected = challenge_mac(state, &am.access_id, &checked.leaf_der, nonce, expires_ms);
    if !constant_time_eq(&expected, mac) {
        return Err(fail(
            "cert-challenge was not issued by this server for this auth method and certificate: request one with get-cert-challenge",
        ));
    }
    if expires_ms <= now_ms() {
        return Err(fail(format!(
            "cert-challenge expired (a challenge is valid for {} s): request a new one with get-cert-challenge",
            CHALLENGE_TTL_MS / 1000
        )));
    }
    let sig_text: String = signature.split_ascii_whitespace().collect();
    let sig = base64::engine::general_purpose::STANDARD
        .decode(&sig_text)
        .or_else(|_| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(sig_text.trim_end_matches('='))
        })
        .map_err(|_| {
            ApiError::bad("signed-cert-challenge must be the signature, base64-encoded")
        })?;
    // The key signed the challenge behind Coffer's prefix, never the bare
    // text (see coffer_core::cert_login).
    let message = coffer_core::cert_login::signed_message(challenge);
    let leaf_der = checked.leaf_der.clone();
    tokio::task::spawn_blocking(move || verify_signature(&leaf_der, &message, &sig))
        .await
        .map_err(ApiError::internal)??;
    // Last: use the challenge up. A second use, here or on another node,
    // finds it taken; the store also refuses it once expired (it may have
    // expired since the check above).
    let now = now_ms();
    if !state
        .store
        .consume_login_nonce(mac, expires_ms, now)
        .await?
    {
        return Err(fail(if expires_ms <= now {
            "cert-challenge expired: request a new one with get-cert-challenge"
        } else {
            "cert-challenge was already used: every challenge logs in once; request a new one with get-cert-challenge"
        }));
    }
    Ok(Verified {
        identity: checked.identity,
        claims: checked.claims,
        not_after_ms: Some(checked.not_after_ms),
    })
}

/// `explain-access` for a cert method: the certificate is checked as a
/// login would (no challenge: the explaining administrator does not hold
/// the client's key), giving the claims associations are matched against.
pub(crate) async fn verify_for_explain(am: &AuthMethod, body: &Body) -> Result<Verified, ApiError> {
    refuse_key_data(body)?;
    let cfg: CertConfig = settings(am)?;
    let checked = check_cert_blocking(cfg, cert_data(body)?).await?;
    Ok(Verified {
        identity: checked.identity,
        claims: checked.claims,
        not_after_ms: Some(checked.not_after_ms),
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// The challenge's signature by the certificate's key.
fn verify_signature(leaf_der: &[u8], msg: &[u8], sig: &[u8]) -> Result<(), ApiError> {
    use webpki::aws_lc_rs as alg;
    let der = CertificateDer::from(leaf_der);
    let ee = webpki::EndEntityCert::try_from(&der).map_err(ApiError::internal)?;
    let algs = [
        alg::RSA_PKCS1_2048_8192_SHA256,
        alg::RSA_PKCS1_2048_8192_SHA384,
        alg::RSA_PKCS1_2048_8192_SHA512,
        alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        alg::ECDSA_P256_SHA256,
        alg::ECDSA_P384_SHA384,
        alg::ECDSA_P384_SHA256,
        alg::ECDSA_P521_SHA512,
        alg::ED25519,
    ];
    if algs
        .iter()
        .any(|a| ee.verify_signature(*a, msg, sig).is_ok())
    {
        Ok(())
    } else {
        Err(fail(
            "signed-cert-challenge is not a signature of the challenge by the certificate's key (sign the bytes coffer-cert-login-v1, a NUL byte, then the challenge text exactly as received, with the private key of the certificate sent in cert-data: RSA PKCS#1 v1.5 or PSS, ECDSA or Ed25519, SHA-256, or SHA-384 for P-384 keys)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_normalize() {
        assert_eq!(normalize_serial("00:1F:2a").as_deref(), Some("1f2a"));
        assert_eq!(normalize_serial("1f2A").as_deref(), Some("1f2a"));
        assert_eq!(normalize_serial("0x00").as_deref(), Some("0"));
        assert_eq!(normalize_serial("xyz"), None);
        assert_eq!(normalize_serial(""), None);
    }

    #[test]
    fn extension_rules() {
        assert_eq!(parse_extension_rule("1.2.3:a*").unwrap(), ("1.2.3", "a*"));
        assert!(parse_extension_rule("nope:x").is_err());
        assert!(parse_extension_rule("1..2:x").is_err());
        assert!(parse_extension_rule("1.2").is_err());
    }

    /// Path building runs off the async worker: on a current-thread
    /// runtime a task spawned before the check runs while the check is
    /// awaited (checked inline, the worker would not have been free).
    #[tokio::test(flavor = "current_thread")]
    async fn chains_are_checked_off_the_async_worker() {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
            KeyPair,
        };
        use std::sync::atomic::{AtomicBool, Ordering};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name.push(DnType::CommonName, "Test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let key = KeyPair::generate().unwrap();
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name.push(DnType::CommonName, "client-a");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let pem = leaf
            .signed_by(&key, &Issuer::from_params(&ca, &ca_key))
            .unwrap()
            .pem();
        let cfg = CertConfig {
            ca_pem,
            unique_identifier: "common_name".into(),
            ..Default::default()
        };
        let ran = Arc::new(AtomicBool::new(false));
        let flag = ran.clone();
        tokio::spawn(async move { flag.store(true, Ordering::SeqCst) });
        let checked = check_cert_blocking(cfg, pem).await.unwrap();
        assert_eq!(checked.identity, "client-a");
        assert!(
            ran.load(Ordering::SeqCst),
            "the worker ran other tasks during the check"
        );
    }

    #[test]
    fn pem_text_forms() {
        let pem = "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n";
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        assert_eq!(pem_text(&b64, "k").unwrap(), pem);
        assert_eq!(pem_text(pem, "k").unwrap(), pem.trim());
        assert!(pem_text("bm90IHBlbQ==", "k").unwrap_err().contains("PEM"));
        assert!(pem_text("!!!", "k").unwrap_err().contains("base64"));
    }
}
