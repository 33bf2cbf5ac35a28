//! `coffer dev oidc`: a local OIDC issuer for trying CI JWT logins on a
//! laptop and for the project's own tests. Loopback only.
//!
//! Serves `/.well-known/openid-configuration`, the JWKS at
//! `/.well-known/jwks.json` (and GitLab's `/oauth/discovery/keys`), and
//! `POST /mint` `{profile: gitlab|github|plain, claims: {k: v}, aud, ttl}`
//! → `{token}`: an RS256 ID token shaped like the chosen CI system's.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// Longest lifetime of a minted token.
pub const MAX_TTL_SECS: i64 = 86_400;

/// An RS256 signing key and its public JWK.
pub struct DevIssuer {
    key: EncodingKey,
    jwk: Value,
    kid: String,
}

/// A jsonwebtoken RSA signing key from PKCS#8 DER.
pub fn rsa_encoding_key(pkcs8_der: &[u8]) -> anyhow::Result<EncodingKey> {
    EncodingKey::from_rsa_pem(pem("PRIVATE KEY", pkcs8_der).as_bytes())
        .context("not an RSA private key")
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn unpem(text: &str) -> anyhow::Result<Vec<u8>> {
    let b64: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    STANDARD
        .decode(b64)
        .context("the key file is not a PEM private key")
}

impl DevIssuer {
    /// A new 2048-bit RSA key.
    pub fn generate() -> anyhow::Result<DevIssuer> {
        Self::from_pkcs8(&Self::new_pkcs8()?)
    }

    fn new_pkcs8() -> anyhow::Result<Vec<u8>> {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| anyhow::anyhow!("cannot generate an RSA key"))?;
        let der: Pkcs8V1Der<'static> = kp
            .as_der()
            .map_err(|_| anyhow::anyhow!("cannot encode the RSA key"))?;
        Ok(der.as_ref().to_vec())
    }

    /// The key in `path` (PKCS#8 PEM), created with mode 0600 if missing.
    pub fn load_or_create(path: &Path) -> anyhow::Result<DevIssuer> {
        if path.exists() {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            return Self::from_pkcs8(&unpem(&text)?)
                .with_context(|| format!("{} is not an RSA private key", path.display()));
        }
        let der = Self::new_pkcs8()?;
        let text = pem("PRIVATE KEY", &der);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        std::io::Write::write_all(&mut f, text.as_bytes())?;
        Self::from_pkcs8(&der)
    }

    fn from_pkcs8(der: &[u8]) -> anyhow::Result<DevIssuer> {
        aws_lc_rs::rsa::KeyPair::from_pkcs8(der)
            .map_err(|_| anyhow::anyhow!("not an RSA private key in PKCS#8 form"))?;
        let key = rsa_encoding_key(der)?;
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, Algorithm::RS256)?)?;
        let n = jwk["n"].as_str().unwrap_or_default().to_owned();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, n.as_bytes());
        let kid = hex::encode(&digest.as_ref()[..8]);
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        Ok(DevIssuer { key, jwk, kid })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    pub fn discovery(&self, issuer_url: &str) -> Value {
        json!({
            "issuer": issuer_url,
            "jwks_uri": format!("{issuer_url}/.well-known/jwks.json"),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
        })
    }

    /// Sign `claims` (with `iss`, `iat`, `nbf`, `exp`, `jti` filled in
    /// unless given) as an RS256 JWT.
    pub fn mint(
        &self,
        issuer_url: &str,
        mut claims: Map<String, Value>,
        ttl_secs: i64,
    ) -> anyhow::Result<String> {
        if !(1..=MAX_TTL_SECS).contains(&ttl_secs) {
            bail!("ttl must be 1 to {MAX_TTL_SECS} seconds");
        }
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut jti = [0u8; 12];
        coffer_crypto::fill_random(&mut jti)?;
        for (k, v) in [
            ("iss", json!(issuer_url)),
            ("iat", json!(now)),
            ("nbf", json!(now)),
            ("exp", json!(now + ttl_secs)),
            ("jti", json!(hex::encode(jti))),
        ] {
            claims.entry(k).or_insert(v);
        }
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}

