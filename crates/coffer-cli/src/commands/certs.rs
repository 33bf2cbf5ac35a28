//! Certificate issuers (SSH and PKI), the certificates they issue, and
//! the issued-certificate records: list, revoke, CRL.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_client::IssuedCertificate;
use coffer_client::ops::{
    CertList, CreatePkiCertIssuer, CreateSshCertIssuer, GetPkiCertificate, GetSshCertificate,
    PkiCertIssuer, RevokeCertificate, SshCertIssuer, UpdatePkiCertIssuer, UpdateSshCertIssuer,
};
use serde_json::{Value, json};

use super::dynamic::who;
use super::keys::{pairs_map, read_small};
use super::{date, respond};
use crate::key_args::{
    CertCommand, CertCrlArgs, CertListArgs, CertRevokeArgs, CertSubcommand,
    CreatePkiCertIssuerArgs, CreateSshCertIssuerArgs, GetPkiCertificateArgs, GetSshCertificateArgs,
    PkiIssuerArgs, SshIssuerArgs, UpdatePkiCertIssuerArgs, UpdateSshCertIssuerArgs,
};
use crate::output::{emit, emit_json, note, table};
use crate::session::{Context, Session};

pub(super) async fn cert(c: CertCommand) -> anyhow::Result<()> {
    match c.command {
        CertSubcommand::List(a) => list(a).await,
        CertSubcommand::Revoke(a) => revoke(a).await,
        CertSubcommand::Crl(a) => crl(a).await,
    }
}

// ---- SSH ----

fn ssh_body(
    name: String,
    signer_key_name: Option<String>,
    ttl: Option<String>,
    a: SshIssuerArgs,
) -> anyhow::Result<SshCertIssuer> {
    let extensions = (!a.extensions.is_empty())
        .then(|| pairs_map("extensions", a.extensions))
        .transpose()?;
    let critical_options = (!a.critical_options.is_empty())
        .then(|| pairs_map("critical-options", a.critical_options))
        .transpose()?;
    Ok(SshCertIssuer {
        name,
        signer_key_name,
        allowed_users: a.allowed_users,
        principals: a.principals,
        ttl,
        extensions,
        critical_options,
        cert_type: a.cert_type,
        tag: a.tags,
        description: a.description,
    })
}

pub(super) async fn create_ssh_cert_issuer(a: CreateSshCertIssuerArgs) -> anyhow::Result<()> {
    let body = ssh_body(a.name, Some(a.signer_key_name), Some(a.ttl), a.issuer)?;
    respond(&a.global, &CreateSshCertIssuer(body), |out| {
        Ok(format!("Created SSH certificate issuer {}", out.name))
    })
    .await
}

pub(super) async fn update_ssh_cert_issuer(a: UpdateSshCertIssuerArgs) -> anyhow::Result<()> {
    let body = ssh_body(a.name, a.signer_key_name, a.ttl, a.issuer)?;
    respond(&a.global, &UpdateSshCertIssuer(body), |out| {
        Ok(format!("Updated SSH certificate issuer {}", out.name))
    })
    .await
}

/// Where ssh-keygen puts the certificate of a public key:
/// `id_ed25519.pub` → `id_ed25519-cert.pub`, `key` → `key-cert.pub`.
fn certificate_path(public_key: &Path) -> PathBuf {
    let mut name = public_key
        .file_name()
        .map(OsString::from)
        .unwrap_or_default();
    if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".pub")) {
        name = OsString::from(stem);
    }
    name.push("-cert.pub");
    public_key.with_file_name(name)
}

/// The OpenSSH public key line of a `.pub` file; a private key is refused
/// (it must not leave the machine).
fn public_key_line(path: &Path) -> anyhow::Result<String> {
    let bytes = read_small(path, "public key file")?;
    let text = String::from_utf8(bytes)
        .ok()
        .with_context(|| format!("{} is not an OpenSSH public key", path.display()))?;
    if text.contains("PRIVATE KEY") {
        bail!(
            "{} holds a private key: give the public key file (usually the same name with .pub)",
            path.display()
        );
    }
    let line = text.trim();
    if line.is_empty() {
        bail!("{} is empty", path.display());
    }
    Ok(line.to_string())
}

