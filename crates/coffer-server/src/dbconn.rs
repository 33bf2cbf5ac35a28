//! Database users for dynamic secrets and rotated secrets: connect to a
//! MySQL/MariaDB or PostgreSQL server as its administrator, create temporary
//! users from a [`Statements`] template, revoke them, change passwords.
//!
//! Secrets. Rendered statements carry passwords, so: statement logging is off
//! on every connection, statements go out as plain text (`raw_sql`, nothing
//! prepared or cached), error messages name a statement by its *template*
//! text and have any occurrence of the passwords (also escaped, also a
//! truncated prefix, as MySQL's "near '…'" shows) replaced. What cannot be
//! helped: sqlx copies the SQL text and the connect options' password into
//! its own buffers, which are freed without being wiped.
//!
//! Sessions are set up to match what [`coffer_core::dbsql`] assumes when it
//! escapes values: MySQL without `NO_BACKSLASH_ESCAPES`/`ANSI_QUOTES`,
//! PostgreSQL with `standard_conforming_strings`; plus lock and statement
//! time limits so a DDL stuck behind a lock fails instead of hanging.
//!
//! Pools. One small pool per distinct connection spec (keyed by an HMAC of
//! every field, password included, under a per-process key), at most
//! [`MAX_POOLS`]. sqlx's pool retries a refused connection until its acquire
//! timeout and then reports only "timed out", so a pool with no live
//! connection is first probed with a direct connection whose error is
//! reported as is (unreachable, wrong password, TLS).

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use coffer_core::dbsql::{self, DbKind, Statements, Vars};
use secrecy::{ExposeSecret, SecretString};
use sqlx::mysql::{
    MySql, MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlPool, MySqlPoolOptions,
    MySqlSslMode,
};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgDatabaseError, PgPool, PgPoolOptions, PgSslMode, Postgres,
};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row, raw_sql};
use zeroize::Zeroizing;

/// Connections per cached pool.
pub const POOL_MAX_CONNECTIONS: u32 = 4;
/// Most pools kept at once; the least recently used idle one goes first.
pub const MAX_POOLS: usize = 64;
/// Time to connect (and to wait for a pooled connection).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle pooled connections are closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A pool unused for this long is dropped at the next lookup.
const POOL_UNUSED_TTL: Duration = Duration::from_secs(600);
/// Longest one operation (create, revoke, …) may take.
const OP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long revocation waits for terminated PostgreSQL sessions to go.
const TERMINATE_WAIT: Duration = Duration::from_secs(5);

/// Where and as whom to connect.
#[derive(Clone)]
pub struct DbConnSpec {
    pub kind: DbKind,
    pub host: String,
    pub port: u16,
    /// The administrator (or, for a rotated secret of type "target", the user itself).
    pub user: String,
    pub password: SecretString,
    /// Database to connect to; empty: none (MySQL) or the user's (PostgreSQL).
    pub db_name: String,
    /// Require TLS.
    pub ssl: bool,
    /// Verify the server certificate against this CA (PEM); implies TLS.
    pub ssl_ca_pem: Option<String>,
}

impl fmt::Debug for DbConnSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbConnSpec")
            .field("kind", &self.kind)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"[REDACTED]")
            .field("db_name", &self.db_name)
            .field("ssl", &self.ssl)
            .field("ssl_ca_pem", &self.ssl_ca_pem.as_ref().map(|_| "<pem>"))
            .finish()
    }
}

impl DbConnSpec {
    /// `mysql at 127.0.0.1:3306`, for messages.
    fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("{} at [{}]:{}", self.kind, self.host, self.port)
        } else {
            format!("{} at {}:{}", self.kind, self.host, self.port)
        }
    }

    fn mysql_options(&self, user: &str, password: &str) -> MySqlConnectOptions {
        let mut o = MySqlConnectOptions::new()
            .host(&self.host)
            .port(self.port)
            .username(user)
            .ssl_mode(match (&self.ssl_ca_pem, self.ssl) {
                (Some(_), _) => MySqlSslMode::VerifyCa,
                (None, true) => MySqlSslMode::Required,
                (None, false) => MySqlSslMode::Preferred,
            });
        // An empty password must not be sent at all: sqlx would send an
        // empty scramble, which MariaDB takes as a (wrong) password.
        if !password.is_empty() {
            o = o.password(password);
        }
        if let Some(ca) = &self.ssl_ca_pem {
            o = o.ssl_ca_from_pem(ca.clone().into_bytes());
        }
        if !self.db_name.is_empty() {
            o = o.database(&self.db_name);
        }
        o.disable_statement_logging()
    }

    fn pg_options(&self, user: &str, password: &str) -> PgConnectOptions {
        // Every field that new_without_pgpass() may take from PG* variables
        // and that matters is set explicitly.
        let mut o = PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(user)
            .password(password)
            .database(if self.db_name.is_empty() {
                user
            } else {
                &self.db_name
            })
            .application_name("coffer")
            .ssl_mode(match (&self.ssl_ca_pem, self.ssl) {
                (Some(_), _) => PgSslMode::VerifyCa,
                (None, true) => PgSslMode::Require,
                (None, false) => PgSslMode::Prefer,
            })
            .options([
                ("standard_conforming_strings", "on"),
                ("lock_timeout", "10s"),
                ("statement_timeout", "30s"),
            ]);
        if let Some(ca) = &self.ssl_ca_pem {
            o = o.ssl_root_cert_from_pem(ca.clone().into_bytes());
        }
        o.disable_statement_logging()
    }
}

