//! Stored objects. Times are Unix milliseconds (UTC).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::policy::Rule;
use crate::subclaims::{Claims, SubClaims};

/// Kind of an auth method. The character is the second-to-last character of
/// the access ID (after `p-`), as the Akeyless clients expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuthMethodKind {
    ApiKey,
    OAuth2,
    AwsIam,
    K8s,
    Gcp,
    AzureAd,
    UniversalIdentity,
    /// Client certificates chained to a CA stored in the method.
    Cert,
    /// People, through an OpenID Provider (authorization code + PKCE).
    Oidc,
}

impl AuthMethodKind {
    pub fn type_char(self) -> char {
        match self {
            AuthMethodKind::ApiKey => 'a',
            AuthMethodKind::OAuth2 => 'o',
            AuthMethodKind::AwsIam => 'w',
            AuthMethodKind::K8s => 'k',
            AuthMethodKind::Gcp => 'g',
            AuthMethodKind::AzureAd => 'z',
            AuthMethodKind::UniversalIdentity => 'u',
            AuthMethodKind::Cert => 'c',
            AuthMethodKind::Oidc => 'i',
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethodKind::ApiKey => "api_key",
            AuthMethodKind::OAuth2 => "oauth2",
            AuthMethodKind::AwsIam => "aws_iam",
            AuthMethodKind::K8s => "k8s",
            AuthMethodKind::Gcp => "gcp",
            AuthMethodKind::AzureAd => "azure_ad",
            AuthMethodKind::UniversalIdentity => "universal_identity",
            AuthMethodKind::Cert => "cert",
            AuthMethodKind::Oidc => "oidc",
        }
    }
    /// Whether role associations must carry sub-claims by default.
    pub fn claims_based(self) -> bool {
        matches!(
            self,
            AuthMethodKind::OAuth2
                | AuthMethodKind::K8s
                | AuthMethodKind::AzureAd
                | AuthMethodKind::Gcp
                | AuthMethodKind::Cert
                | AuthMethodKind::Oidc
        )
    }
}

impl FromStr for AuthMethodKind {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "api_key" | "access_key" => AuthMethodKind::ApiKey,
            "oauth2" | "jwt" => AuthMethodKind::OAuth2,
            "oidc" => AuthMethodKind::Oidc,
            "aws_iam" => AuthMethodKind::AwsIam,
            "k8s" => AuthMethodKind::K8s,
            "gcp" => AuthMethodKind::Gcp,
            "azure_ad" => AuthMethodKind::AzureAd,
            "universal_identity" => AuthMethodKind::UniversalIdentity,
            "cert" => AuthMethodKind::Cert,
            other => {
                return Err(CoreError::Invalid(format!(
                    "unknown auth method type {other:?}"
                )));
            }
        })
    }
}

impl fmt::Display for AuthMethodKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An auth method: how an identity proves itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthMethod {
    pub name: String,
    pub access_id: String,
    pub kind: AuthMethodKind,
    pub description: String,
    /// Keyed hash of the access key (API-key methods only). Never the key.
    pub access_key_hash: Option<Vec<u8>>,
    /// Unix ms after which the method can no longer log in; 0 = never.
    pub access_expires_ms: i64,
    /// CIDRs the caller's socket address must be in; empty = anywhere.
    pub bound_ips: Vec<String>,
    /// Lifetime of tokens issued by this method, in seconds; 0 = server default.
    pub token_ttl_secs: i64,
    pub force_sub_claims: bool,
    /// Type-specific settings (JWKS URL, issuer, ...), for later auth kinds.
    pub config: serde_json::Value,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// Who may see audit records, a role attribute (as in Akeyless).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub enum AuditAccess {
    #[default]
    None,
    Own,
    All,
}

impl AuditAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAccess::None => "none",
            AuditAccess::Own => "own",
            AuditAccess::All => "all",
        }
    }
}

impl FromStr for AuditAccess {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "none" => Ok(AuditAccess::None),
            "own" => Ok(AuditAccess::Own),
            "all" | "scoped" => Ok(AuditAccess::All),
            other => Err(CoreError::Invalid(format!(
                "audit-access must be none, own or all, not {other:?}"
            ))),
        }
    }
}

/// An access role: a named set of rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Role {
    pub name: String,
    pub description: String,
    pub audit_access: AuditAccess,
    pub rules: Vec<Rule>,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// Binding of a role to an auth method, optionally narrowed by sub-claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Association {
    pub assoc_id: String,
    pub role_name: String,
    pub auth_method_name: String,
    pub sub_claims: SubClaims,
    pub case_sensitive: bool,
    pub created_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemType {
    StaticSecret,
    /// Issues temporary database users on request (a producer).
    DynamicSecret,
    /// A database user's password, changed on a schedule.
    RotatedSecret,
    /// A key held by the server (AES for encrypt/decrypt; RSA, EC or
    /// Ed25519 for signing), its versions kept for decryption.
    Key,
    /// Signs SSH certificates with a key, under a policy.
    SshCertIssuer,
    /// Signs X.509 certificates with a key's CA certificate, under a policy.
    PkiCertIssuer,
}

