//! SSH certificate issuers: an issuer's policy and signing.
//!
//! The certificate is encoded here (PROTOCOL.certkeys) and signed with
//! aws-lc-rs; ssh-key parses the result back (a structural check) and
//! writes the OpenSSH line. ssh-key's `certificate::Builder` is not used:
//! in debug builds it verifies the signature it made, which needs
//! ssh-key's own crypto features (and its `rsa` feature for RSA CAs,
//! refused for RUSTSEC-2023-0071).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::str::FromStr;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P384_SHA384_ASN1, ECDSA_P521_SHA512_ASN1, EcdsaKeyPair,
    Ed25519KeyPair, ParsedPublicKey, RSA_PKCS1_SHA512, RsaKeyPair,
};
use serde::{Deserialize, Serialize};
use ssh_key::public::KeyData;
use ssh_key::{Algorithm, EcdsaCurve};

use crate::keys::{KeyAlg, KeyMaterial};
use crate::{KeyError, Result, denied, invalid};

/// User or host certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CertType {
    User,
    Host,
}

impl CertType {
    /// The certificate's type field (PROTOCOL.certkeys).
    fn code(self) -> u32 {
        match self {
            CertType::User => 1,
            CertType::Host => 2,
        }
    }
}

/// Longest certificate lifetime an issuer may allow: one year.
pub const MAX_TTL_SECS: u64 = 31_536_000;
/// Most names (allowed users, principals, extensions, critical options,
/// source addresses) in one list.
pub const MAX_NAMES: usize = 256;
/// Longest name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Longest key ID, in bytes.
pub const MAX_KEY_ID_LEN: usize = 1024;
/// Largest RSA subject key, in bits: OpenSSH refuses bigger moduli
/// (`SSH_RSA_MAXIMUM_MODULUS_SIZE`), so a certificate for one is useless.
pub const MAX_RSA_BITS: usize = 16384;
/// The characters OpenSSH (8.5 and later) reads as patterns in the
/// principals of a host certificate (`match_pattern`): a principal `*`
/// would be valid for every host that trusts the CA.
const HOST_PATTERN_CHARS: [char; 3] = ['*', '?', '!'];
/// Longest force-command, in bytes.
const MAX_COMMAND_LEN: usize = 4096;
/// Seconds a certificate is valid before it is issued (clock skew).
pub const CLOCK_SKEW_SECS: u64 = 30;

/// ssh-keygen's default extensions of a user certificate.
pub const DEFAULT_USER_EXTENSIONS: [&str; 5] = [
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];

/// Extensions OpenSSH defines (all take an empty value).
const KNOWN_EXTENSIONS: [&str; 6] = [
    "no-touch-required",
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];

/// An SSH certificate issuer's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshIssuerPolicy {
    pub cert_type: CertType,
    /// Names a caller may ask for (`cert-username`): exact names, or `*`
    /// for any; empty: none (the certificates carry `principals` only).
    /// Host issuers: `*` means any concrete host name; no other entry,
    /// no principal and no requested name may hold `*`, `?` or `!`.
    pub allowed_users: Vec<String>,
    /// Principals put in every certificate besides the requested usernames.
    pub principals: Vec<String>,
    /// Longest lifetime, seconds.
    pub ttl_secs: u64,
    /// None: ssh-keygen's defaults for user certificates
    /// ([`DEFAULT_USER_EXTENSIONS`]); Some(map): exactly these.
    pub extensions: Option<BTreeMap<String, String>>,
    /// force-command, source-address, verify-required.
    pub critical_options: BTreeMap<String, String>,
}

