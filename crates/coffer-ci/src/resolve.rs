//! The resolution engine: a validated job's secrets → values.
//!
//! Unlike GitLab Runner (one secret at a time, a fresh login per secret,
//! stop at the first error), logins are shared: one per (provider,
//! endpoint, identity), all run concurrently; then every secret is fetched
//! concurrently (bounded), and every failure is reported together, each
//! naming its variable. Output order is the job's (sorted by variable).

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use secrecy::SecretString;
use tokio::sync::Semaphore;

use crate::cloud_id;
use crate::gitlab::{self, Job, Provider, Secret, Variables};
use crate::providers::{self, Env, ProviderError, akeyless, aws, azure};

/// Where a k8s job's service-account token is mounted.
pub const K8S_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// How to resolve.
pub struct Options {
    /// Requests in flight at most (logins and fetches).
    pub concurrency: usize,
    /// GitLab's `FF_SECRET_RESOLVING_FAILS_IF_MISSING` (default true):
    /// a secret the provider says does not exist is an error; when false
    /// the variable gets an empty value.
    pub fail_if_missing: bool,
    /// Called with (done, total) after each secret (progress line).
    pub progress: Option<Arc<dyn Fn(usize, usize) + Send + Sync>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 64,
            fail_if_missing: true,
            progress: None,
        }
    }
}

/// One resolved secret.
pub struct Resolved {
    pub var: String,
    pub file: bool,
    pub value: SecretString,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolved")
            .field("var", &self.var)
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

/// One secret that could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub var: String,
    /// GitLab's resolver name (`akeyless`, `aws_secrets_manager`,
    /// `azure-key-vault`, …).
    pub resolver: &'static str,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.var, self.resolver, self.message)
    }
}

/// Why nothing was resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// GitLab's provider gate: required CI/CD variables are missing.
    #[error("{}\n{}", gitlab::PROVIDER_NOT_FOUND, .0.iter().map(|m| format!("  {m}")).collect::<Vec<_>>().join("\n"))]
    ProviderNotFound(Vec<gitlab::MissingProvider>),
    /// Some secrets failed (the others are not returned: a job must not run
    /// with part of its secrets).
    #[error("resolving secrets failed for {} of {total} secret(s):\n{}", .failures.len(), .failures.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n"))]
    Failed {
        failures: Vec<Failure>,
        total: usize,
    },
}

/// A login several secrets share.
#[derive(Clone)]
enum LoginSpec {
    Akeyless {
        login: akeyless::Login,
        /// Computed on this host at login time (cloud identities).
        cloud: Option<CloudSource>,
    },
    AwsWebIdentity(aws::WebIdentity),
    AwsHost,
    Azure(azure::TokenRequest),
}

#[derive(Clone)]
enum CloudSource {
    Aws,
    Azure { object_id: String, resource: String },
    Gcp { audience: String },
}

#[derive(Clone)]
enum Session {
    Akeyless {
        client: coffer_client::Client,
        token: coffer_client::Token,
    },
    Aws(aws::Credentials),
    Azure(azure::AccessToken),
}

/// What to fetch with a session.
enum Fetch {
    Akeyless(akeyless::Item),
    Aws(aws::Plan),
    Azure {
        vault_url: String,
        secret: azure::AzureSecret,
    },
}

struct Task {
    var: String,
    file: bool,
    resolver: &'static str,
    login: String,
    fetch: Fetch,
}

