//! A GitLab job's `secrets:`, `id_tokens:` and `variables:`, read from
//! `.gitlab-ci.yml` and validated as GitLab does. No I/O besides reading
//! the file in [`load_file`].
//!
//! ```text
//! let env = Variables::from_env();
//! let job = gitlab::load_file(".gitlab-ci.yml", "deploy", &env)?;
//! // … obtain the ID tokens of job.id_tokens, add them to `env` …
//! let vars = job.expansion_variables(&env);
//! job.check_providers(&vars)?;
//! for secret in &job.secrets {
//!     let jwt = job.jwt(secret, &vars);           // Option<String>
//!     let secret = secret.expanded(&vars);        // fields per provider
//!     // … resolve with the provider …
//! }
//! ```
//!
//! # What is read
//!
//! - YAML anchors and aliases, `<<` merge keys (serde-saphyr; alias bombs
//!   are refused by its node budget), and a `spec:` header document.
//! - `extends:` (one name or a list, multi-level, hidden `.jobs`): GitLab's
//!   deep merge (bases in order, then the job; mappings merge, anything else
//!   is replaced), at most 10 levels, loops reported with the chain.
//! - `!reference [.job, key, …]` anywhere in the keys read: resolved after
//!   `extends:` as GitLab does, nested at most 10 levels, loops and missing
//!   targets reported with GitLab's messages.
//! - `default:` provides `id_tokens` only (when the job has none), unless
//!   `inherit: default: false` or a list without `id_tokens`. `secrets` is
//!   job-level only: a `default: secrets:` is an error, as in GitLab.
//! - The global `variables:` under the job's own (`inherit: variables:`
//!   honoured); values are strings, integers or `{value:, description:,
//!   expand:}`.
//!
//! Not read: `include:` (a job that extends an included template fails
//! with GitLab's "unknown keys in `extends`" message), `spec: inputs:`
//! interpolation, `rules:`. Only the requested job's chain and the keys
//! above are processed, so errors elsewhere in the file are not reported.
//!
//! # Validation messages
//!
//! Each validation error is `<location> <message>` with GitLab's location
//! (`jobs:deploy:secrets:DATABASE_PASSWORD`,
//! `…:aws_secrets_manager`, `…:file`, `default:id_tokens:ID`) and GitLab's
//! message text, all errors collected ([`GitlabError::Invalid`]). GitLab
//! prints the whole line lower-cased; here the location keeps its case.
//! GitLab's spec tests show the provider messages with a `hash strategy` /
//! `string strategy` prefix because there the entry has no key; in a
//! pipeline that place holds the location, as here.
//!
//! Deliberate differences:
//! - `akeyless` is accepted (GitLab removed it in 2025), so the provider
//!   list in `config must use exactly one of these keys:` is the one GitLab
//!   printed while it supported both Akeyless and AWS: `vault,
//!   azure_key_vault, gcp_secret_manager, akeyless, gitlab_secrets_manager,
//!   aws_secrets_manager`.
//! - A null `akeyless:` means `{}` (token reuse); GitLab dropped it. A null
//!   value under any other provider key is an error; GitLab silently
//!   skipped such a secret.
//! - `version_id` together with `version_stage` is an error.
//! - Each secret's own `token:` is honoured ([`Secret::jwt_reference`]).

mod config;
mod expand;
mod gate;
mod secret;
mod validate;
mod yaml;

use std::path::{Path, PathBuf};

pub use expand::{Variables, expand, referenced_names};
pub use gate::{MissingProvider, PROVIDER_NOT_FOUND, missing_providers};
pub use secret::{
    AkeylessSecret, AwsSecret, AzureSecret, GcpSecret, GitlabSecretsManagerSecret, IdToken, Job,
    Provider, ProviderKind, Secret, VaultEngine, VaultSecret,
};

use config::{Config, RESERVED_KEYS, is_job_name};
use secret::compute_variables;
use validate::{Errors, Inherit};
use yaml::{Node, ParseError};

/// The provider keys accepted under a secret, in the order of the
/// `config must use exactly one of these keys:` message.
pub const PROVIDER_KEYS: &[&str] = validate::PROVIDER_KEYS;

/// Why a job could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GitlabError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not YAML, or an alias bomb (serde-saphyr's message with the line).
    #[error("invalid YAML: {0}")]
    Yaml(String),
    #[error(
        "the file holds {0} YAML documents; expected one, or a `spec:` header and the configuration"
    )]
    Documents(usize),
    #[error("the CI configuration is empty")]
    Empty,
    /// GitLab's message when the top level is not a mapping.
    #[error("Invalid configuration format: the top level must be a mapping of jobs and keywords")]
    NotAMapping,
    #[error("{}", job_not_found(.job, .jobs))]
    JobNotFound {
        job: String,
        /// The jobs the file defines.
        jobs: Vec<String>,
    },
    /// An `extends:` or `!reference` error, with GitLab's message
    /// (`deploy: circular dependency detected in `extends``,
    /// `!reference [".x", "y"] could not be found`).
    #[error("{0}")]
    Config(String),
    /// GitLab validation errors, every one found.
    #[error("{}", invalid(.job, .errors))]
    Invalid { job: String, errors: Vec<String> },
    /// GitLab's provider check failed (see [`Job::check_providers`]).
    #[error("{}", provider_not_found(.0))]
    ProviderNotConfigured(Vec<MissingProvider>),
}

fn job_not_found(job: &str, jobs: &[String]) -> String {
    let why = if job.starts_with('.') {
        " (a name starting with `.` is a hidden job: a template that never runs)"
    } else if RESERVED_KEYS.contains(&job) {
        " (it is a GitLab keyword, not a job)"
    } else {
        ""
    };
    let list = if jobs.is_empty() {
        "the file defines no jobs".to_owned()
    } else {
        format!("the jobs are: {}", jobs.join(", "))
    };
    format!("no job named `{job}`{why}; {list}")
}

