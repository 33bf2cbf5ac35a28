//! Coffer's keys and certificates as the real tools read them:
//! `ssh-keygen -L` / `-l` for SSH certificates and public keys, `openssl`
//! for PEM public keys, private keys and self-signed CA certificates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_keys::KeyError;
use coffer_keys::keys::{CertificateSubject, KeyAlg, KeyMaterial, self_signed_ca};
use coffer_keys::ssh::{CertType, SshIssuerPolicy, SshRequest, sign};

const SSH_KEYGEN: &str = "/usr/bin/ssh-keygen";
const OPENSSL: &str = "/usr/bin/openssl";

fn output(cmd: &mut Command) -> Output {
    cmd.env("TZ", "UTC")
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// Run a command that must succeed; its stdout.
fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// `ssh-keygen -t … -N "" -f dir/name`: the public key line.
fn ssh_user_key(dir: &Path, name: &str, args: &[&str]) -> String {
    let path = dir.join(name);
    run(Command::new(SSH_KEYGEN)
        .args(["-q", "-N", "", "-C", "user@laptop", "-f"])
        .arg(&path)
        .args(args));
    std::fs::read_to_string(path.with_extension("pub")).unwrap()
}

/// The SHA256 fingerprint `ssh-keygen -l` gives a public key file.
fn fingerprint(path: &Path) -> String {
    let out = run(Command::new(SSH_KEYGEN).arg("-l").arg("-f").arg(path));
    out.split_whitespace().nth(1).unwrap().to_owned()
}

/// What `ssh-keygen -L -f cert` says.
#[derive(Debug, Default)]
struct Listing {
    fields: BTreeMap<String, String>,
    lists: BTreeMap<String, Vec<String>>,
}

impl Listing {
    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {self:?}"))
    }

    fn list(&self, name: &str) -> Vec<&str> {
        self.lists
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {self:?}"))
            .iter()
            .map(String::as_str)
            .collect()
    }
}

fn list_certificate(path: &Path) -> Listing {
    let out = run(Command::new(SSH_KEYGEN).arg("-L").arg("-f").arg(path));
    let mut listing = Listing::default();
    let mut current: Option<String> = None;
    for line in out.lines().skip(1) {
        if let Some(item) = line.strip_prefix("                ") {
            let list = current
                .as_ref()
                .unwrap_or_else(|| panic!("an item outside a list: {line}"));
            listing.lists.get_mut(list).unwrap().push(item.to_owned());
            continue;
        }
        let (name, value) = line
            .trim()
            .split_once(':')
            .unwrap_or_else(|| panic!("not name: value: {line}"));
        let value = value.trim();
        match name {
            "Principals" | "Critical Options" | "Extensions" => {
                assert!(value.is_empty() || value == "(none)", "{line}");
                listing.lists.insert(name.to_owned(), Vec::new());
                current = Some(name.to_owned());
            }
            _ => {
                listing.fields.insert(name.to_owned(), value.to_owned());
                current = None;
            }
        }
    }
    listing
}

fn utc(secs: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap()).unwrap();
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    t.format(&f).unwrap()
}

fn user_policy() -> SshIssuerPolicy {
    SshIssuerPolicy {
        cert_type: CertType::User,
        allowed_users: vec!["ubuntu".into(), "deploy".into()],
        principals: vec!["ops".into()],
        ttl_secs: 8 * 3600,
        extensions: None,
        critical_options: BTreeMap::new(),
    }
}

/// ssh-keygen's name of the CA key type and signature algorithm.
fn ca_names(alg: KeyAlg) -> (&'static str, &'static str) {
    match alg {
        KeyAlg::Ed25519 => ("ED25519", "ssh-ed25519"),
        KeyAlg::Ec256 => ("ECDSA", "ecdsa-sha2-nistp256"),
        KeyAlg::Ec384 => ("ECDSA", "ecdsa-sha2-nistp384"),
        _ => ("RSA", "rsa-sha2-512"),
    }
}