/// Which CI system's claims to imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    #[default]
    Gitlab,
    Github,
    /// Only the given claims.
    Plain,
}

impl std::str::FromStr for Profile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "gitlab" => Ok(Profile::Gitlab),
            "github" => Ok(Profile::Github),
            "plain" => Ok(Profile::Plain),
            other => Err(format!("profile {other:?}: use gitlab, github or plain")),
        }
    }
}

/// The claims of a token: the profile's defaults, then `overrides`, then
/// `sub` computed from the result as the CI system does (unless given).
/// `exp`, `iat` and `nbf` overrides are numbers (to mint expired tokens).
pub fn profile_claims(
    profile: Profile,
    overrides: &BTreeMap<String, String>,
    aud: &[String],
) -> anyhow::Result<Map<String, Value>> {
    let mut c = Map::new();
    let defaults: &[(&str, &str)] = match profile {
        Profile::Gitlab => &[
            ("namespace_id", "1"),
            ("namespace_path", "group"),
            ("project_id", "1"),
            ("project_path", "group/app"),
            ("user_id", "1"),
            ("user_login", "developer"),
            ("user_email", "developer@example.com"),
            ("pipeline_id", "1"),
            ("pipeline_source", "push"),
            ("job_id", "1"),
            ("ref", "main"),
            ("ref_type", "branch"),
            ("ref_protected", "true"),
        ],
        Profile::Github => &[
            ("repository", "octo-org/app"),
            ("repository_owner", "octo-org"),
            ("ref", "refs/heads/main"),
            ("ref_type", "branch"),
            ("workflow", "ci"),
            ("event_name", "push"),
            ("actor", "developer"),
            ("run_id", "1"),
        ],
        Profile::Plain => &[],
    };
    for (k, v) in defaults {
        c.insert((*k).into(), json!(v));
    }
    for (k, v) in overrides {
        let value = if ["exp", "iat", "nbf"].contains(&k.as_str()) {
            json!(
                v.parse::<i64>()
                    .with_context(|| format!("claim {k} must be a number of seconds"))?
            )
        } else {
            json!(v)
        };
        c.insert(k.clone(), value);
    }
    let s =
        |c: &Map<String, Value>, k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    if !c.contains_key("sub") {
        match profile {
            Profile::Gitlab => {
                let sub = format!(
                    "project_path:{}:ref_type:{}:ref:{}",
                    s(&c, "project_path"),
                    s(&c, "ref_type"),
                    s(&c, "ref")
                );
                c.insert("sub".into(), json!(sub));
            }
            Profile::Github => {
                let sub = format!("repo:{}:ref:{}", s(&c, "repository"), s(&c, "ref"));
                c.insert("sub".into(), json!(sub));
            }
            Profile::Plain => {}
        }
    }
    match aud {
        [] => {}
        [one] => {
            c.insert("aud".into(), json!(one));
        }
        many => {
            c.insert("aud".into(), json!(many));
        }
    }
    Ok(c)
}

struct Served {
    issuer: DevIssuer,
    url: String,
}

/// The issuer's HTTP routes.
pub fn router(issuer: DevIssuer, issuer_url: String) -> Router {
    let state = Arc::new(Served {
        issuer,
        url: issuer_url,
    });
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(|State(s): State<Arc<Served>>| async move {
                axum::Json(s.issuer.discovery(&s.url))
            }),
        )
        .route("/.well-known/jwks.json", get(jwks))
        .route("/oauth/discovery/keys", get(jwks))
        .route("/mint", post(mint))
        .with_state(state)
}

async fn jwks(State(s): State<Arc<Served>>) -> axum::Json<Value> {
    axum::Json(s.issuer.jwks())
}

/// `POST /mint` body.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct MintRequest {
    pub profile: Option<String>,
    pub claims: BTreeMap<String, String>,
    pub aud: Vec<String>,
    pub ttl: Option<i64>,
}

