//! Request bodies of the wire operations (docs/api.md). Each implements
//! [`Operation`]: its wire name, whether the caller's token is sent, and
//! its typed response. Keys are sent kebab-case; unset options are omitted
//! so the server applies its defaults.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::types::*;

/// One wire operation.
pub trait Operation: Serialize {
    /// The path segment, e.g. `get-secret-value`.
    const NAME: &'static str;
    /// Whether the caller's token goes in the body (`false` only for `auth`).
    const AUTHENTICATED: bool = true;
    /// The typed response.
    type Output: DeserializeOwned;
}

macro_rules! operation {
    ($ty:ty, $name:literal, $out:ty) => {
        impl Operation for $ty {
            const NAME: &'static str = $name;
            type Output = $out;
        }
    };
}

fn expose<S: serde::Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose_secret())
}

fn expose_opt<S: serde::Serializer>(
    secret: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(v) => s.serialize_str(v.expose_secret()),
        None => s.serialize_none(),
    }
}

/// `auth`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Auth {
    pub access_id: String,
    /// `access_key` (alias `api_key`), `jwt`, … (passed through as given).
    pub access_type: String,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub access_key: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub jwt: Option<SecretString>,
    /// aws_iam, azure_ad, gcp: the base64 identity document.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub cloud_id: Option<SecretString>,
    /// gcp: the audience the ID token was requested for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcp_audience: Option<String>,
    /// k8s: the pod's service-account token, base64-encoded.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub k8s_service_account_token: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_auth_config_name: Option<String>,
    /// universal_identity: the UID token.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub uid_token: Option<SecretString>,
    /// cert: the client certificate (PEM, base64), intermediates after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_data: Option<String>,
    /// cert: the challenge from [`GetCertChallenge`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_challenge: Option<String>,
    /// cert: the challenge signed with the certificate's key, base64. (The
    /// key itself is never sent: the server refuses `key-data`.)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_cert_challenge: Option<String>,
    /// oidc: the authorization code the provider redirected with.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub code: Option<SecretString>,
    /// oidc: the state from [`OidcAuthUrl`], as the provider returned it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// oidc: the client nonce sent to [`OidcAuthUrl`] (never shown to the
    /// browser or the provider).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub client_nonce: Option<SecretString>,
}

impl Operation for Auth {
    const NAME: &'static str = "auth";
    const AUTHENTICATED: bool = false;
    type Output = AuthOutput;
}

/// `get-cert-challenge`: the first step of a cert login; the server checks
/// the certificate and returns a single-use challenge to sign.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct GetCertChallenge {
    pub access_id: String,
    /// The client certificate (PEM, base64).
    pub cert_data: String,
}

impl Operation for GetCertChallenge {
    const NAME: &'static str = "get-cert-challenge";
    const AUTHENTICATED: bool = false;
    type Output = CertChallengeOutput;
}

/// `oidc-auth-url`: the first step of a person's OIDC login: the
/// provider's authorization URL and the state to expect back.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct OidcAuthUrl {
    pub access_id: String,
    /// Where the provider sends the browser back (an allowed loopback URI).
    pub redirect_uri: String,
    /// A random value the client keeps to itself and sends again with
    /// `auth` (16 to 512 bytes): only this client can finish the login.
    #[serde(serialize_with = "expose")]
    pub client_nonce: SecretString,
}

impl Operation for OidcAuthUrl {
    const NAME: &'static str = "oidc-auth-url";
    const AUTHENTICATED: bool = false;
    type Output = OidcAuthUrlOutput;
}

/// `validate-token`: validates the token the request is sent with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ValidateToken {}
operation!(ValidateToken, "validate-token", ValidateTokenOutput);

/// `revoke-token`: revokes the token the request is sent with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RevokeToken {}
operation!(RevokeToken, "revoke-token", Empty);

/// `get-caller-identity` (Coffer): who the token the request is sent with is.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GetCallerIdentity {}
operation!(GetCallerIdentity, "get-caller-identity", CallerIdentity);

/// `get-secret-value`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct GetSecretValue {
    pub names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}
operation!(GetSecretValue, "get-secret-value", SecretValues);

/// `create-secret`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateSecret {
    pub name: String,
    #[serde(serialize_with = "expose")]
    pub value: SecretString,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_versions: Option<i64>,
    /// `generic` or `password`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<String>,
}
operation!(CreateSecret, "create-secret", NameOutput);

/// `update-secret-val`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UpdateSecretVal {
    pub name: String,
    #[serde(serialize_with = "expose")]
    pub value: SecretString,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_prev_version: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}
operation!(UpdateSecretVal, "update-secret-val", NameOutput);

/// `describe-item`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DescribeItem {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub show_versions: Option<bool>,
}
operation!(DescribeItem, "describe-item", ItemInfo);

/// `list-items`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ListItems {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pagination_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimal_view: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_folder: Option<bool>,
    /// Only the items pending deletion (Coffer's own filter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_deletion: Option<bool>,
}
operation!(ListItems, "list-items", ListItemsOutput);

/// `delete-item`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeleteItem {
    pub name: String,
    /// A version (0 = the latest), or `-1`/absent for the whole item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// Days the item stays pending deletion (server default 7; 0 = now).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_in_days: Option<i64>,
    /// Delete at once instead of pending deletion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delete_immediately: Option<bool>,
}
operation!(DeleteItem, "delete-item", DeleteItemOutput);

/// `restore-item` (Coffer's own): cancel a pending deletion.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RestoreItem {
    pub name: String,
}
operation!(RestoreItem, "restore-item", RestoreItemOutput);

