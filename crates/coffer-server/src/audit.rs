//! Audit-before-respond with group commit.
//!
//! Handlers hand their record to [`AuditSink::record`] and wait. One writer
//! task drains the queue: it takes every record waiting (up to a batch
//! limit), appends them to the hash chain in one transaction, then
//! acknowledges each. Under load many requests share one commit, so the
//! audit log does not cap throughput, yet no response leaves before its own
//! record is durable. If the write fails, every waiting request fails.

use std::sync::Arc;

use coffer_core::audit::AuditRecord;
use coffer_core::model::{IssuedCert, TokenRecord};
use coffer_store::Store;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::state::AuditMac;

const QUEUE: usize = 16_384;
const MAX_BATCH: usize = 2_048;

/// The record's `seq` once durable, or why it could not be written.
type Ack = oneshot::Sender<Result<i64, String>>;

/// What a request writes besides its record, in the batch's transaction.
#[derive(Debug, Clone, Default)]
pub struct Extra {
    /// A token minted by a login.
    pub token: Option<TokenRecord>,
    /// The record of a certificate issued.
    pub cert: Option<IssuedCert>,
}

#[derive(Clone)]
pub struct AuditSink {
    tx: mpsc::Sender<(AuditRecord, Extra, Ack)>,
    /// Notified after every commit of an audit record (by this writer, or
    /// through [`AuditSink::committed`]): the streaming sink
    /// (`audit_sink.rs`) wakes up and copies what is new. Never blocks.
    committed: Arc<Notify>,
    /// What the writer last did, for readiness (`health.rs`).
    pub(crate) health: Arc<crate::health::AuditHealth>,
}

impl AuditSink {
    /// Start the writer task.
    pub fn start(store: Arc<dyn Store>, mac: Arc<AuditMac>) -> AuditSink {
        let (tx, rx) = mpsc::channel(QUEUE);
        let committed = Arc::new(Notify::new());
        let health = Arc::new(crate::health::AuditHealth::default());
        tokio::spawn(writer(store, mac, rx, committed.clone(), health.clone()));
        AuditSink {
            tx,
            committed,
            health,
        }
    }

    /// Records waiting for the writer (a metrics gauge).
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Is the writer task still there?
    pub fn running(&self) -> bool {
        !self.tx.is_closed()
    }

    /// Note that audit records were committed elsewhere (a change's own
    /// transaction): wakes the streaming sink.
    pub fn committed(&self) {
        self.committed.notify_one();
    }

    /// What the streaming sink waits on.
    pub fn commit_notify(&self) -> Arc<Notify> {
        self.committed.clone()
    }

    /// Append `rec` (and write `extra`, made by this request, in the same
    /// transaction); resolves with the record's `seq` once all are durable.
    pub async fn record(&self, rec: AuditRecord, extra: Extra) -> Result<i64, String> {
        let (ack_tx, ack_rx) = oneshot::channel();
        self.tx
            .send((rec, extra, ack_tx))
            .await
            .map_err(|_| "audit writer stopped".to_owned())?;
        ack_rx
            .await
            .map_err(|_| "audit writer stopped".to_owned())?
    }
}

async fn writer(
    store: Arc<dyn Store>,
    mac: Arc<AuditMac>,
    mut rx: mpsc::Receiver<(AuditRecord, Extra, Ack)>,
    committed: Arc<Notify>,
    health: Arc<crate::health::AuditHealth>,
) {
    let mut records = Vec::with_capacity(MAX_BATCH);
    let mut tokens = Vec::new();
    let mut certs = Vec::new();
    let mut acks = Vec::with_capacity(MAX_BATCH);
    while let Some((rec, extra, ack)) = rx.recv().await {
        records.push(rec);
        tokens.extend(extra.token);
        certs.extend(extra.cert);
        acks.push(ack);
        while records.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((rec, extra, ack)) => {
                    records.push(rec);
                    tokens.extend(extra.token);
                    certs.extend(extra.cert);
                    acks.push(ack);
                }
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let result = store
            .append_audit(&mut records, &tokens, &certs, &*mac)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, batch = records.len(), "audit write failed; refusing the requests");
                "the audit log could not be written".to_owned()
            });
        crate::metrics::audit_batch(records.len(), started.elapsed(), result.is_ok());
        health.batch(result.is_ok());
        for (ack, rec) in acks.drain(..).zip(records.iter()) {
            // A request that stopped waiting (it cannot: requests run to
            // completion) would just miss its acknowledgement.
            ack.send(result.clone().map(|()| rec.seq)).ok();
        }
        if result.is_ok() {
            committed.notify_one();
        }
        records.clear();
        tokens.clear();
        certs.clear();
    }
}
