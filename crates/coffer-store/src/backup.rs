//! Online snapshots of the embedded SQLite store (`coffer operator
//! backup/restore`).
//!
//! `VACUUM INTO` copies the database as one read transaction sees it: a
//! consistent snapshot, taken while the server keeps writing (WAL mode lets
//! readers and the writer run side by side). The copy is a single file
//! without a WAL. PostgreSQL stores are backed up with `pg_dump` instead.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

use crate::sql_store::db;
use crate::{Result, StoreError, redact_url};

/// The database file of a `sqlite://` URL.
pub fn sqlite_path(url: &str) -> Result<PathBuf> {
    let options = SqliteConnectOptions::from_str(url).map_err(|e| {
        StoreError::Config(format!("invalid SQLite URL {:?}: {e}", redact_url(url)))
    })?;
    Ok(options.get_filename().to_path_buf())
}

/// One plain connection to an existing database file (nothing migrated,
/// the journal mode left as it is).
async fn connect(path: &Path) -> Result<SqliteConnection> {
    if !path.is_file() {
        return Err(StoreError::Config(format!(
            "{} does not exist or is not a file",
            path.display()
        )));
    }
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .map_err(|e| match db(e) {
            StoreError::Backend(m) => {
                StoreError::Backend(format!("cannot open {}: {m}", path.display()))
            }
            other => other,
        })
}

/// Write a consistent snapshot of the database at `src` to `dest`, a new
/// file with mode 0600 (an existing `dest` is refused), synced to disk and
/// integrity-checked. The copy is made in a temporary file beside `dest`
/// (created exclusively with mode 0600, so it is never readable by others)
/// and linked to `dest` only when complete: `dest` never holds a partial
/// copy, and a file created at `dest` meanwhile is never replaced. The
/// temporary file is removed on every error (a kill -9 can leave one, named
/// `.<dest>.partial`, which the next run removes).
pub async fn sqlite_snapshot(src: &Path, dest: &Path) -> Result<()> {
    let exists = |dest: &Path| {
        StoreError::Config(format!(
            "cannot create {}: it exists already (choose a new file name: a backup never overwrites a file)",
            dest.display()
        ))
    };
    if dest.symlink_metadata().is_ok() {
        return Err(exists(dest));
    }
    let name = dest
        .file_name()
        .ok_or_else(|| StoreError::Config(format!("{} is not a file name", dest.display())))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".partial");
    let tmp = dest.with_file_name(tmp_name);
    // A leftover of an interrupted run (ours: same name, same directory).
    std::fs::remove_file(&tmp).ok();
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    open.open(&tmp)
        .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", tmp.display())))?;
    let result = async {
        let mut conn = connect(src).await?;
        let tmp_text = tmp
            .to_str()
            .ok_or_else(|| StoreError::Config(format!("{} is not a UTF-8 path", tmp.display())))?;
        // SQLite writes into the empty file we created (keeping its mode).
        let vacuum = sqlx::query("VACUUM INTO $1")
            .bind(tmp_text)
            .execute(&mut conn)
            .await
            .map_err(db);
        conn.close().await.map_err(db)?;
        vacuum?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| StoreError::Backend(format!("cannot sync {}: {e}", tmp.display())))?;
        sqlite_check(&tmp).await?;
        std::fs::hard_link(&tmp, dest).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                exists(dest)
            } else {
                StoreError::Backend(format!("cannot create {}: {e}", dest.display()))
            }
        })?;
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::Backend(format!("cannot sync {}: {e}", dir.display())))
    }
    .await;
    std::fs::remove_file(&tmp).ok();
    for suffix in ["-journal", "-wal", "-shm"] {
        let mut side = tmp.clone().into_os_string();
        side.push(suffix);
        std::fs::remove_file(side).ok();
    }
    result
}

/// What [`sqlite_check`] found in a snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotCheck {
    /// The audit chain head: records and the last record's hash (hex).
    pub audit_seq: i64,
    pub audit_hash_hex: String,
    pub data_keys: i64,
    pub items: i64,
}

/// `PRAGMA integrity_check` and a look at the audit head of a database
/// file; an error says what is wrong.
pub async fn sqlite_check(path: &Path) -> Result<SnapshotCheck> {
    let mut conn = connect(path).await?;
    let problems: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_all(&mut conn)
        .await
        .map_err(db)?;
    if problems != ["ok"] {
        return Err(StoreError::Corrupt(format!(
            "{} failed SQLite's integrity check: {}",
            path.display(),
            problems.join("; ")
        )));
    }
    let head: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_optional(&mut conn)
            .await
            .map_err(|e| {
                StoreError::Corrupt(format!(
                    "{} is not a Coffer database (no audit head: {e})",
                    path.display()
                ))
            })?;
    let (audit_seq, hash) = head.unwrap_or_default();
    let data_keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM data_keys")
        .fetch_one(&mut conn)
        .await
        .map_err(db)?;
    let items: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM items")
        .fetch_one(&mut conn)
        .await
        .map_err(db)?;
    conn.close().await.map_err(db)?;
    Ok(SnapshotCheck {
        audit_seq,
        audit_hash_hex: hex_lower(&hash),
        data_keys,
        items,
    })
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