/// `delete-items`: every item under a folder (pending deletion, all or
/// nothing).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeleteItems {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub item: Vec<String>,
}
operation!(DeleteItems, "delete-items", DeleteItemsOutput);

/// `update-item`: rename, description, tags, max versions.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UpdateItem {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_tag: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rm_tag: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_versions: Option<i64>,
}
operation!(UpdateItem, "update-item", UpdateItemOutput);

/// `get-tags`: an item's tags.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct GetTags {
    pub name: String,
}
operation!(GetTags, "get-tags", Vec<String>);

/// Options every auth-method type takes.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuthMethodCommon {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_ips: Vec<String>,
    /// Token TTL in minutes, 0 = server default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_ttl: Option<i64>,
    /// Server default: on for JWT-type methods, off for API keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_sub_claims: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Coffer: dynamic-secret credentials this method's tokens obtain are
    /// revoked with the token.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lease_tied_to_token: bool,
}

/// `create-auth-method` (API key).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateAuthMethod {
    pub name: String,
    /// Unix seconds, 0 = never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_expires: Option<i64>,
    #[serde(flatten)]
    pub common: AuthMethodCommon,
}
operation!(
    CreateAuthMethod,
    "create-auth-method",
    CreateAuthMethodOutput
);

/// `create-auth-method-oauth2`: a JWT/OIDC auth method (CI job identity).
/// Exactly one of `jwks_uri` and `jwks_json_data` (base64 JWKS).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateAuthMethodOauth2 {
    pub name: String,
    /// The claim that names the caller (e.g. `user_login`, `sub`, `repository`).
    pub unique_identifier: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_json_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_client_ids: Vec<String>,
    #[serde(flatten)]
    pub common: AuthMethodCommon,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refuse_replay: Option<bool>,
    /// `event_name` values refused; `["none"]` refuses none. Unset: the
    /// server default (`pull_request_target`, `workflow_run`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub refuse_events: Vec<String>,
}
operation!(
    CreateAuthMethodOauth2,
    "create-auth-method-oauth2",
    CreateAuthMethodOutput
);

/// `create-auth-method-aws-iam`: an AWS IAM auth method (logins replay a
/// signed STS GetCallerIdentity request, the `cloud-id`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateAuthMethodAwsIam {
    pub name: String,
    /// 12-digit AWS account IDs allowed to log in (required).
    pub bound_aws_account_id: Vec<String>,
    /// STS endpoint the signed requests are replayed to (server default
    /// `https://sts.amazonaws.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sts_url: Option<String>,
    /// ARN patterns (`*` wildcards).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_arn: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_role_name: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_role_id: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_resource_id: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_user_name: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_user_id: Vec<String>,
    /// Unix seconds, 0 = never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_expires: Option<i64>,
    #[serde(flatten)]
    pub common: AuthMethodCommon,
}
operation!(
    CreateAuthMethodAwsIam,
    "create-auth-method-aws-iam",
    CreateAuthMethodOutput
);

/// `create-auth-method-k8s`: Kubernetes service-account tokens, verified
/// with the cluster issuer's JWKS or the TokenReview API.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateAuthMethodK8s {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_namespaces: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_sa_names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_pod_names: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_json_data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k8s_ca_cert: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub token_reviewer_jwt: Option<SecretString>,
    #[serde(flatten)]
    pub common: AuthMethodCommon,
}
operation!(
    CreateAuthMethodK8s,
    "create-auth-method-k8s",
    CreateAuthMethodOutput
);

/// `create-auth-method-azure-ad`: Entra ID (Azure AD) managed identities.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateAuthMethodAzureAd {
    pub name: String,
    pub bound_tenant_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_identifier: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_spid: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_group_id: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_sub_id: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_rg_id: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_providers: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_resource_types: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_resource_names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_resource_id: Vec<String>,
    #[serde(flatten)]
    pub common: AuthMethodCommon,
}
operation!(
    CreateAuthMethodAzureAd,
    "create-auth-method-azure-ad",
    CreateAuthMethodOutput
);

/// `create-auth-method-gcp`: Google-signed ID tokens (service accounts or
/// Compute Engine instances).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateAuthMethodGcp {
    pub name: String,
    /// `iam` or `gce`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_identifier: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_service_accounts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_projects: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_zones: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_regions: Vec<String>,
    #[serde(flatten)]
    pub common: AuthMethodCommon,
}
operation!(
    CreateAuthMethodGcp,
    "create-auth-method-gcp",
    CreateAuthMethodOutput
);

/// `explain-access` (Coffer): how a login proof would fare against an auth
/// method's role associations, and the capabilities on a path.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExplainAccess {
    pub access_id: String,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub jwt: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub cloud_id: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gcp_audience: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub k8s_service_account_token: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub uid_token: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_type: Option<String>,
}
operation!(ExplainAccess, "explain-access", ExplainAccessOutput);

/// `create-auth-method-universal-identity`: machines hold Coffer-issued
/// UID tokens they rotate. TTLs are in minutes.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateAuthMethodUniversalIdentity {
    pub name: String,
    /// Lifetime of a root token and of each rotation (server default 60).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<i64>,
    /// Root tokens cannot be rotated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny_rotate: Option<bool>,
    /// Root tokens cannot create children.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deny_inheritance: Option<bool>,
    /// Longest child TTL (server default 43200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_ttl_limit: Option<i64>,
    /// Deepest token level, root = 1 (server default 200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree_length: Option<i64>,
    /// Unix seconds, 0 = never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_expires: Option<i64>,
    #[serde(flatten)]
    pub common: AuthMethodCommon,
}
operation!(
    CreateAuthMethodUniversalIdentity,
    "create-auth-method-universal-identity",
    CreateAuthMethodOutput
);

