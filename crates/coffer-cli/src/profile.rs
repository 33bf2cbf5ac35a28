//! Local state under the Coffer home (`$COFFER_HOME`, else `~/.coffer`):
//! login profiles (`profiles/<name>.toml`, like `~/.akeyless/profiles`) and
//! cached tokens (`tokens/<name>.json`). Both hold credentials, so files are
//! written 0600 inside 0700 directories, atomically (temp file + rename).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Reuse a cached token only while it has more than this many seconds left.
pub(crate) const TOKEN_REUSE_MARGIN_SECS: i64 = 30;

/// The Coffer home directory.
#[derive(Debug, Clone)]
pub(crate) struct CofferHome {
    root: PathBuf,
}

impl CofferHome {
    /// `$COFFER_HOME`, else `$HOME/.coffer`.
    pub(crate) fn from_env() -> anyhow::Result<CofferHome> {
        if let Some(dir) = std::env::var_os("COFFER_HOME").filter(|v| !v.is_empty()) {
            return Ok(CofferHome::at(dir));
        }
        match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(home) => Ok(CofferHome::at(PathBuf::from(home).join(".coffer"))),
            None => bail!("cannot find the home directory: set HOME or COFFER_HOME"),
        }
    }

    pub(crate) fn at(root: impl Into<PathBuf>) -> CofferHome {
        CofferHome { root: root.into() }
    }

    pub(crate) fn profile_path(&self, name: &str) -> anyhow::Result<PathBuf> {
        check_profile_name(name)?;
        Ok(self.root.join("profiles").join(format!("{name}.toml")))
    }

    pub(crate) fn token_path(&self, name: &str) -> anyhow::Result<PathBuf> {
        check_profile_name(name)?;
        Ok(self.root.join("tokens").join(format!("{name}.json")))
    }

    /// Read a profile; `Ok(None)` when it does not exist.
    pub(crate) fn read_profile(&self, name: &str) -> anyhow::Result<Option<Profile>> {
        let path = self.profile_path(name)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let mut tables: BTreeMap<String, Profile> = toml::from_str(&text)
            .with_context(|| format!("invalid profile file {}", path.display()))?;
        // The table is named after the profile; accept a lone table of another name.
        let profile = match tables.remove(name) {
            Some(p) => p,
            None => {
                let mut rest = tables.into_values();
                match (rest.next(), rest.next()) {
                    (Some(only), None) => only,
                    _ => bail!("profile file {} has no [{name}] table", path.display()),
                }
            }
        };
        Ok(Some(profile))
    }

    pub(crate) fn write_profile(&self, name: &str, profile: &Profile) -> anyhow::Result<PathBuf> {
        let path = self.profile_path(name)?;
        let mut table = toml::Table::new();
        table.insert("access_id".into(), profile.access_id.clone().into());
        if let Some(key) = &profile.access_key {
            table.insert("access_key".into(), key.expose_secret().into());
        }
        table.insert("access_type".into(), profile.access_type.clone().into());
        if let Some(url) = &profile.gateway_url {
            table.insert("gateway_url".into(), url.clone().into());
        }
        if let Some(ca) = &profile.ca_cert {
            table.insert("ca_cert".into(), ca.display().to_string().into());
        }
        if profile.allow_insecure_http {
            table.insert("allow_insecure_http".into(), true.into());
        }
        let mut doc = toml::Table::new();
        doc.insert(name.to_string(), table.into());
        let text = toml::to_string(&doc).context("cannot encode the profile")?;
        write_private(&path, text.as_bytes())?;
        // New credentials: a token cached for the old ones must not be reused.
        self.remove_token(name)?;
        Ok(path)
    }

    /// Remove a profile and its cached token; false when there was none.
    pub(crate) fn remove_profile(&self, name: &str) -> anyhow::Result<bool> {
        let path = self.profile_path(name)?;
        self.remove_token(name)?;
        remove_if_exists(&path)
    }

    /// A cached token for `gateway_url` with more than
    /// [`TOKEN_REUSE_MARGIN_SECS`] left at `now` (Unix seconds).
    /// The profile's cached token for `gateway_url`, unless it expires
    /// soon or belongs to another identity than `access_id` (the profile's;
    /// `None` when there is no profile to compare with).
    pub(crate) fn cached_token(
        &self,
        name: &str,
        gateway_url: &str,
        access_id: Option<&str>,
        now: i64,
    ) -> anyhow::Result<Option<SecretString>> {
        let path = self.token_path(name)?;
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        // A corrupt cache is not an error: log in again.
        let Ok(cached) = serde_json::from_str::<CachedToken>(&text) else {
            return Ok(None);
        };
        let usable = cached.gateway_url == gateway_url
            && access_id.is_none_or(|a| a == cached.access_id)
            && cached.expiry - TOKEN_REUSE_MARGIN_SECS > now
            && !cached.token.expose_secret().is_empty();
        Ok(usable.then_some(cached.token))
    }

    /// Cache a token for a profile until `expiry` (Unix seconds).
    pub(crate) fn store_token(
        &self,
        name: &str,
        gateway_url: &str,
        access_id: &str,
        token: &SecretString,
        expiry: i64,
    ) -> anyhow::Result<()> {
        let path = self.token_path(name)?;
        let text = serde_json::json!({
            "token": token.expose_secret(),
            "expiry": expiry,
            "gateway_url": gateway_url,
            "access_id": access_id,
        })
        .to_string();
        write_private(&path, text.as_bytes())
    }

    pub(crate) fn remove_token(&self, name: &str) -> anyhow::Result<()> {
        remove_if_exists(&self.token_path(name)?).map(drop)
    }
}

