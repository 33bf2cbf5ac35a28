//! Client-certificate (`cert`) logins and OIDC methods in process: a real CA and client
//! certificates made with rcgen, the challenge signed with the client's
//! key, every refusal the method promises.

mod common;

use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::Harness;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber, SigningKey,
};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

/// A CA: its parameters and key sign client certificates.
struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// What a client certificate says.
struct Leaf<'a> {
    cn: &'a str,
    ou: Option<&'a str>,
    dns: &'a [&'a str],
    email: Option<&'a str>,
    serial: u64,
    /// Valid from now + .0 to now + .1.
    valid: (Duration, Duration),
    eku: Vec<ExtendedKeyUsagePurpose>,
    ext: Option<(&'a [u64], &'a str)>,
}

impl Default for Leaf<'_> {
    fn default() -> Self {
        Leaf {
            cn: "client-a",
            ou: None,
            dns: &[],
            email: None,
            serial: 0x1001,
            valid: (Duration::minutes(-5), Duration::minutes(30)),
            eku: vec![ExtendedKeyUsagePurpose::ClientAuth],
            ext: None,
        }
    }
}

/// A client certificate (PEM) and its key.
struct Client {
    pem: String,
    key: KeyPair,
}

impl Client {
    fn b64(&self) -> String {
        STANDARD.encode(&self.pem)
    }
}

fn issue(ca: &Ca, leaf: Leaf<'_>) -> Client {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, leaf.cn);
    if let Some(ou) = leaf.ou {
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, ou);
    }
    for d in leaf.dns {
        p.subject_alt_names
            .push(SanType::DnsName((*d).try_into().unwrap()));
    }
    if let Some(e) = leaf.email {
        p.subject_alt_names
            .push(SanType::Rfc822Name(e.try_into().unwrap()));
    }
    p.serial_number = Some(SerialNumber::from(leaf.serial));
    let now = OffsetDateTime::now_utc();
    p.not_before = now + leaf.valid.0;
    p.not_after = now + leaf.valid.1;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = leaf.eku;
    if let Some((oid, value)) = leaf.ext {
        // A UTF8String.
        let mut content = vec![0x0c, u8::try_from(value.len()).unwrap()];
        content.extend_from_slice(value.as_bytes());
        p.custom_extensions = vec![CustomExtension::from_oid_content(oid, content)];
    }
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let pem = p.signed_by(&key, &issuer).unwrap().pem();
    Client { pem, key }
}