/// `create-auth-method-cert`: client certificates signed by a CA.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateAuthMethodCert {
    pub name: String,
    /// The trusted CA certificate(s), PEM, base64-encoded.
    pub certificate_data: String,
    /// The certificate field naming the caller: `common_name` (server
    /// default), `organizational_unit`, `dns_sans`, `email_sans`,
    /// `uri_sans` or `serial_number`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_identifier: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_common_names: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_dns_sans: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_email_sans: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_uri_sans: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_organizational_units: Vec<String>,
    /// `oid:value-glob`, every one required.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub bound_extensions: Vec<String>,
    /// Serial numbers (hex) refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub revoked_cert_ids: Vec<String>,
    /// Unix seconds, 0 = never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_expires: Option<i64>,
    #[serde(flatten)]
    pub common: AuthMethodCommon,
}
operation!(
    CreateAuthMethodCert,
    "create-auth-method-cert",
    CreateAuthMethodOutput
);

/// `create-auth-method-oidc`: people log in through an OpenID Provider
/// (authorization code with PKCE).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateAuthMethodOidc {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    /// Stored sealed; never shown again.
    #[serde(serialize_with = "expose")]
    pub client_secret: SecretString,
    /// The `aud` of the ID tokens (server default: the client ID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The claim naming the person (server default `sub`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unique_identifier: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required_scopes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_scopes_prefix: Option<String>,
    /// Redirect URIs logins may use (loopback for the CLI).
    #[serde(rename = "allowed-redirect-uri", skip_serializing_if = "Vec::is_empty")]
    pub allowed_redirect_uris: Vec<String>,
    /// Unix seconds, 0 = never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_expires: Option<i64>,
    #[serde(flatten)]
    pub common: AuthMethodCommon,
}
operation!(
    CreateAuthMethodOidc,
    "create-auth-method-oidc",
    CreateAuthMethodOutput
);

/// `auth-method-update-oidc`: replaces the OIDC settings (all of them,
/// client secret included); `new_name` renames.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UpdateAuthMethodOidc {
    #[serde(flatten)]
    pub settings: CreateAuthMethodOidc,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
}
operation!(UpdateAuthMethodOidc, "auth-method-update-oidc", NameOutput);

/// `auth-method-update-cert`: replaces the certificate settings (all of
/// them, as for create); `new_name` renames (the access ID stays).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UpdateAuthMethodCert {
    #[serde(flatten)]
    pub settings: CreateAuthMethodCert,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
}
operation!(UpdateAuthMethodCert, "auth-method-update-cert", NameOutput);

/// A new or rotated UID token. `token` is the secret (shown once).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct UidTokenOutput {
    pub token: SecretString,
    /// The token's stable ID (`uid-…`), for revocation and admin children.
    pub token_id: String,
    /// Go `time.String()` form.
    pub expiration: String,
}

/// `uid-generate-token`: an admin makes a root token for a UID method.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UidGenerateToken {
    pub auth_method_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}
operation!(UidGenerateToken, "uid-generate-token", UidTokenOutput);

/// `uid-rotate-token`: authenticated by the UID token it rotates (no
/// session token is sent). The old secret stops working.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UidRotateToken {
    #[serde(serialize_with = "expose")]
    pub uid_token: SecretString,
}

impl Operation for UidRotateToken {
    const NAME: &'static str = "uid-rotate-token";
    const AUTHENTICATED: bool = false;
    type Output = UidTokenOutput;
}

/// `uid-create-child-token`: sent with a UID token (its child), or with a
/// session token plus `auth_method_name` and `uid_token_id` (admin).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UidCreateChildToken {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_method_name: Option<String>,
    /// The parent's ID (admin form).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid_token_id: Option<String>,
    /// Minutes; default and maximum: the parent's TTL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_deny_rotate: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child_deny_inheritance: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}
operation!(
    UidCreateChildToken,
    "uid-create-child-token",
    UidTokenOutput
);

/// `uid-revoke-token`: by the token's holder or an ancestor's (UID token),
/// or an admin (session token + `auth_method_name`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UidRevokeToken {
    /// The token's ID (`uid-…`).
    pub revoke_token: String,
    /// `revokeSelf` or `revokeAll` (the token and every token below it).
    pub revoke_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_method_name: Option<String>,
}
operation!(UidRevokeToken, "uid-revoke-token", UidRevokeOutput);

/// `uid-revoke-token` response.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct UidRevokeOutput {
    pub token_id: String,
    pub revoke_type: String,
    /// IDs newly revoked.
    pub revoked: Vec<String>,
}

/// `uid-list-children`: the caller's UID token and everything below it,
/// or (admin, session token + `auth_method_name`) every tree of the method.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UidListChildren {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_method_name: Option<String>,
}
operation!(UidListChildren, "uid-list-children", UidListChildrenOutput);

/// `uid-list-children` response.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct UidListChildrenOutput {
    pub max_depth: i64,
    pub number_of_tokens: i64,
    pub root: UidTokenDetails,
}

/// One UID token in a tree (never its secret).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct UidTokenDetails {
    pub id: String,
    pub comment: String,
    pub depth: i64,
    /// Minutes.
    pub ttl: i64,
    pub deny_rotate: bool,
    pub deny_inheritance: bool,
    pub revoked: bool,
    pub expired_date: Option<String>,
    pub last_rotate: Option<String>,
    /// By token ID.
    pub children: BTreeMap<String, UidTokenDetails>,
}

