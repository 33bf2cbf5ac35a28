//! The `aws_secrets_manager` provider: AWS Secrets Manager `GetSecretValue`,
//! authenticated with STS `AssumeRoleWithWebIdentity` (the job's ID token)
//! or with the host's own credentials, as GitLab Runner's resolver does.
//!
//! No AWS SDK: the STS exchange is an unsigned form POST with an XML reply,
//! `GetSecretValue` one SigV4-signed JSON POST (signed by `aws-sigv4`).
//!
//! The steps are separate so that the caller can share one login between
//! many secrets:
//!
//! 1. [`plan`] checks one secret against the job's settings ([`JobSettings`])
//!    and the endpoints ([`Endpoints`]) without any I/O: region, version
//!    selector, and how to authenticate ([`Auth`]).
//! 2. [`assume_role_with_web_identity`] (for [`Auth::WebIdentity`], cache the
//!    result under [`WebIdentity::cache_key`]) or [`host_credentials`] (for
//!    [`Auth::Host`], once per process) returns [`Credentials`].
//! 3. [`get_secret_value`] fetches the value and applies `field`.
//!
//! [`resolve`] chains the three for a single secret.
//!
//! Decisions where GitLab is silent or where Coffer deliberately differs:
//! - `version_id` together with `version_stage` is refused before any
//!   request (GitLab's documentation forbids it; its code does not check).
//! - A role ARN without a web identity token is refused before any request
//!   (GitLab sends an empty token and lets STS fail).
//! - `field` numbers keep their JSON text (`1000000` stays `1000000`, `1.50`
//!   stays `1.50`); GitLab Runner prints them with Go's `%g` (`1e+06`).
//! - A secret id that is a Secrets Manager ARN carries its region: with no
//!   per-secret `region` the request goes to the ARN's region (AWS serves a
//!   secret only in its own region), and a per-secret `region` that names
//!   another region is refused before any request. GitLab always uses the
//!   effective region, so such secrets fail there with an AWS error.
//! - Host credentials: environment variables, the shared credentials and
//!   config files (static keys only), ECS/EKS container credentials and EC2
//!   instance metadata (IMDSv2 only). Not supported: SSO, `credential_process`,
//!   `role_arn`/`source_profile` profiles and `AWS_WEB_IDENTITY_TOKEN_FILE`
//!   (use the job's ID token with a role ARN instead).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{
    Env, ProviderError, check_plain_http, clean_text, read_capped, refuse_redirect, transport,
};

type Result<T> = std::result::Result<T, ProviderError>;

/// STS API version of the `AssumeRoleWithWebIdentity` form.
pub const STS_API_VERSION: &str = "2011-06-15";
/// GitLab truncates its default role session name to this many bytes.
pub const MAX_SESSION_NAME_BYTES: usize = 64;
/// SigV4 signing name of Secrets Manager.
pub const SECRETS_MANAGER_SIGNING_NAME: &str = "secretsmanager";
/// Default EC2 instance metadata endpoint.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// ECS task credentials host (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`).
pub const ECS_CREDENTIALS_HOST: &str = "http://169.254.170.2";
/// The EC2 instance metadata addresses (IPv4 and the Nitro IPv6 one). They
/// only speak plain HTTP, on the link-local network between the instance
/// and its hypervisor (the traffic never leaves the host), so plain
/// `http://` is accepted for exactly these hosts without
/// `COFFER_ALLOW_INSECURE_HTTP`. The requests carry no credential of ours
/// (the IMDSv2 session token comes from IMDS itself).
pub const IMDS_HOSTS: &[&str] = &["169.254.169.254", "fd00:ec2::254"];
/// The ECS task and EKS Pod Identity agents (IPv4 and IPv6), link-local and
/// plain HTTP only; the AWS SDKs accept plain HTTP to exactly these (and
/// loopback) for container credentials, and so does `coffer ci`.
pub const CONTAINER_CREDENTIALS_HOSTS: &[&str] =
    &["169.254.170.2", "169.254.170.23", "fd00:ec2::23"];
/// Time allowed for each instance-metadata / container-credentials request:
/// off AWS these addresses usually do not answer at all.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------- inputs

/// One `aws_secrets_manager:` secret after `$VARIABLE` expansion. As in
/// GitLab, an empty string means "not set".
#[derive(Clone, Debug, Default)]
pub struct AwsSecret {
    /// Name or ARN of the secret (required).
    pub secret_id: String,
    /// Top-level key of a JSON secret to return instead of the whole value.
    pub field: String,
    pub region: String,
    pub version_id: String,
    pub version_stage: String,
    pub role_arn: String,
    pub role_session_name: String,
    /// The web identity token: the secret's `token:` or `$AWS_ID_TOKEN`,
    /// expanded (empty when there is none).
    pub token: SecretString,
}

/// The job-level defaults (GitLab's `server` block): per-secret values win.
#[derive(Clone, Debug, Default)]
pub struct JobSettings {
    /// `AWS_REGION`.
    pub region: String,
    /// `AWS_ROLE_ARN`.
    pub role_arn: String,
    /// `AWS_ROLE_SESSION_NAME`, or the default from [`default_session_name`].
    pub role_session_name: String,
}

impl JobSettings {
    /// Reads `AWS_REGION`, `AWS_ROLE_ARN` and `AWS_ROLE_SESSION_NAME` from
    /// the job's variables; an empty session name becomes
    /// [`default_session_name`] of `CI_JOB_ID`, `CI_PROJECT_ID` and
    /// `CI_SERVER_HOST`.
    pub fn from_variables(get: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| get(name).unwrap_or_default();
        let mut role_session_name = var("AWS_ROLE_SESSION_NAME");
        if role_session_name.is_empty() {
            let (job_id, project_id, host) = (
                var("CI_JOB_ID"),
                var("CI_PROJECT_ID"),
                var("CI_SERVER_HOST"),
            );
            role_session_name = if job_id.is_empty() && project_id.is_empty() && host.is_empty() {
                process_session_name()
            } else {
                default_session_name(&job_id, &project_id, &host, SystemTime::now())
            };
        }
        JobSettings {
            region: var("AWS_REGION"),
            role_arn: var("AWS_ROLE_ARN"),
            role_session_name,
        }
    }
}

/// GitLab's default role session name, `${CI_JOB_ID}-${CI_PROJECT_ID}-${CI_SERVER_HOST}`
/// truncated to 64 bytes (at a character boundary). Outside GitLab, when all
/// three are empty, `coffer-ci-<unix time>`.
pub fn default_session_name(
    job_id: &str,
    project_id: &str,
    server_host: &str,
    now: SystemTime,
) -> String {
    if job_id.is_empty() && project_id.is_empty() && server_host.is_empty() {
        let secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        return format!("coffer-ci-{secs}");
    }
    let mut name = format!("{job_id}-{project_id}-{server_host}");
    if name.len() > MAX_SESSION_NAME_BYTES {
        let mut end = MAX_SESSION_NAME_BYTES;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        name.truncate(end);
    }
    name
}

/// The `coffer-ci-<unix time>` session name used when the job settings have
/// none, fixed for the whole process so that every secret maps to the same
/// cached login.
fn process_session_name() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| default_session_name("", "", "", SystemTime::now()))
        .clone()
}

