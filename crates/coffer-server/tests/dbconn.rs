//! `dbconn` against real servers: MariaDB/MySQL from `COFFER_TEST_MYSQL_URL`
//! (e.g. `mysql://root@127.0.0.1:3306/coffer_test`) and PostgreSQL from
//! `COFFER_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432/postgres`).
//! Without a variable its tests print a note and pass. Loopback only; every
//! user and table has a random suffix and is removed again.
//!
//! PostgreSQL with `trust` authentication for 127.0.0.1 accepts any
//! password, so wrong-password assertions are skipped there (with a note);
//! refusals are still checked with a role that may not log in.
// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used)]

use coffer_core::dbsql::{DbKind, Statements, Vars};
use coffer_server::dbconn::{DbConnSpec, DbError, DbPools};
use secrecy::SecretString;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, raw_sql};

const EXPIRY: &str = "2099-01-01 00:00:00+00";

fn rand_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).expect("random");
    hex::encode(b)
}

/// A password with every character that needs escaping in SQL.
fn hostile_password() -> String {
    format!("Pw'{}\\\"x;--`{}", rand_hex(6), "é")
}

/// `scheme://user[:password]@host:port/db` → a spec (no URL crate needed).
fn spec_from_url(kind: DbKind, url: &str) -> DbConnSpec {
    let rest = url.split_once("://").expect("scheme").1;
    let (auth, rest) = rest.rsplit_once('@').expect("user@host");
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, db) = rest.split_once('/').unwrap_or((rest, ""));
    let db = db.split('?').next().unwrap_or("");
    let (host, port) = hostport.rsplit_once(':').expect("host:port");
    assert!(
        host == "127.0.0.1" || host == "localhost" || host == "[::1]",
        "tests only talk to loopback servers, not {host}"
    );
    DbConnSpec {
        kind,
        host: host.trim_matches(['[', ']']).to_owned(),
        port: port.parse().expect("port"),
        user: user.to_owned(),
        password: SecretString::from(password.to_owned()),
        db_name: db.to_owned(),
        ssl: false,
        ssl_ca_pem: None,
    }
}

fn mysql_spec() -> Option<DbConnSpec> {
    match std::env::var("COFFER_TEST_MYSQL_URL") {
        Ok(u) if !u.is_empty() => Some(spec_from_url(DbKind::MySql, &u)),
        _ => {
            eprintln!("note: COFFER_TEST_MYSQL_URL is not set: MySQL/MariaDB dbconn test skipped");
            None
        }
    }
}

fn pg_spec() -> Option<DbConnSpec> {
    match std::env::var("COFFER_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Some(spec_from_url(DbKind::Postgres, &u)),
        _ => {
            eprintln!("note: COFFER_TEST_POSTGRES_URL is not set: PostgreSQL dbconn test skipped");
            None
        }
    }
}

fn with_user(spec: &DbConnSpec, user: &str, password: &str) -> DbConnSpec {
    DbConnSpec {
        user: user.to_owned(),
        password: SecretString::from(password.to_owned()),
        ..spec.clone()
    }
}

async fn my_session(spec: &DbConnSpec, user: &str, password: &str) -> MySqlConnection {
    let mut o = MySqlConnectOptions::new()
        .host(&spec.host)
        .port(spec.port)
        .username(user);
    if !password.is_empty() {
        o = o.password(password);
    }
    if !spec.db_name.is_empty() {
        o = o.database(&spec.db_name);
    }
    o.connect().await.expect("session as the new user")
}

async fn pg_session(spec: &DbConnSpec, user: &str, password: &str) -> PgConnection {
    PgConnectOptions::new_without_pgpass()
        .host(&spec.host)
        .port(spec.port)
        .username(user)
        .password(password)
        .database(&spec.db_name)
        .connect()
        .await
        .expect("session as the new role")
}

