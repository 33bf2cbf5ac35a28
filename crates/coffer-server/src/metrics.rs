//! Prometheus metrics (`GET /metrics`, text exposition format 0.0.4).
//!
//! Every value lives in plain atomics in one process-wide [`Metrics`]; the
//! hooks where things happen (the request pipeline, logins, the audit
//! writer, the caches, the listener) are one relaxed load of the on/off
//! switch plus one to three `fetch_add`s: no lock, no allocation, no label
//! lookup on the hot path. Label sets are fixed arrays indexed at compile
//! time or from the operation table, so a client cannot create series: an
//! operation name not in the table counts as `operation="unknown"`, a
//! status outside the list as `status="other"`. The `prometheus-client`
//! crate (Prometheus org) writes the exposition at scrape time from a
//! [`Collector`] that reads the atomics.
//!
//! Nothing here holds a secret, a token, an access ID or an item name:
//! labels are operation names, status codes, auth types and fixed words.
//!
//! Gauges that need the database (live tokens, leases by state) are read
//! by [`usage_loop`] every [`USAGE_INTERVAL`], never per scrape, so a
//! scraper cannot load the store.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::state::AppState;

/// How often live tokens and leases are counted in the store.
pub const USAGE_INTERVAL: Duration = Duration::from_secs(15);

/// Off until [`enable`]: then every hook returns after one relaxed load.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Turn recording on (the server does when `/metrics` is served anywhere).
pub fn enable(backend: &'static str) {
    METRICS.backend.get_or_init(|| backend);
    ENABLED.store(true, Ordering::Relaxed);
}

#[inline]
fn on() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Status codes with a series of their own; the rest are `other`.
const STATUSES: [u16; 12] = [200, 400, 401, 403, 404, 408, 409, 413, 429, 500, 502, 503];
const STATUS_LABELS: [&str; 13] = [
    "200", "400", "401", "403", "404", "408", "409", "413", "429", "500", "502", "503", "other",
];

/// Request latency bucket bounds, in microseconds (0.25 ms to 10 s).
const LATENCY_BOUNDS_US: [u64; 15] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];
/// Audit batch size bucket bounds (records per commit).
const BATCH_BOUNDS: [u64; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 512, 2048];

/// Access types of logins, as clients send them (`access-type`).
const AUTH_TYPES: [&str; 10] = [
    "access_key",
    "jwt",
    "k8s",
    "aws_iam",
    "azure_ad",
    "gcp",
    "universal_identity",
    "cert",
    "oidc",
    "unknown",
];
const LOGIN_OUTCOMES: [&str; 4] = ["success", "failure", "throttled", "error"];

/// The caches whose hits and misses are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheKind {
    /// Session tokens by keyed hash (`state::TokenCache`).
    Token = 0,
    /// Latest sealed item versions (`state::ItemCache`).
    Item = 1,
    /// The policy snapshot: a miss is a reload before use.
    Policy = 2,
}
const CACHE_LABELS: [&str; 3] = ["token", "item", "policy"];

/// Lock-free histogram over fixed integer bounds (`v <= bound` goes in
/// that bucket; the last slot is `+Inf`). The sum is kept in the same
/// integer unit and divided by `scale` when written.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [u64],
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    scale: f64,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [u64], scale: f64) -> Self {
        AtomicHistogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            scale,
        }
    }

    #[inline]
    pub fn observe(&self, v: u64) {
        let i = self.bounds.partition_point(|b| *b < v);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(v, Ordering::Relaxed);
    }

    /// (sum, count, per-bucket counts with their upper bound).
    fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut count = 0;
        let mut out = Vec::with_capacity(self.buckets.len());
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Ordering::Relaxed);
            count += n;
            let upper = self
                .bounds
                .get(i)
                .map_or(f64::INFINITY, |b| *b as f64 / self.scale);
            out.push((upper, n));
        }
        let sum = self.sum.load(Ordering::Relaxed) as f64 / self.scale;
        (sum, count, out)
    }

    fn encode(&self, mut enc: MetricEncoder<'_>) -> fmt::Result {
        let (sum, count, buckets) = self.snapshot();
        enc.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }
}