impl ItemType {
    pub const ALL: [ItemType; 6] = [
        ItemType::StaticSecret,
        ItemType::DynamicSecret,
        ItemType::RotatedSecret,
        ItemType::Key,
        ItemType::SshCertIssuer,
        ItemType::PkiCertIssuer,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::StaticSecret => "STATIC_SECRET",
            ItemType::DynamicSecret => "DYNAMIC_SECRET",
            ItemType::RotatedSecret => "ROTATED_SECRET",
            // Every Coffer key is what Akeyless calls a classic key: held
            // by the server, any algorithm, optionally with a certificate.
            ItemType::Key => "CLASSIC_KEY",
            ItemType::SshCertIssuer => "SSH_CERT_ISSUER",
            ItemType::PkiCertIssuer => "PKI_CERT_ISSUER",
        }
    }
    /// What a person calls it, for messages ("an SSH certificate issuer").
    pub fn described(self) -> &'static str {
        match self {
            ItemType::StaticSecret => "a static secret",
            ItemType::DynamicSecret => "a dynamic secret",
            ItemType::RotatedSecret => "a rotated secret",
            ItemType::Key => "a key",
            ItemType::SshCertIssuer => "an SSH certificate issuer",
            ItemType::PkiCertIssuer => "a PKI certificate issuer",
        }
    }
    /// The `type` filter value of list-items.
    pub fn filter_name(self) -> &'static str {
        match self {
            ItemType::StaticSecret => "static-secret",
            ItemType::DynamicSecret => "dynamic-secret",
            ItemType::RotatedSecret => "rotated-secret",
            ItemType::Key => "classic-key",
            ItemType::SshCertIssuer => "ssh-cert-issuer",
            ItemType::PkiCertIssuer => "pki-cert-issuer",
        }
    }
}

/// What a static secret holds: a value, or a password-manager entry
/// (`username`, `password`, URLs and custom fields, stored as JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum ItemSubType {
    #[default]
    Generic,
    Password,
}

impl ItemSubType {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemSubType::Generic => "generic",
            ItemSubType::Password => "password",
        }
    }
}

impl FromStr for ItemSubType {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "generic" => Ok(ItemSubType::Generic),
            "password" => Ok(ItemSubType::Password),
            other => Err(CoreError::Invalid(format!(
                "type must be generic or password, not {other:?}"
            ))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretFormat {
    Text,
    Json,
    KeyValue,
}

impl SecretFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            SecretFormat::Text => "text",
            SecretFormat::Json => "json",
            SecretFormat::KeyValue => "key-value",
        }
    }
}

impl FromStr for SecretFormat {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(SecretFormat::Text),
            "json" => Ok(SecretFormat::Json),
            "key-value" | "key_value" | "keyvalue" => Ok(SecretFormat::KeyValue),
            _ => Err(CoreError::UnknownFormat(s.to_owned())),
        }
    }
}

/// A stored item's metadata (no values).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: i64,
    pub name: String,
    pub item_type: ItemType,
    pub sub_type: ItemSubType,
    pub format: SecretFormat,
    pub description: String,
    pub tags: Vec<String>,
    /// Versions kept; older ones are pruned on update. 0 = server default.
    pub max_versions: i32,
    /// The newest version that still exists (what "latest" reads).
    pub last_version: i32,
    /// The highest version number ever given: never reused, even after
    /// that version is deleted, so a client pinned to a version number
    /// never silently gets another value.
    pub highest_version: i32,
    pub enabled: bool,
    pub created_ms: i64,
    pub modified_ms: i64,
    /// When a pending deletion (delete-item with delete-in-days) purges
    /// the item; 0 = not pending deletion.
    #[serde(default)]
    pub deletion_ms: i64,
}

impl Item {
    /// Pending deletion: its value cannot be read, lists skip it, its name
    /// stays taken until it is purged or restored.
    pub fn pending_deletion(&self) -> bool {
        self.deletion_ms > 0
    }
}

/// One sealed version of an item's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedVersion {
    pub version: i32,
    /// Which data key sealed it.
    pub key_id: i64,
    /// nonce || ciphertext || tag
    pub sealed: Vec<u8>,
    pub created_ms: i64,
}

/// Metadata of a version, as shown by describe-item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub version: i32,
    pub created_ms: i64,
}

/// An issued token, as stored (hash only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub token_hash: Vec<u8>,
    pub access_id: String,
    pub auth_method_name: String,
    /// The caller's name for audit (access ID, or the unique-identifier claim).
    pub identity: String,
    pub claims: Claims,
    pub issued_ms: i64,
    pub expires_ms: i64,
}

