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

/// Computes a record's chain hash, and the MAC of the chain head.
/// Implemented with a keyed MAC by the server; the store calls it while
/// appending under its chain lock.
pub trait ChainSealer: Send + Sync {
    fn seal(&self, record: &AuditRecord) -> Vec<u8>;
    /// MAC of the chain head `(seq, hash)`: without the key nobody can point
    /// the head at an earlier record (tail truncation) or at `(0, [])` (a
    /// wiped log) and have it verify.
    fn seal_head(&self, seq: i64, hash: &[u8]) -> Vec<u8>;
    /// MAC of a retention checkpoint (see [`checkpoint_bytes`]): the
    /// proof that records up to `seq` were pruned by Coffer, not deleted.
    fn seal_checkpoint(&self, seq: i64, hash: &[u8], time_ms: i64) -> Vec<u8>;
}

/// The bytes a retention checkpoint's MAC covers. Domain-separated from
/// [`head_bytes`], so an anchor or an old head can never pass as a
/// checkpoint (which would let someone delete the records before it).
pub fn checkpoint_bytes(seq: i64, hash: &[u8], time_ms: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(48 + hash.len());
    out.extend_from_slice(b"coffer-audit-checkpoint-v1");
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&time_ms.to_be_bytes());
    out.extend_from_slice(&(hash.len() as u64).to_be_bytes());
    out.extend_from_slice(hash);
    out
}

/// What retention left of the pruned part of the chain: the last pruned
/// record's `seq`, `hash` and time, MACed with the audit key. The first
/// remaining record must link to `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
    /// Time of the last pruned record.
    pub time_ms: i64,
    #[serde(with = "hex_bytes")]
    pub mac: Vec<u8>,
}

impl Checkpoint {
    /// A sealed checkpoint for the pruned prefix ending at `seq`.
    pub fn new(sealer: &dyn ChainSealer, seq: i64, hash: Vec<u8>, time_ms: i64) -> Checkpoint {
        Checkpoint {
            mac: sealer.seal_checkpoint(seq, &hash, time_ms),
            seq,
            hash,
            time_ms,
        }
    }
}

/// The bytes the head MAC covers.
pub fn head_bytes(seq: i64, hash: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + hash.len());
    out.extend_from_slice(b"coffer-audit-head-v1");
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&(hash.len() as u64).to_be_bytes());
    out.extend_from_slice(hash);
    out
}

/// The stored chain head: the last record's `seq` and `hash`, and their MAC
/// (empty only in a store that has never been written to).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub mac: Vec<u8>,
}

/// A copy of the chain head kept outside the database (log stream, anchor
/// file): the chain must still contain record `seq` with this `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub seq: i64,
    #[serde(with = "hex_bytes")]
    pub hash: Vec<u8>,
    /// `seal_head(seq, hash)`: proves the anchor was written with the key.
    #[serde(with = "hex_bytes")]
    pub mac: Vec<u8>,
    pub time_ms: i64,
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
    /// The head's MAC is wrong: the head was rewritten without the key.
    HeadForged { head_seq: i64 },
    /// The log is shorter than a copy of its head kept elsewhere says.
    Truncated { anchor_seq: i64, last_seq: i64 },
    /// The record an anchor names has another hash: the log was rewritten.
    AnchorMismatch { seq: i64 },
    /// An anchor's own MAC is wrong (not written by this server's key).
    AnchorForged { seq: i64 },
    /// The retention checkpoint's MAC is wrong: records were deleted and
    /// the checkpoint written without the key.
    CheckpointForged { seq: i64 },
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
            ChainBreak::HeadForged { head_seq } => write!(
                f,
                "the chain head (record {head_seq}) does not carry a valid MAC: it was rewritten, e.g. to hide records removed from the end or a wiped log"
            ),
            ChainBreak::Truncated {
                anchor_seq,
                last_seq,
            } => write!(
                f,
                "an anchor records {anchor_seq} records but the log ends at {last_seq}: records were removed from the end (or the whole log was replaced)"
            ),
            ChainBreak::AnchorMismatch { seq } => write!(
                f,
                "record {seq} differs from the anchored copy of the chain head: the log was rewritten"
            ),
            ChainBreak::AnchorForged { seq } => write!(
                f,
                "the anchor for record {seq} does not carry a valid MAC; ignore that anchor file or check where it came from"
            ),
            ChainBreak::CheckpointForged { seq } => write!(
                f,
                "the retention checkpoint (records up to {seq} pruned) does not carry a valid MAC: records were deleted outside Coffer's retention"
            ),
        }
    }
}