/// One operation's request counters and latency histogram.
#[derive(Debug)]
struct OpStats {
    by_status: [AtomicU64; STATUS_LABELS.len()],
    latency: AtomicHistogram,
}

/// Everything counted; see the module comment.
#[derive(Debug)]
pub struct Metrics {
    backend: OnceLock<&'static str>,
    /// Operation names as labels, `unknown` last; same order as `ops`.
    op_names: Vec<&'static str>,
    op_index: HashMap<&'static str, usize>,
    ops: Box<[OpStats]>,
    logins: [[AtomicU64; LOGIN_OUTCOMES.len()]; AUTH_TYPES.len()],
    audit_commit: AtomicHistogram,
    audit_batch: AtomicHistogram,
    audit_failed_batches: AtomicU64,
    cache: [[AtomicU64; 2]; CACHE_LABELS.len()],
    in_flight: AtomicI64,
    connections: AtomicI64,
    // Set at scrape time from the state.
    audit_queue: AtomicI64,
    pool_in_use: AtomicI64,
    pool_idle: AtomicI64,
    pool_max: AtomicI64,
    /// Unauthenticated failures counted into aggregate records, and the
    /// aggregate records written (crate::audit_flood).
    flood_counted: AtomicU64,
    flood_aggregates: AtomicU64,
    /// The audit file sink (crate::audit_sink): -1 when there is none.
    sink: [AtomicI64; SINK_STATS.len()],
    // Set by `usage_loop`; -1 until read once.
    live_tokens: AtomicI64,
    leases: [AtomicI64; 3],
}

const LEASE_STATES: [&str; 3] = ["live", "failing", "revoked"];

/// The audit file sink's numbers: (name, help, counter?).
const SINK_STATS: [(&str, &str, bool); 5] = [
    (
        "coffer_audit_file_lines",
        "Audit records written to --audit-file.",
        true,
    ),
    (
        "coffer_audit_file_write_failures",
        "Failed writes to --audit-file (each retried; the file lags meanwhile).",
        true,
    ),
    (
        "coffer_audit_file_missed",
        "Records pruned from the database before --audit-file got them (a gap in the file).",
        true,
    ),
    (
        "coffer_audit_file_read_failures",
        "Failed reads of the chain by the --audit-file sink (retried).",
        true,
    ),
    (
        "coffer_audit_file_last_seq",
        "seq of the last record written to --audit-file.",
        false,
    ),
];

impl Metrics {
    fn new() -> Self {
        let mut op_names: Vec<&'static str> =
            crate::ops::OPERATIONS.iter().map(|o| o.name).collect();
        op_names.push("unknown");
        let op_index = op_names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let ops = op_names
            .iter()
            .map(|_| OpStats {
                by_status: Default::default(),
                latency: AtomicHistogram::new(&LATENCY_BOUNDS_US, 1e6),
            })
            .collect();
        Metrics {
            backend: OnceLock::new(),
            op_names,
            op_index,
            ops,
            logins: Default::default(),
            audit_commit: AtomicHistogram::new(&LATENCY_BOUNDS_US, 1e6),
            audit_batch: AtomicHistogram::new(&BATCH_BOUNDS, 1.0),
            audit_failed_batches: AtomicU64::new(0),
            cache: Default::default(),
            in_flight: AtomicI64::new(0),
            connections: AtomicI64::new(0),
            audit_queue: AtomicI64::new(0),
            pool_in_use: AtomicI64::new(0),
            pool_idle: AtomicI64::new(0),
            pool_max: AtomicI64::new(0),
            flood_counted: AtomicU64::new(0),
            flood_aggregates: AtomicU64::new(0),
            sink: Default::default(),
            live_tokens: AtomicI64::new(-1),
            leases: [AtomicI64::new(-1), AtomicI64::new(-1), AtomicI64::new(-1)],
        }
    }

    fn op_slot(&self, op: &str) -> &OpStats {
        let i = self.op_index.get(op).copied().unwrap_or(self.ops.len() - 1);
        &self.ops[i]
    }
}

fn status_slot(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|s| *s == status)
        .unwrap_or(STATUSES.len())
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

// ---- hooks ----

