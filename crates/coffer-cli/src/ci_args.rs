//! `coffer ci …` arguments.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::args::secret;

#[derive(Debug, Args)]
pub(crate) struct CiCommand {
    #[command(subcommand)]
    pub command: CiSubcommand,
    /// Allow plain http:// to hosts that are not loopback (the Akeyless API
    /// URL, AWS endpoint overrides, metadata overrides, the GitHub OIDC
    /// URL). Refused by default: credentials would travel unencrypted.
    #[arg(
        long,
        global = true,
        env = "COFFER_ALLOW_INSECURE_HTTP",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub allow_insecure_http: Option<bool>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum CiSubcommand {
    /// Resolve a GitLab job's `secrets:` and print them in a CI's format.
    Resolve(CiResolveArgs),
    /// Resolve, then run a command with the secrets injected (files 0600 or
    /// variables) and masked in its output.
    Run(CiRunArgs),
    /// Validate a job's `secrets:` and show, per secret, provider, endpoint,
    /// identity, token and destination, without fetching anything.
    Explain(CiJobArgs),
    /// Print the environment variables whose value is `akeyless://NAME` or
    /// `coffer://NAME`, resolved.
    Env(CiEnvArgs),
    /// Log in and print the token (Azure DevOps task output `akeylessToken`).
    Auth(CiAuthArgs),
    /// Fetch static secrets: `--secrets-paths 'out=/path,…'`.
    GetSecrets(CiGetSecretsArgs),
    /// Fetch a dynamic secret's value (output `dynamicSecretValue`).
    GetDynamicSecret(CiGetDynamicArgs),
    /// Fetch a rotated secret's value (output `rotatedSecretValue`).
    GetRotatedSecret(CiGetRotatedArgs),
}

/// Where secrets are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CiFormat {
    /// `export NAME='value'` lines.
    Env,
    /// `NAME="value"` lines for `set -a; . file`.
    Dotenv,
    /// One JSON object.
    Json,
    /// `$GITHUB_ENV` / `$GITHUB_OUTPUT` and `::add-mask::` lines.
    Github,
    /// `##vso[task.setvariable …;issecret=true;isoutput=true]` lines.
    AzureDevops,
}

/// Where a job's secrets come from: the pipeline file, variables, ID tokens.
#[derive(Debug, Args)]
pub(crate) struct CiPipelineArgs {
    /// The pipeline file.
    #[arg(long, default_value = ".gitlab-ci.yml")]
    pub file: PathBuf,
    /// A CI/CD variable (repeatable), over the environment's.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// An ID token (repeatable): NAME=VALUE or NAME=@file.
    #[arg(long = "id-token", value_name = "NAME=VALUE|@FILE")]
    pub id_tokens: Vec<String>,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

#[derive(Debug, Args)]
pub(crate) struct CiJobArgs {
    /// The job whose `secrets:` to resolve.
    #[arg(long)]
    pub job: String,
    #[command(flatten)]
    pub pipeline: CiPipelineArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CiResolveArgs {
    #[command(flatten)]
    pub job: CiJobArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "env")]
    pub format: CiFormat,
}

#[derive(Debug, Args)]
pub(crate) struct CiRunArgs {
    /// The job whose `secrets:` to resolve (optional with --resolve-refs).
    #[arg(long)]
    pub job: Option<String>,
    #[command(flatten)]
    pub pipeline: CiPipelineArgs,
    /// Also replace environment variables whose value is `akeyless://NAME`
    /// or `coffer://NAME` with the secret's value.
    #[arg(long)]
    pub resolve_refs: bool,
    #[command(flatten)]
    pub login: CiLoginArgs,
    /// Directory for the secret files (default: $RUNNER_TEMP or $TMPDIR).
    #[arg(long)]
    pub secrets_dir: Option<PathBuf>,
    /// Leave the login credentials (AKEYLESS_ACCESS_KEY, AKEYLESS_JWT,
    /// AKEYLESS_TOKEN, AKEYLESS_UID_TOKEN and the variables the job's
    /// secrets log in with) in the command's environment. They are masked
    /// in its output either way.
    #[arg(long)]
    pub keep_login_env: bool,
    /// The command and its arguments.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CiEnvArgs {
    #[command(flatten)]
    pub login: CiLoginArgs,
    #[arg(long, value_enum, default_value = "env")]
    pub format: CiFormat,
}

