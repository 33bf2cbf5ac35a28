//! Certificates and CRLs from `coffer_keys::x509`, checked by the real
//! `openssl` command: chain verification (with an intermediate), what
//! `openssl x509 -text` shows, CSRs made by `openssl req`, CRL signature
//! and contents, and a TLS handshake between `openssl s_server` (serving an
//! issued certificate) and `openssl s_client` (trusting only the root) on
//! the loopback interface.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use coffer_keys::KeyError;
use coffer_keys::keys::{self, CertificateSubject, KeyAlg, KeyMaterial};
use coffer_keys::x509::{self, PkiIssued, PkiIssuerPolicy, PkiRequest, Revoked, SubjectKey};
use time::OffsetDateTime;

fn run_openssl(dir: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("these tests need the openssl command (Debian: apt-get install openssl): {e}")
        });
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Run openssl, which must succeed; its stdout and stderr.
fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = run_openssl(dir, args, None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "openssl {args:?} failed:\n{text}");
    text
}

/// Run openssl, which must fail; its stdout and stderr.
fn openssl_fails(dir: &Path, args: &[&str]) -> String {
    let out = run_openssl(dir, args, None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "openssl {args:?} should have failed:\n{text}"
    );
    text
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn serial() -> [u8; 16] {
    let mut s = [0u8; 16];
    getrandom::fill(&mut s).unwrap();
    s
}

/// A root CA: a new key with a self-signed certificate.
fn root_ca(alg: KeyAlg) -> KeyMaterial {
    let key = KeyMaterial::generate(alg).unwrap();
    let subject = CertificateSubject {
        common_name: "Coffer Test Root CA".to_owned(),
        organization: Some("Acme".to_owned()),
        country: Some("US".to_owned()),
        ..Default::default()
    };
    let pem = keys::self_signed_ca(&key, &subject, 30, now()).unwrap();
    key.with_certificate_chain(&pem).unwrap()
}

fn leaf_policy() -> PkiIssuerPolicy {
    let mut p = PkiIssuerPolicy::new(7 * 86_400);
    p.allowed_domains = vec!["example.com".to_owned()];
    p.allow_subdomains = true;
    p.allowed_ip_sans = vec![
        "10.0.0.0/8".parse().unwrap(),
        "127.0.0.1/32".parse().unwrap(),
    ];
    p.server_flag = true;
    p.client_flag = true;
    p.organizations = vec!["Acme".to_owned()];
    p.validate().unwrap();
    p
}

fn request<'a>(key: SubjectKey<'a>, cn: Option<&'a str>, alt: &'a [String]) -> PkiRequest<'a> {
    PkiRequest {
        key,
        common_name: cn,
        alt_names: alt,
        uri_sans: &[],
        ttl_secs: Some(86_400),
        extended_key_usage: &[],
        serial: serial(),
        now: now(),
    }
}

/// `openssl req` with a new P-256 key (`<name>.key`) and CSR (`<name>.csr`).
fn openssl_csr(dir: &Path, name: &str, subj: &str, extra: &[&str]) -> Vec<u8> {
    openssl_csr_with_key(
        dir,
        name,
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        subj,
        extra,
    )
}

fn openssl_csr_with_key(
    dir: &Path,
    name: &str,
    newkey: &[&str],
    subj: &str,
    extra: &[&str],
) -> Vec<u8> {
    let key = format!("{name}.key");
    let csr = format!("{name}.csr");
    let mut args = vec!["req", "-new"];
    args.extend_from_slice(newkey);
    args.extend_from_slice(&["-nodes", "-keyout", &key, "-out", &csr, "-subj", subj]);
    args.extend_from_slice(extra);
    openssl(dir, &args);
    read(dir, &csr)
}

