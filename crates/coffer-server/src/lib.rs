//! The Coffer server. Public entry points used by the `coffer` binary:
//! [`run`] starts the HTTP(S) server; [`offline`] reads a store directly for
//! `coffer audit verify/list --data-dir|--storage`.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use coffer_crypto::RootKey;

pub mod anchor;
mod audit;
pub mod audit_flood;
pub mod audit_sink;
pub mod bootstrap;
pub mod config;
pub mod dbconn;
pub mod dev_oidc;
mod error;
pub mod health;
pub mod http;
mod identity;
pub mod jwks;
pub mod jwt;
pub mod leases;
pub mod listener;
pub mod metrics;
pub mod offline;
pub mod openapi;
pub mod operator;
pub mod ops;
mod outbound;
pub mod purge;
pub mod retention;
mod rotation;
pub mod state;
mod timefmt;
mod wire;

pub use config::{Config, ServerArgs};
use config::{LogFormat, RootKeySource};
use state::{AppState, ItemCache, Keys, LoginLimiter, TokenCache};

/// The variable holding the root key for `COFFER_ROOT_KEY` set-ups.
const ROOT_KEY_ENV: &str = "COFFER_ROOT_KEY";
/// Set by [`scrub_root_key_env`]: the descriptor of a pipe holding the key.
const ROOT_KEY_FD_ENV: &str = "COFFER_ROOT_KEY_FD";

/// Take `COFFER_ROOT_KEY` out of this process's environment for good.
///
/// Removing a variable does not change `/proc/PID/environ`, which shows
/// the environment the process was started with, readable by the same user
/// and by root for the life of the process. So when the variable is set,
/// this puts the key into a pipe and re-executes the same binary with the
/// same arguments, without the variable and with `COFFER_ROOT_KEY_FD`
/// naming the pipe; the new process image (same PID) reads the key from it.
/// Call first thing in `main`, before any thread starts. Returns only when
/// there was nothing to do (or the exec failed, as an error).
#[cfg(target_os = "linux")]
pub fn scrub_root_key_env() -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::process::CommandExt;

    let Some(key) = std::env::var_os(ROOT_KEY_ENV) else {
        return Ok(());
    };
    let key = zeroize::Zeroizing::new(key.into_encoded_bytes());
    if key.len() > 4096 {
        bail!("COFFER_ROOT_KEY is too long to be a root key");
    }
    // Without CLOEXEC, so the read end survives the exec; the key (a few
    // dozen bytes) fits in the pipe's buffer, so the write cannot block.
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::empty())
        .context("cannot create a pipe for the root key")?;
    let mut writer = std::fs::File::from(write);
    writer
        .write_all(&key)
        .context("cannot hand the root key over")?;
    drop(writer);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&read);
    let exe = std::env::current_exe().context("cannot find the coffer binary to re-execute")?;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env_remove(ROOT_KEY_ENV)
        .env(ROOT_KEY_FD_ENV, fd.to_string())
        .exec();
    Err(anyhow::Error::from(err).context("cannot re-execute coffer without COFFER_ROOT_KEY"))
}

/// Elsewhere the environment cannot be scrubbed this way: nothing to do.
#[cfg(not(target_os = "linux"))]
pub fn scrub_root_key_env() -> anyhow::Result<()> {
    Ok(())
}

