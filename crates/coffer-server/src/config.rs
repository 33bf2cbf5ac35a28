//! Server configuration: command-line flags, `COFFER_*` environment
//! variables and an optional TOML file, in that order of precedence.
//! `--dev` fills in safe local defaults; without it, anything missing or
//! unsafe stops the server with a message that says what to set.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;

/// `coffer server` flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// Local development mode: SQLite and a root key file in --data-dir,
    /// loopback only, bootstrap admin printed on first start.
    #[arg(long)]
    pub dev: bool,
    /// Data directory (dev mode default: ./.coffer-dev).
    #[arg(long, env = "COFFER_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8200).
    #[arg(long, env = "COFFER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// TOML configuration file.
    #[arg(long, env = "COFFER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Storage URL: sqlite:///path/coffer.db or postgres://user@host/db.
    #[arg(long, env = "COFFER_STORAGE_URL", hide_env_values = true)]
    pub storage: Option<String>,
    /// File holding the 256-bit root key (hex or base64, mode 0600).
    #[arg(long, env = "COFFER_ROOT_KEY_FILE")]
    pub root_key_file: Option<PathBuf>,
    /// Command whose standard output is the root key (e.g. a KMS or vault CLI).
    #[arg(long, env = "COFFER_ROOT_KEY_COMMAND")]
    pub root_key_command: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "COFFER_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "COFFER_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (behind a TLS proxy).
    #[arg(long, env = "COFFER_ALLOW_INSECURE_HTTP")]
    pub allow_insecure_http: bool,
    /// Default token lifetime in seconds (default 3600).
    #[arg(long, env = "COFFER_TOKEN_TTL")]
    pub token_ttl: Option<i64>,
    /// Longest token lifetime an auth method may ask for, in seconds (default 86400).
    #[arg(long, env = "COFFER_MAX_TOKEN_TTL")]
    pub max_token_ttl: Option<i64>,
    /// Log format: text or json.
    #[arg(long, env = "COFFER_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Clock skew allowed on JWT exp/nbf/iat, in seconds (default 60).
    #[arg(long, env = "COFFER_JWT_LEEWAY")]
    pub jwt_leeway: Option<u64>,
    /// Most open client connections (default: what the file limit allows,
    /// keeping descriptors for storage and logs; at most 10000). When full,
    /// the oldest connections without a request in progress are closed to
    /// make room.
    #[arg(long, env = "COFFER_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most open connections from one address (default: half of
    /// --max-connections).
    #[arg(long, env = "COFFER_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Seconds a client has to send a request's headers; also how long an
    /// idle keep-alive connection stays open (default 30).
    #[arg(long, env = "COFFER_HEADER_TIMEOUT")]
    pub header_timeout: Option<u64>,
    /// Seconds a client has to send a request's body (default 30).
    #[arg(long, env = "COFFER_BODY_TIMEOUT")]
    pub body_timeout: Option<u64>,
    /// Seconds before a client gets 503 for a request still running (the
    /// request itself goes on and is audited; default 60).
    #[arg(long, env = "COFFER_REQUEST_TIMEOUT")]
    pub request_timeout: Option<u64>,
    /// Most requests in progress at once (default 4096): requests run to
    /// completion even when their client leaves, so this bounds the work a
    /// client that keeps reconnecting can leave behind. Beyond it: 503.
    #[arg(long, env = "COFFER_MAX_REQUESTS_IN_FLIGHT")]
    pub max_requests_in_flight: Option<usize>,
    /// Serve Prometheus metrics at /metrics on the main listener
    /// (`--metrics`, or `--metrics=false`). Default: on with --dev unless
    /// --metrics-listen is given, off otherwise.
    #[arg(long, env = "COFFER_METRICS", num_args = 0..=1, default_missing_value = "true")]
    pub metrics: Option<bool>,
    /// Serve /metrics and the health routes on this address too, plain
    /// HTTP (e.g. 127.0.0.1:9200). A non-loopback address also needs
    /// --metrics-allow-remote.
    #[arg(long, env = "COFFER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Allow --metrics-listen on a non-loopback address: anyone who reaches
    /// it reads request rates, operation names and the version, without
    /// authentication.
    #[arg(long, env = "COFFER_METRICS_ALLOW_REMOTE")]
    pub metrics_allow_remote: bool,
    /// File the audit chain head is appended to periodically (JSON lines):
    /// a copy outside the database that `audit verify` checks the chain
    /// against. Put it where the database's users cannot rewrite it.
    #[arg(long, env = "COFFER_AUDIT_ANCHOR_FILE")]
    pub audit_anchor_file: Option<PathBuf>,
    /// Seconds between audit anchors (default 60; the head is also logged).
    #[arg(long, env = "COFFER_AUDIT_ANCHOR_INTERVAL")]
    pub audit_anchor_interval: Option<u64>,
    /// Delete audit records older than this (e.g. 90d, 12h, 30m, 45s),
    /// keeping a signed checkpoint so `audit verify` still proves the rest.
    /// Default: keep forever.
    #[arg(long, env = "COFFER_AUDIT_RETENTION")]
    pub audit_retention: Option<String>,
    /// Seconds between two retention runs (default 600).
    #[arg(long, env = "COFFER_AUDIT_PRUNE_INTERVAL")]
    pub audit_prune_interval: Option<u64>,
    /// Stream every committed audit record as one JSON line to this file
    /// (mode 0600, rotated by size), or to standard output with `-`
    /// (start-up lines then go to standard error). The database log stays
    /// the authoritative one; see docs/operations.md.
    #[arg(long, env = "COFFER_AUDIT_FILE")]
    pub audit_file: Option<PathBuf>,
    /// Size in bytes at which --audit-file is rotated (default 104857600).
    #[arg(long, env = "COFFER_AUDIT_FILE_MAX_BYTES")]
    pub audit_file_max_bytes: Option<u64>,
    /// Rotated audit files kept: PATH.1 (newest) … PATH.N (default 5).
    #[arg(long, env = "COFFER_AUDIT_FILE_KEEP")]
    pub audit_file_keep: Option<usize>,
    /// Unauthenticated failures recorded one by one per source address,
    /// operation and status in each --audit-failure-window (default 10;
    /// 5× that per real access ID); further ones are counted into one
    /// aggregate record per window.
    #[arg(long, env = "COFFER_AUDIT_FAILURE_BURST")]
    pub audit_failure_burst: Option<u32>,
    /// Seconds of one aggregation window for unauthenticated failures
    /// (default 60).
    #[arg(long, env = "COFFER_AUDIT_FAILURE_WINDOW")]
    pub audit_failure_window: Option<u64>,
    /// On first start without --dev: write the bootstrap admin's
    /// credentials to this new file (mode 0600; an existing file is
    /// refused) instead of printing them. Without it, a non-dev first start
    /// shows them only on a terminal and otherwise refuses to start.
    #[arg(long, env = "COFFER_BOOTSTRAP_FILE")]
    pub bootstrap_file: Option<PathBuf>,
    /// Microsoft Entra ID authority for Azure dynamic secrets (default
    /// https://login.microsoftonline.com; national clouds differ). HTTPS,
    /// or HTTP to a loopback address.
    #[arg(long, env = "COFFER_AZURE_LOGIN_URL")]
    pub azure_login_url: Option<String>,
    /// Microsoft Graph endpoint for Azure dynamic secrets (default
    /// https://graph.microsoft.com). HTTPS, or HTTP to a loopback address.
    #[arg(long, env = "COFFER_AZURE_GRAPH_URL")]
    pub azure_graph_url: Option<String>,
    /// Milliseconds within which a change made on another node (a revoked
    /// token, a policy change, a deleted or updated secret) takes effect on
    /// this one: how often the store's generation is polled and how long
    /// items are cached (default 1000, 50 to 60000). Lower is stricter and
    /// costs more store queries; see docs/operations.md.
    #[arg(long, env = "COFFER_SYNC_INTERVAL_MS")]
    pub sync_interval_ms: Option<u64>,
}

