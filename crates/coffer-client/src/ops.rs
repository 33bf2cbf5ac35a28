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
}

impl Operation for Auth {
    const NAME: &'static str = "auth";
    const AUTHENTICATED: bool = false;
    type Output = AuthOutput;
}

/// `validate-token`: validates the token the request is sent with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ValidateToken {}
operation!(ValidateToken, "validate-token", ValidateTokenOutput);

/// `revoke-token`: revokes the token the request is sent with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RevokeToken {}
operation!(RevokeToken, "revoke-token", Empty);

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
}
operation!(ListItems, "list-items", ListItemsOutput);

/// `delete-item`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct DeleteItem {
    pub name: String,
    /// A version, or `-1`/absent for the whole item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}
operation!(DeleteItem, "delete-item", DeleteItemOutput);

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
            jwt: None,
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
        let v = serde_json::to_value(Auth {
            access_id: "p-1".into(),
            access_type: "jwt".into(),
            access_key: None,
            jwt: Some(SecretString::from("eyJ.x.y")),
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
