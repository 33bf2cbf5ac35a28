//! Shared server state: the store, the key material, the in-memory policy
//! snapshot and token cache (so authenticating and authorizing a request
//! costs no database round trip), and the failed-login limiter.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use coffer_core::audit::{AuditRecord, ChainSealer, Outcome, head_bytes};
use coffer_core::model::{Association, AuthMethod, Item, Role, SealedVersion, TokenRecord};
use coffer_core::policy::Rule;
use coffer_core::subclaims::match_sub_claims;
use coffer_crypto::{DataKey, Kek, KeyedHasher, RootKey};
use coffer_store::{Audit, PolicyData, Store};

use crate::audit::AuditSink;
use crate::config::Config;
use crate::error::ApiError;

/// Keys derived from the derivation key (see [`derivation_key`]), plus the
/// unwrapped data keys and the key-encryption key that opens new ones.
pub struct Keys {
    pub token_hasher: KeyedHasher,
    pub access_key_hasher: KeyedHasher,
    /// Universal Identity token secrets (its own purpose: a UID secret
    /// never matches a session token's hash).
    pub uid_token_hasher: KeyedHasher,
    /// MACs of login challenges and OIDC login states: any node can check
    /// one another node issued, without remembering it (`identity/cert.rs`).
    pub login_nonce_mac: KeyedHasher,
    /// Seals OIDC login states (`identity/oidc.rs`), each under a subkey
    /// of a random salt: `oidc-auth-url` is public, so its states must
    /// use neither a data key nor any one key's nonce budget.
    pub oidc_state_keys: KeyedHasher,
    pub audit: Arc<AuditMac>,
    /// The data keys and which one seals new values; replaced as a whole
    /// when `coffer operator rotate-data-key` adds a key.
    ring: RwLock<Arc<DataKeyRing>>,
    /// Derived from the root key (the root key itself is dropped after
    /// start-up): opens data keys added while the server runs.
    kek: Kek,
    /// A data key ID was asked for that is not loaded: reload soon.
    missing: AtomicBool,
    /// Serializes reloads (two at once could each replace the ring with
    /// what it read, the later one without a key the other added); holds
    /// when the last reload started, to rate-limit reloads on a miss.
    reload_lock: tokio::sync::Mutex<Option<Instant>>,
}

/// The unwrapped data keys; the newest is the active one.
struct DataKeyRing {
    keys: HashMap<i64, Arc<DataKey>>,
    active: i64,
}

/// The key the keyed hashes and the audit MAC derive from: the stored
/// derivation key (written by the first root-key rotation, wrapped by the
/// root key) or, when there is none, the root key itself.
pub async fn derivation_key(root: &RootKey, store: &dyn Store) -> anyhow::Result<RootKey> {
    match store.get_meta(coffer_store::DERIVATION_KEY).await? {
        None => Ok(root.duplicate()),
        Some(text) => {
            use base64::Engine;
            let wrapped = base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| {
                    anyhow::anyhow!(
                        "the stored derivation key is not base64: the meta table was modified"
                    )
                })?;
            root.unwrap_key(&wrapped, coffer_crypto::DERIVATION_KEY_LABEL)
                .map_err(|_| wrong_root_key(root))
        }
    }
}

fn wrong_root_key(root: &RootKey) -> anyhow::Error {
    anyhow::anyhow!(
        "the root key (fingerprint {}) cannot open this database's data keys: wrong root key for this storage (after `coffer operator rotate-root-key`, use the new root key)",
        root.fingerprint()
    )
}