/// Write the certificate as ssh-keygen does: mode 0644, replacing an
/// older one (atomically, through a temporary file in the same folder).
fn write_certificate(path: &Path, certificate: &str) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp_name = OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    std::fs::remove_file(&tmp).ok();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o644);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        #[cfg(unix)]
        {
            // Whatever the umask: sshd and ssh read it as ssh-keygen leaves it.
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        }
        file.write_all(certificate.trim_end().as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    result.with_context(|| format!("cannot write the certificate {}", path.display()))
}

/// With --public-key-file-path: writes the certificate next to the key
/// and prints its path; with --public-key-data: prints the certificate.
/// --json prints the server's answer (with the path written).
pub(super) async fn get_ssh_certificate(a: GetSshCertificateArgs) -> anyhow::Result<()> {
    let (public_key_data, target) = match (&a.public_key_file_path, a.public_key_data) {
        (Some(path), _) => (public_key_line(path)?, Some(certificate_path(path))),
        (None, Some(data)) => (data.trim().to_string(), None),
        (None, None) => bail!("give --public-key-file-path or --public-key-data"),
    };
    let request = GetSshCertificate {
        cert_issuer_name: a.cert_issuer_name,
        cert_username: a.cert_username,
        public_key_data,
        ttl: a.ttl,
    };
    let mut session = Session::open(&a.global).await?;
    let mut raw = session.call(&request).await?;
    let out = coffer_client::decode::<GetSshCertificate>(raw.clone())?;
    let certificate = out.data.trim();
    if certificate.is_empty() {
        bail!("the gateway answered without a certificate");
    }
    match target {
        Some(path) => {
            write_certificate(&path, certificate)?;
            if a.global.json {
                raw["path"] = Value::String(path.display().to_string());
                emit_json(&raw)
            } else {
                emit(&path.display().to_string())
            }
        }
        None if a.global.json => emit_json(&raw),
        None => emit(certificate),
    }
}

// ---- PKI ----

fn pki_body(
    name: String,
    signer_key_name: Option<String>,
    ttl: Option<String>,
    a: PkiIssuerArgs,
) -> PkiCertIssuer {
    PkiCertIssuer {
        name,
        signer_key_name,
        ttl,
        allowed_domains: a.allowed_domains,
        allow_subdomains: a.allow_subdomains,
        allow_any_name: a.allow_any_name,
        disable_wildcards: a.disable_wildcards,
        not_enforce_hostnames: a.not_enforce_hostnames,
        allowed_uri_sans: a.allowed_uri_sans,
        allowed_ip_sans: a.allowed_ip_sans,
        server_flag: a.server_flag,
        client_flag: a.client_flag,
        code_signing_flag: a.code_signing_flag,
        key_usage: a.key_usage,
        critical_key_usage: a.critical_key_usage,
        organizations: a.organizations,
        organizational_units: a.organizational_units,
        country: a.country,
        locality: a.locality,
        province: a.province,
        street_address: a.street_address,
        postal_code: a.postal_code,
        is_ca: a.is_ca,
        max_path_len: a.max_path_len,
        not_require_cn: a.not_require_cn,
        tag: a.tags,
        description: a.description,
    }
}

pub(super) async fn create_pki_cert_issuer(a: CreatePkiCertIssuerArgs) -> anyhow::Result<()> {
    let body = pki_body(a.name, Some(a.signer_key_name), Some(a.ttl), a.issuer);
    respond(&a.global, &CreatePkiCertIssuer(body), |out| {
        Ok(format!("Created PKI certificate issuer {}", out.name))
    })
    .await
}

pub(super) async fn update_pki_cert_issuer(a: UpdatePkiCertIssuerArgs) -> anyhow::Result<()> {
    let body = pki_body(a.name, a.signer_key_name, a.ttl, a.issuer);
    respond(&a.global, &UpdatePkiCertIssuer(body), |out| {
        Ok(format!("Updated PKI certificate issuer {}", out.name))
    })
    .await
}

