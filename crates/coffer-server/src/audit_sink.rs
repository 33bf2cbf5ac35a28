//! The streaming audit sink: every committed audit record as one JSON line
//! in a file (with size-based rotation) or on standard output.
//!
//! The database holds the authoritative, hash-chained log; this is a copy
//! for log shippers and SIEMs. The sink **tails the chain** instead of
//! taking records from the request path: after every commit it is poked
//! (and once a second it looks anyway), reads the records after the last
//! one it wrote (`audit_range`, in `seq` order, up to [`BATCH`] at a time)
//! and appends them. So
//!
//! * it never slows a request or the group-commit writer (a poke is a
//!   non-blocking notification; file I/O runs on the blocking pool);
//! * it sees every record, whoever wrote it (the group-commit writer,
//!   changes audited in their own transaction, background jobs, other
//!   nodes on the same PostgreSQL), only once committed, in `seq` order;
//! * when it falls behind (a slow disk) it just reads bigger batches
//!   later: memory stays bounded and nothing is dropped;
//! * when a write fails (disk full, permissions) the partial batch is cut
//!   off again, the failure is logged at ERROR and counted, and the same
//!   records are retried with back-off (1 s up to 60 s) from the database.
//!   Records are lost from the file only if they are gone from the
//!   database before the sink catches up (retention pruned them): that gap
//!   is logged at ERROR with its `seq` range and counted.
//!
//! `seq` numbers are consecutive, so a consumer detects any gap itself.
//! Restarted, the sink resumes after the last `seq` in the file.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use coffer_core::audit::AuditRecord;
use coffer_store::Store;
use tokio::sync::{Notify, watch};

/// Records read from the store per round.
pub const BATCH: i64 = 1_000;
/// Default size at which the file is rotated.
pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;
/// Default number of rotated files kept.
pub const DEFAULT_KEEP: usize = 5;

/// Where the lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stdout,
    File {
        path: PathBuf,
        max_bytes: u64,
        /// Rotated files kept: PATH.1 (newest) … PATH.keep.
        keep: usize,
    },
}

impl Target {
    /// From the settings (`-` is standard output); refuses what would not work.
    pub fn resolve(
        path: Option<&Path>,
        max_bytes: Option<u64>,
        keep: Option<usize>,
    ) -> anyhow::Result<Option<Target>> {
        let Some(path) = path else {
            if max_bytes.is_some() || keep.is_some() {
                bail!(
                    "--audit-file-max-bytes and --audit-file-keep need --audit-file (a path, or - for standard output)"
                );
            }
            return Ok(None);
        };
        if path.as_os_str() == "-" {
            if max_bytes.is_some() || keep.is_some() {
                bail!(
                    "--audit-file - writes to standard output, which cannot be rotated: drop --audit-file-max-bytes and --audit-file-keep"
                );
            }
            return Ok(Some(Target::Stdout));
        }
        if path.as_os_str().is_empty() {
            bail!("--audit-file is empty: give a path, or - for standard output");
        }
        let max_bytes = max_bytes.unwrap_or(DEFAULT_MAX_BYTES);
        if max_bytes < 4096 {
            bail!("--audit-file-max-bytes must be at least 4096 (not {max_bytes})");
        }
        let keep = keep.unwrap_or(DEFAULT_KEEP);
        if keep > 1000 {
            bail!("--audit-file-keep is at most 1000 (not {keep})");
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            bail!(
                "the directory of --audit-file {} does not exist; create it first",
                path.display()
            );
        }
        Ok(Some(Target::File {
            path: path.to_path_buf(),
            max_bytes,
            keep,
        }))
    }
}

/// Counters of the sink, for metrics and health.
#[derive(Debug, Default)]
pub struct SinkStats {
    /// Lines written since start.
    pub written: AtomicU64,
    /// Write attempts that failed (each retried).
    pub write_failures: AtomicU64,
    /// Records that were gone from the database before the sink got them.
    pub missed: AtomicU64,
    /// Reads from the store that failed (retried).
    pub read_failures: AtomicU64,
    /// `seq` of the last line written.
    pub last_seq: AtomicI64,
}

/// Handle of the running sink.
#[derive(Debug, Clone)]
pub struct AuditStream {
    poke: Arc<Notify>,
    stats: Arc<SinkStats>,
    written: watch::Receiver<i64>,
}

