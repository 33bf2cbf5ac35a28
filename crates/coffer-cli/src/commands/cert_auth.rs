//! Client-certificate auth methods: `create-auth-method-cert`,
//! `update-auth-method-cert`, and the cert login of `coffer auth`
//! (the challenge is checked and signed here, behind Coffer's prefix; the
//! private key is never sent).

use std::path::Path;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_client::ops::{Auth, CreateAuthMethodCert, UpdateAuthMethodCert};

use super::respond;
use crate::args::{CreateAuthMethodCertArgs, UpdateAuthMethodCertArgs};
use crate::output::{fields, note};
use crate::session::Context;

/// The method's settings from the flags (the CA from a file or base64).
fn settings(a: CreateAuthMethodCertArgs) -> anyhow::Result<CreateAuthMethodCert> {
    let certificate_data = match (a.certificate_data, &a.certificate_file) {
        (Some(data), _) => data.trim().to_owned(),
        (None, Some(path)) => STANDARD.encode(
            std::fs::read(path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))?,
        ),
        (None, None) => bail!("--certificate-data or --certificate-file is required"),
    };
    Ok(CreateAuthMethodCert {
        name: a.name,
        certificate_data,
        unique_identifier: a.unique_identifier,
        bound_common_names: a.bound_common_names,
        bound_dns_sans: a.bound_dns_sans,
        bound_email_sans: a.bound_email_sans,
        bound_uri_sans: a.bound_uri_sans,
        bound_organizational_units: a.bound_organizational_units,
        bound_extensions: a.bound_extensions,
        revoked_cert_ids: a.revoked_cert_ids,
        access_expires: a.access_expires,
        common: a.common.into(),
    })
}

pub(super) async fn create_auth_method_cert(a: CreateAuthMethodCertArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let request = settings(a)?;
    respond(&global, &request, |out| {
        note(&format!(
            "Clients log in with: coffer auth --access-id {} --access-type cert --cert-file-name client.pem --key-file-name client.key",
            out.access_id
        ));
        Ok(fields(&[("name", out.name), ("access_id", out.access_id)]))
    })
    .await
}

pub(super) async fn update_auth_method_cert(a: UpdateAuthMethodCertArgs) -> anyhow::Result<()> {
    let global = a.settings.global.clone();
    let request = UpdateAuthMethodCert {
        settings: settings(a.settings)?,
        new_name: a.new_name,
    };
    respond(&global, &request, |out| Ok(fields(&[("name", out.name)]))).await
}

/// `request` completed for a cert login: the certificate from
/// `cert_file`, a challenge from the server for it, and the challenge
/// signed with the key in `key_file` (which stays here).
pub(super) async fn with_signed_challenge(
    ctx: &Context,
    mut request: Auth,
    cert_file: Option<&Path>,
    key_file: Option<&Path>,
) -> anyhow::Result<Auth> {
    let (Some(cert_file), Some(key_file)) = (cert_file, key_file) else {
        bail!(
            "--cert-file-name and --key-file-name are required for --access-type cert (the client certificate and its private key, PEM; the key signs the server's challenge here and is never sent)"
        );
    };
    let cert_pem = std::fs::read(cert_file)
        .with_context(|| format!("cannot read the certificate {}", cert_file.display()))?;
    let key = zeroize::Zeroizing::new(
        std::fs::read(key_file)
            .with_context(|| format!("cannot read the private key {}", key_file.display()))?,
    );
    let cert_data = STANDARD.encode(&cert_pem);
    let challenge = ctx
        .client
        .get_cert_challenge(&request.access_id, &cert_data)
        .await?
        .challenge;
    // The gateway chose this text: sign nothing but a challenge of exactly
    // the form the server issues, and only behind Coffer's prefix, so a
    // hostile gateway cannot have the key sign something usable elsewhere
    // (a JWS, another service's challenge).
    if !coffer_core::cert_login::is_challenge_form(&challenge) {
        bail!(
            "the gateway's login challenge is not a Coffer challenge ({} base64url characters): refusing to sign it with {}",
            coffer_core::cert_login::CHALLENGE_CHARS,
            key_file.display()
        );
    }
    let message = coffer_core::cert_login::signed_message(&challenge);
    let signature =
        coffer_keys::keys::sign_with_private_key(&key, &message).with_context(|| {
            format!(
                "cannot sign the login challenge with {}",
                key_file.display()
            )
        })?;
    request.cert_data = Some(cert_data);
    request.cert_challenge = Some(challenge);
    request.signed_cert_challenge = Some(STANDARD.encode(signature));
    Ok(request)
}