/// Plan every secret of `job`: expand its fields against `vars`, choose its
/// login and check its settings, without any request.
fn plan(
    job: &Job,
    vars: &Variables,
    env: &Env,
) -> (Vec<Task>, HashMap<String, LoginSpec>, Vec<Failure>) {
    let mut tasks = Vec::new();
    let mut logins: HashMap<String, LoginSpec> = HashMap::new();
    let mut failures = Vec::new();
    let get = |k: &str| vars.get(k).map(str::to_owned);
    let aws_job = aws::JobSettings::from_variables(get);
    let aws_endpoints = aws::Endpoints::from_env(env);
    let azure_server = azure::AzureServer::from_variables(get, env);
    for secret in &job.secrets {
        let resolver = secret.provider.kind().resolver_name();
        let expanded = secret.expanded(vars);
        let jwt = job.jwt(secret, vars).unwrap_or_default();
        match plan_one(
            &expanded,
            jwt,
            vars,
            env,
            &aws_job,
            &aws_endpoints,
            &azure_server,
        ) {
            Ok((key, spec, fetch)) => {
                logins.entry(key.clone()).or_insert(spec);
                tasks.push(Task {
                    var: secret.var.clone(),
                    file: secret.file,
                    resolver,
                    login: key,
                    fetch,
                });
            }
            Err(message) => failures.push(Failure {
                var: secret.var.clone(),
                resolver,
                message,
            }),
        }
    }
    (tasks, logins, failures)
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_ref()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

#[allow(clippy::too_many_arguments)]
fn plan_one(
    secret: &Secret,
    jwt: String,
    vars: &Variables,
    env: &Env,
    aws_job: &aws::JobSettings,
    aws_endpoints: &aws::Endpoints,
    azure_server: &azure::AzureServer,
) -> Result<(String, LoginSpec, Fetch), String> {
    match &secret.provider {
        Provider::Akeyless(a) => {
            let login = akeyless_login(a, jwt, vars, env)?;
            let key = login.0.cache_key()
                + &match &login.1 {
                    Some(CloudSource::Azure {
                        object_id,
                        resource,
                    }) => format!("|azure:{object_id}|{resource}"),
                    Some(CloudSource::Gcp { audience }) => format!("|gcp:{audience}"),
                    Some(CloudSource::Aws) => "|aws".into(),
                    None => String::new(),
                };
            let item = akeyless::Item {
                name: non_empty(&a.name).unwrap_or_default(),
                data_key: non_empty(&a.data_key).unwrap_or_default(),
                cert_user_name: non_empty(&a.cert_user_name).unwrap_or_default(),
                public_key_data: non_empty(&a.public_key_data).unwrap_or_default(),
                csr_data: non_empty(&a.csr_data).unwrap_or_default(),
            };
            Ok((
                key,
                LoginSpec::Akeyless {
                    login: login.0,
                    cloud: login.1,
                },
                Fetch::Akeyless(item),
            ))
        }
        Provider::Aws(a) => {
            let input = aws::AwsSecret {
                secret_id: a.secret_id.clone(),
                field: a.field.clone().unwrap_or_default(),
                region: a.region.clone().unwrap_or_default(),
                version_id: a.version_id.clone().unwrap_or_default(),
                version_stage: a.version_stage.clone().unwrap_or_default(),
                role_arn: a.role_arn.clone().unwrap_or_default(),
                role_session_name: a.role_session_name.clone().unwrap_or_default(),
                token: SecretString::from(jwt),
            };
            let plan = aws::plan(&input, aws_job, aws_endpoints).map_err(|e| e.to_string())?;
            let (key, spec) = match &plan.auth {
                aws::Auth::WebIdentity(w) => (
                    format!("aws|{:?}", w.cache_key()),
                    LoginSpec::AwsWebIdentity(w.clone()),
                ),
                aws::Auth::Host => ("aws|host".to_owned(), LoginSpec::AwsHost),
            };
            Ok((key, spec, Fetch::Aws(plan)))
        }
        Provider::Azure(a) => {
            let input = azure::AzureSecret {
                name: a.name.clone(),
                version: a.version.clone().unwrap_or_default(),
            };
            let (_, request) = azure::check(azure_server, &input, &SecretString::from(jwt))
                .map_err(|e| e.to_string())?;
            Ok((
                format!("azure|{:?}", request.cache_key()),
                LoginSpec::Azure(request),
                Fetch::Azure {
                    vault_url: azure_server.vault_url.clone(),
                    secret: input,
                },
            ))
        }
        other => Err(format!(
            "coffer ci does not resolve {} secrets (supported: akeyless, aws_secrets_manager, azure_key_vault)",
            other.kind().key()
        )),
    }
}

/// The API URL a secret names: `akeyless_api_url`, else the CI variable
/// `AKEYLESS_API_URL`, else the host's fallback
/// ([`akeyless::FALLBACK_API_URL_VAR`], set by the CLI from its profile);
/// `None` when nothing names one.
fn configured_api_url(a: &gitlab::AkeylessSecret, vars: &Variables, env: &Env) -> Option<String> {
    non_empty(&a.akeyless_api_url)
        .or_else(|| {
            vars.get("AKEYLESS_API_URL")
                .map(str::to_owned)
                .filter(|s| !s.is_empty())
        })
        .or_else(|| env.get(akeyless::FALLBACK_API_URL_VAR))
}

fn akeyless_api_url(a: &gitlab::AkeylessSecret, vars: &Variables, env: &Env) -> String {
    configured_api_url(a, vars, env).unwrap_or_else(|| akeyless::DEFAULT_API_URL.to_owned())
}

/// The variables of the job's `akeyless:` secrets that go to the public
/// Akeyless SaaS ([`akeyless::DEFAULT_API_URL`]) only because nothing names
/// an API URL: worth a word to the user, who may have meant a Coffer.
pub fn saas_default_vars(job: &Job, vars: &Variables, env: &Env) -> Vec<String> {
    job.secrets
        .iter()
        .filter(|secret| match &secret.expanded(vars).provider {
            Provider::Akeyless(a) => configured_api_url(a, vars, env).is_none(),
            _ => false,
        })
        .map(|secret| secret.var.clone())
        .collect()
}

fn akeyless_access_id(vars: &Variables) -> String {
    vars.get("AKEYLESS_ACCESS_ID")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

fn akeyless_access_type(a: &gitlab::AkeylessSecret) -> String {
    non_empty(&a.akeyless_access_type).unwrap_or_else(|| "jwt".into())
}

/// What `explain` says an `akeyless:` secret fetches.
fn akeyless_item(a: &gitlab::AkeylessSecret) -> String {
    match non_empty(&a.name) {
        Some(n) => format!(
            "item {n}{}",
            non_empty(&a.data_key)
                .map(|k| format!(", key {k}"))
                .unwrap_or_default()
        ),
        None => "the Akeyless token itself (no name)".into(),
    }
}

/// The login of an `akeyless:` secret (GitLab's server block: access ID
/// from `AKEYLESS_ACCESS_ID`, API URL from `akeyless_api_url`, else
/// `AKEYLESS_API_URL`, else the SaaS).
fn akeyless_login(
    a: &gitlab::AkeylessSecret,
    jwt: String,
    vars: &Variables,
    env: &Env,
) -> Result<(akeyless::Login, Option<CloudSource>), String> {
    let api_url = akeyless_api_url(a, vars, env);
    let access_id = akeyless_access_id(vars);
    let access_type = akeyless_access_type(a);
    let secret = |v: &Option<String>, what: &str| {
        non_empty(v)
            .map(SecretString::from)
            .ok_or_else(|| format!("{what} is required for akeyless_access_type {access_type}"))
    };
    let mut cloud = None;
    let credential = if let Some(token) = non_empty(&a.akeyless_token) {
        akeyless::Credential::Token(SecretString::from(token))
    } else {
        match access_type.as_str() {
            "jwt" | "oidc" => {
                if jwt.trim().is_empty() {
                    return Err(
                        "no JWT: set `token: $ID_TOKEN` on the secret and declare that ID token under id_tokens (or pass akeyless_token)".into(),
                    );
                }
                akeyless::Credential::Jwt(SecretString::from(jwt))
            }
            "api_key" | "access_key" => akeyless::Credential::AccessKey(secret(
                &a.akeyless_access_key,
                "akeyless_access_key",
            )?),
            "universal_identity" => akeyless::Credential::Uid(secret(&a.uid_token, "uid_token")?),
            "k8s" => {
                let token = match non_empty(&a.k8s_service_account_token) {
                    Some(t) => t,
                    None => std::fs::read_to_string(K8S_TOKEN_PATH)
                        .map(|t| t.trim().to_owned())
                        .map_err(|e| {
                            format!("k8s_service_account_token is not set and {K8S_TOKEN_PATH} cannot be read ({e})")
                        })?,
                };
                // The server takes the token base64-encoded.
                let token = if token.starts_with("eyJ") {
                    base64::engine::general_purpose::STANDARD.encode(token)
                } else {
                    token
                };
                akeyless::Credential::K8s {
                    token: SecretString::from(token),
                    config_name: non_empty(&a.k8s_auth_config_name).unwrap_or_default(),
                }
            }
            "aws_iam" => {
                cloud = Some(CloudSource::Aws);
                placeholder_cloud(String::new())
            }
            "azure_ad" => {
                // GitLab's block has no field for the resource: a variable
                // names it, else the server's default.
                let resource = vars
                    .get(cloud_id::AZURE_AUDIENCE_VARIABLE)
                    .map(|r| r.trim().to_owned())
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| cloud_id::default_azure_audience(&api_url).to_owned());
                cloud = Some(CloudSource::Azure {
                    object_id: non_empty(&a.azure_object_id).unwrap_or_default(),
                    resource,
                });
                placeholder_cloud(String::new())
            }
            "gcp" => {
                let audience = non_empty(&a.gcp_audience)
                    .unwrap_or_else(|| cloud_id::default_gcp_audience(&api_url).to_owned());
                cloud = Some(CloudSource::Gcp {
                    audience: audience.clone(),
                });
                placeholder_cloud(audience)
            }
            other => return Err(format!("unknown Access type: {other}")),
        }
    };
    let ca_pem = a
        .gateway_ca_certificate
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .map(ca_certificate)
        .transpose()?;
    let login = akeyless::Login {
        api_url,
        access_id,
        access_type,
        credential,
        ca_pem,
        allow_insecure_http: env.allow_insecure_http(),
    };
    // Refuse a plain-http API URL off loopback now, before any request.
    login.check_api_url().map_err(|e| e.to_string())?;
    Ok((login, cloud))
}

fn placeholder_cloud(gcp_audience: String) -> akeyless::Credential {
    akeyless::Credential::CloudId {
        cloud_id: SecretString::from(String::new()),
        gcp_audience,
    }
}

/// `gateway_ca_certificate`: PEM text, base64 of PEM, or the path of a PEM
/// file (a GitLab file-type variable expands to its path).
fn ca_certificate(value: &str) -> Result<Vec<u8>, String> {
    let v = value.trim();
    if v.starts_with("-----BEGIN") {
        return Ok(v.as_bytes().to_vec());
    }
    if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(v)
        && bytes.starts_with(b"-----BEGIN")
    {
        return Ok(bytes);
    }
    let path = std::path::Path::new(v);
    if path.is_file() {
        return std::fs::read(path).map_err(|e| format!("gateway_ca_certificate {v}: {e}"));
    }
    Err(
        "gateway_ca_certificate must be a PEM certificate, its base64, or the path of a PEM file"
            .into(),
    )
}

async fn login(spec: LoginSpec, env: Env) -> Result<Session, String> {
    let err = |e: ProviderError| e.to_string();
    match spec {
        LoginSpec::Akeyless { mut login, cloud } => {
            if let Some(source) = cloud {
                let (cloud_id, gcp_audience) = match source {
                    CloudSource::Aws => {
                        (cloud_id::aws_iam(&env).await.map_err(err)?, String::new())
                    }
                    CloudSource::Azure {
                        object_id,
                        resource,
                    } => (
                        cloud_id::azure_ad(&env, &object_id, &resource)
                            .await
                            .map_err(err)?,
                        String::new(),
                    ),
                    CloudSource::Gcp { audience } => {
                        (cloud_id::gcp(&env, &audience).await.map_err(err)?, audience)
                    }
                };
                login.credential = akeyless::Credential::CloudId {
                    cloud_id,
                    gcp_audience,
                };
            }
            let client = login.client().map_err(|e| e.to_string())?;
            let token = login.token(&client).await.map_err(|e| e.to_string())?;
            Ok(Session::Akeyless { client, token })
        }
        LoginSpec::AwsWebIdentity(w) => {
            let client = providers::http_client(providers::DEFAULT_TIMEOUT).map_err(err)?;
            aws::assume_role_with_web_identity(&client, &w)
                .await
                .map(Session::Aws)
                .map_err(err)
        }
        LoginSpec::AwsHost => {
            let client = providers::http_client(providers::DEFAULT_TIMEOUT).map_err(err)?;
            aws::host_credentials(&client, &env)
                .await
                .map(Session::Aws)
                .map_err(err)
        }
        LoginSpec::Azure(request) => {
            let client = providers::http_client(providers::DEFAULT_TIMEOUT).map_err(err)?;
            azure::get_token(&client, &request)
                .await
                .map(Session::Azure)
                .map_err(err)
        }
    }
}

async fn fetch(
    session: &Session,
    what: &Fetch,
    client: &reqwest::Client,
) -> Result<SecretString, ProviderError> {
    match (session, what) {
        (Session::Akeyless { client, token }, Fetch::Akeyless(item)) => {
            akeyless::fetch(client, token, item)
                .await
                .map_err(|e| ProviderError::Value(e.to_string()))
        }
        (Session::Aws(creds), Fetch::Aws(plan)) => aws::get_secret_value(client, plan, creds).await,
        (Session::Azure(token), Fetch::Azure { vault_url, secret }) => {
            azure::get_secret(client, vault_url, secret, token).await
        }
        _ => Err(ProviderError::Config(
            "internal: login and secret of different providers".into(),
        )),
    }
}

/// Resolve every secret of `job`. `vars` are the expansion variables
/// ([`Job::expansion_variables`] over the CI/CD variables and the ID
/// tokens); `env` is this host's environment (AWS/Azure settings and
/// credentials).
pub async fn resolve(
    job: &Job,
    vars: &Variables,
    env: &Env,
    options: &Options,
) -> Result<Vec<Resolved>, ResolveError> {
    let missing = gitlab::missing_providers(&job.secrets, vars);
    if !missing.is_empty() {
        return Err(ResolveError::ProviderNotFound(missing));
    }
    let total = job.secrets.len();
    let (tasks, logins, mut failures) = plan(job, vars, env);
    let limit = Arc::new(Semaphore::new(options.concurrency.max(1)));

    // One login per key, all at once.
    let mut pending = tokio::task::JoinSet::new();
    for (key, spec) in logins {
        let env = env.clone();
        let limit = limit.clone();
        pending.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (key, login(spec, env).await)
        });
    }
    let mut sessions: HashMap<String, Result<Session, String>> = HashMap::new();
    while let Some(joined) = pending.join_next().await {
        if let Ok((key, session)) = joined {
            sessions.insert(key, session);
        }
    }
    // Static secrets of one Akeyless login in one call (falls back to
    // item-by-item fetches when the batch is refused).
    let mut prefetched: HashMap<String, serde_json::Map<String, serde_json::Value>> =
        HashMap::new();
    for (key, session) in &sessions {
        if let Ok(Session::Akeyless { client, token }) = session {
            let mut names: Vec<String> = tasks
                .iter()
                .filter(|t| &t.login == key)
                .filter_map(|t| match &t.fetch {
                    Fetch::Akeyless(item) if !item.name.is_empty() => Some(item.name.clone()),
                    _ => None,
                })
                .collect();
            names.sort();
            names.dedup();
            if let Some(values) = akeyless::fetch_static_batch(client, token, &names).await {
                prefetched.insert(key.clone(), values);
            }
        }
    }
    let prefetched = Arc::new(prefetched);
    let sessions = Arc::new(sessions);
    let http =
        providers::http_client(providers::DEFAULT_TIMEOUT).map_err(|e| ResolveError::Failed {
            failures: vec![Failure {
                var: "*".into(),
                resolver: "coffer-ci",
                message: e.to_string(),
            }],
            total,
        })?;

    // Every secret at once (bounded).
    let done = Arc::new(std::sync::atomic::AtomicUsize::new(failures.len()));
    let mut fetches = tokio::task::JoinSet::new();
    for (index, task) in tasks.into_iter().enumerate() {
        let sessions = sessions.clone();
        let prefetched = prefetched.clone();
        let limit = limit.clone();
        let http = http.clone();
        let done = done.clone();
        let progress = options.progress.clone();
        let fail_if_missing = options.fail_if_missing;
        fetches.spawn(async move {
            let batch_value = match (&task.fetch, prefetched.get(&task.login)) {
                (Fetch::Akeyless(item), Some(values)) => values
                    .get(&item.name)
                    .map(|v| akeyless::finish(v.clone(), item).map_err(|e| e.to_string())),
                _ => None,
            };
            let result = match sessions.get(&task.login) {
                _ if batch_value.is_some() => batch_value.unwrap_or_else(|| Err(String::new())),
                Some(Ok(session)) => {
                    let _permit = limit.acquire_owned().await;
                    match fetch(session, &task.fetch, &http).await {
                        Ok(v) => Ok(v),
                        Err(ProviderError::NotFound) if !fail_if_missing => {
                            Ok(SecretString::from(String::new()))
                        }
                        Err(ProviderError::NotFound) => {
                            Err(format!("secret not found: {}", task.var))
                        }
                        Err(e) => Err(e.to_string()),
                    }
                }
                Some(Err(e)) => Err(e.clone()),
                None => Err("login did not complete".into()),
            };
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if let Some(p) = &progress {
                p(n, total);
            }
            (index, task, result)
        });
    }
    let mut resolved: Vec<(usize, Resolved)> = Vec::new();
    while let Some(joined) = fetches.join_next().await {
        let Ok((index, task, result)) = joined else {
            continue;
        };
        match result {
            Ok(value) => resolved.push((
                index,
                Resolved {
                    var: task.var,
                    file: task.file,
                    value,
                },
            )),
            Err(message) => failures.push(Failure {
                var: task.var,
                resolver: task.resolver,
                message,
            }),
        }
    }
    if !failures.is_empty() {
        failures.sort_by(|a, b| a.var.cmp(&b.var));
        return Err(ResolveError::Failed { failures, total });
    }
    resolved.sort_by_key(|(i, _)| *i);
    Ok(resolved.into_iter().map(|(_, r)| r).collect())
}

