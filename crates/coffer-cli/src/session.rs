//! Turning the global flags into a client and a token: the one place that
//! resolves the gateway URL, the CA certificate and the caller's token.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use coffer_client::ops::Auth;
use coffer_client::{AuthOutput, Client, ClientOptions, Operation, Token};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::args::{DEFAULT_GATEWAY_URL, GlobalArgs};
use crate::profile::{CofferHome, Profile};

/// Gateway URL precedence: flag (clap already merged `COFFER_GATEWAY_URL`
/// into it, flag first) > profile > built-in default.
pub(crate) fn resolve_gateway_url(flag_or_env: Option<&str>, profile: Option<&Profile>) -> String {
    flag_or_env
        .filter(|s| !s.trim().is_empty())
        .or_else(|| profile.and_then(|p| p.gateway_url.as_deref()))
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(DEFAULT_GATEWAY_URL)
        .to_string()
}

/// Whether plain `http://` to a host that is not loopback is allowed:
/// `--allow-insecure-http[=BOOL]` (clap merged `COFFER_ALLOW_INSECURE_HTTP`
/// into it, flag first), else the profile's `allow_insecure_http`, which
/// covers only the profile's own gateway (a `--gateway-url` naming another
/// host does not inherit it), else no.
pub(crate) fn resolve_allow_insecure_http(
    flag_or_env: Option<bool>,
    gateway: &str,
    profile: Option<&Profile>,
) -> bool {
    if let Some(allowed) = flag_or_env {
        return allowed;
    }
    let same = |a: &str, b: &str| {
        coffer_client::normalize_base_url(a)
            .ok()
            .zip(coffer_client::normalize_base_url(b).ok())
            .is_some_and(|(a, b)| a == b)
    };
    profile.is_some_and(|p| {
        p.allow_insecure_http && p.gateway_url.as_deref().is_some_and(|u| same(u, gateway))
    })
}

/// CA certificate precedence: flag (or `COFFER_CA_CERT`) > profile.
pub(crate) fn resolve_ca_cert(
    flag_or_env: Option<&Path>,
    profile: Option<&Profile>,
) -> Option<PathBuf> {
    flag_or_env
        .map(Path::to_path_buf)
        .or_else(|| profile.and_then(|p| p.ca_cert.clone()))
}

