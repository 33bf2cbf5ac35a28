//! The normalized job: what the providers consume.
//!
//! Every value is kept as written in the YAML (after anchors, merges,
//! `extends:` and `!reference`), before `$VARIABLE` expansion: expand with
//! [`Secret::expanded`], which applies GitLab Runner's per-provider table
//! of expanded fields.

use std::collections::BTreeMap;
use std::fmt;

use super::expand::Variables;

/// A job's secrets, ID tokens and variables.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// The job's name (the top-level key).
    pub name: String,
    /// `id_tokens:` (the job's own, else `default:`'s), by variable name.
    pub id_tokens: BTreeMap<String, IdToken>,
    /// The first ID token in declaration order: the JWT GitLab gives Vault
    /// and Azure Key Vault secrets that set no `token:`.
    pub default_id_token: Option<String>,
    /// `secrets:`, sorted by variable name.
    pub secrets: Vec<Secret>,
    /// `variables:` (global ones under the job's), expanded once against
    /// the CI/CD variables given to [`load`](super::load); a CI/CD variable
    /// of the same name replaces the YAML value, as in GitLab.
    pub variables: BTreeMap<String, String>,
    /// The same variables as declared, for [`Job::expansion_variables`].
    pub(crate) declared: Vec<(String, DeclaredVariable)>,
}

/// A `variables:` entry as written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DeclaredVariable {
    pub(crate) value: String,
    /// `expand: false`: the value is used as is.
    pub(crate) raw: bool,
}

/// One `id_tokens:` entry: the runner exposes an OIDC token with these
/// audiences as a masked variable named after the entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdToken {
    /// `aud:` (a string is a one-element list), unexpanded.
    pub aud: Vec<String>,
}

impl IdToken {
    /// The audiences with `$VARIABLES` expanded (GitLab expands `aud`).
    pub fn audiences(&self, vars: &Variables) -> Vec<String> {
        self.aud.iter().map(|a| vars.expand(a)).collect()
    }
}

impl Job {
    /// The variables secrets are expanded with: `env` (the CI/CD variables,
    /// plus the ID tokens once obtained) over the job's YAML variables,
    /// each expanded once against `env` and the YAML variables (GitLab
    /// Runner's `Expand()`; `expand: false` values are kept as is). A name
    /// present in `env` keeps `env`'s value.
    pub fn expansion_variables(&self, env: &Variables) -> Variables {
        compute_variables(&self.declared, env)
    }

    /// The JWT reference of `secret` (see [`Secret::jwt_reference`]).
    pub fn jwt_reference(&self, secret: &Secret) -> Option<String> {
        secret.jwt_reference(self.default_id_token.as_deref())
    }

    /// The JWT of `secret`: its reference expanded against `vars`. `None`
    /// when the secret uses no JWT; an empty string when the reference names
    /// a variable that is not set.
    pub fn jwt(&self, secret: &Secret, vars: &Variables) -> Option<String> {
        self.jwt_reference(secret).map(|r| vars.expand(&r))
    }

    /// The secret for variable `var`.
    pub fn secret(&self, var: &str) -> Option<&Secret> {
        self.secrets.iter().find(|s| s.var == var)
    }
}

/// `declared` expanded once against `env` + `declared`, then `env` on top.
pub(crate) fn compute_variables(
    declared: &[(String, DeclaredVariable)],
    env: &Variables,
) -> Variables {
    let mut lookup = Variables::new();
    for (name, var) in declared {
        lookup.insert(name.clone(), var.value.clone());
    }
    lookup.extend(env.iter());
    let mut out = env.clone();
    for (name, var) in declared {
        if env.contains(name) {
            continue;
        }
        let value = if var.raw {
            var.value.clone()
        } else {
            lookup.expand(&var.value)
        };
        out.insert(name.clone(), value);
    }
    out
}

/// One `secrets:` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secret {
    /// The variable that receives the value (the key under `secrets:`).
    pub var: String,
    /// `file:` (default `true`): the variable holds the path of a file with
    /// the value instead of the value.
    pub file: bool,
    /// `token:`, a reference such as `$AWS_ID_TOKEN`, unexpanded.
    pub token: Option<String>,
    pub provider: Provider,
}

/// The provider of a secret and its settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provider {
    Akeyless(AkeylessSecret),
    Aws(AwsSecret),
    Azure(AzureSecret),
    Vault(VaultSecret),
    Gcp(GcpSecret),
    GitlabSecretsManager(GitlabSecretsManagerSecret),
}

/// A provider key under a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProviderKind {
    Akeyless,
    Aws,
    Azure,
    Vault,
    Gcp,
    GitlabSecretsManager,
}

