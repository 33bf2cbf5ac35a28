//! Bounded audit records for floods of unauthenticated failures.
//!
//! Every request is audited, but a request nobody authenticated (no,
//! invalid or expired token; a login with an unknown access ID or a wrong
//! key; a body refused before authentication) costs an attacker nothing,
//! so one durable record each would let an anonymous flood grow the
//! database without bound. The rule, per aligned time window (`window`,
//! default 60 s):
//!
//! * failures are keyed by (subject, operation, status). The subject is the
//!   source address (an IPv6 address by its /64, what one host usually
//!   gets), or, when the request named a **real** access ID (a failed login
//!   against an existing auth method, a token of a real method that was
//!   refused), that access ID, whatever the address: brute force against an
//!   account stays visible however many addresses it comes from;
//! * the first `burst` failures of a key (`5 × burst` for a real access
//!   ID) get their own record, as every request does, while the window's
//!   global budget of own records lasts ([`GLOBAL_BUDGET`]; addresses and
//!   real access IDs each have their own budget, so an anonymous flood
//!   from many addresses cannot use up what brute force against a real
//!   account gets);
//! * further failures are only counted; when the window closes, one
//!   aggregate record per key ("suppressed N similar unauthenticated
//!   failures from ADDR for OP with status S between T1 and T2") joins the
//!   hash chain like any record;
//! * at most `max_keys` address keys and `max_keys` access-ID keys are
//!   tracked per window (separately: many addresses cannot push a real
//!   access ID out): failures of further keys are counted per (operation,
//!   status) only (unknown operation names fold into one) and aggregated as
//!   coming from "*".
//!
//! So a window adds at most `2 × GLOBAL_BUDGET + 2 × max_keys +
//! OVERFLOW_KEYS + 1` records whatever the flood, and memory is bounded by
//! `2 × max_keys`. Counted failures do not wait for a commit (that is the
//! point); closed windows wait in a queue for the flusher, and pending
//! counts are written on graceful shutdown ([`flush_all`], which also waits
//! for a write in progress); a crash loses at most one window of counts
//! (never an authenticated request's record).
//! Authenticated requests, successes and server errors (5xx but 503) keep
//! their own record each, unchanged.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use coffer_core::audit::{AuditRecord, Outcome};

use crate::state::{AppState, now_ms};

/// Own records of unauthenticated failures per window, all keys together.
pub const GLOBAL_BUDGET: u32 = 1_000;
/// Distinct (operation, status) pairs counted once the key cap is reached;
/// beyond them everything folds into one "*" entry.
pub const OVERFLOW_KEYS: usize = 256;
/// Addresses named in an access ID's aggregate record (more are counted).
const ADDRS_NAMED: usize = 8;
/// Longest error text kept as the sample in an aggregate record.
const SAMPLE_CHARS: usize = 200;
/// `client_type` of aggregate records, so tools can tell them apart.
pub const AGGREGATE_CLIENT: &str = "coffer-audit-aggregate";

/// Settings (see `--audit-failure-burst`, `--audit-failure-window`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodConfig {
    /// Own records per source address, operation and status per window.
    pub burst: u32,
    /// Own records per real access ID, operation and status per window.
    pub known_burst: u32,
    pub window: Duration,
    /// Keys tracked per window.
    pub max_keys: usize,
    /// Own records per window, all keys together.
    pub global_budget: u32,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig::new(10, Duration::from_secs(60))
    }
}

impl FloodConfig {
    pub fn new(burst: u32, window: Duration) -> FloodConfig {
        FloodConfig {
            burst,
            known_burst: burst.saturating_mul(5),
            window,
            max_keys: 4_096,
            // A burst above the budget (e.g. 4000000000: every failure its own
            // record, as before aggregation) lifts the budget with it.
            global_budget: GLOBAL_BUDGET.max(burst),
        }
    }
}

/// Who failed: an address (or IPv6 /64), or a real access ID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    Addr(String),
    AccessId(String),
}

impl Subject {
    /// The address key: IPv4 (or IPv4-mapped) as is, IPv6 by its /64.
    pub fn addr(ip: IpAddr) -> Subject {
        Subject::Addr(addr_label(ip))
    }
}

fn addr_label(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
            format!("{net}/64")
        }
    }
}

/// One unauthenticated failure, as the pipeline saw it.
#[derive(Debug, Clone)]
pub struct Failure {
    pub subject: Subject,
    pub operation: String,
    pub status: u16,
    pub outcome: Outcome,
    pub error: String,
    pub peer: IpAddr,
    /// The auth method a real access ID belongs to.
    pub auth_method: String,
}