impl Keys {
    /// Load (or, for an empty store, create) the data keys. Nodes starting
    /// together on an empty database agree on one key (the store keeps the
    /// first); creating it is audited.
    pub async fn load(root: &RootKey, store: &dyn Store) -> anyhow::Result<Keys> {
        let base = derivation_key(root, store).await?;
        let audit = Arc::new(AuditMac::new(&base));
        let kek = root.kek();
        let mut data_keys = HashMap::new();
        let mut wrapped = store.data_keys().await?;
        if wrapped.is_empty() {
            let id = random_id()?;
            let dek = DataKey::generate()?;
            let w = kek.wrap(&dek, &coffer_crypto::data_key_label(id))?;
            let mut rec = system_record("init-data-key", &format!("data key {id:x}"));
            wrapped = store
                .ensure_data_key((id, &w), now_ms(), Audit::new(&mut rec, &*audit))
                .await?;
        }
        let mut active = 0;
        for (id, w) in &wrapped {
            let dek = kek
                .unwrap(w, &coffer_crypto::data_key_label(*id))
                .map_err(|_| wrong_root_key(root))?;
            data_keys.insert(*id, Arc::new(dek));
            active = *id;
        }
        Ok(Keys {
            token_hasher: KeyedHasher::new(&base, "token-hash"),
            access_key_hasher: KeyedHasher::new(&base, "access-key-hash"),
            uid_token_hasher: KeyedHasher::new(&base, "uid-token-hash"),
            login_nonce_mac: KeyedHasher::new(&base, "login-nonce-mac"),
            oidc_state_keys: KeyedHasher::new(&base, "oidc-state-key"),
            audit,
            ring: RwLock::new(Arc::new(DataKeyRing {
                keys: data_keys,
                active,
            })),
            kek,
            missing: AtomicBool::new(false),
            reload_lock: tokio::sync::Mutex::new(None),
        })
    }

    fn ring(&self) -> Arc<DataKeyRing> {
        self.ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The data key that seals new values.
    pub fn active_key_id(&self) -> i64 {
        self.ring().active
    }

    pub fn data_key(&self, id: i64) -> Result<Arc<DataKey>, ApiError> {
        match self.ring().keys.get(&id) {
            Some(k) => Ok(k.clone()),
            None => {
                self.missing.store(true, Ordering::Release);
                Err(ApiError::internal(format!(
                    "data key {id:x} is not loaded (added by a data-key rotation this node has not seen yet, or one its root key cannot open: see the log)"
                )))
            }
        }
    }

    /// Was a data key asked for that is not loaded (since the last reload)?
    pub fn key_missing(&self) -> bool {
        self.missing.load(Ordering::Acquire)
    }

    /// Load data keys added to the store since start-up (a data-key
    /// rotation); the newest becomes the active one. A key this node's
    /// root key cannot open (the root key was rotated since it started) is
    /// skipped with an error in the log. Returns how many keys were added.
    pub async fn reload_data_keys(&self, store: &dyn Store) -> anyhow::Result<usize> {
        let mut last = self.reload_lock.lock().await;
        *last = Some(Instant::now());
        self.reload_locked(store).await
    }

    /// Before opening a value sealed with data key `id`: when this node has
    /// not loaded it (a data-key rotation it has not noticed yet), reload
    /// the data keys now rather than fail the request. Coalesced and
    /// rate-limited (one reload per 100 ms), so requests naming a key that
    /// does not exist cannot flood the store; errors are only logged (the
    /// open that follows reports the missing key).
    pub async fn load_missing(&self, store: &dyn Store, id: i64) {
        if self.ring().keys.contains_key(&id) {
            return;
        }
        let mut last = self.reload_lock.lock().await;
        if self.ring().keys.contains_key(&id)
            || last.is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.reload_locked(store).await {
            tracing::warn!(error = %e, "data key reload failed");
        }
    }

    async fn reload_locked(&self, store: &dyn Store) -> anyhow::Result<usize> {
        self.missing.store(false, Ordering::Release);
        let wrapped = store.data_keys().await?;
        let current = self.ring();
        if wrapped.iter().all(|(id, _)| current.keys.contains_key(id)) {
            return Ok(0);
        }
        let mut keys = current.keys.clone();
        let mut active = current.active;
        let mut added = 0;
        for (id, w) in &wrapped {
            if keys.contains_key(id) {
                active = *id;
                continue;
            }
            match self.kek.unwrap(w, &coffer_crypto::data_key_label(*id)) {
                Ok(dek) => {
                    keys.insert(*id, Arc::new(dek));
                    active = *id;
                    added += 1;
                }
                Err(_) => tracing::error!(
                    key_id = %format!("{id:x}"),
                    "a new data key cannot be opened with the root key this node started with: the root key was rotated; restart this node with the new root key"
                ),
            }
        }
        *self.ring.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::new(DataKeyRing { keys, active });
        if added > 0 {
            tracing::info!(added, active_key_id = %format!("{active:x}"), "loaded new data keys");
        }
        Ok(added)
    }
}

/// The audit chain MAC.
pub struct AuditMac(KeyedHasher);

impl AuditMac {
    /// `base`: the derivation key (see [`derivation_key`]).
    pub fn new(base: &RootKey) -> Self {
        AuditMac(KeyedHasher::new(base, "audit-chain"))
    }
}

impl ChainSealer for AuditMac {
    fn seal(&self, record: &AuditRecord) -> Vec<u8> {
        self.0.hash(&record.canonical_bytes())
    }
    fn seal_head(&self, seq: i64, hash: &[u8]) -> Vec<u8> {
        self.0.hash(&head_bytes(seq, hash))
    }
    fn seal_checkpoint(&self, seq: i64, hash: &[u8], time_ms: i64) -> Vec<u8> {
        self.0
            .hash(&coffer_core::audit::checkpoint_bytes(seq, hash, time_ms))
    }
}

/// The audit record of something the server does on its own (start-up
/// key creation, bootstrap, data migrations): no caller, no peer.
pub fn system_record(operation: &str, object: &str) -> AuditRecord {
    AuditRecord {
        seq: 0,
        time_ms: now_ms(),
        request_id: format!("system-{}", now_ms()),
        operation: operation.to_owned(),
        object: object.to_owned(),
        outcome: Outcome::Allowed,
        status: 200,
        error: String::new(),
        access_id: String::new(),
        auth_method: String::new(),
        identity: "coffer-server".into(),
        client_type: "coffer-server".into(),
        peer: String::new(),
        prev_hash: Vec::new(),
        hash: Vec::new(),
    }
}

/// Everything a request handler needs.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub keys: Keys,
    pub config: Config,
    pub policy: RwLock<Arc<PolicySnapshot>>,
    pub tokens: TokenCache,
    pub items: ItemCache,
    /// Signed CRLs per PKI issuer name, for [`CRL_CACHE_TTL`] (cleared by
    /// a local revocation): an anonymous client cannot make every GET
    /// read the table and sign.
    pub crls: Cache<String, Arc<String>>,
    /// Keys opened for use, by (item id, version, the sealed blob's nonce),
    /// for `--sync-interval-ms`: a CA signing thousands of certificates a
    /// second opens and parses its key once, not per certificate.
    pub opened_keys: Cache<(i64, i32, [u8; 12]), Arc<coffer_keys::keys::KeyMaterial>>,
    pub audit: AuditSink,
    pub limiter: LoginLimiter,
    /// JWKS of OAuth2/JWT auth methods, per access ID.
    pub jwks: crate::jwks::JwksCache,
    /// `jti` values of JWT logins, for methods with refuse-replay.
    pub replay: crate::jwks::ReplayCache,
    pub request_prefix: String,
    pub request_counter: std::sync::atomic::AtomicU64,
    /// Set by a committed policy or revocation change (synchronously, before
    /// any await point): the next request reloads the snapshot first.
    pub policy_stale: AtomicBool,
    /// The highest audit `seq` this process has written: a store head
    /// below it means records were removed while the server ran.
    pub audit_high_water: AtomicI64,
    /// Requests in progress (see `Config::max_requests_in_flight`).
    pub in_flight: Arc<tokio::sync::Semaphore>,
    /// Connection pools to the databases of targets and dynamic secrets.
    pub db: crate::dbconn::DbPools,
    /// Readiness: the cached store probe (health.rs).
    pub health: crate::health::Health,
    /// Counts unauthenticated failures beyond their own records (see
    /// `audit_flood.rs`).
    pub flood: crate::audit_flood::FloodGuard,
    /// The streaming audit sink (`--audit-file`), when configured.
    pub audit_stream: Option<crate::audit_sink::AuditStream>,
}