#[test]
fn ssh_keygen_reads_user_certificates_of_every_ca_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ed_user = ssh_user_key(d, "id_ed25519", &["-t", "ed25519"]);
    let rsa_user = ssh_user_key(d, "id_rsa", &["-t", "rsa", "-b", "3072"]);
    for ca_alg in [
        KeyAlg::Ed25519,
        KeyAlg::Ec256,
        KeyAlg::Ec384,
        KeyAlg::Rsa2048,
    ] {
        let ca = KeyMaterial::generate(ca_alg).unwrap();
        let ca_pub = write(d, "ca.pub", format!("{}\n", ca.public_key().unwrap().ssh));
        let ca_fp = fingerprint(&ca_pub);
        for (user_line, user_file, key_type) in [
            (&ed_user, "id_ed25519", "ssh-ed25519"),
            (&rsa_user, "id_rsa", "ssh-rsa"),
        ] {
            let now = now();
            let usernames = vec!["deploy".to_owned(), "ubuntu".to_owned()];
            let issued = sign(
                &user_policy(),
                &ca,
                &SshRequest {
                    usernames: &usernames,
                    public_key: user_line,
                    ttl_secs: Some(3600),
                    key_id: "alice@example.com (coffer)",
                    serial: 1234567890123,
                    now,
                },
            )
            .unwrap();
            let cert = write(
                d,
                &format!("{user_file}-cert.pub"),
                format!("{}\n", issued.certificate),
            );
            let l = list_certificate(&cert);
            assert_eq!(
                l.field("Type"),
                format!("{key_type}-cert-v01@openssh.com user certificate")
            );
            let (ca_type, sig_alg) = ca_names(ca_alg);
            assert_eq!(
                l.field("Signing CA"),
                format!("{ca_type} {ca_fp} (using {sig_alg})"),
                "{ca_alg}"
            );
            let user_fp = fingerprint(&d.join(format!("{user_file}.pub")));
            assert!(l.field("Public key").ends_with(&format!("-CERT {user_fp}")));
            assert_eq!(l.field("Key ID"), "\"alice@example.com (coffer)\"");
            assert_eq!(l.field("Serial"), "1234567890123");
            assert_eq!(
                l.field("Valid"),
                format!("from {} to {}", utc(now - 30), utc(now + 3600))
            );
            assert_eq!(issued.valid_after, now - 30);
            assert_eq!(issued.valid_before, now + 3600);
            assert_eq!(l.list("Principals"), ["deploy", "ubuntu", "ops"]);
            assert!(l.list("Critical Options").is_empty());
            assert_eq!(
                l.list("Extensions"),
                [
                    "permit-X11-forwarding",
                    "permit-agent-forwarding",
                    "permit-port-forwarding",
                    "permit-pty",
                    "permit-user-rc"
                ]
            );
        }
    }
}

