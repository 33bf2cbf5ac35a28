//! End to end: a client-certificate auth method and `coffer auth
//! --access-type cert` through the real `coffer` binary against a real
//! `coffer server --dev`, with a CA and client certificates made by
//! `openssl`. The private key signs the server's challenge in the CLI and
//! is never sent.
// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use support::*;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("this test needs the openssl command");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A client key and certificate `name.key`/`name.pem` for `cn`, signed
/// by `ca` (`ca.pem`/`ca.key`) with the extensions in `ext` (an openssl
/// extension file section `ext`).
fn client_cert(dir: &Path, ca: &str, name: &str, cn: &str, serial: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), format!("[ext]\n{ext}\n")).unwrap();
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            &format!("{name}.key"),
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-subj",
            &format!("/CN={cn}/OU=payments"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-set_serial",
            serial,
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-extensions",
            "ext",
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

fn ca_cert(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "3",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

const CLIENT_EXT: &str = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectAltName=DNS:cli.svc.example";

#[test]
fn cert_login_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ca_cert(dir, "ca");
    ca_cert(dir, "other-ca");
    client_cert(dir, "ca", "client", "cli-client", "0x1234", CLIENT_EXT);
    client_cert(dir, "ca", "revoked", "cli-client", "0xdead", CLIENT_EXT);
    client_cert(
        dir,
        "other-ca",
        "stranger",
        "cli-client",
        "0x99",
        CLIENT_EXT,
    );
    // An RSA key of its own: signs, but is not the certificate's key.
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "wrong.key",
        ],
    );

    let server = Server::start(&dir.join("data"));
    let (admin_id, admin_key) = server.bootstrap_credentials();
    let admin = Cli {
        home: dir.join("admin"),
    };
    admin
        .run(&[
            "configure",
            "--access-id",
            &admin_id,
            "--access-key",
            &admin_key,
            "--gateway-url",
            &server.url(),
        ])
        .ok();
    let created = admin
        .run(&[
            "create-auth-method-cert",
            "--name",
            "/mtls",
            "--certificate-file",
            path_str(&dir.join("ca.pem")),
            "--bound-common-names",
            "cli-*",
            "--bound-dns-sans",
            "*.svc.example",
            "--revoked-cert-ids",
            "DE:AD",
            "--json",
        ])
        .ok()
        .json();
    let access_id = created["access_id"].as_str().expect("access_id").to_owned();
    admin.run(&["create-role", "--name", "/mtls-readers"]).ok();
    admin
        .run(&[
            "set-role-rule",
            "--role-name",
            "/mtls-readers",
            "--path",
            "/mtls/*",
            "--capability",
            "read",
        ])
        .ok();
    admin
        .run(&[
            "assoc-role-am",
            "--role-name",
            "/mtls-readers",
            "--am-name",
            "/mtls",
            "--sub-claims",
            "common_name=cli-client",
        ])
        .ok();
    admin
        .run(&[
            "create-secret",
            "--name",
            "/mtls/db",
            "--value",
            "mtls-secret",
        ])
        .ok();
    let shown = admin
        .run(&["get-auth-method", "--name", "/mtls", "--json"])
        .ok()
        .json();
    assert_eq!(shown["access_info"]["rules_type"], "cert", "{shown}");
    assert_eq!(
        shown["access_info"]["cert_access_rules"]["bound_dns_sans"],
        serde_json::json!(["*.svc.example"]),
        "{shown}"
    );

    // The client logs in with its certificate and key: the token is
    // printed, and reads what the role allows.
    let client = Cli {
        home: dir.join("client"),
    };
    let gw = server.url();
    let login = |cli: &Cli, cert: &str, key: &str| {
        cli.run(&[
            "auth",
            "--gateway-url",
            &gw,
            "--access-id",
            &access_id,
            "--access-type",
            "cert",
            "--cert-file-name",
            path_str(&dir.join(cert)),
            "--key-file-name",
            path_str(&dir.join(key)),
        ])
    };
    let token = login(&client, "client.pem", "client.key")
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert!(token.starts_with("t-"), "{token}");
    let read = client
        .run(&[
            "get-secret-value",
            "--gateway-url",
            &gw,
            "--token",
            &token,
            "--name",
            "/mtls/db",
        ])
        .ok();
    assert_eq!(read.stdout.trim(), "mtls-secret");
    let who = client
        .run(&["validate-token", "--gateway-url", &gw, "--token", &token])
        .ok();
    assert!(who.stdout.contains("true"), "{who:#?}");

    // Refusals, each with a message saying why.
    for (cert, key, needle) in [
        (
            "client.pem",
            "wrong.key",
            "not a signature of the challenge",
        ),
        ("revoked.pem", "revoked.key", "is revoked"),
        ("stranger.pem", "stranger.key", "does not chain to the CA"),
    ] {
        let out = login(&client, cert, key);
        assert_ne!(out.code, 0, "{out:#?}");
        assert!(out.stderr.contains(needle), "{cert}/{key}: {out:#?}");
        assert!(out.stdout.is_empty(), "{out:#?}");
    }
    let out = client.run(&[
        "auth",
        "--gateway-url",
        &gw,
        "--access-id",
        &access_id,
        "--access-type",
        "cert",
        "--cert-file-name",
        path_str(&dir.join("client.pem")),
    ]);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(out.stderr.contains("--key-file-name"), "{out:#?}");

    // The key never went over the wire: no request the server logged or
    // audited carries it (the audit log records every request).
    let key_pem = std::fs::read_to_string(dir.join("client.key")).unwrap();
    let key_body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(!server.logs().contains(&key_body[..40]));

    // Update: trust the other CA only; the first client is now refused.
    admin
        .run(&[
            "update-auth-method-cert",
            "--name",
            "/mtls",
            "--certificate-file",
            path_str(&dir.join("other-ca.pem")),
        ])
        .ok();
    let out = login(&client, "client.pem", "client.key");
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(out.stderr.contains("does not chain to the CA"), "{out:#?}");
    login(&client, "stranger.pem", "stranger.key").ok();
}