/// A CSR or public key file, base64-encoded as the wire wants it; a file
/// holding a private key is refused (it must not leave the machine).
fn request_file_base64(path: &Path, what: &str) -> anyhow::Result<String> {
    let bytes = read_small(path, what)?;
    if String::from_utf8_lossy(&bytes).contains("PRIVATE KEY") {
        bail!(
            "{} holds a private key: give a CSR (--csr-file-path) or the public key \
             (openssl pkey -in KEY -pubout) (--key-file-path)",
            path.display()
        );
    }
    Ok(B64.encode(bytes))
}

fn pki_request(a: GetPkiCertificateArgs) -> anyhow::Result<GetPkiCertificate> {
    let (csr_data_base64, key_data_base64) = match (&a.csr_file_path, &a.key_file_path) {
        (Some(csr), _) => (Some(request_file_base64(csr, "CSR file")?), None),
        (None, Some(key)) => (None, Some(request_file_base64(key, "public key file")?)),
        (None, None) => bail!("give --csr-file-path or --key-file-path"),
    };
    Ok(GetPkiCertificate {
        cert_issuer_name: a.cert_issuer_name,
        csr_data_base64,
        key_data_base64,
        common_name: a.common_name,
        alt_names: a.alt_names,
        uri_sans: a.uri_sans,
        ttl: a.ttl,
        extended_key_usage: a.extended_key_usage,
    })
}

/// The server's JSON answer as is (`{"data": <PEM>, "parent_cert": <chain
/// PEM>, "cert_display_id": <serial>, …}`), with or without `--json`: it
/// is meant for `jq`.
pub(super) async fn get_pki_certificate(a: GetPkiCertificateArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let request = pki_request(a)?;
    let mut session = Session::open(&global).await?;
    let raw = session.call(&request).await?;
    let out = coffer_client::decode::<GetPkiCertificate>(raw.clone())?;
    if !out.data.contains("-----BEGIN CERTIFICATE") {
        bail!("the gateway answered without a certificate");
    }
    emit_json(&raw)
}

// ---- issued certificates ----

fn format_certificates(certs: &[IssuedCertificate]) -> String {
    let rows: Vec<Vec<String>> = certs
        .iter()
        .map(|c| {
            let revoked = match (&c.revoked_at, c.revoked) {
                (Some(at), true) => at.clone(),
                (None, true) => "yes".to_string(),
                _ => "-".to_string(),
            };
            vec![
                c.serial_number.clone(),
                c.issuer_name.clone(),
                c.kind.clone(),
                if c.subject.is_empty() {
                    "-".to_string()
                } else {
                    c.subject.clone()
                },
                if c.names.is_empty() {
                    "-".to_string()
                } else {
                    c.names.join(",")
                },
                who(&c.identity, &c.access_id),
                date(&c.expires_at),
                revoked,
            ]
        })
        .collect();
    table(
        &[
            "SERIAL",
            "ISSUER",
            "KIND",
            "SUBJECT",
            "NAMES",
            "ISSUED TO",
            "EXPIRES",
            "REVOKED",
        ],
        &rows,
    )
}

pub(super) async fn list(a: CertListArgs) -> anyhow::Result<()> {
    let request = CertList {
        cert_issuer_name: a.cert_issuer_name,
        revoked_only: a.revoked_only.then_some(true),
        include_expired: a.include_expired.then_some(true),
        limit: a.limit,
    };
    respond(&a.global, &request, |out| {
        if out.certificates.is_empty() {
            note("No certificates.");
        }
        Ok(format_certificates(&out.certificates))
    })
    .await
}

pub(super) async fn revoke(a: CertRevokeArgs) -> anyhow::Result<()> {
    let request = RevokeCertificate {
        cert_issuer_name: a.cert_issuer_name,
        serial_number: a.serial_number,
        reason: a.reason,
    };
    respond(&a.global, &request, |out| {
        Ok(format!(
            "Revoked certificate {} of {}",
            out.serial_number, out.cert_issuer_name
        ))
    })
    .await
}