/// Endpoint overrides, from the standard AWS variables (service-specific
/// wins): `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL_SECRETS_MANAGER`,
/// `AWS_ENDPOINT_URL`; all ignored when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`
/// is `true`. Without an override the regional AWS endpoints are used.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    pub sts: Option<String>,
    pub secrets_manager: Option<String>,
    /// Accept a plain `http://` override to a host that is not loopback
    /// (`COFFER_ALLOW_INSECURE_HTTP`; e.g. LocalStack on a CI service host).
    pub allow_insecure_http: bool,
}

impl Endpoints {
    /// The overrides set in `env` (normally the process environment).
    pub fn from_env(env: &Env) -> Self {
        let allow_insecure_http = env.allow_insecure_http();
        if env
            .get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return Endpoints {
                allow_insecure_http,
                ..Endpoints::default()
            };
        }
        let global = env.get("AWS_ENDPOINT_URL");
        Endpoints {
            sts: env.get("AWS_ENDPOINT_URL_STS").or_else(|| global.clone()),
            secrets_manager: env.get("AWS_ENDPOINT_URL_SECRETS_MANAGER").or(global),
            allow_insecure_http,
        }
    }

    /// The STS endpoint for `region`.
    pub fn sts_url(&self, region: &str) -> Result<String> {
        endpoint_url(self.sts.as_deref(), "sts", region, self.allow_insecure_http)
    }

    /// The Secrets Manager endpoint for `region`.
    pub fn secrets_manager_url(&self, region: &str) -> Result<String> {
        endpoint_url(
            self.secrets_manager.as_deref(),
            "secretsmanager",
            region,
            self.allow_insecure_http,
        )
    }
}

/// The endpoint URL, checked: http(s), a host, no query, fragment or user
/// info, and plain `http://` only to loopback unless `allow_insecure_http`
/// (the STS request carries the job's ID token, Secrets Manager's reply the
/// secret).
fn endpoint_url(
    overridden: Option<&str>,
    service: &str,
    region: &str,
    allow_insecure_http: bool,
) -> Result<String> {
    let raw = match overridden {
        Some(url) => url.to_string(),
        None => {
            let suffix = if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else {
                "amazonaws.com"
            };
            format!("https://{service}.{region}.{suffix}")
        }
    };
    let shown = coffer_client::transport::redact_userinfo(&raw);
    let url = reqwest::Url::parse(&raw)
        .map_err(|e| ProviderError::Config(format!("invalid AWS endpoint URL '{shown}': {e}")))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(ProviderError::Config(format!(
            "invalid AWS endpoint URL '{shown}': expected http(s)://host[:port][/path]"
        )));
    }
    coffer_client::transport::check_plain_http(&url, allow_insecure_http, &[])
        .map_err(|e| ProviderError::Config(format!("AWS endpoint URL: {e}")))?;
    Ok(url.to_string())
}

// ---------------------------------------------------------------- plan

/// What [`plan`] decided for one secret.
#[derive(Clone, Debug)]
pub struct Plan {
    pub secret_id: String,
    pub field: Option<String>,
    pub version_id: Option<String>,
    pub version_stage: Option<String>,
    /// Region of the Secrets Manager request (and its SigV4 scope).
    pub region: String,
    /// Secrets Manager endpoint URL.
    pub endpoint: String,
    pub auth: Auth,
}

/// How the credentials for a secret are obtained.
#[derive(Clone, Debug)]
pub enum Auth {
    /// STS `AssumeRoleWithWebIdentity` with the job's ID token.
    WebIdentity(WebIdentity),
    /// The credentials of the host running `coffer ci` ([`host_credentials`]).
    Host,
}

/// One STS `AssumeRoleWithWebIdentity` exchange.
#[derive(Clone, Debug)]
pub struct WebIdentity {
    /// STS endpoint URL.
    pub endpoint: String,
    pub region: String,
    pub role_arn: String,
    pub session_name: String,
    pub token: SecretString,
}

/// Identifies a [`WebIdentity`] exchange for caching its [`Credentials`]:
/// endpoint, region, role, session name and a SHA-256 digest of the token
/// (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WebIdentityKey {
    pub endpoint: String,
    pub region: String,
    pub role_arn: String,
    pub session_name: String,
    pub token_sha256: [u8; 32],
}

impl WebIdentity {
    /// The cache key of this exchange.
    pub fn cache_key(&self) -> WebIdentityKey {
        use sha2::Digest as _;
        WebIdentityKey {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            role_arn: self.role_arn.clone(),
            session_name: self.session_name.clone(),
            token_sha256: sha2::Sha256::digest(self.token.expose_secret().as_bytes()).into(),
        }
    }
}

/// The parts of a Secrets Manager secret ARN
/// (`arn:<partition>:secretsmanager:<region>:<account>:secret:<name>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
}

/// Parses `id` as a Secrets Manager secret ARN; `None` for a plain name.
pub fn parse_secret_arn(id: &str) -> Option<SecretArn> {
    let rest = id.strip_prefix("arn:")?;
    let mut parts = rest.splitn(6, ':');
    let partition = parts.next()?;
    let service = parts.next()?;
    let region = parts.next()?;
    let account = parts.next()?;
    let kind = parts.next()?;
    let name = parts.next()?;
    if service != "secretsmanager" || kind != "secret" || name.is_empty() {
        return None;
    }
    Some(SecretArn {
        partition: partition.to_string(),
        region: region.to_string(),
        account: account.to_string(),
        name: name.to_string(),
    })
}

fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 40
        && region.starts_with(|c: char| c.is_ascii_lowercase())
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// Checks `secret` and decides region, endpoint, version selector and
/// authentication, without any I/O (spec §5.1):
///
/// - role ARN empty and token non-empty → `Role ARN is required when using
///   JWT for AWS authentication`;
/// - role ARN set → [`Auth::WebIdentity`] (a token is then required);
/// - otherwise → [`Auth::Host`].
pub fn plan(secret: &AwsSecret, job: &JobSettings, endpoints: &Endpoints) -> Result<Plan> {
    let id = secret.secret_id.as_str();
    if id.is_empty() {
        return Err(ProviderError::Config(
            "AWS Secrets Manager secret_id is empty".to_string(),
        ));
    }
    if !secret.version_id.is_empty() && !secret.version_stage.is_empty() {
        return Err(ProviderError::Config(format!(
            "secret '{id}': version_id and version_stage are mutually exclusive; set only one"
        )));
    }

    let arn_region = parse_secret_arn(id)
        .map(|arn| arn.region)
        .filter(|r| !r.is_empty());
    let region = match (non_empty(&secret.region), &arn_region) {
        (Some(own), Some(arn)) if own != *arn => {
            return Err(ProviderError::Config(format!(
                "secret '{id}' is in region {arn} but its region is set to {own}: \
                 AWS serves a secret only in its own region"
            )));
        }
        (Some(own), _) => own,
        (None, Some(arn)) => arn.clone(),
        (None, None) => job.region.clone(),
    };
    if region.is_empty() {
        return Err(ProviderError::Config(format!(
            "no AWS region for secret '{id}': set AWS_REGION or the secret's region"
        )));
    }
    if !valid_region(&region) {
        return Err(ProviderError::Config(format!(
            "secret '{id}': invalid AWS region '{}'",
            clean_text(&region)
        )));
    }

    let role_arn = non_empty(&secret.role_arn).unwrap_or_else(|| job.role_arn.clone());
    let has_token = !secret.token.expose_secret().is_empty();
    let auth = if role_arn.is_empty() {
        if has_token {
            return Err(ProviderError::Config(
                "Role ARN is required when using JWT for AWS authentication".to_string(),
            ));
        }
        Auth::Host
    } else {
        if !has_token {
            return Err(ProviderError::Config(format!(
                "secret '{id}': role {role_arn} needs a web identity token: declare an \
                 id_token named AWS_ID_TOKEN or set the secret's token"
            )));
        }
        // STS is called in the effective region (the secret's, else the
        // job's); the ARN's region only when neither is set.
        let sts_region = non_empty(&secret.region)
            .or_else(|| non_empty(&job.region))
            .unwrap_or_else(|| region.clone());
        if !valid_region(&sts_region) {
            return Err(ProviderError::Config(format!(
                "invalid AWS region '{}'",
                clean_text(&sts_region)
            )));
        }
        let session_name = non_empty(&secret.role_session_name)
            .or_else(|| non_empty(&job.role_session_name))
            .unwrap_or_else(process_session_name);
        Auth::WebIdentity(WebIdentity {
            endpoint: endpoints.sts_url(&sts_region)?,
            region: sts_region,
            role_arn,
            session_name,
            token: secret.token.clone(),
        })
    };

    Ok(Plan {
        secret_id: id.to_string(),
        field: non_empty(&secret.field),
        version_id: non_empty(&secret.version_id),
        version_stage: non_empty(&secret.version_stage),
        endpoint: endpoints.secrets_manager_url(&region)?,
        region,
        auth,
    })
}

// ---------------------------------------------------------------- credentials

/// AWS credentials (long-term or temporary). `Debug` shows the access key id
/// and the source only.
#[derive(Clone)]
pub struct Credentials {
    inner: aws_credential_types::Credentials,
    expiration: Option<SystemTime>,
    source: String,
}

impl Credentials {
    /// `source` says where they came from, for error messages.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: SecretString,
        session_token: Option<SecretString>,
        expiration: Option<SystemTime>,
        source: impl Into<String>,
    ) -> Self {
        Credentials {
            inner: aws_credential_types::Credentials::new(
                access_key_id,
                secret_access_key.expose_secret().to_string(),
                session_token.map(|t| t.expose_secret().to_string()),
                None,
                "coffer-ci",
            ),
            expiration,
            source: source.into(),
        }
    }

    pub fn access_key_id(&self) -> &str {
        self.inner.access_key_id()
    }

    pub fn expiration(&self) -> Option<SystemTime> {
        self.expiration
    }

    /// Where the credentials came from (`environment variables`,
    /// `AssumeRoleWithWebIdentity <role>`, …).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the credentials expire within `margin` from now: a caller
    /// holding them in a cache should fetch new ones.
    pub fn expires_within(&self, margin: Duration) -> bool {
        self.expiration
            .is_some_and(|at| at <= SystemTime::now() + margin)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id())
            .field("expiration", &self.expiration)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

fn parse_time(text: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
        .ok()
        .map(SystemTime::from)
}

/// STS `AssumeRoleWithWebIdentity`: exchanges the job's ID token for
/// temporary credentials. Unsigned form POST; the XML reply's
/// `Credentials/{AccessKeyId,SecretAccessKey,SessionToken,Expiration}` are
/// returned, an `ErrorResponse/Error/{Code,Message}` becomes a readable
/// [`ProviderError::Api`].
pub async fn assume_role_with_web_identity(
    client: &reqwest::Client,
    request: &WebIdentity,
) -> Result<Credentials> {
    let what = format!(
        "AWS STS AssumeRoleWithWebIdentity for role {}",
        request.role_arn
    );
    let form: [(&str, &str); 5] = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", STS_API_VERSION),
        ("RoleArn", &request.role_arn),
        ("RoleSessionName", &request.session_name),
        ("WebIdentityToken", request.token.expose_secret()),
    ];
    let response = client
        .post(&request.endpoint)
        .header(reqwest::header::ACCEPT, "text/xml")
        .form(&form)
        .send()
        .await
        .map_err(|e| transport(&what, &e))?;
    refuse_redirect(&what, &response)?;
    let status = response.status();
    let body = read_capped(&what, response).await?;
    let text = String::from_utf8_lossy(&body);

    if !status.is_success() {
        let text = String::from_utf8_lossy(&super::scrub(
            text.as_bytes(),
            &[request.token.expose_secret()],
        ))
        .into_owned();
        let fields = xml_children(&text, "Error").unwrap_or_default();
        let code = fields.get("Code").cloned().unwrap_or_default();
        let message = fields.get("Message").cloned().unwrap_or_default();
        let hint = match code.as_str() {
            "InvalidIdentityToken" | "ExpiredTokenException" => {
                ": check the ID token (id_tokens aud must be the audience the IAM OIDC provider \
                 expects, usually sts.amazonaws.com) and that the token has not expired"
            }
            "AccessDenied" => {
                ": check the role's trust policy (OIDC provider, aud and sub conditions)"
            }
            _ => "",
        };
        let detail = match (code.is_empty(), message.is_empty()) {
            (true, true) => format!("unexpected reply {}", clean_text(&text)),
            (false, true) => code.clone(),
            (true, false) => clean_text(&message),
            (false, false) => format!("{code}: {}", clean_text(&message)),
        };
        return Err(ProviderError::Api {
            status: status.as_u16(),
            message: format!("{what} failed (HTTP {}): {detail}{hint}", status.as_u16()),
            code,
        }
        .redact(&[request.token.expose_secret()]));
    }

    let bad_reply =
        |why: &str| ProviderError::Transport(format!("{what}: unexpected reply: {why}"));
    let mut fields = xml_children(&text, "Credentials").map_err(|e| bad_reply(&e))?;
    let mut take = |name: &str| {
        fields
            .remove(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| bad_reply(&format!("no Credentials/{name}")))
    };
    let access_key_id = take("AccessKeyId")?;
    let secret_access_key = SecretString::from(take("SecretAccessKey")?);
    let session_token = SecretString::from(take("SessionToken")?);
    let expiration = take("Expiration").ok().and_then(|t| parse_time(&t));
    Ok(Credentials::new(
        access_key_id,
        secret_access_key,
        Some(session_token),
        expiration,
        format!("AssumeRoleWithWebIdentity {}", request.role_arn),
    ))
}

