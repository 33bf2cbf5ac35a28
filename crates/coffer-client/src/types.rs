//! Typed responses. Every struct tolerates missing fields (defaults) and
//! `null` lists, and ignores fields it does not know, like the Akeyless SDKs.
//! Tokens, access keys and secret values are [`SecretString`]s.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Sub-claims: key → accepted values.
pub type SubClaims = BTreeMap<String, Vec<String>>;

/// Deserialize `null` as the type's default (for lists and maps).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `auth` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthOutput {
    pub token: SecretString,
    /// Go `time.String()` form, e.g. `2026-11-22 04:16:25 +0000 UTC`.
    pub expiration: String,
    pub creds: AuthCreds,
}

/// `get-cert-challenge`'s answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CertChallengeOutput {
    pub challenge: String,
}

/// `oidc-auth-url`'s answer.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OidcAuthUrlOutput {
    pub auth_url: String,
    pub state: String,
}

/// `creds` of the `auth` response (the duplicate token in it is not kept).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthCreds {
    /// Unix seconds.
    pub expiry: i64,
    pub access_id: String,
    pub auth_method_name: String,
    #[serde(deserialize_with = "null_default")]
    pub sub_claims: SubClaims,
}

impl AuthOutput {
    /// When the token expires, in Unix seconds: `creds.expiry`, else parsed
    /// from `expiration` (Go `time.String()` form or RFC 3339).
    pub fn expires_at(&self) -> Option<i64> {
        if self.creds.expiry > 0 {
            return Some(self.creds.expiry);
        }
        parse_expiration(&self.expiration)
    }
}

/// Parse an expiration date as the server sends it: Go's `time.String()`
/// form (`2026-11-22 04:16:25 +0000 UTC`, optionally with fractional
/// seconds) or RFC 3339. Returns Unix seconds.
pub fn parse_expiration(text: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t.unix_timestamp());
    }
    // "<date> <time> <±hhmm> <zone name>"
    let mut parts = text.split_whitespace();
    let (date, clock, offset) = (parts.next()?, parts.next()?, parts.next()?);
    let clock = clock.split('.').next()?;
    let dt = PrimitiveDateTime::parse(
        &format!("{date} {clock}"),
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .ok()?;
    let offset = UtcOffset::parse(
        offset,
        time::macros::format_description!("[offset_hour sign:mandatory][offset_minute]"),
    )
    .ok()?;
    Some(dt.assume_offset(offset).unix_timestamp())
}

/// `validate-token` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ValidateTokenOutput {
    pub is_valid: bool,
    pub expiration: Option<String>,
    pub ttl: i64,
    pub reason: String,
}

/// `get-caller-identity` response: the calling token's identity.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CallerIdentity {
    pub access_id: String,
    pub auth_method_name: String,
    /// api_key, oauth2, k8s, aws_iam, azure_ad, gcp, universal_identity, …
    pub auth_method_type: Option<String>,
    pub identity: String,
    pub sub_claims: SubClaims,
    pub roles: Vec<CallerRole>,
    pub issued: Option<String>,
    pub expiration: Option<String>,
    pub ttl: i64,
}

/// A role of the caller (`get-caller-identity`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CallerRole {
    pub name: String,
    pub audit_access: String,
}

/// `{"name": …}` responses (create-secret, update-secret-val, delete-auth-method).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct NameOutput {
    pub name: String,
}

/// `update-role` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UpdateRoleOutput {
    pub updated: bool,
}

/// `reset-access-key` response: the new key, shown once.
#[derive(Debug, Clone, Deserialize)]
pub struct ResetAccessKeyOutput {
    pub access_key: SecretString,
}

/// `{}` responses; whatever the server sends is ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Empty {}

/// `get-secret-value` response: name → value. A value the server sends as
/// JSON (not a string) is kept as its JSON text.
#[derive(Debug, Clone, Default)]
pub struct SecretValues(pub BTreeMap<String, SecretString>);

impl SecretValues {
    pub fn get(&self, name: &str) -> Option<&SecretString> {
        self.0.get(name)
    }
}