fn invalid(job: &str, errors: &[String]) -> String {
    let mut out = format!("job `{job}` is invalid:");
    for e in errors {
        out.push_str("\n  ");
        out.push_str(e);
    }
    out
}

fn provider_not_found(missing: &[MissingProvider]) -> String {
    let details: Vec<String> = missing.iter().map(ToString::to_string).collect();
    format!("{PROVIDER_NOT_FOUND} {}", details.join("; "))
}

impl GitlabError {
    /// The validation errors, if this is [`GitlabError::Invalid`].
    pub fn validation_errors(&self) -> &[String] {
        match self {
            GitlabError::Invalid { errors, .. } => errors,
            _ => &[],
        }
    }
}

impl Job {
    /// GitLab's provider check: every provider used by the secrets has its
    /// CI/CD variables set in `vars` ([`missing_providers`]).
    pub fn check_providers(&self, vars: &Variables) -> Result<(), GitlabError> {
        let missing = missing_providers(&self.secrets, vars);
        if missing.is_empty() {
            Ok(())
        } else {
            Err(GitlabError::ProviderNotConfigured(missing))
        }
    }
}

/// Reads `path` and [`load`]s `job_name` from it.
pub fn load_file(
    path: impl AsRef<Path>,
    job_name: &str,
    env: &Variables,
) -> Result<Job, GitlabError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| GitlabError::Read {
        path: path.to_owned(),
        source,
    })?;
    load(&text, job_name, env)
}

/// Reads job `job_name` from the text of a `.gitlab-ci.yml`. `env` holds
/// the CI/CD variables visible to the job (usually the process
/// environment): [`Job::variables`] is computed with them.
pub fn load(text: &str, job_name: &str, env: &Variables) -> Result<Job, GitlabError> {
    let top = match yaml::parse(text) {
        Ok(Node::Map(top)) => top,
        Ok(Node::Null) => return Err(GitlabError::Empty),
        Ok(_) => return Err(GitlabError::NotAMapping),
        Err(ParseError::Syntax(message)) => return Err(GitlabError::Yaml(message)),
        Err(ParseError::Documents(n)) => return Err(GitlabError::Documents(n)),
    };
    let config = Config::new(top);
    if !is_job_name(job_name) || !matches!(config.top().get(job_name), Some(Node::Map(_))) {
        return Err(GitlabError::JobNotFound {
            job: job_name.to_owned(),
            jobs: config.job_names(),
        });
    }
    let job_node = config
        .extended(job_name)
        .map_err(GitlabError::Config)?
        .unwrap_or(Node::Null);
    let Node::Map(job) = job_node else {
        return Err(GitlabError::JobNotFound {
            job: job_name.to_owned(),
            jobs: config.job_names(),
        });
    };
    let resolve = |node: &Node| config.resolve(node).map_err(GitlabError::Config);
    let loc = format!("jobs:{job_name}");
    let mut errs = Errors::default();

    let inherit_node = job.get("inherit").map(resolve).transpose()?;
    let (inherit_default, inherit_variables) =
        validate::inherit(inherit_node.as_ref(), &loc, &mut errs);

    // `default:`: only `id_tokens` is inherited; `secrets` is not allowed.
    let default = match config.top().get("default") {
        None | Some(Node::Null) => None,
        Some(Node::Map(default)) => {
            if default.contains_key("secrets") {
                errs.add("default", "config contains unknown keys: secrets");
            }
            Some(default)
        }
        Some(_) => {
            errs.add("default", "config should be a hash");
            None
        }
    };

    let (id_tokens, default_id_token) = match job.get("id_tokens") {
        Some(node) if *node != Node::Null => {
            validate::id_tokens(&resolve(node)?, &format!("{loc}:id_tokens"), &mut errs)
        }
        _ => match default.and_then(|d| d.get("id_tokens")) {
            Some(node) if inherit_default.allows("id_tokens") => {
                validate::id_tokens(&resolve(node)?, "default:id_tokens", &mut errs)
            }
            _ => Default::default(),
        },
    };

    let secrets = match job.get("secrets") {
        Some(node) => validate::secrets(&resolve(node)?, &format!("{loc}:secrets"), &mut errs),
        None => Vec::new(),
    };

    let mut declared = match config.top().get("variables") {
        Some(node) if inherit_variables != Inherit::Nothing => {
            let mut global = validate::variables(
                &resolve(node)?,
                "variables",
                validate::GLOBAL_VARIABLE_KEYS,
                true,
                &mut errs,
            );
            global.retain(|(name, _)| inherit_variables.allows(name));
            global
        }
        _ => Vec::new(),
    };
    if let Some(node) = job.get("variables") {
        let own = validate::variables(
            &resolve(node)?,
            &format!("{loc}:variables"),
            validate::JOB_VARIABLE_KEYS,
            false,
            &mut errs,
        );
        for (name, var) in own {
            match declared.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = var,
                None => declared.push((name, var)),
            }
        }
    }

    if !errs.0.is_empty() {
        return Err(GitlabError::Invalid {
            job: job_name.to_owned(),
            errors: errs.0,
        });
    }
    let computed = compute_variables(&declared, env);
    let variables = declared
        .iter()
        .map(|(name, _)| {
            (
                name.clone(),
                computed.get(name).unwrap_or_default().to_owned(),
            )
        })
        .collect();
    Ok(Job {
        name: job_name.to_owned(),
        id_tokens,
        default_id_token,
        secrets,
        variables,
        declared,
    })
}
