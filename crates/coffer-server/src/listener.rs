//! Connection limits, so that slow or idle clients cannot starve the
//! server (slow-loris): a cap on open connections kept below the process's
//! file limit (descriptors stay free for storage, outbound calls and
//! logs), a cap per client address, and, when a cap is reached, shedding:
//! the oldest connection without a request in progress (a client still
//! trickling its headers, or an idle keep-alive) is closed to make room. A
//! request being served is never cut; when every connection is busy, the
//! new one is closed at once instead.
//!
//! hyper's header-read timeout (which also bounds idle keep-alive time),
//! the body and request timeouts in `http.rs` and TLS's handshake timeout
//! end slow connections even below the caps.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use axum_server::accept::Accept;
use futures::future::BoxFuture;
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Descriptors kept for everything but client connections.
const RESERVED_FDS: u64 = 64;
/// Default cap when the file limit is high or unknown.
const DEFAULT_MAX: usize = 10_000;

/// The effective limits: configured, or derived from `RLIMIT_NOFILE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub max_per_ip: usize,
}

impl Limits {
    pub fn resolve(max: Option<usize>, per_ip: Option<usize>) -> Limits {
        let from_fds = file_limit()
            .map(|n| usize::try_from(n.saturating_sub(RESERVED_FDS).max(8)).unwrap_or(DEFAULT_MAX))
            .unwrap_or(DEFAULT_MAX);
        let max_connections = max.unwrap_or(from_fds.min(DEFAULT_MAX));
        Limits {
            max_connections,
            max_per_ip: per_ip
                .unwrap_or((max_connections / 2).max(1))
                .min(max_connections),
        }
    }
}

fn file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// One open connection, as the registry sees it.
struct Conn {
    peer: IpAddr,
    opened: Instant,
    /// Requests in progress on it.
    active: Arc<AtomicUsize>,
    kill: Arc<Kill>,
}

/// Closes a connection from outside: its stream fails its next read or
/// write, and a read waiting for data is woken to notice.
#[derive(Default)]
struct Kill {
    killed: AtomicBool,
    waker: AtomicWaker,
}

impl Kill {
    fn fire(&self) {
        self.killed.store(true, Ordering::Release);
        self.waker.wake();
    }
}

#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Conn>>,
    next_id: AtomicU64,
    shed: AtomicU64,
    refused: AtomicU64,
}

impl Registry {
    /// Admit a connection from `peer`, shedding an idle one if a cap is
    /// reached. `None`: refused (everything is busy).
    fn admit(self: &Arc<Self>, peer: IpAddr, limits: Limits) -> Option<Ticket> {
        let mut conns = self.conns.lock().unwrap_or_else(PoisonError::into_inner);
        let from_peer = conns.values().filter(|c| c.peer == peer).count();
        if from_peer >= limits.max_per_ip && !self.shed_oldest_idle(&mut conns, Some(peer)) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if conns.len() >= limits.max_connections && !self.shed_oldest_idle(&mut conns, None) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        crate::metrics::connections(1);
        let active = Arc::new(AtomicUsize::new(0));
        let kill = Arc::new(Kill::default());
        conns.insert(
            id,
            Conn {
                peer,
                opened: Instant::now(),
                active: active.clone(),
                kill: kill.clone(),
            },
        );
        Some(Ticket {
            id,
            registry: self.clone(),
            active,
            kill,
        })
    }