/// A login profile.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Profile {
    pub access_id: String,
    #[serde(default)]
    pub access_key: Option<SecretString>,
    #[serde(default = "default_access_type")]
    pub access_type: String,
    #[serde(default)]
    pub gateway_url: Option<String>,
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// The profile's gateway may be plain `http://` to a host that is not
    /// loopback (`coffer configure --allow-insecure-http`).
    #[serde(default)]
    pub allow_insecure_http: bool,
}

pub(crate) fn default_access_type() -> String {
    "access_key".to_string()
}

#[derive(Deserialize)]
struct CachedToken {
    token: SecretString,
    expiry: i64,
    gateway_url: String,
    /// Whose token it is (absent in caches written by older versions).
    #[serde(default)]
    access_id: String,
}

/// Profile names become file names: keep them to a safe alphabet.
fn check_profile_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        bail!(
            "invalid profile name {name:?}: use letters, digits, '-', '_' and '.' (at most 64, not starting with '.')"
        );
    }
    Ok(())
}

fn remove_if_exists(path: &Path) -> anyhow::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// Create `dir` (and missing parents) as 0700. With `enforce`, also make an
/// existing `dir` 0700 (only for Coffer's own sub-directories, never for a
/// home directory the user pointed us at).
fn ensure_private_dir(dir: &Path, enforce: bool) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    #[cfg(unix)]
    if enforce {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot set permissions on {}", dir.display()))?;
    }
    #[cfg(not(unix))]
    let _ = enforce;
    Ok(())
}