/// Does this failure get its own record?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Record,
    Counted,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    subject: Subject,
    operation: String,
    status: u16,
}

#[derive(Debug)]
struct Entry {
    seen: u64,
    suppressed: u64,
    first_ms: i64,
    last_ms: i64,
    outcome: Outcome,
    error: String,
    auth_method: String,
    addrs: BTreeSet<String>,
    more_addrs: bool,
}

#[derive(Debug)]
struct Overflow {
    count: u64,
    first_ms: i64,
    last_ms: i64,
    outcome: Outcome,
    error: String,
}

/// What one aggregate record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// `Addr("*")` for failures beyond the key cap.
    pub subject: Subject,
    pub operation: String,
    pub status: u16,
    pub outcome: Outcome,
    pub count: u64,
    pub first_ms: i64,
    pub last_ms: i64,
    pub auth_method: String,
    /// Addresses the failures came from (an access ID's: up to
    /// [`ADDRS_NAMED`], then "…").
    pub peer: String,
    /// The error of one of the counted failures.
    pub sample: String,
}

/// The per-window counters (pure: time is passed in; see the tests).
#[derive(Debug)]
pub struct Aggregator {
    cfg: FloodConfig,
    window: i64,
    /// Own records given this window: to addresses, to real access IDs.
    own: u32,
    own_known: u32,
    /// Keys tracked: by address, by real access ID.
    addr_keys: usize,
    known_keys: usize,
    entries: HashMap<Key, Entry>,
    overflow: BTreeMap<(String, u16), Overflow>,
}

impl Aggregator {
    pub fn new(cfg: FloodConfig) -> Aggregator {
        Aggregator {
            cfg,
            window: i64::MIN,
            own: 0,
            own_known: 0,
            addr_keys: 0,
            known_keys: 0,
            entries: HashMap::new(),
            overflow: BTreeMap::new(),
        }
    }

