//! Issuing X.509 certificates (coffer-keys `x509::issue`) under a fixed
//! issuer policy (allowed-domains example.com, allow-subdomains,
//! server-flag, ttl one day, everything else at its default) with one EC
//! P-256 CA made once. The input is
//!
//! ```text
//! [flags] [n: u64 big-endian] [names text] 0x00 [key bytes]
//! ```
//!
//! flags bits 0-1 pick the subject key: 0 the key bytes as a CSR, 1 as a
//! public key, 2 and 3 a CSR the target signs itself (with a fixed P-256
//! or Ed25519 key) whose subject and attributes are the key bytes (a DER
//! Name, then the content of the `[0]` attributes), so that the CSR checks
//! behind the signature check are reached with fuzzed names and extension
//! requests. The names text (lossy UTF-8) is split into lines: the first is
//! the common name when flags bit 2 is set; `eku:X` lines are extended key
//! usages, `uri:X` lines URI SANs, the others alt-names. Bits 3-4: the ttl
//! asked for (none, one day, `n`, one second); bits 5-6: the request time
//! (fixed, plus `n` nanoseconds, plus `n` seconds as signed, `n` as a Unix
//! time); the serial is `n` twice.
//!
//! Oracle: no panic; whenever `issue` returns Ok, the certificate parses
//! with x509-parser, its signature verifies with the CA's key, its issuer
//! is the CA's subject; it is not a CA (no CA:TRUE, no keyCertSign or
//! cRLSign); its subject is one CN, itself among the DNS SANs; every SAN is
//! a DNS name that is example.com or below it (a host name, or `*.` and a
//! host name); extended key usage is serverAuth at most; the serial is
//! positive; notBefore ≤ now < notAfter ≤ now + ttl and the validity spans
//! at most ttl + 30 s (the backdating); what `issue` reports (names,
//! dates, `is_ca`) is what the certificate says; a CSR signed here (or a
//! DER public key) is the key the certificate certifies.
#![no_main]

use std::sync::OnceLock;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use coffer_keys::keys::{self, CertificateSubject, KeyAlg, KeyMaterial};
use coffer_keys::x509::{PkiIssuerPolicy, PkiRequest, SubjectKey, issue};
use libfuzzer_sys::fuzz_target;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

/// When the CA was made (2026-09-21), valid for ten years.
const CA_NOW: i64 = 1_790_000_000;
/// The default request time: an hour after the CA was made.
const NOW: i64 = CA_NOW + 3600;
const TTL: u64 = 86_400;
const BACKDATE: i64 = 30;
const DOMAIN: &str = "example.com";

struct Fixture {
    policy: PkiIssuerPolicy,
    ca: KeyMaterial,
    /// The CA certificate's DER.
    ca_der: Vec<u8>,
    rng: SystemRandom,
    /// Subject keys for the CSRs signed here, with their SPKI DER.
    p256: EcdsaKeyPair,
    p256_spki: Vec<u8>,
    ed: Ed25519KeyPair,
    ed_spki: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let key = KeyMaterial::generate(KeyAlg::Ec256).expect("CA key");
        let subject = CertificateSubject {
            common_name: "Coffer Fuzz Root CA".to_owned(),
            organization: Some("Coffer".to_owned()),
            ..CertificateSubject::default()
        };
        let now = OffsetDateTime::from_unix_timestamp(CA_NOW).expect("CA time");
        let pem = keys::self_signed_ca(&key, &subject, 3650, now).expect("CA certificate");
        let ca = key.with_certificate_chain(&pem).expect("CA chain");
        let ca_der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .expect("CA PEM")
            .1
            .contents;

        let mut policy = PkiIssuerPolicy::new(TTL);
        policy.allowed_domains = vec![DOMAIN.to_owned()];
        policy.allow_subdomains = true;
        policy.server_flag = true;
        policy.validate().expect("the fixed policy is valid");

        let rng = SystemRandom::new();
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("P-256 key");
        let p256 = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, doc.as_ref())
            .expect("P-256 key");
        let mut p256_spki = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
        p256_spki.extend_from_slice(p256.public_key().as_ref());
        let ed = Ed25519KeyPair::from_seed_unchecked(&[0x5e; 32]).expect("Ed25519 key");
        let mut ed_spki = hex("302a300506032b6570032100");
        ed_spki.extend_from_slice(ed.public_key().as_ref());
        Fixture {
            policy,
            ca,
            ca_der,
            rng,
            p256,
            p256_spki,
            ed,
            ed_spki,
        }
    })
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// The length of the DER TLV at the start of `b`, when it fits in `b`.
fn tlv_len(b: &[u8]) -> Option<usize> {
    let first = *b.get(1)?;
    let (header, len) = if first < 0x80 {
        (2, usize::from(first))
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = b.get(2..2 + n)?;
        (
            2 + n,
            bytes.iter().fold(0usize, |a, x| a << 8 | usize::from(*x)),
        )
    };
    let total = header.checked_add(len)?;
    (total <= b.len()).then_some(total)
}