/// Start the server and serve until SIGINT/SIGTERM.
pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let config = Config::resolve(&args)?;
    init_logging(config.log_format);

    let listener = std::net::TcpListener::bind(config.listen)
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let metrics_listener = match config.metrics_listen {
        Some(addr) => {
            let l = std::net::TcpListener::bind(addr)
                .with_context(|| format!("cannot listen for metrics on {addr}"))?;
            l.set_nonblocking(true)?;
            Some(l)
        }
        None => None,
    };
    // Load TLS before bootstrap so a bad certificate fails before anything is created.
    let tls = match &config.tls {
        Some((cert, key)) => Some(
            axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .with_context(|| {
                    format!(
                        "cannot load TLS certificate {} and key {}",
                        cert.display(),
                        key.display()
                    )
                })?,
        ),
        None => None,
    };
    let (state, admin) = build(&config).await?;
    let store = state.store.clone();
    if config.metrics || metrics_listener.is_some() {
        metrics::enable(store.backend());
        tokio::spawn(metrics::usage_loop(state.clone()));
    }

    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    // With `--audit-file -` standard output carries audit lines only: the
    // start-up lines below (this `println!` shadows std's) go to stderr.
    let banner_to_stderr = matches!(config.audit_stream, Some(audit_sink::Target::Stdout));
    macro_rules! println {
        ($($t:tt)*) => {
            if banner_to_stderr { eprintln!($($t)*) } else { std::println!($($t)*) }
        };
    }
    println!("Coffer listening on {scheme}://{local}");
    println!(
        "  storage:  {}",
        coffer_store::redact_url(&config.storage_url)
    );
    if let Some(d) = &config.data_dir {
        println!("  data dir: {}", d.display());
    }
    if let Some(l) = metrics_listener {
        println!("  metrics:  http://{}/metrics", l.local_addr()?);
        tokio::spawn(metrics::serve_listener(
            l,
            state.clone(),
            config.header_timeout,
        ));
    }
    if let Some(admin) = admin {
        println!("Bootstrap admin created (shown once, store it now):");
        println!("  access_id:  {}", admin.access_id);
        println!(
            "  access_key: {}",
            secrecy::ExposeSecret::expose_secret(&admin.access_key)
        );
        println!(
            "Try: coffer configure --access-id {} --access-key <access_key> --gateway-url {scheme}://{local}",
            admin.access_id
        );
    }
    tracing::info!(listen = %local, tls = config.tls.is_some(), backend = store.backend(), "coffer server started");

    tokio::spawn(background(state.clone()));
    tokio::spawn(anchor::anchor_loop(state.clone()));
    if let Some(retention) = config.audit_retention {
        tokio::spawn(retention::prune_loop(state.clone(), retention));
    }
    tokio::spawn(audit_flood::flusher(state.clone()));
    tokio::spawn(leases::reaper(state.clone(), Duration::from_secs(1)));
    tokio::spawn(rotation::scheduler(state.clone(), Duration::from_secs(5)));
    tokio::spawn(purge::purge_loop(state.clone(), Duration::from_secs(60)));

    let limits = listener::Limits::resolve(config.max_connections, config.max_connections_per_ip);
    tracing::info!(
        max_connections = limits.max_connections,
        max_connections_per_ip = limits.max_per_ip,
        header_timeout_s = config.header_timeout.as_secs(),
        body_timeout_s = config.body_timeout.as_secs(),
        request_timeout_s = config.request_timeout.as_secs(),
        "connection limits"
    );
    let app = http::router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let handle = axum_server::Handle::new();
    tokio::spawn(shutdown_on_signal(handle.clone()));
    match tls {
        Some(tls) => {
            let mut server =
                axum_server::from_tcp(listener)?.acceptor(listener::LimitAcceptor::new(
                    axum_server::tls_rustls::RustlsAcceptor::new(tls),
                    limits,
                ));
            configure_http(server.http_builder(), &config);
            server.handle(handle).serve(app).await?;
        }
        None => {
            let mut server = axum_server::from_tcp(listener)?.acceptor(
                listener::LimitAcceptor::new(axum_server::accept::DefaultAcceptor, limits),
            );
            configure_http(server.http_builder(), &config);
            server.handle(handle).serve(app).await?;
        }
    }
    finish_audit(&state).await;
    tracing::info!("coffer server stopped");
    Ok(())
}

/// Graceful stop: write the counts of suppressed unauthenticated failures
/// into the chain, then let the streaming sink copy everything committed.
async fn finish_audit(state: &Arc<AppState>) {
    // Requests still running (they outlive their connections) first: their
    // failures may still be counted.
    let all = u32::try_from(state.config.max_requests_in_flight).unwrap_or(u32::MAX);
    tokio::time::timeout(Duration::from_secs(10), state.in_flight.acquire_many(all))
        .await
        .ok();
    audit_flood::flush_all(state).await;
    if let Some(stream) = &state.audit_stream {
        let head = state
            .audit_high_water
            .load(std::sync::atomic::Ordering::Acquire);
        let head = match state.store.audit_head().await {
            Ok(h) => h.seq.max(head),
            Err(_) => head,
        };
        if !stream.drain_to(head, Duration::from_secs(10)).await {
            tracing::error!(
                written_through = stream
                    .stats()
                    .last_seq
                    .load(std::sync::atomic::Ordering::Acquire),
                chain_head = head,
                "the audit file did not catch up with the audit log before stopping; it resumes from there on the next start"
            );
        }
    }
}