/// An intermediate CA (RSA 2048) issued by `root`, with the chain
/// [intermediate, root].
fn intermediate(root: &KeyMaterial) -> (KeyMaterial, PkiIssued) {
    let mut p = leaf_policy();
    p.is_ca = true;
    p.max_path_len = 0;
    p.server_flag = false;
    p.client_flag = false;
    let key = KeyMaterial::generate(KeyAlg::Rsa2048).unwrap();
    let spki = key.spki_der().unwrap();
    let issued = x509::issue(
        &p,
        root,
        &PkiRequest {
            // Longer than the leaves' day, so they never outlive it.
            ttl_secs: Some(7 * 86_400),
            ..request(SubjectKey::PublicKey(&spki), Some("ca.example.com"), &[])
        },
    )
    .unwrap();
    assert!(issued.is_ca);
    let chain = format!(
        "{}{}",
        issued.certificate_pem,
        x509::parent_chain(root).unwrap()
    );
    (key.with_certificate_chain(&chain).unwrap(), issued)
}

#[test]
fn leaf_from_an_openssl_csr_verifies_and_says_what_was_asked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = root_ca(KeyAlg::Ec256);
    write(d, "root.pem", root.certificate_chain().unwrap());
    let csr = openssl_csr(
        d,
        "leaf",
        "/CN=api.example.com/O=Acme",
        &[
            "-addext",
            "subjectAltName=DNS:api.example.com,DNS:www.example.com,IP:10.1.2.3",
        ],
    );
    let issued = x509::issue(
        &leaf_policy(),
        &root,
        &request(SubjectKey::Csr(&csr), None, &[]),
    )
    .unwrap();
    assert_eq!(issued.dns_names, ["api.example.com", "www.example.com"]);
    assert_eq!(issued.ip_sans, ["10.1.2.3"]);
    write(d, "leaf.pem", &issued.certificate_pem);

    let out = openssl(d, &["verify", "-CAfile", "root.pem", "leaf.pem"]);
    assert!(out.contains("leaf.pem: OK"), "{out}");
    let out = openssl(
        d,
        &[
            "verify",
            "-purpose",
            "sslserver",
            "-CAfile",
            "root.pem",
            "leaf.pem",
        ],
    );
    assert!(out.contains("leaf.pem: OK"), "{out}");
    let out = openssl(
        d,
        &[
            "verify",
            "-purpose",
            "sslclient",
            "-CAfile",
            "root.pem",
            "leaf.pem",
        ],
    );
    assert!(out.contains("leaf.pem: OK"), "{out}");

    let text = openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-text"]);
    for want in [
        "DNS:api.example.com, DNS:www.example.com, IP Address:10.1.2.3",
        "X509v3 Key Usage: critical",
        "Digital Signature, Key Encipherment, Key Agreement",
        "X509v3 Extended Key Usage",
        "TLS Web Server Authentication, TLS Web Client Authentication",
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "X509v3 Subject Key Identifier",
        "X509v3 Authority Key Identifier",
        "Version: 3 (0x2)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let serial = openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-serial"]);
    assert_eq!(
        serial.trim(),
        format!("serial={}", issued.serial_hex.to_uppercase())
    );
    let subject = openssl(
        d,
        &[
            "x509", "-in", "leaf.pem", "-noout", "-subject", "-nameopt", "RFC2253",
        ],
    );
    assert_eq!(subject.trim(), format!("subject={}", issued.subject));
    assert_eq!(issued.subject, "CN=api.example.com,O=Acme");
    let issuer = openssl(
        d,
        &[
            "x509", "-in", "leaf.pem", "-noout", "-issuer", "-nameopt", "RFC2253",
        ],
    );
    assert_eq!(issuer.trim(), "issuer=CN=Coffer Test Root CA,O=Acme,C=US");
    // The authority key identifier is the root's subject key identifier.
    let root_text = openssl(d, &["x509", "-in", "root.pem", "-noout", "-text"]);
    let ski = after(&root_text, "X509v3 Subject Key Identifier:");
    let aki = after(&text, "X509v3 Authority Key Identifier:");
    assert!(aki.contains(&ski), "AKI {aki:?} vs root SKI {ski:?}");
    // notAfter as reported.
    let end = openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-enddate"]);
    let fmt = time::macros::format_description!(
        "notAfter=[month repr:short] [day padding:space] [hour]:[minute]:[second] [year] GMT"
    );
    assert_eq!(end.trim(), issued.not_after.format(&fmt).unwrap());
}