/// A hostile gateway on loopback: answers `get-cert-challenge` with
/// `challenge` (whatever it wants signed) and records every request.
fn hostile_gateway(challenge: Arc<Mutex<String>>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().expect("its address").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).ok();
            let request_line = head.lines().next().unwrap_or_default().to_owned();
            record
                .lock()
                .unwrap()
                .push(format!("{request_line} {}", String::from_utf8_lossy(&body)));
            let (status, answer) = if request_line.contains("get-cert-challenge") {
                let c = challenge.lock().unwrap().clone();
                ("200 OK", serde_json::json!({ "challenge": c }).to_string())
            } else {
                (
                    "401 Unauthorized",
                    serde_json::json!({"error": "no"}).to_string(),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
            stream.write_all(response.as_bytes()).ok();
        }
    });
    (port, seen)
}

/// A gateway that hands out something else than a Coffer challenge (a JWS
/// signing input, a padded or longer text) gets no signature: the CLI
/// refuses before signing, and sends no `auth`.
#[test]
fn the_cli_signs_nothing_but_a_coffer_challenge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ca_cert(dir, "ca");
    client_cert(dir, "ca", "client", "cli-client", "0x1234", CLIENT_EXT);
    let challenge = Arc::new(Mutex::new(String::new()));
    let (port, seen) = hostile_gateway(challenge.clone());
    let cli = Cli {
        home: dir.join("client"),
    };
    let gw = format!("http://127.0.0.1:{port}");
    let a_real_one_padded = format!("{}=", "A".repeat(75));
    for hostile in [
        "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhZG1pbiIsImV4cCI6OTk5OTk5OTk5OX0",
        a_real_one_padded.as_str(),
        &"A".repeat(76),
        &format!("{}+", "A".repeat(74)),
    ] {
        *challenge.lock().unwrap() = hostile.to_owned();
        seen.lock().unwrap().clear();
        let out = cli.run(&[
            "auth",
            "--gateway-url",
            &gw,
            "--access-id",
            "p-hostile0000c",
            "--access-type",
            "cert",
            "--cert-file-name",
            path_str(&dir.join("client.pem")),
            "--key-file-name",
            path_str(&dir.join("client.key")),
        ]);
        assert_ne!(out.code, 0, "{hostile}: {out:#?}");
        assert!(
            out.stderr.contains("not a Coffer challenge"),
            "{hostile}: {out:#?}"
        );
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{hostile}: {seen:#?}");
        assert!(seen[0].contains("get-cert-challenge"), "{seen:#?}");
        assert!(!seen[0].contains("signed-cert-challenge"), "{seen:#?}");
    }
}
