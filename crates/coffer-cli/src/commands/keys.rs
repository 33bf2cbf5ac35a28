//! Keys kept by the server: create or import, use (encrypt, decrypt, the
//! public part), rotate, attach a certificate.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use coffer_client::ops::{
    CreateClassicKey, CreateKey, Decrypt, Encrypt, GetRsaPublic, RotateKey, SelfSignedCertificate,
    UpdateClassicKeyCertificate,
};
use secrecy::{ExposeSecret, SecretString};

use super::respond;
use crate::key_args::{
    CreateClassicKeyArgs, CreateKeyArgs, DecryptArgs, EncryptArgs, KeyNameArgs, SelfSignedArgs,
    UpdateClassicKeyCertificateArgs,
};
use crate::session::secret_or_stdin;

/// Files read for a request are small (keys, certificates, CSRs): a
/// bigger one is a mistake, refused before it is read.
const MAX_FILE: u64 = 1 << 20;

/// The bytes of a small local file.
pub(super) fn read_small(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?
        .len();
    if size > MAX_FILE {
        bail!(
            "the {what} {} is larger than {MAX_FILE} bytes: is it the right file?",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read the {what} {}", path.display()))
}

/// A PEM file's text (a certificate or a chain).
pub(super) fn pem_file(path: &Path, what: &str) -> anyhow::Result<String> {
    let bytes = read_small(path, what)?;
    match String::from_utf8(bytes) {
        Ok(text) if text.contains("-----BEGIN") => Ok(text),
        _ => bail!("the {what} {} is not PEM text", path.display()),
    }
}

/// A key file for `create-classic-key`: PEM text as is, anything else
/// (DER, raw AES key bytes) base64-encoded.
fn key_file_data(path: &Path) -> anyhow::Result<SecretString> {
    let bytes = read_small(path, "key file")?;
    match std::str::from_utf8(&bytes) {
        Ok(text) if text.trim_start().starts_with("-----BEGIN") => {
            Ok(SecretString::from(text.trim()))
        }
        _ => Ok(SecretString::from(B64.encode(&bytes))),
    }
}

/// `key=value` pairs into a map; a key given twice is a mistake.
pub(super) fn pairs_map(
    flag: &str,
    pairs: Vec<(String, String)>,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (k, v) in pairs {
        if map.contains_key(&k) {
            bail!("--{flag}: {k:?} is given twice");
        }
        map.insert(k, v);
    }
    Ok(map)
}

fn self_signed(a: SelfSignedArgs) -> SelfSignedCertificate {
    SelfSignedCertificate {
        generate_self_signed_certificate: a.generate_self_signed_certificate,
        certificate_ttl: a.certificate_ttl,
        certificate_common_name: a.certificate_common_name,
        certificate_organization: a.certificate_organization,
        certificate_country: a.certificate_country,
        certificate_locality: a.certificate_locality,
        certificate_province: a.certificate_province,
    }
}

fn create_key_body(a: CreateKeyArgs) -> CreateKey {
    CreateKey {
        name: a.name,
        alg: a.alg,
        tag: a.tags,
        description: a.description,
        certificate: self_signed(a.certificate),
    }
}

pub(super) async fn create_key(a: CreateKeyArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let request = create_key_body(a);
    let (name, alg) = (request.name.clone(), request.alg.clone());
    respond(&global, &request, |out| {
        Ok(format!("Created key {name} ({alg}, id {})", out.display_id))
    })
    .await
}

fn create_classic_key_body(a: CreateClassicKeyArgs) -> anyhow::Result<CreateClassicKey> {
    let key_data = match (a.key_data, &a.key_file_path) {
        (Some(data), _) => Some(secret_or_stdin(data, true)?),
        (None, Some(path)) => Some(key_file_data(path)?),
        (None, None) => None,
    };
    let cert_file_data = a
        .cert_file_path
        .as_deref()
        .map(|p| pem_file(p, "certificate"))
        .transpose()?;
    Ok(CreateClassicKey {
        name: a.name,
        alg: a.alg,
        key_data,
        cert_file_data,
        tags: a.tags,
        description: a.description,
        certificate: self_signed(a.certificate),
    })
}

pub(super) async fn create_classic_key(a: CreateClassicKeyArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let request = create_classic_key_body(a)?;
    respond(&global, &request, |out| {
        let mut text = format!(
            "Created key {} ({}, id {})\n",
            out.classic_key_name, out.classic_key_type, out.classic_key_id
        );
        text.push_str(&out.public_key);
        Ok(text)
    })
    .await
}

/// The public key as PEM, then as an OpenSSH line.
pub(super) async fn get_rsa_public(a: KeyNameArgs) -> anyhow::Result<()> {
    let request = GetRsaPublic { name: a.name };
    respond(&a.global, &request, |out| {
        let mut text = out.pem.trim_end().to_string();
        if !out.ssh.is_empty() {
            text.push('\n');
            text.push_str(out.ssh.trim_end());
        }
        Ok(text)
    })
    .await
}

fn encrypt_body(a: EncryptArgs) -> anyhow::Result<Encrypt> {
    Ok(Encrypt {
        key_name: a.key_name,
        plaintext: secret_or_stdin(a.plaintext, false)?,
        encryption_context: pairs_map("encryption-context", a.encryption_context)?,
        input_format: a.input_format,
        version: a.version,
    })
}

/// Prints the ciphertext (base64).
pub(super) async fn encrypt(a: EncryptArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let request = encrypt_body(a)?;
    respond(&global, &request, |out| {
        if out.result.is_empty() {
            bail!("the gateway answered without a ciphertext");
        }
        Ok(out.result)
    })
    .await
}

/// Prints the plaintext.
pub(super) async fn decrypt(a: DecryptArgs) -> anyhow::Result<()> {
    let request = Decrypt {
        key_name: a.key_name,
        ciphertext: a.ciphertext.trim().to_string(),
        encryption_context: pairs_map("encryption-context", a.encryption_context)?,
        output_format: a.output_format,
    };
    respond(&a.global, &request, |out| {
        Ok(out.result.expose_secret().to_string())
    })
    .await
}

pub(super) async fn rotate_key(a: KeyNameArgs) -> anyhow::Result<()> {
    let request = RotateKey { name: a.name };
    respond(&a.global, &request, |out| {
        Ok(format!(
            "Rotated key {}: version {} ({})",
            out.name, out.new_item_version, out.classic_key_type
        ))
    })
    .await
}

pub(super) async fn update_classic_key_certificate(
    a: UpdateClassicKeyCertificateArgs,
) -> anyhow::Result<()> {
    let request = UpdateClassicKeyCertificate {
        name: a.name,
        cert_file_data: pem_file(&a.cert_file_path, "certificate")?,
    };
    respond(&a.global, &request, |out| {
        Ok(format!(
            "Attached the certificate to key {}: version {}",
            out.name, out.new_item_version
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;
    use serde_json::json;

    fn try_parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("coffer").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn akeyless_style_key_commands() {
        let Ok(Command::CreateKey(a)) = try_parse(&[
            "create-key",
            "--name",
            "/k/ca",
            "--alg",
            "RSA2048",
            "--tag",
            "a",
            "--tag",
            "b",
            "--generate-self-signed-certificate",
            "--certificate-ttl",
            "365",
            "--certificate-common-name",
            "Root CA",
            "--certificate-country",
            "FR",
        ]) else {
            panic!("wrong command")
        };
        assert_eq!(
            serde_json::to_value(create_key_body(a)).unwrap(),
            json!({
                "name": "/k/ca",
                "alg": "RSA2048",
                "tag": ["a", "b"],
                "generate-self-signed-certificate": true,
                "certificate-ttl": 365,
                "certificate-common-name": "Root CA",
                "certificate-country": "FR"
            })
        );

        let Ok(Command::Encrypt(a)) = try_parse(&[
            "encrypt",
            "--key-name",
            "/k/aes",
            "--plaintext",
            "-not-stdin",
            "--encryption-context",
            "app=web",
            "--encryption-context",
            "env=a=b",
        ]) else {
            panic!("wrong command")
        };
        let body = encrypt_body(a).unwrap();
        assert!(!format!("{body:?}").contains("-not-stdin"));
        assert_eq!(
            serde_json::to_value(body).unwrap(),
            json!({
                "key-name": "/k/aes",
                "plaintext": "-not-stdin",
                "encryption-context": {"app": "web", "env": "a=b"}
            })
        );
        let Ok(Command::Encrypt(a)) = try_parse(&[
            "encrypt",
            "--key-name",
            "/k",
            "--plaintext",
            "x",
            "--encryption-context",
            "a=1",
            "--encryption-context",
            "a=2",
        ]) else {
            panic!("wrong command")
        };
        assert!(encrypt_body(a).is_err(), "a context key given twice");
        for bad in [
            &[
                "encrypt",
                "--key-name",
                "/k",
                "--plaintext",
                "x",
                "--encryption-context",
                "novalue",
            ][..],
            &[
                "encrypt",
                "--key-name",
                "/k",
                "--plaintext",
                "x",
                "--input-format",
                "hex",
            ],
            &["decrypt", "--key-name", "/k"],
            &[
                "create-classic-key",
                "-n",
                "/k",
                "--alg",
                "AES256GCM",
                "--key-data",
                "AA==",
                "--key-file-path",
                "/k.pem",
            ],
            &["update-classic-key-certificate", "-n", "/k"],
        ] {
            assert!(try_parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(
            try_parse(&["get-rsa-public", "-n", "/k"]),
            Ok(Command::GetRsaPublic(_))
        ));
        assert!(matches!(
            try_parse(&["rotate-key", "--name", "/k"]),
            Ok(Command::RotateKey(_))
        ));
        assert!(matches!(
            try_parse(&["create-dfc-key", "-n", "/k", "--alg", "AES256GCM"]),
            Ok(Command::CreateKey(_))
        ));
    }

    #[test]
    fn classic_keys_read_their_files_locally() {
        let dir = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n";
        let pem_path = dir.path().join("k.pem");
        std::fs::write(&pem_path, pem).unwrap();
        let der_path = dir.path().join("k.der");
        std::fs::write(&der_path, [0x30u8, 0x2e, 0x02, 0x01, 0xff]).unwrap();
        let cert_path = dir.path().join("c.pem");
        std::fs::write(
            &cert_path,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let body = |args: &[&str]| {
            let Ok(Command::CreateClassicKey(a)) = try_parse(args) else {
                panic!("wrong command")
            };
            serde_json::to_value(create_classic_key_body(a).unwrap()).unwrap()
        };
        let v = body(&[
            "create-classic-key",
            "-n",
            "/k",
            "--alg",
            "Ed25519",
            "--key-file-path",
            pem_path.to_str().unwrap(),
            "--cert-file-path",
            cert_path.to_str().unwrap(),
            "--tag",
            "t",
        ]);
        assert_eq!(v["key-data"], pem.trim());
        assert!(
            v["cert-file-data"]
                .as_str()
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        assert_eq!(v["tags"], json!(["t"]));
        let v = body(&[
            "create-classic-key",
            "-n",
            "/k",
            "--alg",
            "EC256",
            "--key-file-path",
            der_path.to_str().unwrap(),
        ]);
        assert_eq!(v["key-data"], "MC4CAf8=");
        let v = body(&[
            "create-classic-key",
            "-n",
            "/k",
            "--alg",
            "EC256",
            "--generate-self-signed-certificate",
            "--certificate-ttl",
            "30",
        ]);
        assert_eq!(
            v,
            json!({"name": "/k", "alg": "EC256", "generate-self-signed-certificate": true, "certificate-ttl": 30})
        );
        // Not PEM: refused before anything is sent.
        let Ok(Command::UpdateClassicKeyCertificate(a)) = try_parse(&[
            "update-classic-key-certificate",
            "-n",
            "/k",
            "--cert-file-path",
            der_path.to_str().unwrap(),
        ]) else {
            panic!("wrong command")
        };
        assert!(pem_file(&a.cert_file_path, "certificate").is_err());
    }
}