/// A Universal Identity (UID) token, as stored: the keyed hash of its
/// current secret, never the secret. Tokens of one auth method form a
/// tree: root tokens (made by an admin) have no parent and depth 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UidToken {
    /// Public, stable ID (`uid-…`); the secret changes on rotation, the ID does not.
    pub token_id: String,
    /// Keyed hash of the current secret.
    pub token_hash: Vec<u8>,
    pub parent_id: Option<String>,
    /// The auth method's access ID.
    pub access_id: String,
    /// 1 for a root token, parent's depth + 1 for a child.
    pub depth: i32,
    /// Lifetime given by a rotation, in seconds.
    pub ttl_secs: i64,
    pub expires_ms: i64,
    pub deny_rotate: bool,
    pub deny_inheritance: bool,
    pub comment: String,
    pub revoked: bool,
    /// Last rotation; 0 = never rotated.
    pub last_rotated_ms: i64,
    pub created_ms: i64,
    pub modified_ms: i64,
}

impl UidToken {
    /// Not revoked and not expired at `now_ms`.
    pub fn is_live(&self, now_ms: i64) -> bool {
        !self.revoked && self.expires_ms > now_ms
    }
}

/// Extra tags on an item, key=value style, kept for forward compatibility.
pub type Tags = BTreeMap<String, String>;

/// A stored admin connection to a database (`target-create-db`). The
/// password is sealed (AAD = target id and version); everything else is
/// plain settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub id: i64,
    pub name: String,
    /// `mysql` or `postgres`.
    pub target_type: String,
    pub description: String,
    /// Non-secret connection settings (host, port, user, database, TLS).
    pub details: serde_json::Value,
    /// The sealed secret part (the password).
    pub key_id: i64,
    pub sealed: Vec<u8>,
    /// Starts at 1; every update adds one (optimistic concurrency).
    pub version: i32,
    pub created_ms: i64,
    pub modified_ms: i64,
}

/// The settings row of a dynamic or rotated secret. Secret parts (an
/// inline connection's password) are in the item's sealed versions.
#[derive(Debug, Clone, PartialEq)]
pub struct Producer {
    pub item_id: i64,
    /// The target the item uses, if any (target deletion checks it).
    pub target_name: Option<String>,
    /// Non-secret settings (database type, statements, TTL, rotation).
    pub settings: serde_json::Value,
    /// `ProducerConnected` / `RotationSucceeded` / `RotationInitialStatus`
    /// or the last failure.
    pub status: String,
    /// Rotated secrets: a version written but not yet confirmed to log in.
    pub pending_version: Option<i32>,
    pub last_rotation_ms: i64,
    /// When the next automatic rotation is due; 0 = none.
    pub next_rotation_ms: i64,
}

/// State of a lease (issued temporary credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    Live,
    Revoked,
}

impl LeaseState {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Live => "live",
            LeaseState::Revoked => "revoked",
        }
    }
}

impl FromStr for LeaseState {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "live" => Ok(LeaseState::Live),
            "revoked" => Ok(LeaseState::Revoked),
            other => Err(CoreError::Invalid(format!("unknown lease state {other:?}"))),
        }
    }
}

/// Temporary credentials issued by a dynamic secret: written before the
/// database user is created, revoked (user dropped) at expiry.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// The temporary credential's ID: the database user name.
    pub id: String,
    pub item_id: i64,
    pub item_name: String,
    /// Who asked for it.
    pub access_id: String,
    pub identity: String,
    /// Keyed hash of the session token the credentials are tied to: when
    /// that token is revoked or expires, the lease is revoked too.
    pub token_hash: Option<Vec<u8>>,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub state: LeaseState,
    /// Failed revocation attempts so far, the next try and the last error.
    pub attempts: i32,
    pub next_attempt_ms: i64,
    pub last_error: String,
    pub revoked_ms: i64,
}

/// What kind of certificate an issuer signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CertKind {
    Ssh,
    Pki,
}

impl CertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CertKind::Ssh => "ssh",
            CertKind::Pki => "pki",
        }
    }
}

impl FromStr for CertKind {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ssh" => Ok(CertKind::Ssh),
            "pki" => Ok(CertKind::Pki),
            other => Err(CoreError::Invalid(format!(
                "certificate kind must be ssh or pki, not {other:?}"
            ))),
        }
    }
}

/// The record of an issued certificate (never the certificate's key):
/// who got which serial, for what names, until when, and whether it was
/// revoked. Kept after the certificate expires and after its issuer is
/// deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCert {
    /// The issuer item's id (serials are unique per issuer).
    pub issuer_id: i64,
    pub issuer_name: String,
    /// Lowercase hex.
    pub serial: String,
    pub kind: CertKind,
    /// The CA key that signed it (name and version): revocations are
    /// published per signing key, whichever issuer used it.
    pub signer_key: String,
    pub signer_version: i32,
    /// SSH: the key ID; PKI: the subject DN.
    pub subject: String,
    /// SSH: principals; PKI: subject alternative names.
    pub names: Vec<String>,
    pub access_id: String,
    pub identity: String,
    /// The issuing request's ID: its audit record has the same.
    pub request_id: String,
    pub issued_ms: i64,
    pub expires_ms: i64,
    /// 0 while not revoked.
    pub revoked_ms: i64,
    pub revocation_reason: String,
}
