//! Cloud identity documents (`cloud-id`) for the `akeyless` provider's
//! `aws_iam`, `azure_ad` and `gcp` access types, computed on this host as
//! Akeyless' cloud-id tools do:
//!
//! - `aws_iam`: a SigV4-signed STS `GetCallerIdentity` request (signed with
//!   this host's AWS credentials: environment, shared files, ECS, IMDSv2),
//!   which the server replays to STS. The URL signed is
//!   `AWS_ENDPOINT_URL_STS` / `AWS_ENDPOINT_URL` when set, else
//!   `https://sts.amazonaws.com/` (the server's default `sts-url`).
//! - `azure_ad`: the managed identity's access token from the instance
//!   metadata service (`AZURE_POD_IDENTITY_AUTHORITY_HOST` overrides the
//!   IMDS address), for `azure_object_id` when given, requested for the
//!   resource the server expects (see below).
//! - `gcp`: an instance identity token for `gcp_audience` from the metadata
//!   server (`GCE_METADATA_HOST` overrides its address).
//!
//! Audiences: a token is requested for the server it is sent to, never for
//! another service that would accept it too. Coffer's defaults are
//! [`COFFER_AZURE_AUDIENCE`] and [`COFFER_GCP_AUDIENCE`] (the server's own
//! defaults, `coffer-server/src/identity/cloud_jwt.rs`); Akeyless' endpoints
//! (`*.akeyless.io`) expect ARM's resource and `akeyless.io`, which is what
//! the Akeyless cloud-id libraries request. `gcp_audience` or the
//! `COFFER_AZURE_AUDIENCE` variable override them.
//!
//! Every document is returned base64-encoded, in a `SecretString`.
//!
//! # Plain HTTP to the metadata services
//!
//! The Azure IMDS and the GCP metadata server only speak plain HTTP, on the
//! link-local address 169.254.169.254 (GCP also by its name
//! `metadata.google.internal`, which resolves to it on GCE): that traffic
//! stays between the VM and its hypervisor. Plain `http://` is therefore
//! accepted for exactly [`AZURE_IMDS_HOSTS`] and [`GCP_METADATA_HOSTS`]
//! (and loopback, for tests and local emulators). An override
//! (`AZURE_POD_IDENTITY_AUTHORITY_HOST`, `GCE_METADATA_HOST`) naming any
//! other plain-HTTP host is refused before connecting unless
//! `COFFER_ALLOW_INSECURE_HTTP` is set: the reply is a bearer credential.
//! Redirects are never followed.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::providers::aws::{Credentials, host_credentials, sigv4_headers};
use crate::providers::{Env, ProviderError, check_plain_http, http_client, refuse_redirect};

const STS_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
const STS_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// The Azure instance metadata service (plain HTTP by design, link-local).
pub const AZURE_IMDS_HOSTS: &[&str] = &["169.254.169.254"];
/// The GCP metadata server, by name and address (plain HTTP by design,
/// link-local).
pub const GCP_METADATA_HOSTS: &[&str] = &["metadata.google.internal", "169.254.169.254"];

/// The Entra ID resource a Coffer `azure_ad` method expects by default.
pub const COFFER_AZURE_AUDIENCE: &str = "api://coffer";
/// The audience a Coffer `gcp` method expects by default.
pub const COFFER_GCP_AUDIENCE: &str = "coffer";
/// What Akeyless expects (and its cloud-id libraries request).
pub const AKEYLESS_AZURE_AUDIENCE: &str = "https://management.azure.com/";
pub const AKEYLESS_GCP_AUDIENCE: &str = "akeyless.io";
/// The variable that names the Entra ID resource to request (GitLab's
/// `akeyless:` block has no field for it).
pub const AZURE_AUDIENCE_VARIABLE: &str = "COFFER_AZURE_AUDIENCE";

/// Is `api_url` one of Akeyless' own endpoints (`akeyless.io` or a
/// subdomain)? Anything else is taken to be a Coffer server.
fn is_akeyless_service(api_url: &str) -> bool {
    reqwest::Url::parse(api_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.to_ascii_lowercase()))
        .is_some_and(|h| h == "akeyless.io" || h.ends_with(".akeyless.io"))
}

/// The resource an `azure_ad` token is requested for when none is
/// configured: the default of the server at `api_url`.
pub fn default_azure_audience(api_url: &str) -> &'static str {
    if is_akeyless_service(api_url) {
        AKEYLESS_AZURE_AUDIENCE
    } else {
        COFFER_AZURE_AUDIENCE
    }
}