/// A credential a job's secrets log in with. `coffer ci run` masks it in
/// the command's output and removes the variables holding it from the
/// command's environment.
pub struct LoginCredential {
    /// What it is, for masking warnings: the variable it comes from, else
    /// the setting (`DB_PASSWORD: akeyless_access_key`). Never the value.
    pub label: String,
    /// The variables the setting refers to (`$NAME`, `${NAME}`).
    pub variables: Vec<String>,
    pub value: SecretString,
}

impl std::fmt::Debug for LoginCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginCredential")
            .field("label", &self.label)
            .field("variables", &self.variables)
            .finish_non_exhaustive()
    }
}

/// The login credentials of `job`'s secrets, expanded against `vars` (the
/// expansion variables, ID tokens included): every secret's JWT (its
/// `token:`, or the provider's default ID token), and for `akeyless:` the
/// `akeyless_token`, `akeyless_access_key`, `uid_token` and
/// `k8s_service_account_token` settings. Empty values are skipped; a value
/// used by several secrets is listed once.
pub fn login_credentials(job: &Job, vars: &Variables) -> Vec<LoginCredential> {
    let mut out: Vec<LoginCredential> = Vec::new();
    let mut add = |label: String, raw: &str, value: String| {
        if value.trim().is_empty() {
            return;
        }
        let variables = gitlab::referenced_names(raw);
        if let Some(known) = out
            .iter_mut()
            .find(|c| secrecy::ExposeSecret::expose_secret(&c.value) == value)
        {
            for v in variables {
                if !known.variables.contains(&v) {
                    known.variables.push(v);
                }
            }
            return;
        }
        let label = variables.first().cloned().unwrap_or(label);
        out.push(LoginCredential {
            label,
            variables,
            value: SecretString::from(value),
        });
    };
    for secret in &job.secrets {
        if let Some(reference) = job.jwt_reference(secret) {
            let value = vars.expand(&reference);
            add(format!("{}: token", secret.var), &reference, value);
        }
        if let Provider::Akeyless(a) = &secret.provider {
            for (setting, raw, expanded) in [
                ("akeyless_token", &a.akeyless_token, true),
                ("uid_token", &a.uid_token, true),
                (
                    "k8s_service_account_token",
                    &a.k8s_service_account_token,
                    true,
                ),
                // GitLab does not expand the access key: used as written.
                ("akeyless_access_key", &a.akeyless_access_key, false),
            ] {
                if let Some(raw) = raw {
                    let value = if expanded {
                        vars.expand(raw)
                    } else {
                        raw.clone()
                    };
                    add(
                        format!("{}: {setting}", secret.var),
                        raw,
                        value.trim().to_owned(),
                    );
                }
            }
        }
    }
    out
}