    fn len(&self) -> usize {
        self.conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Close the oldest connection (of `peer`, if given) without a request
    /// in progress. Returns whether one was closed.
    fn shed_oldest_idle(&self, conns: &mut HashMap<u64, Conn>, peer: Option<IpAddr>) -> bool {
        let victim = conns
            .iter()
            .filter(|(_, c)| peer.is_none_or(|p| c.peer == p))
            .filter(|(_, c)| c.active.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.opened)
            .map(|(id, _)| *id);
        match victim.and_then(|id| conns.remove(&id)) {
            Some(c) => {
                c.kill.fire();
                self.shed.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

/// A connection's place in the registry, released when the connection ends.
struct Ticket {
    id: u64,
    registry: Arc<Registry>,
    active: Arc<AtomicUsize>,
    kill: Arc<Kill>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        crate::metrics::connections(-1);
        self.registry
            .conns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.id);
    }
}

/// Admits connections within [`Limits`], then hands them to `inner` (plain
/// or TLS) wrapped so they can be shed, with a service that counts the
/// requests in progress on each.
#[derive(Clone)]
pub struct LimitAcceptor<A> {
    inner: A,
    limits: Limits,
    registry: Arc<Registry>,
}

impl<A> LimitAcceptor<A> {
    pub fn new(inner: A, limits: Limits) -> Self {
        LimitAcceptor {
            inner,
            limits,
            registry: Arc::default(),
        }
    }

    /// Counters for tests and logs: (open, shed, refused).
    pub fn stats(&self) -> (usize, u64, u64) {
        (
            self.registry.len(),
            self.registry.shed.load(Ordering::Relaxed),
            self.registry.refused.load(Ordering::Relaxed),
        )
    }
}

impl<A, S> Accept<TcpStream, S> for LimitAcceptor<A>
where
    A: Accept<Guarded, Counted<S>> + Clone + Send + Sync + 'static,
    A::Future: Send,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = BoxFuture<'static, io::Result<(Self::Stream, Self::Service)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let inner = self.inner.clone();
        let limits = self.limits;
        let registry = self.registry.clone();
        Box::pin(async move {
            let peer = stream
                .peer_addr()
                .map(|a: SocketAddr| a.ip().to_canonical())
                .map_err(|e| io::Error::new(e.kind(), "peer address unavailable"))?;
            let Some(ticket) = registry.admit(peer, limits) else {
                tracing::warn!(%peer, "connection refused: every connection is busy");
                return Err(io::Error::other("connection limit reached"));
            };
            let counted = Counted {
                inner: service,
                active: ticket.active.clone(),
            };
            let guarded = Guarded {
                inner: stream,
                kill: ticket.kill.clone(),
                _ticket: ticket,
            };
            inner.accept(guarded, counted).await
        })
    }
}

/// A client connection that can be shed (see [`Kill`]).
pub struct Guarded {
    inner: TcpStream,
    kill: Arc<Kill>,
    _ticket: Ticket,
}

impl Guarded {
    fn check(&self, cx: &Context<'_>) -> io::Result<()> {
        self.kill.waker.register(cx.waker());
        if self.kill.killed.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "connection shed to make room for others",
            ));
        }
        Ok(())
    }
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The connection's service: counts its requests in progress, so that a
/// connection serving a request is never shed.
#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    active: Arc<AtomicUsize>,
}

impl<S, R> tower::Service<R> for Counted<S>
where
    S: tower::Service<R>,
    S::Future: Send + 'static,
    S::Response: 'static,
    S::Error: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: R) -> Self::Future {
        self.active.fetch_add(1, Ordering::AcqRel);
        crate::metrics::in_flight(1);
        let guard = ActiveGuard(self.active.clone());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let out = fut.await;
            drop(guard);
            out
        })
    }
}

struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        crate::metrics::in_flight(-1);
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_ip: usize) -> Limits {
        Limits {
            max_connections: max,
            max_per_ip: per_ip,
        }
    }

    #[test]
    fn sheds_the_oldest_idle_connection() {
        let r = Arc::new(Registry::default());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = r.admit(a, limits(3, 3)).unwrap();
        let busy = r.admit(a, limits(3, 3)).unwrap();
        busy.active.store(1, Ordering::Release);
        let _third = r.admit(a, limits(3, 3)).unwrap();
        // Full: the oldest idle one (first) goes, the busy one stays.
        let _fourth = r.admit(b, limits(3, 3)).unwrap();
        assert!(first.kill.killed.load(Ordering::Acquire));
        assert!(!busy.kill.killed.load(Ordering::Acquire));
        assert_eq!(r.len(), 3);
    }

    #[test]
    fn per_address_cap_sheds_that_address_first() {
        let r = Arc::new(Registry::default());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let other = r.admit(b, limits(10, 2)).unwrap();
        let a1 = r.admit(a, limits(10, 2)).unwrap();
        let _a2 = r.admit(a, limits(10, 2)).unwrap();
        let _a3 = r.admit(a, limits(10, 2)).unwrap();
        assert!(a1.kill.killed.load(Ordering::Acquire), "a's oldest is shed");
        assert!(!other.kill.killed.load(Ordering::Acquire), "b is untouched");
    }

    #[test]
    fn refuses_when_everything_is_busy() {
        let r = Arc::new(Registry::default());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let t = r.admit(a, limits(1, 1)).unwrap();
        t.active.store(1, Ordering::Release);
        assert!(r.admit(a, limits(1, 1)).is_none());
        drop(t);
        assert!(r.admit(a, limits(1, 1)).is_some());
    }

    #[test]
    fn limits_follow_the_file_limit() {
        let l = Limits::resolve(None, None);
        assert!(l.max_connections >= 8);
        assert!(l.max_per_ip <= l.max_connections);
        let l = Limits::resolve(Some(100), None);
        assert_eq!((l.max_connections, l.max_per_ip), (100, 50));
    }
}
