//! The `akeyless` provider: any Akeyless-compatible API (Coffer, an
//! Akeyless gateway or SaaS) through the shared `coffer-client`.
//!
//! Login (`auth`) is separate from fetching so that the caller can log in
//! once per (API URL, access ID, access type, credential) and fetch every
//! secret with that token. Fetching dispatches on `describe-item`'s
//! `item_type` as GitLab Runner's resolver did: static, dynamic and
//! rotated secrets, SSH and PKI certificate issuers. Structured values
//! (dynamic/rotated) come out as JSON text, never a language's map syntax.

use std::time::Duration;

use coffer_client::{Client, ClientOptions, Token};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

/// Default API when neither `akeyless_api_url` nor `AKEYLESS_API_URL` is set.
pub const DEFAULT_API_URL: &str = "https://api.akeyless.io";

/// The host variable naming the API URL for `akeyless:` secrets that name
/// none (no `akeyless_api_url`, no `AKEYLESS_API_URL`), before the SaaS
/// default: the CLI sets it in the [`super::Env`] it passes, from
/// `COFFER_GATEWAY_URL`, `AKEYLESS_GATEWAY_URL` or its profile's gateway.
pub const FALLBACK_API_URL_VAR: &str = "COFFER_CI_FALLBACK_API_URL";
/// Recorded by the server as the client type of our requests.
pub const CLIENT_TYPE: &str = "coffer-ci";

#[derive(Debug, thiserror::Error)]
pub enum AkeylessError {
    #[error("{0}")]
    Config(String),
    #[error("can't authenticate with static creds: {0}")]
    Auth(String),
    #[error("{0}")]
    Fetch(String),
}

type Result<T> = std::result::Result<T, AkeylessError>;

/// How to obtain the token.
#[derive(Clone)]
pub enum Credential {
    /// `akeyless_token`: used as is, no login.
    Token(SecretString),
    /// `api_key` / `access_key`.
    AccessKey(SecretString),
    /// `jwt` / `oidc`: the job's ID token.
    Jwt(SecretString),
    /// `universal_identity`.
    Uid(SecretString),
    /// `k8s`: the service-account token (raw or base64).
    K8s {
        token: SecretString,
        config_name: String,
    },
    /// `aws_iam`, `azure_ad`, `gcp`: the identity document (base64).
    CloudId {
        cloud_id: SecretString,
        gcp_audience: String,
    },
}

/// One login: where, who, and with what.
#[derive(Clone)]
pub struct Login {
    pub api_url: String,
    pub access_id: String,
    /// As sent on the wire (`api_key` is sent as `access_key`).
    pub access_type: String,
    pub credential: Credential,
    /// `gateway_ca_certificate`: PEM (or base64 of PEM) trusted for TLS.
    pub ca_pem: Option<Vec<u8>>,
    /// Accept a plain `http://` API URL to a host that is not loopback
    /// (`COFFER_ALLOW_INSECURE_HTTP` / `--allow-insecure-http`).
    pub allow_insecure_http: bool,
}

impl Login {
    /// A key identifying the login for caching; it includes a digest of the
    /// credential, never the credential itself.
    pub fn cache_key(&self) -> String {
        use sha2::Digest as _;
        let (kind, secret): (&str, &str) = match &self.credential {
            Credential::Token(t) => ("token", t.expose_secret()),
            Credential::AccessKey(k) => ("key", k.expose_secret()),
            Credential::Jwt(j) => ("jwt", j.expose_secret()),
            Credential::Uid(u) => ("uid", u.expose_secret()),
            Credential::K8s { token, .. } => ("k8s", token.expose_secret()),
            Credential::CloudId { cloud_id, .. } => ("cloud", cloud_id.expose_secret()),
        };
        let digest = sha2::Sha256::digest(secret.as_bytes());
        format!(
            "akeyless|{}|{}|{}|{kind}|{}",
            self.api_url,
            self.access_id,
            self.access_type,
            hex_prefix(&digest)
        )
    }

    /// A client for this login's API URL.
    pub fn client(&self) -> Result<Client> {
        Client::new(
            &self.api_url,
            ClientOptions {
                ca_cert_pem: self.ca_pem.clone(),
                timeout: Duration::from_secs(60),
                client_type: CLIENT_TYPE.into(),
                allow_insecure_http: self.allow_insecure_http,
            },
        )
        .map_err(|e| {
            AkeylessError::Config(format!(
                "akeyless_api_url {}: {e}",
                coffer_client::transport::redact_userinfo(&self.api_url)
            ))
        })
    }

