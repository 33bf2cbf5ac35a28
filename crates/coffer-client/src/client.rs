//! The HTTP client: `POST <base>/<operation>` with a JSON body.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::ops::*;
use crate::token::Token;
use crate::transport;
use crate::types::*;

/// Default `akeylessclienttype` header value.
pub const DEFAULT_CLIENT_TYPE: &str = "coffer-cli";

/// How to build a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Extra trusted CA certificate(s), PEM. System roots are always trusted.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Whole-request timeout.
    pub timeout: Duration,
    /// Sent as the `akeylessclienttype` header (recorded in the audit log).
    pub client_type: String,
    /// Allow plain `http://` to a host that is not loopback. Off by
    /// default: credentials travel in every request body.
    pub allow_insecure_http: bool,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            ca_cert_pem: None,
            timeout: Duration::from_secs(30),
            client_type: DEFAULT_CLIENT_TYPE.to_string(),
            allow_insecure_http: false,
        }
    }
}

/// A Coffer (Akeyless-compatible) API client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base).finish()
    }
}

/// Normalise a gateway URL: trim whitespace and trailing slashes. The
/// server serves the same API at `/`, `/v2` and `/api/v2`, so any of those
/// bases is kept as given.
pub fn normalize_base_url(base_url: &str) -> Result<String> {
    let base = base_url.trim().trim_end_matches('/');
    // Shown in messages: never with a password in it.
    let shown = transport::redact_userinfo(base);
    if !base.contains("://") {
        return Err(Error::Config(format!(
            "invalid gateway URL {shown:?}: it must start with http:// or https://"
        )));
    }
    let parsed = reqwest::Url::parse(base)
        .map_err(|e| Error::Config(format!("invalid gateway URL {shown:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "invalid gateway URL {shown:?}: it must start with http:// or https://"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::Config(
            "the gateway URL must not contain credentials".to_string(),
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::Config(format!(
            "invalid gateway URL {shown:?}: it must not have a query or fragment"
        )));
    }
    Ok(base.to_string())
}

/// [`normalize_base_url`], then the transport rule: plain `http://` only to
/// loopback (127.0.0.0/8, ::1, `localhost`) unless `allow_insecure_http`.
/// Nothing is sent: a refused URL is refused before any connection.
pub fn check_base_url(base_url: &str, allow_insecure_http: bool) -> Result<String> {
    let base = normalize_base_url(base_url)?;
    let parsed = reqwest::Url::parse(&base)
        .map_err(|e| Error::Config(format!("invalid gateway URL {base:?}: {e}")))?;
    transport::check_plain_http(&parsed, allow_insecure_http, &[])?;
    Ok(base)
}

/// The string values of the request fields that hold a credential or a
/// secret value: redacted from API error messages.
fn sent_secrets(body: &Value) -> Vec<&str> {
    const FIELDS: &[&str] = &[
        "token",
        "uid-token",
        "access-key",
        "jwt",
        "cloud-id",
        "k8s-service-account-token",
        "token-reviewer-jwt",
        "value",
        "pwd",
        "mysql-password",
        "postgresql-password",
        "rotated-password",
        "key-data",
        "plaintext",
    ];
    let Value::Object(map) = body else {
        return Vec::new();
    };
    map.iter()
        .filter(|(k, _)| FIELDS.contains(&k.replace('_', "-").as_str()))
        .filter_map(|(_, v)| v.as_str())
        .collect()
}

impl Client {
    /// Build a client for `base_url` (`https://gw:8200`, `…/v2` or `…/api/v2`;
    /// a trailing `/` is fine). Plain `http://` is refused unless the host
    /// is loopback or [`ClientOptions::allow_insecure_http`] is set.
    pub fn new(base_url: &str, options: ClientOptions) -> Result<Client> {
        let base = check_base_url(base_url, options.allow_insecure_http)?;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            "akeylessclienttype",
            reqwest::header::HeaderValue::from_str(&options.client_type).map_err(|_| {
                Error::Config(format!(
                    "invalid client type {:?}: use visible ASCII characters",
                    options.client_type
                ))
            })?,
        );
        headers.insert(
            reqwest::header::ACCEPT,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("coffer/", env!("CARGO_PKG_VERSION")))
            .default_headers(headers)
            .timeout(options.timeout)
            .connect_timeout(options.timeout.min(Duration::from_secs(10)))
            // A 307/308 would re-send the body (credentials) elsewhere.
            .redirect(transport::redirect_policy());
        if let Some(pem) = &options.ca_cert_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                Error::Config(format!("invalid CA certificate (PEM expected): {e}"))
            })?;
            if certs.is_empty() {
                return Err(Error::Config(
                    "the CA certificate file holds no PEM certificate".to_string(),
                ));
            }
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Client { http, base })
    }

    /// The normalised base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, operation: &str) -> String {
        format!("{}/{}", self.base, operation.trim_start_matches('/'))
    }

    /// Send `body` to `operation` as is and return the JSON response.
    /// A non-2xx answer is [`Error::Api`] with the server's message (any
    /// credential or value of the request it repeats is redacted); a
    /// redirect is [`Error::Redirect`] and is not followed.
    pub async fn call(&self, operation: &str, body: Value) -> Result<Value> {
        let url = self.url(operation);
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::transport(&self.base, &e))?;
        if let Err(redirect) = transport::RedirectRefused::check(&response) {
            return Err(Error::Redirect {
                url: self.base.clone(),
                redirect,
            });
        }
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::transport(&self.base, &e))?;
        if !status.is_success() {
            if let Some(e) = Error::not_an_api(&self.base, operation, status.as_u16(), &bytes) {
                return Err(e);
            }
            return Err(Error::from_response_redacted(
                status.as_u16(),
                &bytes,
                &sent_secrets(&body),
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Map::new()));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::undecodable(&self.base, operation, &bytes, &e))
    }

    /// Like [`Client::call`], with the caller's token added to the body.
    pub async fn call_with_token(
        &self,
        token: &Token,
        operation: &str,
        body: Value,
    ) -> Result<Value> {
        let mut map = match body {
            Value::Object(m) => m,
            Value::Null => Map::new(),
            _ => {
                return Err(Error::Config(format!(
                    "the body of {operation} must be a JSON object"
                )));
            }
        };
        token.insert_into(&mut map);
        self.call(operation, Value::Object(map)).await
    }

    /// Send a typed request and return the raw JSON response (for callers
    /// that print it). `token` is ignored by operations that take none.
    pub async fn send_value<O: Operation>(
        &self,
        token: Option<&Token>,
        request: &O,
    ) -> Result<Value> {
        let body = serde_json::to_value(request)
            .map_err(|e| Error::Config(format!("cannot encode the {} request: {e}", O::NAME)))?;
        match token {
            Some(t) if O::AUTHENTICATED => self.call_with_token(t, O::NAME, body).await,
            _ => self.call(O::NAME, body).await,
        }
    }

    /// Send a typed request and decode the typed response.
    pub async fn send<O: Operation>(
        &self,
        token: Option<&Token>,
        request: &O,
    ) -> Result<O::Output> {
        let value = self.send_value(token, request).await?;
        decode::<O>(value)
    }

    // ---- typed helpers ----

    /// `auth` with an API key (`access_key`).
    pub async fn auth_access_key(
        &self,
        access_id: &str,
        access_key: &SecretString,
    ) -> Result<AuthOutput> {
        self.send(
            None,
            &Auth {
                access_id: access_id.to_string(),
                access_type: "access_key".to_string(),
                access_key: Some(access_key.clone()),
                ..Default::default()
            },
        )
        .await
    }

    /// `get-cert-challenge`: a single-use challenge for a cert login.
    pub async fn get_cert_challenge(
        &self,
        access_id: &str,
        cert_data_b64: &str,
    ) -> Result<CertChallengeOutput> {
        self.send(
            None,
            &GetCertChallenge {
                access_id: access_id.to_string(),
                cert_data: cert_data_b64.to_string(),
            },
        )
        .await
    }

    /// A cert login: get a challenge for the certificate, have `sign`
    /// return its signature (base64) by the certificate's private key (the
    /// key stays with the caller), and log in with it.
    pub async fn auth_cert<F>(
        &self,
        access_id: &str,
        cert_data_b64: &str,
        sign: F,
    ) -> Result<AuthOutput>
    where
        F: FnOnce(&str) -> Result<String>,
    {
        let challenge = self
            .get_cert_challenge(access_id, cert_data_b64)
            .await?
            .challenge;
        let signature = sign(&challenge)?;
        self.auth(&Auth {
            access_id: access_id.to_string(),
            access_type: "cert".to_string(),
            cert_data: Some(cert_data_b64.to_string()),
            cert_challenge: Some(challenge),
            signed_cert_challenge: Some(signature),
            ..Default::default()
        })
        .await
    }

    /// `oidc-auth-url`: the provider's authorization URL for a person's
    /// login, and the state it must come back with. `client_nonce`: a
    /// random value this client keeps, sent again with [`Self::auth_oidc`].
    pub async fn oidc_auth_url(
        &self,
        access_id: &str,
        redirect_uri: &str,
        client_nonce: &SecretString,
    ) -> Result<OidcAuthUrlOutput> {
        self.send(
            None,
            &OidcAuthUrl {
                access_id: access_id.to_string(),
                redirect_uri: redirect_uri.to_string(),
                client_nonce: client_nonce.clone(),
            },
        )
        .await
    }

    /// `auth` with the code and state of an OIDC login and the client
    /// nonce its [`Self::oidc_auth_url`] was called with.
    pub async fn auth_oidc(
        &self,
        access_id: &str,
        code: &SecretString,
        state: &str,
        client_nonce: &SecretString,
    ) -> Result<AuthOutput> {
        self.auth(&Auth {
            access_id: access_id.to_string(),
            access_type: "oidc".to_string(),
            code: Some(code.clone()),
            state: Some(state.to_string()),
            client_nonce: Some(client_nonce.clone()),
            ..Default::default()
        })
        .await
    }

    /// `create-auth-method-oidc`.
    pub async fn create_auth_method_oidc(
        &self,
        token: &Token,
        request: &CreateAuthMethodOidc,
    ) -> Result<CreateAuthMethodOutput> {
        self.send(Some(token), request).await
    }

    /// `create-auth-method-cert`.
    pub async fn create_auth_method_cert(
        &self,
        token: &Token,
        request: &CreateAuthMethodCert,
    ) -> Result<CreateAuthMethodOutput> {
        self.send(Some(token), request).await
    }

    /// `auth` with any request (other access types).
    pub async fn auth(&self, request: &Auth) -> Result<AuthOutput> {
        self.send(None, request).await
    }

    pub async fn validate_token(&self, token: &Token) -> Result<ValidateTokenOutput> {
        self.send(Some(token), &ValidateToken {}).await
    }

    pub async fn revoke_token(&self, token: &Token) -> Result<()> {
        self.send(Some(token), &RevokeToken {}).await.map(drop)
    }

    /// `get-secret-value` for one or more names (all must be readable).
    pub async fn get_secret_value<I, S>(
        &self,
        token: &Token,
        names: I,
        version: Option<i64>,
    ) -> Result<SecretValues>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let request = GetSecretValue {
            names: names.into_iter().map(Into::into).collect(),
            version,
        };
        self.send(Some(token), &request).await
    }

    pub async fn create_secret(&self, token: &Token, request: &CreateSecret) -> Result<NameOutput> {
        self.send(Some(token), request).await
    }

    pub async fn update_secret_val(
        &self,
        token: &Token,
        request: &UpdateSecretVal,
    ) -> Result<NameOutput> {
        self.send(Some(token), request).await
    }

    pub async fn describe_item(
        &self,
        token: &Token,
        name: &str,
        show_versions: bool,
    ) -> Result<ItemInfo> {
        let request = DescribeItem {
            name: name.to_string(),
            show_versions: Some(show_versions),
        };
        self.send(Some(token), &request).await
    }

    pub async fn list_items(&self, token: &Token, request: &ListItems) -> Result<ListItemsOutput> {
        self.send(Some(token), request).await
    }

    /// `delete-item`: a version, or the whole item with `None`.
    pub async fn delete_item(
        &self,
        token: &Token,
        name: &str,
        version: Option<i64>,
    ) -> Result<DeleteItemOutput> {
        let request = DeleteItem {
            name: name.to_string(),
            version,
            ..DeleteItem::default()
        };
        self.send(Some(token), &request).await
    }

    /// `restore-item`: cancel a pending deletion.
    pub async fn restore_item(&self, token: &Token, name: &str) -> Result<RestoreItemOutput> {
        let request = RestoreItem {
            name: name.to_string(),
        };
        self.send(Some(token), &request).await
    }

    /// `delete-items`: every item under a folder, pending deletion.
    pub async fn delete_items(&self, token: &Token, path: &str) -> Result<DeleteItemsOutput> {
        let request = DeleteItems {
            path: Some(path.to_string()),
            item: Vec::new(),
        };
        self.send(Some(token), &request).await
    }

    /// `update-item`.
    pub async fn update_item(
        &self,
        token: &Token,
        request: &UpdateItem,
    ) -> Result<UpdateItemOutput> {
        self.send(Some(token), request).await
    }

    /// `get-tags`.
    pub async fn get_tags(&self, token: &Token, name: &str) -> Result<Vec<String>> {
        let request = GetTags {
            name: name.to_string(),
        };
        self.send(Some(token), &request).await
    }

    pub async fn create_auth_method(
        &self,
        token: &Token,
        request: &CreateAuthMethod,
    ) -> Result<CreateAuthMethodOutput> {
        self.send(Some(token), request).await
    }

    pub async fn get_auth_method(&self, token: &Token, name: &str) -> Result<AuthMethodInfo> {
        self.send(
            Some(token),
            &GetAuthMethod {
                name: name.to_string(),
            },
        )
        .await
    }

    pub async fn list_auth_methods(&self, token: &Token) -> Result<ListAuthMethodsOutput> {
        self.send(Some(token), &ListAuthMethods {}).await
    }

    pub async fn delete_auth_method(&self, token: &Token, name: &str) -> Result<NameOutput> {
        self.send(
            Some(token),
            &DeleteAuthMethod {
                name: name.to_string(),
            },
        )
        .await
    }

    pub async fn create_role(&self, token: &Token, request: &CreateRole) -> Result<()> {
        self.send(Some(token), request).await.map(drop)
    }

    pub async fn get_role(&self, token: &Token, name: &str) -> Result<RoleInfo> {
        self.send(
            Some(token),
            &GetRole {
                name: name.to_string(),
            },
        )
        .await
    }

    pub async fn list_roles(&self, token: &Token) -> Result<ListRolesOutput> {
        self.send(Some(token), &ListRoles {}).await
    }

    pub async fn delete_role(&self, token: &Token, name: &str) -> Result<()> {
        self.send(
            Some(token),
            &DeleteRole {
                name: name.to_string(),
            },
        )
        .await
        .map(drop)
    }

    pub async fn set_role_rule(&self, token: &Token, request: &SetRoleRule) -> Result<()> {
        self.send(Some(token), request).await.map(drop)
    }

    pub async fn delete_role_rule(&self, token: &Token, request: &DeleteRoleRule) -> Result<()> {
        self.send(Some(token), request).await.map(drop)
    }

    pub async fn assoc_role_am(&self, token: &Token, request: &AssocRoleAm) -> Result<AssocOutput> {
        self.send(Some(token), request).await
    }

    pub async fn delete_assoc(&self, token: &Token, assoc_id: &str) -> Result<()> {
        let request = DeleteAssoc {
            assoc_id: assoc_id.to_string(),
        };
        self.send(Some(token), &request).await.map(drop)
    }

    pub async fn audit_list(&self, token: &Token, request: &AuditList) -> Result<AuditListOutput> {
        self.send(Some(token), request).await
    }

    pub async fn audit_verify(&self, token: &Token) -> Result<AuditVerifyOutput> {
        self.send(Some(token), &AuditVerify {}).await
    }

    // ---- targets, dynamic and rotated secrets ----

    pub async fn target_create_db(
        &self,
        token: &Token,
        target: DbTarget,
    ) -> Result<TargetIdOutput> {
        self.send(Some(token), &TargetCreateDb(target)).await
    }

    /// `target-update-db`: fields left `None` keep their values.
    pub async fn target_update_db(
        &self,
        token: &Token,
        target: DbTarget,
    ) -> Result<TargetIdOutput> {
        self.send(Some(token), &TargetUpdateDb(target)).await
    }

    pub async fn target_get(&self, token: &Token, name: &str) -> Result<TargetInfo> {
        let request = TargetGet {
            name: name.to_string(),
        };
        self.send(Some(token), &request).await
    }

    /// `target-get-details`: `db_pwd` is set for a caller with `read`.
    pub async fn target_get_details(
        &self,
        token: &Token,
        name: &str,
    ) -> Result<TargetDetailsOutput> {
        let request = TargetGetDetails {
            name: name.to_string(),
        };
        self.send(Some(token), &request).await
    }

    pub async fn target_list(
        &self,
        token: &Token,
        request: &TargetList,
    ) -> Result<ListTargetsOutput> {
        self.send(Some(token), request).await
    }

    pub async fn target_delete(
        &self,
        token: &Token,
        name: &str,
        force_deletion: bool,
    ) -> Result<TargetDeleteOutput> {
        let request = TargetDelete {
            name: name.to_string(),
            force_deletion: force_deletion.then_some(true),
        };
        self.send(Some(token), &request).await
    }

    pub async fn dynamic_secret_create_mysql(
        &self,
        token: &Token,
        request: DynamicSecretMysql,
    ) -> Result<DynamicSecretDetails> {
        let out = self
            .send(Some(token), &DynamicSecretCreateMysql(request))
            .await?;
        Ok(out.dynamic_secret_details)
    }

    pub async fn dynamic_secret_create_postgresql(
        &self,
        token: &Token,
        request: DynamicSecretPostgresql,
    ) -> Result<DynamicSecretDetails> {
        let out = self
            .send(Some(token), &DynamicSecretCreatePostgresql(request))
            .await?;
        Ok(out.dynamic_secret_details)
    }

    /// `dynamic-secret-update-mysql`: fields given replace the old ones.
    pub async fn dynamic_secret_update_mysql(
        &self,
        token: &Token,
        request: DynamicSecretMysql,
    ) -> Result<DynamicSecretDetails> {
        let out = self
            .send(Some(token), &DynamicSecretUpdateMysql(request))
            .await?;
        Ok(out.dynamic_secret_details)
    }

    /// `dynamic-secret-update-postgresql`: fields given replace the old ones.
    pub async fn dynamic_secret_update_postgresql(
        &self,
        token: &Token,
        request: DynamicSecretPostgresql,
    ) -> Result<DynamicSecretDetails> {
        let out = self
            .send(Some(token), &DynamicSecretUpdatePostgresql(request))
            .await?;
        Ok(out.dynamic_secret_details)
    }

    pub async fn dynamic_secret_get(
        &self,
        token: &Token,
        name: &str,
    ) -> Result<DynamicSecretDetails> {
        let request = DynamicSecretGet {
            name: name.to_string(),
        };
        self.send(Some(token), &request).await
    }

    pub async fn dynamic_secret_list(&self, token: &Token) -> Result<ListProducersOutput> {
        self.send(Some(token), &DynamicSecretList {}).await
    }

    /// `dynamic-secret-delete`: its live credentials are revoked first.
    pub async fn dynamic_secret_delete(
        &self,
        token: &Token,
        name: &str,
    ) -> Result<DynamicSecretDeleteOutput> {
        let request = DynamicSecretDelete {
            name: name.to_string(),
        };
        self.send(Some(token), &request).await
    }

    /// `get-dynamic-secret-value`: a new database user, which exists and
    /// can log in when this returns.
    pub async fn get_dynamic_secret_value(
        &self,
        token: &Token,
        request: &GetDynamicSecretValue,
    ) -> Result<DynamicSecretValue> {
        self.send(Some(token), request).await
    }

    pub async fn dynamic_secret_tmp_creds_get(
        &self,
        token: &Token,
        name: &str,
    ) -> Result<Vec<TmpCreds>> {
        let request = DynamicSecretTmpCredsGet {
            name: name.to_string(),
        };
        Ok(self.send(Some(token), &request).await?.0)
    }

    /// `dynamic-secret-tmp-creds-delete`: returns the IDs revoked.
    pub async fn dynamic_secret_tmp_creds_delete(
        &self,
        token: &Token,
        request: &DynamicSecretTmpCredsDelete,
    ) -> Result<Vec<String>> {
        Ok(self.send(Some(token), request).await?.revoked)
    }

    pub async fn dynamic_secret_tmp_creds_update(
        &self,
        token: &Token,
        request: &DynamicSecretTmpCredsUpdate,
    ) -> Result<TmpCredsUpdateOutput> {
        self.send(Some(token), request).await
    }

    pub async fn lease_list(&self, token: &Token, request: &LeaseList) -> Result<Vec<LeaseInfo>> {
        Ok(self.send(Some(token), request).await?.leases)
    }

    pub async fn rotated_secret_create_mysql(
        &self,
        token: &Token,
        request: RotatedSecretCreate,
    ) -> Result<NameOutput> {
        self.send(Some(token), &RotatedSecretCreateMysql(request))
            .await
    }

    pub async fn rotated_secret_create_postgresql(
        &self,
        token: &Token,
        request: RotatedSecretCreate,
    ) -> Result<NameOutput> {
        self.send(Some(token), &RotatedSecretCreatePostgresql(request))
            .await
    }

    /// `rotated-secret-update-mysql` (the server takes it for either type).
    pub async fn rotated_secret_update(
        &self,
        token: &Token,
        request: RotatedSecretUpdate,
    ) -> Result<NameOutput> {
        self.send(Some(token), &RotatedSecretUpdateMysql(request))
            .await
    }

    /// `get-rotated-secret-value`: the current version, or `version`.
    pub async fn get_rotated_secret_value(
        &self,
        token: &Token,
        name: &str,
        version: Option<i64>,
    ) -> Result<RotatedSecretValue> {
        let request = GetRotatedSecretValue {
            names: name.to_string(),
            version,
        };
        self.send(Some(token), &request).await
    }

    /// `gateway-rotate-secret`: rotate now.
    pub async fn gateway_rotate_secret(&self, token: &Token, name: &str) -> Result<NameOutput> {
        let request = GatewayRotateSecret {
            name: name.to_string(),
        };
        self.send(Some(token), &request).await
    }

    pub async fn rotated_secret_list(&self, token: &Token) -> Result<ListProducersOutput> {
        self.send(Some(token), &RotatedSecretList {}).await
    }

    pub async fn rotated_secret_delete(
        &self,
        token: &Token,
        name: &str,
    ) -> Result<DeleteItemOutput> {
        let request = RotatedSecretDelete {
            name: name.to_string(),
        };
        self.send(Some(token), &request).await
    }

    pub async fn create_key(&self, token: &Token, request: &CreateKey) -> Result<CreateKeyOutput> {
        self.send(Some(token), request).await
    }

    pub async fn create_classic_key(
        &self,
        token: &Token,
        request: &CreateClassicKey,
    ) -> Result<CreateClassicKeyOutput> {
        self.send(Some(token), request).await
    }

    /// `get-rsa-public`: the public part of any signing key.
    pub async fn get_rsa_public(&self, token: &Token, name: &str) -> Result<PublicKeyOutput> {
        let request = GetRsaPublic {
            name: name.to_string(),
        };
        self.send(Some(token), &request).await
    }

    pub async fn encrypt(&self, token: &Token, request: &Encrypt) -> Result<EncryptOutput> {
        self.send(Some(token), request).await
    }

    pub async fn decrypt(&self, token: &Token, request: &Decrypt) -> Result<DecryptOutput> {
        self.send(Some(token), request).await
    }

    pub async fn rotate_key(&self, token: &Token, name: &str) -> Result<RotateKeyOutput> {
        let request = RotateKey {
            name: name.to_string(),
        };
        self.send(Some(token), &request).await
    }

    pub async fn update_classic_key_certificate(
        &self,
        token: &Token,
        request: &UpdateClassicKeyCertificate,
    ) -> Result<KeyVersionOutput> {
        self.send(Some(token), request).await
    }

    pub async fn get_ssh_certificate(
        &self,
        token: &Token,
        request: &GetSshCertificate,
    ) -> Result<SshCertificateOutput> {
        self.send(Some(token), request).await
    }

    pub async fn get_pki_certificate(
        &self,
        token: &Token,
        request: &GetPkiCertificate,
    ) -> Result<PkiCertificateOutput> {
        self.send(Some(token), request).await
    }

    pub async fn cert_list(&self, token: &Token, request: &CertList) -> Result<CertListOutput> {
        self.send(Some(token), request).await
    }

    pub async fn revoke_certificate(
        &self,
        token: &Token,
        request: &RevokeCertificate,
    ) -> Result<RevokeCertificateOutput> {
        self.send(Some(token), request).await
    }

    /// The URL of a PKI issuer's CRL: `GET /pki/crl/<issuer name>` at the
    /// server's root (a base ending in `/v2` or `/api/v2` is cut back to
    /// it), each segment of the name percent-encoded.
    pub fn pki_crl_url(&self, issuer_name: &str) -> Result<String> {
        let root = self
            .base
            .strip_suffix("/api/v2")
            .or_else(|| self.base.strip_suffix("/v2"))
            .unwrap_or(&self.base);
        let mut url = reqwest::Url::parse(root)
            .map_err(|e| Error::Config(format!("invalid gateway URL {root:?}: {e}")))?;
        let segments: Vec<&str> = issuer_name.split('/').filter(|s| !s.is_empty()).collect();
        if segments.is_empty() {
            return Err(Error::Config("the issuer name is empty".to_string()));
        }
        url.path_segments_mut()
            .map_err(|()| Error::Config(format!("invalid gateway URL {root:?}")))?
            .pop_if_empty()
            .extend(["pki", "crl"])
            .extend(segments);
        Ok(url.to_string())
    }

    /// A PKI issuer's current CRL, PEM (public: no token is sent). Same
    /// transport rules as every request: no redirects, plain HTTP only as
    /// the client allows it.
    pub async fn pki_crl(&self, issuer_name: &str) -> Result<String> {
        let url = self.pki_crl_url(issuer_name)?;
        let response = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, "application/x-pem-file")
            .send()
            .await
            .map_err(|e| Error::transport(&self.base, &e))?;
        if let Err(redirect) = transport::RedirectRefused::check(&response) {
            return Err(Error::Redirect {
                url: self.base.clone(),
                redirect,
            });
        }
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::transport(&self.base, &e))?;
        if !status.is_success() {
            return Err(Error::from_response(status.as_u16(), &bytes));
        }
        String::from_utf8(bytes.to_vec()).map_err(|_| Error::Decode {
            operation: "pki/crl".to_string(),
            reason: "the CRL is not PEM text".to_string(),
        })
    }
}