impl<'de> Deserialize<'de> for SecretValues {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, Value>::deserialize(d)?;
        Ok(SecretValues(
            raw.into_iter()
                .map(|(k, v)| {
                    let text = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k, SecretString::from(text))
                })
                .collect(),
        ))
    }
}

/// An item as returned by `describe-item` and `list-items`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ItemInfo {
    pub item_name: String,
    pub item_id: i64,
    pub item_type: String,
    pub item_sub_type: String,
    #[serde(deserialize_with = "null_default")]
    pub item_tags: Vec<String>,
    /// The description.
    pub item_metadata: String,
    pub last_version: i64,
    pub is_enabled: bool,
    pub creation_date: Option<String>,
    pub modification_date: Option<String>,
    /// `Enabled`, or `PendingDeletion` (see `deletion_date`).
    pub item_state: String,
    /// When an item pending deletion is purged.
    pub deletion_date: Option<String>,
    pub auto_rotate: bool,
    /// Days (rotated secrets).
    pub rotation_interval: i64,
    pub last_rotation_date: Option<String>,
    pub next_rotation_date: Option<String>,
    /// Rotated secrets: the target they rotate through.
    #[serde(deserialize_with = "null_default")]
    pub item_targets_assoc: Vec<ItemTargetAssoc>,
    pub item_general_info: ItemGeneralInfo,
    #[serde(deserialize_with = "null_default")]
    pub item_versions: Vec<ItemVersion>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ItemGeneralInfo {
    pub static_secret_info: Option<StaticSecretInfo>,
    pub rotated_secret_details: Option<RotatedSecretDetails>,
    pub dynamic_secret_producer_details: Option<DynamicSecretProducerDetails>,
}

/// `describe-item` of a rotated secret: how and whether it rotates.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RotatedSecretDetails {
    /// `target` or `password`.
    pub rotator_type: String,
    /// `use-user-creds` or `use-target-creds`.
    pub rotator_creds_type: String,
    /// `RotationInitialStatus`, `RotationSucceeded` or `RotationFailed`.
    pub rotator_status: String,
    pub last_rotation_error: Option<String>,
    /// UTC.
    pub rotation_hour: i64,
    pub number_of_versions_to_save: i64,
    /// A rotation in progress (written, not yet confirmed to log in).
    pub pending_version: Option<i64>,
}

/// `describe-item` of a dynamic secret.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DynamicSecretProducerDetails {
    /// `ProducerConnected`, or what failed.
    pub producer_status: String,
    pub producer_type: String,
    #[serde(deserialize_with = "lenient_string")]
    pub user_ttl: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct StaticSecretInfo {
    pub format: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ItemVersion {
    pub version: i64,
    pub creation_date: Option<String>,
}

/// `list-items` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListItemsOutput {
    #[serde(deserialize_with = "null_default")]
    pub items: Vec<ItemInfo>,
    #[serde(deserialize_with = "null_default")]
    pub folders: Vec<String>,
    pub next_page: String,
}

/// `delete-item` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeleteItemOutput {
    pub item_name: String,
    pub version_deleted: i64,
    pub deletion_date: Option<String>,
}

/// `restore-item` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RestoreItemOutput {
    pub item_name: String,
    pub restored: bool,
}

/// `delete-items` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DeleteItemsOutput {
    #[serde(deserialize_with = "null_default")]
    pub deleted_items: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub failed_deleted_items: BTreeMap<String, String>,
    pub path: String,
}

/// `update-item` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct UpdateItemOutput {
    pub updated: bool,
}

/// `create-auth-method` response. The access key is shown only here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CreateAuthMethodOutput {
    pub access_id: String,
    pub access_key: SecretString,
    pub name: String,
}