/// How the Azure DevOps–style commands and `akeyless://` references log in.
#[derive(Debug, Args, Clone)]
pub(crate) struct CiLoginArgs {
    /// API URL (`AKEYLESS_API_URL`, else `COFFER_GATEWAY_URL`, else https://api.akeyless.io).
    #[arg(long = "gateway-url", alias = "api-url")]
    pub gateway_url: Option<String>,
    /// Access ID (default `AKEYLESS_ACCESS_ID`).
    #[arg(long, env = "AKEYLESS_ACCESS_ID")]
    pub access_id: Option<String>,
    /// access_key (api_key), jwt, universal_identity, k8s, aws_iam, azure_ad or gcp
    /// (default: access_key with --access-key, else jwt).
    #[arg(long, env = "AKEYLESS_ACCESS_TYPE")]
    pub access_type: Option<String>,
    /// Access key ("-" reads standard input).
    #[arg(long, env = "AKEYLESS_ACCESS_KEY", value_parser = secret, hide_env_values = true, allow_hyphen_values = true)]
    pub access_key: Option<SecretString>,
    /// JWT ("-" reads standard input).
    #[arg(long, env = "AKEYLESS_JWT", value_parser = secret, hide_env_values = true, allow_hyphen_values = true)]
    pub jwt: Option<SecretString>,
    /// A token from a previous `coffer ci auth` (skips the login).
    #[arg(long, env = "AKEYLESS_TOKEN", value_parser = secret, hide_env_values = true)]
    pub token: Option<SecretString>,
    /// UID token for universal_identity.
    #[arg(long, env = "AKEYLESS_UID_TOKEN", value_parser = secret, hide_env_values = true)]
    pub uid_token: Option<SecretString>,
    /// Extra CA certificate (PEM file) for the gateway.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CiAuthArgs {
    #[command(flatten)]
    pub login: CiLoginArgs,
    #[arg(long, value_enum, default_value = "env")]
    pub format: CiFormat,
}

#[derive(Debug, Args)]
pub(crate) struct CiGetSecretsArgs {
    /// `out_name=/secret/path` pairs, comma-separated.
    #[arg(long)]
    pub secrets_paths: String,
    /// Secret version (default latest).
    #[arg(long)]
    pub version: Option<i64>,
    #[command(flatten)]
    pub login: CiLoginArgs,
    #[arg(long, value_enum, default_value = "env")]
    pub format: CiFormat,
}

#[derive(Debug, Args)]
pub(crate) struct CiGetDynamicArgs {
    /// Dynamic secret name.
    #[arg(long)]
    pub name: String,
    /// Target name.
    #[arg(long)]
    pub target: Option<String>,
    /// Timeout in seconds.
    #[arg(long)]
    pub timeout: Option<i64>,
    /// Producer arguments (`k=v`, repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub args: Vec<String>,
    /// Gateway host for the producer.
    #[arg(long)]
    pub host: Option<String>,
    #[command(flatten)]
    pub login: CiLoginArgs,
    #[arg(long, value_enum, default_value = "env")]
    pub format: CiFormat,
}

#[derive(Debug, Args)]
pub(crate) struct CiGetRotatedArgs {
    /// Rotated secret name.
    #[arg(long)]
    pub name: String,
    #[arg(long)]
    pub version: Option<i64>,
    #[arg(long)]
    pub host: Option<String>,
    #[command(flatten)]
    pub login: CiLoginArgs,
    #[arg(long, value_enum, default_value = "env")]
    pub format: CiFormat,
}