/// The line after `label` in `openssl -text` output, trimmed.
fn after(text: &str, label: &str) -> String {
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.contains(label) {
            return lines.next().unwrap_or("").trim().to_owned();
        }
    }
    panic!("{label} not found in:\n{text}");
}

#[test]
fn intermediate_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = root_ca(KeyAlg::Ec384);
    let (inter, inter_issued) = intermediate(&root);
    write(d, "root.pem", root.certificate_chain().unwrap());
    write(d, "inter.pem", &inter_issued.certificate_pem);
    write(d, "chain.pem", &x509::parent_chain(&inter).unwrap());

    let text = openssl(d, &["x509", "-in", "inter.pem", "-noout", "-text"]);
    for want in [
        "CA:TRUE, pathlen:0",
        "Certificate Sign, CRL Sign",
        "X509v3 Basic Constraints: critical",
        "Public-Key: (2048 bit)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let out = openssl(d, &["verify", "-CAfile", "root.pem", "inter.pem"]);
    assert!(out.contains("inter.pem: OK"), "{out}");

    // An Ed25519 leaf from an openssl CSR, signed by the RSA intermediate.
    let csr = openssl_csr_with_key(
        d,
        "leaf",
        &["-newkey", "ed25519"],
        "/CN=svc.example.com",
        &[],
    );
    let issued = x509::issue(
        &leaf_policy(),
        &inter,
        &request(SubjectKey::Csr(&csr), None, &[]),
    )
    .unwrap();
    assert_eq!(issued.dns_names, ["svc.example.com"]);
    write(d, "leaf.pem", &issued.certificate_pem);
    let out = openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "inter.pem",
            "leaf.pem",
        ],
    );
    assert!(out.contains("leaf.pem: OK"), "{out}");
    let out = openssl(
        d,
        &[
            "verify",
            "-CAfile",
            "root.pem",
            "-untrusted",
            "chain.pem",
            "leaf.pem",
        ],
    );
    assert!(out.contains("leaf.pem: OK"), "{out}");
    // Without the intermediate there is no path to the root.
    let out = openssl_fails(d, &["verify", "-CAfile", "root.pem", "leaf.pem"]);
    assert!(
        out.contains("unable to get local issuer certificate"),
        "{out}"
    );
    let text = openssl(d, &["x509", "-in", "leaf.pem", "-noout", "-text"]);
    assert!(
        text.contains("Signature Algorithm: sha256WithRSAEncryption"),
        "{text}"
    );

    // pathlen:0: a CA certificate issued by the intermediate is refused.
    let mut p = leaf_policy();
    p.is_ca = true;
    let spki = KeyMaterial::generate(KeyAlg::Ec256)
        .unwrap()
        .spki_der()
        .unwrap();
    let err = x509::issue(
        &p,
        &inter,
        &request(SubjectKey::PublicKey(&spki), Some("ca2.example.com"), &[]),
    )
    .unwrap_err();
    assert!(
        matches!(err, KeyError::Denied(ref m) if m.contains("path length")),
        "{err:?}"
    );
}

/// An intermediate CA whose key openssl made (`<name>.key`, so openssl can
/// sign with it directly, outside any Coffer policy), issued by `root`
/// under `policy` (`<name>.pem`); with its chain [intermediate, root].
fn openssl_keyed_intermediate(
    d: &Path,
    name: &str,
    root: &KeyMaterial,
    policy: &PkiIssuerPolicy,
) -> KeyMaterial {
    let key_file = format!("{name}.key");
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &key_file,
        ],
    );
    let key = KeyMaterial::import(KeyAlg::Ec256, &read(d, &key_file)).unwrap();
    let spki = key.spki_der().unwrap();
    let issued = x509::issue(
        policy,
        root,
        &PkiRequest {
            ttl_secs: Some(7 * 86_400),
            ..request(SubjectKey::PublicKey(&spki), Some("ca.example.com"), &[])
        },
    )
    .unwrap();
    assert!(issued.is_ca);
    write(d, &format!("{name}.pem"), &issued.certificate_pem);
    let chain = format!(
        "{}{}",
        issued.certificate_pem,
        x509::parent_chain(root).unwrap()
    );
    key.with_certificate_chain(&chain).unwrap()
}

