//! The HTTP client: `POST <base>/<operation>` with a JSON body.

use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::ops::*;
use crate::token::Token;
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
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            ca_cert_pem: None,
            timeout: Duration::from_secs(30),
            client_type: DEFAULT_CLIENT_TYPE.to_string(),
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
    if !base.contains("://") {
        return Err(Error::Config(format!(
            "invalid gateway URL {base:?}: it must start with http:// or https://"
        )));
    }
    let parsed = reqwest::Url::parse(base)
        .map_err(|e| Error::Config(format!("invalid gateway URL {base:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Config(format!(
            "invalid gateway URL {base:?}: it must start with http:// or https://"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::Config(
            "the gateway URL must not contain credentials".to_string(),
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::Config(format!(
            "invalid gateway URL {base:?}: it must not have a query or fragment"
        )));
    }
    Ok(base.to_string())
}

impl Client {
    /// Build a client for `base_url` (`https://gw:8200`, `…/v2` or `…/api/v2`;
    /// a trailing `/` is fine).
    pub fn new(base_url: &str, options: ClientOptions) -> Result<Client> {
        let base = normalize_base_url(base_url)?;
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
            .connect_timeout(options.timeout.min(Duration::from_secs(10)));
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
    /// A non-2xx answer is [`Error::Api`] with the server's message.
    pub async fn call(&self, operation: &str, body: Value) -> Result<Value> {
        let url = self.url(operation);
        let response = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| Error::transport(&self.base, &e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Error::transport(&self.base, &e))?;
        if !status.is_success() {
            return Err(Error::from_response(status.as_u16(), &bytes));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Map::new()));
        }
        serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            operation: operation.to_string(),
            reason: format!("the body is not JSON ({e})"),
        })
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
    }

    /// A one-shot HTTP server: returns the raw request it got.
    fn one_shot(
        status: &'static str,
        body: &'static str,
    ) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
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
            write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
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
        let (url, server) = one_shot("200 OK", "not json");
        let client = Client::new(&url, ClientOptions::default()).unwrap();
        let err = client
            .call("list-roles", serde_json::json!({}))
            .await
            .unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, Error::Decode { .. }), "{err:?}");
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
