//! End to end: keys, SSH and PKI certificate issuers and the issued
//! certificates, through the real `coffer` binary against a real
//! `coffer server --dev`, checked with OpenSSH's and OpenSSL's own tools
//! (`ssh-keygen -L`, `openssl verify` with the CRL).
// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

mod support;

use support::*;
#[test]
fn keys_issuers_and_certificates_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let server = Server::start(&dir.join("data"));
    let (admin_id, admin_key) = server.bootstrap_credentials();
    let cli = Cli {
        home: dir.join("home"),
    };
    cli.run(&[
        "configure",
        "--access-id",
        &admin_id,
        "--access-key",
        &admin_key,
        "--gateway-url",
        &server.url(),
    ])
    .ok();

    // ---- keys: a CA key with a self-signed certificate, an SSH CA key ----
    let out = cli
        .run(&[
            "create-classic-key",
            "--name",
            "/keys/ca",
            "--alg",
            "EC256",
            "--generate-self-signed-certificate",
            "--certificate-ttl",
            "365",
            "--certificate-common-name",
            "Coffer Test CA",
            "--tag",
            "ca",
        ])
        .ok();
    assert!(
        out.stdout.starts_with("Created key /keys/ca (EC256, id ")
            && out.stdout.contains("-----BEGIN PUBLIC KEY-----"),
        "{out:#?}"
    );
    cli.run(&[
        "create-classic-key",
        "--name",
        "/keys/ssh",
        "--alg",
        "Ed25519",
    ])
    .ok();
    let public = cli.run(&["get-rsa-public", "--name", "/keys/ssh"]).ok();
    let ssh_ca_line = public
        .stdout
        .lines()
        .find(|l| l.starts_with("ssh-ed25519 "))
        .unwrap_or_else(|| panic!("no OpenSSH line: {public:#?}"))
        .to_string();
    let described = cli
        .run(&["describe-item", "--name", "/keys/ca", "--json"])
        .ok()
        .json();
    assert!(
        described.to_string().contains("BEGIN CERTIFICATE"),
        "{described}"
    );

    // ---- issuers ----
    cli.run(&[
        "create-pki-cert-issuer",
        "--name",
        "/pki/web",
        "--signer-key-name",
        "/keys/ca",
        "--ttl",
        "86400",
        "--allowed-domains",
        "example.com",
        "--allow-subdomains",
        "--server-flag",
        "--key-usage",
        "DigitalSignature,KeyEncipherment",
    ])
    .ok();
    let out = cli
        .run(&[
            "create-ssh-cert-issuer",
            "--name",
            "/ssh/ca",
            "--signer-key-name",
            "/keys/ssh",
            "--allowed-users",
            "deploy,ops",
            "--ttl",
            "3600",
            "--extensions",
            "permit-pty",
        ])
        .ok();
    assert_eq!(out.stdout, "Created SSH certificate issuer /ssh/ca\n");

    // ---- an SSH certificate, written next to the public key ----
    let key = dir.join("id");
    tool(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "e2e",
            "-f",
            path_str(&key),
        ],
    )
    .ok();
    let public_key = dir.join("id.pub");
    let out = cli
        .run(&[
            "get-ssh-certificate",
            "--cert-issuer-name",
            "/ssh/ca",
            "--cert-username",
            "deploy",
            "--public-key-file-path",
            path_str(&public_key),
            "--ttl",
            "600",
        ])
        .ok();
    let cert = dir.join("id-cert.pub");
    assert_eq!(out.stdout.trim(), path_str(&cert));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cert).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }
    let listed = tool("ssh-keygen", &["-L", "-f", path_str(&cert)]).ok();
    let text = listed.stdout;
    assert!(
        text.contains("Type: ssh-ed25519-cert-v01@openssh.com user certificate"),
        "{text}"
    );
    let principals = text
        .split("Principals:")
        .nth(1)
        .and_then(|rest| rest.lines().nth(1))
        .map(str::trim)
        .unwrap_or_default();
    assert_eq!(principals, "deploy", "{text}");
    assert!(text.contains("permit-pty"), "{text}");
    // Signed by the issuer's key.
    let ca_file = dir.join("ssh_ca.pub");
    std::fs::write(&ca_file, format!("{ssh_ca_line}\n")).unwrap();
    let fingerprint = tool("ssh-keygen", &["-l", "-f", path_str(&ca_file)]).ok();
    let fingerprint = fingerprint.stdout.split_whitespace().nth(1).unwrap();
    assert!(
        text.contains(&format!("Signing CA: ED25519 {fingerprint}")),
        "{text}"
    );
    // A user the issuer does not allow, and a private key given by mistake.
    cli.run(&[
        "get-ssh-certificate",
        "--cert-issuer-name",
        "/ssh/ca",
        "--cert-username",
        "root",
        "--public-key-file-path",
        path_str(&public_key),
    ])
    .failed();
    let err = cli
        .run(&[
            "get-ssh-certificate",
            "--cert-issuer-name",
            "/ssh/ca",
            "--cert-username",
            "deploy",
            "--public-key-file-path",
            path_str(&key),
        ])
        .failed();
    assert!(err.stderr.contains("private key"), "{err:#?}");
    // --public-key-data prints the certificate.
    let line = std::fs::read_to_string(&public_key).unwrap();
    let out = cli
        .run(&[
            "get-ssh-certificate",
            "--cert-issuer-name",
            "/ssh/ca",
            "--cert-username",
            "ops",
            "--public-key-data",
            line.trim(),
        ])
        .ok();
    assert!(
        out.stdout.starts_with("ssh-ed25519-cert-v01@openssh.com "),
        "{out:#?}"
    );

    // ---- a PKI certificate for a CSR ----
    let csr = dir.join("csr.pem");
    tool(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            path_str(&dir.join("k.pem")),
            "-out",
            path_str(&csr),
            "-subj",
            "/CN=api.example.com",
        ],
    )
    .ok();
    let issued = cli
        .run(&[
            "get-pki-certificate",
            "--cert-issuer-name",
            "/pki/web",
            "--csr-file-path",
            path_str(&csr),
            "--ttl",
            "3600",
        ])
        .ok()
        .json();
    let leaf = issued["data"].as_str().unwrap();
    let chain = issued["parent_cert"].as_str().unwrap();
    let serial = issued["cert_display_id"].as_str().unwrap().to_string();
    assert!(leaf.contains("-----BEGIN CERTIFICATE-----"), "{issued}");
    assert!(!serial.is_empty(), "{issued}");
    let leaf_file = dir.join("leaf.pem");
    let chain_file = dir.join("chain.pem");
    std::fs::write(&leaf_file, leaf).unwrap();
    std::fs::write(&chain_file, chain).unwrap();
    let verified = tool(
        "openssl",
        &[
            "verify",
            "-CAfile",
            path_str(&chain_file),
            path_str(&leaf_file),
        ],
    )
    .ok();
    assert!(verified.stdout.contains(": OK"), "{verified:#?}");
    let subject = tool(
        "openssl",
        &[
            "x509",
            "-in",
            path_str(&leaf_file),
            "-noout",
            "-serial",
            "-subject",
        ],
    )
    .ok();
    assert!(subject.stdout.contains("api.example.com"), "{subject:#?}");
    assert!(
        subject
            .stdout
            .lines()
            .any(|l| l.starts_with("serial=") && hex_digits(&l[7..]) == hex_digits(&serial)),
        "{subject:#?} vs {serial}"
    );
    // A name outside the issuer's domains is refused.
    let other_csr = dir.join("other.pem");
    tool(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            path_str(&dir.join("k2.pem")),
            "-out",
            path_str(&other_csr),
            "-subj",
            "/CN=evil.test",
        ],
    )
    .ok();
    cli.run(&[
        "get-pki-certificate",
        "--cert-issuer-name",
        "/pki/web",
        "--csr-file-path",
        path_str(&other_csr),
    ])
    .failed();

    // ---- the issued certificates: list, revoke, CRL ----
    let listed = cli
        .run(&["cert", "list", "--cert-issuer-name", "/pki/web"])
        .ok();
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert!(lines[0].starts_with("SERIAL"), "{listed:#?}");
    assert_eq!(lines.len(), 2, "one certificate: {listed:#?}");
    assert!(
        lines[1].starts_with(&serial) && lines[1].contains("api.example.com"),
        "{listed:#?}"
    );
    let all = cli.run(&["cert", "list", "--json"]).ok().json();
    let certs = all["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 3, "two SSH, one PKI: {all}");
    assert!(
        certs
            .iter()
            .any(|c| c["kind"] == "ssh" && c["issuer_name"] == "/ssh/ca"),
        "{all}"
    );
    let out = cli
        .run(&[
            "cert",
            "revoke",
            "--cert-issuer-name",
            "/pki/web",
            "--serial-number",
            &serial,
            "--reason",
            "key compromise",
        ])
        .ok();
    assert!(out.stdout.starts_with("Revoked certificate "), "{out:#?}");
    let revoked = cli
        .run(&["cert", "list", "--revoked-only", "--json"])
        .ok()
        .json();
    let revoked = revoked["certificates"].as_array().unwrap();
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0]["revoked"], true);
    assert_eq!(revoked[0]["revocation_reason"], "key compromise");
    let crl = cli
        .run(&["cert", "crl", "--cert-issuer-name", "/pki/web"])
        .ok();
    assert!(crl.stdout.contains("-----BEGIN X509 CRL-----"), "{crl:#?}");
    let crl_file = dir.join("crl.pem");
    std::fs::write(&crl_file, &crl.stdout).unwrap();
    let crl_text = tool(
        "openssl",
        &["crl", "-in", path_str(&crl_file), "-noout", "-text"],
    )
    .ok();
    assert!(
        crl_text.stdout.lines().any(|l| l
            .trim()
            .strip_prefix("Serial Number:")
            .is_some_and(|s| hex_digits(s) == hex_digits(&serial))),
        "{crl_text:#?}"
    );
    let checked = tool(
        "openssl",
        &[
            "verify",
            "-crl_check",
            "-CRLfile",
            path_str(&crl_file),
            "-CAfile",
            path_str(&chain_file),
            path_str(&leaf_file),
        ],
    );
    assert_ne!(checked.code, 0, "{checked:#?}");
    assert!(
        format!("{}{}", checked.stdout, checked.stderr).contains("revoked"),
        "{checked:#?}"
    );
    cli.run(&["cert", "crl", "--cert-issuer-name", "/ssh/ca"])
        .failed();

    // ---- issuer and key updates ----
    cli.run(&[
        "update-ssh-cert-issuer",
        "--name",
        "/ssh/ca",
        "--ttl",
        "7200",
    ])
    .ok();
    cli.run(&[
        "update-pki-cert-issuer",
        "--name",
        "/pki/web",
        "--allowed-domains",
        "example.com,example.org",
    ])
    .ok();
    let issuer = cli
        .run(&["describe-item", "--name", "/pki/web", "--json"])
        .ok()
        .json();
    let details = &issuer["certificate_issue_details"];
    assert_eq!(details["max_ttl"], 86400, "the ttl stays: {issuer}");
    assert_eq!(
        details["pki_cert_issuer_details"]["allowed_domains_list"],
        serde_json::json!(["example.com", "example.org"]),
        "{issuer}"
    );
    let ca_cert = dir.join("ca-cert.pem");
    std::fs::write(&ca_cert, described["certificates"].as_str().unwrap()).unwrap();
    let out = cli
        .run(&[
            "update-classic-key-certificate",
            "--name",
            "/keys/ca",
            "--cert-file-path",
            path_str(&ca_cert),
        ])
        .ok();
    assert_eq!(
        out.stdout,
        "Attached the certificate to key /keys/ca: version 2\n"
    );
    // A certificate of another key is refused.
    cli.run(&[
        "update-classic-key-certificate",
        "--name",
        "/keys/ca",
        "--cert-file-path",
        path_str(&leaf_file),
    ])
    .failed();

    // ---- encrypt / decrypt with an encryption context ----
    cli.run(&["create-key", "--name", "/keys/aes", "--alg", "AES256GCM"])
        .ok();
    let ciphertext = cli
        .run(&[
            "encrypt",
            "--key-name",
            "/keys/aes",
            "--plaintext",
            "hello coffer",
            "--encryption-context",
            "app=web",
            "--encryption-context",
            "env=prod",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(!ciphertext.is_empty() && !ciphertext.contains("hello"));
    let plain = cli
        .run(&[
            "decrypt",
            "--key-name",
            "/keys/aes",
            "--ciphertext",
            &ciphertext,
            "--encryption-context",
            "env=prod",
            "--encryption-context",
            "app=web",
        ])
        .ok();
    assert_eq!(plain.stdout, "hello coffer\n");
    for context in [
        &[
            "--encryption-context",
            "app=db",
            "--encryption-context",
            "env=prod",
        ][..],
        &[],
    ] {
        let mut args = vec![
            "decrypt",
            "--key-name",
            "/keys/aes",
            "--ciphertext",
            &ciphertext,
        ];
        args.extend_from_slice(context);
        let err = cli.run(&args).failed();
        assert!(!err.stderr.contains("hello coffer"), "{err:#?}");
    }
    // Rotation: a new version; the old ciphertext still decrypts.
    let out = cli.run(&["rotate-key", "--name", "/keys/aes"]).ok();
    assert!(
        out.stdout.starts_with("Rotated key /keys/aes: version 2"),
        "{out:#?}"
    );
    cli.run(&[
        "decrypt",
        "--key-name",
        "/keys/aes",
        "--ciphertext",
        &ciphertext,
        "--encryption-context",
        "app=web",
        "--encryption-context",
        "env=prod",
    ])
    .ok();
    let binary = cli
        .run(&[
            "encrypt",
            "--key-name",
            "/keys/aes",
            "--plaintext",
            "AAEC/w==",
            "--input-format",
            "base64",
            "--json",
        ])
        .ok()
        .json();
    let out = cli
        .run(&[
            "decrypt",
            "--key-name",
            "/keys/aes",
            "--ciphertext",
            binary["result"].as_str().unwrap(),
            "--output-format",
            "base64",
        ])
        .ok();
    assert_eq!(out.stdout, "AAEC/w==\n");
}