/// A request that names one object (`{name}`).
macro_rules! by_name {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $out:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, Serialize)]
        pub struct $ty {
            pub name: String,
        }
        operation!($ty, $name, $out);
    };
}

by_name!(
    /// `get-auth-method`.
    GetAuthMethod, "get-auth-method", AuthMethodInfo
);
by_name!(
    /// `delete-auth-method`.
    DeleteAuthMethod, "delete-auth-method", NameOutput
);
by_name!(
    /// `get-role`.
    GetRole, "get-role", RoleInfo
);
by_name!(
    /// `delete-role`.
    DeleteRole, "delete-role", Empty
);

/// `list-auth-methods`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListAuthMethods {}
operation!(ListAuthMethods, "list-auth-methods", ListAuthMethodsOutput);

/// `create-role`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateRole {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `none`, `own` or `all`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_access: Option<String>,
}
operation!(CreateRole, "create-role", Empty);

/// `list-roles`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ListRoles {}
operation!(ListRoles, "list-roles", ListRolesOutput);

/// `set-role-rule`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SetRoleRule {
    pub role_name: String,
    pub path: String,
    pub capability: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_type: Option<String>,
}
operation!(SetRoleRule, "set-role-rule", Empty);

/// `delete-role-rule`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeleteRoleRule {
    pub role_name: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule_type: Option<String>,
}
operation!(DeleteRoleRule, "delete-role-rule", Empty);

/// `assoc-role-am`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AssocRoleAm {
    pub role_name: String,
    pub am_name: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sub_claims: SubClaims,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<bool>,
}
operation!(AssocRoleAm, "assoc-role-am", AssocOutput);

/// `delete-assoc`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeleteAssoc {
    pub assoc_id: String,
}
operation!(DeleteAssoc, "delete-assoc", Empty);

/// `update-assoc`: replace an association's sub-claims and case flag
/// (the server's default for an absent flag is true).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UpdateAssoc {
    pub assoc_id: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sub_claims: SubClaims,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub case_sensitive: Option<bool>,
}
operation!(UpdateAssoc, "update-assoc", Empty);

/// `update-role`: rename and/or change the description and audit access
/// (unset options stay).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UpdateRole {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `none`, `own` or `all`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_access: Option<String>,
}
operation!(UpdateRole, "update-role", UpdateRoleOutput);

/// `update-auth-method`: the options every auth method type has (unset
/// ones stay); `new_name` renames (the access ID stays).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UpdateAuthMethod {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// Unix seconds, 0 = never.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_expires: Option<i64>,
    /// `Some(vec![])` removes every bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bound_ips: Option<Vec<String>>,
    /// Token TTL in minutes, 0 = server default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_sub_claims: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_tied_to_token: Option<bool>,
}
operation!(UpdateAuthMethod, "update-auth-method", NameOutput);

by_name!(
    /// `reset-access-key`: a new access key for an API-key auth method
    /// (the old one stops working).
    ResetAccessKey, "reset-access-key", ResetAccessKeyOutput
);

/// `audit-list`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AuditList {
    /// RFC 3339 or Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<i64>,
}
operation!(AuditList, "audit-list", AuditListOutput);

/// `audit-verify`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditVerify {}
operation!(AuditVerify, "audit-verify", AuditVerifyOutput);

/// An operation whose body is another operation's: `$ty($body)` sends
/// `$body` as is (serde `transparent`) under its own name.
macro_rules! same_body {
    ($(#[$doc:meta])* $ty:ident($body:ty), $name:literal, $out:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, Serialize)]
        #[serde(transparent)]
        pub struct $ty(pub $body);
        operation!($ty, $name, $out);
    };
}

/// The body of `target-create-db` and `target-update-db`: a MySQL/MariaDB
/// or PostgreSQL admin connection. The server connects and checks the user
/// may create users before storing anything.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DbTarget {
    pub name: String,
    /// `mysql` (also MariaDB) or `postgres`; required at creation, and
    /// cannot change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Server default: 3306 or 5432.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Absent on update: the password is kept.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub pwd: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl: Option<bool>,
    /// CA certificate(s) of the server: PEM or its base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_certificate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

same_body!(
    /// `target-create-db` (also `create-db-target`).
    TargetCreateDb(DbTarget), "target-create-db", TargetIdOutput
);
same_body!(
    /// `target-update-db`: fields not given keep their values.
    TargetUpdateDb(DbTarget), "target-update-db", TargetIdOutput
);

/// `target-list`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TargetList {
    /// Substring of the name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// `mysql`, `postgres`.
    #[serde(rename = "type", skip_serializing_if = "Vec::is_empty")]
    pub types: Vec<String>,
}
operation!(TargetList, "target-list", ListTargetsOutput);

/// `target-delete`: refused while dynamic or rotated secrets use the
/// target, unless `force_deletion`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TargetDelete {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force_deletion: Option<bool>,
}
operation!(TargetDelete, "target-delete", TargetDeleteOutput);

/// What dynamic secrets of every database type take.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DynamicSecretCommon {
    /// A stored target (instead of an inline connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    /// Inline connection over TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_certificate: Option<String>,
    /// `15s`, `60m`, `2h`, `1d`, `1h30m`; a bare number is minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_ttl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_length: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_capital_letters: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_lower_letters: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_numbers: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_special_characters: Option<bool>,
    /// Literal text with `{{random}}` (required), `{{item}}`, `{{time}}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_username_template: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_dry_run: Option<bool>,
    /// Live credentials at most (server default 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_leases: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// The body of `dynamic-secret-create-mysql` / `-update-mysql`: a target,