/// Decode a raw response of operation `O` into its typed output.
pub fn decode<O: Operation>(value: Value) -> Result<O::Output> {
    serde_json::from_value(value).map_err(|e| Error::Decode {
        operation: O::NAME.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;

    #[test]
    fn base_urls() {
        for (given, want) in [
            ("http://127.0.0.1:8200", "http://127.0.0.1:8200"),
            ("http://127.0.0.1:8200/", "http://127.0.0.1:8200"),
            ("https://gw/v2/", "https://gw/v2"),
            (" https://gw/api/v2 ", "https://gw/api/v2"),
        ] {
            assert_eq!(normalize_base_url(given).unwrap(), want);
        }
        assert!(normalize_base_url("gw:8200").is_err());
        assert!(normalize_base_url("ftp://gw").is_err());
        assert!(normalize_base_url("https://u:p@gw").is_err());
        let err = normalize_base_url("https://user:hunter2@gw:notaport").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(normalize_base_url("https://:hunter2@gw").is_err());
    }

    /// A one-shot HTTP server: returns the raw request it got.
    fn one_shot(
        status: &'static str,
        body: &'static str,
    ) -> (String, std::thread::JoinHandle<String>) {
        one_shot_on("127.0.0.1:0", status, body)
    }

    fn one_shot_on(
        bind: &str,
        status: &'static str,
        body: &'static str,
    ) -> (String, std::thread::JoinHandle<String>) {
        serve_once(
            bind,
            format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            ),
        )
    }

    /// Accept one request on `bind`, answer `reply` verbatim; the thread
    /// returns the request's head and body as received.
    fn serve_once(bind: &str, reply: String) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind(bind).unwrap();
        let addr = listener.local_addr().unwrap();
        let handle = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream);
            let mut head = String::new();
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                head.push_str(&line);
                if line == "\r\n" {
                    break;
                }
            }
            let mut received = vec![0; len];
            reader.read_exact(&mut received).unwrap();
            let mut stream = reader.into_inner();
            stream.write_all(reply.as_bytes()).unwrap();
            head + &String::from_utf8(received).unwrap()
        });
        (format!("http://{addr}/api/v2/"), handle)
    }

    #[tokio::test]
    async fn sends_headers_path_and_token_in_body() {
        let (url, server) = one_shot("200 OK", r#"{"/a":"1","/b":"2"}"#);
        let client = Client::new(&url, ClientOptions::default()).unwrap();
        let token = Token::new("t-123".to_string());
        let values = client
            .get_secret_value(&token, ["/a", "/b"], Some(2))
            .await
            .unwrap();
        assert_eq!(values.0.len(), 2);
        let request = server.join().unwrap();
        let lower = request.to_ascii_lowercase();
        assert!(
            request.starts_with("POST /api/v2/get-secret-value HTTP/1.1"),
            "{request}"
        );
        assert!(
            lower.contains("akeylessclienttype: coffer-cli"),
            "{request}"
        );
        assert!(lower.contains(&format!("user-agent: coffer/{}", env!("CARGO_PKG_VERSION"))));
        assert!(lower.contains("content-type: application/json"));
        let body: Value = serde_json::from_str(request.split("\r\n\r\n").nth(1).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"names":["/a","/b"],"version":2,"token":"t-123"})
        );
    }

    #[tokio::test]
    async fn api_errors_carry_the_server_message_and_no_token() {
        let (url, server) = one_shot("403 Forbidden", r#"{"error":"access denied: read on /x"}"#);
        let client = Client::new(&url, ClientOptions::default()).unwrap();
        let err = client
            .describe_item(&Token::new("t-secret".to_string()), "/x", false)
            .await
            .unwrap_err();
        server.join().unwrap();
        assert_eq!(err.status(), Some(403));
        assert_eq!(err.to_string(), "access denied: read on /x");
        assert!(!format!("{err:?}").contains("t-secret"));
    }

    #[tokio::test]
    async fn connection_refused_is_a_transport_error_with_a_hint() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new(
            &format!("http://127.0.0.1:{port}"),
            ClientOptions::default(),
        )
        .unwrap();
        let err = client
            .auth_access_key("p-x", &SecretString::from("key-secret"))
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Transport { .. }), "{err:?}");
        assert!(text.contains("gateway URL"), "{text}");
        assert!(!text.contains("key-secret"));
    }

    #[tokio::test]
    async fn non_json_success_is_a_decode_error() {
        let (url, server) = one_shot("200 OK", "{\"roles\": [");
        let client = Client::new(&url, ClientOptions::default()).unwrap();
        let err = client
            .call("list-roles", serde_json::json!({}))
            .await
            .unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn html_or_text_is_not_the_api() {
        for (status, body) in [
            ("200 OK", "<html><body>Welcome to nginx</body></html>"),
            ("404 Not Found", "404 page not found"),
        ] {
            let (url, server) = one_shot(status, body);
            let client = Client::new(&url, ClientOptions::default()).unwrap();
            let err = client
                .call("auth", serde_json::json!({}))
                .await
                .unwrap_err();
            server.join().unwrap();
            assert!(matches!(err, Error::NotAnApi { .. }), "{err:?}");
            assert!(err.to_string().contains("POST /auth"), "{err}");
        }
    }

    /// A loopback listener that records every connection it gets (and the
    /// bytes sent on it) for `wait`, without answering.
    fn capture_server(wait: Duration) -> (u16, std::thread::JoinHandle<Vec<Vec<u8>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + wait;
            let mut got = Vec::new();
            while std::time::Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream
                            .set_read_timeout(Some(Duration::from_millis(300)))
                            .unwrap();
                        let mut buf = Vec::new();
                        stream.read_to_end(&mut buf).ok();
                        got.push(buf);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            got
        });
        (port, handle)
    }

    /// The regression of issue 9 item 8: a gateway answering 307 (or 308,
    /// 302) with a Location on another server must not make the client send
    /// the access key, JWT or token there.
    #[tokio::test]
    async fn a_redirect_is_an_error_and_nothing_is_re_sent() {
        for status in [
            "307 Temporary Redirect",
            "308 Permanent Redirect",
            "302 Found",
        ] {
            let (capture_port, captured) = capture_server(Duration::from_millis(1500));
            let location = format!("http://127.0.0.1:{capture_port}/api/v2/collect?x=1");
            let location: &'static str = Box::leak(location.into_boxed_str());
            for credential in ["access-key", "jwt", "token"] {
                let (url, server) = redirect_once(status, location);
                let client = Client::new(&url, ClientOptions::default()).unwrap();
                let secret = format!("{credential}-S3CR3T-value");
                let err = match credential {
                    "access-key" => client
                        .auth_access_key("p-abc", &SecretString::from(secret.clone()))
                        .await
                        .unwrap_err(),
                    "jwt" => client
                        .auth(&Auth {
                            access_id: "p-abc".into(),
                            access_type: "jwt".into(),
                            jwt: Some(SecretString::from(secret.clone())),
                            ..Default::default()
                        })
                        .await
                        .unwrap_err(),
                    _ => client
                        .get_secret_value(&Token::new(secret.clone()), ["/app/db"], None)
                        .await
                        .unwrap_err(),
                };
                // The intended gateway got the request once.
                let request = server.join().unwrap();
                assert!(request.contains(&secret), "{request}");
                let Error::Redirect { redirect, .. } = &err else {
                    panic!("{status}: expected a redirect error, got {err:?}");
                };
                assert_eq!(redirect.status.to_string(), status[..3]);
                assert_eq!(
                    redirect.location,
                    format!("http://127.0.0.1:{capture_port}")
                );
                let text = err.to_string();
                assert!(text.contains(&format!("HTTP {}", &status[..3])), "{text}");
                assert!(
                    text.contains(&format!("127.0.0.1:{capture_port}")),
                    "{text}"
                );
                assert!(
                    !text.contains(&secret) && !text.contains("collect"),
                    "{text}"
                );
                assert!(!format!("{err:?}").contains(&secret));
            }
            let got = captured.join().unwrap();
            assert!(
                got.is_empty(),
                "{status}: the redirect target received {} connection(s): {:?}",
                got.len(),
                got.iter()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .collect::<Vec<_>>()
            );
        }
    }

    /// Answers one request with `status` and a `Location`; returns the request.
    fn redirect_once(
        status: &'static str,
        location: &'static str,
    ) -> (String, std::thread::JoinHandle<String>) {
        let (url, handle) = serve_once(
            "127.0.0.1:0",
            format!(
                "HTTP/1.1 {status}\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            ),
        );
        (url.trim_end_matches('/').to_owned(), handle)
    }

    /// Plain HTTP to a host that is not loopback is refused by `new`, which
    /// opens no connection (10.255.255.1 is never contacted); loopback
    /// addresses and the explicit opt-in pass.
    #[test]
    fn plain_http_is_refused_off_loopback_unless_allowed() {
        for url in [
            "http://10.255.255.1:8200",
            "http://gateway.example",
            "http://[2001:db8::1]:8200/api/v2",
            "http://169.254.169.254",
        ] {
            let err = Client::new(url, ClientOptions::default()).unwrap_err();
            assert!(matches!(err, Error::InsecureHttp(_)), "{url}: {err:?}");
            let text = err.to_string();
            assert!(text.contains("--allow-insecure-http"), "{text}");
            assert!(text.contains("https://"), "{text}");
            let allowed = ClientOptions {
                allow_insecure_http: true,
                ..Default::default()
            };
            assert!(Client::new(url, allowed).is_ok(), "{url}");
        }
        for url in [
            "http://127.0.0.1:8200",
            "http://127.1.2.3:1",
            "http://localhost:8200/v2",
            "http://[::1]:8200",
            "https://gateway.example",
            "https://10.255.255.1:8200",
        ] {
            assert!(Client::new(url, ClientOptions::default()).is_ok(), "{url}");
        }
        assert!(check_base_url("http://10.0.0.1", false).is_err());
        assert_eq!(
            check_base_url("http://10.0.0.1/", true).unwrap(),
            "http://10.0.0.1"
        );
    }

    /// The accepted path really talks to a 127.x address other than
    /// 127.0.0.1 without the opt-in.
    #[tokio::test]
    async fn plain_http_to_any_127_address_works() {
        let (url, server) = one_shot_on("127.0.0.2:0", "200 OK", r#"{"roles":[]}"#);
        assert!(url.starts_with("http://127.0.0.2:"), "{url}");
        let client = Client::new(&url, ClientOptions::default()).unwrap();
        client
            .call("list-roles", serde_json::json!({}))
            .await
            .unwrap();
        assert!(
            server
                .join()
                .unwrap()
                .starts_with("POST /api/v2/list-roles")
        );
    }

    #[tokio::test]
    async fn api_errors_echoing_a_credential_are_redacted() {
        let (url, server) = one_shot(
            "401 Unauthorized",
            r#"{"error":"access key k-ECHOED-secret-1 is wrong"}"#,
        );
        let client = Client::new(&url, ClientOptions::default()).unwrap();
        let err = client
            .auth_access_key("p-x", &SecretString::from("k-ECHOED-secret-1"))
            .await
            .unwrap_err();
        server.join().unwrap();
        assert_eq!(err.to_string(), "access key [REDACTED] is wrong");
    }

    #[tokio::test]
    async fn api_errors_echoing_a_database_password_are_redacted() {
        let (url, server) = one_shot(
            "400 Bad Request",
            r#"{"error":"login as root with db-ECHOED-pw failed"}"#,
        );
        let client = Client::new(&url, ClientOptions::default()).unwrap();
        let err = client
            .target_create_db(
                &Token::new("t-1".to_string()),
                DbTarget {
                    name: "/t".into(),
                    pwd: Some(SecretString::from("db-ECHOED-pw")),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        let request = server.join().unwrap();
        assert!(
            request.starts_with("POST /api/v2/target-create-db "),
            "{request}"
        );
        assert_eq!(err.to_string(), "login as root with [REDACTED] failed");
    }

    #[tokio::test]
    async fn the_crl_is_a_get_at_the_server_root_without_a_token() {
        let pem = "-----BEGIN X509 CRL-----\nMIIB\n-----END X509 CRL-----\n";
        let (url, server) = serve_once(
            "127.0.0.1:0",
            format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/x-pem-file\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{pem}",
                pem.len()
            ),
        );
        let client = Client::new(&url, ClientOptions::default()).unwrap();
        assert_eq!(client.pki_crl("/pki/my issuer").await.unwrap(), pem);
        let request = server.join().unwrap();
        assert!(
            request.starts_with("GET /pki/crl/pki/my%20issuer HTTP/1.1"),
            "{request}"
        );
        assert!(!request.to_ascii_lowercase().contains("token"), "{request}");
        let client = Client::new("http://127.0.0.1:1/v2/", ClientOptions::default()).unwrap();
        assert_eq!(
            client.pki_crl_url("ca").unwrap(),
            "http://127.0.0.1:1/pki/crl/ca"
        );
        assert!(client.pki_crl_url("/").is_err());

        let (url, server) = one_shot("404 Not Found", r#"{"error":"item \"/x\" not found"}"#);
        let client = Client::new(&url, ClientOptions::default()).unwrap();
        let err = client.pki_crl("x").await.unwrap_err();
        server.join().unwrap();
        assert_eq!(err.status(), Some(404));
        assert!(err.to_string().contains("not found"), "{err}");
    }

    #[test]
    fn bad_ca_pem_is_a_config_error() {
        let err = Client::new(
            "https://gw",
            ClientOptions {
                ca_cert_pem: Some(b"nope".to_vec()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{err:?}");
    }
}