impl AuditStream {
    /// Open the target and start the tail task after `start_after`
    /// (the chain head when the server started), or after the last `seq`
    /// the file holds. `poke` is notified after each commit.
    pub fn start(
        target: Target,
        store: Arc<dyn Store>,
        start_after: i64,
        poke: Arc<Notify>,
    ) -> anyhow::Result<AuditStream> {
        let out = Output::open(target)?;
        let from_file = out.last_seq()?;
        let after = match from_file {
            Some(s) if s > start_after => {
                tracing::warn!(
                    file_seq = s,
                    chain_head = start_after,
                    "the audit file ends past the chain head (another chain, or a restored database); continuing after the head"
                );
                start_after
            }
            Some(s) => s,
            None => start_after,
        };
        let stats = Arc::new(SinkStats::default());
        stats.last_seq.store(after, Ordering::Release);
        let (tx, rx) = watch::channel(after);
        tokio::spawn(tail(out, store, after, poke.clone(), stats.clone(), tx));
        Ok(AuditStream {
            poke,
            stats,
            written: rx,
        })
    }

    pub fn stats(&self) -> &SinkStats {
        &self.stats
    }

    /// Wait (at most `timeout`) until every record up to `seq` is written:
    /// graceful shutdown. False if it did not get there in time.
    pub async fn drain_to(&self, seq: i64, timeout: Duration) -> bool {
        self.poke.notify_one();
        let mut rx = self.written.clone();
        tokio::time::timeout(timeout, rx.wait_for(|w| *w >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// One record as its JSON line: the same JSON as `audit-list` and
/// `coffer audit list` give (the record's fields plus `time` in RFC 3339).
/// Records never hold a secret, so neither do lines.
pub fn line(rec: &AuditRecord) -> anyhow::Result<Vec<u8>> {
    let mut out = serde_json::to_vec(&crate::offline::record_json(rec))
        .context("cannot encode an audit record")?;
    out.push(b'\n');
    Ok(out)
}

async fn tail(
    mut out: Output,
    store: Arc<dyn Store>,
    mut after: i64,
    poke: Arc<Notify>,
    stats: Arc<SinkStats>,
    done_tx: watch::Sender<i64>,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        // Woken by a commit, or once a second (records of other nodes and
        // of paths that do not poke).
        tokio::time::timeout(Duration::from_secs(1), poke.notified())
            .await
            .ok();
        loop {
            let recs = match store.audit_range(after, BATCH).await {
                Ok(r) => r,
                Err(e) => {
                    stats.read_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, after_seq = after, "audit file sink cannot read the audit log; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    continue;
                }
            };
            let Some(first) = recs.first() else { break };
            let mut lines = Vec::with_capacity(recs.len());
            let mut expect = after + 1;
            for r in &recs {
                if r.seq != expect {
                    let n = r.seq - expect;
                    stats.missed.fetch_add(n.unsigned_abs(), Ordering::Relaxed);
                    tracing::error!(
                        from_seq = expect,
                        to_seq = r.seq - 1,
                        "audit records {expect}..{} were gone from the database before the audit file sink wrote them: the file has a gap there",
                        r.seq - 1
                    );
                }
                expect = r.seq + 1;
                match line(r) {
                    Ok(l) => lines.push((r.seq, l)),
                    Err(e) => {
                        tracing::error!(seq = r.seq, error = %e, "audit record not written to the audit file")
                    }
                }
            }
            let last = recs.last().map_or(first.seq, |r| r.seq);
            let (back, result, done) = match tokio::task::spawn_blocking(move || {
                let mut done = None;
                let r = out.write_batch(&lines, &mut done);
                (out, r, done)
            })
            .await
            {
                Ok(x) => x,
                Err(e) => {
                    tracing::error!(error = %e, "audit file sink stopped: the writer panicked; the database log is unaffected");
                    return;
                }
            };
            out = back;
            if let Some(d) = done {
                let n = recs.iter().filter(|r| r.seq > after && r.seq <= d).count();
                stats.written.fetch_add(n as u64, Ordering::Relaxed);
                stats.last_seq.store(d, Ordering::Release);
                after = d;
                done_tx.send_replace(d);
            }
            if let Err(e) = result {
                stats.write_failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    error = %format!("{e:#}"),
                    from_seq = after + 1,
                    to_seq = last,
                    retry_in_s = backoff.as_secs(),
                    "audit file write failed; the records stay in the database and are retried (the file lags until then)"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
            backoff = Duration::from_secs(1);
            if after < last {
                // Only records that could not be encoded (logged above).
                after = last;
                stats.last_seq.store(last, Ordering::Release);
                done_tx.send_replace(last);
            }
        }
    }
}

/// The file (or standard output) and its rotation.
struct Output {
    target: Target,
    file: Option<std::fs::File>,
    size: u64,
}

impl Output {
    fn open(target: Target) -> anyhow::Result<Output> {
        let mut out = Output {
            target,
            file: None,
            size: 0,
        };
        out.reopen()?;
        Ok(out)
    }

    fn reopen(&mut self) -> anyhow::Result<()> {
        if let Target::File { path, .. } = &self.target {
            let f = open_private(path)?;
            self.size = f
                .metadata()
                .with_context(|| format!("cannot read the size of {}", path.display()))?
                .len();
            self.file = Some(f);
            // A partial last line (a crash or a full disk mid-write) is cut
            // off, so the next line does not glue onto it.
            let keep = complete_len(path, self.file.as_ref())?;
            if keep < self.size {
                tracing::warn!(
                    path = %path.display(),
                    cut_bytes = self.size - keep,
                    "the audit file ended with a partial line; cut it off"
                );
                if let Some(f) = &self.file {
                    f.set_len(keep).with_context(|| {
                        format!("cannot cut the partial last line of {}", path.display())
                    })?;
                }
                self.size = keep;
            }
        }
        Ok(())
    }

    /// Before writing: if PATH is no longer the open file (deleted, or
    /// moved away and replaced by an operator or a log rotator), open PATH
    /// again, so lines never go to a file nobody can see; take the size
    /// from the file itself (it may have been truncated).
    fn follow_path(&mut self, path: &Path) -> anyhow::Result<()> {
        #[cfg(unix)]
        if let Some(f) = &self.file {
            use std::os::unix::fs::MetadataExt;
            let open = f
                .metadata()
                .with_context(|| format!("cannot stat the open {}", path.display()))?;
            let same = std::fs::symlink_metadata(path)
                .is_ok_and(|m| m.dev() == open.dev() && m.ino() == open.ino());
            if !same {
                tracing::warn!(
                    path = %path.display(),
                    "the audit file was deleted or replaced; writing to a new file at its path"
                );
                self.file = None;
                return self.reopen();
            }
            self.size = open.len();
        }
        Ok(())
    }

    /// The `seq` of the last complete line of the current file, if any;
    /// of PATH.1 when PATH has none yet (it was just rotated), so a restart
    /// right after a rotation leaves no gap.
    fn last_seq(&self) -> anyhow::Result<Option<i64>> {
        let (Target::File { path, .. }, Some(f)) = (&self.target, &self.file) else {
            return Ok(None);
        };
        if let Some(seq) = last_seq_of(path, f, self.size)? {
            return Ok(Some(seq));
        }
        let mut p1 = path.as_os_str().to_owned();
        p1.push(".1");
        let p1 = PathBuf::from(p1);
        match std::fs::File::open(&p1) {
            Ok(f1) => {
                let len = f1.metadata()?.len();
                last_seq_of(&p1, &f1, len)
            }
            Err(_) => Ok(None),
        }
    }

    /// Append the lines (rotating as needed). `done` is set to the `seq`
    /// of the last line written for good: on failure, lines after it are
    /// not in any file (a partial line is cut off again).
    fn write_batch(
        &mut self,
        lines: &[(i64, Vec<u8>)],
        done: &mut Option<i64>,
    ) -> anyhow::Result<()> {
        let Target::File {
            path,
            max_bytes,
            keep,
        } = self.target.clone()
        else {
            let mut so = std::io::stdout().lock();
            for (seq, l) in lines {
                so.write_all(l).context("cannot write to standard output")?;
                *done = Some(*seq);
            }
            return so.flush().context("cannot write to standard output");
        };
        self.follow_path(&path)?;
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_last = None;
        for (seq, l) in lines {
            if self.size + (buf.len() + l.len()) as u64 > max_bytes
                && self.size + buf.len() as u64 > 0
            {
                self.append(&path, &buf)?;
                *done = buf_last.or(*done);
                buf.clear();
                self.rotate(&path, keep)?;
            }
            buf.extend_from_slice(l);
            buf_last = Some(*seq);
        }
        self.append(&path, &buf)?;
        *done = buf_last.or(*done);
        Ok(())
    }

    fn append(&mut self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.file.is_none() {
            self.reopen()?;
        }
        let Some(f) = self.file.as_mut() else {
            bail!("audit file {} is not open", path.display());
        };
        if let Err(e) = f.write_all(bytes).and_then(|()| f.flush()) {
            // Cut a partial line off so the retry starts on a clean line.
            let cut = f.set_len(self.size);
            self.file = None;
            return Err(anyhow::Error::from(e).context(match cut {
                Ok(()) => format!("cannot write audit file {}", path.display()),
                Err(_) => format!(
                    "cannot write audit file {} (and cannot cut the partial line off: the file may hold a broken line)",
                    path.display()
                ),
            }));
        }
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// PATH → PATH.1 → … → PATH.keep (the oldest is deleted); a new PATH.
    fn rotate(&mut self, path: &Path, keep: usize) -> anyhow::Result<()> {
        self.file = None;
        let numbered = |n: usize| {
            let mut p = path.as_os_str().to_owned();
            p.push(format!(".{n}"));
            PathBuf::from(p)
        };
        if keep == 0 {
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove {} to rotate it", path.display()))?;
        } else {
            for n in (1..keep).rev() {
                let from = numbered(n);
                if from.exists() {
                    std::fs::rename(&from, numbered(n + 1)).with_context(|| {
                        format!(
                            "cannot rotate {} to {}",
                            from.display(),
                            numbered(n + 1).display()
                        )
                    })?;
                }
            }
            std::fs::rename(path, numbered(1)).with_context(|| {
                format!(
                    "cannot rotate {} to {}",
                    path.display(),
                    numbered(1).display()
                )
            })?;
        }
        self.size = 0;
        self.reopen()
    }
}

/// How far a line of the last one may reach back from the end.
const TAIL_READ: u64 = 1024 * 1024;

/// The end of the last complete line (just after its newline).
fn complete_len(path: &Path, f: Option<&std::fs::File>) -> anyhow::Result<u64> {
    let Some(f) = f else { return Ok(0) };
    let len = f.metadata()?.len();
    let start = len.saturating_sub(TAIL_READ);
    let mut f = f
        .try_clone()
        .with_context(|| format!("cannot read {}", path.display()))?;
    f.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    Ok(match tail.iter().rposition(|b| *b == b'\n') {
        Some(i) => start + i as u64 + 1,
        // No newline in the tail: nothing complete (or one huge line).
        None if start == 0 => 0,
        None => len,
    })
}

/// The `seq` of the last complete line of `f` (`len` bytes), if any.
fn last_seq_of(path: &Path, f: &std::fs::File, len: u64) -> anyhow::Result<Option<i64>> {
    let mut f = f
        .try_clone()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let start = len.saturating_sub(TAIL_READ);
    f.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    f.read_to_end(&mut tail)?;
    // Only lines that end with a newline are complete.
    let complete = match tail.iter().rposition(|b| *b == b'\n') {
        Some(i) => &tail[..i],
        None => return Ok(None),
    };
    let last = complete.rsplit(|b| *b == b'\n').next().unwrap_or_default();
    let v: serde_json::Value = serde_json::from_slice(last).with_context(|| {
        format!(
            "the last line of audit file {} is not an audit record; move the file away or name another",
            path.display()
        )
    })?;
    Ok(v.get("seq").and_then(serde_json::Value::as_i64))
}

/// Open for appending, created with mode 0600 (and made 0600 if it existed).
/// A symbolic link at PATH is refused (not followed): whoever can write the
/// log directory must not be able to point the audit lines, and the chmod
/// to 0600, at another file the server can write (its database, its key).
/// Only a regular file is accepted.
fn open_private(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true).read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
        opts.custom_flags(
            (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
        );
    }
    let f = opts.open(path).map_err(|e| {
        if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
            anyhow::anyhow!(
                "audit file {} is a symbolic link, which is not followed: give the real path",
                path.display()
            )
        } else {
            anyhow::Error::from(e).context(format!("cannot open audit file {}", path.display()))
        }
    })?;
    if !f.metadata()?.is_file() {
        bail!(
            "audit file {} is not a regular file; give a file path (or - for standard output)",
            path.display()
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot restrict permissions of {}", path.display()))?;
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_core::audit::Outcome;

    fn rec(seq: i64) -> AuditRecord {
        AuditRecord {
            seq,
            time_ms: 1_700_000_000_000 + seq,
            request_id: format!("r-{seq}"),
            operation: "list-items".into(),
            object: "/x".into(),
            outcome: Outcome::Allowed,
            status: 200,
            error: String::new(),
            access_id: "p-1".into(),
            auth_method: "/m".into(),
            identity: "p-1".into(),
            client_type: "t".into(),
            peer: "127.0.0.1".into(),
            prev_hash: vec![1; 32],
            hash: vec![2; 32],
        }
    }

    fn seqs_in(path: &Path) -> Vec<i64> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn rotation_keeps_n_files_with_contiguous_seqs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let t = Target::resolve(Some(&path), Some(4096), Some(2))
            .unwrap()
            .unwrap();
        let mut out = Output::open(t.clone()).unwrap();
        let lines: Vec<_> = (1..=100).map(|s| (s, line(&rec(s)).unwrap())).collect();
        let mut done = None;
        for chunk in lines.chunks(7) {
            out.write_batch(chunk, &mut done).unwrap();
        }
        assert_eq!(done, Some(100));
        let files = [
            path.clone(),
            dir.path().join("audit.jsonl.1"),
            dir.path().join("audit.jsonl.2"),
        ];
        assert!(!dir.path().join("audit.jsonl.3").exists());
        let mut all = Vec::new();
        for f in files.iter().rev() {
            assert!(std::fs::metadata(f).unwrap().len() <= 4096);
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                assert_eq!(
                    std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
                    0o600
                );
            }
            all.extend(seqs_in(f));
        }
        // The newest files hold the newest records, without a hole.
        assert_eq!(*all.last().unwrap(), 100);
        assert!(all.windows(2).all(|w| w[1] == w[0] + 1), "{all:?}");
        // Reopened, it resumes after the last line.
        assert_eq!(Output::open(t).unwrap().last_seq().unwrap(), Some(100));
    }

    #[test]
    fn a_partial_last_line_is_not_taken_for_the_last_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut bytes = line(&rec(7)).unwrap();
        bytes.extend_from_slice(b"{\"seq\": 8, \"trunc");
        std::fs::write(&path, bytes).unwrap();
        let out = Output::open(Target::resolve(Some(&path), None, None).unwrap().unwrap()).unwrap();
        assert_eq!(out.last_seq().unwrap(), Some(7));
    }

    #[test]
    fn a_partial_last_line_is_cut_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut bytes = line(&rec(7)).unwrap();
        bytes.extend_from_slice(b"{\"seq\": 8, \"trunc");
        std::fs::write(&path, bytes).unwrap();
        let t = Target::resolve(Some(&path), None, None).unwrap().unwrap();
        let mut out = Output::open(t).unwrap();
        let mut done = None;
        out.write_batch(&[(8, line(&rec(8)).unwrap())], &mut done)
            .unwrap();
        assert_eq!(seqs_in(&path), vec![7, 8], "every line parses");
    }

    #[test]
    fn a_restart_right_after_a_rotation_resumes_from_the_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(dir.path().join("a.jsonl.1"), line(&rec(41)).unwrap()).unwrap();
        std::fs::write(&path, b"").unwrap();
        let out = Output::open(Target::resolve(Some(&path), None, None).unwrap().unwrap()).unwrap();
        assert_eq!(out.last_seq().unwrap(), Some(41));
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("coffer.db");
        std::fs::write(&victim, b"database").unwrap();
        let path = dir.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        let t = Target::resolve(Some(&path), None, None).unwrap().unwrap();
        let err = Output::open(t).err().expect("refused").to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"database");
    }

    #[cfg(unix)]
    #[test]
    fn a_deleted_or_replaced_file_is_reopened_at_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let t = Target::resolve(Some(&path), None, None).unwrap().unwrap();
        let mut out = Output::open(t).unwrap();
        let mut done = None;
        out.write_batch(&[(1, line(&rec(1)).unwrap())], &mut done)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        out.write_batch(&[(2, line(&rec(2)).unwrap())], &mut done)
            .unwrap();
        assert_eq!(seqs_in(&path), vec![2]);
        // Moved away (a log rotator) and replaced by an empty file.
        std::fs::rename(&path, dir.path().join("moved")).unwrap();
        std::fs::write(&path, b"").unwrap();
        out.write_batch(&[(3, line(&rec(3)).unwrap())], &mut done)
            .unwrap();
        assert_eq!(seqs_in(&path), vec![3]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn lines_carry_the_record_fields() {
        let v: serde_json::Value = serde_json::from_slice(&line(&rec(3)).unwrap()).unwrap();
        for k in [
            "seq",
            "time",
            "time_ms",
            "request_id",
            "operation",
            "object",
            "outcome",
            "status",
            "error",
            "access_id",
            "auth_method",
            "identity",
            "peer",
            "hash",
            "prev_hash",
        ] {
            assert!(v.get(k).is_some(), "{k} missing in {v}");
        }
        assert_eq!(v["hash"], hex::encode([2u8; 32]));
    }

    #[test]
    fn settings_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Target::resolve(Some(Path::new("-")), None, None).unwrap(),
            Some(Target::Stdout)
        );
        assert!(Target::resolve(Some(Path::new("-")), Some(10_000), None).is_err());
        assert!(Target::resolve(None, None, Some(3)).is_err());
        assert!(Target::resolve(Some(&dir.path().join("a")), Some(100), None).is_err());
        assert!(Target::resolve(Some(&dir.path().join("no/such/a")), None, None).is_err());
        assert_eq!(Target::resolve(None, None, None).unwrap(), None);
    }
}