impl AppState {
    /// The policy snapshot as it is (it may be stale; see [`Self::fresh_snapshot`]).
    pub fn snapshot(&self) -> Arc<PolicySnapshot> {
        self.policy
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The policy snapshot, reloaded first when a local change made it stale.
    pub async fn fresh_snapshot(&self) -> Result<Arc<PolicySnapshot>, ApiError> {
        let stale = self.policy_stale.load(Ordering::Acquire);
        crate::metrics::cache(crate::metrics::CacheKind::Policy, !stale);
        if stale {
            self.reload_policy().await?;
        }
        Ok(self.snapshot())
    }

    /// Reload auth methods, roles and associations from the store, in one
    /// consistent read. A snapshot never replaces a newer one (reloads can
    /// race); a failed reload leaves the snapshot marked stale.
    pub async fn reload_policy(&self) -> Result<(), ApiError> {
        self.policy_stale.store(false, Ordering::Release);
        let data = match self.store.load_policy().await {
            Ok(d) => d,
            Err(e) => {
                self.policy_stale.store(true, Ordering::Release);
                return Err(e.into());
            }
        };
        let snap = Arc::new(PolicySnapshot::from_data(data));
        let mut current = self.policy.write().unwrap_or_else(PoisonError::into_inner);
        if snap.generation >= current.generation {
            *current = snap;
        }
        Ok(())
    }

    /// Call right after a policy or revocation change committed, before any
    /// await point: cached tokens go and the snapshot is reloaded before it
    /// is used again, even if this request's task never runs another line.
    pub fn policy_changed(&self) {
        self.tokens.clear();
        self.policy_stale.store(true, Ordering::Release);
    }

    /// [`Self::policy_changed`], then reload now (so the response reflects it).
    pub async fn policy_changed_reload(&self) {
        self.policy_changed();
        if let Err(e) = self.reload_policy().await {
            tracing::warn!(error = ?e, "policy reload after a change failed; the next request retries");
        }
    }

    /// Note an audit record written by this process.
    pub fn audited(&self, seq: i64) {
        self.audit_high_water.fetch_max(seq, Ordering::AcqRel);
        self.audit.committed();
    }

    pub fn next_request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.request_prefix)
    }
}

