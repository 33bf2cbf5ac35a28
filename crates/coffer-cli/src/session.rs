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

/// An environment variable's value; `None` when unset, empty or not UTF-8.
pub(crate) fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The gateway of Coffer's own credentials (flags, `COFFER_TOKEN`,
/// `COFFER_ACCESS_*`, the profile): the flag (clap already merged
/// `COFFER_GATEWAY_URL` into it, flag first) > profile > built-in default.
/// `AKEYLESS_GATEWAY_URL` is not one of them: it belongs to the
/// `AKEYLESS_*` credentials only ([`akeyless_gateway_url`]).
pub(crate) fn resolve_gateway_url(flag_or_env: Option<&str>, profile: Option<&Profile>) -> String {
    flag_or_env
        .filter(|s| !s.trim().is_empty())
        .or_else(|| profile.and_then(|p| p.gateway_url.as_deref()))
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(DEFAULT_GATEWAY_URL)
        .to_string()
}

/// The gateway of the `AKEYLESS_*` credentials (`what` names the variable
/// that holds them): `AKEYLESS_GATEWAY_URL`, else an explicit gateway
/// (`--gateway-url` / `COFFER_GATEWAY_URL`), never the profile's and never
/// a default: credentials set for the Akeyless tooling are not sent to a
/// gateway nobody named for them. Both set and different is refused.
pub(crate) fn akeyless_gateway_url(
    flag_or_env: Option<&str>,
    akeyless: Option<&str>,
    what: &str,
) -> anyhow::Result<String> {
    let explicit = flag_or_env.map(str::trim).filter(|s| !s.is_empty());
    let akeyless = akeyless.map(str::trim).filter(|s| !s.is_empty());
    match (akeyless, explicit) {
        (Some(a), Some(e)) if !same_gateway(a, e) => bail!(
            "{what} belongs to AKEYLESS_GATEWAY_URL={a}, not to the gateway {e} (--gateway-url / COFFER_GATEWAY_URL): unset one of them, or unset {what} to use the profile"
        ),
        (Some(url), _) | (None, Some(url)) => Ok(url.to_owned()),
        (None, None) => bail!(
            "{what} is set but AKEYLESS_GATEWAY_URL is not: credentials from AKEYLESS_* variables go only to the gateway named with them (AKEYLESS_GATEWAY_URL, or --gateway-url / COFFER_GATEWAY_URL), never to a profile's. Set one, or unset {what} to use the profile"
        ),
    }
}