/// What went wrong, said so that an administrator knows what to fix.
/// Messages never contain a password.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The server could not be reached (refused, timed out, unknown host).
    #[error("{0}")]
    Unreachable(String),
    /// The server refused the login.
    #[error("{0}")]
    AuthFailed(String),
    /// The user may not do what was asked.
    #[error("{0}")]
    Privilege(String),
    /// TLS could not be set up.
    #[error("{0}")]
    Tls(String),
    /// A template statement failed: `index` is 0-based, `statement` the
    /// template text (never the rendered one), `message` the server's,
    /// passwords removed.
    #[error("statement {} ({statement}) failed: {message}", index + 1)]
    Statement {
        index: usize,
        statement: String,
        message: String,
    },
    /// The operation took too long, or every pooled connection was busy.
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Other(String),
}

/// Replace every occurrence of each secret in `msg`: as is, with quotes or
/// backslashes doubled (as rendered in SQL), and prefixes of at least 6
/// characters (MySQL cuts the text it quotes in syntax errors).
fn scrub(msg: &str, secrets: &[&str]) -> String {
    let mut out = msg.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        let forms = [
            (*s).to_owned(),
            s.replace('\'', "''"),
            s.replace('\\', "\\\\"),
            s.replace('\\', "\\\\").replace('\'', "''"),
            s.replace('"', "\"\""),
        ];
        for form in forms {
            out = scrub_one(&out, &form);
        }
    }
    out
}

fn scrub_one(msg: &str, secret: &str) -> String {
    const MIN_PREFIX: usize = 6;
    let (m, s) = (msg.as_bytes(), secret.as_bytes());
    let mut out = String::with_capacity(msg.len());
    let mut i = 0;
    while i < m.len() {
        let mut k = m[i..].iter().zip(s).take_while(|(a, b)| a == b).count();
        while k > 0 && !msg.is_char_boundary(i + k) {
            k -= 1;
        }
        if k > 0 && (k == s.len() || k >= MIN_PREFIX) {
            out.push_str("[REDACTED]");
            i += k;
            continue;
        }
        let ch_len = msg[i..].chars().next().map_or(1, char::len_utf8);
        out.push_str(&msg[i..i + ch_len]);
        i += ch_len;
    }
    out
}

/// The server's error number (MySQL) or SQLSTATE (PostgreSQL), and message.
fn db_code(e: &sqlx::Error) -> Option<(String, String)> {
    let db = e.as_database_error()?;
    if let Some(my) = db.try_downcast_ref::<MySqlDatabaseError>() {
        return Some((my.number().to_string(), my.message().to_owned()));
    }
    if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
        return Some((pg.code().to_owned(), pg.message().to_owned()));
    }
    Some((
        db.code().map(|c| c.into_owned()).unwrap_or_default(),
        db.message().to_owned(),
    ))
}

fn is_privilege_code(code: &str) -> bool {
    // MySQL: 1044 db access denied, 1142 table command denied, 1143 column,
    // 1227 needs SUPER/…, 1370 routine, 1095 not owner of thread;
    // PostgreSQL: 42501 insufficient_privilege.
    matches!(
        code,
        "1044" | "1142" | "1143" | "1227" | "1370" | "1095" | "42501"
    )
}

/// Classify a sqlx error. `user` is who tried; `secrets` are scrubbed from
/// anything the server said.
fn classify(spec: &DbConnSpec, user: &str, e: sqlx::Error, secrets: &[&str]) -> DbError {
    let ep = spec.endpoint();
    let kind = spec.kind;
    if let Some((code, msg)) = db_code(&e) {
        let msg = scrub(&msg, secrets);
        return match code.as_str() {
            "1045" | "28P01" => DbError::AuthFailed(format!(
                "{kind} refused user {user:?}: wrong password or the user may not connect from this host ({msg})"
            )),
            // 1698: MariaDB, some logins of unknown users; 3118/4151: account
            // locked (MySQL/MariaDB); 1862: password expired.
            "1130" | "1698" | "3118" | "4151" | "1862" | "28000" => DbError::AuthFailed(format!(
                "{kind} refused user {user:?}: {msg} (check that the user exists, may log in, and may connect from this host)"
            )),
            "1049" | "3D000" => DbError::Other(format!(
                "{ep}: database {:?} does not exist ({msg}): fix the database name",
                spec.db_name
            )),
            "1040" | "53300" => {
                DbError::Unreachable(format!("{ep} has too many connections ({msg})"))
            }
            "55P03" | "57014" | "1205" => {
                DbError::Timeout(format!("{ep}: a statement took too long ({msg})"))
            }
            c if is_privilege_code(c) => {
                DbError::Privilege(format!("user {user:?} lacks a privilege on {ep}: {msg}"))
            }
            _ => DbError::Other(format!("{ep}: {msg} (error {code})")),
        };
    }
    match e {
        sqlx::Error::Io(io) => DbError::Unreachable(format!(
            "cannot reach {ep}: {}",
            scrub(&io.to_string(), secrets)
        )),
        sqlx::Error::Tls(t) => DbError::Tls(format!(
            "TLS with {ep} failed: {}: check the ssl setting and the CA certificate",
            scrub(&t.to_string(), secrets)
        )),
        sqlx::Error::PoolTimedOut => DbError::Timeout(format!(
            "no connection to {ep} became free within {} s",
            CONNECT_TIMEOUT.as_secs()
        )),
        other => DbError::Other(format!("{ep}: {}", scrub(&other.to_string(), secrets))),
    }
}

/// A failed template statement: a server error becomes
/// [`DbError::Statement`]; anything else (the connection dropped) is classified.
/// Transient catalog conflicts of concurrent GRANTs: retried.
const PG_CREATE_RETRIES: u64 = 5;

fn pg_retryable(e: &sqlx::Error) -> bool {
    match db_code(e) {
        Some((code, msg)) => {
            matches!(code.as_str(), "40P01" | "40001")
                || (code == "XX000" && msg.contains("concurrently updated"))
        }
        None => false,
    }
}