#[test]
fn ssh_keygen_reads_options_extensions_and_host_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let user = ssh_user_key(d, "id_ed25519", &["-t", "ed25519"]);
    let ecdsa_user = ssh_user_key(d, "id_ecdsa", &["-t", "ecdsa", "-b", "521"]);
    let ca = KeyMaterial::generate(KeyAlg::Rsa3072).unwrap();
    let ca_pub = write(d, "ca.pub", &ca.public_key().unwrap().ssh);
    let ca_fp = fingerprint(&ca_pub);

    // A user certificate with critical options and chosen extensions.
    let mut policy = user_policy();
    policy.critical_options = [
        ("force-command", "/usr/local/bin/backup --full"),
        ("source-address", "10.0.0.0/8,192.0.2.7,2001:db8::/32"),
        ("verify-required", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    policy.extensions = Some(
        [("permit-pty", ""), ("login@example.com", "alice")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    );
    let now = now();
    let usernames = vec!["ubuntu".to_owned()];
    let issued = sign(
        &policy,
        &ca,
        &SshRequest {
            usernames: &usernames,
            public_key: &ecdsa_user,
            ttl_secs: None,
            key_id: "alice",
            serial: 0,
            now,
        },
    )
    .unwrap();
    let cert = write(d, "id_ecdsa-cert.pub", &issued.certificate);
    let l = list_certificate(&cert);
    assert_eq!(
        l.field("Type"),
        "ecdsa-sha2-nistp521-cert-v01@openssh.com user certificate"
    );
    assert_eq!(
        l.field("Signing CA"),
        format!("RSA {ca_fp} (using rsa-sha2-512)")
    );
    assert_eq!(
        l.field("Valid"),
        format!("from {} to {}", utc(now - 30), utc(now + 8 * 3600))
    );
    assert_eq!(l.list("Principals"), ["ubuntu", "ops"]);
    assert_eq!(
        l.list("Critical Options"),
        [
            "force-command /usr/local/bin/backup --full",
            "source-address 10.0.0.0/8,192.0.2.7,2001:db8::/32",
            "verify-required"
        ]
    );
    let ext = l.list("Extensions");
    assert_eq!(ext.len(), 2);
    // OpenSSH shows unknown extensions' data as hex of string("alice").
    assert!(
        ext[0].starts_with("login@example.com UNKNOWN OPTION: 00000005616c696365"),
        "{ext:?}"
    );
    assert_eq!(ext[1], "permit-pty");

    // A host certificate: host names as principals, no options.
    let host_policy = SshIssuerPolicy {
        cert_type: CertType::Host,
        allowed_users: vec!["*".into()],
        principals: vec![],
        ttl_secs: 30 * 86400,
        extensions: None,
        critical_options: BTreeMap::new(),
    };
    let hosts = vec!["db1.example.com".to_owned(), "10.1.2.3".to_owned()];
    let issued = sign(
        &host_policy,
        &ca,
        &SshRequest {
            usernames: &hosts,
            public_key: &user,
            ttl_secs: Some(86400),
            key_id: "host db1",
            serial: 9,
            now,
        },
    )
    .unwrap();
    let cert = write(d, "host-cert.pub", &issued.certificate);
    let l = list_certificate(&cert);
    assert_eq!(
        l.field("Type"),
        "ssh-ed25519-cert-v01@openssh.com host certificate"
    );
    assert_eq!(l.field("Key ID"), "\"host db1\"");
    assert_eq!(l.field("Serial"), "9");
    assert_eq!(l.list("Principals"), ["db1.example.com", "10.1.2.3"]);
    assert!(l.list("Critical Options").is_empty());
    assert!(l.list("Extensions").is_empty());
}

#[test]
fn ssh_keygen_checks_the_signature() {
    // ssh-keygen verifies the CA signature when it loads a certificate: a
    // flipped bit in the signature makes it refuse the file.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let user = ssh_user_key(d, "id_ed25519", &["-t", "ed25519"]);
    for ca_alg in [KeyAlg::Ed25519, KeyAlg::Ec256, KeyAlg::Rsa2048] {
        let ca = KeyMaterial::generate(ca_alg).unwrap();
        let usernames = vec!["ubuntu".to_owned()];
        let issued = sign(
            &user_policy(),
            &ca,
            &SshRequest {
                usernames: &usernames,
                public_key: &user,
                ttl_secs: None,
                key_id: "k",
                serial: 1,
                now: now(),
            },
        )
        .unwrap();
        let (alg, b64) = issued.certificate.split_once(' ').unwrap();
        let mut bytes = B64.decode(b64).unwrap();
        let last = bytes.len() - 5;
        bytes[last] ^= 0x01;
        let bad = write(d, "bad-cert.pub", format!("{alg} {}\n", B64.encode(&bytes)));
        let out = output(Command::new(SSH_KEYGEN).arg("-L").arg("-f").arg(&bad));
        assert!(
            !out.status.success(),
            "{ca_alg}: a forged signature was accepted"
        );
        let good = write(d, "good-cert.pub", &issued.certificate);
        list_certificate(&good);
    }
}

#[test]
fn public_keys_are_read_by_openssl_and_ssh_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (alg, bits, kind) in [
        (KeyAlg::Ed25519, "256", "(ED25519)"),
        (KeyAlg::Ec256, "256", "(ECDSA)"),
        (KeyAlg::Ec384, "384", "(ECDSA)"),
        (KeyAlg::Rsa2048, "2048", "(RSA)"),
        (KeyAlg::Rsa3072, "3072", "(RSA)"),
        (KeyAlg::Rsa4096, "4096", "(RSA)"),
    ] {
        let k = KeyMaterial::generate(alg).unwrap();
        let p = k.public_key().unwrap();
        // openssl reads the PEM, and its DER is the raw form.
        let pem = write(d, "pub.pem", &p.pem);
        let der_path = d.join("pub.der");
        run(Command::new(OPENSSL)
            .args(["pkey", "-pubin", "-outform", "DER", "-in"])
            .arg(&pem)
            .arg("-out")
            .arg(&der_path));
        assert_eq!(
            std::fs::read(&der_path).unwrap(),
            B64.decode(&p.raw).unwrap(),
            "{alg}"
        );
        assert_eq!(std::fs::read(&der_path).unwrap(), k.spki_der().unwrap());
        // ssh-keygen reads the ssh line…
        let ssh = write(d, "pub.ssh", format!("{}\n", p.ssh));
        let l = run(Command::new(SSH_KEYGEN).arg("-l").arg("-f").arg(&ssh));
        assert!(l.starts_with(&format!("{bits} SHA256:")), "{alg}: {l}");
        assert!(l.trim_end().ends_with(kind), "{alg}: {l}");
        // openssl reads the stored private key (PKCS#8 v1) and derives the same public key.
        let key_pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            B64.encode(k.secret())
        );
        let key_path = write(d, "key.pem", key_pem);
        let derived = run(Command::new(OPENSSL)
            .args(["pkey", "-pubout", "-in"])
            .arg(&key_path));
        assert_eq!(derived, p.pem, "{alg}");
        // ssh-keygen converts the PEM to the same line (OpenSSH 9.2 converts
        // no Ed25519 PEM).
        if alg == KeyAlg::Ed25519 {
            continue;
        }
        let converted = run(Command::new(SSH_KEYGEN)
            .args(["-i", "-m", "PKCS8", "-f"])
            .arg(&pem));
        assert_eq!(converted.trim_end(), p.ssh, "{alg}");
    }
}

