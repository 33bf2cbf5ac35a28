//! `coffer ci`: resolve a GitLab job's `secrets:` block in any CI system.
//!
//! - [`gitlab`]: load `.gitlab-ci.yml` (anchors, `<<` merges, `extends:`,
//!   `default:`, `!reference`), validate a job's `secrets:` and `id_tokens:`
//!   with GitLab's rules and messages, and expand `$VARIABLES`.
//! - [`mask`]: streaming replacement of secret values (and their encoded
//!   forms) by `[MASKED]` in a child's output.
//! - [`run`]: run a command with secrets injected as files or variables.
//! - [`format`]: print resolved secrets for a CI system (env, dotenv, json,
//!   GitHub, Azure DevOps).
#![forbid(unsafe_code)]

pub mod cloud_id;
pub mod format;
pub mod gitlab;
pub mod id_tokens;
pub mod mask;
pub mod providers;
pub mod resolve;
pub mod run;