/// Run admin SQL directly (test set-up), not through dbconn.
async fn admin_mysql(spec: &DbConnSpec, sql: &str) {
    let mut c = my_session(
        spec,
        &spec.user,
        secrecy::ExposeSecret::expose_secret(&spec.password),
    )
    .await;
    raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn admin_pg(spec: &DbConnSpec, sql: &str) {
    let mut c = pg_session(
        spec,
        &spec.user,
        secrecy::ExposeSecret::expose_secret(&spec.password),
    )
    .await;
    raw_sql(AssertSqlSafe(sql.to_owned()))
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Neither Display nor Debug of `e` shows any of `secrets`.
fn assert_clean(e: &DbError, secrets: &[&str]) {
    let shown = format!("{e} / {e:?}");
    for s in secrets {
        assert!(!shown.contains(s), "secret leaked into error: {shown}");
    }
}

/// 127.0.0.1 on a port nobody listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let p = l.local_addr().expect("addr").port();
    drop(l);
    p
}

// ------------------------------------------------------------------ MySQL

#[tokio::test]
async fn mysql_lifecycle() {
    let Some(spec) = mysql_spec() else { return };
    assert!(
        !spec.db_name.is_empty(),
        "COFFER_TEST_MYSQL_URL needs a database"
    );
    let pools = DbPools::new();
    pools.check_admin(&spec).await.expect("root is an admin");

    let sfx = rand_hex(4);
    let table = format!("dbconn_t_{sfx}");
    admin_mysql(&spec, &format!("CREATE TABLE {table} (id INT)")).await;
    admin_mysql(&spec, &format!("INSERT INTO {table} VALUES (1)")).await;

    let name = format!("ct_{sfx}");
    let pw = hostile_password();
    let creation = Statements::parse(
        DbKind::MySql,
        &format!(
            "CREATE USER '{{{{name}}}}'@'%' IDENTIFIED BY '{{{{password}}}}';\n\
             GRANT SELECT ON `{}`.`{table}` TO '{{{{name}}}}'@'%'",
            spec.db_name
        ),
    )
    .expect("template");
    let vars = Vars {
        name: &name,
        password: &pw,
        expiration: EXPIRY,
    };
    pools
        .create_user(&spec, &creation, &vars)
        .await
        .expect("create");
    assert!(pools.user_exists(&spec, &name).await.expect("exists"));
    assert_eq!(
        pools
            .list_users(&spec, "ct_")
            .await
            .expect("list")
            .iter()
            .filter(|u| **u == name)
            .count(),
        1
    );
    // Creating it again is refused and does not drop the existing user.
    let again = pools
        .create_user(&spec, &creation, &vars)
        .await
        .expect_err("exists");
    assert!(again.to_string().contains("already exists"), "{again}");
    assert!(pools.user_exists(&spec, &name).await.expect("exists"));

    // The hostile password round-trips: login works with it.
    pools.login_check(&spec, &name, &pw).await.expect("login");
    let wrong = pools
        .login_check(&spec, &name, "not-the-password")
        .await
        .expect_err("wrong pw");
    assert!(matches!(wrong, DbError::AuthFailed(_)), "{wrong:?}");
    assert_clean(&wrong, &[&pw, "not-the-password"]);

    // Rights: SELECT granted, INSERT refused.
    let mut session = my_session(&spec, &name, &pw).await;
    let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(&mut session)
        .await
        .expect("select allowed");
    assert_eq!(n, 1);
    let ins = raw_sql(AssertSqlSafe(format!("INSERT INTO {table} VALUES (2)")))
        .execute(&mut session)
        .await
        .expect_err("insert refused");
    assert!(ins.to_string().contains("1142"), "{ins}");

    // Revoke while the session is open: the session ends, the user is gone.
    pools.revoke_user(&spec, &name, None).await.expect("revoke");
    assert!(!pools.user_exists(&spec, &name).await.expect("exists"));
    let after = sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(&mut session)
        .await;
    assert!(after.is_err(), "the open session survived revocation");
    drop(session);
    // Twice is fine; a custom revocation on a missing user too.
    pools
        .revoke_user(&spec, &name, None)
        .await
        .expect("revoke again");
    let custom = Statements::parse(DbKind::MySql, "DROP USER '{{name}}'@'%'").expect("template");
    pools
        .revoke_user(&spec, &name, Some(&custom))
        .await
        .expect("custom revoke of a missing user");
    let e = pools
        .login_check(&spec, &name, &pw)
        .await
        .expect_err("gone");
    assert!(matches!(e, DbError::AuthFailed(_)), "{e:?}");
    assert!(
        !pools
            .list_users(&spec, "ct_")
            .await
            .expect("list")
            .contains(&name)
    );

    admin_mysql(&spec, &format!("DROP TABLE {table}")).await;
}

#[tokio::test]
async fn mysql_bad_statement_is_named_and_cleaned_up() {
    let Some(spec) = mysql_spec() else { return };
    let pools = DbPools::new();
    let name = format!("ct_{}", rand_hex(4));
    let pw = hostile_password();
    let vars = Vars {
        name: &name,
        password: &pw,
        expiration: EXPIRY,
    };
    let creation = Statements::parse(
        DbKind::MySql,
        "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT SELEKT ON *.* TO '{{name}}'@'%'",
    )
    .expect("template");
    let e = pools
        .create_user(&spec, &creation, &vars)
        .await
        .expect_err("bad sql");
    match &e {
        DbError::Statement {
            index,
            statement,
            message,
        } => {
            assert_eq!(*index, 1);
            assert_eq!(statement, "GRANT SELEKT ON *.* TO '{{name}}'@'%'");
            assert!(message.contains("SQL syntax"), "{message}");
        }
        other => panic!("expected a statement error, got {other:?}"),
    }
    assert!(
        e.to_string().starts_with("statement 2 (GRANT SELEKT"),
        "{e}"
    );
    assert_clean(&e, &[&pw]);
    assert!(
        !pools.user_exists(&spec, &name).await.expect("exists"),
        "half-created user left behind"
    );

    // The server's message quotes the statement around the password: scrubbed.
    let echo = Statements::parse(
        DbKind::MySql,
        "CREATE USER '{{name}}'@'%' IDENTIFIED BYY '{{password}}'",
    )
    .expect("template");
    let long_pw = format!("{}{}", rand_hex(40), "Zz9");
    let vars = Vars {
        password: &long_pw,
        ..vars
    };
    let e = pools
        .create_user(&spec, &echo, &vars)
        .await
        .expect_err("bad sql");
    assert!(matches!(e, DbError::Statement { index: 0, .. }), "{e:?}");
    assert!(e.to_string().contains("[REDACTED]"), "{e}");
    assert_clean(&e, &[&long_pw, &long_pw[..12]]);
    assert!(!pools.user_exists(&spec, &name).await.expect("exists"));

    // dry run: create, log in, revoke.
    let ok_vars = Vars {
        name: &name,
        password: &pw,
        expiration: EXPIRY,
    };
    pools
        .dry_run(
            &spec,
            &Statements::default_creation(DbKind::MySql),
            None,
            &ok_vars,
        )
        .await
        .expect("dry run");
    assert!(!pools.user_exists(&spec, &name).await.expect("exists"));
}

#[tokio::test]
async fn mysql_connection_errors() {
    let Some(spec) = mysql_spec() else { return };
    let pools = DbPools::new();

    let port = closed_port();
    let down = DbConnSpec {
        port,
        ..spec.clone()
    };
    let e = pools.check_admin(&down).await.expect_err("closed port");
    assert!(matches!(e, DbError::Unreachable(_)), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");

    let bad_pw = "definitely-Wrong-pw-42";
    let wrong = with_user(&spec, &spec.user, bad_pw);
    let e = pools
        .check_admin(&wrong)
        .await
        .expect_err("wrong admin password");
    assert!(matches!(e, DbError::AuthFailed(_)), "{e:?}");
    assert!(e.to_string().contains(&format!("{:?}", spec.user)), "{e}");
    assert_clean(&e, &[bad_pw]);

    // TLS required but the server offers none (this MariaDB has no TLS
    // configured): a TLS error, not a silent plain-text connection.
    let tls = DbConnSpec {
        ssl: true,
        ..spec.clone()
    };
    match pools.check_admin(&tls).await {
        Err(DbError::Tls(m)) => assert!(m.contains("TLS"), "{m}"),
        Ok(()) => eprintln!("note: the MySQL server speaks TLS; TLS refusal not checked"),
        Err(other) => panic!("expected a TLS error, got {other:?}"),
    }

    let db_missing = DbConnSpec {
        db_name: format!("nodb_{}", rand_hex(3)),
        ..spec.clone()
    };
    let e = pools
        .check_admin(&db_missing)
        .await
        .expect_err("missing database");
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[tokio::test]
async fn mysql_unprivileged_admin_and_passwords() {
    let Some(spec) = mysql_spec() else { return };
    // No database: the new user has no rights on any (connecting to one
    // it may not use is refused with 1044, a Privilege error).
    let spec = DbConnSpec {
        db_name: String::new(),
        ..spec
    };
    let pools = DbPools::new();
    let name = format!("np_{}", rand_hex(4));
    let pw1 = hostile_password();
    let vars = Vars {
        name: &name,
        password: &pw1,
        expiration: EXPIRY,
    };
    let plain = Statements::parse(
        DbKind::MySql,
        "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'",
    )
    .expect("template");
    pools
        .create_user(&spec, &plain, &vars)
        .await
        .expect("create");

    // Not an administrator.
    let np = with_user(&spec, &name, &pw1);
    let e = pools.check_admin(&np).await.expect_err("not an admin");
    assert!(matches!(e, DbError::Privilege(_)), "{e:?}");
    assert!(e.to_string().contains("CREATE USER"), "{e}");
    assert_clean(&e, &[&pw1]);

    // The administrator sets a new password: old refused, new works.
    let pw2 = hostile_password();
    pools
        .set_password(&spec, &name, &pw2)
        .await
        .expect("set password");
    let e = pools
        .login_check(&spec, &name, &pw1)
        .await
        .expect_err("old password");
    assert!(matches!(e, DbError::AuthFailed(_)), "{e:?}");
    assert_clean(&e, &[&pw1, &pw2]);
    pools
        .login_check(&spec, &name, &pw2)
        .await
        .expect("new password");

    // The user rotates its own password.
    let pw3 = hostile_password();
    let me = with_user(&spec, &name, &pw2);
    pools
        .set_own_password(&me, &pw3)
        .await
        .expect("own password");
    pools
        .login_check(&spec, &name, &pw3)
        .await
        .expect("newest password");
    let e = pools
        .login_check(&spec, &name, &pw2)
        .await
        .expect_err("previous password");
    assert!(matches!(e, DbError::AuthFailed(_)), "{e:?}");

    let e = pools
        .set_password(&spec, "ct_nobody_here", &pw3)
        .await
        .expect_err("missing user");
    assert!(e.to_string().contains("does not exist"), "{e}");
    assert_clean(&e, &[&pw3]);

    pools.revoke_user(&spec, &name, None).await.expect("revoke");
    assert!(!pools.user_exists(&spec, &name).await.expect("exists"));
}

// ------------------------------------------------------------- PostgreSQL

/// Whether the server lets anyone in without checking the password.
async fn pg_trusts_loopback(spec: &DbConnSpec, pools: &DbPools) -> bool {
    let probe = format!("tp_{}", rand_hex(4));
    admin_pg(
        spec,
        &format!("CREATE ROLE {probe} LOGIN PASSWORD 'right-password-1'"),
    )
    .await;
    let trusted = pools
        .login_check(spec, &probe, "wrong-password-1")
        .await
        .is_ok();
    admin_pg(spec, &format!("DROP ROLE {probe}")).await;
    if trusted {
        eprintln!(
            "note: PostgreSQL at {}:{} uses trust authentication for this address: wrong-password checks skipped",
            spec.host, spec.port
        );
    }
    trusted
}

#[tokio::test]
async fn pg_lifecycle() {
    let Some(spec) = pg_spec() else { return };
    let pools = DbPools::new();
    pools
        .check_admin(&spec)
        .await
        .expect("postgres is an admin");
    let trust = pg_trusts_loopback(&spec, &pools).await;

    let sfx = rand_hex(4);
    let table = format!("dbconn_t_{sfx}");
    admin_pg(
        &spec,
        &format!("CREATE TABLE public.{table} (id int); INSERT INTO public.{table} VALUES (1)"),
    )
    .await;

    let name = format!("ct_{sfx}");
    let pw = hostile_password();
    let vars = Vars {
        name: &name,
        password: &pw,
        expiration: EXPIRY,
    };
    let creation = Statements::default_creation(DbKind::Postgres);
    pools
        .create_user(&spec, &creation, &vars)
        .await
        .expect("create");
    assert!(pools.user_exists(&spec, &name).await.expect("exists"));
    assert!(
        pools
            .list_users(&spec, "ct_")
            .await
            .expect("list")
            .contains(&name)
    );
    let again = pools
        .create_user(&spec, &creation, &vars)
        .await
        .expect_err("exists");
    assert!(
        matches!(again, DbError::Statement { index: 0, .. }),
        "{again:?}"
    );
    assert_clean(&again, &[&pw]);

    pools.login_check(&spec, &name, &pw).await.expect("login");
    if !trust {
        let e = pools
            .login_check(&spec, &name, "not-the-password")
            .await
            .expect_err("wrong");
        assert!(matches!(e, DbError::AuthFailed(_)), "{e:?}");
    }

    let mut session = pg_session(&spec, &name, &pw).await;
    let n: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "SELECT count(*) FROM public.{table}"
    )))
    .fetch_one(&mut session)
    .await
    .expect("select allowed");
    assert_eq!(n, 1);
    let ins = raw_sql(AssertSqlSafe(format!(
        "INSERT INTO public.{table} VALUES (2)"
    )))
    .execute(&mut session)
    .await
    .expect_err("insert refused");
    assert!(ins.to_string().contains("permission denied"), "{ins}");
    // Something the role owns, so DROP OWNED has work to do.
    raw_sql(AssertSqlSafe(format!(
        "CREATE TEMP TABLE own_{sfx} (x int)"
    )))
    .execute(&mut session)
    .await
    .expect("temp table");

    pools.revoke_user(&spec, &name, None).await.expect("revoke");
    assert!(!pools.user_exists(&spec, &name).await.expect("exists"));
    let after = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&mut session)
        .await;
    assert!(after.is_err(), "the open session survived revocation");
    drop(session);
    pools
        .revoke_user(&spec, &name, None)
        .await
        .expect("revoke again");
    let custom = Statements::parse(DbKind::Postgres, "DROP ROLE \"{{name}}\"").expect("template");
    pools
        .revoke_user(&spec, &name, Some(&custom))
        .await
        .expect("custom revoke of a missing role");
    let e = pools
        .login_check(&spec, &name, &pw)
        .await
        .expect_err("gone");
    assert!(matches!(e, DbError::AuthFailed(_)), "{e:?}");
    assert_clean(&e, &[&pw]);

    admin_pg(&spec, &format!("DROP TABLE public.{table}")).await;
}