/// or an inline admin connection (`mysql-*`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DynamicSecretMysql {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mysql_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mysql_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mysql_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub mysql_password: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mysql_dbname: Option<String>,
    /// `;`-separated, with `{{name}}`, `{{password}}`, `{{expiration}}`
    /// (the wire name is spelled so).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mysql_screation_statements: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mysql_revocation_statements: Option<String>,
    #[serde(flatten)]
    pub common: DynamicSecretCommon,
}

/// The body of `dynamic-secret-create-postgresql` / `-update-postgresql`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DynamicSecretPostgresql {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgresql_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgresql_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgresql_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub postgresql_password: Option<SecretString>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgresql_db_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation_statements: Option<String>,
    /// Singular on the wire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revocation_statement: Option<String>,
    #[serde(flatten)]
    pub common: DynamicSecretCommon,
}

same_body!(
    /// `dynamic-secret-create-mysql` (also `gateway-create-producer-mysql`).
    DynamicSecretCreateMysql(DynamicSecretMysql),
    "dynamic-secret-create-mysql",
    DynamicSecretDetailsOutput
);
same_body!(
    /// `dynamic-secret-update-mysql`: fields given replace the old ones.
    DynamicSecretUpdateMysql(DynamicSecretMysql),
    "dynamic-secret-update-mysql",
    DynamicSecretDetailsOutput
);
same_body!(
    /// `dynamic-secret-create-postgresql` (also `gateway-create-producer-postgresql`).
    DynamicSecretCreatePostgresql(DynamicSecretPostgresql),
    "dynamic-secret-create-postgresql",
    DynamicSecretDetailsOutput
);
same_body!(
    /// `dynamic-secret-update-postgresql`: fields given replace the old ones.
    DynamicSecretUpdatePostgresql(DynamicSecretPostgresql),
    "dynamic-secret-update-postgresql",
    DynamicSecretDetailsOutput
);

/// `dynamic-secret-list`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DynamicSecretList {}
operation!(
    DynamicSecretList,
    "dynamic-secret-list",
    ListProducersOutput
);

/// `get-dynamic-secret-value`: creates a database user (a lease).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct GetDynamicSecretValue {
    pub name: String,
    /// Seconds, 0-300.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Must be the dynamic secret's own target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}
operation!(
    GetDynamicSecretValue,
    "get-dynamic-secret-value",
    DynamicSecretValue
);

/// `dynamic-secret-tmp-creds-delete`: revoke one credential
/// (`tmp_creds_id`) or all of them (`revoke_all`) now.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DynamicSecretTmpCredsDelete {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmp_creds_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoke_all: Option<bool>,
}
operation!(
    DynamicSecretTmpCredsDelete,
    "dynamic-secret-tmp-creds-delete",
    RevokedOutput
);

/// `dynamic-secret-tmp-creds-update`: the credential expires `new_ttl_min`
/// minutes from now (at most the dynamic secret's `user-ttl`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DynamicSecretTmpCredsUpdate {
    pub name: String,
    pub tmp_creds_id: String,
    pub new_ttl_min: i64,
}
operation!(
    DynamicSecretTmpCredsUpdate,
    "dynamic-secret-tmp-creds-update",
    TmpCredsUpdateOutput
);

/// `lease-list` (Coffer): leases of the dynamic secrets the caller may read.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct LeaseList {
    /// One dynamic secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only leases whose revocation failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing: Option<bool>,
    /// Include revoked leases.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub all: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}
operation!(LeaseList, "lease-list", LeaseListOutput);

/// The body of `rotated-secret-create-mysql` / `-postgresql`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RotatedSecretCreate {
    pub name: String,
    pub target_name: String,
    /// `target` (the target's own user) or `password` (`rotated_username`'s).
    pub rotator_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotated_username: Option<String>,
    /// The user's current password (`password` rotator).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub rotated_password: Option<SecretString>,
    /// `use-user-creds` (default) or `use-target-creds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_credentials: Option<String>,
    #[serde(flatten)]
    pub settings: RotationSettings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_dry_run: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// Schedule and password policy of a rotated secret.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RotationSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_rotate: Option<bool>,
    /// Days, 1-365.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_interval: Option<i64>,
    /// UTC, 0-23.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rotation_hour: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_length: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_capital_letters: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_lower_letters: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_numbers: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_special_characters: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_versions: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

same_body!(
    /// `rotated-secret-create-mysql`.
    RotatedSecretCreateMysql(RotatedSecretCreate),
    "rotated-secret-create-mysql",
    NameOutput
);
same_body!(
    /// `rotated-secret-create-postgresql`.
    RotatedSecretCreatePostgresql(RotatedSecretCreate),
    "rotated-secret-create-postgresql",
    NameOutput
);

/// The body of `rotated-secret-update-*`: schedule, password policy,
/// description and tags (the user and its password do not change here).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RotatedSecretUpdate {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authentication_credentials: Option<String>,
    #[serde(flatten)]
    pub settings: RotationSettings,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_tag: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rm_tag: Vec<String>,
}

same_body!(
    /// `rotated-secret-update-mysql`.
    RotatedSecretUpdateMysql(RotatedSecretUpdate),
    "rotated-secret-update-mysql",
    NameOutput
);
same_body!(
    /// `rotated-secret-update-postgresql`.
    RotatedSecretUpdatePostgresql(RotatedSecretUpdate),
    "rotated-secret-update-postgresql",
    NameOutput
);

/// `get-rotated-secret-value`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct GetRotatedSecretValue {
    /// One name (a string on the wire, despite the plural).
    pub names: String,
    /// Default: the current version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}