/// The audience a `gcp` token is requested for when `gcp_audience` is not
/// set: the default of the server at `api_url`.
pub fn default_gcp_audience(api_url: &str) -> &'static str {
    if is_akeyless_service(api_url) {
        AKEYLESS_GCP_AUDIENCE
    } else {
        COFFER_GCP_AUDIENCE
    }
}

/// The STS URL an `aws_iam` cloud-id is signed for.
pub fn aws_sts_url(env: &Env) -> String {
    env.get("AWS_ENDPOINT_URL_STS")
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
        .map(|u| if u.ends_with('/') { u } else { format!("{u}/") })
        .unwrap_or_else(|| "https://sts.amazonaws.com/".into())
}

/// `aws_iam`: sign GetCallerIdentity with this host's credentials.
pub async fn aws_iam(env: &Env) -> Result<SecretString, ProviderError> {
    let client = http_client(METADATA_TIMEOUT)?;
    let credentials = host_credentials(&client, env).await?;
    aws_iam_with(&credentials, &aws_sts_url(env))
}

/// `aws_iam` with given credentials (signed for us-east-1, where the
/// global STS endpoint lives).
pub fn aws_iam_with(
    credentials: &Credentials,
    sts_url: &str,
) -> Result<SecretString, ProviderError> {
    let url = reqwest::Url::parse(sts_url)
        .map_err(|e| ProviderError::Config(format!("invalid STS URL {sts_url}: {e}")))?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return Err(ProviderError::Config(format!("invalid STS URL {sts_url}"))),
    };
    let signed = sigv4_headers(
        credentials,
        "us-east-1",
        "sts",
        url.as_str(),
        &[("content-type", STS_CONTENT_TYPE), ("host", &host)],
        STS_BODY.as_bytes(),
    )?;
    let mut headers = serde_json::Map::new();
    headers.insert("Content-Type".into(), json!([STS_CONTENT_TYPE]));
    headers.insert("Host".into(), json!([host]));
    for (name, value) in signed {
        let name = match name.as_str() {
            "authorization" => "Authorization".to_owned(),
            "x-amz-date" => "X-Amz-Date".to_owned(),
            "x-amz-security-token" => "X-Amz-Security-Token".to_owned(),
            _ => name,
        };
        headers.insert(name, json!([value]));
    }
    let doc = json!({
        "sts_request_method": "POST",
        "sts_request_url": STANDARD.encode(url.as_str()),
        "sts_request_body": STANDARD.encode(STS_BODY),
        "sts_request_headers": STANDARD.encode(serde_json::Value::Object(headers).to_string()),
    });
    Ok(SecretString::from(STANDARD.encode(doc.to_string())))
}

/// `azure_ad`: the managed identity's token from IMDS, for `resource`.
pub async fn azure_ad(
    env: &Env,
    object_id: &str,
    resource: &str,
) -> Result<SecretString, ProviderError> {
    let base = env
        .get("AZURE_POD_IDENTITY_AUTHORITY_HOST")
        .unwrap_or_else(|| "http://169.254.169.254".into());
    let mut url = reqwest::Url::parse(&format!(
        "{}/metadata/identity/oauth2/token",
        base.trim_end_matches('/')
    ))
    .map_err(|e| ProviderError::Config(format!("invalid IMDS address {base}: {e}")))?;
    url.query_pairs_mut()
        .append_pair("api-version", "2018-02-01")
        .append_pair("resource", resource);
    if !object_id.is_empty() {
        url.query_pairs_mut().append_pair("object_id", object_id);
    }
    let reply = metadata_get(
        env,
        url,
        AZURE_IMDS_HOSTS,
        ("Metadata", "true"),
        "Azure instance metadata (managed identity)",
    )
    .await?;
    #[derive(serde::Deserialize)]
    struct TokenReply {
        access_token: SecretString,
    }
    let token: TokenReply = serde_json::from_slice(&reply).map_err(|_| {
        ProviderError::Transport(
            "Azure instance metadata: the reply has no access_token (is a managed identity assigned to this machine?)".into(),
        )
    })?;
    Ok(SecretString::from(
        STANDARD.encode(token.access_token.expose_secret()),
    ))
}