fn statement_error(
    spec: &DbConnSpec,
    stmts: &Statements,
    index: usize,
    e: sqlx::Error,
    secrets: &[&str],
) -> DbError {
    match db_code(&e) {
        Some((_, msg)) => DbError::Statement {
            index,
            statement: stmts.statement(index).unwrap_or_default().to_owned(),
            message: scrub(&msg, secrets),
        },
        None => classify(spec, &spec.user, e, secrets),
    }
}

#[derive(Clone)]
enum Pool {
    My(MySqlPool),
    Pg(PgPool),
}

impl Pool {
    fn in_use(&self) -> usize {
        let (size, idle) = match self {
            Pool::My(p) => (p.size(), p.num_idle()),
            Pool::Pg(p) => (p.size(), p.num_idle()),
        };
        (size as usize).saturating_sub(idle)
    }

    fn close_in_background(self) {
        tokio::spawn(async move {
            match self {
                Pool::My(p) => p.close().await,
                Pool::Pg(p) => p.close().await,
            }
        });
    }
}

struct Cached {
    pool: Pool,
    last_used: Instant,
}

/// Cached connection pools, one per connection spec, and the operations.
pub struct DbPools {
    key: aws_lc_rs::hmac::Key,
    pools: Mutex<HashMap<[u8; 32], Cached>>,
}

impl Default for DbPools {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for DbPools {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DbPools")
            .field("pools", &self.lock().len())
            .finish()
    }
}

/// MySQL session set-up: the sql_mode flags dbsql's escaping relies on
/// removed (the whole `ANSI` group too, which brings back `ANSI_QUOTES`),
/// and a metadata-lock wait limit.
async fn prepare_mysql(conn: &mut MySqlConnection) -> Result<(), sqlx::Error> {
    let mode: String = sqlx::query_scalar("SELECT CAST(@@SESSION.sql_mode AS CHAR)")
        .fetch_one(&mut *conn)
        .await?;
    let kept: Vec<&str> = mode
        .split(',')
        .filter(|m| !matches!(*m, "" | "NO_BACKSLASH_ESCAPES" | "ANSI_QUOTES" | "ANSI"))
        .collect();
    let sql = format!(
        "SET SESSION sql_mode = {}, SESSION lock_wait_timeout = 10",
        dbsql::quote_literal(DbKind::MySql, &kept.join(","))
    );
    raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    Ok(())
}

/// A connection of either kind, pooled or direct.
enum MyConn {
    Pooled(PoolConnection<MySql>),
    Direct(MySqlConnection),
}

impl MyConn {
    fn conn(&mut self) -> &mut MySqlConnection {
        match self {
            MyConn::Pooled(c) => c,
            MyConn::Direct(c) => c,
        }
    }

    /// Close instead of returning to the pool: the connection ran an
    /// item's own statements, which may have changed its session (SET,
    /// USE, an open transaction) for whoever would use it next.
    fn forget(self) {
        if let MyConn::Pooled(c) = self {
            drop(c.detach());
        }
    }
}

enum PgConn {
    Pooled(PoolConnection<Postgres>),
    Direct(PgConnection),
}

impl PgConn {
    fn conn(&mut self) -> &mut PgConnection {
        match self {
            PgConn::Pooled(c) => c,
            PgConn::Direct(c) => c,
        }
    }

    /// Reset the session an item's own statements may have changed
    /// (`SET`, `SET ROLE`, cursors, temporary tables) before the connection
    /// goes back to the pool, in one round trip
    /// (reconnecting costs a PostgreSQL backend start, ~10x the issue
    /// rate). A connection that cannot be reset is closed.
    async fn reset(mut self) {
        if let PgConn::Pooled(c) = &mut self {
            // What DISCARD ALL does, but DEALLOCATE ALL: sqlx keeps its
            // prepared statements per connection and would find them gone.
            // RESET ALL restores the connection's start-up options
            // (standard_conforming_strings, timeouts) and its role.
            match raw_sql(
                "SET SESSION AUTHORIZATION DEFAULT; RESET ALL; CLOSE ALL; UNLISTEN *; \
                 SELECT pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES",
            )
            .execute(&mut **c)
            .await
            {
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "resetting a session failed; closing the connection")
                }
            }
        }
        if let PgConn::Pooled(c) = self {
            drop(c.detach());
        }
    }
}

/// Are these an item's own statements (not Coffer's defaults)? Then the
/// connection that ran them is not reused.
fn custom(s: &Statements, default: Statements) -> bool {
    s.stmts() != default.stmts()
}

async fn with_timeout<T>(
    spec: &DbConnSpec,
    what: &str,
    fut: impl Future<Output = Result<T, DbError>>,
) -> Result<T, DbError> {
    match tokio::time::timeout(OP_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(_) => Err(DbError::Timeout(format!(
            "{what} on {} did not finish within {} s",
            spec.endpoint(),
            OP_TIMEOUT.as_secs()
        ))),
    }
}

/// Direct (unpooled) connections, with the session set-up and a time limit.
async fn connect_mysql(
    spec: &DbConnSpec,
    user: &str,
    password: &str,
) -> Result<MySqlConnection, DbError> {
    let secrets = [password, spec.password.expose_secret()];
    let opts = spec.mysql_options(user, password);
    let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, opts.connect()).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => return Err(classify(spec, user, e, &secrets)),
        Err(_) => {
            return Err(DbError::Unreachable(format!(
                "cannot reach {}: no answer within {} s",
                spec.endpoint(),
                CONNECT_TIMEOUT.as_secs()
            )));
        }
    };
    if let Err(e) = prepare_mysql(&mut conn).await {
        return Err(classify(spec, user, e, &secrets));
    }
    Ok(conn)
}

