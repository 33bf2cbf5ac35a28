//! JWKS fetching and caching for OAuth2/JWT auth methods, and the `jti`
//! replay cache.
//!
//! Each method's key set is cached for `ttl`. A token whose `kid` is not in
//! a fresh set triggers at most one refetch per `min_refetch` interval, so
//! forged kids cannot cause a fetch storm; one fetch per method runs at a
//! time (the others wait for its result). An expired set that cannot be
//! refetched fails logins closed; failed fetches are also retried at most
//! once per interval. Only HTTPS (or HTTP to loopback) is fetched, with
//! timeouts, no redirects and a size limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::jwt::{KeySet, MAX_JWKS_BYTES, Rejected, check_jwks_url};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_METHODS: usize = 10_000;

#[derive(Default)]
struct EntryState {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
}

impl EntryState {
    /// Record a successful fetch and return the new key set.
    fn fetched(&mut self, keys: KeySet) -> Arc<KeySet> {
        let keys = Arc::new(keys);
        self.keys = Some(keys.clone());
        self.fetched_at = Some(Instant::now());
        self.last_error = None;
        keys
    }
}

struct Entry {
    source: String,
    state: tokio::sync::Mutex<EntryState>,
}

pub struct JwksCache {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    client: OnceLock<Result<reqwest::Client, String>>,
    pub ttl: Duration,
    pub min_refetch: Duration,
}

impl JwksCache {
    pub fn new(ttl: Duration, min_refetch: Duration) -> Self {
        JwksCache {
            entries: Mutex::new(HashMap::new()),
            client: OnceLock::new(),
            ttl,
            min_refetch,
        }
    }

    fn entry(&self, cache_key: &str, source: &str) -> Arc<Entry> {
        let mut m = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(e) = m.get(cache_key)
            && e.source == source
        {
            return e.clone();
        }
        if m.len() >= MAX_METHODS {
            m.clear();
        }
        let e = Arc::new(Entry {
            source: source.to_owned(),
            state: Default::default(),
        });
        m.insert(cache_key.to_owned(), e.clone());
        e
    }

    /// The key set of an inline JWKS (`jwks-json-data`), parsed once.
    pub async fn inline(&self, cache_key: &str, json: &str) -> Result<Arc<KeySet>, Rejected> {
        let entry = self.entry(cache_key, json);
        let mut st = entry.state.lock().await;
        if let Some(k) = &st.keys {
            return Ok(k.clone());
        }
        let keys = Arc::new(KeySet::parse(json.as_bytes()).map_err(|e| {
            Rejected(format!(
                "key check: the auth method's JWKS is unusable: {e}"
            ))
        })?);
        st.keys = Some(keys.clone());
        Ok(keys)
    }

    /// The key set for `url`, fetched or refreshed as needed so that `kid`
    /// can be found if the issuer has published it.
    pub async fn for_url(
        &self,
        cache_key: &str,
        url: &str,
        kid: Option<&str>,
    ) -> Result<Arc<KeySet>, Rejected> {
        let entry = self.entry(cache_key, url);
        let mut st = entry.state.lock().await;
        let fresh = st.fetched_at.is_some_and(|t| t.elapsed() < self.ttl);
        let recently_tried = st
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.min_refetch);
        if fresh && let Some(keys) = st.keys.clone() {
            let missing = kid.is_some_and(|k| !keys.has_kid(k));
            if !missing || recently_tried {
                // An unknown kid is refused by the verifier.
                return Ok(keys);
            }
            // Key rotation: refetch once; on failure keep the fresh set.
            st.last_attempt = Some(Instant::now());
            match self.fetch(url).await {
                Ok(k) => return Ok(st.fetched(k)),
                Err(e) => {
                    tracing::warn!(jwks_uri = %url, error = %e, "JWKS refetch failed");
                    st.last_error = Some(e);
                    return Ok(keys);
                }
            }
        }
        if recently_tried && let Some(err) = &st.last_error {
            return Err(unavailable(url, err));
        }
        st.last_attempt = Some(Instant::now());
        match self.fetch(url).await {
            Ok(k) => Ok(st.fetched(k)),
            Err(e) => {
                tracing::warn!(jwks_uri = %url, error = %e, "JWKS fetch failed");
                // Expired keys are not used: fail closed.
                st.keys = None;
                st.fetched_at = None;
                let r = unavailable(url, &e);
                st.last_error = Some(e);
                Err(r)
            }
        }
    }

    fn client(&self) -> Result<&reqwest::Client, String> {
        self.client
            .get_or_init(|| crate::outbound::client(CONNECT_TIMEOUT, FETCH_TIMEOUT, "JWKS"))
            .as_ref()
            .map_err(Clone::clone)
    }

    async fn fetch(&self, url: &str) -> Result<KeySet, String> {
        check_jwks_url(url)?;
        let client = self.client()?;
        let mut resp = client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    "timed out".to_string()
                } else if e.is_connect() {
                    "cannot connect".to_string()
                } else {
                    "request failed".to_string()
                }
            })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("HTTP status {}", status.as_u16()));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|_| "read failed".to_string())? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        KeySet::parse(&body)
    }
}

