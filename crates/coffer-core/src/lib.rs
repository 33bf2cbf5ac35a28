//! Coffer's domain: names and paths, items, auth methods, roles and rules,
//! the pure policy engine, sub-claim matching and the audit record shape.
//!
//! Nothing in this crate performs I/O; every function is deterministic given
//! its inputs, which is what makes the policy engine property-testable.
#![forbid(unsafe_code)]

pub mod audit;
pub mod cert_login;
pub mod dbsql;
pub mod delegation;
pub mod error;
pub mod glob;
pub mod model;
pub mod name;
pub mod policy;
pub mod subclaims;

pub use error::CoreError;