async fn connect_pg(
    spec: &DbConnSpec,
    user: &str,
    password: &str,
) -> Result<PgConnection, DbError> {
    let secrets = [password, spec.password.expose_secret()];
    let opts = spec.pg_options(user, password);
    match tokio::time::timeout(CONNECT_TIMEOUT, opts.connect()).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(classify(spec, user, e, &secrets)),
        Err(_) => Err(DbError::Unreachable(format!(
            "cannot reach {}: no answer within {} s",
            spec.endpoint(),
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

fn kind_check(spec: &DbConnSpec, stmts: &Statements) -> Result<(), DbError> {
    if stmts.kind() != spec.kind {
        return Err(DbError::Other(format!(
            "the statements are written for {} but the target is {}",
            stmts.kind(),
            spec.kind
        )));
    }
    Ok(())
}

fn lit(kind: DbKind, v: &str) -> String {
    dbsql::quote_literal(kind, v)
}

fn pg_ident(v: &str) -> String {
    dbsql::quote_ident(DbKind::Postgres, v)
}

impl DbPools {
    pub fn new() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        // A failure leaves an all-zero key: the fingerprint is then a plain
        // hash, still never the password itself.
        if aws_lc_rs::rand::fill(&mut k[..]).is_err() {
            tracing::warn!("no randomness for the database pool key");
        }
        DbPools {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &k[..]),
            pools: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Cached>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fingerprint(&self, spec: &DbConnSpec) -> [u8; 32] {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.key);
        let port = spec.port.to_string();
        let fields: [&[u8]; 8] = [
            spec.kind.as_str().as_bytes(),
            spec.host.as_bytes(),
            port.as_bytes(),
            spec.user.as_bytes(),
            spec.password.expose_secret().as_bytes(),
            spec.db_name.as_bytes(),
            if spec.ssl { b"1" } else { b"0" },
            spec.ssl_ca_pem.as_deref().unwrap_or("-").as_bytes(),
        ];
        for f in fields {
            ctx.update(&(f.len() as u64).to_be_bytes());
            ctx.update(f);
        }
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// The pool for `spec`, created (lazily, no I/O) when missing.
    fn pool(&self, spec: &DbConnSpec) -> Pool {
        let fp = self.fingerprint(spec);
        let now = Instant::now();
        let mut pools = self.lock();
        if let Some(c) = pools.get_mut(&fp) {
            c.last_used = now;
            return c.pool.clone();
        }
        // Drop pools unused for long, then make room.
        let stale: Vec<[u8; 32]> = pools
            .iter()
            .filter(|(_, c)| {
                now.duration_since(c.last_used) > POOL_UNUSED_TTL && c.pool.in_use() == 0
            })
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            if let Some(c) = pools.remove(&k) {
                c.pool.close_in_background();
            }
        }
        if pools.len() >= MAX_POOLS {
            let victim = pools
                .iter()
                .min_by_key(|(_, c)| (c.pool.in_use() > 0, c.last_used))
                .map(|(k, _)| *k);
            if let Some(c) = victim.and_then(|k| pools.remove(&k)) {
                c.pool.close_in_background();
            }
        }
        let password = spec.password.expose_secret();
        let pool = match spec.kind {
            DbKind::MySql => Pool::My(
                MySqlPoolOptions::new()
                    .max_connections(POOL_MAX_CONNECTIONS)
                    .min_connections(0)
                    .idle_timeout(IDLE_TIMEOUT)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .test_before_acquire(true)
                    .after_connect(|conn, _meta| Box::pin(prepare_mysql(conn)))
                    .connect_lazy_with(spec.mysql_options(&spec.user, password)),
            ),
            DbKind::Postgres => Pool::Pg(
                PgPoolOptions::new()
                    .max_connections(POOL_MAX_CONNECTIONS)
                    .min_connections(0)
                    .idle_timeout(IDLE_TIMEOUT)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .test_before_acquire(true)
                    .connect_lazy_with(spec.pg_options(&spec.user, password)),
            ),
        };
        pools.insert(
            fp,
            Cached {
                pool: pool.clone(),
                last_used: now,
            },
        );
        pool
    }

    /// Forget (and close) the pool of `spec`, e.g. after its password changed.
    fn forget(&self, spec: &DbConnSpec) {
        let fp = self.fingerprint(spec);
        if let Some(c) = self.lock().remove(&fp) {
            c.pool.close_in_background();
        }
    }

    async fn mysql(&self, spec: &DbConnSpec) -> Result<MyConn, DbError> {
        let Pool::My(pool) = self.pool(spec) else {
            return Err(DbError::Other("internal: pool kind mismatch".into()));
        };
        if pool.size() == 0 {
            // Cold: connect directly once, to report why if it fails, and
            // use that connection for this operation.
            let c = connect_mysql(spec, &spec.user, spec.password.expose_secret()).await?;
            // Warm the pool in the background for the next operation.
            let warm = pool.clone();
            tokio::spawn(async move { drop(warm.acquire().await) });
            return Ok(MyConn::Direct(c));
        }
        pool.acquire()
            .await
            .map(MyConn::Pooled)
            .map_err(|e| classify(spec, &spec.user, e, &[spec.password.expose_secret()]))
    }

    async fn pg(&self, spec: &DbConnSpec) -> Result<PgConn, DbError> {
        let Pool::Pg(pool) = self.pool(spec) else {
            return Err(DbError::Other("internal: pool kind mismatch".into()));
        };
        if pool.size() == 0 {
            let c = connect_pg(spec, &spec.user, spec.password.expose_secret()).await?;
            let warm = pool.clone();
            tokio::spawn(async move { drop(warm.acquire().await) });
            return Ok(PgConn::Direct(c));
        }
        pool.acquire()
            .await
            .map(PgConn::Pooled)
            .map_err(|e| classify(spec, &spec.user, e, &[spec.password.expose_secret()]))
    }

    /// Connect and check that the user can create and drop users: MySQL
    /// `CREATE USER` (or `ALL PRIVILEGES`) on `*.*` and read access to
    /// `mysql.user`; PostgreSQL superuser or `CREATEROLE`.
    pub async fn check_admin(&self, spec: &DbConnSpec) -> Result<(), DbError> {
        with_timeout(spec, "checking the administrator", async {
            let secrets = [spec.password.expose_secret()];
            let err = |e| classify(spec, &spec.user, e, &secrets);
            match spec.kind {
                DbKind::MySql => {
                    let mut c = self.mysql(spec).await?;
                    let grants: Vec<String> =
                        sqlx::query_scalar("SHOW GRANTS FOR CURRENT_USER()")
                            .fetch_all(c.conn())
                            .await
                            .map_err(err)?;
                    if !grants.iter().any(|g| grants_create_user(g)) {
                        return Err(DbError::Privilege(format!(
                            "user {:?} lacks the CREATE USER privilege needed to create temporary users on {}: GRANT CREATE USER ON *.* TO it (WITH GRANT OPTION, to pass on the privileges the users get)",
                            spec.user,
                            spec.endpoint()
                        )));
                    }
                    mysql_hosts(c.conn(), "").await.map_err(|e| match err(e) {
                        DbError::Privilege(_) => DbError::Privilege(format!(
                            "user {:?} cannot read mysql.user on {}, needed to find and drop temporary users: GRANT SELECT ON mysql.user TO it",
                            spec.user,
                            spec.endpoint()
                        )),
                        other => other,
                    })?;
                    Ok(())
                }
                DbKind::Postgres => {
                    let mut c = self.pg(spec).await?;
                    let row = sqlx::query(
                        "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user",
                    )
                    .fetch_one(c.conn())
                    .await
                    .map_err(err)?;
                    let (sup, create): (bool, bool) = (row.get(0), row.get(1));
                    if !(sup || create) {
                        return Err(DbError::Privilege(format!(
                            "user {:?} lacks the CREATEROLE privilege (or superuser) needed to create temporary users on {}: ALTER ROLE it WITH CREATEROLE",
                            spec.user,
                            spec.endpoint()
                        )));
                    }
                    Ok(())
                }
            }
        })
        .await
    }

    /// Run the rendered creation statements. PostgreSQL: in one transaction.
    /// MySQL (DDL commits by itself): on a failure the user is dropped
    /// again at every host, so nothing is left half-created; a user that
    /// already exists is refused before anything runs.
    pub async fn create_user(
        &self,
        spec: &DbConnSpec,
        creation: &Statements,
        vars: &Vars<'_>,
    ) -> Result<(), DbError> {
        kind_check(spec, creation)?;
        dbsql::check_username(spec.kind, vars.name).map_err(|e| DbError::Other(e.to_string()))?;
        with_timeout(spec, "creating a user", async {
            let secrets = [vars.password, spec.password.expose_secret()];
            let rendered = creation.render(vars);
            match spec.kind {
                DbKind::MySql => {
                    let mut c = self.mysql(spec).await?;
                    let own = custom(creation, Statements::default_creation(DbKind::MySql));
                    let result = async {
                        let conn = c.conn();
                        let hosts = mysql_hosts(conn, vars.name)
                            .await
                            .map_err(|e| classify(spec, &spec.user, e, &secrets))?;
                        if !hosts.is_empty() {
                            return Err(DbError::Other(format!(
                                "mysql user {:?} already exists on {}",
                                vars.name,
                                spec.endpoint()
                            )));
                        }
                        for (i, sql) in rendered.iter().enumerate() {
                            if let Err(e) = raw_sql(AssertSqlSafe(sql.as_str()))
                                .execute(&mut *conn)
                                .await
                            {
                                let err = statement_error(spec, creation, i, e, &secrets);
                                if let Err(cleanup) = mysql_drop_everywhere(conn, vars.name).await {
                                    tracing::warn!(
                                        user = vars.name,
                                        error = %scrub(&cleanup.to_string(), &secrets),
                                        "could not drop a half-created mysql user"
                                    );
                                }
                                return Err(err);
                            }
                        }
                        Ok(())
                    }
                    .await;
                    if own {
                        c.forget();
                    }
                    result
                }
                DbKind::Postgres => {
                    let mut c = self.pg(spec).await?;
                    let own = custom(creation, Statements::default_creation(DbKind::Postgres));
                    // Concurrent GRANTs on the same objects collide in
                    // PostgreSQL's catalog ("tuple concurrently updated",
                    // deadlocks): the whole transaction is retried.
                    let mut attempt = 0u64;
                    let result = loop {
                        let r = async {
                            let mut tx =
                                c.conn().begin().await.map_err(|e| {
                                    (classify(spec, &spec.user, e, &secrets), false)
                                })?;
                            for (i, sql) in rendered.iter().enumerate() {
                                if let Err(e) =
                                    raw_sql(AssertSqlSafe(sql.as_str())).execute(&mut *tx).await
                                {
                                    let retry = pg_retryable(&e);
                                    return Err((
                                        statement_error(spec, creation, i, e, &secrets),
                                        retry,
                                    ));
                                }
                            }
                            tx.commit().await.map_err(|e| {
                                let retry = pg_retryable(&e);
                                (classify(spec, &spec.user, e, &secrets), retry)
                            })
                        }
                        .await;
                        match r {
                            Err((_, true)) if attempt < PG_CREATE_RETRIES => {
                                attempt += 1;
                                tokio::time::sleep(Duration::from_millis(5 * attempt)).await;
                            }
                            other => break other.map_err(|(e, _)| e),
                        }
                    };
                    if own {
                        c.reset().await;
                    }
                    result
                }
            }
        })
        .await
    }

    /// Revoke a user: lock it out, end its sessions, run the revocation
    /// statements (default MySQL: drop the user at every host it exists at;
    /// default PostgreSQL: DROP OWNED (its objects and privileges) / DROP ROLE; never REASSIGN OWNED to the administrator, which would hand a temporary user's SECURITY DEFINER functions to a superuser), end any
    /// session that slipped in meanwhile. A user that is already gone is
    /// not an error (the statements are skipped; lingering sessions are
    /// still ended on MySQL).
    pub async fn revoke_user(
        &self,
        spec: &DbConnSpec,
        username: &str,
        revocation: Option<&Statements>,
    ) -> Result<(), DbError> {
        if let Some(r) = revocation {
            kind_check(spec, r)?;
        }
        with_timeout(spec, "revoking a user", async {
            let secrets = [spec.password.expose_secret()];
            let vars = Vars {
                name: username,
                password: "",
                expiration: "",
            };
            match spec.kind {
                DbKind::MySql => {
                    let mut c = self.mysql(spec).await?;
                    let result = async {
                    let conn = c.conn();
                    let err = |e| classify(spec, &spec.user, e, &secrets);
                    let hosts = mysql_hosts(conn, username).await.map_err(err)?;
                    for h in &hosts {
                        let sql = format!(
                            "ALTER USER {}@{} ACCOUNT LOCK",
                            lit(DbKind::MySql, username),
                            lit(DbKind::MySql, h)
                        );
                        // Older servers have no ACCOUNT LOCK: killing and
                        // dropping below still do the job.
                        if raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await.is_err() {
                            tracing::debug!(user = username, "ACCOUNT LOCK not supported");
                        }
                    }
                    let mut kill_failure = mysql_kill_sessions(conn, username).await;
                    if !hosts.is_empty() {
                        match revocation {
                            None => mysql_drop_everywhere(conn, username).await.map_err(err)?,
                            Some(r) => {
                                for (i, sql) in r.render(&vars).iter().enumerate() {
                                    raw_sql(AssertSqlSafe(sql.as_str()))
                                        .execute(&mut *conn)
                                        .await
                                        .map_err(|e| statement_error(spec, r, i, e, &secrets))?;
                                }
                            }
                        }
                        if kill_failure.is_ok() {
                            kill_failure = mysql_kill_sessions(conn, username).await;
                        }
                    }
                    kill_failure.map_err(|e| match err(e) {
                        DbError::Privilege(m) => DbError::Privilege(format!(
                            "revoked user {username:?} but could not end its open sessions: {m} (the administrator needs CONNECTION ADMIN or SUPER, and PROCESS to see them)"
                        )),
                        other => other,
                    })
                    }
                    .await;
                    if revocation.is_some() {
                        c.forget();
                    }
                    result
                }
                DbKind::Postgres => {
                    let mut c = self.pg(spec).await?;
                    let result = async {
                    let conn = c.conn();
                    let err = |e| classify(spec, &spec.user, e, &secrets);
                    if !pg_role_exists(conn, username).await.map_err(err)? {
                        return Ok(());
                    }
                    let nologin = format!("ALTER ROLE {} NOLOGIN", pg_ident(username));
                    if let Err(e) = raw_sql(AssertSqlSafe(nologin)).execute(&mut *conn).await {
                        tracing::debug!(user = username, error = %e, "ALTER ROLE NOLOGIN failed");
                    }
                    // Before the drop: afterwards pg_stat_activity no longer
                    // shows the role's name.
                    let terminated = pg_terminate_sessions(conn, username).await;
                    let stmts = match revocation {
                        Some(r) => r.clone(),
                        None => Statements::default_revocation(DbKind::Postgres),
                    };
                    let mut tx = conn.begin().await.map_err(err)?;
                    for (i, sql) in stmts.render(&vars).iter().enumerate() {
                        raw_sql(AssertSqlSafe(sql.as_str()))
                            .execute(&mut *tx)
                            .await
                            .map_err(|e| statement_error(spec, &stmts, i, e, &secrets))?;
                    }
                    tx.commit().await.map_err(err)?;
                    terminated.map_err(|e| match err(e) {
                        DbError::Privilege(m) => DbError::Privilege(format!(
                            "revoked role {username:?} but could not end its open sessions: {m} (the administrator needs superuser or pg_signal_backend)"
                        )),
                        other => other,
                    })
                    }
                    .await;
                    if revocation.is_some() {
                        c.reset().await;
                    }
                    result
                }
            }
        })
        .await
    }

    /// PostgreSQL: move a role's `VALID UNTIL` (a lease's new expiry), so
    /// the password stops working when the lease ends. MySQL users have no
    /// expiry of their own: nothing to do.
    pub async fn set_valid_until(
        &self,
        spec: &DbConnSpec,
        username: &str,
        expiration: &str,
    ) -> Result<(), DbError> {
        if spec.kind != DbKind::Postgres {
            return Ok(());
        }
        dbsql::check_username(spec.kind, username).map_err(|e| DbError::Other(e.to_string()))?;
        with_timeout(spec, "changing a role's expiry", async {
            let secrets = [spec.password.expose_secret()];
            let mut c = self.pg(spec).await?;
            let sql = format!(
                "ALTER ROLE {} VALID UNTIL {}",
                pg_ident(username),
                lit(DbKind::Postgres, expiration)
            );
            raw_sql(AssertSqlSafe(sql))
                .execute(c.conn())
                .await
                .map(|_| ())
                .map_err(|e| classify(spec, &spec.user, e, &secrets))
        })
        .await
    }

    /// Whether the user exists (at any host, for MySQL).
    pub async fn user_exists(&self, spec: &DbConnSpec, username: &str) -> Result<bool, DbError> {
        with_timeout(spec, "looking up a user", async {
            let secrets = [spec.password.expose_secret()];
            let err = |e| classify(spec, &spec.user, e, &secrets);
            match spec.kind {
                DbKind::MySql => {
                    let mut c = self.mysql(spec).await?;
                    Ok(!mysql_hosts(c.conn(), username)
                        .await
                        .map_err(err)?
                        .is_empty())
                }
                DbKind::Postgres => {
                    let mut c = self.pg(spec).await?;
                    pg_role_exists(c.conn(), username).await.map_err(err)
                }
            }
        })
        .await
    }

    /// Users whose name starts with `prefix`, sorted.
    pub async fn list_users(
        &self,
        spec: &DbConnSpec,
        prefix: &str,
    ) -> Result<Vec<String>, DbError> {
        with_timeout(spec, "listing users", async {
            let secrets = [spec.password.expose_secret()];
            let err = |e| classify(spec, &spec.user, e, &secrets);
            let like = format!(
                "{}%",
                prefix
                    .replace('!', "!!")
                    .replace('%', "!%")
                    .replace('_', "!_")
            );
            let mut names: Vec<String> = match spec.kind {
                DbKind::MySql => {
                    let mut c = self.mysql(spec).await?;
                    sqlx::query_scalar(
                        "SELECT DISTINCT CAST(user AS CHAR CHARACTER SET utf8mb4) FROM mysql.user WHERE user LIKE ? ESCAPE '!'",
                    )
                    .bind(&like)
                    .fetch_all(c.conn())
                    .await
                    .map_err(err)?
                }
                DbKind::Postgres => {
                    let mut c = self.pg(spec).await?;
                    sqlx::query_scalar(
                        "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1 ESCAPE '!'",
                    )
                    .bind(&like)
                    .fetch_all(c.conn())
                    .await
                    .map_err(err)?
                }
            };
            names.retain(|n| n.starts_with(prefix));
            names.sort();
            names.dedup();
            Ok(names)
        })
        .await
    }

    /// Log in as `username` with `password` on a fresh (unpooled)
    /// connection and run `SELECT 1`.
    pub async fn login_check(
        &self,
        spec: &DbConnSpec,
        username: &str,
        password: &str,
    ) -> Result<(), DbError> {
        with_timeout(spec, "logging in", async {
            let secrets = [password, spec.password.expose_secret()];
            match spec.kind {
                DbKind::MySql => {
                    let mut c = connect_mysql(spec, username, password).await?;
                    let r = sqlx::query("SELECT 1").execute(&mut c).await;
                    c.close().await.ok();
                    r.map(drop)
                        .map_err(|e| classify(spec, username, e, &secrets))
                }
                DbKind::Postgres => {
                    let mut c = connect_pg(spec, username, password).await?;
                    let r = sqlx::query("SELECT 1").execute(&mut c).await;
                    c.close().await.ok();
                    r.map(drop)
                        .map_err(|e| classify(spec, username, e, &secrets))
                }
            }
        })
        .await
    }

    /// As the administrator, set `username`'s password (MySQL: at every
    /// host the user exists at). The user must exist.
    pub async fn set_password(
        &self,
        spec: &DbConnSpec,
        username: &str,
        new_password: &str,
    ) -> Result<(), DbError> {
        with_timeout(spec, "changing a password", async {
            let secrets = [new_password, spec.password.expose_secret()];
            let err = |e| classify(spec, &spec.user, e, &secrets);
            let missing = || {
                DbError::Other(format!(
                    "{} user {username:?} does not exist on {}",
                    spec.kind,
                    spec.endpoint()
                ))
            };
            match spec.kind {
                DbKind::MySql => {
                    let mut c = self.mysql(spec).await?;
                    let conn = c.conn();
                    let hosts = mysql_hosts(conn, username).await.map_err(err)?;
                    if hosts.is_empty() {
                        return Err(missing());
                    }
                    for h in &hosts {
                        let quoted = Zeroizing::new(lit(DbKind::MySql, new_password));
                        let sql = Zeroizing::new(format!(
                            "ALTER USER {}@{} IDENTIFIED BY {}",
                            lit(DbKind::MySql, username),
                            lit(DbKind::MySql, h),
                            quoted.as_str()
                        ));
                        raw_sql(AssertSqlSafe(sql.as_str()))
                            .execute(&mut *conn)
                            .await
                            .map_err(err)?;
                    }
                    Ok(())
                }
                DbKind::Postgres => {
                    let mut c = self.pg(spec).await?;
                    let conn = c.conn();
                    if !pg_role_exists(conn, username).await.map_err(err)? {
                        return Err(missing());
                    }
                    let quoted = Zeroizing::new(lit(DbKind::Postgres, new_password));
                    let sql = Zeroizing::new(format!(
                        "ALTER ROLE {} WITH PASSWORD {}",
                        pg_ident(username),
                        quoted.as_str()
                    ));
                    raw_sql(AssertSqlSafe(sql.as_str()))
                        .execute(&mut *conn)
                        .await
                        .map(drop)
                        .map_err(err)
                }
            }
        })
        .await
    }

    /// Connect as `spec.user` with `spec.password` and change that user's
    /// own password (rotated secret of rotator type "target": the target's
    /// own credentials). The pool of the old credentials is dropped.
    pub async fn set_own_password(
        &self,
        spec: &DbConnSpec,
        new_password: &str,
    ) -> Result<(), DbError> {
        let r = with_timeout(spec, "changing the own password", async {
            let secrets = [new_password, spec.password.expose_secret()];
            let err = |e| classify(spec, &spec.user, e, &secrets);
            match spec.kind {
                DbKind::MySql => {
                    let mut c =
                        connect_mysql(spec, &spec.user, spec.password.expose_secret()).await?;
                    // MariaDB wants CREATE USER for ALTER USER CURRENT_USER();
                    // its SET PASSWORD works for the own account (MySQL 8
                    // has no PASSWORD() function).
                    let r = async {
                        let version: String = sqlx::query_scalar("SELECT VERSION()")
                            .fetch_one(&mut c)
                            .await?;
                        let quoted = Zeroizing::new(lit(DbKind::MySql, new_password));
                        let sql = Zeroizing::new(if version.contains("MariaDB") {
                            format!("SET PASSWORD = PASSWORD({})", quoted.as_str())
                        } else {
                            format!(
                                "ALTER USER CURRENT_USER() IDENTIFIED BY {}",
                                quoted.as_str()
                            )
                        });
                        raw_sql(AssertSqlSafe(sql.as_str())).execute(&mut c).await
                    }
                    .await;
                    c.close().await.ok();
                    r.map(drop).map_err(err)
                }
                DbKind::Postgres => {
                    let mut c = connect_pg(spec, &spec.user, spec.password.expose_secret()).await?;
                    let quoted = Zeroizing::new(lit(DbKind::Postgres, new_password));
                    let sql = Zeroizing::new(format!(
                        "ALTER ROLE CURRENT_USER WITH PASSWORD {}",
                        quoted.as_str()
                    ));
                    let r = raw_sql(AssertSqlSafe(sql.as_str())).execute(&mut c).await;
                    c.close().await.ok();
                    r.map(drop).map_err(err)
                }
            }
        })
        .await;
        if r.is_ok() {
            self.forget(spec);
        }
        r
    }

    /// Create a user with `creation`, log in as it, revoke it (also when
    /// the login failed); the first failure is returned.
    pub async fn dry_run(
        &self,
        spec: &DbConnSpec,
        creation: &Statements,
        revocation: Option<&Statements>,
        vars: &Vars<'_>,
    ) -> Result<(), DbError> {
        self.create_user(spec, creation, vars).await?;
        let login = self.login_check(spec, vars.name, vars.password).await;
        let revoke = self.revoke_user(spec, vars.name, revocation).await;
        login.and(revoke)
    }
}

/// Whether one `SHOW GRANTS` line gives CREATE USER on `*.*`.
fn grants_create_user(grant: &str) -> bool {
    let g = grant.to_ascii_uppercase();
    let Some(rest) = g.strip_prefix("GRANT ") else {
        return false;
    };
    let Some((privs, target)) = rest.split_once(" ON ") else {
        return false;
    };
    let global = target.trim_start().starts_with("*.*");
    global
        && privs
            .split(',')
            .map(str::trim)
            .any(|p| p == "ALL PRIVILEGES" || p == "ALL" || p == "CREATE USER")
}

/// The hosts `user` exists at (MySQL).
async fn mysql_hosts(conn: &mut MySqlConnection, user: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT CAST(host AS CHAR CHARACTER SET utf8mb4) FROM mysql.user WHERE user = ?",
    )
    .bind(user)
    .fetch_all(conn)
    .await
}

async fn mysql_drop_everywhere(conn: &mut MySqlConnection, user: &str) -> Result<(), sqlx::Error> {
    for h in mysql_hosts(conn, user).await? {
        let sql = format!(
            "DROP USER IF EXISTS {}@{}",
            lit(DbKind::MySql, user),
            lit(DbKind::MySql, &h)
        );
        raw_sql(AssertSqlSafe(sql)).execute(&mut *conn).await?;
    }
    Ok(())
}

/// End every session of `user` but this one. Sessions that end by
/// themselves meanwhile (error 1094) are fine.
async fn mysql_kill_sessions(conn: &mut MySqlConnection, user: &str) -> Result<(), sqlx::Error> {
    let ids: Vec<u64> = sqlx::query_scalar(
        "SELECT CAST(ID AS UNSIGNED) FROM information_schema.PROCESSLIST WHERE USER = ? AND ID <> CONNECTION_ID()",
    )
    .bind(user)
    .fetch_all(&mut *conn)
    .await?;
    for id in ids {
        match raw_sql(AssertSqlSafe(format!("KILL CONNECTION {id}")))
            .execute(&mut *conn)
            .await
        {
            Ok(_) => {}
            Err(e) if db_code(&e).is_some_and(|(c, _)| c == "1094") => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

async fn pg_role_exists(conn: &mut PgConnection, role: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
        .bind(role)
        .fetch_one(conn)
        .await
}

/// Terminate every session of `role` (but this one) and wait up to
/// [`TERMINATE_WAIT`] for them to go.
async fn pg_terminate_sessions(conn: &mut PgConnection, role: &str) -> Result<(), sqlx::Error> {
    let deadline = Instant::now() + TERMINATE_WAIT;
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()",
        )
        .bind(role)
        .fetch_one(&mut *conn)
        .await?;
        if left == 0 || Instant::now() >= deadline {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing() {
        let pw = "Secr3t-Passw0rd";
        assert_eq!(scrub("x Secr3t-Passw0rd y", &[pw]), "x [REDACTED] y");
        // MySQL's truncated "near" text.
        assert_eq!(
            scrub("near 'IDENTIFIED BY 'Secr3t-Pa' at line 1", &[pw]),
            "near 'IDENTIFIED BY '[REDACTED]' at line 1"
        );
        assert_eq!(scrub("a''b\\\\c", &["a'b\\c"]), "[REDACTED]");
        assert_eq!(scrub("Secr3 and é", &[pw]), "Secr3 and é");
        assert_eq!(scrub("anything", &[""]), "anything");
    }

    #[test]
    fn grants() {
        assert!(grants_create_user(
            "GRANT ALL PRIVILEGES ON *.* TO `root`@`127.0.0.1` WITH GRANT OPTION"
        ));
        assert!(grants_create_user(
            "GRANT SELECT, CREATE USER ON *.* TO `a`@`%`"
        ));
        assert!(!grants_create_user("GRANT USAGE ON *.* TO `a`@`%`"));
        assert!(!grants_create_user(
            "GRANT ALL PRIVILEGES ON `db`.* TO `a`@`%`"
        ));
    }

    #[test]
    fn spec_debug_hides_password() {
        let spec = DbConnSpec {
            kind: DbKind::MySql,
            host: "::1".into(),
            port: 3306,
            user: "root".into(),
            password: SecretString::from("hunter2-hunter2"),
            db_name: String::new(),
            ssl: false,
            ssl_ca_pem: None,
        };
        assert!(!format!("{spec:?}").contains("hunter2"));
        assert_eq!(spec.endpoint(), "mysql at [::1]:3306");
    }
}