    fn window_of(&self, now_ms: i64) -> i64 {
        let w = i64::try_from(self.cfg.window.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        now_ms.div_euclid(w)
    }

    /// Keys tracked in the current window.
    pub fn tracked(&self) -> usize {
        self.entries.len()
    }

    /// Count `f` at `now_ms`. Returns whether it gets its own record, and
    /// the aggregates of a window that closed before it (to be written).
    pub fn observe(&mut self, now_ms: i64, f: &Failure) -> (Decision, Vec<Aggregate>) {
        let closed = self.roll(now_ms);
        let key = Key {
            subject: f.subject.clone(),
            operation: f.operation.clone(),
            status: f.status,
        };
        let is_known = matches!(f.subject, Subject::AccessId(_));
        let burst = if is_known {
            self.cfg.known_burst
        } else {
            self.cfg.burst
        };
        let keys_of_kind = if is_known {
            self.known_keys
        } else {
            self.addr_keys
        };
        let new_key = !self.entries.contains_key(&key);
        if new_key && keys_of_kind >= self.cfg.max_keys {
            let n = self.overflow.len();
            let slot = if n < OVERFLOW_KEYS
                || self.overflow.contains_key(&(f.operation.clone(), f.status))
            {
                (f.operation.clone(), f.status)
            } else {
                ("*".to_owned(), 0)
            };
            let o = self.overflow.entry(slot).or_insert_with(|| Overflow {
                count: 0,
                first_ms: now_ms,
                last_ms: now_ms,
                outcome: f.outcome,
                error: sample(&f.error),
            });
            o.count += 1;
            o.last_ms = now_ms;
            return (Decision::Counted, closed);
        }
        if new_key {
            if is_known {
                self.known_keys += 1;
            } else {
                self.addr_keys += 1;
            }
        }
        let e = self.entries.entry(key).or_insert_with(|| Entry {
            seen: 0,
            suppressed: 0,
            first_ms: now_ms,
            last_ms: now_ms,
            outcome: f.outcome,
            error: String::new(),
            auth_method: f.auth_method.clone(),
            addrs: BTreeSet::new(),
            more_addrs: false,
        });
        e.seen += 1;
        let own = if is_known {
            &mut self.own_known
        } else {
            &mut self.own
        };
        if e.seen <= u64::from(burst) && *own < self.cfg.global_budget {
            *own += 1;
            return (Decision::Record, closed);
        }
        if e.suppressed == 0 {
            e.first_ms = now_ms;
            e.error = sample(&f.error);
        }
        e.suppressed += 1;
        e.last_ms = now_ms;
        if matches!(f.subject, Subject::AccessId(_)) {
            let a = addr_label(f.peer);
            if e.addrs.len() < ADDRS_NAMED {
                e.addrs.insert(a);
            } else if !e.addrs.contains(&a) {
                e.more_addrs = true;
            }
        }
        (Decision::Counted, closed)
    }

    /// Close the window if `now_ms` is past it: its aggregates.
    pub fn roll(&mut self, now_ms: i64) -> Vec<Aggregate> {
        let w = self.window_of(now_ms);
        if w == self.window {
            return Vec::new();
        }
        self.window = w;
        self.drain()
    }

    /// Everything counted so far, as aggregates (graceful shutdown); the
    /// window's counters start again.
    pub fn drain(&mut self) -> Vec<Aggregate> {
        self.own = 0;
        self.own_known = 0;
        self.addr_keys = 0;
        self.known_keys = 0;
        let mut out: Vec<Aggregate> = self
            .entries
            .drain()
            .filter(|(_, e)| e.suppressed > 0)
            .map(|(k, e)| {
                let peer = match &k.subject {
                    Subject::Addr(a) => a.clone(),
                    Subject::AccessId(_) => {
                        let mut p = e.addrs.iter().cloned().collect::<Vec<_>>().join(",");
                        if e.more_addrs {
                            p.push_str(",…");
                        }
                        p
                    }
                };
                Aggregate {
                    subject: k.subject,
                    operation: k.operation,
                    status: k.status,
                    outcome: e.outcome,
                    count: e.suppressed,
                    first_ms: e.first_ms,
                    last_ms: e.last_ms,
                    auth_method: e.auth_method,
                    peer,
                    sample: e.error,
                }
            })
            .collect();
        out.extend(
            std::mem::take(&mut self.overflow)
                .into_iter()
                .map(|((op, status), o)| Aggregate {
                    subject: Subject::Addr("*".into()),
                    operation: op,
                    status,
                    outcome: o.outcome,
                    count: o.count,
                    first_ms: o.first_ms,
                    last_ms: o.last_ms,
                    auth_method: String::new(),
                    peer: "*".into(),
                    sample: o.error,
                }),
        );
        // A stable order for the chain (and for tests).
        out.sort_by(|a, b| {
            (a.first_ms, &a.subject, &a.operation, a.status).cmp(&(
                b.first_ms,
                &b.subject,
                &b.operation,
                b.status,
            ))
        });
        out
    }
}

fn sample(error: &str) -> String {
    error.chars().take(SAMPLE_CHARS).collect()
}

impl Aggregate {
    /// The text of the aggregate record's `error` field.
    pub fn message(&self) -> String {
        let from = match &self.subject {
            Subject::Addr(a) if a == "*" => "addresses beyond the tracking cap".to_owned(),
            Subject::Addr(a) => a.clone(),
            Subject::AccessId(id) => format!("access ID {id} (addresses {})", self.peer),
        };
        format!(
            "suppressed {} similar unauthenticated failures from {from} for {} with status {} between {} and {} (one of them: {})",
            self.count,
            self.operation,
            self.status,
            crate::timefmt::go_time(self.first_ms),
            crate::timefmt::go_time(self.last_ms),
            self.sample
        )
    }