fn unavailable(url: &str, err: &str) -> Rejected {
    Rejected(format!(
        "key check: the JWKS at {} could not be fetched ({err}); logins with this auth method fail until it can be",
        coffer_core::name::truncate_for_message(url)
    ))
}

/// `jti` values seen per auth method, kept until the token's `exp`.
///
/// In memory: each node remembers only the logins it served, and a restart
/// forgets them (tokens are short-lived, so the window is small).
pub struct ReplayCache {
    seen: Mutex<HashMap<(String, String), i64>>,
    capacity: usize,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        ReplayCache {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Record `jti`; refuse if it was already used and has not expired.
    pub fn check_and_remember(
        &self,
        method: &str,
        jti: &str,
        exp_secs: i64,
        now_secs: i64,
    ) -> Result<(), Rejected> {
        let mut m = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = (method.to_owned(), jti.to_owned());
        if m.get(&key).is_some_and(|exp| *exp >= now_secs) {
            return Err(Rejected(
                "replay check: this JWT (its jti) was already used to log in; request a new token"
                    .into(),
            ));
        }
        if m.len() >= self.capacity {
            m.retain(|_, exp| *exp >= now_secs);
            if m.len() >= self.capacity {
                return Err(Rejected(
                    "replay check: too many unexpired tokens are remembered; try again later"
                        .into(),
                ));
            }
        }
        m.insert(key, exp_secs);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_is_refused_until_exp() {
        let r = ReplayCache::new(2);
        r.check_and_remember("p-1", "a", 100, 50).unwrap();
        assert!(r.check_and_remember("p-1", "a", 100, 60).is_err());
        // Another method: fine. Full of unexpired entries: fail closed.
        r.check_and_remember("p-2", "a", 100, 60).unwrap();
        assert!(r.check_and_remember("p-3", "b", 300, 70).is_err());
        // After expiry the jti may be used again and room is made.
        r.check_and_remember("p-1", "a", 200, 101).unwrap();
        r.check_and_remember("p-3", "b", 300, 101).unwrap();
    }

    /// Serve a JWKS that the test can replace, counting fetches.
    async fn jwks_server(
        doc: Arc<Mutex<serde_json::Value>>,
    ) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let h = h.clone();
                let doc = doc.lock().unwrap().clone();
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    axum::Json(doc)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        (format!("http://127.0.0.1:{port}/jwks"), hits)
    }

    #[tokio::test]
    async fn key_rotation_refetches_once_per_interval() {
        use std::sync::atomic::Ordering;
        let a = crate::dev_oidc::DevIssuer::generate().unwrap();
        let b = crate::dev_oidc::DevIssuer::generate().unwrap();
        let doc = Arc::new(Mutex::new(a.jwks()));
        let (url, hits) = jwks_server(doc.clone()).await;
        let c = JwksCache::new(Duration::from_secs(600), Duration::from_millis(300));
        let ks = c.for_url("p-1", &url, Some(a.kid())).await.unwrap();
        assert!(ks.has_kid(a.kid()));
        // Cached; an unknown kid right after a fetch does not refetch.
        for _ in 0..5 {
            let ks = c.for_url("p-1", &url, Some(b.kid())).await.unwrap();
            assert!(!ks.has_kid(b.kid()));
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        // The issuer rotates; after the interval one refetch finds the new key.
        let mut both = a.jwks();
        both["keys"]
            .as_array_mut()
            .unwrap()
            .extend(b.jwks()["keys"].as_array().unwrap().iter().cloned());
        *doc.lock().unwrap() = both;
        tokio::time::sleep(Duration::from_millis(350)).await;
        let ks = c.for_url("p-1", &url, Some(b.kid())).await.unwrap();
        assert!(ks.has_kid(b.kid()));
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        // A storm of forged kids: no fetch within the interval.
        for i in 0..20 {
            c.for_url("p-1", &url, Some(&format!("forged-{i}")))
                .await
                .ok();
        }
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        // Concurrent logins share one fetch (single flight).
        let c = Arc::new(JwksCache::new(
            Duration::from_secs(600),
            Duration::from_secs(30),
        ));
        let tasks: Vec<_> = (0..10)
            .map(|_| {
                let (c, url) = (c.clone(), url.clone());
                tokio::spawn(async move { c.for_url("p-2", &url, None).await.is_ok() })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap());
        }
        assert_eq!(hits.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn unreachable_jwks_fails_closed_and_is_not_hammered() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}/jwks");
        let c = JwksCache::new(Duration::from_secs(600), Duration::from_secs(30));
        let e = c.for_url("p-1", &url, Some("k")).await.unwrap_err();
        assert!(e.0.contains("could not be fetched"), "{e}");
        // Within the interval the last error is returned without a fetch.
        let e = c.for_url("p-1", &url, Some("k")).await.unwrap_err();
        assert!(e.0.contains("cannot connect"), "{e}");
        let e = c
            .for_url("p-2", "http://example.com/jwks", None)
            .await
            .unwrap_err();
        assert!(e.0.contains("https"), "{e}");
    }
}
