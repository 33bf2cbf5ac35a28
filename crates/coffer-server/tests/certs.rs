//! Keys, encryption, SSH and PKI certificate issuers through the real
//! router: the wire shapes real clients read, policy refusals with their
//! reasons, permissions (an issuer never launders its key), unique
//! serials, issuance records and audit, revocation and the CRL. The
//! certificates themselves are checked with ssh-keygen, sshd and openssl
//! in `tests/system/test_certs.py` and `crates/coffer-keys/tests/`.
#![allow(clippy::expect_used)]

mod common;

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::Harness;
use serde_json::{Value, json};
use tower::ServiceExt;
use x509_parser::prelude::FromDer;

/// An OpenSSH public key line of a fresh Ed25519 key.
fn ssh_user_key() -> String {
    use aws_lc_rs::signature::KeyPair as _;
    let kp = aws_lc_rs::signature::Ed25519KeyPair::generate().unwrap();
    let pk: [u8; 32] = kp.public_key().as_ref().try_into().unwrap();
    let data = ssh_key::public::KeyData::Ed25519(ssh_key::public::Ed25519PublicKey(pk));
    ssh_key::PublicKey::from(data).to_openssh().unwrap()
}

fn csr_for(names: &[&str]) -> String {
    let kp = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, names[0]);
    params.serialize_request(&kp).unwrap().pem().unwrap()
}