#[tokio::test]
async fn pg_bad_statement_rolls_back() {
    let Some(spec) = pg_spec() else { return };
    let pools = DbPools::new();
    let name = format!("ct_{}", rand_hex(4));
    let pw = hostile_password();
    let vars = Vars {
        name: &name,
        password: &pw,
        expiration: EXPIRY,
    };
    let creation = Statements::parse(
        DbKind::Postgres,
        "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'; GRANT SELEKT ON ALL TABLES IN SCHEMA public TO \"{{name}}\"",
    )
    .expect("template");
    let e = pools
        .create_user(&spec, &creation, &vars)
        .await
        .expect_err("bad sql");
    match &e {
        DbError::Statement {
            index, statement, ..
        } => {
            assert_eq!(*index, 1);
            assert!(statement.starts_with("GRANT SELEKT"), "{statement}");
        }
        other => panic!("expected a statement error, got {other:?}"),
    }
    assert!(
        !pools.user_exists(&spec, &name).await.expect("exists"),
        "transaction not rolled back"
    );

    // PostgreSQL echoes the bad value: scrubbed.
    let echo = Statements::parse(
        DbKind::Postgres,
        "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'; SELECT '{{password}}'::int",
    )
    .expect("template");
    let e = pools
        .create_user(&spec, &echo, &vars)
        .await
        .expect_err("bad cast");
    assert!(matches!(e, DbError::Statement { index: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("[REDACTED]"), "{e}");
    assert_clean(&e, &[&pw]);
    assert!(!pools.user_exists(&spec, &name).await.expect("exists"));

    pools
        .dry_run(
            &spec,
            &Statements::default_creation(DbKind::Postgres),
            None,
            &vars,
        )
        .await
        .expect("dry run");
    assert!(!pools.user_exists(&spec, &name).await.expect("exists"));
}

#[tokio::test]
async fn pg_connection_errors_and_privileges() {
    let Some(spec) = pg_spec() else { return };
    let pools = DbPools::new();
    let trust = pg_trusts_loopback(&spec, &pools).await;

    let port = closed_port();
    let e = pools
        .check_admin(&DbConnSpec {
            port,
            ..spec.clone()
        })
        .await
        .expect_err("closed port");
    assert!(matches!(e, DbError::Unreachable(_)), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");

    let bad_pw = "definitely-Wrong-pw-42";
    if !trust {
        let e = pools
            .check_admin(&with_user(&spec, &spec.user, bad_pw))
            .await
            .expect_err("wrong admin password");
        assert!(matches!(e, DbError::AuthFailed(_)), "{e:?}");
        assert_clean(&e, &[bad_pw]);
    }

    // A role that may not log in is refused whatever the authentication.
    let sfx = rand_hex(4);
    let nologin = format!("nl_{sfx}");
    admin_pg(
        &spec,
        &format!("CREATE ROLE {nologin} NOLOGIN PASSWORD 'x-password-1'"),
    )
    .await;
    let e = pools
        .login_check(&spec, &nologin, bad_pw)
        .await
        .expect_err("nologin");
    assert!(matches!(e, DbError::AuthFailed(_)), "{e:?}");
    assert_clean(&e, &[bad_pw]);
    admin_pg(&spec, &format!("DROP ROLE {nologin}")).await;

    // Not an administrator.
    let np = format!("np_{sfx}");
    let pw1 = hostile_password();
    let vars = Vars {
        name: &np,
        password: &pw1,
        expiration: EXPIRY,
    };
    let plain = Statements::parse(
        DbKind::Postgres,
        "CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'",
    )
    .expect("template");
    pools
        .create_user(&spec, &plain, &vars)
        .await
        .expect("create");
    let as_np = with_user(&spec, &np, &pw1);
    let e = pools.check_admin(&as_np).await.expect_err("not an admin");
    assert!(matches!(e, DbError::Privilege(_)), "{e:?}");
    assert!(e.to_string().contains("CREATEROLE"), "{e}");

    // Passwords: set by the admin, then by the role itself.
    let pw2 = hostile_password();
    pools
        .set_password(&spec, &np, &pw2)
        .await
        .expect("set password");
    pools
        .login_check(&spec, &np, &pw2)
        .await
        .expect("new password");
    if !trust {
        let e = pools
            .login_check(&spec, &np, &pw1)
            .await
            .expect_err("old password");
        assert!(matches!(e, DbError::AuthFailed(_)), "{e:?}");
    }
    let pw3 = hostile_password();
    pools
        .set_own_password(&with_user(&spec, &np, &pw2), &pw3)
        .await
        .expect("own password");
    pools
        .login_check(&spec, &np, &pw3)
        .await
        .expect("newest password");
    if !trust {
        let e = pools
            .login_check(&spec, &np, &pw2)
            .await
            .expect_err("previous password");
        assert!(matches!(e, DbError::AuthFailed(_)), "{e:?}");
    }

    pools.revoke_user(&spec, &np, None).await.expect("revoke");
    assert!(!pools.user_exists(&spec, &np).await.expect("exists"));
}