/// The text of every direct child element of the first `<parent>` element
/// (by local name, entities and CDATA resolved; the first occurrence of a
/// name wins).
fn xml_children(xml: &str, parent: &str) -> std::result::Result<HashMap<String, String>, String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut out = HashMap::new();
    let mut raw = String::new();
    let mut found = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| format!("invalid XML: {e}"))?;
        let in_child = |stack: &[String]| stack.len() >= 2 && stack[stack.len() - 2] == parent;
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_string();
                if name == parent {
                    found = true;
                }
                stack.push(name);
                raw.clear();
            }
            Event::Text(t) if in_child(&stack) => raw.push_str(&t.xml10_content()),
            Event::GeneralRef(r) if in_child(&stack) => {
                raw.push('&');
                raw.push_str(&r.xml10_content());
                raw.push(';');
            }
            Event::CData(c) if in_child(&stack) => {
                let text = c.into_inner().into_owned();
                raw.push_str(&quick_xml::escape::escape(text));
            }
            Event::End(_) => {
                if in_child(&stack) {
                    let value = quick_xml::escape::unescape(&raw)
                        .map_err(|e| format!("invalid XML text: {e}"))?
                        .into_owned();
                    let name = stack.last().cloned().unwrap_or_default();
                    out.entry(name).or_insert(value);
                }
                let closed = stack.pop();
                raw.clear();
                if found && closed.as_deref() == Some(parent) {
                    return Ok(out);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if found {
        Ok(out)
    } else {
        Err(format!("no <{parent}> element"))
    }
}

/// The credentials of the host running `coffer ci` (never the job's
/// variables), tried in this order:
///
/// 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
/// 2. the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
///    `~/.aws/credentials`) and config file (`AWS_CONFIG_FILE`, else
///    `~/.aws/config`), profile `AWS_PROFILE` or `default`, static keys only;
/// 3. ECS/EKS container credentials (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
///    or `AWS_CONTAINER_CREDENTIALS_FULL_URI`, with
///    `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`);
/// 4. EC2 instance metadata, IMDSv2 (`AWS_EC2_METADATA_SERVICE_ENDPOINT`,
///    skipped when `AWS_EC2_METADATA_DISABLED=true`).
///
/// When none yields credentials the error lists what was tried and why each
/// source did not apply.
pub async fn host_credentials(client: &reqwest::Client, env: &Env) -> Result<Credentials> {
    let mut tried: Vec<String> = Vec::new();

    // 1. environment
    match (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => {
            return Ok(Credentials::new(
                id,
                SecretString::from(secret),
                env.get("AWS_SESSION_TOKEN").map(SecretString::from),
                None,
                "environment variables",
            ));
        }
        (Some(_), None) => tried.push(
            "environment variables (AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not)"
                .to_string(),
        ),
        (None, Some(_)) => tried.push(
            "environment variables (AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not)"
                .to_string(),
        ),
        (None, None) => tried.push("environment variables (AWS_ACCESS_KEY_ID not set)".to_string()),
    }

    // 2. shared files
    match shared_file_credentials(env)? {
        Ok(credentials) => return Ok(credentials),
        Err(why) => tried.push(why),
    }

    // 3. container credentials
    match container_credentials(client, env).await? {
        Ok(credentials) => return Ok(credentials),
        Err(why) => tried.push(why),
    }

    // 4. IMDSv2
    match imds_credentials(client, env).await? {
        Ok(credentials) => return Ok(credentials),
        Err(why) => tried.push(why),
    }

    Err(ProviderError::Credentials(format!(
        "no AWS credentials found on this host; tried: {}. To use OpenID Connect instead, \
         set AWS_ROLE_ARN and declare an AWS_ID_TOKEN id_token",
        tried.join("; ")
    )))
}

/// `Ok(Ok(creds))` found, `Ok(Err(why))` not applicable, `Err` a hard error
/// (an explicitly chosen profile that does not exist, an unreadable file).
fn shared_file_credentials(env: &Env) -> Result<std::result::Result<Credentials, String>> {
    let home = env.get("HOME");
    let path_of = |var: &str, default_name: &str| {
        env.get(var).or_else(|| {
            home.as_ref()
                .map(|h| format!("{}/.aws/{default_name}", h.trim_end_matches('/')))
        })
    };
    let explicit_profile = env.get("AWS_PROFILE");
    let profile = explicit_profile
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let mut notes = Vec::new();
    let mut profile_seen = false;

    for (var, default_name, is_config) in [
        ("AWS_SHARED_CREDENTIALS_FILE", "credentials", false),
        ("AWS_CONFIG_FILE", "config", true),
    ] {
        let Some(path) = path_of(var, default_name) else {
            notes.push(format!("{default_name} file (HOME not set)"));
            continue;
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => Zeroizing::new(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                notes.push(format!("{path} (not found)"));
                continue;
            }
            Err(e) => {
                return Err(ProviderError::Credentials(format!(
                    "reading AWS {default_name} file {path}: {e}"
                )));
            }
        };
        let section = if is_config && profile != "default" {
            format!("profile {profile}")
        } else {
            profile.clone()
        };
        let Some(keys) = ini_section(&text, &section) else {
            notes.push(format!("{path} (no profile {profile})"));
            continue;
        };
        profile_seen = true;
        match (
            keys.get("aws_access_key_id"),
            keys.get("aws_secret_access_key"),
        ) {
            (Some(id), Some(secret)) if !id.is_empty() && !secret.is_empty() => {
                return Ok(Ok(Credentials::new(
                    id.clone(),
                    SecretString::from(secret.clone()),
                    keys.get("aws_session_token")
                        .filter(|t| !t.is_empty())
                        .map(|t| SecretString::from(t.clone())),
                    None,
                    format!("{path} (profile {profile})"),
                )));
            }
            _ => notes.push(format!(
                "{path} (profile {profile} has no aws_access_key_id/aws_secret_access_key; \
                 SSO, credential_process and role_arn profiles are not supported)"
            )),
        }
    }
    if let Some(profile) = explicit_profile
        && !profile_seen
    {
        return Err(ProviderError::Credentials(format!(
            "AWS_PROFILE is set to '{profile}' but no such profile exists: {}",
            notes.join("; ")
        )));
    }
    Ok(Err(format!("shared files: {}", notes.join(", "))))
}

/// The `key = value` pairs of `[section]` in an INI text; `None` when the
/// section does not exist.
fn ini_section(text: &str, section: &str) -> Option<HashMap<String, String>> {
    let mut current: Option<String> = None;
    let mut found = false;
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            if name == section {
                found = true;
            }
            current = Some(name);
            continue;
        }
        if current.as_deref() != Some(section) {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            out.entry(key.trim().to_ascii_lowercase())
                .or_insert_with(|| value.trim().to_string());
        }
    }
    found.then_some(out)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetadataCredentials {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    access_key_id: Option<String>,
    #[serde(default)]
    secret_access_key: Option<SecretString>,
    #[serde(default)]
    token: Option<SecretString>,
    #[serde(default)]
    expiration: Option<String>,
}

impl MetadataCredentials {
    fn into_credentials(self, source: String) -> std::result::Result<Credentials, String> {
        if let Some(code) = self.code.filter(|c| c != "Success") {
            return Err(format!(
                "{source} answered {code}: {}",
                clean_text(self.message.as_deref().unwrap_or(""))
            ));
        }
        match (self.access_key_id, self.secret_access_key) {
            (Some(id), Some(secret)) if !id.is_empty() => Ok(Credentials::new(
                id,
                secret,
                self.token,
                self.expiration.as_deref().and_then(parse_time),
                source,
            )),
            _ => Err(format!("{source} returned no AccessKeyId/SecretAccessKey")),
        }
    }
}