/// hyper settings: a header-read timeout (which also ends idle keep-alive
/// connections: the timer runs whenever the server waits for a request),
/// half-closed connections served to the end, and HTTP/2 limits.
fn configure_http(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    config: &Config,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        // A client may shut down its sending side once its request is out
        // (half-close) and still get its answer.
        .half_close(true)
        .max_headers(100);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(128)
        .keep_alive_interval(Some(config.header_timeout))
        .keep_alive_timeout(config.header_timeout)
        .max_header_list_size(64 * 1024);
}

/// Open storage and keys, and bootstrap: everything but the listener.
/// Returns the state and, on the very first start, the admin credentials.
pub async fn build(
    config: &Config,
) -> anyhow::Result<(Arc<AppState>, Option<bootstrap::AdminCredentials>)> {
    if let Some(dir) = &config.data_dir {
        create_private_dir(dir)?;
    }
    let root = load_root_key(&config.root_key)?;
    let store = coffer_store::open(&config.storage_url)
        .await
        .with_context(|| {
            format!(
                "cannot open storage {}",
                coffer_store::redact_url(&config.storage_url)
            )
        })?;
    // The streaming sink starts after the head as it is now, so it also
    // copies what start-up (data key, bootstrap) writes.
    let head_at_start = store
        .audit_head()
        .await
        .context("cannot read the audit chain head")?
        .seq;
    let keys = Keys::load(&root, &*store).await?;
    drop(root);
    let audit = audit::AuditSink::start(store.clone(), keys.audit.clone());
    let audit_stream = match &config.audit_stream {
        Some(target) => Some(audit_sink::AuditStream::start(
            target.clone(),
            store.clone(),
            head_at_start,
            audit.commit_notify(),
        )?),
        None => None,
    };
    let mut prefix = [0u8; 4];
    coffer_crypto::fill_random(&mut prefix)?;
    let state = Arc::new(AppState {
        store,
        keys,
        config: config.clone(),
        policy: Default::default(),
        tokens: TokenCache::new(100_000, Some(state::TOKEN_CACHE_TTL))
            .counted(metrics::CacheKind::Token),
        items: ItemCache::new(50_000, Some(config.sync_interval)).counted(metrics::CacheKind::Item),
        crls: state::Cache::new(1_000, Some(state::CRL_CACHE_TTL)),
        opened_keys: state::Cache::new(1_000, Some(config.sync_interval)),
        audit,
        limiter: LoginLimiter::default(),
        jwks: jwks::JwksCache::new(
            Duration::from_secs(config.jwks_cache_ttl_secs),
            Duration::from_secs(config.jwks_refetch_secs),
        ),
        replay: jwks::ReplayCache::new(1_000_000),
        request_prefix: hex::encode(prefix),
        request_counter: Default::default(),
        policy_stale: Default::default(),
        audit_high_water: Default::default(),
        in_flight: Arc::new(tokio::sync::Semaphore::new(config.max_requests_in_flight)),
        db: dbconn::DbPools::new(),
        health: Default::default(),
        flood: audit_flood::FloodGuard::new(config.audit_flood),
        audit_stream,
    });
    state
        .reload_policy()
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut out = bootstrap::prepare_output(&state).await?;
    let admin = bootstrap::ensure_admin(&state, &mut out).await;
    let admin = bootstrap::deliver(out, admin)?;
    bootstrap::renumber_large_item_ids(&state).await?;
    Ok((state, admin))
}

async fn shutdown_on_signal(handle: axum_server::Handle<SocketAddr>) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    ctrl_c.await.ok();
                    handle.graceful_shutdown(Some(Duration::from_secs(10)));
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    handle.graceful_shutdown(Some(Duration::from_secs(10)));
}