/// A CSR for a fixed key with `body` = DER subject Name, then the content
/// of the `[0]` attributes; signed here so it passes the signature check.
fn signed_csr(f: &Fixture, body: &[u8], ed25519: bool) -> Vec<u8> {
    let (subject, attrs) = match tlv_len(body) {
        Some(n) => body.split_at(n),
        None => (body, &[][..]),
    };
    let spki = if ed25519 { &f.ed_spki } else { &f.p256_spki };
    let mut cri = vec![0x02, 0x01, 0x00];
    cri.extend_from_slice(subject);
    cri.extend_from_slice(spki);
    cri.extend_from_slice(&tlv(0xa0, attrs));
    let cri = tlv(0x30, &cri);
    let (alg, sig) = if ed25519 {
        (hex("300506032b6570"), f.ed.sign(&cri).as_ref().to_vec())
    } else {
        let sig = f.p256.sign(&f.rng, &cri).expect("ECDSA signature");
        (hex("300a06082a8648ce3d040302"), sig.as_ref().to_vec())
    };
    let mut bits = vec![0u8];
    bits.extend_from_slice(&sig);
    let mut csr = cri;
    csr.extend_from_slice(&alg);
    csr.extend_from_slice(&tlv(0x03, &bits));
    tlv(0x30, &csr)
}