/// An auth method as returned by `get-auth-method` / `list-auth-methods`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthMethodInfo {
    pub auth_method_name: String,
    pub auth_method_access_id: String,
    pub description: String,
    pub access_info: AccessInfo,
    #[serde(deserialize_with = "null_default")]
    pub auth_method_roles_assoc: Vec<AuthMethodRoleAssoc>,
    pub creation_date: Option<String>,
    pub modification_date: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AccessInfo {
    pub access_expires: i64,
    pub jwt_ttl: i64,
    pub force_sub_claims: bool,
    #[serde(deserialize_with = "null_default")]
    pub bound_ips: Vec<String>,
    pub access_id_alias: String,
    pub rules_type: String,
    /// OAuth2/JWT methods only.
    pub oauth2_access_rules: Option<OAuth2AccessRules>,
    /// AWS IAM methods only.
    pub aws_iam_access_rules: Option<AwsIamAccessRules>,
    /// The rules of the other types (`k8s_access_rules`, …), as sent.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `explain-access`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ExplainAccessOutput {
    pub auth_method: ExplainedMethod,
    pub login: ExplainedLogin,
    #[serde(deserialize_with = "null_default")]
    pub claims: BTreeMap<String, Vec<String>>,
    #[serde(deserialize_with = "null_default")]
    pub associations: Vec<ExplainedAssoc>,
    #[serde(deserialize_with = "null_default")]
    pub roles: Vec<String>,
    /// Set when a path was asked about.
    pub path: Option<String>,
    pub rule_type: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub capabilities: Vec<String>,
    pub denied: bool,
    #[serde(deserialize_with = "null_default")]
    pub rules: Vec<ExplainedRule>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ExplainedMethod {
    pub name: String,
    pub access_id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ExplainedLogin {
    pub verified: bool,
    pub identity: Option<String>,
    pub error: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ExplainedAssoc {
    pub assoc_id: String,
    pub role_name: String,
    #[serde(deserialize_with = "null_default")]
    pub sub_claims: BTreeMap<String, Vec<String>>,
    pub case_sensitive: bool,
    pub matched: bool,
    pub failed_claim: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ExplainedRule {
    pub role: String,
    pub path: String,
    #[serde(deserialize_with = "null_default")]
    pub capabilities: Vec<String>,
}

/// `access_info.oauth2_access_rules` of an OAuth2/JWT auth method.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct OAuth2AccessRules {
    pub jwks_uri: String,
    pub jwks_json_data: String,
    pub unique_identifier: String,
    pub issuer: String,
    /// Comma-separated.
    pub audience: String,
    #[serde(deserialize_with = "null_default")]
    pub bound_client_ids: Vec<String>,
    pub refuse_replay: bool,
    #[serde(deserialize_with = "null_default")]
    pub refuse_events: Vec<String>,
}

/// `access_info.aws_iam_access_rules` of an AWS IAM auth method.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AwsIamAccessRules {
    #[serde(deserialize_with = "null_default")]
    pub account_id: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub arn: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub role_name: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub role_id: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub resource_id: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub user_name: Vec<String>,
    #[serde(deserialize_with = "null_default")]
    pub user_id: Vec<String>,
    pub sts_endpoint: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AuthMethodRoleAssoc {
    pub assoc_id: String,
    pub role_name: String,
    #[serde(deserialize_with = "null_default")]
    pub auth_method_sub_claims: SubClaims,
    pub sub_claims_case_sensitive: bool,
}

/// `list-auth-methods` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListAuthMethodsOutput {
    #[serde(deserialize_with = "null_default")]
    pub auth_methods: Vec<AuthMethodInfo>,
    pub next_page: String,
}

/// A role as returned by `get-role` / `list-roles`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RoleInfo {
    pub role_name: String,
    pub description: String,
    pub audit_access: String,
    pub rules: RoleRules,
    #[serde(deserialize_with = "null_default")]
    pub role_auth_methods_assoc: Vec<RoleAuthMethodAssoc>,
    pub creation_date: Option<String>,
    pub modification_date: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RoleRules {
    #[serde(deserialize_with = "null_default")]
    pub path_rules: Vec<PathRule>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PathRule {
    pub path: String,
    #[serde(deserialize_with = "null_default")]
    pub capabilities: Vec<String>,
    #[serde(rename = "type")]
    pub rule_type: String,
    pub ttl: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RoleAuthMethodAssoc {
    pub assoc_id: String,
    pub auth_method_name: String,
    pub auth_method_access_id: String,
    #[serde(deserialize_with = "null_default")]
    pub auth_method_sub_claims: SubClaims,
    pub sub_claims_case_sensitive: bool,
}

/// `list-roles` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListRolesOutput {
    #[serde(deserialize_with = "null_default")]
    pub roles: Vec<RoleInfo>,
    pub next_page: String,
}

/// `assoc-role-am` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AssocOutput {
    pub assoc_id: String,
}

/// One audit record as `audit-list` returns it. Holds no secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditRecord {
    pub seq: i64,
    /// RFC 3339.
    pub time: String,
    pub request_id: String,
    pub operation: String,
    pub object: String,
    /// `allowed`, `denied` or `error`.
    pub outcome: String,
    pub status: u16,
    pub error: String,
    pub access_id: String,
    pub auth_method: String,
    pub identity: String,
    pub client_type: String,
    pub peer: String,
    pub prev_hash: String,
    pub hash: String,
}

/// `audit-list` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditListOutput {
    #[serde(deserialize_with = "null_default")]
    pub records: Vec<AuditRecord>,
    pub next_seq: i64,
}

