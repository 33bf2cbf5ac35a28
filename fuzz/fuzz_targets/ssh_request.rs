//! Signing SSH certificates (coffer-keys `ssh::sign`) under a fixed user
//! certificate issuer policy (allowed-users `ubuntu`, no principals of its
//! own, ttl 3600 s, ssh-keygen's default extensions) with one Ed25519 CA
//! made once. The input is
//!
//! ```text
//! [flags] [n: u64 big-endian] public-key-data 0x00 key-id (0x00 username)*
//! ```
//!
//! (text lossy UTF-8). flags bits 0-1: the ttl asked for (none, 3600, `n`,
//! 1); bits 2-3: the request time (fixed, `n`, `u64::MAX` minus the low 16
//! bits of `n`, `i64::MAX` minus them); bit 4: certify the CA's own public
//! key instead of the text's. The serial is `n`.
//!
//! Oracle: no panic; whenever `sign` returns Ok, the certificate line
//! parses with `ssh_key::Certificate::from_openssh`; its principals are a
//! non-empty subset of {"ubuntu"}; valid_after ≤ now < valid_before ≤ now +
//! ttl and valid_before − valid_after ≤ 3600 + 30 (clock skew); it is a
//! user certificate with the serial asked for and the key ID asked for
//! with control and invisible format characters written as '?', the default
//! extensions and no critical options; it certifies the key sent (as
//! ssh-key reads the line); it is signed by the CA key, and the Ed25519
//! signature verifies over the certificate's bytes; what `sign` reports is
//! what the certificate says.
#![no_main]

use std::sync::OnceLock;

use aws_lc_rs::signature::{ED25519, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_keys::keys::{KeyAlg, KeyMaterial};
use coffer_keys::ssh::{
    CLOCK_SKEW_SECS, CertType, DEFAULT_USER_EXTENSIONS, SshIssuerPolicy, SshRequest, sign,
};
use libfuzzer_sys::fuzz_target;
use ssh_key::public::KeyData;

const NOW: u64 = 1_790_000_000;
const TTL: u64 = 3600;
const USER: &str = "ubuntu";

struct Fixture {
    policy: SshIssuerPolicy,
    ca: KeyMaterial,
    ca_key: KeyData,
    /// The CA's public key as an authorized_keys line.
    ca_line: String,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let ca = KeyMaterial::generate(KeyAlg::Ed25519).expect("CA key");
        let ca_key = ca.ssh_public_key().expect("CA SSH key");
        let ca_line = ca.public_key().expect("CA public key").ssh;
        let policy = SshIssuerPolicy {
            cert_type: CertType::User,
            allowed_users: vec![USER.to_owned()],
            principals: Vec::new(),
            ttl_secs: TTL,
            extensions: None,
            critical_options: Default::default(),
        };
        policy.validate().expect("the fixed policy is valid");
        Fixture {
            policy,
            ca,
            ca_key,
            ca_line,
        }
    })
}

/// What `SshRequest::key_id` documents is written as '?': control
/// characters and invisible format characters (bidi embeddings, overrides,
/// isolates and marks; zero-width characters, word joiners and invisible
/// operators; line and paragraph separators; the BOM).
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

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((n, rest)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let n = u64::from_be_bytes(*n);
    let f = fixture();

    let mut fields = rest.split(|b| *b == 0).map(String::from_utf8_lossy);
    let public_key = fields.next().unwrap_or_default();
    let key_id = fields.next().unwrap_or_default();
    let usernames: Vec<String> = fields.map(|u| u.into_owned()).collect();
    let public_key: &str = if flags & 0b1_0000 != 0 {
        &f.ca_line
    } else {
        &public_key
    };

    let ttl_secs = match flags & 0b11 {
        0 => None,
        1 => Some(TTL),
        2 => Some(n),
        _ => Some(1),
    };
    let now = match (flags >> 2) & 0b11 {
        0 => NOW,
        1 => n,
        2 => u64::MAX - (n & 0xffff),
        _ => i64::MAX as u64 - (n & 0xffff),
    };
    let req = SshRequest {
        usernames: &usernames,
        public_key,
        ttl_secs,
        key_id: &key_id,
        serial: n,
        now,
    };
    let Ok(issued) = sign(&f.policy, &f.ca, &req) else {
        return;
    };

    let cert = ssh_key::Certificate::from_openssh(&issued.certificate)
        .expect("the issued certificate parses");

    // Names.
    let principals = cert.valid_principals();
    assert!(
        !principals.is_empty() && principals.iter().all(|p| p == USER),
        "principals {principals:?} are not a non-empty subset of {{{USER:?}}}"
    );
    assert_eq!(principals, issued.principals.as_slice());

    // Lifetime.
    let ttl = ttl_secs.unwrap_or(TTL);
    assert!(ttl <= TTL, "signed with a ttl over the policy's");
    let (va, vb) = (cert.valid_after(), cert.valid_before());
    assert!(
        va <= now
            && now < vb
            && vb - now <= ttl
            && vb - va <= TTL + CLOCK_SKEW_SECS
            && i64::try_from(vb).is_ok(),
        "validity {va}..{vb} for now {now} and ttl {ttl}"
    );
    assert_eq!((va, vb), (issued.valid_after, issued.valid_before));

    // Fields.
    assert_eq!(cert.cert_type(), ssh_key::certificate::CertType::User);
    assert_eq!(issued.cert_type, CertType::User);
    assert_eq!(cert.key_id(), issued.key_id, "the reported key ID");
    let written: String = key_id
        .chars()
        .map(|c| if unsafe_in_key_id(c) { '?' } else { c })
        .collect();
    assert_eq!(cert.key_id(), written, "the key ID, sanitised");
    assert_eq!((cert.serial(), issued.serial), (n, n));
    let extensions: Vec<(&str, &str)> = cert
        .extensions()
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut want: Vec<(&str, &str)> = DEFAULT_USER_EXTENSIONS.iter().map(|e| (*e, "")).collect();
    want.sort_unstable();
    assert_eq!(extensions, want, "extensions");
    assert!(cert.critical_options().is_empty(), "critical options");

    // The key certified, and the CA's signature.
    let sent = ssh_key::PublicKey::from_openssh(public_key.trim())
        .expect("a key sign accepted parses with ssh-key");
    assert_eq!(cert.public_key(), sent.key_data(), "the certified key");
    assert_ne!(
        cert.public_key(),
        &f.ca_key,
        "the CA's own key was certified"
    );
    assert_eq!(cert.signature_key(), &f.ca_key, "the signing key");
    let ca_pk = f.ca_key.ed25519().expect("an Ed25519 CA").0;
    let sig = cert.signature();
    assert_eq!(sig.algorithm(), ssh_key::Algorithm::Ed25519);
    let raw = sig.as_bytes();
    let mut inner = Vec::new();
    for part in [b"ssh-ed25519".as_slice(), raw] {
        inner.extend_from_slice(&u32::try_from(part.len()).expect("len").to_be_bytes());
        inner.extend_from_slice(part);
    }
    let mut field = u32::try_from(inner.len())
        .expect("len")
        .to_be_bytes()
        .to_vec();
    field.extend_from_slice(&inner);
    let b64 = issued
        .certificate
        .split_ascii_whitespace()
        .nth(1)
        .expect("the certificate line has a key blob");
    let blob = STANDARD.decode(b64).expect("the key blob is base64");
    let signed = blob
        .strip_suffix(field.as_slice())
        .expect("the certificate ends with its signature");
    UnparsedPublicKey::new(&ED25519, ca_pk)
        .verify(signed, raw)
        .expect("the CA's signature verifies");
});