impl ProviderKind {
    /// The YAML key (`aws_secrets_manager`, …).
    pub fn key(self) -> &'static str {
        match self {
            ProviderKind::Akeyless => "akeyless",
            ProviderKind::Aws => "aws_secrets_manager",
            ProviderKind::Azure => "azure_key_vault",
            ProviderKind::Vault => "vault",
            ProviderKind::Gcp => "gcp_secret_manager",
            ProviderKind::GitlabSecretsManager => "gitlab_secrets_manager",
        }
    }

    /// GitLab Runner's resolver name, as printed in `Using "<name>" secret
    /// resolver...` (note `azure-key-vault` with hyphens).
    pub fn resolver_name(self) -> &'static str {
        match self {
            ProviderKind::Azure => "azure-key-vault",
            other => other.key(),
        }
    }

    /// The CI/CD variables that must be set (non-blank) for GitLab to accept
    /// a job using this provider (`Ci::Secrets::Integration`).
    pub fn required_variables(self) -> &'static [&'static str] {
        match self {
            ProviderKind::Akeyless => &["AKEYLESS_ACCESS_ID"],
            ProviderKind::Aws => &["AWS_REGION"],
            ProviderKind::Azure => &[
                "AZURE_KEY_VAULT_SERVER_URL",
                "AZURE_CLIENT_ID",
                "AZURE_TENANT_ID",
            ],
            ProviderKind::Vault => &["VAULT_SERVER_URL"],
            ProviderKind::Gcp => &[
                "GCP_PROJECT_NUMBER",
                "GCP_WORKLOAD_IDENTITY_FEDERATION_POOL_ID",
                "GCP_WORKLOAD_IDENTITY_FEDERATION_PROVIDER_ID",
            ],
            // GitLab checks the project's own secrets manager instead.
            ProviderKind::GitlabSecretsManager => &[],
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl Provider {
    pub fn kind(&self) -> ProviderKind {
        match self {
            Provider::Akeyless(_) => ProviderKind::Akeyless,
            Provider::Aws(_) => ProviderKind::Aws,
            Provider::Azure(_) => ProviderKind::Azure,
            Provider::Vault(_) => ProviderKind::Vault,
            Provider::Gcp(_) => ProviderKind::Gcp,
            Provider::GitlabSecretsManager(_) => ProviderKind::GitlabSecretsManager,
        }
    }
}

/// `akeyless:`. Every field is optional. A null `akeyless:` is read as `{}`
/// (no `name`: the Akeyless token itself is the value, GitLab's "JWT reuse").
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AkeylessSecret {
    pub name: Option<String>,
    pub data_key: Option<String>,
    pub cert_user_name: Option<String>,
    pub public_key_data: Option<String>,
    pub csr_data: Option<String>,
    pub akeyless_api_url: Option<String>,
    pub akeyless_access_type: Option<String>,
    pub akeyless_token: Option<String>,
    pub akeyless_access_key: Option<String>,
    pub uid_token: Option<String>,
    pub gcp_audience: Option<String>,
    pub azure_object_id: Option<String>,
    pub k8s_service_account_token: Option<String>,
    pub k8s_auth_config_name: Option<String>,
    pub gateway_ca_certificate: Option<String>,
}

impl fmt::Debug for AkeylessSecret {
    /// Credentials (`akeyless_token`, `akeyless_access_key`, `uid_token`,
    /// `k8s_service_account_token`) are shown as `<redacted>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("AkeylessSecret")
            .field("name", &self.name)
            .field("data_key", &self.data_key)
            .field("cert_user_name", &self.cert_user_name)
            .field("public_key_data", &self.public_key_data)
            .field("csr_data", &self.csr_data)
            .field("akeyless_api_url", &self.akeyless_api_url)
            .field("akeyless_access_type", &self.akeyless_access_type)
            .field("akeyless_token", &redact(&self.akeyless_token))
            .field("akeyless_access_key", &redact(&self.akeyless_access_key))
            .field("uid_token", &redact(&self.uid_token))
            .field("gcp_audience", &self.gcp_audience)
            .field("azure_object_id", &self.azure_object_id)
            .field(
                "k8s_service_account_token",
                &redact(&self.k8s_service_account_token),
            )
            .field("k8s_auth_config_name", &self.k8s_auth_config_name)
            .field("gateway_ca_certificate", &self.gateway_ca_certificate)
            .finish()
    }
}

/// `aws_secrets_manager:` (short form `secret_id[#field]` or a mapping).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AwsSecret {
    /// Name or ARN. The short form `#field` gives an empty id, as GitLab.
    pub secret_id: String,
    /// Top-level key of a JSON secret.
    pub field: Option<String>,
    /// Overrides `AWS_REGION`.
    pub region: Option<String>,
    pub version_id: Option<String>,
    pub version_stage: Option<String>,
    /// Overrides `AWS_ROLE_ARN`.
    pub role_arn: Option<String>,
    /// Overrides `AWS_ROLE_SESSION_NAME`.
    pub role_session_name: Option<String>,
}

/// `azure_key_vault:`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AzureSecret {
    pub name: String,
    /// Absent or empty: the latest version.
    pub version: Option<String>,
}

/// `vault:` (short form `path/field[@engine_path]` or a mapping).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VaultSecret {
    pub engine: VaultEngine,
    pub path: String,
    pub field: String,
}