/// `audit-verify` response.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuditVerifyOutput {
    pub valid: bool,
    pub records: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Deserialize a string sent as a string, a number or a boolean (`null` as
/// empty): the server sends ports and TTLs as strings, other gateways may not.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
    })
}

/// A database target as `target-get` and `target-list` return it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TargetInfo {
    pub target_id: i64,
    pub target_name: String,
    /// `mysql` or `postgres`.
    pub target_type: String,
    pub description: String,
    pub comment: String,
    pub last_version: i64,
    pub creation_date: Option<String>,
    pub modification_date: Option<String>,
    /// The dynamic and rotated secrets that use the target.
    #[serde(deserialize_with = "null_default")]
    pub target_items_assoc: Vec<TargetItemAssoc>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TargetItemAssoc {
    pub item_name: String,
}

/// `target-create-db` / `target-update-db` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TargetIdOutput {
    pub target_id: i64,
}

/// `target-list` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListTargetsOutput {
    #[serde(deserialize_with = "null_default")]
    pub targets: Vec<TargetInfo>,
}

/// `target-get-details` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TargetDetailsOutput {
    pub target: TargetInfo,
    pub value: TargetValue,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TargetValue {
    pub db_target_details: DbTargetDetails,
}

/// A database target's connection. `db_pwd` is sent only to a caller
/// with `read` on the target.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DbTargetDetails {
    pub db_host_name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub db_port: String,
    pub db_user_name: String,
    pub db_pwd: Option<SecretString>,
    pub db_name: String,
    pub ssl_connection_mode: bool,
    /// PEM.
    pub ssl_connection_certificate: String,
    pub connection_type: String,
}

/// `target-delete` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TargetDeleteOutput {
    pub target_name: String,
}

/// A dynamic secret's settings (`DSProducerDetails`). `db_pwd` (an inline
/// admin connection's password) is sent only to a caller with `read`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DynamicSecretDetails {
    pub item_name: String,
    pub item_id: i64,
    /// `mysql` or `postgres`.
    pub producer_type: String,
    /// Inline connection only (empty with a target).
    pub db_host_name: String,
    #[serde(deserialize_with = "lenient_string")]
    pub db_port: String,
    pub db_user_name: String,
    pub db_pwd: Option<SecretString>,
    pub db_name: String,
    pub ssl_connection_mode: bool,
    /// As given, e.g. `60m`.
    #[serde(deserialize_with = "lenient_string")]
    pub user_ttl: String,
    #[serde(deserialize_with = "null_default")]
    pub tags: Vec<String>,
    pub mysql_creation_statements: String,
    pub mysql_revocation_statements: String,
    pub postgres_creation_statements: String,
    pub postgres_revocation_statements: String,
    pub username_template: String,
    pub password_length: i64,
    pub max_leases: i64,
    #[serde(deserialize_with = "null_default")]
    pub item_targets_assoc: Vec<ItemTargetAssoc>,
    /// `ProducerConnected`, or what failed.
    pub producer_status: String,
    pub failure_message: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ItemTargetAssoc {
    pub target_name: String,
}