async fn get_crl(h: &Harness, issuer: &str) -> (StatusCode, String) {
    let res = h
        .app
        .clone()
        .oneshot(
            Request::get(format!("/pki/crl{issuer}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn keys_encrypt_decrypt_rotate() {
    let h = Harness::new().await;
    for alg in ["AES128GCM", "AES256GCM", "AES128SIV", "AES256SIV"] {
        let name = format!("/keys/{alg}");
        let out = h
            .admin_ok("create-key", json!({"name": name, "alg": alg}))
            .await;
        assert!(out["item_id"].as_i64().unwrap() > 0, "{out}");
        assert!(out["display_id"].is_string());
        let ctx = json!({"app": "web", "env": "prod"});
        let ct = h
            .admin_ok(
                "encrypt",
                json!({"key-name": name, "plaintext": "artefact ✓", "encryption-context": ctx}),
            )
            .await["result"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!ct.contains("artefact"));
        let pt = h
            .admin_ok(
                "decrypt",
                json!({"key-name": name, "ciphertext": ct, "encryption-context": {"env": "prod", "app": "web"}}),
            )
            .await;
        assert_eq!(pt["result"], "artefact ✓", "context order does not matter");
        for wrong in [
            json!({"app": "web"}),
            json!({"app": "web", "env": "dev"}),
            json!({}),
        ] {
            let mut b = json!({"key-name": name, "ciphertext": ct, "encryption-context": wrong});
            b["token"] = json!(h.admin);
            h.fails_with("decrypt", b, StatusCode::BAD_REQUEST, "decryption failed")
                .await;
        }
        // Rotation: new ciphertexts use the new version, old ones decrypt.
        let r = h.admin_ok("rotate-key", json!({"name": name})).await;
        assert_eq!(r["new_item_version"], 2);
        let ct2 = h
            .admin_ok(
                "encrypt",
                json!({"key-name": name, "plaintext": "x", "encryption-context": ctx}),
            )
            .await["result"]
            .as_str()
            .unwrap()
            .to_owned();
        for c in [&ct, &ct2] {
            h.admin_ok(
                "decrypt",
                json!({"key-name": name, "ciphertext": c, "encryption-context": ctx}),
            )
            .await;
        }
        // AES keys have no public part.
        let mut b = json!({"name": name});
        b["token"] = json!(h.admin);
        h.fails_with(
            "get-rsa-public",
            b,
            StatusCode::BAD_REQUEST,
            "no public part",
        )
        .await;
    }
    // Binary plaintext: base64 in and out.
    h.admin_ok(
        "create-key",
        json!({"name": "/keys/bin", "alg": "aes256gcm"}),
    )
    .await;
    let ct = h
        .admin_ok(
            "encrypt",
            json!({"key-name": "/keys/bin", "plaintext": B64.encode([0u8, 255, 7]), "input-format": "base64"}),
        )
        .await["result"]
        .clone();
    let mut b = json!({"key-name": "/keys/bin", "ciphertext": ct});
    b["token"] = json!(h.admin);
    h.fails_with(
        "decrypt",
        b.clone(),
        StatusCode::BAD_REQUEST,
        "output-format base64",
    )
    .await;
    b["output-format"] = json!("base64");
    assert_eq!(
        h.ok("decrypt", b).await["result"],
        B64.encode([0u8, 255, 7])
    );
    // Refusals: weak or unauthenticated algorithms, options Coffer lacks.
    for (body, needle) in [
        (json!({"name": "/keys/x", "alg": "RSA1024"}), "RSA2048"),
        (json!({"name": "/keys/x", "alg": "AES256CBC"}), "integrity"),
        (json!({"name": "/keys/x", "alg": "DES"}), "not supported"),
        (
            json!({"name": "/keys/x", "alg": "AES256GCM", "customer-frg-id": "f"}),
            "customer-frg-id",
        ),
        (
            json!({"name": "/keys/x", "alg": "AES256GCM", "split-level": 2}),
            "split-level",
        ),
        (
            json!({"name": "/keys/x", "alg": "AES256GCM", "generate-self-signed-certificate": true, "certificate-ttl": 30}),
            "signing key",
        ),
    ] {
        let mut b = body;
        b["token"] = json!(h.admin);
        h.fails_with("create-key", b, StatusCode::BAD_REQUEST, needle)
            .await;
    }
    // The SDK defaults are accepted.
    h.admin_ok(
        "create-key",
        json!({"name": "/keys/sdk", "alg": "AES128GCM", "split-level": 3, "hash-algorithm": "SHA256"}),
    )
    .await;
}

#[tokio::test]
async fn public_keys_and_describe() {
    let h = Harness::new().await;
    for (alg, ssh_prefix) in [
        ("Ed25519", "ssh-ed25519 "),
        ("EC256", "ecdsa-sha2-nistp256 "),
        ("EC384", "ecdsa-sha2-nistp384 "),
        ("RSA2048", "ssh-rsa "),
    ] {
        let name = format!("/pk/{alg}");
        let out = h
            .admin_ok("create-classic-key", json!({"name": name, "alg": alg}))
            .await;
        assert_eq!(out["classic_key_type"], alg);
        assert!(
            out["public_key"]
                .as_str()
                .unwrap()
                .contains("BEGIN PUBLIC KEY")
        );
        let p = h.admin_ok("get-rsa-public", json!({"name": name})).await;
        assert!(
            p["pem"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        assert!(p["ssh"].as_str().unwrap().starts_with(ssh_prefix), "{p}");
        let raw = B64.decode(p["raw"].as_str().unwrap()).unwrap();
        assert!(!raw.is_empty());
        let d = h.admin_ok("describe-item", json!({"name": name})).await;
        assert_eq!(d["item_type"], "CLASSIC_KEY");
        assert_eq!(
            d["item_general_info"]["classic_key_details"]["key_type"],
            alg
        );
        assert_eq!(d["public_value"], p["ssh"]);
        // Nothing private in any answer.
        for v in [&out, &p, &d] {
            assert!(!v.to_string().contains("PRIVATE"), "{v}");
        }
    }
    let listed = h
        .admin_ok("list-items", json!({"type": ["classic-key"]}))
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 4, "{listed}");
    let listed = h.admin_ok("list-items", json!({"type": ["key"]})).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 4);
    // Importing: a PEM private key of the right type only.
    let kp = rcgen::KeyPair::generate().unwrap();
    h.admin_ok(
        "create-classic-key",
        json!({"name": "/pk/imported", "alg": "EC256", "key-data": kp.serialize_pem()}),
    )
    .await;
    let p = h
        .admin_ok("get-rsa-public", json!({"name": "/pk/imported"}))
        .await;
    assert_eq!(
        p["pem"].as_str().unwrap().trim(),
        kp.public_key_pem().trim()
    );
    let mut b = json!({"name": "/pk/wrong", "alg": "EC384", "key-data": kp.serialize_pem()});
    b["token"] = json!(h.admin);
    h.fails_with("create-classic-key", b, StatusCode::BAD_REQUEST, "key-data")
        .await;
}

/// A CA key, an SSH issuer and a PKI issuer; a CI identity allowed to
/// read the issuers only.
async fn setup_issuers(h: &Harness) -> (String, String) {
    h.admin_ok(
        "create-classic-key",
        json!({"name": "/ca/ssh", "alg": "Ed25519"}),
    )
    .await;
    h.admin_ok(
        "create-classic-key",
        json!({"name": "/ca/root", "alg": "EC256", "generate-self-signed-certificate": true,
               "certificate-ttl": 365, "certificate-common-name": "Coffer Test Root"}),
    )
    .await;
    h.admin_ok(
        "create-ssh-cert-issuer",
        json!({"name": "/issuers/ssh", "signer-key-name": "/ca/ssh", "allowed-users": "ubuntu,deploy",
               "ttl": 3600, "extensions": {"permit-pty": ""}}),
    )
    .await;
    h.admin_ok(
        "create-pki-cert-issuer",
        json!({"name": "/issuers/web", "signer-key-name": "/ca/root", "ttl": "86400",
               "allowed-domains": "example.com", "allow-subdomains": true, "server-flag": true,
               "allowed-ip-sans": "10.0.0.0/8", "organizations": "Acme"}),
    )
    .await;
    h.identity(
        "/ci/job",
        "ci-certs",
        "none",
        &[
            ("item-rule", "/issuers/*", &["read", "list"]),
            ("item-rule", "/mine/*", &["create", "update", "read"]),
        ],
    )
    .await
}

#[tokio::test]
async fn ssh_certificates() {
    let h = Harness::new().await;
    let (access_id, token) = setup_issuers(&h).await;
    let pk = ssh_user_key();
    let mut serials = HashSet::new();
    for _ in 0..20 {
        let out = h
            .ok(
                "get-ssh-certificate",
                json!({"token": token, "cert-issuer-name": "/issuers/ssh", "cert-username": "ubuntu",
                       "public-key-data": pk, "ttl": 600}),
            )
            .await;
        assert_eq!(out["path"], "");
        let cert = ssh_key::Certificate::from_openssh(out["data"].as_str().unwrap()).unwrap();
        assert_eq!(cert.valid_principals(), ["ubuntu".to_owned()]);
        assert!(
            cert.key_id().contains(&access_id) && cert.key_id().contains("/ci/job"),
            "key ID names the caller: {}",
            cert.key_id()
        );
        assert!(cert.valid_before() - cert.valid_after() <= 630);
        assert!(cert.extensions().contains_key("permit-pty"));
        assert!(serials.insert(cert.serial()), "serials are unique");
    }
    // Refusals, with their reason.
    let base = json!({"token": token, "cert-issuer-name": "/issuers/ssh", "public-key-data": pk});
    let with = |extra: Value| {
        let mut b = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    h.fails_with(
        "get-ssh-certificate",
        with(json!({"cert-username": "root"})),
        StatusCode::FORBIDDEN,
        "allowed-users",
    )
    .await;
    h.fails_with(
        "get-ssh-certificate",
        with(json!({"cert-username": "-"})),
        StatusCode::BAD_REQUEST,
        "cert-username",
    )
    .await;
    h.fails_with(
        "get-ssh-certificate",
        with(json!({"cert-username": "ubuntu", "ttl": 7200})),
        StatusCode::FORBIDDEN,
        "ttl",
    )
    .await;
    h.fails_with(
        "get-ssh-certificate",
        with(json!({"cert-username": "ubuntu", "public-key-data": "ssh-dss AAAA"})),
        StatusCode::BAD_REQUEST,
        "public-key-data",
    )
    .await;
    // The CI job cannot touch the CA key, nor make an issuer of it.
    h.fails(
        "get-rsa-public",
        json!({"token": token, "name": "/ca/ssh"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    h.fails(
        "create-ssh-cert-issuer",
        json!({"token": token, "name": "/mine/ssh", "signer-key-name": "/ca/ssh",
               "allowed-users": "root", "ttl": 60}),
        StatusCode::FORBIDDEN,
    )
    .await;
    // Records: 20 issued, each with the caller; audit has them.
    let listed = h
        .admin_ok("cert-list", json!({"cert-issuer-name": "/issuers/ssh"}))
        .await;
    let certs = listed["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 20);
    assert!(
        certs
            .iter()
            .all(|c| c["access_id"] == access_id && c["kind"] == "ssh")
    );
    let audit = h
        .audit_where(
            json!({"operation": "get-ssh-certificate", "outcome": "allowed", "limit": 100}),
        )
        .await;
    assert_eq!(audit.len(), 20);
    // Each record names the request that issued it, whose audit record it is.
    let audited: HashSet<&str> = audit
        .iter()
        .map(|r| r["request_id"].as_str().unwrap())
        .collect();
    assert!(
        certs
            .iter()
            .all(|c| audited.contains(c["request_id"].as_str().unwrap()))
    );
    // SSH certificates cannot be revoked centrally: said, not faked.
    let serial = certs[0]["serial_number"].as_str().unwrap();
    let mut b = json!({"cert-issuer-name": "/issuers/ssh", "serial-number": serial});
    b["token"] = json!(h.admin);
    h.fails_with(
        "revoke-certificate",
        b,
        StatusCode::BAD_REQUEST,
        "RevokedKeys",
    )
    .await;
    // describe-item shows the policy.
    let d = h
        .admin_ok("describe-item", json!({"name": "/issuers/ssh"}))
        .await;
    assert_eq!(d["item_type"], "SSH_CERT_ISSUER");
    assert_eq!(d["cert_issuer_signer_key_name"], "/ca/ssh");
    assert_eq!(
        d["certificate_issue_details"]["ssh_cert_issuer_details"]["allowed_users"],
        json!(["ubuntu", "deploy"])
    );
    // The key an issuer signs with cannot be deleted from under it.
    let mut b = json!({"name": "/ca/ssh"});
    b["token"] = json!(h.admin);
    h.fails_with("delete-item", b, StatusCode::CONFLICT, "/issuers/ssh")
        .await;
}

#[tokio::test]
async fn pki_certificates() {
    let h = Harness::new().await;
    let (access_id, token) = setup_issuers(&h).await;
    let csr = csr_for(&["api.example.com"]);
    let out = h
        .ok(
            "get-pki-certificate",
            json!({"token": token, "cert-issuer-name": "/issuers/web", "csr-data-base64": B64.encode(&csr)}),
        )
        .await;
    for k in [
        "data",
        "parent_cert",
        "cert_display_id",
        "path",
        "reading_token",
    ] {
        assert!(out[k].is_string(), "{k}: {out}");
    }
    assert!(out["data"].as_str().unwrap().contains("BEGIN CERTIFICATE"));
    let root = h
        .admin_ok("describe-item", json!({"name": "/ca/root"}))
        .await;
    assert_eq!(
        out["parent_cert"].as_str().unwrap().trim(),
        root["certificates"].as_str().unwrap().trim()
    );
    let pem = x509_parser::pem::parse_x509_pem(out["data"].as_str().unwrap().as_bytes())
        .unwrap()
        .1;
    let cert = pem.parse_x509().unwrap();
    assert!(cert.subject().to_string().contains("api.example.com"));
    assert!(cert.subject().to_string().contains("Acme"));
    // A bare public key works too (PEM text as GitLab's public_key_data sends it).
    let kp = rcgen::KeyPair::generate().unwrap();
    h.ok(
        "get-pki-certificate",
        json!({"token": token, "cert-issuer-name": "/issuers/web", "key-data-base64": kp.public_key_pem(),
               "common-name": "db.example.com", "alt-names": "db.example.com,10.1.2.3"}),
    )
    .await;
    // Out of policy: each refused, naming why.
    let req = |extra: Value| {
        let mut b = json!({"token": token, "cert-issuer-name": "/issuers/web",
                           "key-data-base64": kp.public_key_pem(), "common-name": "x.example.com"});
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    for (extra, needle) in [
        (json!({"common-name": "evil.org"}), "evil.org"),
        (json!({"alt-names": "192.168.1.1"}), "192.168.1.1"),
        (json!({"ttl": 100000}), "ttl"),
        (
            json!({"extended-key-usage": "clientauth"}),
            "extended-key-usage",
        ),
    ] {
        h.fails_with(
            "get-pki-certificate",
            req(extra),
            StatusCode::FORBIDDEN,
            needle,
        )
        .await;
    }
    h.fails_with(
        "get-pki-certificate",
        json!({"token": token, "cert-issuer-name": "/issuers/web", "csr-data-base64": B64.encode(csr_for(&["www.evil.org"]))}),
        StatusCode::FORBIDDEN,
        "evil.org",
    )
    .await;
    h.fails_with(
        "get-pki-certificate",
        json!({"token": token, "cert-issuer-name": "/issuers/web"}),
        StatusCode::BAD_REQUEST,
        "csr-data-base64",
    )
    .await;
    // Records and revocation; the CRL lists the revoked serial.
    let listed = h
        .ok(
            "cert-list",
            json!({"token": token, "cert-issuer-name": "/issuers/web"}),
        )
        .await;
    let certs = listed["certificates"].as_array().unwrap();
    assert_eq!(certs.len(), 2, "{listed}");
    assert!(
        certs
            .iter()
            .all(|c| c["access_id"] == access_id && c["kind"] == "pki")
    );
    let serial = out["cert_display_id"].as_str().unwrap();
    let (status, crl) = get_crl(&h, "/issuers/web").await;
    assert_eq!(status, StatusCode::OK, "{crl}");
    assert!(crl.contains("BEGIN X509 CRL"));
    h.fails(
        "revoke-certificate",
        json!({"token": token, "cert-issuer-name": "/issuers/web", "serial-number": serial}),
        StatusCode::FORBIDDEN,
    )
    .await;
    h.admin_ok(
        "revoke-certificate",
        json!({"cert-issuer-name": "/issuers/web", "serial-number": serial, "reason": "key leaked"}),
    )
    .await;
    let mut again = json!({"cert-issuer-name": "/issuers/web", "serial-number": serial});
    again["token"] = json!(h.admin);
    h.fails("revoke-certificate", again, StatusCode::CONFLICT)
        .await;
    let (_, crl) = get_crl(&h, "/issuers/web").await;
    let der = x509_parser::pem::parse_x509_pem(crl.as_bytes())
        .unwrap()
        .1
        .contents;
    let (_, parsed) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
    let revoked: Vec<String> = parsed
        .iter_revoked_certificates()
        .map(|r| r.raw_serial_as_string().replace(':', ""))
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        revoked[0].trim_start_matches('0'),
        serial.trim_start_matches('0')
    );
    let revoked_list = h.admin_ok("cert-list", json!({"revoked-only": true})).await;
    assert_eq!(
        revoked_list["certificates"][0]["revocation_reason"],
        "key leaked"
    );
    // A CRL for something that is not a PKI issuer: the same 404 as for
    // nothing at all (the public route reveals no item).
    let (status, _) = get_crl(&h, "/issuers/ssh").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = get_crl(&h, "/issuers/none").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // An issuer cannot be made on a key without a certificate, nor on an AES key.
    h.admin_ok("create-key", json!({"name": "/ca/aes", "alg": "AES256GCM"}))
        .await;
    for (signer, needle) in [("/ca/ssh", "no certificate"), ("/ca/aes", "AES256GCM")] {
        let mut b = json!({"name": "/issuers/bad", "signer-key-name": signer, "ttl": 60,
                           "allowed-domains": "example.com"});
        b["token"] = json!(h.admin);
        h.fails_with("create-pki-cert-issuer", b, StatusCode::BAD_REQUEST, needle)
            .await;
    }
}

#[tokio::test]
async fn intermediate_ca_chain() {
    let h = Harness::new().await;
    setup_issuers(&h).await;
    h.admin_ok(
        "create-pki-cert-issuer",
        json!({"name": "/issuers/root-ca", "signer-key-name": "/ca/root", "ttl": 86400 * 30,
               "allow-any-name": true, "is-ca": true, "max-path-len": 0}),
    )
    .await;
    h.admin_ok(
        "create-classic-key",
        json!({"name": "/ca/inter", "alg": "EC384"}),
    )
    .await;
    let pk = h
        .admin_ok("get-rsa-public", json!({"name": "/ca/inter"}))
        .await;
    let inter = h
        .admin_ok(
            "get-pki-certificate",
            json!({"cert-issuer-name": "/issuers/root-ca", "key-data-base64": B64.encode(pk["pem"].as_str().unwrap()),
                   "common-name": "Coffer Intermediate"}),
        )
        .await;
    let chain = format!(
        "{}\n{}",
        inter["data"].as_str().unwrap().trim(),
        inter["parent_cert"].as_str().unwrap().trim()
    );
    h.admin_ok(
        "update-classic-key-certificate",
        json!({"name": "/ca/inter", "cert-file-data": chain}),
    )
    .await;
    h.admin_ok(
        "create-pki-cert-issuer",
        json!({"name": "/issuers/inter", "signer-key-name": "/ca/inter", "ttl": 3600,
               "allowed-domains": "svc.internal", "allow-subdomains": true, "client-flag": true}),
    )
    .await;
    let leaf = h
        .admin_ok(
            "get-pki-certificate",
            json!({"cert-issuer-name": "/issuers/inter", "csr-data-base64": B64.encode(csr_for(&["a.svc.internal"]))}),
        )
        .await;
    let parent = leaf["parent_cert"].as_str().unwrap();
    assert_eq!(parent.matches("BEGIN CERTIFICATE").count(), 2, "{parent}");
    // A certificate that is not the key's own is refused.
    let mut b = json!({"name": "/ca/inter", "cert-file-data": leaf["data"]});
    b["token"] = json!(h.admin);
    h.fails("update-classic-key-certificate", b, StatusCode::BAD_REQUEST)
        .await;
}

// ---------------------------------------------------------------------------
// Security review (failing tests prove open issues; production code untouched)
// ---------------------------------------------------------------------------

/// A holder of `read` on an issuer can make an older certificate of theirs
/// unrevocable by asking for 1000 more: revoke-certificate only searches
/// the issuer's 1000 most recent records (`list_certificates` default
/// limit, newest first).
#[tokio::test]
async fn review_revocation_reaches_past_the_1000_most_recent() {
    let h = Harness::new().await;
    let (_, token) = setup_issuers(&h).await;
    let kp = rcgen::KeyPair::generate().unwrap();
    let ask = |cn: &str| {
        json!({"token": token, "cert-issuer-name": "/issuers/web",
               "key-data-base64": kp.public_key_pem(), "common-name": cn})
    };
    let first = h.ok("get-pki-certificate", ask("victim.example.com")).await;
    let serial = first["cert_display_id"].as_str().unwrap().to_owned();
    for _ in 0..1000 {
        h.ok("get-pki-certificate", ask("filler.example.com")).await;
    }
    let (status, out) = h
        .call(
            "revoke-certificate",
            json!({"token": h.admin, "cert-issuer-name": "/issuers/web", "serial-number": serial}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the leaked certificate must still be revocable: {out}"
    );
}

/// The anonymous CRL route answers differently for a missing name, a
/// static secret and an SSH issuer, naming the item's type: an
/// unauthenticated client can enumerate every item name and its type,
/// which the authenticated API deliberately hides ("missing" and "not
/// yours" get one answer).
#[tokio::test]
async fn review_crl_route_does_not_reveal_items_to_anonymous_clients() {
    let h = Harness::new().await;
    h.admin_ok(
        "create-secret",
        json!({"name": "/prod/db-password", "value": "s3cret"}),
    )
    .await;
    let (missing_status, missing_body) = get_crl(&h, "/prod/nothing-here").await;
    let (secret_status, secret_body) = get_crl(&h, "/prod/db-password").await;
    assert_eq!(
        missing_status, secret_status,
        "existence leaks through the status: {missing_body} vs {secret_body}"
    );
    assert!(
        !secret_body.to_ascii_lowercase().contains("secret"),
        "the item's type leaks to an anonymous client: {secret_body}"
    );
}

/// `seconds()` splits at `len - 1` bytes: a multi-byte last character
/// panics (an audited 500) instead of a 400.
#[tokio::test]
async fn review_ttl_with_a_multibyte_suffix_is_a_400_not_a_panic() {
    let h = Harness::new().await;
    let (_, token) = setup_issuers(&h).await;
    h.fails(
        "get-ssh-certificate",
        json!({"token": token, "cert-issuer-name": "/issuers/ssh", "cert-username": "ubuntu",
               "public-key-data": ssh_user_key(), "ttl": "1é"}),
        StatusCode::BAD_REQUEST,
    )
    .await;
}

fn crl_serials(crl: &str) -> Vec<String> {
    let der = x509_parser::pem::parse_x509_pem(crl.as_bytes())
        .unwrap()
        .1
        .contents;
    let (_, parsed) =
        x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
    parsed
        .iter_revoked_certificates()
        .map(|r| {
            r.raw_serial_as_string()
                .replace(':', "")
                .trim_start_matches('0')
                .to_owned()
        })
        .collect()
}

/// A CRL is the CA's (same issuer DN, same AKI, no issuingDistributionPoint
/// narrowing its scope) but is built from one issuer item's records: a
/// certificate revoked through issuer A is absent from the CRL served for
/// issuer B on the same CA key, and a relying party that fetched B's CRL
/// accepts it. Deleting (or deleting and re-creating) an issuer drops its
/// revocations too.
#[tokio::test]
async fn review_crl_lists_every_revocation_of_the_ca_key() {
    let h = Harness::new().await;
    let (_, token) = setup_issuers(&h).await;
    h.admin_ok(
        "create-pki-cert-issuer",
        json!({"name": "/issuers/web2", "signer-key-name": "/ca/root", "ttl": 86400,
               "allowed-domains": "example.com", "allow-subdomains": true, "server-flag": true}),
    )
    .await;
    let kp = rcgen::KeyPair::generate().unwrap();
    let out = h
        .ok(
            "get-pki-certificate",
            json!({"token": token, "cert-issuer-name": "/issuers/web",
                   "key-data-base64": kp.public_key_pem(), "common-name": "a.example.com"}),
        )
        .await;
    let serial = out["cert_display_id"].as_str().unwrap().to_owned();
    h.admin_ok(
        "revoke-certificate",
        json!({"cert-issuer-name": "/issuers/web", "serial-number": serial}),
    )
    .await;
    let (_, crl_a) = get_crl(&h, "/issuers/web").await;
    let (_, crl_b) = get_crl(&h, "/issuers/web2").await;
    let want = serial.trim_start_matches('0').to_owned();
    assert!(crl_serials(&crl_a).contains(&want));
    assert!(
        crl_serials(&crl_b).contains(&want),
        "the CRL of the same CA (via /issuers/web2) omits a revoked certificate of that CA"
    );
}

/// An `is-ca` issuer limited to example.com hands any `read` holder an
/// intermediate CA certificate without nameConstraints: with it they sign
/// certificates for any name, chaining to the root.
#[tokio::test]
async fn review_ca_certificates_carry_the_issuers_name_constraints() {
    let h = Harness::new().await;
    let (_, token) = setup_issuers(&h).await;
    h.admin_ok(
        "create-pki-cert-issuer",
        json!({"name": "/issuers/sub-ca", "signer-key-name": "/ca/root", "ttl": 86400,
               "allowed-domains": "example.com", "allow-subdomains": true, "is-ca": true}),
    )
    .await;
    let kp = rcgen::KeyPair::generate().unwrap();
    let out = h
        .ok(
            "get-pki-certificate",
            json!({"token": token, "cert-issuer-name": "/issuers/sub-ca",
                   "key-data-base64": kp.public_key_pem(), "common-name": "ca.example.com"}),
        )
        .await;
    let pem = x509_parser::pem::parse_x509_pem(out["data"].as_str().unwrap().as_bytes())
        .unwrap()
        .1;
    let cert = pem.parse_x509().unwrap();
    assert!(cert.is_ca(), "the issued certificate is a CA");
    assert!(
        cert.name_constraints().ok().flatten().is_some(),
        "an intermediate from an issuer limited to example.com must carry nameConstraints"
    );
}

/// OpenSSH (>= 8.5) matches host-certificate principals as patterns: a
/// host issuer with allowed-users `*` signs a host certificate for the
/// principal `*`, valid for every host that trusts the CA.
#[tokio::test]
async fn review_host_certificates_refuse_pattern_principals() {
    let h = Harness::new().await;
    let (_, token) = setup_issuers(&h).await;
    h.admin_ok(
        "create-ssh-cert-issuer",
        json!({"name": "/issuers/hosts", "signer-key-name": "/ca/ssh", "allowed-users": "*",
               "cert-type": "host", "ttl": 3600}),
    )
    .await;
    for name in ["*", "*.example.com", "web?"] {
        h.fails(
            "get-ssh-certificate",
            json!({"token": token, "cert-issuer-name": "/issuers/hosts", "cert-username": name,
                   "public-key-data": ssh_user_key()}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
}

/// The anonymous CRL route is outside the request pipeline: it ignores
/// --max-requests-in-flight and --request-timeout, and each call runs an
/// unindexed scan of the whole certificates table (every issuer, SSH and
/// expired records included: `SCAN certificates` + temp B-tree sort in
/// SQLite's plan), opens the CA key and signs a fresh CRL. With the server
/// saturated, anonymous CRL requests still get all that work done.
#[tokio::test]
async fn review_crl_route_respects_the_in_flight_limit() {
    let h = Harness::with_args(|a| a.max_requests_in_flight = Some(2)).await;
    setup_issuers(&h).await;
    let _held = h.state.in_flight.clone().try_acquire_many_owned(2).unwrap();
    let (status, _) = h.call("list-items", json!({"token": h.admin})).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "operations are capped"
    );
    let (status, _) = get_crl(&h, "/issuers/web").await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the CRL route does work while the server is saturated"
    );
}

/// After a CA key is rotated, what its earlier version signed stays
/// revocable: `?key-version=N` serves that version's CRL.
#[tokio::test]
async fn crl_of_an_earlier_key_version() {
    let h = Harness::new().await;
    setup_issuers(&h).await;
    let kp = rcgen::KeyPair::generate().unwrap();
    let out = h
        .admin_ok(
            "get-pki-certificate",
            json!({"cert-issuer-name": "/issuers/web", "key-data-base64": kp.public_key_pem(),
                   "common-name": "old.example.com"}),
        )
        .await;
    let serial = out["cert_display_id"].as_str().unwrap().to_owned();
    h.admin_ok(
        "revoke-certificate",
        json!({"cert-issuer-name": "/issuers/web", "serial-number": serial}),
    )
    .await;
    let r = h.admin_ok("rotate-key", json!({"name": "/ca/root"})).await;
    assert_eq!(r["new_item_version"], 2);
    let serials = |pem: &str| -> Vec<String> {
        let der = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .unwrap()
            .1
            .contents;
        let (_, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&der).unwrap();
        crl.iter_revoked_certificates()
            .map(|r| r.raw_serial_as_string().replace(':', ""))
            .collect()
    };
    let (status, now) = get_crl(&h, "/issuers/web").await;
    assert_eq!(status, StatusCode::OK, "{now}");
    assert!(
        serials(&now).is_empty(),
        "the new version signed nothing revoked"
    );
    let (status, old) = get_crl(&h, "/issuers/web?key-version=1").await;
    assert_eq!(status, StatusCode::OK, "{old}");
    assert_eq!(serials(&old), vec![serial.clone()]);
    for bad in ["?key-version=x", "?key-version=0", "?version=1"] {
        let (status, _) = get_crl(&h, &format!("/issuers/web{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, _) = get_crl(&h, "/issuers/web?key-version=9").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