/// A cert method named `name` trusting `ca`, with `extra` settings; a role
/// reading `/cert/*` associated for common name `client-a`.
async fn method(h: &Harness, name: &str, ca: &Ca, extra: Value) -> String {
    let mut body = json!({
        "name": name,
        "certificate-data": STANDARD.encode(&ca.pem),
        "unique-identifier": "common_name",
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let v = h.admin_ok("create-auth-method-cert", body).await;
    let id = v["access_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("p-"), "{v}");
    let role = format!("{name}-role");
    h.admin_ok("create-role", json!({"name": role})).await;
    h.admin_ok(
        "set-role-rule",
        json!({"role-name": role, "path": "/cert/*", "capability": ["read"]}),
    )
    .await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": role, "am-name": name, "sub-claims": {"common_name": "client-a"}}),
    )
    .await;
    id
}

async fn challenge(h: &Harness, id: &str, client: &Client) -> String {
    let v = h
        .ok(
            "get-cert-challenge",
            json!({"access-id": id, "cert-data": client.b64()}),
        )
        .await;
    v["challenge"].as_str().unwrap().to_owned()
}

/// The challenge signed as a client must: behind Coffer's prefix.
fn sign(key: &KeyPair, challenge: &str) -> String {
    let mut msg = b"coffer-cert-login-v1\0".to_vec();
    msg.extend_from_slice(challenge.as_bytes());
    STANDARD.encode(key.sign(&msg).unwrap())
}

fn auth_body(id: &str, client: &Client, challenge: &str, signature: &str) -> Value {
    json!({
        "access-id": id,
        "access-type": "cert",
        "cert-data": client.b64(),
        "cert-challenge": challenge,
        "signed-cert-challenge": signature,
    })
}

/// The whole login; returns the `auth` response.
async fn login(h: &Harness, id: &str, client: &Client) -> (StatusCode, Value) {
    let (s, v) = h
        .call(
            "get-cert-challenge",
            json!({"access-id": id, "cert-data": client.b64()}),
        )
        .await;
    if s != StatusCode::OK {
        return (s, v);
    }
    let c = v["challenge"].as_str().unwrap().to_owned();
    h.call("auth", auth_body(id, client, &c, &sign(&client.key, &c)))
        .await
}

fn error(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn login_reads_with_certificate_claims_and_challenge_is_single_use() {
    let h = Harness::new().await;
    let ca = ca("Coffer Test CA");
    let id = method(
        &h,
        "certs",
        &ca,
        json!({"bound-common-names": ["client-*"], "jwt-ttl": 600}),
    )
    .await;
    h.admin_ok(
        "create-secret",
        json!({"name": "/cert/db", "value": "cert-secret"}),
    )
    .await;
    let client = issue(
        &ca,
        Leaf {
            ou: Some("payments"),
            dns: &["a.svc.example"],
            email: Some("a@example.com"),
            ..Default::default()
        },
    );
    let c = challenge(&h, &id, &client).await;
    let body = auth_body(&id, &client, &c, &sign(&client.key, &c));
    let v = h.ok("auth", body.clone()).await;
    let token = v["token"].as_str().unwrap().to_owned();
    let claims = &v["creds"]["sub_claims"];
    assert_eq!(claims["common_name"], json!(["client-a"]), "{v}");
    assert_eq!(claims["organizational_unit"], json!(["payments"]));
    assert_eq!(claims["dns_sans"], json!(["a.svc.example"]));
    assert_eq!(claims["email_sans"], json!(["a@example.com"]));
    assert_eq!(claims["serial_number"], json!(["1001"]));
    // The token ends no later than the certificate (30 min), not after the
    // method's 10 hours.
    let expiry = v["creds"]["expiry"].as_i64().unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp();
    assert!(expiry <= now + 30 * 60 + 5, "{expiry} vs {now}");
    let got = h
        .ok(
            "get-secret-value",
            json!({"token": token, "names": ["/cert/db"]}),
        )
        .await;
    assert_eq!(got["/cert/db"], "cert-secret");

    // The same challenge and signature again: refused (single use).
    let (s, v) = h.call("auth", body).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("already used"), "{v}");

    // A fresh challenge logs in again.
    let (s, v) = login(&h, &id, &client).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Another client of the same CA whose CN is bound but matches no
    // association: logs in, reads nothing.
    let b = issue(
        &ca,
        Leaf {
            cn: "client-b",
            serial: 0x1002,
            ..Default::default()
        },
    );
    let (s, v) = login(&h, &id, &b).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = h
        .call(
            "get-secret-value",
            json!({"token": v["token"], "names": ["/cert/db"]}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn challenge_proofs_are_checked() {
    let h = Harness::new().await;
    let ca = ca("Coffer Test CA");
    let id = method(&h, "certs", &ca, json!({})).await;
    let client = issue(&ca, Leaf::default());
    let other = issue(
        &ca,
        Leaf {
            serial: 0x2002,
            ..Default::default()
        },
    );

    // Signed by another key (a valid certificate's, but not this one's).
    let c = challenge(&h, &id, &client).await;
    let (s, v) = h
        .call("auth", auth_body(&id, &client, &c, &sign(&other.key, &c)))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(
        error(&v).contains("not a signature of the challenge"),
        "{v}"
    );

    // The bare challenge text signed by the right key (no prefix): refused,
    // so a signature of a server-chosen text is never a login proof, nor a
    // login proof a signature of anything else.
    let (s, v) = h
        .call(
            "auth",
            auth_body(
                &id,
                &client,
                &c,
                &STANDARD.encode(client.key.sign(c.as_bytes()).unwrap()),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(
        error(&v).contains("not a signature of the challenge"),
        "{v}"
    );

    // A challenge issued for another certificate: refused even when signed
    // by that certificate's key and presented with it swapped in.
    let c_other = challenge(&h, &id, &other).await;
    let (s, v) = h
        .call(
            "auth",
            auth_body(&id, &client, &c_other, &sign(&client.key, &c_other)),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("not issued by this server"), "{v}");

    // A tampered challenge (its expiry moved): the MAC fails.
    let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&c)
        .unwrap();
    raw[20] ^= 1;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    let (s, v) = h
        .call(
            "auth",
            auth_body(&id, &client, &forged, &sign(&client.key, &forged)),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("not issued by this server"), "{v}");

    // No challenge at all: told how to get one.
    let (s, v) = h
        .call(
            "auth",
            json!({"access-id": id, "access-type": "cert", "cert-data": client.b64()}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error(&v).contains("get-cert-challenge"), "{v}");

    // A private key is never accepted, at either step, and not used.
    let key_pem = STANDARD.encode(client.key.serialize_pem());
    let mut body = auth_body(&id, &client, &c, &sign(&client.key, &c));
    body["key-data"] = json!(key_pem);
    let (s, v) = h.call("auth", body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error(&v).contains("never accepts a private key"), "{v}");
    let (s, v) = h
        .call(
            "get-cert-challenge",
            json!({"access-id": id, "cert-data": client.b64(), "key-data": key_pem}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error(&v).contains("never accepts a private key"), "{v}");
    // The refused requests did not burn the untouched challenge `c`.
    let (s, v) = h
        .call("auth", auth_body(&id, &client, &c, &sign(&client.key, &c)))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // A cert-data holding a private key is refused too.
    let (s, v) = h
        .call(
            "get-cert-challenge",
            json!({"access-id": id, "cert-data": STANDARD.encode(format!("{}{}", client.pem, client.key.serialize_pem()))}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error(&v).contains("private key"), "{v}");
}

#[tokio::test]
async fn certificates_are_checked() {
    let h = Harness::new().await;
    let ca1 = ca("Coffer Test CA");
    let id = method(
        &h,
        "certs",
        &ca1,
        json!({
            "bound-common-names": "client-*",
            "bound-dns-sans": ["*.svc.example"],
            "revoked-cert-ids": ["00:BA:D1"],
        }),
    )
    .await;
    let good = issue(
        &ca1,
        Leaf {
            dns: &["a.svc.example"],
            ..Default::default()
        },
    );
    let (s, v) = login(&h, &id, &good).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let cases: Vec<(&str, Client, &str)> = vec![
        (
            "wrong CA",
            issue(
                &ca("Another CA"),
                Leaf {
                    dns: &["a.svc.example"],
                    ..Default::default()
                },
            ),
            "does not chain to the CA",
        ),
        (
            "expired",
            issue(
                &ca1,
                Leaf {
                    dns: &["a.svc.example"],
                    valid: (Duration::days(-2), Duration::days(-1)),
                    ..Default::default()
                },
            ),
            "expired",
        ),
        (
            "not yet valid",
            issue(
                &ca1,
                Leaf {
                    dns: &["a.svc.example"],
                    valid: (Duration::days(1), Duration::days(2)),
                    ..Default::default()
                },
            ),
            "not valid yet",
        ),
        (
            "revoked serial",
            issue(
                &ca1,
                Leaf {
                    dns: &["a.svc.example"],
                    serial: 0xbad1,
                    ..Default::default()
                },
            ),
            "is revoked",
        ),
        (
            "unbound CN",
            issue(
                &ca1,
                Leaf {
                    cn: "intruder",
                    dns: &["a.svc.example"],
                    ..Default::default()
                },
            ),
            "matches none of bound-common-names",
        ),
        (
            "unbound DNS SAN",
            issue(
                &ca1,
                Leaf {
                    dns: &["a.other.example"],
                    ..Default::default()
                },
            ),
            "matches none of bound-dns-sans",
        ),
        (
            "server-only certificate",
            issue(
                &ca1,
                Leaf {
                    dns: &["a.svc.example"],
                    eku: vec![ExtendedKeyUsagePurpose::ServerAuth],
                    ..Default::default()
                },
            ),
            "clientAuth",
        ),
    ];
    for (what, client, needle) in cases {
        // Refused at the challenge step already…
        let (s, v) = h
            .call(
                "get-cert-challenge",
                json!({"access-id": id, "cert-data": client.b64()}),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {v}");
        assert!(error(&v).contains(needle), "{what}: {v}");
        // …and at login, even with a challenge issued for a good
        // certificate and a signature by the presented certificate's key.
        let c = challenge(&h, &id, &good).await;
        let (s, v) = h
            .call("auth", auth_body(&id, &client, &c, &sign(&client.key, &c)))
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {v}");
        assert!(error(&v).contains(needle), "{what}: {v}");
    }

    // A CA certificate cannot log in as itself.
    let (s, v) = h
        .call(
            "get-cert-challenge",
            json!({"access-id": id, "cert-data": STANDARD.encode(&ca1.pem)}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
}

#[tokio::test]
async fn extensions_and_organizational_units_bind() {
    let h = Harness::new().await;
    let ca = ca("Coffer Test CA");
    let oid: &[u64] = &[1, 3, 6, 1, 4, 1, 55555, 1];
    let id = method(
        &h,
        "certs",
        &ca,
        json!({
            "bound-organizational-units": ["team-*"],
            "bound-extensions": ["1.3.6.1.4.1.55555.1:prod-*"],
            "unique-identifier": "organizational_unit",
        }),
    )
    .await;
    let ok = issue(
        &ca,
        Leaf {
            ou: Some("team-red"),
            ext: Some((oid, "prod-eu")),
            ..Default::default()
        },
    );
    let (s, v) = login(&h, &id, &ok).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = h.call("validate-token", json!({"token": v["token"]})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for (leaf, needle) in [
        (
            Leaf {
                ou: Some("team-red"),
                ext: Some((oid, "dev-eu")),
                ..Default::default()
            },
            "does not match bound-extensions",
        ),
        (
            Leaf {
                ou: Some("team-red"),
                ..Default::default()
            },
            "has no extension 1.3.6.1.4.1.55555.1",
        ),
        (
            Leaf {
                ou: Some("ops"),
                ext: Some((oid, "prod-eu")),
                ..Default::default()
            },
            "matches none of bound-organizational-units",
        ),
    ] {
        let (s, v) = login(&h, &id, &issue(&ca, leaf)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert!(error(&v).contains(needle), "{v}");
    }
}

#[tokio::test]
async fn method_settings_render_explain_and_delete() {
    let h = Harness::new().await;
    let ca = ca("Coffer Test CA");

    // Refusals at creation change nothing.
    for (body, needle) in [
        (
            json!({"name": "bad", "certificate-data": STANDARD.encode(&ca.pem), "require-crl-dp": true}),
            "require-crl-dp is not supported",
        ),
        (json!({"name": "bad"}), "certificate-data"),
        (
            json!({"name": "bad", "certificate-data": "not base64!"}),
            "base64",
        ),
        (
            json!({"name": "bad", "certificate-data": STANDARD.encode(issue(&ca, Leaf::default()).pem)}),
            "not a CA certificate",
        ),
        (
            json!({"name": "bad", "certificate-data": STANDARD.encode(&ca.pem), "unique-identifier": "shoe_size"}),
            "unique-identifier",
        ),
        (
            json!({"name": "bad", "certificate-data": STANDARD.encode(&ca.pem), "bound-extensions": ["nope"]}),
            "oid:value",
        ),
        (
            json!({"name": "bad", "certificate-data": STANDARD.encode(&ca.pem), "revoked-cert-ids": ["zz"]}),
            "serial number",
        ),
    ] {
        let mut b = body;
        b["token"] = json!(h.admin);
        h.fails_with(
            "auth-method-create-cert",
            b,
            StatusCode::BAD_REQUEST,
            needle,
        )
        .await;
    }
    let (s, _) = h
        .call("get-auth-method", json!({"token": h.admin, "name": "bad"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let id = method(
        &h,
        "certs",
        &ca,
        json!({"bound-common-names": ["client-*"], "revoked-cert-ids": "0A:0b", "description": "mTLS clients"}),
    )
    .await;
    let v = h
        .admin_ok("get-auth-method", json!({"name": "certs"}))
        .await;
    let info = &v["access_info"];
    assert_eq!(info["rules_type"], "cert", "{v}");
    assert_eq!(info["force_sub_claims"], true, "{v}");
    let rules = &info["cert_access_rules"];
    assert_eq!(
        STANDARD
            .decode(rules["certificate"].as_str().unwrap())
            .unwrap(),
        ca.pem.as_bytes()
    );
    assert_eq!(rules["unique_identifier"], "common_name");
    assert_eq!(rules["bound_common_names"], json!(["client-*"]));
    assert_eq!(rules["revoked_cert_ids"], json!(["a0b"]));
    assert_eq!(rules["require_crl_dp"], false);
    assert_eq!(v["description"], "mTLS clients");

    let listed = h
        .admin_ok("list-auth-methods", json!({"type": ["cert"]}))
        .await;
    let names: Vec<&str> = listed["auth_methods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["auth_method_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/certs"]);

    // explain-access: the certificate alone (no key) shows its claims and
    // the association it matches.
    let client = issue(&ca, Leaf::default());
    let v = h
        .admin_ok(
            "explain-access",
            json!({"access-id": id, "cert-data": client.b64(), "path": "/cert/x"}),
        )
        .await;
    assert_eq!(v["login"]["verified"], true, "{v}");
    assert_eq!(v["login"]["identity"], "client-a");
    assert_eq!(v["associations"][0]["matched"], true, "{v}");
    assert_eq!(v["capabilities"], json!(["read"]), "{v}");
    let stranger = issue(
        &ca,
        Leaf {
            cn: "mallory",
            ..Default::default()
        },
    );
    let v = h
        .admin_ok(
            "explain-access",
            json!({"access-id": id, "cert-data": stranger.b64()}),
        )
        .await;
    assert_eq!(v["login"]["verified"], false, "{v}");

    // Logging in with another access type, or a cert to another kind.
    let (s, v) = h
        .call(
            "auth",
            json!({"access-id": id, "access-type": "jwt", "jwt": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("access-type cert"), "{v}");

    h.admin_ok("delete-auth-method", json!({"name": "certs"}))
        .await;
    let (s, v) = h
        .call(
            "get-cert-challenge",
            json!({"access-id": id, "cert-data": client.b64()}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
}

#[tokio::test]
async fn update_replaces_the_certificate_settings() {
    let h = Harness::new().await;
    let old_ca = ca("Old CA");
    let new_ca = ca("New CA");
    let id = method(&h, "certs", &old_ca, json!({})).await;
    let old_client = issue(&old_ca, Leaf::default());
    let new_client = issue(&new_ca, Leaf::default());
    let (s, v) = login(&h, &id, &old_client).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // A refused update changes nothing.
    let msg = h
        .fails(
            "auth-method-update-cert",
            json!({"token": h.admin, "name": "certs", "certificate-data": STANDARD.encode(&new_ca.pem), "require-crl-dp": "true"}),
            StatusCode::BAD_REQUEST,
        )
        .await;
    assert!(msg.contains("require-crl-dp"), "{msg}");
    let (s, v) = login(&h, &id, &old_client).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Trust the new CA only, and revoke the new client's serial under a
    // new name: the access ID stays.
    h.admin_ok(
        "auth-method-update-cert",
        json!({
            "name": "certs",
            "new-name": "certs2",
            "certificate-data": STANDARD.encode(&new_ca.pem),
            "revoked-cert-ids": ["1001"],
        }),
    )
    .await;
    let v = h
        .admin_ok("get-auth-method", json!({"name": "certs2"}))
        .await;
    assert_eq!(v["auth_method_access_id"], id.as_str(), "{v}");
    assert_eq!(
        v["access_info"]["cert_access_rules"]["revoked_cert_ids"],
        json!(["1001"])
    );
    let (s, v) = login(&h, &id, &old_client).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("does not chain"), "{v}");
    let (s, v) = login(&h, &id, &new_client).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("revoked"), "{v}");
    h.admin_ok(
        "update-auth-method-cert",
        json!({"name": "certs2", "certificate-data": STANDARD.encode(&new_ca.pem)}),
    )
    .await;
    let (s, v) = login(&h, &id, &new_client).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

/// OIDC methods for people: settings are validated, the client secret is
/// stored sealed and never shown, logins without a flow are refused. (The
/// browser flow itself runs against a real provider in
/// tests/system/test_oidc_login.py.)
#[tokio::test]
async fn oidc_method_settings_are_checked_and_the_secret_sealed() {
    let h = Harness::new().await;
    let good = json!({
        "name": "people",
        "issuer": "https://idp.example",
        "client-id": "coffer",
        "client-secret": "very-secret-client-secret",
        "allowed-redirect-uri": ["http://127.0.0.1:8250/callback"],
        "required-scopes": ["email"],
        "unique-identifier": "email",
    });
    for (change, needle) in [
        (json!({"issuer": ""}), "issuer"),
        (json!({"issuer": "http://idp.example"}), "must use https"),
        (json!({"client-id": ""}), "client-id"),
        (json!({"client-secret": ""}), "client-secret"),
        (json!({"allowed-redirect-uri": []}), "allowed-redirect-uri"),
        (
            json!({"allowed-redirect-uri": ["http://evil.example/cb"]}),
            "redirect URI",
        ),
    ] {
        let mut body = good.clone();
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        body["token"] = json!(h.admin);
        h.fails_with(
            "create-auth-method-oidc",
            body,
            StatusCode::BAD_REQUEST,
            needle,
        )
        .await;
    }
    let v = h.admin_ok("create-auth-method-oidc", good).await;
    let id = v["access_id"].as_str().unwrap().to_owned();
    let shown = h
        .admin_ok("get-auth-method", json!({"name": "people"}))
        .await;
    let rules = &shown["access_info"]["oidc_access_rules"];
    assert_eq!(rules["issuer"], "https://idp.example", "{shown}");
    assert_eq!(rules["client_id"], "coffer");
    assert_eq!(rules["unique_identifier"], "email");
    assert_eq!(
        rules["allowed_redirect_URIs"],
        json!(["http://127.0.0.1:8250/callback"])
    );
    assert!(
        !shown.to_string().contains("very-secret-client-secret"),
        "{shown}"
    );
    let listed = h
        .admin_ok("list-auth-methods", json!({"type": ["oidc"]}))
        .await;
    assert_eq!(listed["auth_methods"].as_array().unwrap().len(), 1);
    // Stored sealed: the database holds no plaintext secret.
    let stored = h
        .state
        .store
        .get_auth_method("/people")
        .await
        .unwrap()
        .unwrap();
    assert!(
        !stored
            .config
            .to_string()
            .contains("very-secret-client-secret")
    );

    // A login needs the flow's code and state; a redirect URI must be
    // allowed; a state must be one this server sealed.
    let (s, v) = h
        .call("auth", json!({"access-id": id, "access-type": "oidc"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error(&v).contains("oidc-auth-url"), "{v}");
    let (s, v) = h
        .call(
            "oidc-auth-url",
            json!({"access-id": id, "redirect-uri": "http://127.0.0.1:9999/callback", "client-nonce": CLIENT_NONCE}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error(&v).contains("not one auth method"), "{v}");
    let (s, v) = h
        .call(
            "auth",
            json!({"access-id": id, "access-type": "oidc", "code": "c", "state": "bm90LWEtc3RhdGUtYXQtYWxsLW5vdC1hLXN0YXRlLWF0LWFsbA", "client-nonce": CLIENT_NONCE}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("not one this server issued"), "{v}");
    h.admin_ok("delete-auth-method", json!({"name": "people"}))
        .await;
}

/// Two nodes on one database: a challenge issued by one node logs in on
/// the other (no node remembers it), and only once across both.
#[tokio::test]
async fn a_challenge_is_single_use_across_nodes() {
    use axum::extract::connect_info::MockConnectInfo;
    let h = Harness::new().await;
    let ca = ca("Coffer Test CA");
    let id = method(&h, "certs", &ca, json!({})).await;
    let client = issue(&ca, Leaf::default());
    // Node B: another server process's state on the same data directory
    // (same database, same root key).
    let args = coffer_server::ServerArgs {
        dev: true,
        data_dir: Some(h.dir.clone()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    };
    let config = coffer_server::Config::resolve(&args).unwrap();
    let (state_b, admin) = coffer_server::build(&config).await.unwrap();
    assert!(admin.is_none(), "node B joins the existing database");
    let peer: std::net::SocketAddr = "127.0.0.1:40001".parse().unwrap();
    let app_b = coffer_server::http::router(state_b).layer(MockConnectInfo(peer));
    let call_b = |op: &'static str, body: Value| {
        let app = app_b.clone();
        async move { common::send(app, op, body).await }
    };

    let c = challenge(&h, &id, &client).await;
    let body = auth_body(&id, &client, &c, &sign(&client.key, &c));
    let (s, v) = call_b("auth", body.clone()).await;
    assert_eq!(s, StatusCode::OK, "node B accepts node A's challenge: {v}");
    let (s, v) = h.call("auth", body.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("already used"), "{v}");
    let (s, v) = call_b("auth", body).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("already used"), "{v}");
}

/// A CA valid from now + `valid.0` to now + `valid.1`, self-signed, or an
/// intermediate signed by `parent`.
fn ca_valid(name: &str, parent: Option<&Ca>, valid: (Duration, Duration)) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.serial_number = Some(SerialNumber::from(0x1a7e_u64));
    let now = OffsetDateTime::now_utc();
    params.not_before = now + valid.0;
    params.not_after = now + valid.1;
    let pem = match parent {
        None => params.self_signed(&key).unwrap().pem(),
        Some(p) => params
            .signed_by(&key, &Issuer::from_params(&p.params, &p.key))
            .unwrap()
            .pem(),
    };
    Ca { params, key, pem }
}

/// A token ends with the first certificate of its path to expire, the CA
/// included (webpki does not check the anchor's dates); an expired CA
/// logs nobody in.
#[tokio::test]
async fn the_token_never_outlives_any_certificate_of_the_path() {
    let h = Harness::new().await;
    let now = || OffsetDateTime::now_utc().unix_timestamp();

    // The CA ends in 10 minutes, the client certificate in 30.
    let short_ca = ca_valid(
        "Short CA",
        None,
        (Duration::days(-1), Duration::minutes(10)),
    );
    let id = method(&h, "short", &short_ca, json!({"jwt-ttl": 600})).await;
    let client = issue(&short_ca, Leaf::default());
    let (s, v) = login(&h, &id, &client).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let expiry = v["creds"]["expiry"].as_i64().unwrap();
    assert!(
        expiry <= now() + 10 * 60 + 5,
        "CA's end: {expiry} vs {}",
        now()
    );

    // An intermediate ending in 5 minutes, sent after the client
    // certificate.
    let root = ca("Root CA");
    let inter = ca_valid(
        "Short Intermediate",
        Some(&root),
        (Duration::days(-1), Duration::minutes(5)),
    );
    let id = method(&h, "chained", &root, json!({"jwt-ttl": 600})).await;
    let mut client = issue(&inter, Leaf::default());
    client.pem = format!("{}{}", client.pem, inter.pem);
    let (s, v) = login(&h, &id, &client).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let expiry = v["creds"]["expiry"].as_i64().unwrap();
    assert!(
        expiry <= now() + 5 * 60 + 5,
        "intermediate's end: {expiry} vs {}",
        now()
    );
    assert_eq!(
        v["creds"]["sub_claims"]["intermediate_serial_numbers"],
        json!(["1a7e"]),
        "{v}"
    );

    // A renewed CA (same name and key) listed after its expired
    // predecessor: the valid one anchors the path.
    let mut renewed = ca_valid("Renewed CA", None, (Duration::days(-2), Duration::days(-1)));
    let expired_pem = renewed.pem.clone();
    renewed.params.not_after = OffsetDateTime::now_utc() + Duration::days(1);
    let renewed_pem = renewed.params.self_signed(&renewed.key).unwrap().pem();
    renewed.pem = format!("{expired_pem}{renewed_pem}");
    let id = method(&h, "renewed", &renewed, json!({})).await;
    let (s, v) = login(&h, &id, &issue(&renewed, Leaf::default())).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // An expired CA: refused (at the challenge already).
    let old_ca = ca_valid("Expired CA", None, (Duration::days(-2), Duration::days(-1)));
    let id = method(&h, "expired-ca", &old_ca, json!({})).await;
    let client = issue(&old_ca, Leaf::default());
    let (s, v) = login(&h, &id, &client).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("CA certificate"), "{v}");
    assert!(error(&v).contains("expired"), "{v}");
}

/// Tokens already issued stop working once the method's settings refuse
/// their certificate: a serial added to revoked-cert-ids (of the client
/// certificate or of an intermediate of its path), a name binding it no
/// longer meets, or a CA no longer trusted. Other tokens of the method keep
/// working.
#[tokio::test]
async fn tokens_end_when_the_method_stops_trusting_their_certificate() {
    let h = Harness::new().await;
    let root = ca("Coffer Test CA");
    let id = method(&h, "certs", &root, json!({})).await;
    h.admin_ok(
        "create-secret",
        json!({"name": "/cert/db", "value": "cert-secret"}),
    )
    .await;
    let read = |token: Value| {
        let h = &h;
        async move {
            h.call(
                "get-secret-value",
                json!({"token": token, "names": ["/cert/db"]}),
            )
            .await
        }
    };
    let a = issue(&root, Leaf::default());
    let b = issue(
        &root,
        Leaf {
            serial: 0x1002,
            ..Default::default()
        },
    );
    let inter = ca_valid(
        "Intermediate",
        Some(&root),
        (Duration::days(-1), Duration::days(1)),
    );
    let mut c = issue(
        &inter,
        Leaf {
            serial: 0x1003,
            ..Default::default()
        },
    );
    c.pem = format!("{}{}", c.pem, inter.pem);
    let mut tokens = Vec::new();
    for client in [&a, &b, &c] {
        let (s, v) = login(&h, &id, client).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, got) = read(v["token"].clone()).await;
        assert_eq!(s, StatusCode::OK, "{got}");
        tokens.push(v["token"].clone());
    }
    let update = |revoked: Value, ca: &Ca| {
        let body = json!({
            "name": "certs",
            "certificate-data": STANDARD.encode(&ca.pem),
            "revoked-cert-ids": revoked,
        });
        let h = &h;
        async move {
            h.admin_ok("auth-method-update-cert", body).await;
        }
    };

    // The client certificate's serial revoked: its token is refused at
    // once, the others still work.
    update(json!(["10:01"]), &root).await;
    let (s, v) = read(tokens[0].clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("revoked-cert-ids"), "{v}");
    let v = h.ok("validate-token", json!({"token": tokens[0]})).await;
    assert_eq!(v["is_valid"], false, "{v}");
    for t in &tokens[1..] {
        let (s, v) = read(t.clone()).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }

    // The intermediate's serial revoked: the token of the certificate it
    // issued is refused.
    update(json!(["1001", "1a7e"]), &root).await;
    let (s, v) = read(tokens[2].clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("revoked-cert-ids"), "{v}");
    let (s, v) = read(tokens[1].clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // A name binding the certificate no longer meets.
    h.admin_ok(
        "auth-method-update-cert",
        json!({
            "name": "certs",
            "certificate-data": STANDARD.encode(&root.pem),
            "bound-common-names": ["other-*"],
        }),
    )
    .await;
    let (s, v) = read(tokens[1].clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("bound-common-names"), "{v}");
    update(json!([]), &root).await;
    let (s, v) = read(tokens[1].clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");

    // Another CA: every token of the old one is refused.
    update(json!([]), &ca("Another CA")).await;
    let (s, v) = read(tokens[1].clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("no longer in certificate-data"), "{v}");
}

// ---------------------------------------------------------------------
// OIDC logins against an in-process provider: discovery documents per
// issuer path, a JWKS, and a token endpoint answering what a test sets.

mod oidc {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use axum::extract::State;
    use axum::http::{StatusCode, Uri};
    use serde_json::{Value, json};

    #[derive(Default)]
    pub(crate) struct Provider {
        /// Discovery documents by request path.
        pub(crate) docs: HashMap<String, Value>,
        pub(crate) discovery_hits: usize,
        /// What the token endpoint answers next.
        pub(crate) token_response: Value,
        /// The form bodies the token endpoint received.
        pub(crate) token_requests: Vec<String>,
        pub(crate) jwks: Value,
    }

    pub(crate) type Shared = Arc<Mutex<Provider>>;

    /// Start the provider; returns its base URL (http://127.0.0.1:port).
    pub(crate) async fn start(jwks: Value) -> (String, Shared) {
        let shared: Shared = Arc::new(Mutex::new(Provider {
            jwks,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route(
                "/jwks",
                axum::routing::get(|State(s): State<Shared>| async move {
                    axum::Json(s.lock().unwrap().jwks.clone())
                }),
            )
            .route(
                "/token",
                axum::routing::post(|State(s): State<Shared>, body: String| async move {
                    let mut p = s.lock().unwrap();
                    p.token_requests.push(body);
                    axum::Json(p.token_response.clone())
                }),
            )
            .fallback(|State(s): State<Shared>, uri: Uri| async move {
                let mut p = s.lock().unwrap();
                p.discovery_hits += 1;
                match p.docs.get(uri.path()) {
                    Some(d) => (StatusCode::OK, axum::Json(d.clone())),
                    None => (StatusCode::NOT_FOUND, axum::Json(json!({}))),
                }
            })
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        (format!("http://127.0.0.1:{port}"), shared)
    }

    /// Publish a discovery document for `issuer` (served under the
    /// issuer without its trailing slash, as the spec builds the URL).
    pub(crate) fn publish(p: &Shared, base: &str, issuer: &str, says_issuer: &str) {
        let path = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/').trim_start_matches(base)
        );
        p.lock().unwrap().docs.insert(
            path,
            json!({
                "issuer": says_issuer,
                "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"),
                "jwks_uri": format!("{base}/jwks"),
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }),
        );
    }
}

const CLIENT_NONCE: &str = "the-client-nonce-only-the-cli-knows";

async fn oidc_method(h: &Harness, name: &str, issuer: &str, extra: Value) -> String {
    let mut body = json!({
        "name": name,
        "issuer": issuer,
        "client-id": "coffer",
        "client-secret": "s3cret",
        "allowed-redirect-uri": ["http://127.0.0.1:8250/callback"],
    });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let v = h.admin_ok("create-auth-method-oidc", body).await;
    v["access_id"].as_str().unwrap().to_owned()
}

/// `oidc-auth-url` with the client nonce: (state, the nonce the ID token
/// must carry).
async fn oidc_start(h: &Harness, id: &str) -> (String, String) {
    let v = h
        .ok(
            "oidc-auth-url",
            json!({"access-id": id, "redirect-uri": "http://127.0.0.1:8250/callback", "client-nonce": CLIENT_NONCE}),
        )
        .await;
    let url = reqwest::Url::parse(v["auth_url"].as_str().unwrap()).unwrap();
    let q = |k: &str| {
        url.query_pairs()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    assert_eq!(q("state"), v["state"].as_str().unwrap());
    (q("state"), q("nonce"))
}

/// The provider's next token response: an ID token with `claims` (iss,
/// aud, sub, nonce, times filled in unless given) and `scope`.
fn answer_with(
    p: &oidc::Shared,
    keys: &common::Keys,
    issuer: &str,
    nonce: &str,
    claims: Value,
    scope: Option<&str>,
) {
    let now = common::now();
    let mut c = json!({"iss": issuer, "aud": "coffer", "sub": "alice", "nonce": nonce, "iat": now, "exp": now + 300});
    for (k, v) in claims.as_object().unwrap() {
        c[k] = v.clone();
    }
    let token = common::sign(&keys.rsa, jsonwebtoken::Algorithm::RS256, "rsa1", &c);
    let mut r = json!({"access_token": "at", "token_type": "Bearer", "id_token": token});
    if let Some(s) = scope {
        r["scope"] = json!(s);
    }
    p.lock().unwrap().token_response = r;
}

async fn oidc_login(
    h: &Harness,
    peer: &str,
    id: &str,
    state: &str,
    nonce: Option<&str>,
) -> (StatusCode, Value) {
    let mut body =
        json!({"access-id": id, "access-type": "oidc", "code": "the-code", "state": state});
    if let Some(n) = nonce {
        body["client-nonce"] = json!(n);
    }
    h.call_from(peer, "auth", body).await
}

/// An issuer ending with '/' (Auth0's do) is kept as given: discovery and
/// the ID token's `iss` must match it exactly, slash included.
#[tokio::test]
async fn oidc_issuer_with_a_trailing_slash_logs_in() {
    let h = Harness::new().await;
    let keys = common::keys();
    let (base, p) = oidc::start(keys.jwks.clone()).await;
    let issuer = format!("{base}/tenant/");
    oidc::publish(&p, &base, &issuer, &issuer);
    let id = oidc_method(&h, "auth0", &issuer, json!({})).await;
    let shown = h
        .admin_ok("get-auth-method", json!({"name": "auth0"}))
        .await;
    assert_eq!(
        shown["access_info"]["oidc_access_rules"]["issuer"],
        json!(issuer)
    );
    let (state, nonce) = oidc_start(&h, &id).await;
    answer_with(&p, &keys, &issuer, &nonce, json!({}), Some("openid"));
    let (s, v) = oidc_login(&h, "127.0.0.1:41001", &id, &state, Some(CLIENT_NONCE)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // An ID token whose iss lacks the slash is another issuer.
    let (state, nonce) = oidc_start(&h, &id).await;
    answer_with(
        &p,
        &keys,
        issuer.trim_end_matches('/'),
        &nonce,
        json!({}),
        None,
    );
    let (s, v) = oidc_login(&h, "127.0.0.1:41002", &id, &state, Some(CLIENT_NONCE)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("iss check"), "{v}");

    // A provider whose document names the issuer without the slash is
    // not the configured one (OIDC Discovery §4.3: identical).
    let other = format!("{base}/other/");
    oidc::publish(&p, &base, &other, other.trim_end_matches('/'));
    let id2 = oidc_method(&h, "other", &other, json!({})).await;
    let (s, v) = h
        .call(
            "oidc-auth-url",
            json!({"access-id": id2, "redirect-uri": "http://127.0.0.1:8250/callback", "client-nonce": CLIENT_NONCE}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("issuer mismatch"), "{v}");
}

/// The state alone (what the browser, the provider and anyone who sees
/// the redirect hold) cannot finish a login: the client nonce given to
/// oidc-auth-url must come back with auth, and a wrong one does not use
/// the state up.
#[tokio::test]
async fn oidc_login_needs_the_client_nonce() {
    let h = Harness::new().await;
    let keys = common::keys();
    let (base, p) = oidc::start(keys.jwks.clone()).await;
    let issuer = format!("{base}/nonce");
    oidc::publish(&p, &base, &issuer, &issuer);
    let id = oidc_method(&h, "people", &issuer, json!({})).await;
    let (s, v) = h
        .call(
            "oidc-auth-url",
            json!({"access-id": id, "redirect-uri": "http://127.0.0.1:8250/callback"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error(&v).contains("client-nonce"), "{v}");
    let (s, v) = h
        .call(
            "oidc-auth-url",
            json!({"access-id": id, "redirect-uri": "http://127.0.0.1:8250/callback", "client-nonce": "short"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error(&v).contains("client-nonce"), "{v}");

    let (state, nonce) = oidc_start(&h, &id).await;
    answer_with(&p, &keys, &issuer, &nonce, json!({}), None);
    let (s, v) = oidc_login(&h, "127.0.0.1:41011", &id, &state, None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(error(&v).contains("client-nonce"), "{v}");
    let (s, v) = oidc_login(
        &h,
        "127.0.0.1:41012",
        &id,
        &state,
        Some("an-attacker-guessed-client-nonce"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("client-nonce"), "{v}");
    assert!(
        p.lock().unwrap().token_requests.is_empty(),
        "the code is not redeemed for a stranger"
    );
    let (s, v) = oidc_login(&h, "127.0.0.1:41013", &id, &state, Some(CLIENT_NONCE)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let form = p.lock().unwrap().token_requests[0].clone();
    assert!(form.contains("code_verifier="), "{form}");
    assert!(!form.contains(CLIENT_NONCE), "{form}");
}

/// States are sealed under their own key (a subkey of a random salt), not
/// a data key: `oidc-auth-url` is public.
#[tokio::test]
async fn oidc_states_are_not_sealed_with_a_data_key() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let h = Harness::new().await;
    let keys = common::keys();
    let (base, p) = oidc::start(keys.jwks.clone()).await;
    let issuer = format!("{base}/seal");
    oidc::publish(&p, &base, &issuer, &issuer);
    let id = oidc_method(&h, "people", &issuer, json!({})).await;
    let (state, _) = oidc_start(&h, &id).await;
    let raw = URL_SAFE_NO_PAD.decode(&state).unwrap();
    assert_eq!(raw[0], 2, "state format v2");
    let (salt, sealed) = raw[1..].split_at(16);
    let plain = h
        .state
        .keys
        .oidc_state_keys
        .subkey(salt)
        .open(sealed, b"coffer:oidc:state v2")
        .unwrap();
    let login: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(login["a"], json!(id));
    // No data key opens it, whatever prefix is taken for a key ID.
    let active = h.state.keys.data_key(h.state.keys.active_key_id()).unwrap();
    for skip in [0, 1, 8, 17] {
        for aad in [&b"coffer:oidc:state v1"[..], b"coffer:oidc:state v2"] {
            assert!(active.open(&raw[skip..], aad).is_err());
        }
    }
    // Every state has its own salt.
    let (again, _) = oidc_start(&h, &id).await;
    assert_ne!(URL_SAFE_NO_PAD.decode(&again).unwrap()[1..17], raw[1..17]);
}

/// A node that has not loaded the data key a method's client secret was
/// sealed with (a data-key rotation it has not noticed) loads it instead
/// of failing the login.
#[tokio::test]
async fn oidc_login_loads_a_data_key_this_node_has_not_seen() {
    let h = Harness::new().await;
    let keys = common::keys();
    let (base, p) = oidc::start(keys.jwks.clone()).await;
    let issuer = format!("{base}/rotated");
    oidc::publish(&p, &base, &issuer, &issuer);
    let old_key = h.state.keys.active_key_id();
    coffer_server::operator::rotate_data_key(
        &coffer_server::operator::StoreArgs {
            data_dir: Some(h.dir.clone()),
            ..Default::default()
        },
        &coffer_server::operator::DataKeyRotation {
            batch: 100,
            wait: std::time::Duration::ZERO,
        },
    )
    .await
    .unwrap();
    // Node B starts after the rotation and creates the method: its client
    // secret is sealed with the new key.
    let args = coffer_server::ServerArgs {
        dev: true,
        data_dir: Some(h.dir.clone()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    };
    let config = coffer_server::Config::resolve(&args).unwrap();
    let (state_b, _) = coffer_server::build(&config).await.unwrap();
    assert_ne!(state_b.keys.active_key_id(), old_key);
    let app_b =
        coffer_server::http::router(state_b).layer(axum::extract::connect_info::MockConnectInfo(
            "127.0.0.1:40002".parse::<std::net::SocketAddr>().unwrap(),
        ));
    let (s, v) = common::send(
        app_b,
        "create-auth-method-oidc",
        json!({
            "token": h.admin,
            "name": "people",
            "issuer": issuer,
            "client-id": "coffer",
            "client-secret": "s3cret",
            "allowed-redirect-uri": ["http://127.0.0.1:8250/callback"],
        }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v["access_id"].as_str().unwrap().to_owned();
    // Node A sees the method but still has only the old data key.
    h.state.reload_policy().await.unwrap();
    assert_eq!(h.state.keys.active_key_id(), old_key);
    let (state, nonce) = oidc_start(&h, &id).await;
    answer_with(&p, &keys, &issuer, &nonce, json!({}), None);
    let (s, v) = oidc_login(&h, "127.0.0.1:41021", &id, &state, Some(CLIENT_NONCE)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_ne!(h.state.keys.active_key_id(), old_key);
}

/// The ID token must name the client: `aud` contains the client ID
/// (even when the method requires another audience too) and an `azp`,
/// when present, is the client ID. A token response without `scope`
/// granted the requested scopes (RFC 6749 §5.1).
#[tokio::test]
async fn oidc_id_tokens_must_name_the_client_and_scope_may_be_omitted() {
    let h = Harness::new().await;
    let keys = common::keys();
    let (base, p) = oidc::start(keys.jwks.clone()).await;
    let issuer = format!("{base}/claims");
    oidc::publish(&p, &base, &issuer, &issuer);
    let id = oidc_method(
        &h,
        "people",
        &issuer,
        json!({"audience": "api://coffer", "required-scopes": ["email"]}),
    )
    .await;
    let mut peer = 41030;
    let mut attempt = |claims: Value, scope: Option<&'static str>| {
        peer += 1;
        let (h, p, keys, issuer, id) = (&h, &p, &keys, &issuer, &id);
        let peer = format!("127.0.0.1:{peer}");
        async move {
            let (state, nonce) = oidc_start(h, id).await;
            answer_with(p, keys, issuer, &nonce, claims, scope);
            oidc_login(h, &peer, id, &state, Some(CLIENT_NONCE)).await
        }
    };
    // Only the method's audience, not the client: refused.
    let (s, v) = attempt(json!({"aud": ["api://coffer"]}), Some("openid email")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("client ID"), "{v}");
    // azp of another party: refused.
    let (s, v) = attempt(
        json!({"aud": ["api://coffer", "coffer"], "azp": "someone-else"}),
        Some("openid email"),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("azp"), "{v}");
    // Both audiences and azp = client: accepted; without scope in the
    // response the requested scopes were granted.
    let (s, v) = attempt(
        json!({"aud": ["api://coffer", "coffer"], "azp": "coffer"}),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // A scope that does not include the required one: refused.
    let (s, v) = attempt(json!({"aud": ["api://coffer", "coffer"]}), Some("openid")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert!(error(&v).contains("required scope"), "{v}");
}

/// A provider that cannot be discovered is asked once, not once per
/// call: concurrent callers share one fetch and the failure is kept
/// briefly.
#[tokio::test]
async fn oidc_discovery_failures_are_cached_and_fetched_once() {
    let h = Harness::new().await;
    let keys = common::keys();
    let (base, p) = oidc::start(keys.jwks.clone()).await;
    let issuer = format!("{base}/down");
    let id = oidc_method(&h, "people", &issuer, json!({})).await;
    let body = json!({"access-id": id, "redirect-uri": "http://127.0.0.1:8250/callback", "client-nonce": CLIENT_NONCE});
    let calls = (0..8).map(|_| h.call("oidc-auth-url", body.clone()));
    for (s, v) in futures::future::join_all(calls).await {
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
        assert!(error(&v).contains("HTTP 404"), "{v}");
    }
    assert_eq!(p.lock().unwrap().discovery_hits, 1);
    // Published now, but the failure is remembered for a while.
    oidc::publish(&p, &base, &issuer, &issuer);
    let (s, v) = h.call("oidc-auth-url", body.clone()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(p.lock().unwrap().discovery_hits, 1);
}
