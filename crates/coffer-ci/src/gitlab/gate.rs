//! GitLab's provider check (`Ci::Secrets::Integration`): before a job
//! starts, every provider its secrets use must have its CI/CD variables set
//! (non-blank); otherwise GitLab drops the job with
//! `The secrets provider can not be found. Check your CI/CD variables and try again.`

use std::collections::BTreeMap;
use std::fmt;

use super::expand::Variables;
use super::secret::{ProviderKind, Secret};

/// GitLab's message for a job whose secrets provider is not configured.
pub const PROVIDER_NOT_FOUND: &str =
    "The secrets provider can not be found. Check your CI/CD variables and try again.";

/// A provider whose CI/CD variables are missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingProvider {
    pub provider: ProviderKind,
    /// The required variables that are unset or blank, in GitLab's order.
    pub variables: Vec<&'static str>,
    /// The secrets (variable names) that use this provider.
    pub secrets: Vec<String>,
}

impl fmt::Display for MissingProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (used by {}) needs {}",
            self.provider,
            self.secrets.join(", "),
            self.variables.join(", ")
        )
    }
}

/// The providers used by `secrets` whose required variables are not all
/// set in `vars` (the job's variables over the CI/CD variables, see
/// [`Job::expansion_variables`](super::Job::expansion_variables)).
/// `AWS_REGION` is required even when every secret sets `region:`, as in
/// GitLab.
pub fn missing_providers(secrets: &[Secret], vars: &Variables) -> Vec<MissingProvider> {
    let mut used: BTreeMap<ProviderKind, Vec<String>> = BTreeMap::new();
    for secret in secrets {
        used.entry(secret.provider.kind())
            .or_default()
            .push(secret.var.clone());
    }
    used.into_iter()
        .filter_map(|(provider, secrets)| {
            let variables: Vec<&'static str> = provider
                .required_variables()
                .iter()
                .copied()
                .filter(|name| !vars.is_present(name))
                .collect();
            (!variables.is_empty()).then_some(MissingProvider {
                provider,
                variables,
                secrets,
            })
        })
        .collect()
}