/// Whether two gateway URLs name the same API.
fn same_gateway(a: &str, b: &str) -> bool {
    coffer_client::normalize_base_url(a)
        .ok()
        .zip(coffer_client::normalize_base_url(b).ok())
        .is_some_and(|(a, b)| a == b)
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
    profile.is_some_and(|p| {
        p.allow_insecure_http
            && p.gateway_url
                .as_deref()
                .is_some_and(|u| same_gateway(u, gateway))
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
/// secret values, trimmed for credentials (`trim`). A credential typed on
/// a terminal is read as one line without echo.
pub(crate) fn secret_or_stdin(value: SecretString, trim: bool) -> anyhow::Result<SecretString> {
    if value.expose_secret() != "-" {
        return Ok(value);
    }
    if trim && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return read_hidden_line("Enter the credential (input hidden): ");
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

/// Where the credentials in use came from. It decides the gateway they
/// are sent to (each source has its own: docs/cli.md) and whether a login
/// with them is cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Flags (`--token`, `--uid-token`, `coffer auth --access-id …`):
    /// `--gateway-url` / `COFFER_GATEWAY_URL`, else the profile's gateway.
    Flags,
    /// The profile's credentials or cached token: `--gateway-url` /
    /// `COFFER_GATEWAY_URL`, else the profile's gateway.
    Profile,
    /// `COFFER_TOKEN`, `COFFER_ACCESS_*`: as [`Origin::Flags`]; never cached.
    CofferEnv,
    /// `AKEYLESS_TOKEN`, `AKEYLESS_ACCESS_*` (the variable named): only
    /// [`akeyless_gateway_url`]; never cached.
    AkeylessEnv(&'static str),
}

impl Origin {
    /// Credentials from the environment: a login with them is not cached.
    pub(crate) fn is_env(self) -> bool {
        matches!(self, Origin::CofferEnv | Origin::AkeylessEnv(_))
    }

    /// The origin of credentials read from variables with this prefix.
    fn of_env(prefix: &str, akeyless_var: &'static str) -> Origin {
        if prefix == "COFFER" {
            Origin::CofferEnv
        } else {
            Origin::AkeylessEnv(akeyless_var)
        }
    }
}

/// A token from the environment: `COFFER_TOKEN`, else `AKEYLESS_TOKEN`.
pub(crate) fn env_token() -> Option<(SecretString, Origin)> {
    [
        ("COFFER_TOKEN", Origin::CofferEnv),
        ("AKEYLESS_TOKEN", Origin::AkeylessEnv("AKEYLESS_TOKEN")),
    ]
    .into_iter()
    .find_map(|(name, origin)| {
        env_var(name).map(|t| (SecretString::from(t.trim().to_owned()), origin))
    })
}

/// The access ID from the environment: `COFFER_ACCESS_ID`, else
/// `AKEYLESS_ACCESS_ID`; with the prefix of its variables (whose type and
/// key go with it, and only with it) and its origin.
pub(crate) fn env_access_id() -> Option<(&'static str, String, Origin)> {
    [
        ("COFFER", "COFFER_ACCESS_ID"),
        ("AKEYLESS", "AKEYLESS_ACCESS_ID"),
    ]
    .into_iter()
    .find_map(|(prefix, name)| {
        env_var(name).map(|id| (prefix, id.trim().to_owned(), Origin::of_env(prefix, name)))
    })
}

/// API-key credentials from the environment: `COFFER_ACCESS_ID` with
/// `COFFER_ACCESS_KEY` (and `COFFER_ACCESS_TYPE`), else the `AKEYLESS_…`
/// trio. `Ok(None)` when no access ID is set.
pub(crate) fn env_credentials() -> anyhow::Result<Option<(Auth, Origin)>> {
    let Some((prefix, access_id, origin)) = env_access_id() else {
        return Ok(None);
    };
    let access_type = env_var(&format!("{prefix}_ACCESS_TYPE"))
        .unwrap_or_else(crate::profile::default_access_type);
    if !matches!(access_type.as_str(), "access_key" | "api_key") {
        bail!(
            "{prefix}_ACCESS_TYPE={access_type}: commands log in from the environment with an access key only; log in with `coffer auth --access-type {access_type} …` and pass the token in COFFER_TOKEN (or --token)"
        );
    }
    let Some(key) = env_var(&format!("{prefix}_ACCESS_KEY")) else {
        bail!(
            "{prefix}_ACCESS_ID is set but {prefix}_ACCESS_KEY is not: set both (or unset {prefix}_ACCESS_ID to use the profile)"
        );
    };
    Ok(Some((
        Auth {
            access_id,
            access_type,
            access_key: Some(SecretString::from(key.trim().to_owned())),
            ..Default::default()
        },
        origin,
    )))
}

/// The user pressed Ctrl-C at a prompt: exit status 130, as a shell
/// reports a command ended by SIGINT.
#[derive(Debug)]
pub(crate) struct Cancelled;

impl std::fmt::Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cancelled (Ctrl-C)")
    }
}

impl std::error::Error for Cancelled {}

/// What [`edit_line`] read.
#[derive(Debug, PartialEq, Eq)]
enum Typed {
    /// A line (without its end), or what was typed before end of input.
    Line(Vec<u8>),
    /// The interrupt character (Ctrl-C).
    Cancelled,
}

/// The terminal's editing characters, as [`edit_line`] handles them.
struct Keys {
    intr: u8,
    erase: u8,
    kill: u8,
    eof: u8,
}

/// Read one line byte by byte from a terminal in non-canonical mode,
/// doing the editing the terminal would: erase (one character, UTF-8
/// aware), kill (the whole line), end of file, and the interrupt character
/// (also `0x03`) as [`Typed::Cancelled`].
fn edit_line(input: &mut impl std::io::Read, keys: &Keys) -> std::io::Result<Typed> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match input.read(&mut byte) {
            Ok(0) => return Ok(Typed::Line(line)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        match byte[0] {
            b if b == keys.intr || b == 0x03 => {
                zeroize::Zeroize::zeroize(&mut line);
                return Ok(Typed::Cancelled);
            }
            b'\n' | b'\r' => return Ok(Typed::Line(line)),
            b if b == keys.eof => {
                if line.is_empty() {
                    return Ok(Typed::Line(line));
                }
            }
            b if b == keys.erase || b == 0x7f || b == 0x08 => {
                while line.last().is_some_and(|c| c & 0xc0 == 0x80) {
                    line.pop();
                }
                line.pop();
            }
            b if b == keys.kill => zeroize::Zeroize::zeroize(&mut line),
            b => line.push(b),
        }
    }
}

/// Prompt on stderr and read one line from the terminal on stdin with echo
/// off. The terminal's line editing and signals are off too while reading
/// ([`edit_line`] edits, and Ctrl-C arrives as a byte): its settings are
/// restored before returning, also on Ctrl-C ([`Cancelled`]) and on a read
/// error, so the shell is never left without echo.
pub(crate) fn read_hidden_line(prompt: &str) -> anyhow::Result<SecretString> {
    use rustix::termios::{LocalModes, OptionalActions, SpecialCodeIndex, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    eprint!("{prompt}");
    let saved = tcgetattr(&stdin).context("cannot read the terminal's settings")?;
    let mut quiet = saved.clone();
    quiet
        .local_modes
        .remove(LocalModes::ECHO | LocalModes::ICANON | LocalModes::ISIG);
    quiet.special_codes[SpecialCodeIndex::VMIN] = 1;
    quiet.special_codes[SpecialCodeIndex::VTIME] = 0;
    let code = |i: SpecialCodeIndex| saved.special_codes[i];
    let keys = Keys {
        intr: code(SpecialCodeIndex::VINTR),
        erase: code(SpecialCodeIndex::VERASE),
        kill: code(SpecialCodeIndex::VKILL),
        eof: code(SpecialCodeIndex::VEOF),
    };
    tcsetattr(&stdin, OptionalActions::Now, &quiet)
        .context("cannot turn off the terminal's echo")?;
    let read = edit_line(&mut stdin.lock(), &keys);
    let restored = tcsetattr(&stdin, OptionalActions::Now, &saved);
    // The end of the line, which was not echoed.
    eprintln!();
    restored.context("cannot restore the terminal's echo")?;
    match read.context("cannot read standard input")? {
        Typed::Cancelled => Err(Cancelled.into()),
        Typed::Line(mut bytes) => {
            let text = String::from_utf8_lossy(&bytes).trim().to_owned();
            zeroize::Zeroize::zeroize(&mut bytes);
            Ok(SecretString::from(text))
        }
    }
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A client for the gateway of the credentials in use (chosen by their
/// [`Origin`] and the global flags), with the profile.
pub(crate) struct Context {
    pub home: CofferHome,
    pub profile_name: String,
    pub profile: Option<Profile>,
    pub client: Client,
    pub json: bool,
    /// Where the credentials sent through `client` come from.
    pub origin: Origin,
}

impl Context {
    /// For credentials from flags (or none): Coffer's gateway.
    pub(crate) fn new(global: &GlobalArgs) -> anyhow::Result<Context> {
        Context::for_origin(global, Origin::Flags)
    }

    /// For credentials of `origin`, with their own gateway: the
    /// `AKEYLESS_*` ones use nothing of the profile (gateway, CA
    /// certificate, plain-HTTP exception).
    pub(crate) fn for_origin(global: &GlobalArgs, origin: Origin) -> anyhow::Result<Context> {
        let home = CofferHome::from_env()?;
        let profile = home.read_profile(&global.profile)?;
        let (gateway, settings) = match origin {
            Origin::AkeylessEnv(what) => (
                akeyless_gateway_url(
                    global.gateway_url.as_deref(),
                    env_var("AKEYLESS_GATEWAY_URL").as_deref(),
                    what,
                )?,
                None,
            ),
            _ => (
                resolve_gateway_url(global.gateway_url.as_deref(), profile.as_ref()),
                profile.as_ref(),
            ),
        };
        let ca_cert_pem =
            match resolve_ca_cert(global.ca_cert.as_deref(), settings) {
                Some(path) => Some(std::fs::read(&path).with_context(|| {
                    format!("cannot read the CA certificate {}", path.display())
                })?),
                None => None,
            };
        let allow_insecure_http =
            resolve_allow_insecure_http(global.allow_insecure_http, &gateway, settings);
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
            origin,
        })
    }

    /// Log in, and cache the token for the profile when the login is the
    /// identity the profile names (or there is no such profile yet). A
    /// login as another identity is never cached there: later commands of
    /// that profile would silently run as that identity (an administrator's
    /// profile turned into a CI job's). Credentials from the environment
    /// are never cached ([`Origin::is_env`]). Returns the raw response too.
    pub(crate) async fn login(&self, request: &Auth) -> anyhow::Result<(Value, AuthOutput)> {
        let raw = self.client.send_value(None, request).await?;
        let out: AuthOutput = coffer_client::decode::<Auth>(raw.clone())?;
        if out.token.expose_secret().is_empty() {
            bail!("the gateway answered auth without a token");
        }
        if self.origin.is_env() {
            return Ok((raw, out));
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
    /// Precedence: `--token`/`--uid-token`, else `COFFER_TOKEN` /
    /// `AKEYLESS_TOKEN`, else a login with the environment's access ID and
    /// key (`COFFER_ACCESS_ID`…, `AKEYLESS_ACCESS_ID`…; never cached), else
    /// the profile's cached token, else a login with the profile's
    /// credentials. Each goes to its own source's gateway ([`Origin`]).
    pub(crate) async fn open(global: &GlobalArgs) -> anyhow::Result<Session> {
        let (ctx, token, source) = if let Some(t) = &global.token {
            let ctx = Context::for_origin(global, Origin::Flags)?;
            (ctx, Token::Session(t.clone()), TokenSource::Explicit)
        } else if let Some(t) = &global.uid_token {
            let ctx = Context::for_origin(global, Origin::Flags)?;
            (ctx, Token::Uid(t.clone()), TokenSource::Explicit)
        } else if let Some((t, origin)) = env_token() {
            let ctx = Context::for_origin(global, origin)?;
            (ctx, Token::Session(t), TokenSource::Explicit)
        } else if let Some((request, origin)) = env_credentials()? {
            let ctx = Context::for_origin(global, origin)?;
            let token = ctx.login(&request).await?.1.token;
            (ctx, Token::Session(token), TokenSource::Explicit)
        } else {
            let ctx = Context::for_origin(global, Origin::Profile)?;
            if let Some(t) = ctx.home.cached_token(
                &ctx.profile_name,
                ctx.client.base_url(),
                ctx.profile.as_ref().map(|p| p.access_id.as_str()),
                now_unix(),
            )? {
                (ctx, Token::Session(t), TokenSource::Cached)
            } else {
                let token = ctx.login_with_profile().await?;
                (ctx, Token::Session(token), TokenSource::Fresh)
            }
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
    fn akeyless_credentials_go_only_to_their_gateway() {
        let v = "AKEYLESS_ACCESS_ID";
        let ak = Some("https://ak.example:8000/api/v2");
        assert_eq!(
            akeyless_gateway_url(None, ak, v).unwrap(),
            "https://ak.example:8000/api/v2"
        );
        // The same gateway named twice is fine; two different ones are not.
        assert!(akeyless_gateway_url(Some("https://ak.example:8000/api/v2/"), ak, v).is_ok());
        let conflict = akeyless_gateway_url(Some("https://coffer.example"), ak, v).unwrap_err();
        assert!(
            conflict.to_string().contains("AKEYLESS_GATEWAY_URL"),
            "{conflict}"
        );
        // Without AKEYLESS_GATEWAY_URL: an explicit gateway, else refused
        // (never the profile's, never a default).
        assert_eq!(
            akeyless_gateway_url(Some("https://coffer.example"), None, v).unwrap(),
            "https://coffer.example"
        );
        let none = akeyless_gateway_url(Some(" "), None, v).unwrap_err();
        assert!(none.to_string().contains(v), "{none}");
    }

    #[test]
    fn hidden_line_editing_and_ctrl_c() {
        let keys = Keys {
            intr: 0x03,
            erase: 0x7f,
            kill: 0x15,
            eof: 0x04,
        };
        let read = |bytes: &[u8]| edit_line(&mut &bytes[..], &keys).unwrap();
        assert_eq!(read(b"key\n"), Typed::Line(b"key".to_vec()));
        assert_eq!(read(b"key\r"), Typed::Line(b"key".to_vec()));
        assert_eq!(read(b"kez\x7fy\n"), Typed::Line(b"key".to_vec()));
        // Erase removes a whole UTF-8 character.
        assert_eq!(
            read("k\u{e9}\x7fey\n".as_bytes()),
            Typed::Line(b"key".to_vec())
        );
        assert_eq!(read(b"wrong\x15key\n"), Typed::Line(b"key".to_vec()));
        assert_eq!(read(b"ke\x03y\n"), Typed::Cancelled);
        assert_eq!(read(b"\x04"), Typed::Line(Vec::new()));
        assert_eq!(read(b"partial"), Typed::Line(b"partial".to_vec()));
        // Another interrupt character; 0x03 still cancels.
        let other = Keys { intr: 0x18, ..keys };
        assert_eq!(
            edit_line(&mut &b"k\x18"[..], &other).unwrap(),
            Typed::Cancelled
        );
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