async fn metadata_get(
    what: &str,
    request: reqwest::RequestBuilder,
) -> std::result::Result<Zeroizing<Vec<u8>>, String> {
    let response = request
        .timeout(METADATA_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("{what} ({})", transport_reason(&e)))?;
    if let Err(e) = refuse_redirect(what, &response) {
        return Err(e.to_string());
    }
    let status = response.status();
    let body = read_capped(what, response)
        .await
        .map_err(|e| format!("{what} ({e})"))?;
    if !status.is_success() {
        return Err(format!("{what} (HTTP {})", status.as_u16()));
    }
    Ok(body)
}

fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        super::chain(e)
    }
}

async fn container_credentials(
    client: &reqwest::Client,
    env: &Env,
) -> Result<std::result::Result<Credentials, String>> {
    let url = if let Some(relative) = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        format!("{ECS_CREDENTIALS_HOST}{relative}")
    } else if let Some(full) = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        full
    } else {
        return Ok(Err(
            "container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI not set)"
                .to_string(),
        ));
    };
    let shown = coffer_client::transport::redact_userinfo(&url);
    let parsed = reqwest::Url::parse(&url).map_err(|e| {
        ProviderError::Credentials(format!("invalid container credentials URL {shown}: {e}"))
    })?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(ProviderError::Credentials(format!(
            "invalid container credentials URL {shown}: it must not contain user info \
             (use AWS_CONTAINER_AUTHORIZATION_TOKEN)"
        )));
    }
    // As the AWS SDKs: plain HTTP only to the ECS/EKS agents or loopback
    // (or anywhere with COFFER_ALLOW_INSECURE_HTTP): the request carries
    // the container authorization token.
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ProviderError::Credentials(format!(
            "container credentials URL {url} must be https, or http to the ECS/EKS agent or loopback"
        )));
    }
    check_plain_http(
        "container credentials URL must be https, or http to the ECS/EKS agent or loopback",
        &parsed,
        env,
        CONTAINER_CREDENTIALS_HOSTS,
    )
    .map_err(|e| ProviderError::Credentials(e.to_string()))?;
    let authorization = match env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
        Some(path) => Some(Zeroizing::new(
            std::fs::read_to_string(&path)
                .map_err(|e| {
                    ProviderError::Credentials(format!(
                        "reading AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {path}: {e}"
                    ))
                })?
                .trim()
                .to_string(),
        )),
        None => env
            .get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
            .map(Zeroizing::new),
    };
    let what = format!("container credentials {url}");
    let mut request = client.get(parsed);
    if let Some(token) = &authorization {
        request = request.header(reqwest::header::AUTHORIZATION, token.as_str());
    }
    let body = match metadata_get(&what, request).await {
        Ok(body) => body,
        Err(why) => return Ok(Err(why)),
    };
    Ok(serde_json::from_slice::<MetadataCredentials>(&body)
        .map_err(|_| format!("{what} (reply is not a credentials document)"))
        .and_then(|doc| doc.into_credentials(what.clone())))
}

/// `Ok(Ok(creds))` found, `Ok(Err(why))` not available here, `Err` a
/// refused endpoint (`AWS_EC2_METADATA_SERVICE_ENDPOINT` not https, loopback
/// or an IMDS address).
async fn imds_credentials(
    client: &reqwest::Client,
    env: &Env,
) -> Result<std::result::Result<Credentials, String>> {
    if env
        .get("AWS_EC2_METADATA_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        return Ok(Err(
            "EC2 instance metadata (AWS_EC2_METADATA_DISABLED=true)".to_string(),
        ));
    }
    let base = env
        .get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
        .unwrap_or_else(|| IMDS_ENDPOINT.to_string());
    let base = base.trim_end_matches('/');
    let parsed = reqwest::Url::parse(base).map_err(|e| {
        ProviderError::Credentials(format!(
            "invalid AWS_EC2_METADATA_SERVICE_ENDPOINT {base}: {e}"
        ))
    })?;
    check_plain_http(
        "AWS_EC2_METADATA_SERVICE_ENDPOINT must be https, or http to the instance metadata address or loopback",
        &parsed,
        env,
        IMDS_HOSTS,
    )
    .map_err(|e| ProviderError::Credentials(e.to_string()))?;
    Ok(imds_fetch(client, base).await)
}

async fn imds_fetch(
    client: &reqwest::Client,
    base: &str,
) -> std::result::Result<Credentials, String> {
    let what = format!("EC2 instance metadata (IMDSv2) {base}");
    let token = metadata_get(
        &what,
        client
            .put(format!("{base}/latest/api/token"))
            .header("X-aws-ec2-metadata-token-ttl-seconds", "21600"),
    )
    .await?;
    let token = String::from_utf8(token.to_vec()).map_err(|_| format!("{what} (bad token)"))?;
    let token = Zeroizing::new(token);
    let list_url = format!("{base}/latest/meta-data/iam/security-credentials/");
    let roles = metadata_get(
        &what,
        client
            .get(&list_url)
            .header("X-aws-ec2-metadata-token", token.as_str()),
    )
    .await
    .map_err(|why| format!("{why}: no EC2 IMDS role found"))?;
    let role = String::from_utf8_lossy(&roles)
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_string)
        .ok_or_else(|| format!("{what} (no EC2 IMDS role found)"))?;
    if role.contains(['/', '?', '#']) || role == "." || role == ".." {
        return Err(format!("{what} (invalid role name)"));
    }
    let body = metadata_get(
        &what,
        client
            .get(format!("{list_url}{role}"))
            .header("X-aws-ec2-metadata-token", token.as_str()),
    )
    .await?;
    serde_json::from_slice::<MetadataCredentials>(&body)
        .map_err(|_| format!("{what} (reply is not a credentials document)"))?
        .into_credentials(format!("EC2 instance metadata (role {role})"))
}

// ---------------------------------------------------------------- Secrets Manager

/// A SigV4-signed Secrets Manager JSON client (`X-Amz-Target:
/// secretsmanager.<Operation>`, `application/x-amz-json-1.1`).
pub struct SecretsManager<'a> {
    client: &'a reqwest::Client,
    endpoint: &'a str,
    region: &'a str,
    credentials: &'a Credentials,
}

impl<'a> SecretsManager<'a> {
    pub fn new(
        client: &'a reqwest::Client,
        endpoint: &'a str,
        region: &'a str,
        credentials: &'a Credentials,
    ) -> Self {
        SecretsManager {
            client,
            endpoint,
            region,
            credentials,
        }
    }