/// Auth methods, roles and associations, held in memory.
#[derive(Debug, Default)]
pub struct PolicySnapshot {
    pub generation: i64,
    pub auth_methods: HashMap<String, Arc<AuthMethod>>,
    pub by_access_id: HashMap<String, Arc<AuthMethod>>,
    pub roles: HashMap<String, Arc<Role>>,
    /// Associations per auth method name.
    pub assocs: HashMap<String, Vec<Association>>,
}

impl PolicySnapshot {
    pub fn from_data(data: PolicyData) -> PolicySnapshot {
        let mut snap = PolicySnapshot {
            generation: data.generation,
            ..Default::default()
        };
        for am in data.auth_methods {
            let am = Arc::new(am);
            snap.by_access_id.insert(am.access_id.clone(), am.clone());
            snap.auth_methods.insert(am.name.clone(), am);
        }
        for role in data.roles {
            snap.roles.insert(role.name.clone(), Arc::new(role));
        }
        for a in data.associations {
            snap.assocs
                .entry(a.auth_method_name.clone())
                .or_default()
                .push(a);
        }
        snap
    }

    /// Every association of a role, across auth methods.
    pub fn assocs_of_role<'a>(&'a self, role: &'a str) -> impl Iterator<Item = &'a Association> {
        self.assocs
            .values()
            .flatten()
            .filter(move |a| a.role_name == role)
    }

    /// The roles whose association with the caller's auth method matches its claims.
    pub fn roles_for(&self, token: &TokenRecord) -> Vec<Arc<Role>> {
        let mut out: Vec<Arc<Role>> = Vec::new();
        for a in self
            .assocs
            .get(&token.auth_method_name)
            .into_iter()
            .flatten()
        {
            if match_sub_claims(&a.sub_claims, &token.claims, a.case_sensitive).is_ok()
                && let Some(role) = self.roles.get(&a.role_name)
                && !out.iter().any(|r| r.name == role.name)
            {
                out.push(role.clone());
            }
        }
        out
    }
}

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token: Arc<TokenRecord>,
    pub roles: Vec<Arc<Role>>,
}

impl Caller {
    pub fn rules(&self) -> impl Iterator<Item = &Rule> + Clone {
        self.roles.iter().flat_map(|r| r.rules.iter())
    }
}