/// A name for a list that OpenSSH reads: no whitespace, commas or control
/// characters, at most [`MAX_NAME_LEN`] bytes.
fn check_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(invalid(format!("{field}: a name is empty")));
    }
    if name.len() > MAX_NAME_LEN {
        let head: String = name.chars().take(32).collect();
        return Err(invalid(format!(
            "{field}: the name {head:?}… is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    if name
        .chars()
        .any(|c| c.is_whitespace() || c == ',' || c.is_control())
    {
        return Err(invalid(format!(
            "{field}: the name {name:?} must not contain whitespace, commas or control characters"
        )));
    }
    Ok(())
}

/// A host certificate's principal must be one concrete host name: OpenSSH
/// matches host principals as patterns (`*`, `?`, negation with `!`).
fn check_host_name(field: &str, name: &str) -> Result<()> {
    if name.contains(HOST_PATTERN_CHARS) {
        return Err(invalid(format!(
            "{field}: the host name {name:?} holds *, ? or !, which OpenSSH reads as a pattern in a host certificate (valid for every host it matches): name each host exactly"
        )));
    }
    Ok(())
}

/// Whether a key ID character is replaced by '?': control characters,
/// and the invisible format characters that reorder or hide text where
/// sshd logs the key ID (bidirectional embeddings, overrides and
/// isolates, zero-width characters, word joiners and invisible operators,
/// line and paragraph separators, the byte-order mark).
fn unsafe_in_key_id(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{FEFF}'
        )
}

/// The key ID as written: every [`unsafe_in_key_id`] character becomes
/// '?'. The server passes caller identities, which may hold them, so they
/// are replaced rather than refused.
fn sanitize_key_id(key_id: &str) -> String {
    key_id
        .chars()
        .map(|c| if unsafe_in_key_id(c) { '?' } else { c })
        .collect()
}

fn check_count(field: &str, n: usize) -> Result<()> {
    if n > MAX_NAMES {
        return Err(invalid(format!(
            "{field} has {n} entries: at most {MAX_NAMES} are allowed"
        )));
    }
    Ok(())
}

/// `source-address`: comma-separated addresses or CIDR networks.
fn check_source_address(value: &str) -> Result<()> {
    const FIELD: &str = "critical-options: source-address";
    if value.is_empty() {
        return Err(invalid(format!(
            "{FIELD} is empty: list the client addresses or networks, comma-separated (e.g. 10.0.0.0/8,192.0.2.7)"
        )));
    }
    let entries: Vec<&str> = value.split(',').collect();
    check_count(FIELD, entries.len())?;
    for entry in entries {
        if IpAddr::from_str(entry).is_ok() {
            continue;
        }
        match ipnet::IpNet::from_str(entry) {
            Ok(net) if net.trunc() == net => {}
            Ok(net) => {
                return Err(invalid(format!(
                    "{FIELD}: {entry:?} has host bits set: write the network as {}",
                    net.trunc()
                )));
            }
            Err(_) => {
                return Err(invalid(format!(
                    "{FIELD}: {entry:?} is not an IP address or CIDR network (comma-separated, no spaces, e.g. 10.0.0.0/8,192.0.2.7)"
                )));
            }
        }
    }
    Ok(())
}

/// "a, b, c" (at most ten names) for messages.
fn name_list(names: &[String]) -> String {
    let mut s = names
        .iter()
        .take(10)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 10 {
        s.push_str(&format!(", … {} more", names.len() - 10));
    }
    s
}

impl SshIssuerPolicy {
    /// Refuse bad settings, naming the field: ttl 1 s ..= 1 year; names
    /// without whitespace, commas or control characters, at most 256
    /// bytes and 256 per list; host issuers: no OpenSSH pattern
    /// characters (`*`, `?`, `!`) in principals or allowed-users (a lone
    /// `*` excepted); extensions and critical options only for user
    /// certificates; only the critical options OpenSSH knows.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_TTL_SECS).contains(&self.ttl_secs) {
            return Err(invalid(format!(
                "ttl must be 1 to {MAX_TTL_SECS} seconds (one year); {} given",
                self.ttl_secs
            )));
        }
        check_count("allowed-users", self.allowed_users.len())?;
        for u in &self.allowed_users {
            check_name("allowed-users", u)?;
        }
        check_count("principals", self.principals.len())?;
        for p in &self.principals {
            check_name("principals", p)?;
        }
        if self.cert_type == CertType::Host {
            // `*` alone means "any concrete name the caller asks for"; any
            // other pattern would only ever match itself here, and would
            // be written into certificates as a pattern.
            for u in self.allowed_users.iter().filter(|u| u.as_str() != "*") {
                check_host_name("allowed-users", u)?;
            }
            for p in &self.principals {
                check_host_name("principals", p)?;
            }
        }
        if self.allowed_users.is_empty() && self.principals.is_empty() {
            return Err(invalid(
                "allowed-users and principals are both empty: the issuer could certify no name; list the names callers may ask for in allowed-users (or * for any)",
            ));
        }
        let extensions = self.extensions.as_ref().filter(|e| !e.is_empty());
        if self.cert_type == CertType::Host {
            if extensions.is_some() {
                return Err(invalid(
                    "extensions apply to user certificates only: leave extensions empty for a host certificate issuer",
                ));
            }
            if !self.critical_options.is_empty() {
                return Err(invalid(
                    "critical-options apply to user certificates only: leave critical-options empty for a host certificate issuer",
                ));
            }
        }
        if let Some(ext) = extensions {
            check_count("extensions", ext.len())?;
            for (name, value) in ext {
                check_name("extensions", name)?;
                if KNOWN_EXTENSIONS.contains(&name.as_str()) {
                    if !value.is_empty() {
                        return Err(invalid(format!(
                            "extensions: {name} takes no value ({value:?} given)"
                        )));
                    }
                } else if !name.contains('@') {
                    return Err(invalid(format!(
                        "extensions: {name:?} is not an OpenSSH extension: use {} or a vendor extension named name@domain",
                        KNOWN_EXTENSIONS.join(", ")
                    )));
                }
                if value.len() > MAX_COMMAND_LEN || value.chars().any(char::is_control) {
                    return Err(invalid(format!(
                        "extensions: the value of {name} must be at most {MAX_COMMAND_LEN} bytes without control characters"
                    )));
                }
            }
        }
        for (name, value) in &self.critical_options {
            match name.as_str() {
                "force-command" => {
                    if value.trim().is_empty() {
                        return Err(invalid(
                            "critical-options: force-command is empty: give the command to run",
                        ));
                    }
                    if value.len() > MAX_COMMAND_LEN || value.chars().any(char::is_control) {
                        return Err(invalid(format!(
                            "critical-options: force-command must be one line of at most {MAX_COMMAND_LEN} bytes without control characters"
                        )));
                    }
                }
                "source-address" => check_source_address(value)?,
                "verify-required" => {
                    if !value.is_empty() {
                        return Err(invalid(format!(
                            "critical-options: verify-required takes no value ({value:?} given)"
                        )));
                    }
                }
                other => {
                    return Err(invalid(format!(
                        "critical-options: {other:?} is not supported: use force-command, source-address or verify-required"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The extensions a certificate of this issuer carries.
    fn certificate_extensions(&self) -> BTreeMap<String, String> {
        match (&self.extensions, self.cert_type) {
            (_, CertType::Host) => BTreeMap::new(),
            (Some(map), CertType::User) => map.clone(),
            (None, CertType::User) => DEFAULT_USER_EXTENSIONS
                .iter()
                .map(|e| ((*e).to_owned(), String::new()))
                .collect(),
        }
    }
}

/// What a caller asks an SSH issuer for.
pub struct SshRequest<'a> {
    /// Requested usernames (host names for host certificates), already
    /// split on commas by the server; may be empty.
    pub usernames: &'a [String],
    /// OpenSSH public key line (authorized_keys format, comment allowed).
    pub public_key: &'a str,
    /// Shorter lifetime asked for, seconds.
    pub ttl_secs: Option<u64>,
    /// Key ID written in the certificate (the caller's identity); at most
    /// 1024 bytes once sanitised. Control characters and invisible
    /// format characters (bidi controls, zero-width characters, line
    /// separators, the BOM) are written as '?' ([`SshIssued::key_id`] is
    /// what was written).
    pub key_id: &'a str,
    pub serial: u64,
    /// Unix seconds.
    pub now: u64,
}

/// A signed certificate and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshIssued {
    /// One line: `<alg>-cert-v01@openssh.com AAAA…`.
    pub certificate: String,
    pub serial: u64,
    /// The key ID as written in the certificate (sanitised, see
    /// [`SshRequest::key_id`]).
    pub key_id: String,
    pub principals: Vec<String>,
    pub valid_after: u64,
    pub valid_before: u64,
    pub cert_type: CertType,
}

// ---------------------------------------------------------------------------
// Wire encoding (RFC 4251 strings, PROTOCOL.certkeys).

fn wire_len(n: usize) -> Result<[u8; 4]> {
    u32::try_from(n)
        .map(u32::to_be_bytes)
        .map_err(|_| KeyError::Internal("an SSH certificate field is longer than 4 GiB".to_owned()))
}

fn put_string(out: &mut Vec<u8>, bytes: &[u8]) -> Result<()> {
    out.extend_from_slice(&wire_len(bytes.len())?);
    out.extend_from_slice(bytes);
    Ok(())
}

/// An mpint of a positive big-endian integer.
fn put_mpint(out: &mut Vec<u8>, be: &[u8]) -> Result<()> {
    let first = be.iter().position(|b| *b != 0).unwrap_or(be.len());
    let digits = &be[first..];
    let pad = digits.first().is_some_and(|b| b & 0x80 != 0);
    out.extend_from_slice(&wire_len(digits.len() + usize::from(pad))?);
    if pad {
        out.push(0);
    }
    out.extend_from_slice(digits);
    Ok(())
}

/// Critical options / extensions: names in order, each value a string
/// inside the data string (empty data for an empty value).
fn options_blob(map: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for (name, value) in map {
        put_string(&mut out, name.as_bytes())?;
        if value.is_empty() {
            put_string(&mut out, &[])?;
        } else {
            let mut data = Vec::with_capacity(value.len() + 4);
            put_string(&mut data, value.as_bytes())?;
            put_string(&mut out, &data)?;
        }
    }
    Ok(out)
}

fn ssh_internal(e: ssh_key::Error) -> KeyError {
    KeyError::Internal(format!("encoding the SSH certificate: {e}"))
}

// ---------------------------------------------------------------------------
// The CA's signer.

/// A CA key loaded for SSH signatures.
enum CaSigner {
    Ed25519(Ed25519KeyPair),
    Ecdsa(EcdsaKeyPair, &'static str),
    Rsa(RsaKeyPair),
}

impl CaSigner {
    fn new(key: &KeyMaterial) -> Result<CaSigner> {
        Ok(match key.alg() {
            KeyAlg::Ed25519 => CaSigner::Ed25519(key.ed25519_key_pair()?),
            KeyAlg::Ec256 => CaSigner::Ecdsa(key.ecdsa_key_pair(true)?, "ecdsa-sha2-nistp256"),
            KeyAlg::Ec384 => CaSigner::Ecdsa(key.ecdsa_key_pair(true)?, "ecdsa-sha2-nistp384"),
            KeyAlg::Rsa2048 | KeyAlg::Rsa3072 | KeyAlg::Rsa4096 => {
                CaSigner::Rsa(key.rsa_key_pair()?)
            }
            other => {
                return Err(invalid(format!(
                    "the issuer's signer key is a {other} key: an SSH certificate issuer needs an Ed25519, EC256, EC384 or RSA key"
                )));
            }
        })
    }

    /// The SSH signature blob: string(algorithm) string(signature).
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let failed = |_| KeyError::Internal("signing the SSH certificate failed".to_owned());
        let mut blob = Vec::new();
        match self {
            CaSigner::Ed25519(kp) => {
                put_string(&mut blob, b"ssh-ed25519")?;
                put_string(&mut blob, kp.sign(msg).as_ref())?;
            }
            CaSigner::Ecdsa(kp, name) => {
                let sig = kp.sign(&SystemRandom::new(), msg).map_err(failed)?;
                let (r, s) = sig.as_ref().split_at(sig.as_ref().len() / 2);
                let mut rs = Vec::with_capacity(sig.as_ref().len() + 10);
                put_mpint(&mut rs, r)?;
                put_mpint(&mut rs, s)?;
                put_string(&mut blob, name.as_bytes())?;
                put_string(&mut blob, &rs)?;
            }
            CaSigner::Rsa(kp) => {
                let mut sig = vec![0u8; kp.public_modulus_len()];
                kp.sign(&RSA_PKCS1_SHA512, &SystemRandom::new(), msg, &mut sig)
                    .map_err(failed)?;
                put_string(&mut blob, b"rsa-sha2-512")?;
                put_string(&mut blob, &sig)?;
            }
        }
        Ok(blob)
    }
}

// ---------------------------------------------------------------------------
// The subject's public key.

fn rsa_bits(n: &ssh_key::Mpint) -> usize {
    let bytes = n.as_positive_bytes().unwrap_or_default();
    match bytes.first() {
        Some(b) => (bytes.len() - 1) * 8 + (8 - b.leading_zeros() as usize),
        None => 0,
    }
}

/// Parse and vet the public key to certify.
fn subject_key(line: &str) -> Result<KeyData> {
    const FIELD: &str = "public-key-data";
    let line = line.trim();
    if line.is_empty() {
        return Err(invalid(format!(
            "{FIELD} is empty: pass the OpenSSH public key to certify (e.g. the contents of ~/.ssh/id_ed25519.pub)"
        )));
    }
    if line.contains('\n') {
        return Err(invalid(format!(
            "{FIELD} holds several lines: pass one OpenSSH public key"
        )));
    }
    let first = line.split_ascii_whitespace().next().unwrap_or_default();
    if first.ends_with("-cert-v01@openssh.com") {
        return Err(invalid(format!(
            "{FIELD} is a certificate, not a public key: pass the public key (e.g. ~/.ssh/id_ed25519.pub)"
        )));
    }
    let key = ssh_key::PublicKey::from_openssh(line).map_err(|e| {
        invalid(format!(
            "{FIELD} is not an OpenSSH public key ({e}): pass one line such as the contents of ~/.ssh/id_ed25519.pub"
        ))
    })?;
    let data = key.key_data().clone();
    let bad_point = || {
        invalid(format!(
            "{FIELD}: the ECDSA public key is not a point on its curve"
        ))
    };
    match &data {
        KeyData::Ed25519(_) | KeyData::SkEd25519(_) => {}
        KeyData::Ecdsa(k) => {
            let alg = match k.curve() {
                EcdsaCurve::NistP256 => &ECDSA_P256_SHA256_ASN1,
                EcdsaCurve::NistP384 => &ECDSA_P384_SHA384_ASN1,
                EcdsaCurve::NistP521 => &ECDSA_P521_SHA512_ASN1,
            };
            ParsedPublicKey::new(alg, k.as_sec1_bytes()).map_err(|_| bad_point())?;
        }
        KeyData::SkEcdsaSha2NistP256(k) => {
            ParsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, k.ec_point().as_bytes())
                .map_err(|_| bad_point())?;
        }
        KeyData::Rsa(k) => {
            let bits = rsa_bits(&k.n);
            if bits < 2048 {
                return Err(invalid(format!(
                    "{FIELD} is a {bits}-bit RSA key: RSA keys need at least 2048 bits; make a new key (ssh-keygen -t ed25519, or -t rsa -b 3072)"
                )));
            }
            if bits > MAX_RSA_BITS {
                return Err(invalid(format!(
                    "{FIELD} is a {bits}-bit RSA key: OpenSSH accepts RSA keys of at most {MAX_RSA_BITS} bits; make a smaller key (ssh-keygen -t ed25519, or -t rsa -b 3072)"
                )));
            }
            let e = k.e.as_positive_bytes().unwrap_or_default();
            if e.last().is_none_or(|b| b & 1 == 0) || e == [1] {
                return Err(invalid(format!(
                    "{FIELD}: the RSA public exponent is not valid"
                )));
            }
        }
        KeyData::Dsa(_) => {
            return Err(invalid(format!(
                "{FIELD} is a DSA key: DSA keys are refused (1024-bit only, removed from OpenSSH); make an ed25519 key (ssh-keygen -t ed25519)"
            )));
        }
        other => {
            return Err(invalid(format!(
                "{FIELD}: {} keys are not supported: use ed25519, ecdsa-sha2-nistp256/384/521, sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com or RSA of 2048 bits or more",
                other.algorithm()
            )));
        }
    }
    Ok(data)
}

/// The certificate algorithm name of a subject key
/// (`ssh-ed25519-cert-v01@openssh.com`, …).
fn certificate_type_name(alg: &Algorithm) -> String {
    alg.to_certificate_type()
}

// ---------------------------------------------------------------------------
// Signing.

/// Check `req` against `policy` and sign a certificate with `signer` (an
/// Ed25519, EC256, EC384 or RSA key; RSA signs with rsa-sha2-512).
pub fn sign(
    policy: &SshIssuerPolicy,
    signer: &KeyMaterial,
    req: &SshRequest<'_>,
) -> Result<SshIssued> {
    policy.validate()?;
    let ca = CaSigner::new(signer)?;
    let ca_key = signer.ssh_public_key()?;

    // Key ID.
    if req.key_id.is_empty() {
        return Err(invalid(
            "the certificate key ID is empty: it records who asked for the certificate",
        ));
    }
    // Never refused for its characters: sshd logs the key ID, so what
    // could spoof a log line (newlines, bidi overrides, …) becomes '?'.
    let key_id = sanitize_key_id(req.key_id);
    if key_id.len() > MAX_KEY_ID_LEN {
        return Err(invalid(format!(
            "the certificate key ID is longer than {MAX_KEY_ID_LEN} bytes"
        )));
    }

    // The key to certify.
    let subject = subject_key(req.public_key)?;
    if subject == ca_key {
        return Err(invalid(
            "public-key-data is the issuer's own CA key: certify a user's or host's key, never the CA's",
        ));
    }

    // Names.
    check_count("cert-username", req.usernames.len())?;
    let any = policy.allowed_users.iter().any(|u| u == "*");
    for name in req.usernames {
        check_name("cert-username", name)?;
        if policy.cert_type == CertType::Host {
            check_host_name("cert-username", name)?;
        }
        if any || policy.allowed_users.iter().any(|u| u == name) {
            continue;
        }
        return Err(if policy.allowed_users.is_empty() {
            denied(format!(
                "cert-username {name:?} is not allowed: the issuer's allowed-users is empty, so its certificates carry only its principals ({})",
                name_list(&policy.principals)
            ))
        } else {
            denied(format!(
                "cert-username {name:?} is not among the issuer's allowed-users ({})",
                name_list(&policy.allowed_users)
            ))
        });
    }
    let mut principals: Vec<String> = Vec::new();
    for p in req.usernames.iter().chain(&policy.principals) {
        if !principals.contains(p) {
            principals.push(p.clone());
        }
    }
    if principals.is_empty() {
        return Err(invalid(if any {
            "cert-username is required: ask for the user name(s) to certify".to_owned()
        } else {
            format!(
                "cert-username is required: ask for one of the allowed users ({})",
                name_list(&policy.allowed_users)
            )
        }));
    }
    check_count("the certificate's principals", principals.len())?;

    // Lifetime.
    let ttl = match req.ttl_secs {
        None => policy.ttl_secs,
        Some(0) => return Err(invalid("ttl must be at least 1 second")),
        Some(t) if t > policy.ttl_secs => {
            return Err(denied(format!(
                "ttl {t} s is longer than the issuer's maximum of {} s: ask for {} s or less",
                policy.ttl_secs, policy.ttl_secs
            )));
        }
        Some(t) => t,
    };
    let valid_after = req.now.saturating_sub(CLOCK_SKEW_SECS);
    let valid_before = req
        .now
        .checked_add(ttl)
        .filter(|t| i64::try_from(*t).is_ok())
        .ok_or_else(|| {
            invalid("the certificate would end after the year 292277026596: check the clock")
        })?;

    // The certificate (PROTOCOL.certkeys).
    let mut nonce = [0u8; 32];
    getrandom::fill(&mut nonce).map_err(|e| KeyError::Internal(format!("no random bytes: {e}")))?;
    let subject_blob = ssh_key::PublicKey::new(subject.clone(), "")
        .to_bytes()
        .map_err(ssh_internal)?;
    // The key blob without its leading algorithm string.
    let alg_len = subject_blob
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| KeyError::Internal("empty SSH key blob".to_owned()))?;
    let subject_fields = subject_blob
        .get(4 + alg_len..)
        .ok_or_else(|| KeyError::Internal("short SSH key blob".to_owned()))?;
    let ca_blob = ssh_key::PublicKey::new(ca_key, "")
        .to_bytes()
        .map_err(ssh_internal)?;
    let mut principal_blob = Vec::new();
    for p in &principals {
        put_string(&mut principal_blob, p.as_bytes())?;
    }
    let critical_options = match policy.cert_type {
        CertType::User => policy.critical_options.clone(),
        CertType::Host => BTreeMap::new(),
    };

    let mut cert = Vec::with_capacity(1024);
    put_string(
        &mut cert,
        certificate_type_name(&subject.algorithm()).as_bytes(),
    )?;
    put_string(&mut cert, &nonce)?;
    cert.extend_from_slice(subject_fields);
    cert.extend_from_slice(&req.serial.to_be_bytes());
    cert.extend_from_slice(&policy.cert_type.code().to_be_bytes());
    put_string(&mut cert, key_id.as_bytes())?;
    put_string(&mut cert, &principal_blob)?;
    cert.extend_from_slice(&valid_after.to_be_bytes());
    cert.extend_from_slice(&valid_before.to_be_bytes());
    put_string(&mut cert, &options_blob(&critical_options)?)?;
    put_string(&mut cert, &options_blob(&policy.certificate_extensions())?)?;
    put_string(&mut cert, &[])?; // reserved
    put_string(&mut cert, &ca_blob)?;
    let signature = ca.sign(&cert)?;
    put_string(&mut cert, &signature)?;

    // Parse it back: the structure must be what OpenSSH reads.
    let parsed = ssh_key::Certificate::from_bytes(&cert).map_err(ssh_internal)?;
    let certificate = parsed.to_openssh().map_err(ssh_internal)?;
    Ok(SshIssued {
        certificate,
        serial: req.serial,
        key_id,
        principals,
        valid_after,
        valid_before,
        cert_type: policy.cert_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, ED25519, KeyPair as _,
        RSA_PKCS1_2048_8192_SHA512, RsaPublicKeyComponents,
    };
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as B64;

    const NOW: u64 = 1_900_000_000;

    fn policy() -> SshIssuerPolicy {
        SshIssuerPolicy {
            cert_type: CertType::User,
            allowed_users: vec!["ubuntu".into(), "deploy".into()],
            principals: vec!["ops".into()],
            ttl_secs: 3600,
            extensions: None,
            critical_options: BTreeMap::new(),
        }
    }

    fn user_key(alg: KeyAlg) -> String {
        KeyMaterial::generate(alg)
            .unwrap()
            .public_key()
            .unwrap()
            .ssh
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    fn request<'a>(usernames: &'a [String], public_key: &'a str) -> SshRequest<'a> {
        SshRequest {
            usernames,
            public_key,
            ttl_secs: None,
            key_id: "alice@coffer",
            serial: 77,
            now: NOW,
        }
    }

    fn invalid_msg(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(KeyError::Invalid(m)) => m,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn denied_msg(r: Result<impl std::fmt::Debug>) -> String {
        match r {
            Err(KeyError::Denied(m)) => m,
            other => panic!("expected Denied, got {other:?}"),
        }
    }

    /// Line of an SSH public key built from wire fields.
    fn line(alg: &str, fields: &[&[u8]]) -> String {
        let mut blob = Vec::new();
        put_string(&mut blob, alg.as_bytes()).unwrap();
        for f in fields {
            put_string(&mut blob, f).unwrap();
        }
        format!("{alg} {}", B64.encode(blob))
    }

    /// Check the CA signature of a certificate line with aws-lc-rs.
    fn verify(cert_line: &str, ca: &KeyMaterial) -> ssh_key::Certificate {
        let cert = ssh_key::Certificate::from_openssh(cert_line).unwrap();
        assert_eq!(cert.signature_key(), &ca.ssh_public_key().unwrap());
        let bytes = B64.decode(cert_line.split(' ').nth(1).unwrap()).unwrap();
        let sig = cert.signature();
        let alg = sig.algorithm();
        let sig_blob_len = 4 + alg.as_str().len() + 4 + sig.as_bytes().len();
        let tbs = &bytes[..bytes.len() - 4 - sig_blob_len];
        match ca.alg() {
            KeyAlg::Ed25519 => {
                assert_eq!(alg.as_str(), "ssh-ed25519");
                let pk = ca.ed25519_key_pair().unwrap();
                ParsedPublicKey::new(&ED25519, pk.public_key().as_ref())
                    .unwrap()
                    .verify_sig(tbs, sig.as_bytes())
                    .unwrap();
            }
            KeyAlg::Ec256 | KeyAlg::Ec384 => {
                let (valg, width, name) = if ca.alg() == KeyAlg::Ec256 {
                    (&ECDSA_P256_SHA256_FIXED, 32, "ecdsa-sha2-nistp256")
                } else {
                    (&ECDSA_P384_SHA384_FIXED, 48, "ecdsa-sha2-nistp384")
                };
                assert_eq!(alg.as_str(), name);
                let mut r = sig.as_bytes();
                let mut fixed = Vec::new();
                for _ in 0..2 {
                    let n = u32::from_be_bytes(r[..4].try_into().unwrap()) as usize;
                    let v = &r[4..4 + n];
                    let v = if v.len() > width {
                        &v[v.len() - width..]
                    } else {
                        v
                    };
                    fixed.extend(std::iter::repeat_n(0u8, width - v.len()));
                    fixed.extend_from_slice(v);
                    r = &r[4 + n..];
                }
                assert!(r.is_empty());
                let pk = ca.ecdsa_key_pair(true).unwrap();
                ParsedPublicKey::new(valg, pk.public_key().as_ref())
                    .unwrap()
                    .verify_sig(tbs, &fixed)
                    .unwrap();
            }
            _ => {
                assert_eq!(alg.as_str(), "rsa-sha2-512");
                let kd = ca.ssh_public_key().unwrap();
                let rsa = kd.rsa().unwrap();
                RsaPublicKeyComponents {
                    n: rsa.n.as_positive_bytes().unwrap(),
                    e: rsa.e.as_positive_bytes().unwrap(),
                }
                .verify(&RSA_PKCS1_2048_8192_SHA512, tbs, sig.as_bytes())
                .unwrap();
            }
        }
        cert
    }

    #[test]
    fn signs_user_certificates_with_every_ca_algorithm() {
        for ca_alg in [
            KeyAlg::Ed25519,
            KeyAlg::Ec256,
            KeyAlg::Ec384,
            KeyAlg::Rsa2048,
            KeyAlg::Rsa3072,
        ] {
            let ca = KeyMaterial::generate(ca_alg).unwrap();
            for user_alg in [
                KeyAlg::Ed25519,
                KeyAlg::Ec256,
                KeyAlg::Ec384,
                KeyAlg::Rsa3072,
            ] {
                let pk = user_key(user_alg);
                let users = names(&["deploy", "ubuntu", "deploy"]);
                let issued = sign(&policy(), &ca, &request(&users, &pk)).unwrap();
                assert_eq!(issued.principals, names(&["deploy", "ubuntu", "ops"]));
                assert_eq!(issued.serial, 77);
                assert_eq!(issued.key_id, "alice@coffer");
                assert_eq!(issued.valid_after, NOW - 30);
                assert_eq!(issued.valid_before, NOW + 3600);
                assert_eq!(issued.cert_type, CertType::User);
                let prefix = format!(
                    "{}-cert-v01@openssh.com AAAA",
                    pk.split(' ').next().unwrap()
                );
                assert!(
                    issued.certificate.starts_with(&prefix),
                    "{}",
                    issued.certificate
                );
                assert!(!issued.certificate.contains('\n'));
                let cert = verify(&issued.certificate, &ca);
                assert_eq!(cert.serial(), 77);
                assert_eq!(cert.key_id(), "alice@coffer");
                assert_eq!(cert.cert_type(), ssh_key::certificate::CertType::User);
                assert_eq!(cert.valid_principals(), issued.principals.as_slice());
                assert_eq!(cert.valid_after(), NOW - 30);
                assert_eq!(cert.valid_before(), NOW + 3600);
                assert_eq!(cert.nonce().len(), 32);
                assert!(cert.critical_options().is_empty());
                let ext: Vec<&str> = cert.extensions().keys().map(String::as_str).collect();
                let mut want = DEFAULT_USER_EXTENSIONS.to_vec();
                want.sort_unstable();
                assert_eq!(ext, want);
                assert!(cert.extensions().values().all(String::is_empty));
                assert_eq!(
                    cert.public_key(),
                    ssh_key::PublicKey::from_openssh(&pk).unwrap().key_data()
                );
            }
        }
    }

    #[test]
    fn nonces_differ() {
        let ca = KeyMaterial::generate(KeyAlg::Ed25519).unwrap();
        let pk = user_key(KeyAlg::Ed25519);
        let users = names(&["ubuntu"]);
        let a = sign(&policy(), &ca, &request(&users, &pk)).unwrap();
        let b = sign(&policy(), &ca, &request(&users, &pk)).unwrap();
        assert_ne!(a.certificate, b.certificate);
    }

    #[test]
    fn host_certificates() {
        let ca = KeyMaterial::generate(KeyAlg::Ec256).unwrap();
        let p = SshIssuerPolicy {
            cert_type: CertType::Host,
            allowed_users: vec!["*".into()],
            principals: vec![],
            ttl_secs: 86400,
            extensions: Some(BTreeMap::new()),
            critical_options: BTreeMap::new(),
        };
        let hosts = names(&["db1.example.com", "10.0.0.5"]);
        let pk = user_key(KeyAlg::Ed25519);
        let issued = sign(
            &p,
            &ca,
            &SshRequest {
                ttl_secs: Some(600),
                ..request(&hosts, &pk)
            },
        )
        .unwrap();
        assert_eq!(issued.cert_type, CertType::Host);
        assert_eq!(issued.principals, hosts);
        assert_eq!(issued.valid_before, NOW + 600);
        let cert = verify(&issued.certificate, &ca);
        assert_eq!(cert.cert_type(), ssh_key::certificate::CertType::Host);
        assert!(cert.extensions().is_empty());
        assert!(cert.critical_options().is_empty());
        // extensions: None on a host issuer also means none.
        let p = SshIssuerPolicy {
            extensions: None,
            ..p
        };
        let issued = sign(&p, &ca, &request(&hosts, &pk)).unwrap();
        assert!(verify(&issued.certificate, &ca).extensions().is_empty());
    }

    #[test]
    fn options_and_extensions_are_written() {
        let ca = KeyMaterial::generate(KeyAlg::Ed25519).unwrap();
        let mut p = policy();
        p.extensions = Some(
            [("permit-pty", ""), ("login@example.com", "alice")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        );
        p.critical_options = [
            ("force-command", "/usr/bin/backup --now"),
            ("source-address", "10.0.0.0/8,192.0.2.7,2001:db8::/32"),
            ("verify-required", ""),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let pk = user_key(KeyAlg::Ed25519);
        let users = names(&["ubuntu"]);
        let issued = sign(&p, &ca, &request(&users, &pk)).unwrap();
        let cert = verify(&issued.certificate, &ca);
        assert_eq!(&cert.critical_options().0, &p.critical_options);
        assert_eq!(Some(&cert.extensions().0), p.extensions.as_ref());
        // Some(empty): no extensions at all.
        p.extensions = Some(BTreeMap::new());
        let issued = sign(&p, &ca, &request(&users, &pk)).unwrap();
        assert!(verify(&issued.certificate, &ca).extensions().is_empty());
    }

    #[test]
    fn wildcard_allows_any_name_and_principals_alone_suffice() {
        let ca = KeyMaterial::generate(KeyAlg::Ed25519).unwrap();
        let pk = user_key(KeyAlg::Ed25519);
        let mut p = policy();
        p.allowed_users = vec!["*".into()];
        let users = names(&["anyone"]);
        let issued = sign(&p, &ca, &request(&users, &pk)).unwrap();
        assert_eq!(issued.principals, names(&["anyone", "ops"]));
        // No names asked for: the issuer's principals.
        let issued = sign(&p, &ca, &request(&[], &pk)).unwrap();
        assert_eq!(issued.principals, names(&["ops"]));
        p.allowed_users.clear();
        let issued = sign(&p, &ca, &request(&[], &pk)).unwrap();
        assert_eq!(issued.principals, names(&["ops"]));
    }

    #[test]
    fn accepts_every_supported_subject_key_type() {
        let ca = KeyMaterial::generate(KeyAlg::Ed25519).unwrap();
        let users = names(&["ubuntu"]);
        let p521 =
            EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P521_SHA512_ASN1_SIGNING).unwrap();
        let p256 =
            EcdsaKeyPair::generate(&aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING).unwrap();
        let ed = Ed25519KeyPair::generate().unwrap();
        for (pk, cert_alg) in [
            (
                line(
                    "ecdsa-sha2-nistp521",
                    &[b"nistp521", p521.public_key().as_ref()],
                ),
                "ecdsa-sha2-nistp521-cert-v01@openssh.com",
            ),
            (
                line(
                    "sk-ssh-ed25519@openssh.com",
                    &[ed.public_key().as_ref(), b"ssh:"],
                ),
                "sk-ssh-ed25519-cert-v01@openssh.com",
            ),
            (
                line(
                    "sk-ecdsa-sha2-nistp256@openssh.com",
                    &[b"nistp256", p256.public_key().as_ref(), b"ssh:"],
                ),
                "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
            ),
            (
                format!("{}  alice@laptop  \n", user_key(KeyAlg::Rsa2048)),
                "ssh-rsa-cert-v01@openssh.com",
            ),
        ] {
            let issued = sign(&policy(), &ca, &request(&users, &pk)).unwrap();
            assert!(
                issued.certificate.starts_with(cert_alg),
                "{}",
                issued.certificate
            );
            verify(&issued.certificate, &ca);
        }
    }

    #[test]
    fn refuses_unacceptable_subject_keys() {
        let ca = KeyMaterial::generate(KeyAlg::Ec256).unwrap();
        let users = names(&["ubuntu"]);
        let mpint = |b: &[u8]| -> Vec<u8> {
            let mut v = Vec::new();
            put_mpint(&mut v, b).unwrap();
            v[4..].to_vec()
        };
        let mut n1024 = vec![0xC5u8; 128];
        n1024[127] |= 1;
        let rsa1024 = line("ssh-rsa", &[&mpint(&[1, 0, 1]), &mpint(&n1024)]);
        let dsa = line(
            "ssh-dss",
            &[
                &mpint(&[0xC5; 128]),
                &mpint(&[0x95; 20]),
                &mpint(&[2; 128]),
                &mpint(&[3; 128]),
            ],
        );
        let mut bad_point = vec![4u8];
        bad_point.extend_from_slice(&[1u8; 64]);
        let off_curve = line("ecdsa-sha2-nistp256", &[b"nistp256", &bad_point]);
        let issued = sign(&policy(), &ca, &request(&users, &user_key(KeyAlg::Ed25519))).unwrap();
        let mut n2048 = vec![0xC5u8; 256];
        n2048[255] |= 1;
        let even_e = line("ssh-rsa", &[&mpint(&[1, 0, 0]), &mpint(&n2048)]);
        let ca_line = ca.public_key().unwrap().ssh;
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "public-key-data is empty"),
            ("   \n".into(), "public-key-data is empty"),
            (
                "hello".into(),
                "public-key-data is not an OpenSSH public key",
            ),
            (
                "ssh-ed25519 !!!!".into(),
                "public-key-data is not an OpenSSH public key",
            ),
            (format!("{ca_line}\n{ca_line}"), "holds several lines"),
            (
                rsa1024,
                "public-key-data is a 1024-bit RSA key: RSA keys need at least 2048 bits",
            ),
            (even_e, "RSA public exponent is not valid"),
            (dsa, "public-key-data is a DSA key: DSA keys are refused"),
            (off_curve, "not a point on its curve"),
            (
                issued.certificate,
                "public-key-data is a certificate, not a public key",
            ),
            (ca_line, "public-key-data is the issuer's own CA key"),
        ];
        for (pk, want) in cases {
            let m = invalid_msg(sign(&policy(), &ca, &request(&users, &pk)));
            assert!(m.contains(want), "{want}: {m}");
        }
    }

    #[test]
    fn refuses_names_outside_the_policy() {
        let ca = KeyMaterial::generate(KeyAlg::Ed25519).unwrap();
        let pk = user_key(KeyAlg::Ed25519);
        let users = names(&["ubuntu", "root"]);
        let m = denied_msg(sign(&policy(), &ca, &request(&users, &pk)));
        assert_eq!(
            m,
            "cert-username \"root\" is not among the issuer's allowed-users (ubuntu, deploy)"
        );
        let mut p = policy();
        p.allowed_users.clear();
        let users = names(&["ubuntu"]);
        let m = denied_msg(sign(&p, &ca, &request(&users, &pk)));
        assert_eq!(
            m,
            "cert-username \"ubuntu\" is not allowed: the issuer's allowed-users is empty, so its certificates carry only its principals (ops)"
        );
        // Nothing asked for and no principals of the issuer's own.
        let mut p = policy();
        p.principals.clear();
        let m = invalid_msg(sign(&p, &ca, &request(&[], &pk)));
        assert_eq!(
            m,
            "cert-username is required: ask for one of the allowed users (ubuntu, deploy)"
        );
        p.allowed_users = vec!["*".into()];
        let m = invalid_msg(sign(&p, &ca, &request(&[], &pk)));
        assert!(m.starts_with("cert-username is required"), "{m}");
        // Malformed names.
        for bad in ["", "a b", "a,b", "a\tb", "a\u{7}"] {
            let users = vec![bad.to_owned()];
            let m = invalid_msg(sign(&p, &ca, &request(&users, &pk)));
            assert!(m.starts_with("cert-username: "), "{m}");
        }
        let users = vec!["x".repeat(257)];
        let m = invalid_msg(sign(&p, &ca, &request(&users, &pk)));
        assert!(m.contains("longer than 256 bytes"), "{m}");
        let users: Vec<String> = (0..257).map(|i| format!("u{i}")).collect();
        let m = invalid_msg(sign(&p, &ca, &request(&users, &pk)));
        assert!(m.starts_with("cert-username has 257 entries"), "{m}");
        // Requested names plus the issuer's principals over the limit.
        p.principals = (0..200).map(|i| format!("p{i}")).collect();
        let users: Vec<String> = (0..100).map(|i| format!("u{i}")).collect();
        let m = invalid_msg(sign(&p, &ca, &request(&users, &pk)));
        assert!(
            m.starts_with("the certificate's principals has 300 entries"),
            "{m}"
        );
    }

    #[test]
    fn refuses_bad_lifetimes_and_key_ids() {
        let ca = KeyMaterial::generate(KeyAlg::Ed25519).unwrap();
        let pk = user_key(KeyAlg::Ed25519);
        let users = names(&["ubuntu"]);
        let m = denied_msg(sign(
            &policy(),
            &ca,
            &SshRequest {
                ttl_secs: Some(3601),
                ..request(&users, &pk)
            },
        ));
        assert_eq!(
            m,
            "ttl 3601 s is longer than the issuer's maximum of 3600 s: ask for 3600 s or less"
        );
        let m = invalid_msg(sign(
            &policy(),
            &ca,
            &SshRequest {
                ttl_secs: Some(0),
                ..request(&users, &pk)
            },
        ));
        assert!(m.starts_with("ttl must be at least 1 second"), "{m}");
        let ok = sign(
            &policy(),
            &ca,
            &SshRequest {
                ttl_secs: Some(3600),
                ..request(&users, &pk)
            },
        )
        .unwrap();
        assert_eq!(ok.valid_before, NOW + 3600);
        // Early clocks do not wrap.
        let ok = sign(
            &policy(),
            &ca,
            &SshRequest {
                now: 10,
                ..request(&users, &pk)
            },
        )
        .unwrap();
        assert_eq!(ok.valid_after, 0);
        let m = invalid_msg(sign(
            &policy(),
            &ca,
            &SshRequest {
                now: u64::MAX - 10,
                ..request(&users, &pk)
            },
        ));
        assert!(m.contains("check the clock"), "{m}");
        let long = "k".repeat(1025);
        for (id, want) in [
            ("", "key ID is empty"),
            (long.as_str(), "longer than 1024 bytes"),
        ] {
            let m = invalid_msg(sign(
                &policy(),
                &ca,
                &SshRequest {
                    key_id: id,
                    ..request(&users, &pk)
                },
            ));
            assert!(m.contains(want), "{want}: {m}");
        }
        sign(
            &policy(),
            &ca,
            &SshRequest {
                key_id: &"k".repeat(1024),
                ..request(&users, &pk)
            },
        )
        .unwrap();
    }

    #[test]
    fn key_id_control_and_format_characters_become_question_marks() {
        let ca = KeyMaterial::generate(KeyAlg::Ed25519).unwrap();
        let pk = user_key(KeyAlg::Ed25519);
        let users = names(&["ubuntu"]);
        for (asked, written) in [
            ("alice\nroot", "alice?root"),
            ("a\r\tb\u{7f}\u{85}c", "a??b??c"),
            // Bidi embeddings, overrides and isolates.
            ("x\u{202A}\u{202B}\u{202C}\u{202D}\u{202E}y", "x?????y"),
            ("x\u{2066}\u{2067}\u{2068}\u{2069}\u{061C}y", "x?????y"),
            // Zero-width characters, LRM/RLM, word joiner and invisible
            // operators, line/paragraph separators, BOM.
            ("x\u{200B}\u{200C}\u{200D}\u{200E}\u{200F}y", "x?????y"),
            ("x\u{2060}\u{2061}\u{2062}\u{2063}\u{2064}y", "x?????y"),
            ("x\u{2028}\u{2029}\u{FEFF}y", "x???y"),
            // Ordinary non-ASCII text is kept.
            ("jos\u{e9}@\u{4f8b}\u{3048}", "jos\u{e9}@\u{4f8b}\u{3048}"),
        ] {
            let issued = sign(
                &policy(),
                &ca,
                &SshRequest {
                    key_id: asked,
                    ..request(&users, &pk)
                },
            )
            .unwrap();
            assert_eq!(issued.key_id, written, "{asked:?}");
            assert_eq!(verify(&issued.certificate, &ca).key_id(), written);
        }
        // The limit applies to what is written: U+202E is 3 bytes, '?' one.
        let id = "\u{202E}".repeat(1000);
        let issued = sign(
            &policy(),
            &ca,
            &SshRequest {
                key_id: &id,
                ..request(&users, &pk)
            },
        )
        .unwrap();
        assert_eq!(issued.key_id, "?".repeat(1000));
    }

    #[test]
    fn host_certificates_refuse_pattern_principals() {
        let ca = KeyMaterial::generate(KeyAlg::Ed25519).unwrap();
        let pk = user_key(KeyAlg::Ed25519);
        let host = SshIssuerPolicy {
            cert_type: CertType::Host,
            allowed_users: vec!["*".into()],
            principals: vec![],
            ttl_secs: 3600,
            extensions: None,
            critical_options: BTreeMap::new(),
        };
        // `*` in allowed-users: any concrete name, never a pattern.
        host.validate().unwrap();
        for bad in ["*", "*.example.com", "web?", "!db1", "db[12]*"] {
            let hosts = names(&["db1.example.com", bad]);
            let m = invalid_msg(sign(&host, &ca, &request(&hosts, &pk)));
            assert!(
                m.starts_with("cert-username: the host name") && m.contains("pattern"),
                "{bad}: {m}"
            );
        }
        let hosts = names(&["db1.example.com"]);
        sign(&host, &ca, &request(&hosts, &pk)).unwrap();
        // In a host issuer's settings.
        for (p, field) in [
            (
                SshIssuerPolicy {
                    principals: names(&["*.example.com"]),
                    ..host.clone()
                },
                "principals",
            ),
            (
                SshIssuerPolicy {
                    allowed_users: names(&["db?"]),
                    ..host.clone()
                },
                "allowed-users",
            ),
            (
                SshIssuerPolicy {
                    allowed_users: names(&["db1", "!db2"]),
                    ..host.clone()
                },
                "allowed-users",
            ),
        ] {
            let m = invalid_msg(p.validate());
            assert!(m.starts_with(&format!("{field}: the host name")), "{m}");
            assert!(matches!(
                sign(&p, &ca, &request(&hosts, &pk)),
                Err(KeyError::Invalid(_))
            ));
        }
        // User certificates: sshd compares user principals literally.
        let mut user = policy();
        user.allowed_users = vec!["*".into()];
        user.principals = names(&["ops*"]);
        user.validate().unwrap();
        let users = names(&["web?"]);
        let issued = sign(&user, &ca, &request(&users, &pk)).unwrap();
        assert_eq!(issued.principals, names(&["web?", "ops*"]));
    }

    #[test]
    fn refuses_rsa_subject_keys_openssh_refuses() {
        let ca = KeyMaterial::generate(KeyAlg::Ed25519).unwrap();
        let users = names(&["ubuntu"]);
        let rsa = |bits: usize| {
            let mut n = vec![0xC5u8; bits / 8];
            if let Some(last) = n.last_mut() {
                *last |= 1;
            }
            let mut e = Vec::new();
            put_mpint(&mut e, &[1, 0, 1]).unwrap();
            let mut m = Vec::new();
            put_mpint(&mut m, &n).unwrap();
            line("ssh-rsa", &[&e[4..], &m[4..]])
        };
        sign(&policy(), &ca, &request(&users, &rsa(16384))).unwrap();
        let m = invalid_msg(sign(&policy(), &ca, &request(&users, &rsa(16392))));
        assert!(
            m.contains("16392-bit RSA key") && m.contains("at most 16384 bits"),
            "{m}"
        );
    }

    #[test]
    fn refuses_aes_signers() {
        let ca = KeyMaterial::generate(KeyAlg::Aes256Gcm).unwrap();
        let pk = user_key(KeyAlg::Ed25519);
        let users = names(&["ubuntu"]);
        let m = invalid_msg(sign(&policy(), &ca, &request(&users, &pk)));
        assert!(
            m.starts_with("the issuer's signer key is a AES256GCM key"),
            "{m}"
        );
    }

    #[test]
    fn policy_validation() {
        policy().validate().unwrap();
        type Change = Box<dyn Fn(&mut SshIssuerPolicy)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|p| p.ttl_secs = 0),
                "ttl must be 1 to 31536000 seconds",
            ),
            (
                Box::new(|p| p.ttl_secs = MAX_TTL_SECS + 1),
                "ttl must be 1 to 31536000 seconds",
            ),
            (
                Box::new(|p| p.allowed_users.push("a b".into())),
                "allowed-users: the name \"a b\" must not contain",
            ),
            (
                Box::new(|p| p.allowed_users.push("a,b".into())),
                "allowed-users: the name \"a,b\"",
            ),
            (
                Box::new(|p| p.allowed_users.push(String::new())),
                "allowed-users: a name is empty",
            ),
            (
                Box::new(|p| p.allowed_users.push("x".repeat(257))),
                "allowed-users: the name",
            ),
            (
                Box::new(|p| p.allowed_users = (0..257).map(|i| i.to_string()).collect()),
                "allowed-users has 257 entries",
            ),
            (
                Box::new(|p| p.principals.push("a\nb".into())),
                "principals: the name \"a\\nb\"",
            ),
            (
                Box::new(|p| p.principals = (0..257).map(|i| i.to_string()).collect()),
                "principals has 257 entries",
            ),
            (
                Box::new(|p| {
                    p.allowed_users.clear();
                    p.principals.clear();
                }),
                "allowed-users and principals are both empty",
            ),
            (
                Box::new(|p| {
                    p.cert_type = CertType::Host;
                    p.extensions = Some([("permit-pty".to_owned(), String::new())].into());
                }),
                "extensions apply to user certificates only",
            ),
            (
                Box::new(|p| {
                    p.cert_type = CertType::Host;
                    p.critical_options = [("force-command".to_owned(), "x".to_owned())].into();
                }),
                "critical-options apply to user certificates only",
            ),
            (
                Box::new(|p| {
                    p.extensions =
                        Some([("permit-pty-forwarding".to_owned(), String::new())].into())
                }),
                "extensions: \"permit-pty-forwarding\" is not an OpenSSH extension",
            ),
            (
                Box::new(|p| {
                    p.extensions = Some([("permit-pty".to_owned(), "yes".to_owned())].into())
                }),
                "extensions: permit-pty takes no value",
            ),
            (
                Box::new(|p| {
                    p.extensions = Some([("bad name@x".to_owned(), String::new())].into())
                }),
                "extensions: the name",
            ),
            (
                Box::new(|p| p.critical_options = [("no-pty".to_owned(), String::new())].into()),
                "critical-options: \"no-pty\" is not supported",
            ),
            (
                Box::new(|p| {
                    p.critical_options = [("force-command".to_owned(), " ".to_owned())].into()
                }),
                "critical-options: force-command is empty",
            ),
            (
                Box::new(|p| {
                    p.critical_options = [("force-command".to_owned(), "a\nb".to_owned())].into()
                }),
                "critical-options: force-command must be one line",
            ),
            (
                Box::new(|p| {
                    p.critical_options = [("verify-required".to_owned(), "yes".to_owned())].into()
                }),
                "critical-options: verify-required takes no value",
            ),
            (
                Box::new(|p| {
                    p.critical_options = [("source-address".to_owned(), String::new())].into()
                }),
                "critical-options: source-address is empty",
            ),
            (
                Box::new(|p| {
                    p.critical_options = [(
                        "source-address".to_owned(),
                        "10.0.0.0/8, 10.1.0.0/16".to_owned(),
                    )]
                    .into()
                }),
                "critical-options: source-address: \" 10.1.0.0/16\" is not an IP address",
            ),
            (
                Box::new(|p| {
                    p.critical_options =
                        [("source-address".to_owned(), "example.com".to_owned())].into()
                }),
                "is not an IP address or CIDR network",
            ),
            (
                Box::new(|p| {
                    p.critical_options =
                        [("source-address".to_owned(), "10.0.0.0/33".to_owned())].into()
                }),
                "is not an IP address or CIDR network",
            ),
            (
                Box::new(|p| {
                    p.critical_options =
                        [("source-address".to_owned(), "10.1.2.3/8".to_owned())].into()
                }),
                "\"10.1.2.3/8\" has host bits set: write the network as 10.0.0.0/8",
            ),
            (
                Box::new(|p| {
                    p.critical_options =
                        [("source-address".to_owned(), "1.2.3.4,".to_owned())].into()
                }),
                "\"\" is not an IP address",
            ),
        ];
        for (change, want) in cases {
            let mut p = policy();
            change(&mut p);
            let m = invalid_msg(p.validate());
            assert!(m.contains(want), "{want}: {m}");
            // sign checks the policy too.
            let ca = KeyMaterial::generate(KeyAlg::Ed25519).unwrap();
            let pk = user_key(KeyAlg::Ed25519);
            let users = names(&["ubuntu"]);
            assert!(matches!(
                sign(&p, &ca, &request(&users, &pk)),
                Err(KeyError::Invalid(_))
            ));
        }
        // Accepted corner cases.
        let mut p = policy();
        p.ttl_secs = MAX_TTL_SECS;
        p.extensions = Some(
            [
                ("no-touch-required", ""),
                ("vendor@example.com", "some value"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        );
        p.critical_options = [(
            "source-address".to_owned(),
            "192.0.2.1,::1,fe80::/10,0.0.0.0/0".to_owned(),
        )]
        .into();
        p.validate().unwrap();
        let host = SshIssuerPolicy {
            cert_type: CertType::Host,
            extensions: Some(BTreeMap::new()),
            ..policy()
        };
        host.validate().unwrap();
    }

    #[test]
    fn serde_names() {
        assert_eq!(serde_json::to_string(&CertType::User).unwrap(), "\"user\"");
        assert_eq!(
            serde_json::from_str::<CertType>("\"host\"").unwrap(),
            CertType::Host
        );
        let p = policy();
        let back: SshIssuerPolicy =
            serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn mpint_encoding() {
        let enc = |b: &[u8]| {
            let mut v = Vec::new();
            put_mpint(&mut v, b).unwrap();
            v
        };
        assert_eq!(enc(&[]), vec![0, 0, 0, 0]);
        assert_eq!(enc(&[0, 0]), vec![0, 0, 0, 0]);
        assert_eq!(enc(&[0, 0x7f]), vec![0, 0, 0, 1, 0x7f]);
        assert_eq!(enc(&[0x80]), vec![0, 0, 0, 2, 0, 0x80]);
        assert_eq!(enc(&[0, 0, 0x12, 0x34]), vec![0, 0, 0, 2, 0x12, 0x34]);
    }
}