/// A Vault secrets engine; the short form always uses `kv-v2`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VaultEngine {
    pub name: String,
    pub path: String,
}

/// `gcp_secret_manager:`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcpSecret {
    pub name: String,
    /// Default `latest`; an integer version is kept as its digits.
    pub version: String,
}

/// `gitlab_secrets_manager:` (GitLab's own OpenBao; not portable).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GitlabSecretsManagerSecret {
    pub name: String,
    /// `project` (default) or `group/<full path>`.
    pub source: Option<String>,
}

impl Secret {
    /// The JWT *reference* GitLab would give this secret's provider
    /// (`server.jwt`), still to be expanded:
    ///
    /// | provider | reference |
    /// |---|---|
    /// | akeyless | `token`, or none |
    /// | aws_secrets_manager | `token`, or `$AWS_ID_TOKEN` |
    /// | vault | `token`, or `$<first id_token>`, or `${CI_JOB_JWT}` without id_tokens |
    /// | azure_key_vault | `token`, or `$<first id_token>`, or `${CI_JOB_JWT_V2}` without id_tokens |
    /// | gcp_secret_manager | `token` (required) |
    /// | gitlab_secrets_manager | `token`, or none (GitLab mints its own) |
    ///
    /// `default_id_token` is the job's first declared ID token
    /// ([`Job::default_id_token`]). Unlike GitLab, which reuses the first
    /// secret's JWT for every secret of the same provider, each secret's own
    /// `token` is honoured.
    pub fn jwt_reference(&self, default_id_token: Option<&str>) -> Option<String> {
        if let Some(token) = &self.token {
            return Some(token.clone());
        }
        let first = || default_id_token.map(|name| format!("${name}"));
        match self.provider {
            Provider::Akeyless(_) | Provider::Gcp(_) | Provider::GitlabSecretsManager(_) => None,
            Provider::Aws(_) => Some("$AWS_ID_TOKEN".to_owned()),
            Provider::Vault(_) => first().or_else(|| Some("${CI_JOB_JWT}".to_owned())),
            Provider::Azure(_) => first().or_else(|| Some("${CI_JOB_JWT_V2}".to_owned())),
        }
    }

    /// The secret with `$VARIABLES` expanded in the fields GitLab Runner
    /// expands:
    ///
    /// - akeyless: every field except `akeyless_access_key` and
    ///   `gateway_ca_certificate` (the runner does not expand the access
    ///   ID, the access key or the CA certificate);
    /// - aws_secrets_manager, vault, gcp_secret_manager: every field;
    /// - azure_key_vault: `name` and `version` (the runner expands only
    ///   those and the JWT);
    /// - gitlab_secrets_manager: nothing.
    ///
    /// `token` stays a reference: use [`Job::jwt`] for the JWT itself.
    pub fn expanded(&self, vars: &Variables) -> Secret {
        let x = |s: &String| vars.expand(s);
        let xo = |s: &Option<String>| s.as_ref().map(|s| vars.expand(s));
        let provider = match &self.provider {
            Provider::Akeyless(a) => Provider::Akeyless(AkeylessSecret {
                name: xo(&a.name),
                data_key: xo(&a.data_key),
                cert_user_name: xo(&a.cert_user_name),
                public_key_data: xo(&a.public_key_data),
                csr_data: xo(&a.csr_data),
                akeyless_api_url: xo(&a.akeyless_api_url),
                akeyless_access_type: xo(&a.akeyless_access_type),
                akeyless_token: xo(&a.akeyless_token),
                akeyless_access_key: a.akeyless_access_key.clone(),
                uid_token: xo(&a.uid_token),
                gcp_audience: xo(&a.gcp_audience),
                azure_object_id: xo(&a.azure_object_id),
                k8s_service_account_token: xo(&a.k8s_service_account_token),
                k8s_auth_config_name: xo(&a.k8s_auth_config_name),
                gateway_ca_certificate: a.gateway_ca_certificate.clone(),
            }),
            Provider::Aws(a) => Provider::Aws(AwsSecret {
                secret_id: x(&a.secret_id),
                field: xo(&a.field),
                region: xo(&a.region),
                version_id: xo(&a.version_id),
                version_stage: xo(&a.version_stage),
                role_arn: xo(&a.role_arn),
                role_session_name: xo(&a.role_session_name),
            }),
            Provider::Azure(a) => Provider::Azure(AzureSecret {
                name: x(&a.name),
                version: xo(&a.version),
            }),
            Provider::Vault(v) => Provider::Vault(VaultSecret {
                engine: VaultEngine {
                    name: x(&v.engine.name),
                    path: x(&v.engine.path),
                },
                path: x(&v.path),
                field: x(&v.field),
            }),
            Provider::Gcp(g) => Provider::Gcp(GcpSecret {
                name: x(&g.name),
                version: x(&g.version),
            }),
            Provider::GitlabSecretsManager(g) => Provider::GitlabSecretsManager(g.clone()),
        };
        Secret {
            var: self.var.clone(),
            file: self.file,
            token: self.token.clone(),
            provider,
        }
    }
}