    /// Sends one signed request and returns the reply body. `subject` names
    /// what the request is about in error messages (`secret 'app/db'`).
    /// An AWS error reply (`__type`, `message`/`Message`) becomes
    /// [`ProviderError::Api`].
    pub async fn call(
        &self,
        operation: &str,
        body: &Value,
        subject: &str,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let what = format!("AWS Secrets Manager {operation} for {subject}");
        let payload = Zeroizing::new(
            serde_json::to_vec(body)
                .map_err(|e| ProviderError::Transport(format!("{what}: {e}")))?,
        );
        let url = reqwest::Url::parse(self.endpoint).map_err(|e| {
            ProviderError::Config(format!("invalid endpoint {}: {e}", self.endpoint))
        })?;
        let target = format!("secretsmanager.{operation}");
        let content_type = "application/x-amz-json-1.1";
        let signed = self.sign(url.as_str(), content_type, &target, &payload)?;

        let mut request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .header("x-amz-target", &target);
        for (name, value) in &signed {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request
            .body(payload.to_vec())
            .send()
            .await
            .map_err(|e| transport(&what, &e))?;
        refuse_redirect(&what, &response)?;
        let status = response.status();
        let header_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let reply = read_capped(&what, response).await?;
        if status.is_success() {
            return Ok(reply);
        }
        let session = self.credentials.inner.session_token().unwrap_or_default();
        let sent = [session, self.credentials.inner.secret_access_key()];
        let reply = super::scrub(&reply, &sent);

        #[derive(Deserialize)]
        struct AwsError {
            #[serde(rename = "__type")]
            kind: Option<String>,
            message: Option<String>,
            #[serde(rename = "Message")]
            message_upper: Option<String>,
        }
        let parsed: Option<AwsError> = serde_json::from_slice(&reply).ok();
        let (kind, message) = match parsed {
            Some(e) => (e.kind, e.message.or(e.message_upper)),
            None => (None, None),
        };
        // `com.amazonaws.secretsmanager#ResourceNotFoundException`,
        // `ResourceNotFoundException:http://internal.amazon.com/…`
        let code = kind
            .or(header_type)
            .map(|k| {
                let k = k.rsplit('#').next().unwrap_or(&k);
                k.split(':').next().unwrap_or(k).to_string()
            })
            .unwrap_or_default();
        let detail = match (code.is_empty(), message) {
            (false, Some(m)) => format!("{code}: {}", clean_text(&m)),
            (false, None) => code.clone(),
            (true, Some(m)) => clean_text(&m),
            (true, None) => "no error details in the reply".to_string(),
        };
        Err(ProviderError::Api {
            status: status.as_u16(),
            message: format!("{what} failed (HTTP {}): {detail}", status.as_u16()),
            code,
        }
        .redact(&sent))
    }

    /// The SigV4 headers (`authorization`, `x-amz-date`,
    /// `x-amz-security-token`) for a POST of `payload` to `url`.
    fn sign(
        &self,
        url: &str,
        content_type: &str,
        target: &str,
        payload: &[u8],
    ) -> Result<Vec<(String, String)>> {
        sigv4_headers(
            self.credentials,
            self.region,
            SECRETS_MANAGER_SIGNING_NAME,
            url,
            &[("content-type", content_type), ("x-amz-target", target)],
            payload,
        )
    }
}

/// The SigV4 headers (`authorization`, `x-amz-date`,
/// `x-amz-security-token`) for a POST of `payload` with `headers` to `url`,
/// signed for `service` in `region`.
pub fn sigv4_headers(
    credentials: &Credentials,
    region: &str,
    service: &str,
    url: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
) -> Result<Vec<(String, String)>> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let signing_error =
        |e: &dyn std::fmt::Display| ProviderError::Config(format!("SigV4 signing failed: {e}"));
    let identity = credentials.inner.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| signing_error(&e))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().copied(),
        SignableBody::Bytes(payload),
    )
    .map_err(|e| signing_error(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| signing_error(&e))?
        .into_parts();
    Ok(instructions
        .headers()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect())
}

#[derive(Deserialize)]
struct GetSecretValueOutput {
    #[serde(rename = "SecretString", default)]
    secret_string: Option<SecretString>,
    #[serde(rename = "SecretBinary", default)]
    secret_binary: Option<SecretString>,
}

/// `GetSecretValue` for `plan` with `credentials`, then `field` extraction
/// ([`extract_field`]). `SecretString` is returned as is, else
/// `SecretBinary` base64-encoded (standard alphabet, padded), else the error
/// `secret contains no value`.
pub async fn get_secret_value(
    client: &reqwest::Client,
    plan: &Plan,
    credentials: &Credentials,
) -> Result<SecretString> {
    let id = &plan.secret_id;
    if credentials.expires_within(Duration::ZERO) {
        return Err(ProviderError::Credentials(format!(
            "the AWS credentials from {} have expired",
            credentials.source()
        )));
    }
    let mut body = json!({ "SecretId": id });
    if let Some(version_id) = &plan.version_id {
        body["VersionId"] = json!(version_id);
    }
    if let Some(stage) = &plan.version_stage {
        body["VersionStage"] = json!(stage);
    }
    let reply = SecretsManager::new(client, &plan.endpoint, &plan.region, credentials)
        .call("GetSecretValue", &body, &format!("secret '{id}'"))
        .await?;
    let output: GetSecretValueOutput = serde_json::from_slice(&reply).map_err(|_| {
        ProviderError::Transport(format!(
            "AWS Secrets Manager GetSecretValue for secret '{id}': the reply is not valid JSON"
        ))
    })?;
    let value = match (output.secret_string, output.secret_binary) {
        (Some(text), _) => text,
        (None, Some(encoded)) => {
            // The JSON protocol carries blobs as base64 already; decode and
            // re-encode so the result is always standard, padded base64.
            let bytes = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.expose_secret().trim())
                    .map_err(|_| {
                        ProviderError::Transport(format!(
                            "AWS Secrets Manager GetSecretValue for secret '{id}': \
                             SecretBinary is not base64"
                        ))
                    })?,
            );
            SecretString::from(base64::engine::general_purpose::STANDARD.encode(&*bytes))
        }
        (None, None) => {
            return Err(ProviderError::Value("secret contains no value".to_string()));
        }
    };
    match &plan.field {
        None => Ok(value),
        Some(field) => extract_field(id, value.expose_secret(), field),
    }
}

/// GitLab's `field` rule for a flat JSON secret (spec §5.1): the top-level
/// key's string as is, a boolean as `true`/`false`, a number as its JSON
/// text (**not** Go's `%g`: `1000000` stays `1000000`); null, arrays and
/// objects are refused. `a.b` is a literal key. Messages never quote the
/// secret's content.
pub fn extract_field(secret_id: &str, secret: &str, field: &str) -> Result<SecretString> {
    let parse_error = |why: String| {
        ProviderError::Value(format!(
            "failed to parse JSON for secret '{secret_id}': {why}"
        ))
    };
    if !secret.trim_start().starts_with('{') {
        return Err(parse_error("the value is not a JSON object".to_string()));
    }
    let map: HashMap<String, &RawValue> = serde_json::from_str(secret).map_err(|e| {
        parse_error(match e.classify() {
            // Syntax/EOF messages carry a position, never input text.
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => e.to_string(),
            _ => format!(
                "invalid JSON object at line {} column {}",
                e.line(),
                e.column()
            ),
        })
    })?;
    let raw = map.get(field).ok_or_else(|| {
        ProviderError::Value(format!(
            "key '{field}' not found in AWS Secrets Manager response for secret '{secret_id}'"
        ))
    })?;
    let text = raw.get();
    let not_scalar = || {
        ProviderError::Value(format!(
            "key '{field}' in aws secrets manager response for secret '{secret_id}' is not a string, number or boolean"
        ))
    };
    match text.as_bytes().first() {
        Some(b'"') => {
            let value: String = serde_json::from_str(text).map_err(|_| not_scalar())?;
            Ok(SecretString::from(value))
        }
        Some(b't' | b'f' | b'-' | b'0'..=b'9') => Ok(SecretString::from(text.to_string())),
        _ => Err(not_scalar()),
    }
}