operation!(
    GetRotatedSecretValue,
    "get-rotated-secret-value",
    RotatedSecretValue
);

/// `rotated-secret-list`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RotatedSecretList {}
operation!(
    RotatedSecretList,
    "rotated-secret-list",
    ListProducersOutput
);

by_name!(
    /// `target-get` (also `get-target`): never the password.
    TargetGet, "target-get", TargetInfo
);
by_name!(
    /// `target-get-details`: the connection, with the password for a
    /// caller with `read`.
    TargetGetDetails, "target-get-details", TargetDetailsOutput
);
by_name!(
    /// `dynamic-secret-get` (also `gateway-get-producer`).
    DynamicSecretGet, "dynamic-secret-get", DynamicSecretDetails
);
by_name!(
    /// `dynamic-secret-delete`: revokes every live credential first.
    DynamicSecretDelete, "dynamic-secret-delete", DynamicSecretDeleteOutput
);
by_name!(
    /// `dynamic-secret-tmp-creds-get`: the live credentials.
    DynamicSecretTmpCredsGet, "dynamic-secret-tmp-creds-get", TmpCredsList
);
by_name!(
    /// `gateway-rotate-secret`: rotate a rotated secret now.
    GatewayRotateSecret, "gateway-rotate-secret", NameOutput
);
by_name!(
    /// `rotated-secret-delete`.
    RotatedSecretDelete, "rotated-secret-delete", DeleteItemOutput
);

// ---- keys ----

/// The self-signed certificate options of `create-key` and
/// `create-classic-key` (a signing key that becomes a root CA).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SelfSignedCertificate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_self_signed_certificate: Option<bool>,
    /// Days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_ttl: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_common_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_organization: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_locality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_province: Option<String>,
}

/// `create-key`: a key generated by the server, whose private part never
/// leaves it.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateKey {
    pub name: String,
    /// AES128GCM, AES256GCM, AES128SIV, AES256SIV, RSA2048, RSA3072,
    /// RSA4096, EC256, EC384 or Ed25519.
    pub alg: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tag: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(flatten)]
    pub certificate: SelfSignedCertificate,
}
operation!(CreateKey, "create-key", CreateKeyOutput);

/// `create-classic-key`: a generated key, or an imported one (`key_data`).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CreateClassicKey {
    pub name: String,
    pub alg: String,
    /// Base64 of a raw AES key or of a PKCS#8 DER private key, or PEM text.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "expose_opt")]
    pub key_data: Option<SecretString>,
    /// The key's certificate (chain, leaf first): PEM or base64 of PEM.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file_data: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(flatten)]
    pub certificate: SelfSignedCertificate,
}
operation!(
    CreateClassicKey,
    "create-classic-key",
    CreateClassicKeyOutput
);

by_name!(
    /// `get-rsa-public`: the public part of a signing key (RSA, EC, Ed25519).
    GetRsaPublic, "get-rsa-public", PublicKeyOutput
);
by_name!(
    /// `rotate-key`: a new version of the key (old versions still decrypt).
    RotateKey, "rotate-key", RotateKeyOutput
);

/// `encrypt`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Encrypt {
    pub key_name: String,
    #[serde(serialize_with = "expose")]
    pub plaintext: SecretString,
    /// Bound to the ciphertext: decrypt needs the same map.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub encryption_context: BTreeMap<String, String>,
    /// `base64`: the plaintext is base64 (binary data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_format: Option<String>,
    /// A key version (default: the latest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}
operation!(Encrypt, "encrypt", EncryptOutput);

/// `decrypt`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Decrypt {
    pub key_name: String,
    /// Base64, as `encrypt` returned it.
    pub ciphertext: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub encryption_context: BTreeMap<String, String>,
    /// `base64`: return the plaintext base64-encoded (binary data).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_format: Option<String>,
}
operation!(Decrypt, "decrypt", DecryptOutput);

/// `update-classic-key-certificate`: attach a certificate (chain, leaf
/// first) to a key; adds a version with the same key.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UpdateClassicKeyCertificate {
    pub name: String,
    /// PEM, or base64 of PEM.
    pub cert_file_data: String,
}
operation!(
    UpdateClassicKeyCertificate,
    "update-classic-key-certificate",
    KeyVersionOutput
);

// ---- certificate issuers ----

/// The body of `create-ssh-cert-issuer` and `update-ssh-cert-issuer`.
/// On update, options not given keep their values.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SshCertIssuer {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_key_name: Option<String>,
    /// Comma-separated names callers may ask for (`*`: any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_users: Option<String>,
    /// Comma-separated principals put in every certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principals: Option<String>,
    /// Longest lifetime: seconds, or e.g. `15m`, `24h`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Exactly these extensions (default: ssh-keygen's for user certificates).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical_options: Option<BTreeMap<String, String>>,
    /// `user` (default) or `host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_type: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tag: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}
same_body!(
    /// `create-ssh-cert-issuer`.
    CreateSshCertIssuer(SshCertIssuer), "create-ssh-cert-issuer", NameOutput
);
same_body!(
    /// `update-ssh-cert-issuer`.
    UpdateSshCertIssuer(SshCertIssuer), "update-ssh-cert-issuer", NameOutput
);

/// `get-ssh-certificate`: certify an OpenSSH public key.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct GetSshCertificate {
    pub cert_issuer_name: String,
    /// Comma-separated user names (principals) asked for.
    pub cert_username: String,
    /// The OpenSSH public key line.
    pub public_key_data: String,
    /// Seconds, or e.g. `15m` (at most the issuer's ttl).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}