/// Cache refresh for multi-node set-ups (every `--sync-interval-ms`: a
/// change another node made takes effect here within that time plus one
/// store query), and token clean-up (every 10 minutes).
async fn background(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(state.config.sync_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_purge = tokio::time::Instant::now();
    loop {
        tick.tick().await;
        match state.store.generation().await {
            Ok(g) if g != state.snapshot().generation => {
                state.policy_changed();
                if let Err(e) = state.reload_policy().await {
                    tracing::warn!(error = ?e, "policy reload failed");
                }
                // A data-key rotation moves the generation too.
                if let Err(e) = state.keys.reload_data_keys(&*state.store).await {
                    tracing::warn!(error = %e, "data key reload failed");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "generation check failed"),
        }
        if state.keys.key_missing()
            && let Err(e) = state.keys.reload_data_keys(&*state.store).await
        {
            tracing::warn!(error = %e, "data key reload failed");
        }
        if last_purge.elapsed() >= Duration::from_secs(600) {
            last_purge = tokio::time::Instant::now();
            if let Err(e) = state.store.purge_expired_tokens(state::now_ms()).await {
                tracing::warn!(error = %e, "token purge failed");
            }
        }
    }
}

fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let spec = std::env::var("COFFER_LOG").unwrap_or_else(|_| "info".to_owned());
    let mut filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"));
    // SQL statements only when asked for by name (COFFER_LOG=…,sqlx=trace):
    // `COFFER_LOG=debug` is for Coffer's own events.
    if !spec.contains("sqlx")
        && let Ok(d) = "sqlx=warn".parse()
    {
        filter = filter.add_directive(d);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files.
        .with_ansi(std::io::stderr().is_terminal());
    // Fails only when a subscriber is installed already (tests): keep it.
    match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    }
    .ok();
}

pub(crate) fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict permissions of {}", dir.display()))?;
    }
    Ok(())
}

pub(crate) fn load_root_key(source: &RootKeySource) -> anyhow::Result<RootKey> {
    Ok(match source {
        RootKeySource::Env => {
            // Only when scrub_root_key_env could not run (not Linux, or an
            // embedding that calls build() directly).
            let v = zeroize::Zeroizing::new(
                std::env::var(ROOT_KEY_ENV).context("COFFER_ROOT_KEY is not valid UTF-8")?,
            );
            RootKey::parse(&v).context("COFFER_ROOT_KEY")?
        }
        RootKeySource::Fd(fd) => {
            // The pipe scrub_root_key_env filled before re-executing; opened
            // through /proc (no unsafe code to adopt a raw descriptor).
            use std::io::Read;
            let mut f = std::fs::File::open(format!("/proc/self/fd/{fd}"))
                .context("cannot open the root key pipe (COFFER_ROOT_KEY_FD)")?;
            let mut text = zeroize::Zeroizing::new(String::new());
            f.read_to_string(&mut text)
                .context("cannot read the root key pipe (COFFER_ROOT_KEY_FD)")?;
            RootKey::parse(&text).context("COFFER_ROOT_KEY")?
        }
        RootKeySource::File { path, create: true } => {
            let (key, created) = RootKey::load_or_create_file(path)?;
            if created {
                tracing::info!(path = %path.display(), "created root key file (mode 0600)");
            }
            key
        }
        RootKeySource::File {
            path,
            create: false,
        } => RootKey::load_file(path)?,
        RootKeySource::Command(cmd) => {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .stderr(std::process::Stdio::inherit())
                .output()
                .context("cannot run the root key command")?;
            if !out.status.success() {
                bail!("the root key command failed with {}", out.status);
            }
            let text = zeroize::Zeroizing::new(
                String::from_utf8(out.stdout).context("root key command output is not UTF-8")?,
            );
            RootKey::parse(&text).context("root key command output")?
        }
    })
}

/// Entry points for the fuzz targets in `fuzz/` (not an API: no stability
/// promise, hidden from the docs).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::error::ApiError;
    pub use crate::identity::aws_iam::fuzzing as aws_iam;
    pub use crate::wire::Body;
}