    /// The API URL after the checks [`Login::client`] makes (form, and plain
    /// `http://` only to loopback unless allowed), without building a
    /// client: lets a plan refuse it before any request.
    pub fn check_api_url(&self) -> Result<String> {
        coffer_client::check_base_url(&self.api_url, self.allow_insecure_http).map_err(|e| {
            AkeylessError::Config(format!(
                "akeyless_api_url {}: {e}",
                coffer_client::transport::redact_userinfo(&self.api_url)
            ))
        })
    }

    /// The credential's value (`None` for a cloud identity not computed
    /// yet): what `coffer ci run` masks in the command's output.
    pub fn credential_secret(&self) -> Option<&SecretString> {
        match &self.credential {
            Credential::Token(s)
            | Credential::AccessKey(s)
            | Credential::Jwt(s)
            | Credential::Uid(s)
            | Credential::K8s { token: s, .. } => Some(s),
            Credential::CloudId { cloud_id, .. } => {
                Some(cloud_id).filter(|c| !c.expose_secret().is_empty())
            }
        }
    }

    /// Log in (or take the given token) and return the token.
    pub async fn token(&self, client: &Client) -> Result<Token> {
        let mut body = json!({
            "access-id": self.access_id,
            "access-type": self.access_type,
        });
        match &self.credential {
            Credential::Token(t) => return Ok(Token::new(t.clone())),
            Credential::AccessKey(k) => body["access-key"] = json!(k.expose_secret()),
            Credential::Jwt(j) => body["jwt"] = json!(j.expose_secret()),
            Credential::Uid(u) => body["uid-token"] = json!(u.expose_secret()),
            Credential::K8s { token, config_name } => {
                body["k8s-service-account-token"] = json!(token.expose_secret());
                body["k8s-auth-config-name"] = json!(config_name);
                body["gateway-url"] = json!(self.api_url);
            }
            Credential::CloudId {
                cloud_id,
                gcp_audience,
            } => {
                body["cloud-id"] = json!(cloud_id.expose_secret());
                if !gcp_audience.is_empty() {
                    body["gcp-audience"] = json!(gcp_audience);
                }
            }
        }
        if self.access_id.trim().is_empty() {
            return Err(AkeylessError::Auth(
                "AKEYLESS_ACCESS_ID is empty: set it to the auth method's access ID".into(),
            ));
        }
        let out = client
            .call("auth", body)
            .await
            .map_err(|e| AkeylessError::Auth(e.to_string()))?;
        match out.get("token").and_then(Value::as_str) {
            Some(t) if !t.is_empty() => Ok(Token::new(SecretString::from(t.to_owned()))),
            _ => Err(AkeylessError::Auth(
                "the auth response carries no token".into(),
            )),
        }
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// What to fetch (the item part of an `akeyless:` secret).
#[derive(Debug, Clone, Default)]
pub struct Item {
    /// Empty: the token itself is the value (GitLab's "JWT reuse").
    pub name: String,
    pub data_key: String,
    pub cert_user_name: String,
    pub public_key_data: String,
    pub csr_data: String,
}

/// Fetch one item with a token: dispatch on its type, then apply
/// `data_key`.
pub async fn fetch(client: &Client, token: &Token, item: &Item) -> Result<SecretString> {
    if item.name.trim().is_empty() {
        return Ok(token.secret().clone());
    }
    let name = item.name.trim();
    let call = |op: &'static str, body: Value| async move {
        client
            .call_with_token(token, op, body)
            .await
            .map_err(|e| AkeylessError::Fetch(format!("{op} {name}: {e}")))
    };
    let described = call("describe-item", json!({"name": name})).await?;
    let item_type = described
        .get("item_type")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let value: Value = match item_type.as_str() {
        "STATIC_SECRET" => {
            let out = call("get-secret-value", json!({"names": [name]})).await?;
            out.get(name)
                .cloned()
                .ok_or_else(|| AkeylessError::Fetch(format!("secret {name} not found")))?
        }
        "DYNAMIC_SECRET" => call("get-dynamic-secret-value", json!({"name": name})).await?,
        "ROTATED_SECRET" => {
            let out = call("get-rotated-secret-value", json!({"names": name})).await?;
            out.get("value").cloned().unwrap_or(out)
        }
        "SSH_CERT_ISSUER" => {
            let out = call(
                "get-ssh-certificate",
                json!({"cert-issuer-name": name, "cert-username": item.cert_user_name,
                       "public-key-data": item.public_key_data}),
            )
            .await?;
            data_field(out, name)?
        }
        "PKI_CERT_ISSUER" => {
            let out = call(
                "get-pki-certificate",
                json!({"cert-issuer-name": name, "csr-data-base64": item.csr_data,
                       "key-data-base64": item.public_key_data}),
            )
            .await?;
            data_field(out, name)?
        }
        other => {
            return Err(AkeylessError::Fetch(format!(
                "unknown item type: {other} ({name})"
            )));
        }
    };
    finish(value, item)
}

/// Fetch several items in one `get-secret-value` call: the fast path when
/// they are all static secrets (one round trip instead of a describe and a
/// get per item). `None` when the call fails as a whole (an item is not a
/// static secret, or is denied): the caller then fetches item by item,
/// which names the failing one.
pub async fn fetch_static_batch(
    client: &Client,
    token: &Token,
    names: &[String],
) -> Option<serde_json::Map<String, Value>> {
    if names.is_empty() {
        return None;
    }
    match client
        .call_with_token(token, "get-secret-value", json!({"names": names}))
        .await
    {
        Ok(Value::Object(map)) if names.iter().all(|n| map.contains_key(n)) => Some(map),
        _ => None,
    }
}

/// The value of a fetched item, with `data_key` applied.
pub fn finish(value: Value, item: &Item) -> Result<SecretString> {
    let text = value_text(value);
    if item.data_key.is_empty() {
        Ok(text)
    } else {
        extract_key(text, &item.data_key)
    }
}

fn data_field(out: Value, name: &str) -> Result<Value> {
    out.get("data")
        .filter(|d| d.as_str().is_some_and(|s| !s.is_empty()))
        .cloned()
        .ok_or_else(|| {
            AkeylessError::Fetch(format!("the certificate response for {name} has no data"))
        })
}

/// A string stays as it is; anything structured becomes its JSON text.
fn value_text(v: Value) -> SecretString {
    match v {
        Value::String(s) => SecretString::from(s),
        other => SecretString::from(other.to_string()),
    }
}

/// `data_key`: the value must be a JSON object; the key's value may be a
/// string (as is), a number or a boolean (as JSON text).
pub fn extract_key(value: SecretString, key: &str) -> Result<SecretString> {
    let parsed: Value = serde_json::from_str(value.expose_secret())
        .map_err(|_| AkeylessError::Fetch("input data is not a valid JSON string".into()))?;
    let Value::Object(map) = parsed else {
        return Err(AkeylessError::Fetch(
            "failed to extract a key out of the json data: the value is not a JSON object".into(),
        ));
    };
    match map.get(key) {
        None => Err(AkeylessError::Fetch(format!(
            "failed to extract a key out of the json data: the key {key} does not exist"
        ))),
        Some(Value::String(s)) => Ok(SecretString::from(s.clone())),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(SecretString::from(v.to_string())),
        Some(_) => Err(AkeylessError::Fetch(format!(
            "failed to extract a key out of the json data: the key {key} is not a string, number or boolean"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_key_extraction() {
        let v = SecretString::from(r#"{"imp":"x","n":12.5,"b":true,"o":{},"z":null}"#.to_owned());
        let get = |k: &str| extract_key(v.clone(), k).map(|s| s.expose_secret().to_owned());
        assert_eq!(get("imp").unwrap(), "x");
        assert_eq!(get("n").unwrap(), "12.5");
        assert_eq!(get("b").unwrap(), "true");
        assert!(get("o").unwrap_err().to_string().contains("not a string"));
        assert!(get("z").is_err());
        assert!(
            get("missing")
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
        let not_json = extract_key(SecretString::from("plain".to_owned()), "k").unwrap_err();
        assert_eq!(
            not_json.to_string(),
            "input data is not a valid JSON string"
        );
    }

    #[test]
    fn structured_values_are_json_text() {
        let v = value_text(json!({"user": "u", "ttl": 60}));
        assert_eq!(v.expose_secret(), r#"{"ttl":60,"user":"u"}"#);
        assert_eq!(value_text(json!("s")).expose_secret(), "s");
    }

    #[test]
    fn cache_keys_separate_credentials_without_holding_them() {
        let login = |k: &str| Login {
            api_url: "http://gw".into(),
            access_id: "p-1".into(),
            access_type: "jwt".into(),
            credential: Credential::Jwt(SecretString::from(k.to_owned())),
            ca_pem: None,
            allow_insecure_http: false,
        };
        assert_eq!(login("a").cache_key(), login("a").cache_key());
        assert_ne!(login("a").cache_key(), login("b").cache_key());
        assert!(!login("secret-jwt").cache_key().contains("secret-jwt"));
    }
}