/// `dynamic-secret-create-*` / `dynamic-secret-update-*` response
/// (`producer_details` under the legacy `gateway-*-producer-*` names).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DynamicSecretDetailsOutput {
    #[serde(alias = "producer_details")]
    pub dynamic_secret_details: DynamicSecretDetails,
}

/// One dynamic or rotated secret in `dynamic-secret-list` / `rotated-secret-list`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProducerInfo {
    pub id: i64,
    pub name: String,
    /// `mysql` or `postgres`.
    #[serde(rename = "type")]
    pub kind: String,
    pub active: bool,
    pub init: bool,
    pub failure_message: String,
}

/// `dynamic-secret-list` / `rotated-secret-list` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ListProducersOutput {
    #[serde(deserialize_with = "null_default")]
    pub producers: Vec<ProducerInfo>,
    #[serde(deserialize_with = "null_default")]
    pub producers_errors: BTreeMap<String, Value>,
}

/// `dynamic-secret-delete` response (`producer_name` under the legacy name).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DynamicSecretDeleteOutput {
    #[serde(alias = "producer_name")]
    pub dynamic_secret_name: String,
}

/// `get-dynamic-secret-value`: a new database user. The server sends every
/// value as a JSON string.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DynamicSecretValue {
    /// The database user name, also the `tmp-creds-id` of its lease.
    pub id: String,
    pub user: String,
    pub password: SecretString,
    #[serde(deserialize_with = "lenient_string")]
    pub ttl_in_minutes: String,
}

/// A live credential of a dynamic secret (`TmpUserData`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TmpCreds {
    /// The database user name (`tmp-creds-id`).
    pub id: String,
    pub access_id: String,
    pub identity: String,
    pub creation_date: Option<String>,
    pub expiration_date: Option<String>,
    pub dynamic_secret_type: String,
    /// Minutes.
    pub custom_ttl: i64,
    pub revocation_attempts: i64,
    pub last_error: Option<String>,
}

/// `dynamic-secret-tmp-creds-get` response: a top-level JSON array.
#[derive(Debug, Clone, Default)]
pub struct TmpCredsList(pub Vec<TmpCreds>);

impl<'de> Deserialize<'de> for TmpCredsList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(TmpCredsList(
            Option::<Vec<TmpCreds>>::deserialize(d)?.unwrap_or_default(),
        ))
    }
}

/// `dynamic-secret-tmp-creds-delete` response: the credentials revoked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RevokedOutput {
    #[serde(deserialize_with = "null_default")]
    pub revoked: Vec<String>,
}

/// `dynamic-secret-tmp-creds-update` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct TmpCredsUpdateOutput {
    pub id: String,
    pub expiration_date: Option<String>,
}

/// One lease (an issued dynamic-secret credential) in `lease-list`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LeaseInfo {
    /// The database user name.
    pub id: String,
    pub item_name: String,
    pub access_id: String,
    pub identity: String,
    /// `live`, `revoked`, … as the server names it.
    pub state: String,
    pub creation_date: Option<String>,
    pub expiration_date: Option<String>,
    pub revocation_date: Option<String>,
    pub tied_to_token: bool,
    pub revocation_attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_date: Option<String>,
}

/// `lease-list` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LeaseListOutput {
    #[serde(deserialize_with = "null_default")]
    pub leases: Vec<LeaseInfo>,
}

/// `get-rotated-secret-value` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RotatedSecretValue {
    pub value: RotatedCreds,
    pub version: i64,
}

/// The value of a rotated secret's version.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RotatedCreds {
    pub username: String,
    pub password: SecretString,
}

/// `create-key` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CreateKeyOutput {
    /// The item ID in hex.
    pub display_id: String,
    pub item_id: i64,
}

/// `create-classic-key` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CreateClassicKeyOutput {
    /// The item ID in hex.
    pub classic_key_id: String,
    pub classic_key_name: String,
    pub classic_key_type: String,
    /// PEM; empty for AES keys.
    pub public_key: String,
}

