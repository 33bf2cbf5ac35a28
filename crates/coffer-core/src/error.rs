use thiserror::Error;

/// Validation errors of domain values. Messages are shown to API users, so
/// they say what to fix and never echo secret material.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    #[error("invalid name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("invalid path {path:?}: {reason}")]
    InvalidPath { path: String, reason: &'static str },
    #[error("unknown capability {0:?}: use read, list, create, update, delete or deny")]
    UnknownCapability(String),
    #[error(
        "unknown rule type {0:?}: use item-rule, role-rule, auth-method-rule, target-rule or audit-rule"
    )]
    UnknownRuleType(String),
    #[error("invalid sub-claims: {0}")]
    InvalidSubClaims(String),
    #[error("unknown secret format {0:?}: use text, json or key-value")]
    UnknownFormat(String),
    #[error("{0}")]
    Invalid(String),
}