/// What `coffer ci explain` shows for one secret: no request is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explained {
    pub var: String,
    pub provider: &'static str,
    /// Endpoint the secret is fetched from.
    pub endpoint: String,
    /// Who logs in, and how.
    pub identity: String,
    /// Which JWT is used: the reference and whether it is set.
    pub token: String,
    /// Where the value lands (`file` path variable or environment).
    pub destination: String,
    /// What is fetched.
    pub item: String,
    /// A problem found without any request.
    pub problem: Option<String>,
}

/// Explain every secret of `job` without fetching anything.
pub fn explain(job: &Job, vars: &Variables, env: &Env) -> Vec<Explained> {
    let get = |k: &str| vars.get(k).map(str::to_owned);
    let aws_job = aws::JobSettings::from_variables(get);
    let aws_endpoints = aws::Endpoints::from_env(env);
    let azure_server = azure::AzureServer::from_variables(get, env);
    let missing = gitlab::missing_providers(&job.secrets, vars);
    job.secrets
        .iter()
        .map(|secret| {
            let expanded = secret.expanded(vars);
            let reference = job.jwt_reference(secret);
            let jwt = job.jwt(secret, vars).unwrap_or_default();
            let token = match &reference {
                None => "none".to_owned(),
                Some(r) if jwt.is_empty() => format!("{r} (NOT SET)"),
                Some(r) => format!("{r} (set, {} bytes)", jwt.len()),
            };
            let token_missing = reference
                .as_ref()
                .filter(|_| jwt.is_empty())
                .map(|r| {
                    format!(
                        "the ID token {r} is not set: pass it with --id-token NAME=VALUE, or run in the CI job that mints it (GitLab id_tokens:, GitHub id-token: write)"
                    )
                });
            let destination = if secret.file {
                format!("file (0600); ${} holds its path", secret.var)
            } else {
                format!("environment variable ${}", secret.var)
            };
            let mut problem = missing
                .iter()
                .find(|m| m.provider == secret.provider.kind())
                .map(|m| {
                    format!(
                        "{} missing: {}",
                        gitlab::PROVIDER_NOT_FOUND,
                        m.variables.join(", ")
                    )
                });
            let planned = plan_one(
                &expanded,
                jwt,
                vars,
                env,
                &aws_job,
                &aws_endpoints,
                &azure_server,
            );
            let (endpoint, identity, item) = match (&expanded.provider, &planned) {
                (Provider::Akeyless(a), Ok((_, LoginSpec::Akeyless { login, .. }, _))) => (
                    coffer_client::transport::redact_userinfo(&login.api_url),
                    format!(
                        "access ID {} ({})",
                        if login.access_id.is_empty() {
                            "NOT SET"
                        } else {
                            &login.access_id
                        },
                        if non_empty(&a.akeyless_token).is_some() {
                            "akeyless_token, no login".to_owned()
                        } else {
                            format!("access type {}", login.access_type)
                        }
                    ),
                    akeyless_item(a),
                ),
                // The login cannot be planned (the problem is shown): still
                // say where and as whom it would go.
                (Provider::Akeyless(a), Err(_)) => {
                    let id = akeyless_access_id(vars);
                    (
                        coffer_client::transport::redact_userinfo(&akeyless_api_url(a, vars, env)),
                        format!(
                            "access ID {} (access type {})",
                            if id.is_empty() { "NOT SET" } else { &id },
                            akeyless_access_type(a)
                        ),
                        akeyless_item(a),
                    )
                }
                (Provider::Aws(a), Ok((_, spec, Fetch::Aws(plan)))) => (
                    plan.endpoint.clone(),
                    match spec {
                        LoginSpec::AwsWebIdentity(w) => format!(
                            "AssumeRoleWithWebIdentity {} (session {}) at {}",
                            w.role_arn, w.session_name, w.endpoint
                        ),
                        _ => "this host's AWS credentials".into(),
                    },
                    format!(
                        "secret {}{}{}",
                        a.secret_id,
                        plan.field
                            .as_ref()
                            .map(|f| format!(", field {f}"))
                            .unwrap_or_default(),
                        plan.version_stage
                            .as_ref()
                            .or(plan.version_id.as_ref())
                            .map(|v| format!(", version {v}"))
                            .unwrap_or_default()
                    ),
                ),
                (Provider::Azure(a), Ok((_, LoginSpec::Azure(request), _))) => (
                    coffer_client::transport::redact_userinfo(&azure_server.vault_url),
                    format!(
                        "client {} in tenant {} (client assertion) at {}",
                        request.client_id,
                        request.tenant_id,
                        coffer_client::transport::redact_userinfo(&request.authority_host)
                    ),
                    format!(
                        "secret {}{}",
                        a.name,
                        a.version
                            .as_ref()
                            .map(|v| format!(" version {v}"))
                            .unwrap_or_default()
                    ),
                ),
                _ => (String::new(), String::new(), String::new()),
            };
            if let Err(e) = planned {
                // A plan that fails while its ID token is unset fails for
                // that: say so rather than how to declare one.
                problem.get_or_insert(token_missing.unwrap_or(e));
            }
            Explained {
                var: secret.var.clone(),
                provider: secret.provider.kind().key(),
                endpoint,
                identity,
                token,
                destination,
                item,
                problem,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_url_fallback_and_saas_default() {
        let text = "job:\n  script: echo\n  id_tokens:\n    ID:\n      aud: coffer\n  secrets:\n    A:\n      akeyless:\n        name: /a\n      token: $ID\n    B:\n      akeyless:\n        name: /b\n        akeyless_api_url: https://gw.example/api/v2\n      token: $ID\n";
        let mut vars = Variables::new();
        vars.insert("AKEYLESS_ACCESS_ID", "p-x");
        let job = gitlab::load(text, "job", &vars).unwrap();
        let vars = job.expansion_variables(&vars);
        let none = Env::from_pairs(Vec::<(String, String)>::new());
        assert_eq!(saas_default_vars(&job, &vars, &none), ["A"]);
        let explained = explain(&job, &vars, &none);
        assert_eq!(explained[0].endpoint, akeyless::DEFAULT_API_URL);
        let fallback = Env::from_pairs([(akeyless::FALLBACK_API_URL_VAR, "http://127.0.0.1:8200")]);
        assert!(saas_default_vars(&job, &vars, &fallback).is_empty());
        let explained = explain(&job, &vars, &fallback);
        assert_eq!(explained[0].endpoint, "http://127.0.0.1:8200");
        // A URL on the secret wins over the fallback.
        assert_eq!(explained[1].endpoint, "https://gw.example/api/v2");
    }

    #[test]
    fn ca_certificate_forms() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(ca_certificate(pem).unwrap(), pem.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        assert_eq!(ca_certificate(&b64).unwrap(), pem.as_bytes());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, pem).unwrap();
        assert_eq!(
            ca_certificate(path.to_str().unwrap()).unwrap(),
            pem.as_bytes()
        );
        assert!(ca_certificate("ca_certificate").is_err());
    }
}