/// `get-rsa-public` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PublicKeyOutput {
    /// SubjectPublicKeyInfo, PEM.
    pub pem: String,
    /// The same, base64 DER.
    pub raw: String,
    /// An OpenSSH public key line.
    pub ssh: String,
}

/// `encrypt` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EncryptOutput {
    /// The ciphertext, base64.
    pub result: String,
}

/// `decrypt` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct DecryptOutput {
    /// The plaintext (base64 with `output-format base64`).
    pub result: SecretString,
}

/// `rotate-key` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RotateKeyOutput {
    pub name: String,
    pub item_id: i64,
    pub new_item_version: i64,
    pub classic_key_type: String,
}

/// `update-classic-key-certificate` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct KeyVersionOutput {
    pub name: String,
    pub new_item_version: i64,
}

/// `get-ssh-certificate` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SshCertificateOutput {
    /// The OpenSSH certificate line (`…-cert-v01@openssh.com AAAA…`).
    pub data: String,
    pub path: String,
}

/// `get-pki-certificate` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PkiCertificateOutput {
    /// The certificate, PEM.
    pub data: String,
    /// The issuer's chain, PEM.
    pub parent_cert: String,
    /// The serial number, hex.
    pub cert_display_id: String,
    pub cert_item_id: i64,
    pub path: String,
    pub reading_token: String,
}

/// One issued certificate in `cert-list`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct IssuedCertificate {
    pub issuer_name: String,
    /// Hex.
    pub serial_number: String,
    /// `ssh` or `pki`.
    pub kind: String,
    pub subject: String,
    /// DNS names, IP addresses and URIs, or SSH principals.
    #[serde(deserialize_with = "null_default")]
    pub names: Vec<String>,
    pub access_id: String,
    pub identity: String,
    pub issued_at: Option<String>,
    pub expires_at: Option<String>,
    pub revoked: bool,
    pub revoked_at: Option<String>,
    pub revocation_reason: Option<String>,
}

/// `cert-list` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CertListOutput {
    #[serde(deserialize_with = "null_default")]
    pub certificates: Vec<IssuedCertificate>,
}

/// `revoke-certificate` response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RevokeCertificateOutput {
    pub cert_issuer_name: String,
    pub serial_number: String,
    pub revoked: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn auth_output_parses_and_hides_the_token() {
        let out: AuthOutput = serde_json::from_value(serde_json::json!({
            "token": "t-abc",
            "expiration": "2026-11-22 04:16:25 +0000 UTC",
            "creds": {"token": "t-abc", "expiry": 1795000000, "access_id": "p-x", "sub_claims": null}
        }))
        .unwrap();
        assert_eq!(out.token.expose_secret(), "t-abc");
        assert_eq!(out.expires_at(), Some(1795000000));
        assert!(!format!("{out:?}").contains("t-abc"));
    }

    #[test]
    fn expiration_formats() {
        assert_eq!(
            parse_expiration("2026-11-22 04:16:25 +0000 UTC"),
            Some(1795320985)
        );
        assert_eq!(
            parse_expiration("2026-11-22 05:16:25.123456 +0100 CET"),
            Some(1795320985)
        );
        assert_eq!(parse_expiration("2026-11-22T04:16:25Z"), Some(1795320985));
        assert_eq!(parse_expiration(""), None);
        assert_eq!(parse_expiration("soon"), None);
    }

    #[test]
    fn lenient_lists_and_values() {
        let out: ListItemsOutput = serde_json::from_value(
            serde_json::json!({"items": null, "folders": null, "next_page": ""}),
        )
        .unwrap();
        assert!(out.items.is_empty() && out.folders.is_empty());
        let v: SecretValues =
            serde_json::from_value(serde_json::json!({"/a": "x", "/b": {"k": "v"}})).unwrap();
        assert_eq!(v.get("/a").unwrap().expose_secret(), "x");
        assert_eq!(v.get("/b").unwrap().expose_secret(), r#"{"k":"v"}"#);
    }
}