/// Write a file readable by its owner only, atomically.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().context("a file path has a parent")?;
    if let Some(home) = dir.parent() {
        ensure_private_dir(home, false)?;
    }
    ensure_private_dir(dir, true)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    std::fs::remove_file(&tmp).ok();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        std::fs::remove_file(&tmp).ok();
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile {
            access_id: "p-abcdefghijal".into(),
            access_key: Some(SecretString::from("key-123")),
            access_type: "access_key".into(),
            gateway_url: Some("http://127.0.0.1:8200".into()),
            ca_cert: None,
            allow_insecure_http: false,
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn profile_round_trip_with_private_modes() {
        let dir = tempfile::tempdir().unwrap();
        let home = CofferHome::at(dir.path().join("home"));
        assert!(home.read_profile("ci").unwrap().is_none());
        let path = home.write_profile("ci", &profile()).unwrap();
        #[cfg(unix)]
        {
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
            assert_eq!(mode(&dir.path().join("home")), 0o700);
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("[ci]"), "{text}");
        assert!(text.contains("access_id = \"p-abcdefghijal\""), "{text}");
        let back = home.read_profile("ci").unwrap().unwrap();
        assert!(!back.allow_insecure_http);
        assert!(!text.contains("allow_insecure_http"), "{text}");
        assert_eq!(back.access_id, "p-abcdefghijal");
        assert_eq!(back.access_key.unwrap().expose_secret(), "key-123");
        assert_eq!(back.gateway_url.as_deref(), Some("http://127.0.0.1:8200"));
        assert!(!format!("{:?}", home.read_profile("ci").unwrap()).contains("key-123"));
        // Overwrite keeps 0600, and unconfigure removes it.
        home.write_profile("ci", &profile()).unwrap();
        #[cfg(unix)]
        assert_eq!(mode(&path), 0o600);
        assert!(home.remove_profile("ci").unwrap());
        assert!(!home.remove_profile("ci").unwrap());
    }

    #[test]
    fn reads_akeyless_style_files() {
        let dir = tempfile::tempdir().unwrap();
        let home = CofferHome::at(dir.path());
        let path = home.profile_path("default").unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            "[\"default\"]\naccess_id = 'p-x'\naccess_key = 'k'\naccess_type = 'access_key'\ngateway_url = 'https://gw/api/v2'\nextra = 1\n",
        )
        .unwrap();
        let p = home.read_profile("default").unwrap().unwrap();
        assert_eq!(p.access_id, "p-x");
        assert_eq!(p.gateway_url.as_deref(), Some("https://gw/api/v2"));
    }

    #[test]
    fn profile_names_cannot_escape_the_directory() {
        let home = CofferHome::at("/tmp/x");
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(home.profile_path(bad).is_err(), "{bad}");
        }
        assert!(home.profile_path("ci-prod_2.eu").is_ok());
    }

    #[test]
    fn token_cache_expiry_margin_and_gateway_binding() {
        let dir = tempfile::tempdir().unwrap();
        let home = CofferHome::at(dir.path());
        let gw = "http://127.0.0.1:8200";
        assert!(
            home.cached_token("default", gw, None, 1000)
                .unwrap()
                .is_none()
        );
        home.store_token("default", gw, "p-one", &SecretString::from("t-1"), 2000)
            .unwrap();
        #[cfg(unix)]
        assert_eq!(mode(&home.token_path("default").unwrap()), 0o600);
        let hit = home.cached_token("default", gw, None, 1000).unwrap();
        assert_eq!(hit.unwrap().expose_secret(), "t-1");
        // Exactly at the margin: no longer reused.
        assert!(
            home.cached_token("default", gw, None, 1969)
                .unwrap()
                .is_some()
        );
        assert!(
            home.cached_token("default", gw, None, 1970)
                .unwrap()
                .is_none()
        );
        assert!(
            home.cached_token("default", gw, None, 3000)
                .unwrap()
                .is_none()
        );
        // Never sent to another gateway.
        assert!(
            home.cached_token("default", "https://other", None, 1000)
                .unwrap()
                .is_none()
        );
        // Only for the identity it was issued to.
        assert!(
            home.cached_token("default", gw, Some("p-one"), 1000)
                .unwrap()
                .is_some()
        );
        assert!(
            home.cached_token("default", gw, Some("p-other"), 1000)
                .unwrap()
                .is_none()
        );
        // Reconfiguring the profile drops the cached token.
        home.write_profile("default", &profile()).unwrap();
        assert!(
            home.cached_token("default", gw, None, 1000)
                .unwrap()
                .is_none()
        );
        // A corrupt cache means "log in again", not an error.
        std::fs::write(home.token_path("default").unwrap(), "{").unwrap();
        assert!(
            home.cached_token("default", gw, None, 1000)
                .unwrap()
                .is_none()
        );
    }
}