    /// The aggregate's audit record (appended to the chain like any other).
    pub fn record(&self, request_id: String, time_ms: i64) -> AuditRecord {
        AuditRecord {
            seq: 0,
            time_ms,
            request_id,
            operation: self.operation.clone(),
            object: String::new(),
            outcome: self.outcome,
            status: self.status,
            error: self.message(),
            access_id: match &self.subject {
                Subject::AccessId(id) => id.clone(),
                Subject::Addr(_) => String::new(),
            },
            auth_method: self.auth_method.clone(),
            identity: String::new(),
            client_type: AGGREGATE_CLIENT.to_owned(),
            peer: self.peer.clone(),
            prev_hash: Vec::new(),
            hash: Vec::new(),
        }
    }
}

/// The server's aggregator and its counters.
#[derive(Debug)]
pub struct FloodGuard {
    agg: Mutex<Aggregator>,
    /// Aggregates of windows closed by a request, waiting for the flusher.
    pending: Mutex<Vec<Aggregate>>,
    /// Held while aggregates are written, so [`flush_all`] waits for a
    /// write in progress before the server stops.
    writing: tokio::sync::Mutex<()>,
    /// Failures counted without their own record, since start.
    pub counted: std::sync::atomic::AtomicU64,
    /// Aggregate records written, since start.
    pub aggregates: std::sync::atomic::AtomicU64,
}

impl FloodGuard {
    pub fn new(cfg: FloodConfig) -> FloodGuard {
        FloodGuard {
            agg: Mutex::new(Aggregator::new(cfg)),
            pending: Mutex::new(Vec::new()),
            writing: tokio::sync::Mutex::new(()),
            counted: Default::default(),
            aggregates: Default::default(),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Aggregator) -> T) -> T {
        f(&mut self.agg.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn take_pending(&self) -> Vec<Aggregate> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Classify a finished request: `Some` when it is an unauthenticated
/// failure the aggregation applies to.
pub(crate) fn failure_of(
    ctx: &crate::http::Ctx,
    status: u16,
    outcome: Outcome,
    error: &str,
) -> Option<Failure> {
    let state = &ctx.state;
    let (op, access_id, auth_method) = (&ctx.op, &ctx.access_id, &ctx.auth_method);
    let peer = ctx.peer.ip();
    // Server faults are ours, not the caller's: always their own record.
    let client_fault = (400..500).contains(&status) || status == 503;
    if ctx.caller.is_some() || !client_fault {
        return None;
    }
    // Unknown operation names (any path) fold into one key.
    let operation = if crate::ops::find(op).is_some() {
        op.clone()
    } else {
        "unknown-operation".to_owned()
    };
    let known = !access_id.is_empty()
        && (!auth_method.is_empty() || state.snapshot().by_access_id.contains_key(access_id));
    let (subject, auth_method) = if known {
        let method = if auth_method.is_empty() {
            state
                .snapshot()
                .by_access_id
                .get(access_id)
                .map(|am| am.name.clone())
                .unwrap_or_default()
        } else {
            auth_method.clone()
        };
        (Subject::AccessId(access_id.clone()), method)
    } else {
        (Subject::addr(peer), String::new())
    };
    Some(Failure {
        subject,
        operation,
        status,
        outcome,
        error: error.to_owned(),
        peer,
        auth_method,
    })
}

/// Count `f`; true when it still gets its own record.
pub(crate) fn admit(state: &Arc<AppState>, f: &Failure) -> bool {
    let (decision, closed) = state.flood.with(|a| a.observe(now_ms(), f));
    if !closed.is_empty() {
        // Written by the flusher (within a second), or by `flush_all`:
        // never by a detached task a shutdown could cut off.
        state
            .flood
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(closed);
    }
    match decision {
        Decision::Record => true,
        Decision::Counted => {
            state
                .flood
                .counted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            false
        }
    }
}

async fn write(state: &Arc<AppState>, aggregates: Vec<Aggregate>) {
    for a in aggregates {
        let rec = a.record(state.next_request_id(), now_ms());
        let request_id = rec.request_id.clone();
        match state
            .audit
            .record(rec, crate::audit::Extra::default())
            .await
        {
            Ok(seq) => {
                state.audited(seq);
                state
                    .flood
                    .aggregates
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                // The counted requests logged at DEBUG only: one INFO line
                // per aggregate instead.
                let subject = match &a.subject {
                    Subject::Addr(addr) => addr.as_str(),
                    Subject::AccessId(id) => id.as_str(),
                };
                tracing::info!(
                    target: "coffer::audit_flood",
                    request_id = %request_id,
                    op = %a.operation,
                    status = a.status,
                    count = a.count,
                    subject = %subject,
                    peer = %a.peer,
                    first = %crate::timefmt::go_time(a.first_ms),
                    last = %crate::timefmt::go_time(a.last_ms),
                    seq,
                    "unauthenticated failures aggregated into one audit record"
                );
            }
            Err(e) => tracing::error!(
                error = %e,
                count = a.count,
                operation = %a.operation,
                status = a.status,
                "cannot write the aggregate audit record of suppressed unauthenticated failures; they are lost from the audit log"
            ),
        }
    }
}

/// Close windows as time passes (every second), so a flood that stops is
/// still written out within a second of its window's end.
pub(crate) async fn flusher(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let _writing = state.flood.writing.lock().await;
        let mut closed = state.flood.take_pending();
        closed.extend(state.flood.with(|a| a.roll(now_ms())));
        if !closed.is_empty() {
            write(&state, closed).await;
        }
    }
}

/// Graceful shutdown: write every pending count now.
pub(crate) async fn flush_all(state: &Arc<AppState>) {
    // Wait for the flusher's write in progress; it cannot start another.
    let _writing = state.flood.writing.lock().await;
    let mut pending = state.flood.take_pending();
    pending.extend(state.flood.with(Aggregator::drain));
    if !pending.is_empty() {
        tracing::info!(
            aggregates = pending.len(),
            "writing the counts of suppressed unauthenticated failures before stopping"
        );
        write(state, pending).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: i64 = 60_000;

    fn cfg() -> FloodConfig {
        FloodConfig {
            burst: 3,
            known_burst: 5,
            window: Duration::from_millis(W as u64),
            max_keys: 4,
            global_budget: 100,
        }
    }

    fn anon(ip: &str, op: &str, status: u16) -> Failure {
        let peer: IpAddr = ip.parse().unwrap();
        Failure {
            subject: Subject::addr(peer),
            operation: op.into(),
            status,
            outcome: Outcome::Denied,
            error: "invalid token: unknown or revoked".into(),
            peer,
            auth_method: String::new(),
        }
    }

    fn known(id: &str, ip: &str) -> Failure {
        Failure {
            subject: Subject::AccessId(id.into()),
            auth_method: "/m".into(),
            ..anon(ip, "auth", 401)
        }
    }

    fn run(a: &mut Aggregator, t: i64, f: &Failure, n: usize) -> (usize, Vec<Aggregate>) {
        let mut own = 0;
        let mut closed = Vec::new();
        for _ in 0..n {
            let (d, c) = a.observe(t, f);
            own += usize::from(d == Decision::Record);
            closed.extend(c);
        }
        (own, closed)
    }

    #[test]
    fn burst_then_one_aggregate_per_key_and_window() {
        let mut a = Aggregator::new(cfg());
        let f = anon("10.0.0.1", "list-items", 401);
        let (own, closed) = run(&mut a, 10 * W + 5, &f, 1000);
        assert_eq!((own, closed.len()), (3, 0));
        // Another status or operation is another key.
        assert_eq!(
            run(&mut a, 10 * W + 6, &anon("10.0.0.1", "list-items", 400), 5).0,
            3
        );
        assert!(a.roll(10 * W + W - 1).is_empty(), "window still open");
        let aggs = a.roll(11 * W);
        assert_eq!(aggs.len(), 2, "{aggs:?}");
        let agg = aggs.iter().find(|g| g.status == 401).unwrap();
        assert_eq!(agg.count, 997);
        assert_eq!((agg.first_ms, agg.last_ms), (10 * W + 5, 10 * W + 5));
        assert_eq!(agg.peer, "10.0.0.1");
        let rec = agg.record("r".into(), 11 * W);
        assert!(
            rec.error.starts_with("suppressed 997 similar unauthenticated failures from 10.0.0.1 for list-items with status 401 between "),
            "{}",
            rec.error
        );
        assert_eq!(
            (rec.status, rec.client_type.as_str()),
            (401, AGGREGATE_CLIENT)
        );
        // The next window starts afresh.
        assert_eq!(run(&mut a, 11 * W + 1, &f, 10).0, 3);
        assert_eq!(a.drain()[0].count, 7);
        assert_eq!(a.tracked(), 0);
    }

    #[test]
    fn a_window_closed_by_the_next_failure_returns_its_aggregates() {
        let mut a = Aggregator::new(cfg());
        let f = anon("10.0.0.1", "auth", 401);
        run(&mut a, 5, &f, 10);
        let (d, closed) = a.observe(W + 1, &f);
        assert_eq!(d, Decision::Record);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].count, 7);
        // Nothing suppressed: no aggregate.
        let mut b = Aggregator::new(cfg());
        run(&mut b, 5, &f, 3);
        assert!(b.roll(W).is_empty());
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        let mut a = Aggregator::new(cfg());
        let mut own = 0;
        for i in 0..50u16 {
            own += run(
                &mut a,
                1,
                &anon(&format!("2001:db8:1:2::{i:x}"), "auth", 401),
                1,
            )
            .0;
        }
        assert_eq!(own, 3);
        assert_eq!(a.tracked(), 1);
        let aggs = a.drain();
        assert_eq!(
            (aggs[0].count, aggs[0].peer.as_str()),
            (47, "2001:db8:1:2::/64")
        );
    }

    #[test]
    fn the_key_cap_bounds_memory_and_records() {
        let mut a = Aggregator::new(cfg());
        let mut own = 0;
        for i in 0..10_000u32 {
            let ip = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            own += run(&mut a, 7, &anon(&ip, "list-items", 401), 2).0;
        }
        // 4 keys tracked, each with its 2 own records; the rest overflow.
        assert_eq!(a.tracked(), 4);
        assert_eq!(own, 8);
        let aggs = a.drain();
        assert_eq!(aggs.len(), 1, "{aggs:?}");
        assert_eq!(aggs[0].peer, "*");
        assert_eq!(aggs[0].count, 20_000 - 8);
        assert!(aggs[0].message().contains("beyond the tracking cap"));
    }

    #[test]
    fn overflow_entries_are_bounded_too() {
        let mut a = Aggregator::new(FloodConfig {
            max_keys: 0,
            ..cfg()
        });
        for s in 0..1000u16 {
            run(&mut a, 1, &anon("10.0.0.1", "auth", 400 + s), 1);
        }
        let aggs = a.drain();
        assert_eq!(aggs.len(), OVERFLOW_KEYS + 1);
        assert_eq!(aggs.iter().map(|g| g.count).sum::<u64>(), 1000);
        assert!(aggs.iter().any(|g| g.operation == "*" && g.status == 0));
    }

    #[test]
    fn the_global_budget_bounds_own_records() {
        let mut a = Aggregator::new(FloodConfig {
            max_keys: 1_000,
            global_budget: 10,
            ..cfg()
        });
        let mut own = 0;
        for i in 0..100 {
            own += run(&mut a, 1, &anon(&format!("10.0.1.{i}"), "auth", 401), 3).0;
        }
        assert_eq!(own, 10);
        let aggs = a.drain();
        assert_eq!(aggs.iter().map(|g| g.count).sum::<u64>(), 290);
        // Every key that lost a failure has its aggregate.
        assert_eq!(aggs.len(), 100 - 3);
    }

    #[test]
    fn known_access_ids_keep_more_records_and_name_their_addresses() {
        let mut a = Aggregator::new(cfg());
        let mut own = 0;
        for i in 0..20 {
            own += run(&mut a, 3, &known("p-abc", &format!("10.9.0.{i}")), 1).0;
        }
        assert_eq!(own, 5);
        let aggs = a.drain();
        assert_eq!(aggs.len(), 1);
        let g = &aggs[0];
        assert_eq!(g.count, 15);
        assert_eq!(g.peer.split(',').count(), ADDRS_NAMED + 1, "{}", g.peer);
        assert!(g.peer.ends_with(",…"));
        let rec = g.record("r".into(), 4);
        assert_eq!(
            (rec.access_id.as_str(), rec.auth_method.as_str()),
            ("p-abc", "/m")
        );
        assert!(rec.error.contains("from access ID p-abc"), "{}", rec.error);
    }

    #[test]
    fn an_address_flood_cannot_hide_a_real_access_id() {
        // Many addresses fill the address keys and use up the budget of
        // own records; brute force against a real account that follows
        // still gets its own records and its own aggregate, by access ID.
        let mut a = Aggregator::new(FloodConfig {
            global_budget: 6,
            ..cfg()
        });
        for i in 0..50u32 {
            run(&mut a, 1, &anon(&format!("10.1.0.{i}"), "auth", 401), 3);
        }
        assert_eq!(a.tracked(), 4, "the address keys are capped");
        let (own, _) = run(&mut a, 2, &known("p-victim", "10.1.0.99"), 20);
        assert_eq!(own, 5, "the access ID keeps its own burst");
        let aggs = a.drain();
        let g = aggs
            .iter()
            .find(|g| g.subject == Subject::AccessId("p-victim".into()))
            .expect("an aggregate naming the access ID");
        assert_eq!(g.count, 15);
        assert_eq!(g.peer, "10.1.0.99");
        // Every failure is accounted for: own records plus counts.
        let counted: u64 = aggs.iter().map(|g| g.count).sum();
        assert_eq!(counted + 6 + 5, 150 + 20);
    }

    #[test]
    fn drain_empties_everything() {
        let mut a = Aggregator::new(cfg());
        run(&mut a, 1, &anon("10.0.0.1", "auth", 401), 10);
        run(&mut a, 1, &anon("10.0.0.2", "auth", 401), 2);
        let aggs = a.drain();
        assert_eq!(aggs.len(), 1);
        assert!(a.drain().is_empty());
        // The own-record budget started again too.
        assert_eq!(run(&mut a, 2, &anon("10.0.0.1", "auth", 401), 3).0, 3);
    }
}