/// Read `-` as "the value comes from standard input": kept exactly for
/// secret values, trimmed for credentials (`trim`).
pub(crate) fn secret_or_stdin(value: SecretString, trim: bool) -> anyhow::Result<SecretString> {
    if value.expose_secret() != "-" {
        return Ok(value);
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
        .context("cannot read standard input")?;
    if trim {
        Ok(SecretString::from(text.trim()))
    } else {
        Ok(SecretString::from(text))
    }
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A client for the gateway chosen by the global flags, with the profile.
pub(crate) struct Context {
    pub home: CofferHome,
    pub profile_name: String,
    pub profile: Option<Profile>,
    pub client: Client,
    pub json: bool,
}

impl Context {
    pub(crate) fn new(global: &GlobalArgs) -> anyhow::Result<Context> {
        let home = CofferHome::from_env()?;
        let profile = home.read_profile(&global.profile)?;
        let gateway = resolve_gateway_url(global.gateway_url.as_deref(), profile.as_ref());
        let ca_cert_pem =
            match resolve_ca_cert(global.ca_cert.as_deref(), profile.as_ref()) {
                Some(path) => Some(std::fs::read(&path).with_context(|| {
                    format!("cannot read the CA certificate {}", path.display())
                })?),
                None => None,
            };
        let allow_insecure_http =
            resolve_allow_insecure_http(global.allow_insecure_http, &gateway, profile.as_ref());
        let client = Client::new(
            &gateway,
            ClientOptions {
                ca_cert_pem,
                allow_insecure_http,
                ..ClientOptions::default()
            },
        )?;
        Ok(Context {
            home,
            profile_name: global.profile.clone(),
            profile,
            client,
            json: global.json,
        })
    }

    /// Log in, and cache the token for the profile when the login is the
    /// identity the profile names (or there is no such profile yet). A
    /// login as another identity is never cached there: later commands of
    /// that profile would silently run as that identity (an administrator's
    /// profile turned into a CI job's). Returns the raw response too.
    pub(crate) async fn login(&self, request: &Auth) -> anyhow::Result<(Value, AuthOutput)> {
        let raw = self.client.send_value(None, request).await?;
        let out: AuthOutput = coffer_client::decode::<Auth>(raw.clone())?;
        if out.token.expose_secret().is_empty() {
            bail!("the gateway answered auth without a token");
        }
        if let Some(p) = &self.profile
            && p.access_id != request.access_id
        {
            eprintln!(
                "note: not cached for profile {:?}, which logs in as {}: use the token with --token, or save this identity with `coffer configure --profile NAME`",
                self.profile_name, p.access_id
            );
            return Ok((raw, out));
        }
        if let Some(expiry) = out.expires_at() {
            self.home.store_token(
                &self.profile_name,
                self.client.base_url(),
                &request.access_id,
                &out.token,
                expiry,
            )?;
        }
        Ok((raw, out))
    }

    /// Log in with the profile's saved credentials.
    async fn login_with_profile(&self) -> anyhow::Result<SecretString> {
        let Some(profile) = &self.profile else {
            bail!(
                "not logged in: no profile {:?}. Run `coffer configure --profile {} --access-id … --access-key …`, or pass --token",
                self.profile_name,
                self.profile_name
            );
        };
        let Some(key) = &profile.access_key else {
            bail!(
                "profile {:?} has no access key: run `coffer auth` for its access type, or pass --token",
                self.profile_name
            );
        };
        let request = Auth {
            access_id: profile.access_id.clone(),
            access_type: profile.access_type.clone(),
            access_key: Some(key.clone()),
            ..Default::default()
        };
        Ok(self.login(&request).await?.1.token)
    }
}

/// Where the token in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenSource {
    /// `--token` / `--uid-token`: never replaced.
    Explicit,
    /// The profile's token cache: replaced by a new login after a 401.
    Cached,
    /// A login made for this command.
    Fresh,
}

/// A [`Context`] with the caller's token.
pub(crate) struct Session {
    pub ctx: Context,
    token: Token,
    source: TokenSource,
}

impl Session {
    /// Use `--token`/`--uid-token`, else the profile's cached token, else
    /// log in with the profile's credentials.
    pub(crate) async fn open(global: &GlobalArgs) -> anyhow::Result<Session> {
        let ctx = Context::new(global)?;
        let (token, source) = if let Some(t) = &global.token {
            (Token::Session(t.clone()), TokenSource::Explicit)
        } else if let Some(t) = &global.uid_token {
            (Token::Uid(t.clone()), TokenSource::Explicit)
        } else if let Some(t) = ctx.home.cached_token(
            &ctx.profile_name,
            ctx.client.base_url(),
            ctx.profile.as_ref().map(|p| p.access_id.as_str()),
            now_unix(),
        )? {
            (Token::Session(t), TokenSource::Cached)
        } else {
            (
                Token::Session(ctx.login_with_profile().await?),
                TokenSource::Fresh,
            )
        };
        Ok(Session { ctx, token, source })
    }

    /// Send a request with the caller's token; returns the raw JSON. A cached
    /// token the server no longer accepts (401) is dropped and replaced by a
    /// new login, once.
    pub(crate) async fn call<O: Operation>(&mut self, request: &O) -> anyhow::Result<Value> {
        match self.ctx.client.send_value(Some(&self.token), request).await {
            Err(e) if e.is_unauthorized() && self.source == TokenSource::Cached => {
                self.ctx.home.remove_token(&self.ctx.profile_name)?;
                self.token = Token::Session(self.ctx.login_with_profile().await?);
                self.source = TokenSource::Fresh;
                Ok(self
                    .ctx
                    .client
                    .send_value(Some(&self.token), request)
                    .await?)
            }
            other => Ok(other?),
        }
    }

    /// Forget the cached token (after revoking it).
    pub(crate) fn forget_cached_token(&self) -> anyhow::Result<()> {
        if self.source != TokenSource::Explicit {
            self.ctx.home.remove_token(&self.ctx.profile_name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(url: Option<&str>) -> Profile {
        Profile {
            access_id: "p-x".into(),
            access_key: None,
            access_type: "access_key".into(),
            gateway_url: url.map(String::from),
            ca_cert: Some("/etc/profile-ca.pem".into()),
            allow_insecure_http: false,
        }
    }

    #[test]
    fn insecure_http_precedence_and_scope() {
        let mut p = profile(Some("http://10.0.0.5:8200/"));
        let gw = "http://10.0.0.5:8200";
        assert!(!resolve_allow_insecure_http(None, gw, Some(&p)));
        p.allow_insecure_http = true;
        assert!(resolve_allow_insecure_http(None, gw, Some(&p)));
        // The profile's exception covers its own gateway only.
        assert!(!resolve_allow_insecure_http(
            None,
            "http://10.0.0.6:8200",
            Some(&p)
        ));
        // The flag (or COFFER_ALLOW_INSECURE_HTTP) decides when given.
        assert!(!resolve_allow_insecure_http(Some(false), gw, Some(&p)));
        assert!(resolve_allow_insecure_http(
            Some(true),
            "http://10.0.0.6:8200",
            None
        ));
        assert!(!resolve_allow_insecure_http(None, gw, None));
    }

    #[test]
    fn insecure_http_flag_forms() {
        use crate::args::{Cli, Command};
        use clap::Parser;
        let parse = |extra: &[&str]| {
            let mut argv = vec!["coffer", "list-roles"];
            argv.extend(extra);
            let Command::ListRoles(a) = Cli::try_parse_from(argv).unwrap().command else {
                panic!()
            };
            a.global.allow_insecure_http
        };
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(&["--allow-insecure-http"]), Some(true));
        assert_eq!(parse(&["--allow-insecure-http=false"]), Some(false));
        assert_eq!(parse(&["--allow-insecure-http", "--json"]), Some(true));
    }

    #[test]
    fn gateway_precedence() {
        let p = profile(Some("https://from-profile"));
        assert_eq!(
            resolve_gateway_url(Some("https://from-flag"), Some(&p)),
            "https://from-flag"
        );
        assert_eq!(resolve_gateway_url(None, Some(&p)), "https://from-profile");
        assert_eq!(
            resolve_gateway_url(Some(""), Some(&p)),
            "https://from-profile"
        );
        assert_eq!(
            resolve_gateway_url(None, Some(&profile(None))),
            DEFAULT_GATEWAY_URL
        );
        assert_eq!(resolve_gateway_url(None, None), DEFAULT_GATEWAY_URL);
    }

    #[test]
    fn flag_beats_env_beats_profile_via_clap() {
        use crate::args::{Cli, Command};
        use clap::Parser;
        // The flag is what clap hands us when both flag and env are set
        // (clap's documented precedence); the profile only fills a gap.
        let cli = Cli::try_parse_from([
            "coffer",
            "list-roles",
            "--gateway-url",
            "https://flag",
            "--profile",
            "p2",
        ])
        .unwrap();
        let Command::ListRoles(a) = cli.command else {
            panic!()
        };
        let p = profile(Some("https://from-profile"));
        assert_eq!(
            resolve_gateway_url(a.global.gateway_url.as_deref(), Some(&p)),
            "https://flag"
        );
        assert_eq!(a.global.profile, "p2");
    }

    #[test]
    fn ca_cert_precedence() {
        let p = profile(None);
        assert_eq!(
            resolve_ca_cert(Some(Path::new("/flag.pem")), Some(&p)),
            Some(PathBuf::from("/flag.pem"))
        );
        assert_eq!(
            resolve_ca_cert(None, Some(&p)),
            Some(PathBuf::from("/etc/profile-ca.pem"))
        );
        assert_eq!(resolve_ca_cert(None, None), None);
    }
}