async fn mint(State(s): State<Arc<Served>>, body: axum::body::Bytes) -> Response {
    let result = (|| -> anyhow::Result<String> {
        let req: MintRequest = serde_json::from_slice(&body)
            .context("body must be JSON {profile, claims: {k: \"v\"}, aud: [..], ttl}")?;
        let profile: Profile = req
            .profile
            .as_deref()
            .unwrap_or("gitlab")
            .parse()
            .map_err(anyhow::Error::msg)?;
        let claims = profile_claims(profile, &req.claims, &req.aud)?;
        s.issuer.mint(&s.url, claims, req.ttl.unwrap_or(300))
    })();
    match result {
        Ok(token) => axum::Json(json!({"token": token})).into_response(),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": format!("{e:#}")})),
        )
            .into_response(),
    }
}

/// Run the issuer on `listen` (loopback only) until Ctrl-C / SIGTERM.
pub async fn serve(
    listen: SocketAddr,
    key_file: Option<&Path>,
    issuer_url: Option<String>,
) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        bail!("the dev OIDC issuer only listens on loopback (127.0.0.1 or ::1); {listen} is not");
    }
    let issuer = match key_file {
        Some(p) => DevIssuer::load_or_create(p)?,
        None => DevIssuer::generate()?,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    let url = issuer_url.unwrap_or_else(|| format!("http://{local}"));
    println!("Coffer dev OIDC issuer (for testing only; loopback)");
    println!("  issuer:   {url}");
    println!("  jwks_uri: {url}/.well-known/jwks.json");
    println!("  kid:      {}", issuer.kid());
    println!(
        "Trust it: coffer create-auth-method-oauth2 -n /dev/ci --jwks-uri {url}/.well-known/jwks.json --issuer {url} --audience coffer --unique-identifier user_login"
    );
    println!(
        "Mint a GitLab-shaped token: coffer dev oidc mint --issuer-url {url} --profile gitlab --claim project_path=group/app --aud coffer"
    );
    use std::io::Write as _;
    std::io::stdout().flush().ok();
    axum::serve(listener, router(issuer, url))
        .with_graceful_shutdown(async {
            tokio::signal::ctrl_c().await.ok();
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_and_github_shapes() {
        let o: BTreeMap<String, String> = [("ref".to_string(), "feature".to_string())].into();
        let c = profile_claims(Profile::Gitlab, &o, &["coffer".into()]).unwrap();
        assert_eq!(
            c["sub"],
            "project_path:group/app:ref_type:branch:ref:feature"
        );
        assert_eq!(c["aud"], "coffer");
        let c = profile_claims(Profile::Github, &BTreeMap::new(), &[]).unwrap();
        assert_eq!(c["sub"], "repo:octo-org/app:ref:refs/heads/main");
        assert!(!c.contains_key("aud"));
        let bad: BTreeMap<String, String> = [("exp".to_string(), "x".to_string())].into();
        assert!(profile_claims(Profile::Plain, &bad, &[]).is_err());
    }

    #[test]
    fn minted_tokens_verify_against_the_jwks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let a = DevIssuer::load_or_create(&path).unwrap();
        let b = DevIssuer::load_or_create(&path).unwrap();
        assert_eq!(a.kid(), b.kid(), "the key file is reused");
        let keys = crate::jwt::KeySet::parse(a.jwks().to_string().as_bytes()).unwrap();
        let claims = profile_claims(Profile::Gitlab, &BTreeMap::new(), &["coffer".into()]).unwrap();
        let token = b.mint("http://127.0.0.1:1", claims, 60).unwrap();
        let parsed = crate::jwt::ParsedJwt::parse(&token).unwrap();
        let aud = vec!["coffer".to_string()];
        let v = crate::jwt::verify(
            &parsed,
            &keys,
            &crate::jwt::Expectations {
                unique_identifier: "user_login",
                issuer: Some("http://127.0.0.1:1"),
                audience: &aud,
                leeway_secs: 60,
                now_secs: time::OffsetDateTime::now_utc().unix_timestamp(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(v.identity, "developer");
    }
}