#[test]
fn openssl_accepts_self_signed_ca_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for alg in [
        KeyAlg::Ed25519,
        KeyAlg::Ec256,
        KeyAlg::Ec384,
        KeyAlg::Rsa2048,
    ] {
        let k = KeyMaterial::generate(alg).unwrap();
        let subject = CertificateSubject {
            common_name: "Coffer Test Root CA".into(),
            organization: Some("Example Ltd".into()),
            country: Some("NL".into()),
            locality: None,
            province: None,
        };
        let now = time::OffsetDateTime::now_utc();
        let pem = self_signed_ca(&k, &subject, 365, now).unwrap();
        let ca = write(d, "ca.pem", &pem);
        let text = run(Command::new(OPENSSL)
            .args(["x509", "-noout", "-text", "-in"])
            .arg(&ca));
        assert!(text.contains("CA:TRUE"), "{alg}: {text}");
        assert!(
            text.contains("Subject: C = NL, O = Example Ltd, CN = Coffer Test Root CA"),
            "{alg}: {text}"
        );
        assert!(
            text.contains("X509v3 Basic Constraints: critical"),
            "{text}"
        );
        assert!(text.contains("X509v3 Key Usage: critical"), "{text}");
        assert!(
            text.contains("Digital Signature, Certificate Sign, CRL Sign"),
            "{text}"
        );
        assert!(text.contains("X509v3 Subject Key Identifier"), "{text}");
        assert!(!text.contains("pathlen"), "{text}");
        let verify = run(Command::new(OPENSSL)
            .args(["verify", "-CAfile"])
            .arg(&ca)
            .arg(&ca));
        assert_eq!(verify.trim_end(), format!("{}: OK", ca.display()), "{alg}");
        // The certificate's public key is the key's.
        let cert_pub = run(Command::new(OPENSSL)
            .args(["x509", "-noout", "-pubkey", "-in"])
            .arg(&ca));
        assert_eq!(cert_pub, k.public_key().unwrap().pem);
        // The serial number is positive and at most 16 bytes.
        let serial = run(Command::new(OPENSSL)
            .args(["x509", "-noout", "-serial", "-in"])
            .arg(&ca));
        let hex = serial.trim().strip_prefix("serial=").unwrap();
        assert!(hex.len() <= 32 && !hex.starts_with('-'), "{serial}");
        // The key takes the certificate as its chain.
        let k = k.with_certificate_chain(&pem).unwrap();
        assert_eq!(k.certificate_chain(), Some(pem.as_str()));
    }
}

/// `openssl …` writing a key to `dir/name`: its contents.
fn openssl_key(dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
    let path = dir.join(name);
    run(Command::new(OPENSSL).args(args).arg("-out").arg(&path));
    std::fs::read(path).unwrap()
}

fn openssl_spki(dir: &Path, key: &[u8], der_input: bool) -> Vec<u8> {
    let input = write(dir, "in.key", key);
    let out = dir.join("spki.der");
    let mut cmd = Command::new(OPENSSL);
    cmd.args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(&input);
    if der_input {
        cmd.args(["-inform", "DER"]);
    }
    run(cmd.arg("-out").arg(&out));
    std::fs::read(out).unwrap()
}