/// `gcp`: an identity token for `audience` from the metadata server.
pub async fn gcp(env: &Env, audience: &str) -> Result<SecretString, ProviderError> {
    let host = env
        .get("GCE_METADATA_HOST")
        .unwrap_or_else(|| "metadata.google.internal".into());
    let base = if host.contains("://") {
        host
    } else {
        format!("http://{host}")
    };
    let mut url = reqwest::Url::parse(&format!(
        "{}/computeMetadata/v1/instance/service-accounts/default/identity",
        base.trim_end_matches('/')
    ))
    .map_err(|e| ProviderError::Config(format!("invalid metadata server address {base}: {e}")))?;
    url.query_pairs_mut()
        .append_pair(
            "audience",
            if audience.is_empty() {
                COFFER_GCP_AUDIENCE
            } else {
                audience
            },
        )
        .append_pair("format", "full");
    let reply = metadata_get(
        env,
        url,
        GCP_METADATA_HOSTS,
        ("Metadata-Flavor", "Google"),
        "GCP metadata server (identity token)",
    )
    .await?;
    let token = String::from_utf8(reply.to_vec()).map_err(|_| {
        ProviderError::Transport("GCP metadata server: the token is not text".into())
    })?;
    Ok(SecretString::from(STANDARD.encode(token.trim())))
}

async fn metadata_get(
    env: &Env,
    url: reqwest::Url,
    plain_http_hosts: &[&str],
    (header, value): (&str, &str),
    what: &str,
) -> Result<zeroize::Zeroizing<Vec<u8>>, ProviderError> {
    check_plain_http(what, &url, env, plain_http_hosts)?;
    let client = http_client(METADATA_TIMEOUT)?;
    let response = client
        .get(url)
        .header(header, value)
        .send()
        .await
        .map_err(|e| {
            ProviderError::Credentials(format!(
                "{what} could not be reached ({}): is this job running on that cloud?",
                if e.is_timeout() {
                    "timed out"
                } else {
                    "cannot connect"
                }
            ))
        })?;
    refuse_redirect(what, &response)?;
    let status = response.status();
    let body = crate::providers::read_capped(what, response).await?;
    if !status.is_success() {
        return Err(ProviderError::Api {
            status: status.as_u16(),
            code: String::new(),
            message: format!("{what} answered HTTP {}", status.as_u16()),
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_cloud_id_is_a_signed_get_caller_identity() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            SecretString::from("secret".to_owned()),
            Some(SecretString::from("session".to_owned())),
            None,
            "test",
        );
        let id = aws_iam_with(&creds, "http://127.0.0.1:5000/").unwrap();
        let doc: serde_json::Value =
            serde_json::from_slice(&STANDARD.decode(id.expose_secret()).unwrap()).unwrap();
        let field = |k: &str| {
            String::from_utf8(STANDARD.decode(doc[k].as_str().unwrap()).unwrap()).unwrap()
        };
        assert_eq!(doc["sts_request_method"], "POST");
        assert_eq!(field("sts_request_url"), "http://127.0.0.1:5000/");
        assert_eq!(field("sts_request_body"), STS_BODY);
        let headers: serde_json::Value =
            serde_json::from_str(&field("sts_request_headers")).unwrap();
        let auth = headers["Authorization"][0].as_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
            "{auth}"
        );
        assert!(auth.contains("/us-east-1/sts/aws4_request"), "{auth}");
        assert!(
            auth.contains("host") && auth.contains("x-amz-date"),
            "{auth}"
        );
        assert_eq!(headers["X-Amz-Security-Token"][0], "session");
        assert_eq!(headers["Host"][0], "127.0.0.1:5000");
    }

    #[test]
    fn default_audiences_follow_the_server() {
        for coffer in [
            "https://coffer.example.com",
            "http://127.0.0.1:8200",
            "https://akeyless.io.evil.example",
            "https://notakeyless.io",
            "not a url",
        ] {
            assert_eq!(
                default_azure_audience(coffer),
                COFFER_AZURE_AUDIENCE,
                "{coffer}"
            );
            assert_eq!(
                default_gcp_audience(coffer),
                COFFER_GCP_AUDIENCE,
                "{coffer}"
            );
        }
        for akeyless in [
            "https://api.akeyless.io",
            "https://API.Akeyless.IO/v2",
            "https://akeyless.io",
        ] {
            assert_eq!(default_azure_audience(akeyless), AKEYLESS_AZURE_AUDIENCE);
            assert_eq!(default_gcp_audience(akeyless), AKEYLESS_GCP_AUDIENCE);
        }
    }

    #[test]
    fn sts_url_from_the_standard_variables() {
        let env = Env::from_pairs([("AWS_ENDPOINT_URL", "http://127.0.0.1:9")]);
        assert_eq!(aws_sts_url(&env), "http://127.0.0.1:9/");
        let env = Env::from_pairs([
            ("AWS_ENDPOINT_URL", "http://a"),
            ("AWS_ENDPOINT_URL_STS", "http://b/"),
        ]);
        assert_eq!(aws_sts_url(&env), "http://b/");
        assert_eq!(
            aws_sts_url(&Env::from_pairs::<&str, &str>([])),
            "https://sts.amazonaws.com/"
        );
    }
}