/// A bounded in-memory map with an optional time-to-live per entry.
///
/// Used for tokens (no TTL: invalidated explicitly and on generation
/// changes) and for items (short TTL, so several nodes sharing a database
/// see each other's writes within that time; local writes invalidate at
/// once). The store stays the source of truth: when full, the cache drops
/// stale entries, then an arbitrary quarter of the rest (which only costs
/// lookups). Evicted entries are freed after the lock is released, and at
/// most a quarter at a time: clearing a full 100,000-token cache under the
/// lock stalled every request for hundreds of milliseconds.
pub struct Cache<K, V> {
    map: RwLock<HashMap<K, (V, Instant)>>,
    capacity: usize,
    ttl: Option<Duration>,
    /// Hits and misses are counted under this name (metrics.rs).
    counted: Option<crate::metrics::CacheKind>,
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Cache<K, V> {
    pub fn new(capacity: usize, ttl: Option<Duration>) -> Self {
        Cache {
            map: RwLock::new(HashMap::new()),
            capacity,
            ttl,
            counted: None,
        }
    }

    /// Count this cache's hits and misses as `kind` in the metrics.
    pub fn counted(mut self, kind: crate::metrics::CacheKind) -> Self {
        self.counted = Some(kind);
        self
    }

    fn fresh(&self, at: Instant) -> bool {
        self.ttl.is_none_or(|ttl| at.elapsed() < ttl)
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        let m = self.map.read().unwrap_or_else(PoisonError::into_inner);
        let found = m
            .get(key)
            .filter(|(_, at)| self.fresh(*at))
            .map(|(v, _)| v.clone());
        if let Some(kind) = self.counted {
            crate::metrics::cache(kind, found.is_some());
        }
        found
    }

    pub fn insert(&self, key: K, value: V) {
        let evicted = {
            let mut m = self.map.write().unwrap_or_else(PoisonError::into_inner);
            let evicted = if m.len() >= self.capacity && !m.contains_key(&key) {
                self.evict(&mut m)
            } else {
                Vec::new()
            };
            m.insert(key, (value, Instant::now()));
            evicted
        };
        drop(evicted);
    }

    /// Take out the stale entries, then (if still full) a quarter of the
    /// capacity; the caller drops them outside the lock.
    fn evict(&self, m: &mut HashMap<K, (V, Instant)>) -> Vec<(K, (V, Instant))> {
        let mut out: Vec<_> = if self.ttl.is_some() {
            m.extract_if(|_, (_, at)| !self.fresh(*at)).collect()
        } else {
            Vec::new()
        };
        if m.len() >= self.capacity {
            // Stopping the iterator early keeps the rest (no full scan).
            out.extend(m.extract_if(|_, _| true).take((self.capacity / 4).max(1)));
        }
        out
    }

    pub fn len(&self) -> usize {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.map
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    pub fn clear(&self) {
        // Freed outside the lock, like evictions.
        let old = std::mem::take(&mut *self.map.write().unwrap_or_else(PoisonError::into_inner));
        drop(old);
    }
}

/// Valid tokens by keyed hash. Invalidated on every local change and when
/// the generation moves; the TTL is a backstop: an entry is read from the
/// store again at least this often, whatever happened to the generation.
pub type TokenCache = Cache<Vec<u8>, Arc<TokenRecord>>;

/// Longest time a cached token is trusted without reading the store.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(30);

/// Latest version of items by name (sealed: values are decrypted per request).
pub type ItemCache = Cache<String, Arc<(Item, SealedVersion)>>;

/// How long a signed CRL is served before it is rebuilt (another node's
/// revocation shows within this time; a local one at once).
pub const CRL_CACHE_TTL: Duration = Duration::from_secs(5);

/// Slows down repeated failed logins per (access ID, source address).
///
/// After `FREE_FAILURES` consecutive failures from one address, each
/// further attempt from that address must wait an exponentially growing
/// delay (capped) after the previous failure, or is refused with 429
/// without checking the key. A success resets it. Keyed on the address
/// too, so that someone who merely knows an access ID cannot lock its owner
/// out from elsewhere (access keys and UID tokens are 256-bit random
/// secrets: the back-off limits noise, not a real guessing threat).
pub struct LoginLimiter {
    failures: Mutex<HashMap<(String, IpAddr), (u32, Instant)>>,
}

const FREE_FAILURES: u32 = 5;
const MAX_DELAY: Duration = Duration::from_secs(60);
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
const MAX_TRACKED: usize = 100_000;

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter {
            failures: Mutex::new(HashMap::new()),
        }
    }
}

impl LoginLimiter {
    fn delay_for(count: u32) -> Duration {
        if count < FREE_FAILURES {
            return Duration::ZERO;
        }
        let exp = (count - FREE_FAILURES).min(16);
        (Duration::from_millis(500) * 2u32.pow(exp)).min(MAX_DELAY)
    }

    fn key(access_id: &str, peer: IpAddr) -> (String, IpAddr) {
        (access_id.to_owned(), peer.to_canonical())
    }

    /// Refuse the attempt if (access ID, address) is in its back-off window.
    pub fn check(&self, access_id: &str, peer: IpAddr) -> Result<(), ApiError> {
        let m = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((count, last)) = m.get(&Self::key(access_id, peer)) {
            let wait = Self::delay_for(*count);
            let elapsed = last.elapsed();
            if elapsed < wait {
                let secs = (wait - elapsed).as_secs().max(1);
                return Err(ApiError::TooManyRequests(format!(
                    "too many failed logins for this access ID from {peer}; retry in {secs} s"
                )));
            }
        }
        Ok(())
    }