/// `GET /pki/crl/<issuer>`: public, so no login.
async fn crl(a: CertCrlArgs) -> anyhow::Result<()> {
    let ctx = Context::new(&a.global)?;
    let pem = ctx.client.pki_crl(&a.cert_issuer_name).await?;
    if !pem.contains("-----BEGIN X509 CRL-----") {
        bail!("the gateway answered without a CRL");
    }
    if a.global.json {
        emit_json(&json!({"cert_issuer_name": a.cert_issuer_name, "crl": pem}))
    } else {
        emit(&pem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn try_parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("coffer").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn certificates_go_next_to_the_public_key() {
        assert_eq!(
            certificate_path(Path::new("/home/u/.ssh/id_ed25519.pub")),
            Path::new("/home/u/.ssh/id_ed25519-cert.pub")
        );
        assert_eq!(
            certificate_path(Path::new("key")),
            Path::new("key-cert.pub")
        );
        assert_eq!(
            certificate_path(Path::new("d/id.pub.bak")),
            Path::new("d/id.pub.bak-cert.pub")
        );
    }

    #[cfg(unix)]
    #[test]
    fn certificates_are_written_0644_and_replace_older_ones() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id-cert.pub");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_certificate(&path, "ssh-ed25519-cert-v01@openssh.com AAAA x\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "ssh-ed25519-cert-v01@openssh.com AAAA x\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn private_keys_never_leave() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id");
        std::fs::write(
            &key,
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = public_key_line(&key).unwrap_err().to_string();
        assert!(err.contains("private key"), "{err}");
        assert!(request_file_base64(&key, "CSR file").is_err());
        let public = dir.path().join("id.pub");
        std::fs::write(&public, "ssh-ed25519 AAAAC3Nz me@host\n").unwrap();
        assert_eq!(
            public_key_line(&public).unwrap(),
            "ssh-ed25519 AAAAC3Nz me@host"
        );
    }

    #[test]
    fn akeyless_style_issuer_commands() {
        let Ok(Command::CreateSshCertIssuer(a)) = try_parse(&[
            "create-ssh-cert-issuer",
            "--name",
            "/ssh/ca",
            "--signer-key-name",
            "/k/ssh",
            "--allowed-users",
            "alice,deploy",
            "--principals",
            "ops",
            "--ttl",
            "3600",
            "--extensions",
            "permit-pty",
            "--extensions",
            "permit-port-forwarding=",
            "--critical-options",
            "force-command=/bin/true",
            "--cert-type",
            "user",
            "--tag",
            "t",
        ]) else {
            panic!("wrong command")
        };
        let body = ssh_body(a.name, Some(a.signer_key_name), Some(a.ttl), a.issuer).unwrap();
        assert_eq!(
            serde_json::to_value(CreateSshCertIssuer(body)).unwrap(),
            json!({
                "name": "/ssh/ca",
                "signer-key-name": "/k/ssh",
                "allowed-users": "alice,deploy",
                "principals": "ops",
                "ttl": "3600",
                "extensions": {"permit-pty": "", "permit-port-forwarding": ""},
                "critical-options": {"force-command": "/bin/true"},
                "cert-type": "user",
                "tag": ["t"]
            })
        );
        let Ok(Command::UpdateSshCertIssuer(a)) =
            try_parse(&["update-ssh-cert-issuer", "-n", "/ssh/ca", "--ttl", "15m"])
        else {
            panic!("wrong command")
        };
        assert_eq!(
            serde_json::to_value(ssh_body(a.name, a.signer_key_name, a.ttl, a.issuer).unwrap())
                .unwrap(),
            json!({"name": "/ssh/ca", "ttl": "15m"})
        );

        let Ok(Command::CreatePkiCertIssuer(a)) = try_parse(&[
            "create-pki-cert-issuer",
            "-n",
            "/pki/web",
            "--signer-key-name",
            "/k/ca",
            "--ttl",
            "86400",
            "--allowed-domains",
            "example.com",
            "--allow-subdomains",
            "--server-flag",
            "--client-flag=false",
            "--key-usage",
            "DigitalSignature,KeyEncipherment",
            "--max-path-len",
            "-1",
        ]) else {
            panic!("wrong command")
        };
        let body = pki_body(a.name, Some(a.signer_key_name), Some(a.ttl), a.issuer);
        assert_eq!(
            serde_json::to_value(CreatePkiCertIssuer(body)).unwrap(),
            json!({
                "name": "/pki/web",
                "signer-key-name": "/k/ca",
                "ttl": "86400",
                "allowed-domains": "example.com",
                "allow-subdomains": true,
                "server-flag": true,
                "client-flag": false,
                "key-usage": "DigitalSignature,KeyEncipherment",
                "max-path-len": -1
            })
        );

        for bad in [
            &[
                "create-ssh-cert-issuer",
                "-n",
                "/x",
                "--signer-key-name",
                "/k",
            ][..],
            &[
                "create-ssh-cert-issuer",
                "-n",
                "/x",
                "--signer-key-name",
                "/k",
                "--ttl",
                "1",
                "--cert-type",
                "both",
            ],
            &["create-pki-cert-issuer", "-n", "/x", "--ttl", "1"],
            &[
                "get-ssh-certificate",
                "--cert-issuer-name",
                "/x",
                "--cert-username",
                "u",
            ],
            &[
                "get-ssh-certificate",
                "--cert-issuer-name",
                "/x",
                "--cert-username",
                "u",
                "--public-key-data",
                "k",
                "--public-key-file-path",
                "f",
            ],
            &["get-pki-certificate", "--cert-issuer-name", "/x"],
            &[
                "get-pki-certificate",
                "--cert-issuer-name",
                "/x",
                "--csr-file-path",
                "a",
                "--key-file-path",
                "b",
            ],
            &["cert", "revoke", "--cert-issuer-name", "/x"],
            &["cert", "crl"],
        ] {
            assert!(try_parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pki_requests_carry_the_file_base64() {
        let dir = tempfile::tempdir().unwrap();
        let csr = dir.path().join("csr.pem");
        let text = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";
        std::fs::write(&csr, text).unwrap();
        let Ok(Command::GetPkiCertificate(a)) = try_parse(&[
            "get-pki-certificate",
            "--cert-issuer-name",
            "/pki/web",
            "--csr-file-path",
            csr.to_str().unwrap(),
            "--alt-names",
            "a.example.com,10.0.0.1",
            "--ttl",
            "3600",
        ]) else {
            panic!("wrong command")
        };
        assert_eq!(
            serde_json::to_value(pki_request(a).unwrap()).unwrap(),
            json!({
                "cert-issuer-name": "/pki/web",
                "csr-data-base64": B64.encode(text),
                "alt-names": "a.example.com,10.0.0.1",
                "ttl": "3600"
            })
        );
    }

    #[test]
    fn issued_certificates_table() {
        let certs: Vec<IssuedCertificate> = serde_json::from_value(json!([
            {"issuer_name": "/pki/web", "serial_number": "0a1b", "kind": "pki",
             "subject": "CN=api.example.com", "names": ["api.example.com"],
             "access_id": "p-1", "identity": "", "expires_at": "2030-01-01T00:00:00Z",
             "revoked": true, "revoked_at": "2026-01-01T00:00:00Z"},
            {"issuer_name": "/ssh/ca", "serial_number": "ff", "kind": "ssh",
             "subject": "", "names": null, "access_id": "p-2", "identity": "ci-job",
             "revoked": false}
        ]))
        .unwrap();
        let text = format_certificates(&certs);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("SERIAL"), "{text}");
        assert!(
            lines[1].contains("CN=api.example.com") && lines[1].ends_with("2026-01-01T00:00:00Z")
        );
        assert!(
            lines[2].contains("ci-job") && lines[2].ends_with('-'),
            "{text}"
        );
        assert!(matches!(
            try_parse(&["cert-list", "--revoked-only"]),
            Ok(Command::CertList(_))
        ));
        assert!(matches!(
            try_parse(&["list-certificates"]),
            Ok(Command::CertList(_))
        ));
    }
}