/// A request of operation `op` (its canonical name, or anything else for
/// an unknown one) ended with `status` after `elapsed`.
#[inline]
pub fn request(op: &str, status: u16, elapsed: Duration) {
    if !on() {
        return;
    }
    let s = METRICS.op_slot(op);
    s.by_status[status_slot(status)].fetch_add(1, Ordering::Relaxed);
    s.latency.observe(micros(elapsed));
}

/// A login of `access_type` (as the client sent it; anything unknown is
/// `unknown`) ended with `status`.
pub fn login(access_type: &str, status: u16) {
    if !on() {
        return;
    }
    let t = AUTH_TYPES
        .iter()
        .position(|a| *a == access_type)
        .unwrap_or(AUTH_TYPES.len() - 1);
    let o = match status {
        200 => 0,
        401 | 403 => 1,
        429 => 2,
        _ => 3,
    };
    METRICS.logins[t][o].fetch_add(1, Ordering::Relaxed);
}

/// The audit writer committed (or failed to commit) a batch of `records`.
pub fn audit_batch(records: usize, elapsed: Duration, ok: bool) {
    if !on() {
        return;
    }
    METRICS.audit_commit.observe(micros(elapsed));
    METRICS
        .audit_batch
        .observe(u64::try_from(records).unwrap_or(u64::MAX));
    if !ok {
        METRICS.audit_failed_batches.fetch_add(1, Ordering::Relaxed);
    }
}

/// A cache lookup hit (`true`) or missed.
#[inline]
pub fn cache(kind: CacheKind, hit: bool) {
    if !on() {
        return;
    }
    METRICS.cache[kind as usize][usize::from(!hit)].fetch_add(1, Ordering::Relaxed);
}

/// An HTTP request started (+1) or ended (-1) on a listener.
#[inline]
pub fn in_flight(delta: i64) {
    if on() {
        METRICS.in_flight.fetch_add(delta, Ordering::Relaxed);
    }
}

/// A client connection was admitted (+1) or closed (-1).
#[inline]
pub fn connections(delta: i64) {
    if on() {
        METRICS.connections.fetch_add(delta, Ordering::Relaxed);
    }
}

// ---- exposition ----

/// `GET /metrics`.
pub async fn serve(State(state): State<Arc<AppState>>) -> Response {
    (
        [
            (
                axum::http::header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            ),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        render(&state),
    )
        .into_response()
}

/// Serve `/metrics` and the health routes on their own listener
/// (`--metrics-listen`): plain HTTP, a few connections, hyper's
/// header-read timeout against slow clients.
pub async fn serve_listener(
    listener: std::net::TcpListener,
    state: Arc<AppState>,
    header_timeout: Duration,
) {
    let app = crate::health::routes(true)
        .with_state(state)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    let limits = crate::listener::Limits {
        max_connections: 64,
        max_per_ip: 16,
    };
    let server = match axum_server::from_tcp(listener) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot serve metrics");
            return;
        }
    };
    let mut server = server.acceptor(crate::listener::LimitAcceptor::new(
        axum_server::accept::DefaultAcceptor,
        limits,
    ));
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
    if let Err(e) = server.serve(app).await {
        tracing::error!(error = %e, "the metrics listener stopped");
    }
}

/// The exposition text, with the scrape-time gauges read from `state`.
pub fn render(state: &AppState) -> String {
    let m = &*METRICS;
    m.audit_queue.store(
        i64::try_from(state.audit.queue_depth()).unwrap_or(i64::MAX),
        Ordering::Relaxed,
    );
    let pool = state.store.pool_stats();
    m.pool_in_use.store(pool.in_use.into(), Ordering::Relaxed);
    m.pool_idle.store(pool.idle.into(), Ordering::Relaxed);
    m.pool_max.store(pool.max.into(), Ordering::Relaxed);
    m.flood_counted
        .store(load(&state.flood.counted), Ordering::Relaxed);
    m.flood_aggregates
        .store(load(&state.flood.aggregates), Ordering::Relaxed);
    let sink = state.audit_stream.as_ref().map(|s| {
        let st = s.stats();
        [
            i64::try_from(load(&st.written)).unwrap_or(i64::MAX),
            i64::try_from(load(&st.write_failures)).unwrap_or(i64::MAX),
            i64::try_from(load(&st.missed)).unwrap_or(i64::MAX),
            i64::try_from(load(&st.read_failures)).unwrap_or(i64::MAX),
            st.last_seq.load(Ordering::Relaxed),
        ]
    });
    for (i, slot) in m.sink.iter().enumerate() {
        slot.store(sink.map_or(-1, |v| v[i]), Ordering::Relaxed);
    }
    static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
        let mut r = Registry::default();
        r.register_collector(Box::new(Exposition));
        r
    });
    let mut out = String::with_capacity(16 * 1024);
    if let Err(e) = prometheus_client::encoding::prometheus_text::encode(&mut out, &REGISTRY) {
        tracing::error!(error = %e, "cannot encode metrics");
    }
    out
}