operation!(
    GetSshCertificate,
    "get-ssh-certificate",
    SshCertificateOutput
);

/// The body of `create-pki-cert-issuer` and `update-pki-cert-issuer`.
/// Lists are comma-separated. On update, options not given keep their
/// values.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PkiCertIssuer {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer_key_name: Option<String>,
    /// Longest lifetime: seconds, or e.g. `24h`, `30d`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_domains: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_subdomains: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_any_name: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disable_wildcards: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_enforce_hostnames: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_uri_sans: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_ip_sans: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_flag: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_flag: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_signing_flag: Option<bool>,
    /// E.g. `DigitalSignature,KeyEncipherment`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_usage: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical_key_usage: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizations: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organizational_units: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub province: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub street_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_ca: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_path_len: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_require_cn: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tag: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}
same_body!(
    /// `create-pki-cert-issuer`.
    CreatePkiCertIssuer(PkiCertIssuer), "create-pki-cert-issuer", NameOutput
);
same_body!(
    /// `update-pki-cert-issuer`.
    UpdatePkiCertIssuer(PkiCertIssuer), "update-pki-cert-issuer", NameOutput
);

/// `get-pki-certificate`: a certificate for a CSR or a public key (the
/// private key never leaves the caller).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct GetPkiCertificate {
    pub cert_issuer_name: String,
    /// Base64 of a PEM or DER CSR.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csr_data_base64: Option<String>,
    /// Base64 of a PEM or DER public key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_data_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// Comma-separated DNS names and IP addresses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_names: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri_sans: Option<String>,
    /// Seconds, or e.g. `24h` (at most the issuer's ttl).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Comma-separated, e.g. `serverauth,clientauth`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_key_usage: Option<String>,
}
operation!(
    GetPkiCertificate,
    "get-pki-certificate",
    PkiCertificateOutput
);

/// `cert-list` (Coffer): the certificates issued by the issuers the caller
/// may list.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CertList {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_issuer_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked_only: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_expired: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
}
operation!(CertList, "cert-list", CertListOutput);

/// `revoke-certificate` (Coffer): the certificate appears in the issuer's
/// CRL from then on.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RevokeCertificate {
    pub cert_issuer_name: String,
    /// Hex, as `cert-list` or `cert_display_id` shows it.
    pub serial_number: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
operation!(
    RevokeCertificate,
    "revoke-certificate",
    RevokeCertificateOutput
);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_use_wire_keys_and_omit_unset_options() {
        let v = serde_json::to_value(CreateSecret {
            name: "/a".into(),
            value: SecretString::from("s3cret"),
            tags: vec!["x".into()],
            max_versions: Some(3),
            secret_type: Some("generic".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"name":"/a","value":"s3cret","tags":["x"],"max-versions":3,"type":"generic"})
        );
        let v = serde_json::to_value(Auth {
            access_id: "p-1".into(),
            access_type: "access_key".into(),
            access_key: Some(SecretString::from("k")),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"access-id":"p-1","access-type":"access_key","access-key":"k"})
        );
        let v = serde_json::to_value(AssocRoleAm {
            role_name: "r".into(),
            am_name: "/am".into(),
            sub_claims: [("repo".to_string(), vec!["a".to_string(), "b".to_string()])].into(),
            case_sensitive: Some(false),
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"role-name":"r","am-name":"/am","sub-claims":{"repo":["a","b"]},"case-sensitive":false})
        );
        assert_eq!(
            serde_json::to_value(UpdateAssoc {
                assoc_id: "rac-1".into(),
                sub_claims: [("env".to_string(), vec!["prod".to_string()])].into(),
                case_sensitive: None,
            })
            .unwrap(),
            json!({"assoc-id":"rac-1","sub-claims":{"env":["prod"]}})
        );
        assert_eq!(
            serde_json::to_value(UpdateAuthMethod {
                name: "/am".into(),
                new_name: Some("/am2".into()),
                bound_ips: Some(vec![]),
                jwt_ttl: Some(5),
                ..Default::default()
            })
            .unwrap(),
            json!({"name":"/am","new-name":"/am2","bound-ips":[],"jwt-ttl":5}),
            "unset options are not sent, so they stay"
        );
        assert_eq!(
            serde_json::to_value(UpdateRole {
                name: "/r".into(),
                audit_access: Some("own".into()),
                ..Default::default()
            })
            .unwrap(),
            json!({"name":"/r","audit-access":"own"})
        );
        assert_eq!(
            serde_json::to_value(ListItems::default()).unwrap(),
            json!({})
        );
        let v = serde_json::to_value(CreateAuthMethodOauth2 {
            name: "/ci".into(),
            unique_identifier: "user_login".into(),
            jwks_uri: Some("https://gitlab.example.com/oauth/discovery/keys".into()),
            common: AuthMethodCommon {
                force_sub_claims: Some(true),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"name":"/ci","unique-identifier":"user_login","jwks-uri":"https://gitlab.example.com/oauth/discovery/keys","force-sub-claims":true})
        );
        let v = serde_json::to_value(CreateAuthMethodAwsIam {
            name: "/aws".into(),
            bound_aws_account_id: vec!["123456789012".into()],
            bound_role_name: vec!["ci-deployer".into()],
            common: AuthMethodCommon {
                jwt_ttl: Some(15),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"name":"/aws","bound-aws-account-id":["123456789012"],"bound-role-name":["ci-deployer"],"jwt-ttl":15})
        );
        let v = serde_json::to_value(Auth {
            access_id: "p-1".into(),
            access_type: "jwt".into(),
            jwt: Some(SecretString::from("eyJ.x.y")),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"access-id":"p-1","access-type":"jwt","jwt":"eyJ.x.y"})
        );
    }

    #[test]
    fn debug_of_requests_hides_secrets() {
        let req = UpdateSecretVal {
            name: "/a".into(),
            value: SecretString::from("hunter2"),
            ..Default::default()
        };
        assert!(!format!("{req:?}").contains("hunter2"));
    }
}