/// A leaf for `san` (openssl's subjectAltName syntax) signed by openssl
/// with the intermediate `ca`'s key: no Coffer policy involved.
fn openssl_signed_leaf(d: &Path, ca: &str, name: &str, san: &str) -> String {
    openssl_csr(d, name, "/CN=leaf", &[]);
    let ext = format!("{name}.ext");
    write(
        d,
        &ext,
        &format!("basicConstraints=critical,CA:FALSE\nsubjectAltName={san}\n"),
    );
    let (csr, cert, ca_pem, ca_key) = (
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{ca}.pem"),
        format!("{ca}.key"),
    );
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-set_serial",
            "4242",
            "-days",
            "1",
            "-extfile",
            &ext,
            "-out",
            &cert,
        ],
    );
    cert
}

#[test]
fn intermediate_name_constraints_bind_every_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = root_ca(KeyAlg::Ec256);
    write(d, "root.pem", root.certificate_chain().unwrap());

    // example.com (and below), 10.0.0.0/8, 127.0.0.1, spiffe://example.org/*.
    let mut p = leaf_policy();
    p.is_ca = true;
    p.max_path_len = 0;
    p.server_flag = false;
    p.client_flag = false;
    p.allowed_uri_sans = vec!["spiffe://example.org/*".to_owned()];
    let inter = openssl_keyed_intermediate(d, "inter", &root, &p);
    let text = openssl(d, &["x509", "-in", "inter.pem", "-noout", "-text"]);
    let nc = after(&text, "X509v3 Name Constraints: critical");
    assert!(nc.starts_with("Permitted:"), "{text}");
    for want in [
        "X509v3 Name Constraints: critical",
        "DNS:example.com",
        "IP:10.0.0.0/255.0.0.0",
        "IP:127.0.0.1/255.255.255.255",
        "URI:example.org",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    assert!(!text.contains("Excluded:"), "{text}");

    let verify = |leaf: &str| {
        run_openssl(
            d,
            &[
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "inter.pem",
                leaf,
            ],
            None,
        )
    };
    let outcome = |leaf: &str| {
        let out = verify(leaf);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    // Inside the constraints: verifies.
    for (i, san) in [
        "DNS:www.example.com,DNS:example.com,IP:10.1.2.3",
        "DNS:a.b.example.com,IP:127.0.0.1,URI:spiffe://example.org/any/path",
    ]
    .iter()
    .enumerate()
    {
        let leaf = openssl_signed_leaf(d, "inter", &format!("in{i}"), san);
        let (ok, out) = outcome(&leaf);
        assert!(ok, "{san}: {out}");
    }
    // Outside: the chain does not verify, whoever signed the leaf.
    const PERMITTED: &str = "permitted subtree violation";
    for (i, (san, why)) in [
        ("DNS:evil.org", PERMITTED),
        ("DNS:www.example.com,DNS:notexample.com", PERMITTED),
        ("DNS:www.example.com,IP:192.168.1.1", PERMITTED),
        ("DNS:www.example.com,IP:::1", PERMITTED),
        ("DNS:www.example.com,URI:spiffe://evil.org/x", PERMITTED),
        // No host for the URI constraint to judge: refused too.
        (
            "DNS:www.example.com,URI:urn:example:x",
            "unsupported or invalid name syntax",
        ),
    ]
    .iter()
    .enumerate()
    {
        let leaf = openssl_signed_leaf(d, "inter", &format!("out{i}"), san);
        let (ok, out) = outcome(&leaf);
        assert!(!ok, "{san} verified:\n{out}");
        assert!(out.contains(why), "{san}: {out}");
    }

    // A leaf Coffer issues through the intermediate verifies; one outside
    // the intermediate's constraints is refused even by an issuer that
    // would allow any name.
    let key = KeyMaterial::generate(KeyAlg::Ec256).unwrap();
    let spki = key.spki_der().unwrap();
    let alt = vec!["www.example.com".to_owned(), "10.9.8.7".to_owned()];
    let issued = x509::issue(
        &leaf_policy(),
        &inter,
        &request(SubjectKey::PublicKey(&spki), Some("api.example.com"), &alt),
    )
    .unwrap();
    write(d, "coffer-leaf.pem", &issued.certificate_pem);
    let (ok, out) = outcome("coffer-leaf.pem");
    assert!(ok, "{out}");
    let mut any = leaf_policy();
    any.allow_any_name = true;
    let err = x509::issue(
        &any,
        &inter,
        &request(SubjectKey::PublicKey(&spki), Some("evil.org"), &[]),
    )
    .unwrap_err();
    assert!(
        matches!(err, KeyError::Denied(ref m) if m.starts_with("common-name") && m.contains("nameConstraints")),
        "{err:?}"
    );

    // An issuer that certifies no IP addresses and no URIs: its CA
    // certificates exclude every address and permit only the host
    // "invalid" for URIs.
    let mut p = leaf_policy();
    p.is_ca = true;
    p.allowed_ip_sans.clear();
    let _ = openssl_keyed_intermediate(d, "inter2", &root, &p);
    let text = openssl(d, &["x509", "-in", "inter2.pem", "-noout", "-text"]);
    for want in [
        "X509v3 Name Constraints: critical",
        "Excluded:",
        "IP:0.0.0.0/0.0.0.0",
        "URI:invalid",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let verify2 = |leaf: &str| {
        let out = run_openssl(
            d,
            &[
                "verify",
                "-CAfile",
                "root.pem",
                "-untrusted",
                "inter2.pem",
                leaf,
            ],
            None,
        );
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let leaf = openssl_signed_leaf(d, "inter2", "in2", "DNS:www.example.com");
    let (ok, out) = verify2(&leaf);
    assert!(ok, "{out}");
    for (i, (san, why)) in [
        (
            "DNS:www.example.com,IP:10.0.0.1",
            "excluded subtree violation",
        ),
        (
            "DNS:www.example.com,IP:2001:db8::1",
            "excluded subtree violation",
        ),
        (
            "DNS:www.example.com,URI:spiffe://example.org/x",
            "permitted subtree violation",
        ),
    ]
    .iter()
    .enumerate()
    {
        let leaf = openssl_signed_leaf(d, "inter2", &format!("out2-{i}"), san);
        let (ok, out) = verify2(&leaf);
        assert!(!ok && out.contains(why), "{san}: {out}");
    }
}

#[test]
fn crl_verifies_and_lists_the_revoked_serial() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = root_ca(KeyAlg::Ec256);
    write(d, "root.pem", root.certificate_chain().unwrap());
    let csr = openssl_csr(d, "leaf", "/CN=old.example.com", &[]);
    let issued = x509::issue(
        &leaf_policy(),
        &root,
        &request(SubjectKey::Csr(&csr), None, &[]),
    )
    .unwrap();
    write(d, "leaf.pem", &issued.certificate_pem);
    let other = openssl_csr(d, "other", "/CN=new.example.com", &[]);
    let kept = x509::issue(
        &leaf_policy(),
        &root,
        &request(SubjectKey::Csr(&other), None, &[]),
    )
    .unwrap();
    write(d, "kept.pem", &kept.certificate_pem);

    let t = now();
    let revoked = [Revoked {
        serial_hex: issued.serial_hex.clone(),
        revoked_at: t,
    }];
    let pem = x509::crl(&root, &revoked, 42, t, t + time::Duration::days(1)).unwrap();
    write(d, "crl.pem", &pem);
    let out = openssl(
        d,
        &[
            "crl", "-in", "crl.pem", "-CAfile", "root.pem", "-noout", "-verify",
        ],
    );
    assert!(out.contains("verify OK"), "{out}");
    let text = openssl(d, &["crl", "-in", "crl.pem", "-noout", "-text"]);
    for want in [
        format!("Serial Number: {}", issued.serial_hex.to_uppercase()),
        "X509v3 CRL Number:".to_owned(),
        "X509v3 Authority Key Identifier".to_owned(),
        "Version 2 (0x1)".to_owned(),
        "Issuer: C = US, O = Acme, CN = Coffer Test Root CA".to_owned(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }
    assert_eq!(after(&text, "X509v3 CRL Number:"), "42");

    // With CRL checking, the revoked certificate fails and the other passes.
    let out = openssl_fails(
        d,
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "root.pem",
            "-CRLfile",
            "crl.pem",
            "leaf.pem",
        ],
    );
    assert!(out.contains("certificate revoked"), "{out}");
    let out = openssl(
        d,
        &[
            "verify",
            "-crl_check",
            "-CAfile",
            "root.pem",
            "-CRLfile",
            "crl.pem",
            "kept.pem",
        ],
    );
    assert!(out.contains("kept.pem: OK"), "{out}");
}

#[test]
fn openssl_csrs_asking_for_too_much_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = root_ca(KeyAlg::Ec256);
    let policy = leaf_policy();
    let issue = |csr: &[u8]| x509::issue(&policy, &root, &request(SubjectKey::Csr(csr), None, &[]));

    let csr = openssl_csr(
        d,
        "a",
        "/CN=ca.example.com",
        &["-addext", "basicConstraints=critical,CA:TRUE"],
    );
    let err = issue(&csr).unwrap_err();
    assert!(
        matches!(err, KeyError::Denied(ref m) if m.contains("basicConstraints CA:TRUE")),
        "{err:?}"
    );

    let csr = openssl_csr(
        d,
        "b",
        "/CN=a.example.com",
        &["-addext", "subjectAltName=email:a@example.com"],
    );
    let err = issue(&csr).unwrap_err();
    assert!(
        matches!(err, KeyError::Denied(ref m) if m.contains("email address SAN")),
        "{err:?}"
    );

    let csr = openssl_csr(d, "c", "/CN=a.example.com/O=Evil", &[]);
    let err = issue(&csr).unwrap_err();
    assert!(
        matches!(err, KeyError::Denied(ref m) if m.contains("the CSR's subject O=Evil is not this issuer's organizations (Acme)")),
        "{err:?}"
    );

    let csr = openssl_csr(
        d,
        "d",
        "/CN=a.example.com",
        &[
            "-addext",
            "keyUsage=critical,digitalSignature,dataEncipherment",
        ],
    );
    let err = issue(&csr).unwrap_err();
    assert!(
        matches!(err, KeyError::Denied(ref m) if m.contains("key-usage") && m.contains("DataEncipherment")),
        "{err:?}"
    );

    let csr = openssl_csr(
        d,
        "e",
        "/CN=a.example.com",
        &["-addext", "extendedKeyUsage=codeSigning"],
    );
    let err = issue(&csr).unwrap_err();
    assert!(
        matches!(err, KeyError::Denied(ref m) if m.contains("extended-key-usage")),
        "{err:?}"
    );

    let csr = openssl_csr(
        d,
        "f",
        "/CN=a.example.com",
        &["-addext", "subjectAltName=DNS:evil.org"],
    );
    let err = issue(&csr).unwrap_err();
    assert!(
        matches!(err, KeyError::Denied(ref m) if m.contains("evil.org")),
        "{err:?}"
    );

    // RSA 1024, as a CSR and as a bare public key.
    let csr = openssl_csr_with_key(d, "g", &["-newkey", "rsa:1024"], "/CN=a.example.com", &[]);
    let err = issue(&csr).unwrap_err();
    assert!(
        matches!(err, KeyError::Denied(ref m) if m.contains("RSA 1024 bits")),
        "{err:?}"
    );
    openssl(d, &["pkey", "-in", "g.key", "-pubout", "-out", "g.pub"]);
    let public = read(d, "g.pub");
    let err = x509::issue(
        &policy,
        &root,
        &request(SubjectKey::PublicKey(&public), Some("a.example.com"), &[]),
    )
    .unwrap_err();
    assert!(
        matches!(err, KeyError::Denied(ref m) if m.contains("RSA 1024 bits")),
        "{err:?}"
    );

    // A private key sent as key-data (PEM and DER).
    let private = read(d, "a.key");
    let err = x509::issue(
        &policy,
        &root,
        &request(SubjectKey::PublicKey(&private), Some("a.example.com"), &[]),
    )
    .unwrap_err();
    assert!(
        matches!(err, KeyError::Invalid(ref m) if m == "key-data-base64 must be a public key: never send a private key"),
        "{err:?}"
    );
    openssl(
        d,
        &["pkey", "-in", "a.key", "-outform", "DER", "-out", "a.der"],
    );
    let private_der = read(d, "a.der");
    let err = x509::issue(
        &policy,
        &root,
        &request(
            SubjectKey::PublicKey(&private_der),
            Some("a.example.com"),
            &[],
        ),
    )
    .unwrap_err();
    assert!(
        matches!(err, KeyError::Invalid(ref m) if m.contains("never send a private key")),
        "{err:?}"
    );

    // An openssl public key (P-384) is accepted, in PEM and DER.
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
            "h.key",
        ],
    );
    openssl(d, &["pkey", "-in", "h.key", "-pubout", "-out", "h.pub"]);
    openssl(
        d,
        &[
            "pkey",
            "-in",
            "h.key",
            "-pubout",
            "-outform",
            "DER",
            "-out",
            "h.pub.der",
        ],
    );
    for name in ["h.pub", "h.pub.der"] {
        let public = read(d, name);
        x509::issue(
            &policy,
            &root,
            &request(SubjectKey::PublicKey(&public), Some("h.example.com"), &[]),
        )
        .unwrap();
    }
}

