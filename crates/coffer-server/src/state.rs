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
use coffer_crypto::{DataKey, KeyedHasher, RootKey};
use coffer_store::{Audit, PolicyData, Store};

use crate::audit::AuditSink;
use crate::config::Config;
use crate::error::ApiError;

/// Keys derived from the root key, plus the unwrapped data keys.
pub struct Keys {
    pub token_hasher: KeyedHasher,
    pub access_key_hasher: KeyedHasher,
    /// Universal Identity token secrets (its own purpose: a UID secret
    /// never matches a session token's hash).
    pub uid_token_hasher: KeyedHasher,
    pub audit: Arc<AuditMac>,
    pub data_keys: HashMap<i64, DataKey>,
    pub active_key_id: i64,
}

impl Keys {
    /// Load (or, for an empty store, create) the data keys. Nodes starting
    /// together on an empty database agree on one key (the store keeps the
    /// first); creating it is audited.
    pub async fn load(root: &RootKey, store: &dyn Store) -> anyhow::Result<Keys> {
        let audit = Arc::new(AuditMac::new(root));
        let mut data_keys = HashMap::new();
        let mut wrapped = store.data_keys().await?;
        if wrapped.is_empty() {
            let id = random_id()?;
            let dek = DataKey::generate()?;
            let w = root.wrap(&dek, &coffer_crypto::data_key_label(id))?;
            let mut rec = system_record("init-data-key", &format!("data key {id:x}"));
            wrapped = store
                .ensure_data_key((id, &w), now_ms(), Audit::new(&mut rec, &*audit))
                .await?;
        }
        let mut active_key_id = 0;
        for (id, w) in &wrapped {
            let dek = root.unwrap(w, &coffer_crypto::data_key_label(*id)).map_err(|_| {
                anyhow::anyhow!(
                    "the root key (fingerprint {}) cannot open this database's data keys: wrong root key for this storage",
                    root.fingerprint()
                )
            })?;
            data_keys.insert(*id, dek);
            active_key_id = *id;
        }
        Ok(Keys {
            token_hasher: KeyedHasher::new(root, "token-hash"),
            access_key_hasher: KeyedHasher::new(root, "access-key-hash"),
            uid_token_hasher: KeyedHasher::new(root, "uid-token-hash"),
            audit,
            data_keys,
            active_key_id,
        })
    }

    pub fn data_key(&self, id: i64) -> Result<&DataKey, ApiError> {
        self.data_keys
            .get(&id)
            .ok_or_else(|| ApiError::internal(format!("data key {id} is not loaded")))
    }
}

/// The audit chain MAC.
pub struct AuditMac(KeyedHasher);

impl AuditMac {
    pub fn new(root: &RootKey) -> Self {
        AuditMac(KeyedHasher::new(root, "audit-chain"))
    }
}

impl ChainSealer for AuditMac {
    fn seal(&self, record: &AuditRecord) -> Vec<u8> {
        self.0.hash(&record.canonical_bytes())
    }
    fn seal_head(&self, seq: i64, hash: &[u8]) -> Vec<u8> {
        self.0.hash(&head_bytes(seq, hash))
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
    /// for [`ITEM_CACHE_TTL`]: a CA signing thousands of certificates a
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
        if self.policy_stale.load(Ordering::Acquire) {
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
}

impl<K: std::hash::Hash + Eq + Clone, V: Clone> Cache<K, V> {
    pub fn new(capacity: usize, ttl: Option<Duration>) -> Self {
        Cache {
            map: RwLock::new(HashMap::new()),
            capacity,
            ttl,
        }
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
        m.get(key)
            .filter(|(_, at)| self.fresh(*at))
            .map(|(v, _)| v.clone())
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

/// How long another node's write to an item may take to show here.
pub const ITEM_CACHE_TTL: Duration = Duration::from_secs(1);

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