/// The TOML file: the same settings, snake_case.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    storage: Option<String>,
    root_key_file: Option<PathBuf>,
    root_key_command: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    allow_insecure_http: Option<bool>,
    token_ttl: Option<i64>,
    max_token_ttl: Option<i64>,
    log_format: Option<String>,
    max_body_bytes: Option<usize>,
    max_value_bytes: Option<usize>,
    jwt_leeway: Option<u64>,
    jwks_cache_ttl: Option<u64>,
    jwks_refetch_interval: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_ip: Option<usize>,
    header_timeout: Option<u64>,
    body_timeout: Option<u64>,
    request_timeout: Option<u64>,
    max_requests_in_flight: Option<usize>,
    metrics: Option<bool>,
    metrics_listen: Option<SocketAddr>,
    metrics_allow_remote: Option<bool>,
    audit_anchor_file: Option<PathBuf>,
    audit_anchor_interval: Option<u64>,
    audit_retention: Option<String>,
    audit_prune_interval: Option<u64>,
    audit_file: Option<PathBuf>,
    audit_file_max_bytes: Option<u64>,
    audit_file_keep: Option<usize>,
    audit_failure_burst: Option<u32>,
    audit_failure_window: Option<u64>,
    azure_login_url: Option<String>,
    azure_graph_url: Option<String>,
    bootstrap_file: Option<PathBuf>,
    sync_interval_ms: Option<u64>,
}