/// One secret end to end: [`plan`], credentials ([`assume_role_with_web_identity`]
/// or [`host_credentials`] from `env`), [`get_secret_value`]. No caching: a
/// caller resolving several secrets should use the steps directly.
pub async fn resolve(
    client: &reqwest::Client,
    secret: &AwsSecret,
    job: &JobSettings,
    endpoints: &Endpoints,
    env: &Env,
) -> Result<SecretString> {
    let plan = plan(secret, job, endpoints)?;
    let credentials = match &plan.auth {
        Auth::WebIdentity(request) => assume_role_with_web_identity(client, request).await?,
        Auth::Host => host_credentials(client, env).await?,
    };
    get_secret_value(client, &plan, &credentials).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(id: &str) -> AwsSecret {
        AwsSecret {
            secret_id: id.to_string(),
            ..AwsSecret::default()
        }
    }

    fn job() -> JobSettings {
        JobSettings {
            region: "us-east-1".into(),
            role_arn: String::new(),
            role_session_name: "sess".into(),
        }
    }

    fn value(r: Result<SecretString>) -> String {
        r.map(|s| s.expose_secret().to_string())
            .unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn field_rules() {
        let s = r#"{"s":"text","n":1000000,"f":1.50,"e":1e6,"neg":-3,"t":true,"b":false,
                    "z":null,"a":[1],"o":{"x":1},"a.b":"dot","u":"\u00e9\n"}"#;
        assert_eq!(value(extract_field("id", s, "s")), "text");
        assert_eq!(value(extract_field("id", s, "n")), "1000000");
        assert_eq!(value(extract_field("id", s, "f")), "1.50");
        assert_eq!(value(extract_field("id", s, "e")), "1e6");
        assert_eq!(value(extract_field("id", s, "neg")), "-3");
        assert_eq!(value(extract_field("id", s, "t")), "true");
        assert_eq!(value(extract_field("id", s, "b")), "false");
        assert_eq!(value(extract_field("id", s, "a.b")), "dot");
        assert_eq!(value(extract_field("id", s, "u")), "é\n");
        for k in ["z", "a", "o"] {
            assert_eq!(
                value(extract_field("id", s, k)),
                format!(
                    "ERR key '{k}' in aws secrets manager response for secret 'id' is not a string, number or boolean"
                )
            );
        }
        assert_eq!(
            value(extract_field("id", s, "missing")),
            "ERR key 'missing' not found in AWS Secrets Manager response for secret 'id'"
        );
    }

    #[test]
    fn field_parse_errors_never_quote_the_secret() {
        for bad in [
            "\"hunter2\"",
            "hunter2",
            "[\"hunter2\"]",
            "{\"a\": hunter2}",
            "{\"a\":1",
        ] {
            let e = value(extract_field("id", bad, "a"));
            assert!(
                e.starts_with("ERR failed to parse JSON for secret 'id': "),
                "{e}"
            );
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn duplicate_keys_take_the_last_as_go_does() {
        assert_eq!(value(extract_field("id", r#"{"a":"1","a":"2"}"#, "a")), "2");
    }

    #[test]
    fn session_names() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            default_session_name("42", "7", "gitlab.example.com", now),
            "42-7-gitlab.example.com"
        );
        let long = default_session_name("1234567890", "99", &"h".repeat(80), now);
        assert_eq!(long.len(), 64);
        assert!(long.starts_with("1234567890-99-hhh"));
        assert_eq!(
            default_session_name("", "", "", now),
            "coffer-ci-1700000000"
        );
        let from_vars = JobSettings::from_variables(|k| match k {
            "AWS_REGION" => Some("eu-west-1".into()),
            "CI_JOB_ID" => Some("5".into()),
            "CI_PROJECT_ID" => Some("6".into()),
            "CI_SERVER_HOST" => Some("gl".into()),
            _ => None,
        });
        assert_eq!(from_vars.role_session_name, "5-6-gl");
        assert_eq!(from_vars.region, "eu-west-1");
        let explicit = JobSettings::from_variables(|k| {
            (k == "AWS_ROLE_SESSION_NAME").then(|| "mine".to_string())
        });
        assert_eq!(explicit.role_session_name, "mine");
    }

    #[test]
    fn plan_auth_decision() {
        let endpoints = Endpoints::default();
        // host credentials
        let p = plan(&secret("app/db"), &job(), &endpoints).unwrap();
        assert!(matches!(p.auth, Auth::Host));
        assert_eq!(
            p.endpoint,
            "https://secretsmanager.us-east-1.amazonaws.com/"
        );
        // JWT without ARN
        let mut s = secret("app/db");
        s.token = SecretString::from("jwt");
        let e = plan(&s, &job(), &endpoints).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Role ARN is required when using JWT for AWS authentication"
        );
        // ARN from the job, session name from the job
        let mut j = job();
        j.role_arn = "arn:aws:iam::1:role/r".into();
        let p = plan(&s, &j, &endpoints).unwrap();
        let Auth::WebIdentity(w) = &p.auth else {
            panic!("expected web identity")
        };
        assert_eq!(w.role_arn, "arn:aws:iam::1:role/r");
        assert_eq!(w.session_name, "sess");
        assert_eq!(w.endpoint, "https://sts.us-east-1.amazonaws.com/");
        // per-secret values win
        s.role_arn = "arn:aws:iam::2:role/own".into();
        s.role_session_name = "own-session".into();
        s.region = "eu-west-1".into();
        let p = plan(&s, &j, &endpoints).unwrap();
        let Auth::WebIdentity(w) = &p.auth else {
            panic!("expected web identity")
        };
        assert_eq!(
            (
                w.role_arn.as_str(),
                w.session_name.as_str(),
                w.region.as_str()
            ),
            ("arn:aws:iam::2:role/own", "own-session", "eu-west-1")
        );
        assert_eq!(p.region, "eu-west-1");
        // ARN without token
        let mut no_token = secret("app/db");
        no_token.role_arn = "arn:aws:iam::1:role/r".into();
        let e = plan(&no_token, &job(), &endpoints).unwrap_err();
        assert!(e.to_string().contains("needs a web identity token"), "{e}");
    }

    #[test]
    fn plan_checks_before_any_request() {
        let endpoints = Endpoints::default();
        let mut s = secret("app/db");
        s.version_id = "v1".into();
        s.version_stage = "AWSCURRENT".into();
        let e = plan(&s, &job(), &endpoints).unwrap_err();
        assert!(matches!(e, ProviderError::Config(_)));
        assert!(e.to_string().contains("mutually exclusive"), "{e}");

        let e = plan(&secret(""), &job(), &endpoints).unwrap_err();
        assert!(e.to_string().contains("secret_id is empty"), "{e}");

        let e = plan(&secret("x"), &JobSettings::default(), &endpoints).unwrap_err();
        assert!(e.to_string().contains("set AWS_REGION"), "{e}");

        let mut s = secret("x");
        s.region = "us-east-1.evil.com/".into();
        let e = plan(&s, &job(), &endpoints).unwrap_err();
        assert!(e.to_string().contains("invalid AWS region"), "{e}");
    }

    #[test]
    fn arn_region() {
        let arn = "arn:aws:secretsmanager:eu-central-1:987654321098:secret:shared-AbCdEf";
        assert_eq!(
            parse_secret_arn(arn),
            Some(SecretArn {
                partition: "aws".into(),
                region: "eu-central-1".into(),
                account: "987654321098".into(),
                name: "shared-AbCdEf".into(),
            })
        );
        assert_eq!(parse_secret_arn("app/db"), None);
        assert_eq!(parse_secret_arn("arn:aws:s3:::bucket"), None);
        let endpoints = Endpoints::default();
        let p = plan(&secret(arn), &job(), &endpoints).unwrap();
        assert_eq!(p.region, "eu-central-1");
        let mut s = secret(arn);
        s.region = "us-west-2".into();
        let e = plan(&s, &job(), &endpoints).unwrap_err();
        assert!(e.to_string().contains("is in region eu-central-1"), "{e}");
        s.region = "eu-central-1".into();
        assert_eq!(plan(&s, &job(), &endpoints).unwrap().region, "eu-central-1");
    }

    #[test]
    fn endpoint_overrides() {
        let env = Env::from_pairs([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:2"),
        ]);
        let e = Endpoints::from_env(&env);
        assert_eq!(e.sts_url("x").unwrap(), "http://127.0.0.1:2/");
        assert_eq!(e.secrets_manager_url("x").unwrap(), "http://127.0.0.1:1/");
        let env = Env::from_pairs([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "http://127.0.0.1:3"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", ""),
        ]);
        let e = Endpoints::from_env(&env);
        assert_eq!(e.secrets_manager_url("x").unwrap(), "http://127.0.0.1:3/");
        let ignored = Env::from_pairs([
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:1"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        let e = Endpoints::from_env(&ignored);
        assert_eq!(
            e.secrets_manager_url("cn-north-1").unwrap(),
            "https://secretsmanager.cn-north-1.amazonaws.com.cn/"
        );
        let bad = Endpoints {
            sts: Some("ftp://x".into()),
            secrets_manager: None,
            allow_insecure_http: true,
        };
        assert!(matches!(bad.sts_url("x"), Err(ProviderError::Config(_))));
    }

    /// The STS form carries the job's ID token: a plain-http endpoint off
    /// loopback is refused at plan time (no request), unless allowed.
    #[test]
    fn plain_http_endpoints_need_loopback_or_the_opt_in() {
        for url in ["http://10.255.255.1:4566", "http://localstack:4566"] {
            let env = Env::from_pairs([("AWS_ENDPOINT_URL", url)]);
            let e = Endpoints::from_env(&env);
            let err = e.sts_url("us-east-1").unwrap_err();
            assert!(matches!(err, ProviderError::Config(_)), "{err:?}");
            assert!(err.to_string().contains("refusing plain HTTP"), "{err}");
            assert!(e.secrets_manager_url("us-east-1").is_err());
            let env = Env::from_pairs([
                ("AWS_ENDPOINT_URL", url),
                ("COFFER_ALLOW_INSECURE_HTTP", "1"),
            ]);
            let e = Endpoints::from_env(&env);
            assert_eq!(e.sts_url("us-east-1").unwrap(), format!("{url}/"));
            let env = Env::from_pairs([
                ("AWS_ENDPOINT_URL", url),
                ("COFFER_ALLOW_INSECURE_HTTP", "no"),
            ]);
            assert!(Endpoints::from_env(&env).sts_url("x").is_err());
        }
        let env = Env::from_pairs([("AWS_ENDPOINT_URL", "https://10.255.255.1:4566")]);
        assert!(Endpoints::from_env(&env).sts_url("x").is_ok());
    }

    #[test]
    fn sts_xml() {
        let ok = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
          <AssumeRoleWithWebIdentityResult><Credentials>
            <AccessKeyId>ASIAX</AccessKeyId><SecretAccessKey>s+/=&amp;</SecretAccessKey>
            <SessionToken><![CDATA[tok<en]]></SessionToken><Expiration>2026-11-22T08:54:04.656544Z</Expiration>
          </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"#;
        let f = xml_children(ok, "Credentials").unwrap();
        assert_eq!(f["AccessKeyId"], "ASIAX");
        assert_eq!(f["SecretAccessKey"], "s+/=&");
        assert_eq!(f["SessionToken"], "tok<en");
        assert!(parse_time(&f["Expiration"]).is_some());
        let err = r#"<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>
          <Message>Couldn&apos;t retrieve verification key</Message></Error><RequestId>r</RequestId></ErrorResponse>"#;
        let f = xml_children(err, "Error").unwrap();
        assert_eq!(f["Code"], "InvalidIdentityToken");
        assert_eq!(f["Message"], "Couldn't retrieve verification key");
        assert!(xml_children("<a/>", "Error").is_err());
        assert!(xml_children("not xml <", "Error").is_err());
    }

    #[test]
    fn ini_sections() {
        let text = "# c\n[default]\naws_access_key_id = A\nAWS_SECRET_ACCESS_KEY=B\n\n[profile  dev]\naws_access_key_id=C\n";
        let d = ini_section(text, "default").unwrap();
        assert_eq!(d["aws_access_key_id"], "A");
        assert_eq!(d["aws_secret_access_key"], "B");
        assert_eq!(
            ini_section(text, "profile dev").unwrap()["aws_access_key_id"],
            "C"
        );
        assert!(ini_section(text, "other").is_none());
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        let c = Credentials::new(
            "AKIDX",
            SecretString::from("very-secret"),
            Some(SecretString::from("tok-secret")),
            None,
            "test",
        );
        let shown = format!("{c:?}");
        assert!(shown.contains("AKIDX"));
        assert!(!shown.contains("very-secret") && !shown.contains("tok-secret"));
        assert!(!c.expires_within(Duration::from_secs(60)));
        let expired = Credentials::new(
            "A",
            SecretString::from("s"),
            None,
            Some(SystemTime::now() - Duration::from_secs(1)),
            "t",
        );
        assert!(expired.expires_within(Duration::ZERO));
    }

    #[test]
    fn web_identity_cache_key_hides_the_token() {
        let w = WebIdentity {
            endpoint: "e".into(),
            region: "r".into(),
            role_arn: "a".into(),
            session_name: "s".into(),
            token: SecretString::from("jwt-1"),
        };
        let mut other = w.clone();
        assert_eq!(w.cache_key(), other.cache_key());
        other.token = SecretString::from("jwt-2");
        assert_ne!(w.cache_key(), other.cache_key());
        assert!(!format!("{:?}", w.cache_key()).contains("jwt-1"));
    }
}