/// Incremental chain verifier: feed records in `seq` order.
#[derive(Debug)]
pub struct ChainVerifier {
    expected_seq: i64,
    prev_hash: Vec<u8>,
    /// Last record covered by the retention checkpoint (0: nothing pruned).
    pruned_through: i64,
    /// Anchors that fell inside the pruned range (not checkable any more).
    anchors_pruned: usize,
    /// Anchors not yet reached, by seq.
    anchors: std::collections::BTreeMap<i64, Vec<u8>>,
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
            pruned_through: 0,
            anchors_pruned: 0,
            anchors: Default::default(),
        }
    }
    /// Start after a retention checkpoint: its MAC must verify, the first
    /// record fed must be `checkpoint.seq + 1` and link to its hash.
    /// Anchors inside the pruned range are dropped (their records are gone,
    /// and the checkpoint, which only the key can write, vouches for them);
    /// an anchor at the checkpoint's own seq must name its hash. Call after
    /// [`ChainVerifier::with_anchors`].
    pub fn after_checkpoint(
        mut self,
        sealer: &dyn ChainSealer,
        cp: &Checkpoint,
    ) -> Result<Self, ChainBreak> {
        if cp.seq < 1 || cp.mac != sealer.seal_checkpoint(cp.seq, &cp.hash, cp.time_ms) {
            return Err(ChainBreak::CheckpointForged { seq: cp.seq });
        }
        if let Some(h) = self.anchors.get(&cp.seq)
            && *h != cp.hash
        {
            return Err(ChainBreak::AnchorMismatch { seq: cp.seq });
        }
        let kept = self.anchors.split_off(&(cp.seq + 1));
        self.anchors_pruned += self.anchors.len();
        self.anchors = kept;
        self.expected_seq = cp.seq + 1;
        self.prev_hash = cp.hash.clone();
        self.pruned_through = cp.seq;
        Ok(self)
    }
    /// Anchors that named pruned records (dropped by the checkpoint).
    pub fn anchors_pruned(&self) -> usize {
        self.anchors_pruned
    }
    /// Seq of the last record verified (or of the checkpoint).
    pub fn last_seq(&self) -> i64 {
        self.expected_seq - 1
    }
    /// Also check the chain against copies of its head kept elsewhere.
    /// Anchors with a wrong MAC are refused.
    pub fn with_anchors<'a>(
        mut self,
        sealer: &dyn ChainSealer,
        anchors: impl IntoIterator<Item = &'a Anchor>,
    ) -> Result<Self, ChainBreak> {
        for a in anchors {
            if a.mac != sealer.seal_head(a.seq, &a.hash) {
                return Err(ChainBreak::AnchorForged { seq: a.seq });
            }
            self.anchors.insert(a.seq, a.hash.clone());
        }
        Ok(self)
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
        if let Some(h) = self.anchors.remove(&rec.seq)
            && h != rec.hash
        {
            return Err(ChainBreak::AnchorMismatch { seq: rec.seq });
        }
        self.prev_hash = rec.hash.clone();
        self.expected_seq += 1;
        Ok(())
    }
    /// Number of records verified so far (after the checkpoint, if any).
    pub fn count(&self) -> i64 {
        self.expected_seq - 1 - self.pruned_through
    }
    /// Compare with the stored chain head after the last record: it must
    /// name the last record and carry a valid MAC, and no anchor may lie
    /// beyond the end. An unsealed head (`mac` empty) is accepted only for
    /// a log that was never written to. Returns the last record's seq.
    pub fn finish(&self, sealer: &dyn ChainSealer, head: &ChainHead) -> Result<i64, ChainBreak> {
        if let Some((&anchor_seq, _)) = self.anchors.iter().next_back() {
            return Err(ChainBreak::Truncated {
                anchor_seq,
                last_seq: self.last_seq(),
            });
        }
        if head.seq != self.last_seq() || head.hash != self.prev_hash {
            return Err(ChainBreak::HeadMismatch {
                head_seq: head.seq,
                last_seq: self.last_seq(),
            });
        }
        let unwritten = head.seq == 0 && head.mac.is_empty();
        if !unwritten && head.mac != sealer.seal_head(head.seq, &head.hash) {
            return Err(ChainBreak::HeadForged { head_seq: head.seq });
        }
        Ok(self.last_seq())
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(b.len() * 2);
        for byte in b {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 15)]));
        }
        s.serialize_str(&out)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
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
        fn seal_head(&self, seq: i64, hash: &[u8]) -> Vec<u8> {
            let mut acc = [7u8; 8];
            for (i, b) in head_bytes(seq, hash).iter().enumerate() {
                acc[i % 8] = acc[i % 8].wrapping_mul(31).wrapping_add(*b);
            }
            acc.to_vec()
        }
        fn seal_checkpoint(&self, seq: i64, hash: &[u8], time_ms: i64) -> Vec<u8> {
            let mut acc = [3u8; 8];
            for (i, b) in checkpoint_bytes(seq, hash, time_ms).iter().enumerate() {
                acc[i % 8] = acc[i % 8].wrapping_mul(31).wrapping_add(*b);
            }
            acc.to_vec()
        }
    }

    fn head_of(recs: &[AuditRecord]) -> ChainHead {
        let (seq, hash) = recs
            .last()
            .map_or((0, Vec::new()), |r| (r.seq, r.hash.clone()));
        ChainHead {
            mac: if seq == 0 {
                Vec::new()
            } else {
                Sum.seal_head(seq, &hash)
            },
            seq,
            hash,
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

    fn verify(recs: &[AuditRecord], head: &ChainHead) -> Result<i64, ChainBreak> {
        let mut v = ChainVerifier::new();
        for r in recs {
            v.push(&Sum, r)?;
        }
        v.finish(&Sum, head)
    }

    #[test]
    fn intact_chain_verifies() {
        let c = chain(5);
        assert_eq!(verify(&c, &head_of(&c)), Ok(5));
        assert_eq!(verify(&[], &ChainHead::default()), Ok(0));
    }

    #[test]
    fn tail_truncation_and_wipes_are_detected() {
        let c = chain(5);
        // Drop the last two records and point the head at record 3 without the key.
        let forged = ChainHead {
            seq: 3,
            hash: c[2].hash.clone(),
            mac: b"not the mac".to_vec(),
        };
        assert_eq!(
            verify(&c[..3], &forged),
            Err(ChainBreak::HeadForged { head_seq: 3 })
        );
        // A wiped log with a head reset to (0, []) but a leftover MAC field.
        let wiped = ChainHead {
            seq: 0,
            hash: vec![],
            mac: b"x".to_vec(),
        };
        assert_eq!(
            verify(&[], &wiped),
            Err(ChainBreak::HeadForged { head_seq: 0 })
        );
        // Replaying an older, genuinely sealed head is caught by an anchor.
        let old_head = head_of(&c[..3]);
        let anchor = Anchor {
            seq: 5,
            hash: c[4].hash.clone(),
            mac: Sum.seal_head(5, &c[4].hash),
            time_ms: 0,
        };
        let mut v = ChainVerifier::new().with_anchors(&Sum, [&anchor]).unwrap();
        for r in &c[..3] {
            v.push(&Sum, r).unwrap();
        }
        assert_eq!(
            v.finish(&Sum, &old_head),
            Err(ChainBreak::Truncated {
                anchor_seq: 5,
                last_seq: 3
            })
        );
        // An anchor matching the chain passes; a forged anchor is refused.
        let mut v = ChainVerifier::new().with_anchors(&Sum, [&anchor]).unwrap();
        for r in &c {
            v.push(&Sum, r).unwrap();
        }
        assert_eq!(v.finish(&Sum, &head_of(&c)), Ok(5));
        let bad = Anchor {
            mac: vec![1],
            ..anchor.clone()
        };
        assert!(matches!(
            ChainVerifier::new().with_anchors(&Sum, [&bad]),
            Err(ChainBreak::AnchorForged { seq: 5 })
        ));
        // A rewritten record at an anchored position.
        let other = Anchor {
            hash: c[3].hash.clone(),
            mac: Sum.seal_head(5, &c[3].hash),
            ..anchor
        };
        let mut v = ChainVerifier::new().with_anchors(&Sum, [&other]).unwrap();
        let r = c.iter().try_for_each(|r| v.push(&Sum, r));
        assert_eq!(r, Err(ChainBreak::AnchorMismatch { seq: 5 }));
    }

    #[test]
    fn tampering_is_detected() {
        let full = head_of(&chain(5));
        let mut c = chain(5);
        c[2].outcome = Outcome::Denied;
        assert_eq!(verify(&c, &full), Err(ChainBreak::BadHash { seq: 3 }));

        let mut c = chain(5);
        c.remove(2);
        assert_eq!(
            verify(&c, &full),
            Err(ChainBreak::Gap {
                expected: 3,
                found: 4
            })
        );

        let mut c = chain(5);
        c.swap(1, 2);
        assert!(verify(&c, &full).is_err());

        let c = chain(5);
        assert_eq!(
            verify(&c[..4], &full),
            Err(ChainBreak::HeadMismatch {
                head_seq: 5,
                last_seq: 4
            })
        );
    }

    fn checkpoint_at(c: &[AuditRecord], seq: i64) -> Checkpoint {
        let r = &c[usize::try_from(seq - 1).unwrap()];
        Checkpoint::new(&Sum, r.seq, r.hash.clone(), r.time_ms)
    }

    fn verify_from(
        cp: &Checkpoint,
        anchors: &[Anchor],
        recs: &[AuditRecord],
        head: &ChainHead,
    ) -> Result<i64, ChainBreak> {
        let mut v = ChainVerifier::new()
            .with_anchors(&Sum, anchors)?
            .after_checkpoint(&Sum, cp)?;
        for r in recs {
            v.push(&Sum, r)?;
        }
        v.finish(&Sum, head)
    }

    fn anchor_of(c: &[AuditRecord], seq: i64) -> Anchor {
        let h = c[usize::try_from(seq - 1).unwrap()].hash.clone();
        Anchor {
            seq,
            mac: Sum.seal_head(seq, &h),
            hash: h,
            time_ms: 0,
        }
    }

    #[test]
    fn checkpoint_proves_the_remaining_chain() {
        let c = chain(10);
        let head = head_of(&c);
        let cp = checkpoint_at(&c, 4);
        let mut v = ChainVerifier::new().after_checkpoint(&Sum, &cp).unwrap();
        for r in &c[4..] {
            v.push(&Sum, r).unwrap();
        }
        assert_eq!(v.count(), 6);
        assert_eq!(v.finish(&Sum, &head), Ok(10));
        // Everything up to the head pruned: the head names the checkpoint.
        let all = checkpoint_at(&c, 10);
        assert_eq!(verify_from(&all, &[], &[], &head), Ok(10));
        // The checkpoint's MAC is not an anchor's or a head's.
        assert_ne!(cp.mac, Sum.seal_head(cp.seq, &cp.hash));
    }

    #[test]
    fn forged_or_rewound_checkpoints_fail() {
        let c = chain(10);
        let head = head_of(&c);
        // Records deleted and a checkpoint written without the key.
        let forged = Checkpoint {
            mac: b"guess".to_vec(),
            ..checkpoint_at(&c, 6)
        };
        assert_eq!(
            verify_from(&forged, &[], &c[6..], &head),
            Err(ChainBreak::CheckpointForged { seq: 6 })
        );
        // A genuine checkpoint with its time (or seq) changed.
        let moved = Checkpoint {
            time_ms: 99_999,
            ..checkpoint_at(&c, 6)
        };
        assert_eq!(
            verify_from(&moved, &[], &c[6..], &head),
            Err(ChainBreak::CheckpointForged { seq: 6 })
        );
        // An older genuine checkpoint kept while more records were deleted.
        let old = checkpoint_at(&c, 3);
        assert_eq!(
            verify_from(&old, &[], &c[6..], &head),
            Err(ChainBreak::Gap {
                expected: 4,
                found: 7
            })
        );
        // A newer genuine checkpoint with the records it covers put back.
        let new = checkpoint_at(&c, 6);
        assert!(matches!(
            verify_from(&new, &[], &c[3..], &head),
            Err(ChainBreak::Gap { .. })
        ));
        // A gap right after the checkpoint.
        assert_eq!(
            verify_from(&checkpoint_at(&c, 4), &[], &c[5..], &head),
            Err(ChainBreak::Gap {
                expected: 5,
                found: 6
            })
        );
        // A checkpoint whose hash is not the pruned record's: the first
        // remaining record does not link to it.
        let unlinked = Checkpoint::new(&Sum, 4, c[2].hash.clone(), c[3].time_ms);
        assert_eq!(
            verify_from(&unlinked, &[], &c[4..], &head),
            Err(ChainBreak::BadLink { seq: 5 })
        );
    }

    #[test]
    fn anchors_before_the_checkpoint() {
        let c = chain(10);
        let head = head_of(&c);
        let cp = checkpoint_at(&c, 5);
        // Anchors inside the pruned range, at the checkpoint and after it.
        let anchors = [anchor_of(&c, 2), anchor_of(&c, 5), anchor_of(&c, 8)];
        let v = ChainVerifier::new()
            .with_anchors(&Sum, &anchors)
            .unwrap()
            .after_checkpoint(&Sum, &cp)
            .unwrap();
        assert_eq!(v.anchors_pruned(), 2);
        assert_eq!(verify_from(&cp, &anchors, &c[5..], &head), Ok(10));
        // An anchor at the checkpoint's seq with another hash: rewritten.
        let other = Anchor {
            mac: Sum.seal_head(5, &c[1].hash),
            hash: c[1].hash.clone(),
            ..anchor_of(&c, 5)
        };
        assert_eq!(
            verify_from(&cp, &[other], &c[5..], &head),
            Err(ChainBreak::AnchorMismatch { seq: 5 })
        );
        // A log rewound to an older genuine head after pruning: the anchor
        // beyond it still catches the truncation.
        assert_eq!(
            verify_from(&cp, &[anchor_of(&c, 10)], &c[5..7], &head_of(&c[..7])),
            Err(ChainBreak::Truncated {
                anchor_seq: 10,
                last_seq: 7
            })
        );
        // A wiped log (records and checkpoint gone, head reset) is still
        // caught by the anchors, whatever the checkpoint said.
        let wiped = ChainHead::default();
        let mut v = ChainVerifier::new().with_anchors(&Sum, &anchors).unwrap();
        assert!(v.push(&Sum, &c[0]).is_ok());
        let v = ChainVerifier::new().with_anchors(&Sum, &anchors).unwrap();
        assert!(matches!(
            v.finish(&Sum, &wiped),
            Err(ChainBreak::Truncated { .. })
        ));
    }
}