/// Where the root key comes from.
#[derive(Debug, Clone)]
pub enum RootKeySource {
    /// `COFFER_ROOT_KEY` (hex or base64); read once at start-up.
    Env,
    /// A pipe the process was given by [`crate::scrub_root_key_env`] after
    /// it took `COFFER_ROOT_KEY` out of the environment (`COFFER_ROOT_KEY_FD`).
    Fd(u32),
    File {
        path: PathBuf,
        create: bool,
    },
    Command(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub dev: bool,
    /// `/metrics` on the main listener.
    pub metrics: bool,
    /// A separate plain-HTTP listener for `/metrics` and the health routes.
    pub metrics_listen: Option<SocketAddr>,
    pub listen: SocketAddr,
    pub data_dir: Option<PathBuf>,
    pub storage_url: String,
    pub root_key: RootKeySource,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub token_ttl_secs: i64,
    pub max_token_ttl_secs: i64,
    pub log_format: LogFormat,
    pub max_body_bytes: usize,
    pub max_value_bytes: usize,
    /// Clock skew allowed on JWT exp/nbf/iat.
    pub jwt_leeway_secs: u64,
    /// How long a fetched JWKS is used.
    pub jwks_cache_ttl_secs: u64,
    /// Least time between two fetches of one JWKS (unknown kid, failures).
    pub jwks_refetch_secs: u64,
    /// Connection limits (None: derived from the file limit at start).
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    /// Time to send request headers; also the keep-alive idle timeout.
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub request_timeout: Duration,
    pub max_requests_in_flight: usize,
    pub audit_anchor_file: Option<PathBuf>,
    pub audit_anchor_interval: Duration,
    /// `--audit-retention`: records older than this are pruned (None: kept).
    pub audit_retention: Option<Duration>,
    pub audit_prune_interval: Duration,
    /// `--audit-file`: where committed records are streamed, if anywhere.
    pub audit_stream: Option<crate::audit_sink::Target>,
    /// Aggregation of unauthenticated failures.
    pub audit_flood: crate::audit_flood::FloodConfig,
    /// Entra ID authority and Graph endpoint (Azure dynamic secrets).
    pub azure_login_url: String,
    pub azure_graph_url: String,
    /// Where a first start writes the bootstrap admin's credentials.
    pub bootstrap_file: Option<PathBuf>,
    /// Bound on how stale this node's view of other nodes' changes may be
    /// (generation poll period and item cache lifetime).
    pub sync_interval: Duration,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8200";

impl Config {
    /// Resolve flags (already merged with env by clap) and the TOML file.
    pub fn resolve(args: &ServerArgs) -> anyhow::Result<Config> {
        let file: FileConfig = match &args.config {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("invalid config file {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let dev = args.dev;
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .or_else(|| dev.then(|| PathBuf::from(".coffer-dev")));
        let listen = args.listen.or(file.listen).unwrap_or(SocketAddr::new(
            std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            8200,
        ));
        let storage_url = match args.storage.clone().or(file.storage) {
            Some(s) => s,
            None => match &data_dir {
                Some(d) => sqlite_url(&d.join("coffer.db")),
                None => bail!(
                    "no storage configured: set --storage / COFFER_STORAGE_URL (sqlite:///path/coffer.db or postgres://…) or --data-dir, or use --dev"
                ),
            },
        };
        let key_fd = match std::env::var("COFFER_ROOT_KEY_FD") {
            Ok(v) => Some(v.trim().parse::<u32>().context(
                "COFFER_ROOT_KEY_FD must be a file descriptor number (it is set by coffer itself)",
            )?),
            Err(_) => None,
        };
        let env_key = std::env::var_os("COFFER_ROOT_KEY").is_some() || key_fd.is_some();
        let key_file = args.root_key_file.clone().or(file.root_key_file);
        let key_cmd = args.root_key_command.clone().or(file.root_key_command);
        let sources =
            usize::from(env_key) + usize::from(key_file.is_some()) + usize::from(key_cmd.is_some());
        if sources > 1 {
            bail!(
                "more than one root key source: set only one of COFFER_ROOT_KEY, --root-key-file, --root-key-command"
            );
        }
        let root_key = if let Some(fd) = key_fd {
            RootKeySource::Fd(fd)
        } else if env_key {
            RootKeySource::Env
        } else if let Some(path) = key_file {
            RootKeySource::File {
                path,
                create: false,
            }
        } else if let Some(cmd) = key_cmd {
            RootKeySource::Command(cmd)
        } else if let Some(d) = &data_dir {
            if !dev {
                bail!(
                    "no root key configured: set COFFER_ROOT_KEY, --root-key-file or --root-key-command (only --dev creates one automatically)"
                );
            }
            RootKeySource::File {
                path: d.join("root.key"),
                create: true,
            }
        } else {
            bail!(
                "no root key configured: set COFFER_ROOT_KEY, --root-key-file or --root-key-command"
            );
        };
        let tls = match (
            args.tls_cert.clone().or(file.tls_cert),
            args.tls_key.clone().or(file.tls_key),
        ) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => bail!("TLS needs both --tls-cert and --tls-key"),
        };
        let allow_insecure = args.allow_insecure_http || file.allow_insecure_http.unwrap_or(false);
        if tls.is_none() && !listen.ip().is_loopback() && !allow_insecure {
            bail!(
                "refusing to serve plain HTTP on {listen}: secrets would cross the network unencrypted. Set --tls-cert and --tls-key, listen on 127.0.0.1, or pass --allow-insecure-http when a TLS proxy terminates in front of Coffer"
            );
        }
        if dev && !listen.ip().is_loopback() {
            bail!(
                "--dev only listens on loopback addresses (127.0.0.1 or ::1); {listen} is not one"
            );
        }
        let token_ttl_secs = args.token_ttl.or(file.token_ttl).unwrap_or(3600);
        let max_token_ttl_secs = args.max_token_ttl.or(file.max_token_ttl).unwrap_or(86_400);
        if token_ttl_secs < 1 || max_token_ttl_secs < token_ttl_secs {
            bail!("token TTLs must be positive and token_ttl <= max_token_ttl");
        }
        let log_format = match args
            .log_format
            .clone()
            .or(file.log_format)
            .as_deref()
            .unwrap_or("text")
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => bail!("log format must be text or json, not {other:?}"),
        };
        let metrics_listen = args.metrics_listen.or(file.metrics_listen);
        if let Some(addr) = metrics_listen {
            let allow_remote =
                args.metrics_allow_remote || file.metrics_allow_remote.unwrap_or(false);
            if !addr.ip().is_loopback() && (dev || !allow_remote) {
                bail!(
                    "refusing to serve metrics on {addr} without authentication: listen on a loopback address, or pass --metrics-allow-remote (not with --dev) when only your scrapers can reach it"
                );
            }
            if addr == listen {
                bail!("--metrics-listen {addr} is the main listener's address: pick another port");
            }
        }
        let metrics = args
            .metrics
            .or(file.metrics)
            .unwrap_or(dev && metrics_listen.is_none());
        Ok(Config {
            dev,
            metrics,
            metrics_listen,
            listen,
            data_dir,
            storage_url,
            root_key,
            tls,
            token_ttl_secs,
            max_token_ttl_secs,
            log_format,
            max_body_bytes: file.max_body_bytes.unwrap_or(1024 * 1024),
            max_value_bytes: file.max_value_bytes.unwrap_or(64 * 1024),
            jwt_leeway_secs: args.jwt_leeway.or(file.jwt_leeway).unwrap_or(60).min(3600),
            jwks_cache_ttl_secs: file.jwks_cache_ttl.unwrap_or(600).max(1),
            jwks_refetch_secs: file.jwks_refetch_interval.unwrap_or(30),
            max_connections: positive(
                "max-connections",
                args.max_connections.or(file.max_connections),
            )?,
            max_connections_per_ip: positive(
                "max-connections-per-ip",
                args.max_connections_per_ip.or(file.max_connections_per_ip),
            )?,
            header_timeout: seconds(
                "header-timeout",
                args.header_timeout.or(file.header_timeout),
                30,
            )?,
            body_timeout: seconds("body-timeout", args.body_timeout.or(file.body_timeout), 30)?,
            request_timeout: seconds(
                "request-timeout",
                args.request_timeout.or(file.request_timeout),
                60,
            )?,
            max_requests_in_flight: positive(
                "max-requests-in-flight",
                args.max_requests_in_flight.or(file.max_requests_in_flight),
            )?
            .unwrap_or(4096),
            azure_login_url: endpoint_url(
                "azure-login-url",
                args.azure_login_url.clone().or(file.azure_login_url),
                "https://login.microsoftonline.com",
            )?,
            azure_graph_url: endpoint_url(
                "azure-graph-url",
                args.azure_graph_url.clone().or(file.azure_graph_url),
                "https://graph.microsoft.com",
            )?,
            sync_interval: sync_interval(args.sync_interval_ms.or(file.sync_interval_ms))?,
            bootstrap_file: args.bootstrap_file.clone().or(file.bootstrap_file),
            audit_anchor_file: args.audit_anchor_file.clone().or(file.audit_anchor_file),
            audit_anchor_interval: seconds(
                "audit-anchor-interval",
                args.audit_anchor_interval.or(file.audit_anchor_interval),
                60,
            )?,
            audit_retention: crate::retention::parse_retention(
                args.audit_retention
                    .as_deref()
                    .or(file.audit_retention.as_deref()),
            )?,
            audit_prune_interval: seconds(
                "audit-prune-interval",
                args.audit_prune_interval.or(file.audit_prune_interval),
                600,
            )?,
            audit_stream: crate::audit_sink::Target::resolve(
                args.audit_file.as_deref().or(file.audit_file.as_deref()),
                args.audit_file_max_bytes.or(file.audit_file_max_bytes),
                args.audit_file_keep.or(file.audit_file_keep),
            )?,
            audit_flood: crate::audit_flood::FloodConfig::new(
                args.audit_failure_burst
                    .or(file.audit_failure_burst)
                    .unwrap_or(10),
                seconds(
                    "audit-failure-window",
                    args.audit_failure_window.or(file.audit_failure_window),
                    60,
                )?,
            ),
        })
    }
}

/// `--sync-interval-ms`: 50 ms to 60 s, 1 s when not given.
fn sync_interval(v: Option<u64>) -> anyhow::Result<Duration> {
    let ms = v.unwrap_or(1000);
    if !(50..=60_000).contains(&ms) {
        bail!("sync-interval-ms is in milliseconds, from 50 to 60000 (not {ms})");
    }
    Ok(Duration::from_millis(ms))
}

/// A count setting that must be at least 1 when given.
fn positive(name: &str, v: Option<usize>) -> anyhow::Result<Option<usize>> {
    match v {
        Some(0) => bail!("{name} must be at least 1"),
        other => Ok(other),
    }
}

/// A duration setting in seconds: 1 to 3600, `default` when not given.
fn seconds(name: &str, v: Option<u64>, default: u64) -> anyhow::Result<Duration> {
    let secs = v.unwrap_or(default);
    if !(1..=3600).contains(&secs) {
        bail!("{name} is in seconds, from 1 to 3600 (not {secs})");
    }
    Ok(Duration::from_secs(secs))
}

/// `sqlite://` URL for a filesystem path.
pub fn sqlite_url(path: &Path) -> String {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    };
    format!("sqlite://{}", abs.display())
}

/// An HTTPS endpoint (or HTTP to loopback, for tests and local stubs),
/// without a trailing slash.
fn endpoint_url(what: &str, given: Option<String>, default: &str) -> anyhow::Result<String> {
    let url = given.unwrap_or_else(|| default.to_owned());
    let url = url.trim_end_matches('/').to_owned();
    let parsed =
        reqwest::Url::parse(&url).with_context(|| format!("{what}: {url:?} is not a URL"))?;
    let loopback_http = parsed.scheme() == "http"
        && parsed.host_str().is_some_and(|h| {
            h == "localhost"
                || h.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
    if parsed.scheme() != "https" && !loopback_http {
        bail!("{what} must be an https:// URL (http:// only to a loopback address), not {url:?}");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_interval_bounds() {
        let with = |ms| {
            Config::resolve(&ServerArgs {
                dev: true,
                sync_interval_ms: Some(ms),
                ..Default::default()
            })
        };
        assert_eq!(with(50).unwrap().sync_interval, Duration::from_millis(50));
        assert_eq!(with(60_000).unwrap().sync_interval, Duration::from_secs(60));
        for bad in [0, 49, 60_001] {
            let err = with(bad).unwrap_err().to_string();
            assert!(
                err.contains("sync-interval-ms") && err.contains("50 to 60000"),
                "{err}"
            );
        }
    }

    /// The example configurations in deploy/ are valid and mean what
    /// docs/operations.md says.
    #[test]
    fn deploy_examples_resolve() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/two-nodes");
        for (file, listen) in [
            ("node-a.toml", "10.0.0.11:8200"),
            ("node-b.toml", "10.0.0.12:8200"),
        ] {
            let c = Config::resolve(&ServerArgs {
                config: Some(root.join(file)),
                root_key_file: Some("/run/credentials/coffer.service/root.key".into()),
                // The example's /var/log/coffer does not exist here: the
                // flag overrides the file, as on a command line.
                audit_file: Some(std::env::temp_dir().join("coffer-deploy-test-audit.jsonl")),
                ..Default::default()
            })
            .unwrap_or_else(|e| panic!("deploy/two-nodes/{file}: {e:#}"));
            assert_eq!(c.listen.to_string(), listen);
            assert!(
                c.tls.is_some(),
                "{file}: the proxy reaches the node over TLS"
            );
            assert!(c.storage_url.starts_with("postgres://"));
            assert_eq!(c.sync_interval, Duration::from_secs(1));
            assert!(!c.dev);
        }
    }

    #[test]
    fn dev_defaults() {
        let c = Config::resolve(&ServerArgs {
            dev: true,
            ..Default::default()
        })
        .unwrap();
        assert!(c.storage_url.starts_with("sqlite:///"));
        assert!(matches!(
            c.root_key,
            RootKeySource::File { create: true, .. }
        ));
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn production_refuses_missing_or_unsafe_settings() {
        let err = Config::resolve(&ServerArgs::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("no storage configured"), "{err}");
        let err = Config::resolve(&ServerArgs {
            storage: Some("sqlite:///tmp/x.db".into()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("no root key"), "{err}");
        let err = Config::resolve(&ServerArgs {
            storage: Some("sqlite:///tmp/x.db".into()),
            root_key_file: Some("/tmp/k".into()),
            listen: Some("0.0.0.0:8200".parse().unwrap()),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("plain HTTP"), "{err}");
        let err = Config::resolve(&ServerArgs {
            dev: true,
            listen: Some("0.0.0.0:8200".parse().unwrap()),
            allow_insecure_http: true,
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("loopback"), "{err}");
    }
}