/// Letters, digits and hyphens in dot-separated labels of 1..=63
/// characters, not starting or ending with a hyphen.
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// example.com or a name below it; a wildcard only as the whole leftmost
/// label.
fn allowed_dns(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let base = lower.strip_prefix("*.").unwrap_or(&lower);
    is_hostname(base) && (base == DOMAIN || base.ends_with(".example.com"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((n, rest)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let n = u64::from_be_bytes(*n);
    let (text, key) = match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let f = fixture();

    let text = String::from_utf8_lossy(text);
    // No text: no names (not one empty alt-name).
    let mut lines = Some(text.split('\n'))
        .filter(|_| !text.is_empty())
        .into_iter()
        .flatten();
    let common_name = if flags & 0b100 != 0 {
        lines.next()
    } else {
        None
    };
    let mut alt_names = Vec::new();
    let mut uri_sans = Vec::new();
    let mut ekus = Vec::new();
    for line in lines {
        if let Some(e) = line.strip_prefix("eku:") {
            ekus.push(e.to_owned());
        } else if let Some(u) = line.strip_prefix("uri:") {
            uri_sans.push(u.to_owned());
        } else {
            alt_names.push(line.to_owned());
        }
    }

    let signed;
    let (subject_key, own_spki) = match flags & 0b11 {
        0 => (SubjectKey::Csr(key), None),
        1 => (SubjectKey::PublicKey(key), None),
        m => {
            let ed25519 = m == 3;
            signed = signed_csr(f, key, ed25519);
            let spki = if ed25519 { &f.ed_spki } else { &f.p256_spki };
            (SubjectKey::Csr(&signed), Some(spki.as_slice()))
        }
    };
    let ttl_secs = match (flags >> 3) & 0b11 {
        0 => None,
        1 => Some(TTL),
        2 => Some(n),
        _ => Some(1),
    };
    let base = OffsetDateTime::from_unix_timestamp(NOW).expect("time");
    let now = match (flags >> 5) & 0b11 {
        0 => Some(base),
        1 => base.checked_add(Duration::nanoseconds(n as i64)),
        2 => base.checked_add(Duration::seconds(n as i64)),
        _ => OffsetDateTime::from_unix_timestamp(n as i64).ok(),
    };
    let Some(now) = now else {
        return;
    };
    let mut serial = [0u8; 16];
    serial[..8].copy_from_slice(&n.to_be_bytes());
    serial[8..].copy_from_slice(&n.to_be_bytes());

    let req = PkiRequest {
        key: subject_key,
        common_name,
        alt_names: &alt_names,
        uri_sans: &uri_sans,
        ttl_secs,
        extended_key_usage: &ekus,
        serial,
        now,
    };
    let Ok(issued) = issue(&f.policy, &f.ca, &req) else {
        return;
    };

    // The certificate, read back independently.
    let (rest, pem) = x509_parser::pem::parse_x509_pem(issued.certificate_pem.as_bytes())
        .expect("the issued certificate is PEM");
    assert!(
        rest.iter().all(u8::is_ascii_whitespace),
        "text after the PEM"
    );
    assert_eq!(pem.label, "CERTIFICATE");
    let (rest, cert) =
        X509Certificate::from_der(&pem.contents).expect("the issued certificate parses");
    assert!(rest.is_empty(), "bytes after the certificate");
    let (_, ca_cert) = X509Certificate::from_der(&f.ca_der).expect("CA certificate");
    cert.verify_signature(Some(ca_cert.public_key()))
        .expect("the certificate's signature verifies with the CA key");
    assert_eq!(cert.issuer().as_raw(), ca_cert.subject().as_raw(), "issuer");
    assert_eq!(cert.version().0, 2, "an X.509 v3 certificate");
    let serial = cert.raw_serial();
    assert!(
        !serial.is_empty() && serial[0] & 0x80 == 0 && serial.iter().any(|b| *b != 0),
        "the serial is positive: {serial:02x?}"
    );

    // Not a CA.
    let bc = cert.basic_constraints().expect("basicConstraints parses");
    assert!(
        bc.as_ref().is_none_or(|b| !b.value.ca),
        "an issued certificate is a CA: {bc:?}"
    );
    let ku = cert.key_usage().expect("keyUsage parses");
    assert!(
        ku.as_ref()
            .is_none_or(|k| !k.value.key_cert_sign() && !k.value.crl_sign()),
        "an issued certificate may sign certificates or CRLs: {ku:?}"
    );
    assert!(!issued.is_ca);

    // Names: DNS names under example.com only, the CN among them.
    let san = cert
        .subject_alternative_name()
        .expect("subjectAltName parses");
    let mut dns = Vec::new();
    for gn in san.iter().flat_map(|s| &s.value.general_names) {
        match gn {
            GeneralName::DNSName(d) => {
                assert!(allowed_dns(d), "DNS SAN {d:?} outside the allowed domain");
                dns.push((*d).to_owned());
            }
            other => panic!("a SAN the policy does not allow: {other:?}"),
        }
    }
    assert_eq!(issued.dns_names, dns, "the reported DNS names");
    assert!(issued.ip_sans.is_empty() && issued.uri_sans.is_empty());
    let mut cns = Vec::new();
    for attr in cert.subject().iter_attributes() {
        assert_eq!(
            attr.attr_type().to_id_string(),
            "2.5.4.3",
            "a subject attribute other than the CN"
        );
        cns.push(attr.as_str().expect("the CN is a string").to_owned());
    }
    assert_eq!(cns.len(), 1, "the subject has one CN (require-cn)");
    assert!(
        dns.iter().any(|d| d.eq_ignore_ascii_case(&cns[0])),
        "the CN {:?} is not among the DNS SANs {dns:?}",
        cns[0]
    );

    // Extended key usage: serverAuth at most.
    if let Some(eku) = cert.extended_key_usage().expect("extendedKeyUsage parses") {
        let e = eku.value;
        assert!(
            !e.any
                && !e.client_auth
                && !e.code_signing
                && !e.email_protection
                && !e.time_stamping
                && !e.ocsp_signing
                && e.other.is_empty(),
            "an extended key usage the policy does not allow: {e:?}"
        );
    }

    // Validity within the ttl.
    let ttl = i64::try_from(ttl_secs.unwrap_or(TTL)).expect("ttl fits");
    assert!(ttl <= TTL as i64, "issued with a ttl over the policy's");
    let now_s = now.unix_timestamp();
    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    assert!(
        nb <= now_s && now_s < na && na <= now_s + ttl && na - nb <= ttl + BACKDATE,
        "validity {nb}..{na} for now {now_s} and ttl {ttl}"
    );
    assert_eq!(issued.not_before.unix_timestamp(), nb);
    assert_eq!(issued.not_after.unix_timestamp(), na);

    // The key certified.
    let spki = cert.public_key().raw;
    if let Some(own) = own_spki {
        assert_eq!(
            spki, own,
            "the certificate certifies another key than the CSR's"
        );
    } else if matches!(req.key, SubjectKey::PublicKey(_))
        && let Ok((rest, _)) = SubjectPublicKeyInfo::from_der(key)
        && rest.is_empty()
    {
        assert_eq!(
            spki, key,
            "the certificate certifies another key than the one sent"
        );
    }
});
