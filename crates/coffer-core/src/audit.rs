//! Audit records and their canonical encoding for the hash chain.
//!
//! Each record carries `prev_hash` (the previous record's `hash`) and its own
//! `hash = MAC(key, canonical(record without hash))`. Verifying walks the
//! records in sequence order and recomputes every link, so an edited,
//! deleted, inserted or reordered record breaks the chain at that point.

use serde::{Deserialize, Serialize};

/// Outcome of a request as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Authorized and succeeded.
    Allowed,
    /// Refused: unauthenticated or not authorized.
    Denied,
    /// Failed for another reason (bad input, not found, server error).
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allowed => "allowed",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
        }
    }
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "allowed" => Some(Outcome::Allowed),
            "denied" => Some(Outcome::Denied),
            "error" => Some(Outcome::Error),
            _ => None,
        }
    }
}

/// One audit record. Never contains a secret value, access key or token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the chain, from 1; assigned by the store when appended.
    pub seq: i64,
    pub time_ms: i64,
    pub request_id: String,
    pub operation: String,
    /// Item or object name(s) the request was about, if any.
    pub object: String,
    pub outcome: Outcome,
    pub status: u16,
    pub error: String,
    pub access_id: String,
    pub auth_method: String,
    pub identity: String,
    pub client_type: String,
    pub peer: String,
    #[serde(with = "hex_bytes")]
    pub prev_hash: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
}

impl AuditRecord {
    /// The bytes the chain MAC covers: every field except `hash`, length
    /// prefixed so no two different records share an encoding.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"coffer-audit-v1");
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        for field in [
            self.request_id.as_bytes(),
            self.operation.as_bytes(),
            self.object.as_bytes(),
            self.outcome.as_str().as_bytes(),
            self.error.as_bytes(),
            self.access_id.as_bytes(),
            self.auth_method.as_bytes(),
            self.identity.as_bytes(),
            self.client_type.as_bytes(),
            self.peer.as_bytes(),
            &self.prev_hash,
        ] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(&self.status.to_be_bytes());
        out
    }
}

/// Computes a record's chain hash. Implemented with a keyed MAC by the
/// crypto crate; the store calls it while appending under its chain lock.
pub trait ChainSealer: Send + Sync {
    fn seal(&self, record: &AuditRecord) -> Vec<u8>;
}

/// Result of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// A record's hash does not match its content.
    BadHash { seq: i64 },
    /// A record's prev_hash does not match the previous record's hash.
    BadLink { seq: i64 },
    /// A sequence number is missing or out of order.
    Gap { expected: i64, found: i64 },
    /// The chain head stored beside the records disagrees with the last record.
    HeadMismatch { head_seq: i64, last_seq: i64 },
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainBreak::BadHash { seq } => write!(f, "record {seq} was modified (hash mismatch)"),
            ChainBreak::BadLink { seq } => write!(
                f,
                "record {seq} does not follow the previous record (deleted, inserted or reordered records)"
            ),
            ChainBreak::Gap { expected, found } => {
                write!(f, "record {expected} is missing (next record is {found})")
            }
            ChainBreak::HeadMismatch { head_seq, last_seq } => write!(
                f,
                "chain head says {head_seq} records but the last record is {last_seq} (records removed from the end)"
            ),
        }
    }
}

/// Incremental chain verifier: feed records in `seq` order.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: Vec<u8>,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl ChainVerifier {
    pub fn new() -> Self {
        ChainVerifier {
            expected_seq: 1,
            prev_hash: Vec::new(),
        }
    }
    /// Check the next record; on success it becomes the new chain tip.
    pub fn push(&mut self, sealer: &dyn ChainSealer, rec: &AuditRecord) -> Result<(), ChainBreak> {
        if rec.seq != self.expected_seq {
            return Err(ChainBreak::Gap {
                expected: self.expected_seq,
                found: rec.seq,
            });
        }
        if sealer.seal(rec) != rec.hash {
            return Err(ChainBreak::BadHash { seq: rec.seq });
        }
        if rec.prev_hash != self.prev_hash {
            return Err(ChainBreak::BadLink { seq: rec.seq });
        }
        self.prev_hash = rec.hash.clone();
        self.expected_seq += 1;
        Ok(())
    }
    /// Number of records verified so far.
    pub fn count(&self) -> i64 {
        self.expected_seq - 1
    }
    /// Compare with the stored chain head after the last record.
    pub fn finish(&self, head_seq: i64) -> Result<i64, ChainBreak> {
        if head_seq != self.count() {
            return Err(ChainBreak::HeadMismatch {
                head_seq,
                last_seq: self.count(),
            });
        }
        Ok(self.count())
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(b.len() * 2);
        for byte in b {
            out.push_str(&format!("{byte:02x}"));
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        if s.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd hex length"));
        }
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(serde::de::Error::custom))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test sealer: a non-cryptographic checksum, enough to exercise the chain logic.
    struct Sum;
    impl ChainSealer for Sum {
        fn seal(&self, r: &AuditRecord) -> Vec<u8> {
            let mut acc = [0u8; 8];
            for (i, b) in r.canonical_bytes().iter().enumerate() {
                acc[i % 8] = acc[i % 8].wrapping_mul(31).wrapping_add(*b);
            }
            acc.to_vec()
        }
    }

    fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = Vec::new();
        (1..=n)
            .map(|seq| {
                let mut r = AuditRecord {
                    seq,
                    time_ms: seq * 1000,
                    request_id: format!("r{seq}"),
                    operation: "get-secret-value".into(),
                    object: "/a".into(),
                    outcome: Outcome::Allowed,
                    status: 200,
                    error: String::new(),
                    access_id: "p-x".into(),
                    auth_method: "m".into(),
                    identity: "p-x".into(),
                    client_type: "cli".into(),
                    peer: "127.0.0.1".into(),
                    prev_hash: prev.clone(),
                    hash: vec![],
                };
                r.hash = Sum.seal(&r);
                prev = r.hash.clone();
                r
            })
            .collect()
    }

    fn verify(recs: &[AuditRecord], head: i64) -> Result<i64, ChainBreak> {
        let mut v = ChainVerifier::new();
        for r in recs {
            v.push(&Sum, r)?;
        }
        v.finish(head)
    }

    #[test]
    fn intact_chain_verifies() {
        assert_eq!(verify(&chain(5), 5), Ok(5));
    }

    #[test]
    fn tampering_is_detected() {
        let mut c = chain(5);
        c[2].outcome = Outcome::Denied;
        assert_eq!(verify(&c, 5), Err(ChainBreak::BadHash { seq: 3 }));

        let mut c = chain(5);
        c.remove(2);
        assert_eq!(
            verify(&c, 5),
            Err(ChainBreak::Gap {
                expected: 3,
                found: 4
            })
        );

        let mut c = chain(5);
        c.swap(1, 2);
        assert!(verify(&c, 5).is_err());

        let c = chain(5);
        assert_eq!(
            verify(&c[..4], 5),
            Err(ChainBreak::HeadMismatch {
                head_seq: 5,
                last_seq: 4
            })
        );
    }
}