/// Kills the child (a process this test started) when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.kill().is_ok() {
            self.0.wait().ok();
        }
    }
}

#[test]
fn tls_handshake_with_an_issued_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = root_ca(KeyAlg::Ec256);
    let (inter, _) = intermediate(&root);
    write(d, "root.pem", root.certificate_chain().unwrap());
    write(d, "chain.pem", &x509::parent_chain(&inter).unwrap());
    let csr = openssl_csr(
        d,
        "server",
        "/CN=server.example.com",
        &["-addext", "subjectAltName=DNS:server.example.com"],
    );
    let alt = vec!["127.0.0.1".to_owned()];
    let policy = leaf_policy();
    // alt-names must match the CSR's: the CSR's own names only.
    let err =
        x509::issue(&policy, &inter, &request(SubjectKey::Csr(&csr), None, &alt)).unwrap_err();
    assert!(
        matches!(err, KeyError::Invalid(ref m) if m.contains("differ from the CSR")),
        "{err:?}"
    );
    let issued = x509::issue(&policy, &inter, &request(SubjectKey::Csr(&csr), None, &[])).unwrap();
    write(d, "server.pem", &issued.certificate_pem);

    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let accept = format!("127.0.0.1:{port}");
    let server = Command::new("openssl")
        .args([
            "s_server",
            "-cert",
            "server.pem",
            "-key",
            "server.key",
            "-CAfile",
            "chain.pem",
            "-accept",
            &accept,
            "-www",
        ])
        .current_dir(d)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("openssl s_server: {e}"));
    let mut server = KillOnDrop(server);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if TcpStream::connect(&accept).is_ok() {
            break;
        }
        if let Some(status) = server.0.try_wait().unwrap() {
            let mut err = String::new();
            server
                .0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("s_server exited ({status}): {err}");
        }
        assert!(
            Instant::now() < deadline,
            "s_server did not start listening on {accept}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let client = |name: &str| {
        run_openssl(
            d,
            &[
                "s_client",
                "-connect",
                &accept,
                "-servername",
                name,
                "-CAfile",
                "root.pem",
                "-verify_return_error",
                "-ign_eof",
                "-verify_hostname",
                name,
            ],
            Some(b"GET / HTTP/1.0\r\n\r\n"),
        )
    };
    let out = client("server.example.com");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "s_client failed:\n{text}");
    assert!(text.contains("Verify return code: 0 (ok)"), "{text}");
    assert!(
        text.contains("Verified peername: server.example.com"),
        "{text}"
    );
    assert!(text.contains("HTTP/1.0 200 ok"), "{text}");
    // The server sent the intermediate: the client trusts only the root.
    assert!(text.contains("i:O = Acme, CN = ca.example.com"), "{text}");

    // Another host name does not verify.
    let out = client("other.example.com");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "s_client should have failed:\n{text}"
    );
    assert!(text.contains("hostname mismatch"), "{text}");
    drop(server);
}