#[test]
fn imports_keys_made_by_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ed = openssl_key(d, "ed.pem", &["genpkey", "-algorithm", "ED25519"]);
    let p256_sec1 = openssl_key(
        d,
        "p256.pem",
        &["ecparam", "-genkey", "-noout", "-name", "prime256v1"],
    );
    let p384 = openssl_key(
        d,
        "p384.pem",
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
        ],
    );
    openssl_key(
        d,
        "rsa2048.pem",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
    );
    let rsa_pkcs1 = openssl_key(
        d,
        "rsa1.pem",
        &[
            "rsa",
            "-traditional",
            "-in",
            d.join("rsa2048.pem").to_str().unwrap(),
        ],
    );
    let rsa_pkcs8 = openssl_key(
        d,
        "rsa8.pem",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:3072",
        ],
    );
    assert!(String::from_utf8_lossy(&p256_sec1).contains("BEGIN EC PRIVATE KEY"));
    assert!(String::from_utf8_lossy(&rsa_pkcs1).contains("BEGIN RSA PRIVATE KEY"));
    let p384_der = openssl_key(
        d,
        "p384.der",
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-outform",
            "DER",
            "-in",
            d.join("p384.pem").to_str().unwrap(),
        ],
    );

    for (alg, data, der_input) in [
        (KeyAlg::Ed25519, &ed, false),
        (KeyAlg::Ec256, &p256_sec1, false),
        (KeyAlg::Ec384, &p384, false),
        (KeyAlg::Ec384, &p384_der, true),
        (KeyAlg::Rsa2048, &rsa_pkcs1, false),
        (KeyAlg::Rsa3072, &rsa_pkcs8, false),
    ] {
        let k = KeyMaterial::import(alg, data).unwrap();
        assert_eq!(
            k.spki_der().unwrap(),
            openssl_spki(d, data, der_input),
            "{alg}"
        );
        // Stored as PKCS#8: openssl reads what Coffer keeps.
        assert_eq!(
            openssl_spki(d, k.secret(), true),
            k.spki_der().unwrap(),
            "{alg}"
        );
        // And it round-trips through the stored form.
        let back = KeyMaterial::from_stored(&k.to_stored()).unwrap();
        assert_eq!(back.spki_der().unwrap(), k.spki_der().unwrap());
        k.rcgen_key_pair().unwrap();
    }

    // Wrong algorithm, too weak, encrypted.
    let rsa1024 = openssl_key(
        d,
        "rsa1024.pem",
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
        ],
    );
    let encrypted = openssl_key(
        d,
        "enc.pem",
        &[
            "pkcs8",
            "-topk8",
            "-v2",
            "aes256",
            "-passout",
            "pass:secret",
            "-in",
            d.join("p384.pem").to_str().unwrap(),
        ],
    );
    for (alg, data, want) in [
        (
            KeyAlg::Ec256,
            &p384,
            "key-data holds an EC P-384 key, but alg EC256 needs an EC P-256 key",
        ),
        (
            KeyAlg::Ec384,
            &p256_sec1,
            "key-data holds an EC P-256 key, but alg EC384 needs an EC P-384 key",
        ),
        (
            KeyAlg::Rsa3072,
            &rsa_pkcs1,
            "key-data holds a 2048-bit RSA key, but alg RSA3072 needs a 3072-bit RSA key",
        ),
        (
            KeyAlg::Rsa2048,
            &ed,
            "key-data holds an Ed25519 key, but alg RSA2048 needs a 2048-bit RSA key",
        ),
        (
            KeyAlg::Ed25519,
            &p256_sec1,
            "key-data holds an EC P-256 key, but alg Ed25519 needs an Ed25519 key",
        ),
        (
            KeyAlg::Rsa2048,
            &rsa1024,
            "key-data holds an RSA key shorter than 2048 bits",
        ),
        (
            KeyAlg::Ec384,
            &encrypted,
            "key-data is an encrypted private key",
        ),
    ] {
        match KeyMaterial::import(alg, data) {
            Err(KeyError::Invalid(m)) => assert!(m.starts_with(want), "{want}: {m}"),
            other => panic!("{alg}: expected a refusal, got {other:?}"),
        }
    }
}