/// Reads [`METRICS`] at scrape time.
#[derive(Debug)]
struct Exposition;

fn counter(enc: &mut MetricEncoder<'_>, labels: &[(&str, &str)], v: u64) -> fmt::Result {
    enc.encode_family(&labels)?
        .encode_counter::<NoLabelSet, _, u64>(&v, None)
}

fn gauge(enc: &mut MetricEncoder<'_>, labels: &[(&str, &str)], v: i64) -> fmt::Result {
    enc.encode_family(&labels)?.encode_gauge(&v)
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

impl Collector for Exposition {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        let m = &*METRICS;
        {
            let mut e = enc.encode_descriptor(
                "coffer_build_info",
                "Coffer's version and storage backend (always 1).",
                None,
                MetricType::Gauge,
            )?;
            let backend = m.backend.get().copied().unwrap_or("unknown");
            gauge(
                &mut e,
                &[("version", env!("CARGO_PKG_VERSION")), ("backend", backend)],
                1,
            )?;
        }
        {
            let mut e = enc.encode_descriptor(
                "coffer_requests",
                "Requests by operation and response status.",
                None,
                MetricType::Counter,
            )?;
            for (name, s) in m.op_names.iter().zip(m.ops.iter()) {
                for (label, n) in STATUS_LABELS.iter().zip(s.by_status.iter()) {
                    let n = load(n);
                    if n > 0 {
                        counter(&mut e, &[("operation", name), ("status", label)], n)?;
                    }
                }
            }
        }
        {
            let mut e = enc.encode_descriptor(
                "coffer_request_duration_seconds",
                "Time from request start to response, per operation.",
                None,
                MetricType::Histogram,
            )?;
            for (name, s) in m.op_names.iter().zip(m.ops.iter()) {
                if s.by_status.iter().any(|n| load(n) > 0) {
                    s.latency
                        .encode(e.encode_family(&[("operation", *name)])?)?;
                }
            }
        }
        {
            let mut e = enc.encode_descriptor(
                "coffer_logins",
                "Logins by access type and outcome (success, failure = 401/403, throttled = 429 back-off, error = anything else).",
                None,
                MetricType::Counter,
            )?;
            for (t, row) in AUTH_TYPES.iter().zip(m.logins.iter()) {
                for (o, n) in LOGIN_OUTCOMES.iter().zip(row.iter()) {
                    let n = load(n);
                    if n > 0 {
                        counter(&mut e, &[("auth_type", t), ("outcome", o)], n)?;
                    }
                }
            }
        }
        {
            let e = enc.encode_descriptor(
                "coffer_audit_commit_duration_seconds",
                "Time to append one batch of audit records (group commit).",
                None,
                MetricType::Histogram,
            )?;
            m.audit_commit.encode(e)?;
        }
        {
            let e = enc.encode_descriptor(
                "coffer_audit_batch_records",
                "Audit records per group commit.",
                None,
                MetricType::Histogram,
            )?;
            m.audit_batch.encode(e)?;
        }
        {
            let mut e = enc.encode_descriptor(
                "coffer_audit_failed_batches",
                "Audit batches that could not be written (their requests failed with 500).",
                None,
                MetricType::Counter,
            )?;
            e.encode_counter::<NoLabelSet, _, u64>(&load(&m.audit_failed_batches), None)?;
        }
        {
            let mut e = enc.encode_descriptor(
                "coffer_audit_queue_depth",
                "Audit records waiting for the writer.",
                None,
                MetricType::Gauge,
            )?;
            e.encode_gauge(&m.audit_queue.load(Ordering::Relaxed))?;
        }
        for (name, help, col) in [
            (
                "coffer_cache_hits",
                "Cache lookups answered from memory.",
                0,
            ),
            (
                "coffer_cache_misses",
                "Cache lookups that went to the store (absent or expired; policy: a reload).",
                1,
            ),
        ] {
            let mut e = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (label, row) in CACHE_LABELS.iter().zip(m.cache.iter()) {
                counter(&mut e, &[("cache", label)], load(&row[col]))?;
            }
        }
        {
            let mut e = enc.encode_descriptor(
                "coffer_store_connections",
                "Store connection pool: connections in use, idle, and the maximum.",
                None,
                MetricType::Gauge,
            )?;
            for (label, v) in [
                ("in_use", &m.pool_in_use),
                ("idle", &m.pool_idle),
                ("max", &m.pool_max),
            ] {
                gauge(&mut e, &[("state", label)], v.load(Ordering::Relaxed))?;
            }
        }
        {
            let mut e = enc.encode_descriptor(
                "coffer_store_errors",
                "Database errors (failed queries, lost connections, undecodable rows).",
                None,
                MetricType::Counter,
            )?;
            e.encode_counter::<NoLabelSet, _, u64>(&coffer_store::error_count(), None)?;
        }
        for (name, help, v) in [
            (
                "coffer_audit_failures_aggregated",
                "Unauthenticated failures counted into aggregate audit records instead of one record each.",
                &m.flood_counted,
            ),
            (
                "coffer_audit_aggregate_records",
                "Aggregate audit records written for unauthenticated failures.",
                &m.flood_aggregates,
            ),
        ] {
            let mut e = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            e.encode_counter::<NoLabelSet, _, u64>(&load(v), None)?;
        }
        if m.sink[0].load(Ordering::Relaxed) >= 0 {
            for ((name, help, is_counter), v) in SINK_STATS.iter().zip(m.sink.iter()) {
                let v = v.load(Ordering::Relaxed);
                if *is_counter {
                    let mut e = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
                    e.encode_counter::<NoLabelSet, _, u64>(&v.unsigned_abs(), None)?;
                } else {
                    let mut e = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
                    e.encode_gauge(&v)?;
                }
            }
        }
        let tokens = m.live_tokens.load(Ordering::Relaxed);
        if tokens >= 0 {
            let mut e = enc.encode_descriptor(
                "coffer_tokens_live",
                "Session tokens not expired (counted in the store every 15 s).",
                None,
                MetricType::Gauge,
            )?;
            e.encode_gauge(&tokens)?;
        }
        if m.leases[0].load(Ordering::Relaxed) >= 0 {
            let mut e = enc.encode_descriptor(
                "coffer_leases",
                "Dynamic-secret leases by state (counted in the store every 15 s).",
                None,
                MetricType::Gauge,
            )?;
            for (label, v) in LEASE_STATES.iter().zip(m.leases.iter()) {
                gauge(&mut e, &[("state", label)], v.load(Ordering::Relaxed))?;
            }
        }
        for (name, help, v) in [
            (
                "coffer_requests_in_flight",
                "HTTP requests being served (every listener).",
                &m.in_flight,
            ),
            (
                "coffer_connections_open",
                "Open client connections (every listener).",
                &m.connections,
            ),
        ] {
            let mut e = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            e.encode_gauge(&v.load(Ordering::Relaxed))?;
        }
        Ok(())
    }
}