#[cfg(test)]
mod uid_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uid_bodies_and_outputs() {
        let v = serde_json::to_value(CreateAuthMethodUniversalIdentity {
            name: "/m".into(),
            ttl: Some(30),
            deny_rotate: Some(true),
            common: AuthMethodCommon {
                bound_ips: vec!["10.0.0.0/8".into()],
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"name":"/m","ttl":30,"deny-rotate":true,"bound-ips":["10.0.0.0/8"]})
        );
        // Rotation carries its own credential, not the session token.
        const { assert!(!UidRotateToken::AUTHENTICATED) };
        let r = UidRotateToken {
            uid_token: SecretString::from("u-abc"),
        };
        assert!(!format!("{r:?}").contains("u-abc"));
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"uid-token":"u-abc"})
        );
        let v = serde_json::to_value(UidRevokeToken {
            revoke_token: "uid-1".into(),
            revoke_type: "revokeAll".into(),
            auth_method_name: None,
        })
        .unwrap();
        assert_eq!(v, json!({"revoke-token":"uid-1","revoke-type":"revokeAll"}));
        let out: UidListChildrenOutput = serde_json::from_value(json!({
            "max_depth": 2, "number_of_tokens": 2,
            "root": {"id": "uid-r", "depth": 1, "ttl": 60, "children": {
                "uid-c": {"id": "uid-c", "depth": 2, "revoked": true, "children": {}}
            }}
        }))
        .unwrap();
        assert_eq!(out.root.children["uid-c"].depth, 2);
        assert!(out.root.children["uid-c"].revoked);
    }
}

#[cfg(test)]
mod db_tests {
    use super::*;
    use secrecy::ExposeSecret;
    use serde_json::json;

    #[test]
    fn database_bodies_and_outputs() {
        let target = DbTarget {
            name: "/t".into(),
            db_type: Some("mysql".into()),
            host: Some("127.0.0.1".into()),
            user_name: Some("root".into()),
            pwd: Some(SecretString::from("hunter22")),
            ssl: Some(false),
            ..Default::default()
        };
        assert!(!format!("{target:?}").contains("hunter22"));
        // Create and update send the same body under their own names.
        let create = serde_json::to_value(TargetCreateDb(target.clone())).unwrap();
        assert_eq!(
            create,
            json!({"name":"/t","db-type":"mysql","host":"127.0.0.1","user-name":"root","pwd":"hunter22","ssl":false})
        );
        assert_eq!(
            serde_json::to_value(TargetUpdateDb(target)).unwrap(),
            create
        );
        assert_eq!(TargetUpdateDb::NAME, "target-update-db");
        let v = serde_json::to_value(DynamicSecretUpdatePostgresql(DynamicSecretPostgresql {
            name: "/d".into(),
            postgresql_password: Some(SecretString::from("pw")),
            revocation_statement: Some("DROP ROLE \"{{name}}\"".into()),
            common: DynamicSecretCommon {
                user_ttl: Some("1h30m".into()),
                tags: vec!["a".into()],
                ..Default::default()
            },
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(
            v,
            json!({"name":"/d","postgresql-password":"pw","revocation-statement":"DROP ROLE \"{{name}}\"","user-ttl":"1h30m","tags":["a"]})
        );
        assert_eq!(
            serde_json::to_value(GetRotatedSecretValue {
                names: "/r".into(),
                version: None
            })
            .unwrap(),
            json!({"names":"/r"})
        );

        let value: DynamicSecretValue = serde_json::from_value(
            json!({"id":"tmp_x","user":"tmp_x","password":"p4ss-word","ttl_in_minutes":1}),
        )
        .unwrap();
        assert_eq!(value.ttl_in_minutes, "1");
        assert_eq!(value.password.expose_secret(), "p4ss-word");
        assert!(!format!("{value:?}").contains("p4ss-word"));
        let creds: TmpCredsList = serde_json::from_value(json!(null)).unwrap();
        assert!(creds.0.is_empty());
        let creds: TmpCredsList =
            serde_json::from_value(json!([{"id":"tmp_x","custom_ttl":60,"last_error":null}]))
                .unwrap();
        assert_eq!(creds.0[0].custom_ttl, 60);
        let legacy: DynamicSecretDetailsOutput = serde_json::from_value(
            json!({"producer_details":{"item_name":"/d","db_port":3306,"item_targets_assoc":null}}),
        )
        .unwrap();
        assert_eq!(legacy.dynamic_secret_details.db_port, "3306");
        let details: TargetDetailsOutput = serde_json::from_value(json!({
            "target": {"target_name":"/t","target_id":7},
            "value": {"db_target_details": {"db_port":"3306","db_pwd":"root-pw"}}
        }))
        .unwrap();
        let d = &details.value.db_target_details;
        assert_eq!(d.db_pwd.as_ref().unwrap().expose_secret(), "root-pw");
        assert!(!format!("{details:?}").contains("root-pw"));
        let rotated: RotatedSecretValue = serde_json::from_value(
            json!({"value":{"username":"app","password":"r0tated"},"version":3}),
        )
        .unwrap();
        assert_eq!(rotated.version, 3);
        assert!(!format!("{rotated:?}").contains("r0tated"));
    }
}
