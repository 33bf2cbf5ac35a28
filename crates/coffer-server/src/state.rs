//! Shared server state: the store, the key material, the in-memory policy
//! snapshot and token cache (so authenticating and authorizing a request
//! costs no database round trip), and the failed-login limiter.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use coffer_core::audit::{AuditRecord, ChainSealer};
use coffer_core::model::{Association, AuthMethod, Item, Role, SealedVersion, TokenRecord};
use coffer_core::policy::Rule;
use coffer_core::subclaims::match_sub_claims;
use coffer_crypto::{DataKey, KeyedHasher, RootKey};
use coffer_store::Store;

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
    /// Load (or, for an empty store, create) the data keys.
    pub async fn load(root: &RootKey, store: &dyn Store) -> anyhow::Result<Keys> {
        let mut data_keys = HashMap::new();
        let mut wrapped = store.data_keys().await?;
        if wrapped.is_empty() {
            let id = random_id()?;
            let dek = DataKey::generate()?;
            let w = root.wrap(&dek, &coffer_crypto::data_key_label(id))?;
            store.insert_data_key(id, &w, now_ms()).await?;
            wrapped = store.data_keys().await?;
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
            audit: Arc::new(AuditMac::new(root)),
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
}

/// Everything a request handler needs.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub keys: Keys,
    pub config: Config,
    pub policy: RwLock<Arc<PolicySnapshot>>,
    pub tokens: TokenCache,
    pub items: ItemCache,
    pub audit: AuditSink,
    pub limiter: LoginLimiter,
    /// JWKS of OAuth2/JWT auth methods, per access ID.
    pub jwks: crate::jwks::JwksCache,
    /// `jti` values of JWT logins, for methods with refuse-replay.
    pub replay: crate::jwks::ReplayCache,
    pub request_prefix: String,
    pub request_counter: std::sync::atomic::AtomicU64,
}

impl AppState {
    pub fn snapshot(&self) -> Arc<PolicySnapshot> {
        self.policy.read().expect("policy lock").clone()
    }

    /// Reload auth methods, roles and associations from the store.
    pub async fn reload_policy(&self) -> Result<(), ApiError> {
        let generation = self.store.generation().await?;
        let snap = PolicySnapshot::load(&*self.store, generation).await?;
        *self.policy.write().expect("policy lock") = Arc::new(snap);
        Ok(())
    }

    /// After a change to auth methods, roles, rules or associations: bump
    /// the shared generation (other nodes notice within a second), drop
    /// cached tokens and reload the snapshot.
    pub async fn policy_changed(&self) -> Result<(), ApiError> {
        self.store.bump_generation().await?;
        self.tokens.clear();
        self.reload_policy().await
    }

    pub fn next_request_id(&self) -> String {
        let n = self
            .request_counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    pub async fn load(store: &dyn Store, generation: i64) -> Result<PolicySnapshot, ApiError> {
        let mut snap = PolicySnapshot {
            generation,
            ..Default::default()
        };
        for am in store.list_auth_methods().await? {
            let am = Arc::new(am);
            snap.by_access_id.insert(am.access_id.clone(), am.clone());
            snap.auth_methods.insert(am.name.clone(), am);
        }
        for role in store.list_roles().await? {
            snap.roles.insert(role.name.clone(), Arc::new(role));
        }
        for a in store.list_associations().await? {
            snap.assocs
                .entry(a.auth_method_name.clone())
                .or_default()
                .push(a);
        }
        Ok(snap)
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
        let m = self.map.read().expect("cache lock");
        m.get(key)
            .filter(|(_, at)| self.fresh(*at))
            .map(|(v, _)| v.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        let evicted = {
            let mut m = self.map.write().expect("cache lock");
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
        self.map.read().expect("cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn remove<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        self.map.write().expect("cache lock").remove(key);
    }

    pub fn clear(&self) {
        self.map.write().expect("cache lock").clear();
    }
}

/// Valid tokens by keyed hash.
pub type TokenCache = Cache<Vec<u8>, Arc<TokenRecord>>;

/// Latest version of items by name (sealed: values are decrypted per request).
pub type ItemCache = Cache<String, Arc<(Item, SealedVersion)>>;

/// How long another node's write to an item may take to show here.
pub const ITEM_CACHE_TTL: Duration = Duration::from_secs(1);

/// Slows down repeated failed logins per access ID.
///
/// After `FREE_FAILURES` consecutive failures, each further attempt must
/// wait an exponentially growing delay (capped) after the previous failure,
/// or is refused with 429 without checking the key. A success resets it.
pub struct LoginLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
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

    /// Refuse the attempt if the access ID is still in its back-off window.
    pub fn check(&self, access_id: &str) -> Result<(), ApiError> {
        let m = self.failures.lock().expect("limiter");
        if let Some((count, last)) = m.get(access_id) {
            let wait = Self::delay_for(*count);
            let elapsed = last.elapsed();
            if elapsed < wait {
                let secs = (wait - elapsed).as_secs().max(1);
                return Err(ApiError::TooManyRequests(format!(
                    "too many failed logins for this access ID; retry in {secs} s"
                )));
            }
        }
        Ok(())
    }

    pub fn failed(&self, access_id: &str) {
        let mut m = self.failures.lock().expect("limiter");
        if m.len() >= MAX_TRACKED {
            m.retain(|_, (_, last)| last.elapsed() < FORGET_AFTER);
        }
        let e = m.entry(access_id.to_owned()).or_insert((0, Instant::now()));
        if e.1.elapsed() > FORGET_AFTER {
            e.0 = 0;
        }
        e.0 += 1;
        e.1 = Instant::now();
    }

    pub fn succeeded(&self, access_id: &str) {
        self.failures.lock().expect("limiter").remove(access_id);
    }
}

pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// A random positive 63-bit ID (items, data keys).
pub fn random_id() -> Result<i64, coffer_crypto::CryptoError> {
    let mut b = [0u8; 8];
    coffer_crypto::fill_random(&mut b)?;
    Ok((u64::from_be_bytes(b) >> 1).max(1) as i64)
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
    fn limiter_backs_off_after_free_failures() {
        let l = LoginLimiter::default();
        for _ in 0..FREE_FAILURES {
            assert!(l.check("p-x").is_ok());
            l.failed("p-x");
        }
        assert!(matches!(l.check("p-x"), Err(ApiError::TooManyRequests(_))));
        assert!(l.check("p-other").is_ok());
        l.succeeded("p-x");
        assert!(l.check("p-x").is_ok());
        assert_eq!(LoginLimiter::delay_for(100), MAX_DELAY);
    }
}
