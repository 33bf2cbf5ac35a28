//! Keys and certificates, free of I/O: the server stores what these
//! functions produce (sealed) and audits every call.
//!
//! - [`keys`]: key algorithms, generation, the stored form of a key
//!   version, public-key export (`pem`, `raw`, `ssh`), self-signed CA
//!   certificates.
//! - [`aead`]: `encrypt` / `decrypt` with AES-GCM or AES-SIV keys, the
//!   encryption context bound as associated data, the key version in the
//!   ciphertext's header so rotated keys still decrypt old ciphertexts.
//! - [`ssh`]: an SSH certificate issuer's policy and signing.
//! - [`x509`]: a PKI certificate issuer's policy, issuing from a CSR or a
//!   public key, and CRLs.
#![forbid(unsafe_code)]

pub mod aead;
pub mod cert_info;
pub mod keys;
pub mod ssh;
pub mod x509;

/// Why a key or certificate operation was refused. Messages name the
/// field to fix and never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The request (or the issuer's settings) is not acceptable: the
    /// message names the offending field.
    #[error("{0}")]
    Invalid(String),
    /// The request asks for something the issuer's policy does not allow.
    #[error("{0}")]
    Denied(String),
    /// A ciphertext that does not decrypt with this key and context.
    #[error("decryption failed: the ciphertext, the key or the encryption context does not match")]
    Decrypt,
    /// A failure inside the crypto library (not the caller's fault).
    #[error("key operation failed: {0}")]
    Internal(String),
}

pub type Result<T, E = KeyError> = std::result::Result<T, E>;

pub(crate) fn invalid(msg: impl Into<String>) -> KeyError {
    KeyError::Invalid(msg.into())
}

pub(crate) fn denied(msg: impl Into<String>) -> KeyError {
    KeyError::Denied(msg.into())
}