/// Count live tokens and leases every [`USAGE_INTERVAL`] (started by the
/// server when metrics are on). A failed read keeps the last values.
pub async fn usage_loop(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(USAGE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match state.store.usage_counts(crate::state::now_ms()).await {
            Ok(c) => {
                let m = &*METRICS;
                m.live_tokens.store(c.live_tokens, Ordering::Relaxed);
                m.leases[0].store(c.leases_live, Ordering::Relaxed);
                m.leases[1].store(c.leases_failing, Ordering::Relaxed);
                m.leases[2].store(c.leases_revoked, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(error = %e, "cannot count tokens and leases for metrics"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_dev_default_separate_listener_and_remote_opt_in() {
        use crate::config::{Config, ServerArgs};
        let dev = |f: fn(&mut ServerArgs)| {
            let mut a = ServerArgs {
                dev: true,
                ..Default::default()
            };
            f(&mut a);
            Config::resolve(&a)
        };
        let c = dev(|_| {}).unwrap();
        assert!(
            c.metrics && c.metrics_listen.is_none(),
            "on by default in dev"
        );
        let c = dev(|a| a.metrics = Some(false)).unwrap();
        assert!(!c.metrics);
        let c = dev(|a| a.metrics_listen = Some("127.0.0.1:9200".parse().unwrap())).unwrap();
        assert!(
            !c.metrics,
            "a metrics address takes /metrics off the main listener"
        );
        let c = dev(|a| {
            a.metrics_listen = Some("127.0.0.1:9200".parse().unwrap());
            a.metrics = Some(true);
        })
        .unwrap();
        assert!(c.metrics);
        let err = dev(|a| a.metrics_listen = Some("0.0.0.0:9200".parse().unwrap()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--metrics-allow-remote"), "{err}");
        let err = dev(|a| a.metrics_listen = Some("127.0.0.1:8200".parse().unwrap()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("main listener"), "{err}");
        let prod = Config::resolve(&ServerArgs {
            storage: Some("sqlite:///tmp/x.db".into()),
            root_key_file: Some("/tmp/k".into()),
            metrics_listen: Some("0.0.0.0:9200".parse().unwrap()),
            metrics_allow_remote: true,
            ..Default::default()
        })
        .unwrap();
        assert!(!prod.metrics, "off by default outside dev");
        assert!(prod.metrics_listen.is_some());
    }

    #[test]
    fn histogram_buckets_follow_prometheus_le() {
        let h = AtomicHistogram::new(&[10, 100], 1.0);
        for v in [0, 10, 11, 100, 101, 5000] {
            h.observe(v);
        }
        let (sum, count, buckets) = h.snapshot();
        assert_eq!((sum, count), (5222.0, 6));
        assert_eq!(
            buckets,
            vec![(10.0, 2), (100.0, 2), (f64::INFINITY, 2)],
            "v <= bound goes in that bucket"
        );
    }

    #[test]
    fn labels_are_bounded() {
        let m = Metrics::new();
        // Anything not in the operation table is one series.
        let unknown = m.op_slot("no-such-op") as *const OpStats;
        assert_eq!(unknown, m.op_slot("another") as *const OpStats);
        assert_eq!(unknown, &m.ops[m.ops.len() - 1] as *const OpStats);
        assert_ne!(unknown, m.op_slot("get-secret-value") as *const OpStats);
        assert_eq!(status_slot(200), 0);
        assert_eq!(status_slot(418), STATUSES.len());
        assert_eq!(STATUS_LABELS.len(), STATUSES.len() + 1);
    }

    #[test]
    fn exposition_is_valid_and_counts() {
        enable("sqlite");
        request("get-secret-value", 200, Duration::from_micros(300));
        request("get-secret-value", 403, Duration::from_millis(3));
        request("/../etc/passwd", 404, Duration::from_millis(1));
        login("access_key", 401);
        login("definitely-not-a-type", 400);
        cache(CacheKind::Token, true);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &{
            let mut r = Registry::default();
            r.register_collector(Box::new(Exposition));
            r
        })
        .unwrap();
        assert!(out.contains(r#"coffer_build_info{version=""#), "{out}");
        assert!(
            out.contains(r#"coffer_requests_total{operation="get-secret-value",status="403"}"#),
            "{out}"
        );
        assert!(
            out.contains(r#"coffer_requests_total{operation="unknown",status="404"}"#),
            "{out}"
        );
        assert!(!out.contains("passwd"), "{out}");
        assert!(
            out.contains(r#"coffer_logins_total{auth_type="unknown",outcome="error"}"#),
            "{out}"
        );
        assert!(
            out.contains(r#"coffer_request_duration_seconds_bucket{operation="get-secret-value",le="0.0005"}"#),
            "{out}"
        );
        // Every non-comment line is `name{labels} value`.
        for line in out.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(series.starts_with("coffer_"), "{line}");
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