    pub fn failed(&self, access_id: &str, peer: IpAddr) {
        let mut m = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if m.len() >= MAX_TRACKED {
            m.retain(|_, (_, last)| last.elapsed() < FORGET_AFTER);
            if m.len() >= MAX_TRACKED {
                // Still full: forget the oldest half rather than grow.
                let mut ages: Vec<Instant> = m.values().map(|(_, t)| *t).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                m.retain(|_, (_, last)| *last > cut);
            }
        }
        let e = m
            .entry(Self::key(access_id, peer))
            .or_insert((0, Instant::now()));
        if e.1.elapsed() > FORGET_AFTER {
            e.0 = 0;
        }
        e.0 += 1;
        e.1 = Instant::now();
    }

    pub fn succeeded(&self, access_id: &str, peer: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&Self::key(access_id, peer));
    }
}

pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// IDs below this are exact in every JSON client: JavaScript numbers are
/// doubles, whose integers are exact up to 2^53.
pub const MAX_JSON_SAFE_ID: i64 = (1 << 53) - 1;

/// A random ID in `1..=2^53-1` (items, data keys): large enough that random
/// IDs do not collide in practice, small enough that a JavaScript client
/// reads `item_id` exactly.
pub fn random_id() -> Result<i64, coffer_crypto::CryptoError> {
    let mut b = [0u8; 8];
    coffer_crypto::fill_random(&mut b)?;
    let id = i64::try_from(u64::from_be_bytes(b) >> 11).unwrap_or(1);
    Ok(id.clamp(1, MAX_JSON_SAFE_ID))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_evicts_a_quarter_not_everything() {
        let c: Cache<u32, u32> = Cache::new(100, None);
        for i in 0..100 {
            c.insert(i, i);
        }
        assert_eq!(c.len(), 100);
        c.insert(1000, 1);
        assert_eq!(c.len(), 76, "a quarter evicted, the new entry added");
        assert_eq!(c.get(&1000), Some(1));
        for i in 2000..5000 {
            c.insert(i, i);
            assert!(c.len() <= 100);
        }
        // Re-inserting a present key never evicts.
        let before = c.len();
        c.insert(4999, 7);
        assert_eq!((c.len(), c.get(&4999)), (before, Some(7)));
        // A capacity below 4 still evicts one at a time.
        let tiny: Cache<u32, u32> = Cache::new(1, None);
        tiny.insert(1, 1);
        tiny.insert(2, 2);
        assert_eq!((tiny.len(), tiny.get(&2)), (1, Some(2)));
    }

    #[test]
    fn stale_entries_go_first() {
        let c: Cache<u32, u32> = Cache::new(4, Some(Duration::from_millis(20)));
        for i in 0..4 {
            c.insert(i, i);
        }
        std::thread::sleep(Duration::from_millis(30));
        c.insert(9, 9);
        assert_eq!(
            c.len(),
            1,
            "the four stale entries were evicted, nothing else"
        );
        assert_eq!(c.get(&0), None);
    }

    #[test]
    fn limiter_backs_off_per_access_id_and_address() {
        let l = LoginLimiter::default();
        let attacker: IpAddr = "127.0.0.2".parse().unwrap();
        let owner: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..FREE_FAILURES {
            assert!(l.check("p-x", attacker).is_ok());
            l.failed("p-x", attacker);
        }
        assert!(matches!(
            l.check("p-x", attacker),
            Err(ApiError::TooManyRequests(_))
        ));
        // The owner, elsewhere, is not locked out by someone else's guesses.
        assert!(l.check("p-x", owner).is_ok());
        assert!(l.check("p-other", attacker).is_ok());
        // An IPv4-mapped IPv6 address is the same address.
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert!(l.check("p-x", mapped).is_err());
        l.succeeded("p-x", attacker);
        assert!(l.check("p-x", attacker).is_ok());
        assert_eq!(LoginLimiter::delay_for(100), MAX_DELAY);
    }

    #[test]
    fn random_ids_are_exact_in_javascript() {
        for _ in 0..10_000 {
            let id = random_id().unwrap();
            assert!((1..=MAX_JSON_SAFE_ID).contains(&id));
            // Exact as a double.
            assert_eq!(id as f64 as i64, id);
        }
    }
}
