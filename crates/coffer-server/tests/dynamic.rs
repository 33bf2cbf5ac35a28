//! Targets, dynamic secrets, leases and rotated secrets against real
//! MariaDB/MySQL (`COFFER_TEST_MYSQL_URL`) and PostgreSQL
//! (`COFFER_TEST_POSTGRES_URL`) servers, through the real router
//! (`scripts/test.sh` provides both; without them these tests say so and
//! pass). The reaper is driven by `leases::reap_once` instead of waiting
//! for its loop.
#![allow(clippy::expect_used)]

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use common::Harness;
use serde_json::{Value, json};
use sqlx::Connection;

struct Db {
    host: String,
    port: u16,
    user: String,
    password: String,
    db: String,
}

fn db_from_env(var: &str) -> Option<Db> {
    let url = std::env::var(var).ok()?;
    let (_, rest) = url.split_once("://")?;
    let (creds, hostpart) = rest.rsplit_once('@')?;
    let (user, password) = creds.split_once(':').unwrap_or((creds, ""));
    let (hostport, db) = hostpart.split_once('/').unwrap_or((hostpart, ""));
    let (host, port) = hostport.rsplit_once(':')?;
    Some(Db {
        host: host.to_owned(),
        port: port.parse().ok()?,
        user: user.to_owned(),
        password: password.to_owned(),
        db: db.split('?').next().unwrap_or("").to_owned(),
    })
}

fn mysql() -> Option<Db> {
    let db = db_from_env("COFFER_TEST_MYSQL_URL");
    if db.is_none() {
        eprintln!("COFFER_TEST_MYSQL_URL is not set: skipping (scripts/test.sh sets it)");
    }
    db
}

fn postgres() -> Option<Db> {
    let db = db_from_env("COFFER_TEST_POSTGRES_URL");
    if db.is_none() {
        eprintln!("COFFER_TEST_POSTGRES_URL is not set: skipping (scripts/test.sh sets it)");
    }
    db
}

/// A unique suffix for names in one test run.
fn uniq() -> String {
    format!(
        "{:x}",
        std::process::id() ^ (common::now() as u32).rotate_left(7)
    )
}

async fn my_admin(db: &Db) -> sqlx::MySqlConnection {
    let mut opts = sqlx::mysql::MySqlConnectOptions::new()
        .host(&db.host)
        .port(db.port)
        .username(&db.user);
    // sqlx sends a scrambled empty password otherwise, which MariaDB refuses.
    if !db.password.is_empty() {
        opts = opts.password(&db.password);
    }
    sqlx::MySqlConnection::connect_with(&opts)
        .await
        .expect("admin connection")
}

async fn my_login(
    db: &Db,
    user: &str,
    password: &str,
    database: &str,
) -> Result<sqlx::MySqlConnection, sqlx::Error> {
    let opts = sqlx::mysql::MySqlConnectOptions::new()
        .host(&db.host)
        .port(db.port)
        .username(user)
        .password(password)
        .database(database);
    sqlx::MySqlConnection::connect_with(&opts).await
}

async fn my_exec(c: &mut sqlx::MySqlConnection, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn my_user_exists(c: &mut sqlx::MySqlConnection, user: &str) -> bool {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM mysql.user WHERE user = ?")
        .bind(user)
        .fetch_one(&mut *c)
        .await
        .unwrap();
    n > 0
}

fn target_body(db: &Db, name: &str, db_type: &str) -> Value {
    json!({
        "name": name, "db-type": db_type, "host": db.host, "port": db.port.to_string(),
        "user-name": db.user, "pwd": db.password, "db-name": db.db,
    })
}

async fn reap(h: &Harness) -> usize {
    coffer_server::leases::reap_once(&h.state)
        .await
        .expect("reaper pass")
}

#[tokio::test]
async fn targets_check_the_connection_and_guard_their_password() {
    let Some(db) = mysql() else { return };
    let h = Harness::new().await;
    let u = uniq();
    // Unreachable: a closed loopback port.
    let mut bad = target_body(&db, "/t/closed", "mysql");
    bad["port"] = json!("1");
    bad["token"] = json!(h.admin);
    h.fails_with(
        "target-create-db",
        bad,
        StatusCode::BAD_REQUEST,
        "cannot reach",
    )
    .await;
    // A user without the right to create users, and a wrong password.
    let mut admin = my_admin(&db).await;
    let weak = format!("weak_{u}");
    my_exec(
        &mut admin,
        &format!("CREATE USER '{weak}'@'%' IDENTIFIED BY 'Weak-pass-1'"),
    )
    .await;
    let mut body = target_body(&db, "/t/weak", "mysql");
    body["user-name"] = json!(weak);
    body["pwd"] = json!("Weak-pass-1");
    body["token"] = json!(h.admin);
    let msg = h
        .fails("target-create-db", body.clone(), StatusCode::BAD_REQUEST)
        .await;
    assert!(
        msg.to_ascii_lowercase().contains("privilege") || msg.contains("CREATE USER"),
        "{msg}"
    );
    body["pwd"] = json!("wrong-password");
    let msg = h
        .fails("target-create-db", body, StatusCode::BAD_REQUEST)
        .await;
    assert!(
        !msg.contains("wrong-password"),
        "the password leaked: {msg}"
    );
    assert!(msg.contains(&weak), "{msg}");
    my_exec(&mut admin, &format!("DROP USER '{weak}'@'%'")).await;
    // A good one; nothing of the failures was stored.
    let listed = h.admin_ok("target-list", json!({})).await;
    assert_eq!(listed["targets"], json!([]));
    let mut good = target_body(&db, "/t/maria", "mariadb");
    good["token"] = json!(h.admin);
    h.ok("target-create-db", good).await;
    // The password only to a caller who may read the target.
    let (_, lister) = h
        .identity(
            "/lister",
            "lister",
            "none",
            &[("target-rule", "/t/*", &["list"])],
        )
        .await;
    let d = h
        .ok(
            "target-get-details",
            json!({"token": lister, "name": "/t/maria"}),
        )
        .await;
    assert!(
        d["value"]["db_target_details"].get("db_pwd").is_none(),
        "{d}"
    );
    assert_eq!(
        d["value"]["db_target_details"]["db_host_name"],
        json!(db.host)
    );
    let d = h
        .admin_ok("target-get-details", json!({"name": "/t/maria"}))
        .await;
    assert_eq!(
        d["value"]["db_target_details"]["db_pwd"],
        json!(db.password)
    );
    h.fails(
        "target-get",
        json!({"token": lister, "name": "/other"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    // Refused options, and deletion while in use.
    let mut unsupported = target_body(&db, "/t/x", "mysql");
    unsupported["token"] = json!(h.admin);
    unsupported["enable-mtls"] = json!(true);
    h.fails_with(
        "target-create-db",
        unsupported,
        StatusCode::BAD_REQUEST,
        "enable-mtls",
    )
    .await;
    h.admin_ok(
        "dynamic-secret-create-mysql",
        json!({"name": "/ds/uses", "target-name": "/t/maria", "mysql-host": "127.0.0.1", "mysql-port": "3306"}),
    )
    .await;
    h.fails_with(
        "target-delete",
        json!({"token": h.admin, "name": "/t/maria"}),
        StatusCode::CONFLICT,
        "/ds/uses",
    )
    .await;
    // A dynamic secret is deleted at once (never pending deletion): an
    // explicit other delay is refused; the SDK default 7 deletes now.
    h.fails_with(
        "delete-item",
        json!({"token": h.admin, "name": "/ds/uses", "delete-in-days": 30}),
        StatusCode::BAD_REQUEST,
        "deleted at once",
    )
    .await;
    h.admin_ok(
        "delete-item",
        json!({"name": "/ds/uses", "delete-in-days": 7, "delete-immediately": false}),
    )
    .await;
    h.admin_ok("target-delete", json!({"name": "/t/maria"}))
        .await;
    h.fails(
        "target-get",
        json!({"token": h.admin, "name": "/t/maria"}),
        StatusCode::NOT_FOUND,
    )
    .await;
}

#[tokio::test]
async fn mysql_credentials_log_in_hold_exactly_their_grants_and_die_at_expiry() {
    let Some(db) = mysql() else { return };
    let h = Harness::new().await;
    let u = uniq();
    let table = format!("dyn_{u}");
    let mut admin = my_admin(&db).await;
    my_exec(
        &mut admin,
        &format!("CREATE TABLE IF NOT EXISTS {}.{table} (v INT)", db.db),
    )
    .await;
    let mut t = target_body(&db, "/t/m", "mysql");
    t["token"] = json!(h.admin);
    h.ok("target-create-db", t).await;
    let statements = format!(
        "CREATE USER '{{{{name}}}}'@'%' IDENTIFIED BY '{{{{password}}}}'; GRANT SELECT ON {}.{table} TO '{{{{name}}}}'@'%';",
        db.db
    );
    h.admin_ok(
        "dynamic-secret-create-mysql",
        json!({"name": "/ds/m", "target-name": "/t/m", "mysql-screation-statements": statements,
               "user-ttl": "3s", "mysql-host": "127.0.0.1", "mysql-port": "3306"}),
    )
    .await;
    // A reader that may only read the item.
    let (_, reader) = h
        .identity(
            "/reader",
            "reader",
            "none",
            &[("item-rule", "/ds/*", &["read"])],
        )
        .await;
    let v = h
        .ok(
            "get-dynamic-secret-value",
            json!({"token": reader, "name": "/ds/m"}),
        )
        .await;
    for k in ["id", "user", "password", "ttl_in_minutes"] {
        assert!(v[k].is_string(), "{k} is not a string: {v}");
    }
    let user = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["user"], v["id"]);
    let password = v["password"].as_str().unwrap().to_owned();
    let mut session = my_login(&db, &user, &password, &db.db)
        .await
        .expect("the credentials log in");
    my_exec(&mut session, &format!("SELECT * FROM {table}")).await;
    let insert = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "INSERT INTO {table} VALUES (1)"
    )))
    .execute(&mut session)
    .await;
    assert!(insert.is_err(), "INSERT was not granted");
    // Its lease is listed; at expiry the reaper drops the user and ends the session.
    let leases = h
        .admin_ok("dynamic-secret-tmp-creds-get", json!({"name": "/ds/m"}))
        .await;
    assert_eq!(leases.as_array().unwrap().len(), 1, "{leases}");
    assert_eq!(leases[0]["id"], json!(user));
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert!(reap(&h).await >= 1);
    assert!(
        !my_user_exists(&mut admin, &user).await,
        "{user} survived its lease"
    );
    assert!(
        sqlx::raw_sql("SELECT 1")
            .execute(&mut session)
            .await
            .is_err(),
        "the session outlived the user"
    );
    assert!(my_login(&db, &user, &password, &db.db).await.is_err());
    let all = h.admin_ok("lease-list", json!({"all": true})).await;
    assert_eq!(all["leases"][0]["state"], json!("revoked"), "{all}");
    let audit = h
        .audit_where(json!({"operation": "lease-expire", "limit": 100}))
        .await;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert!(audit[0]["object"].as_str().unwrap().ends_with(&user));
    // Nothing secret in the audit log.
    let everything = serde_json::to_string(&h.audit().await).unwrap();
    assert!(!everything.contains(&password));
    my_exec(&mut admin, &format!("DROP TABLE {}.{table}", db.db)).await;
}

#[tokio::test]
async fn hostile_templates_names_and_options_are_refused_and_change_nothing() {
    let Some(db) = mysql() else { return };
    let h = Harness::new().await;
    let mut t = target_body(&db, "/t/h", "mysql");
    t["token"] = json!(h.admin);
    h.ok("target-create-db", t).await;
    let base = json!({"token": h.admin, "name": "/ds/h", "target-name": "/t/h"});
    let cases: &[(&str, Value)] = &[
        (
            "mysql-screation-statements",
            json!("CREATE USER '{{nope}}'@'%'"),
        ),
        (
            "mysql-screation-statements",
            json!("CREATE USER '{{name}}@'%' IDENTIFIED BY '{{password}}'"),
        ),
        (
            "mysql-screation-statements",
            json!("CREATE USER '{{name}}'@'%'; -- {{password}}"),
        ),
        ("mysql-revocation-statements", json!("DROP USER \"{{name}}")),
        ("custom-username-template", json!("x'{{random}}")),
        ("custom-username-template", json!("no-random")),
        ("user-ttl", json!("forever")),
        ("user-ttl", json!("0s")),
        ("password-length", json!("4")),
        ("max-leases", json!(0)),
        ("secure-access-enable", json!("true")),
        ("mysql-username", json!("root")),
    ];
    for (key, value) in cases {
        let mut b = base.clone();
        b[*key] = value.clone();
        let (s, v) = h.call("dynamic-secret-create-mysql", b).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{key}={value}: {v}");
    }
    h.fails(
        "describe-item",
        json!({"token": h.admin, "name": "/ds/h"}),
        StatusCode::NOT_FOUND,
    )
    .await;
    // A statement that fails at the dry run names itself.
    let mut b = base.clone();
    b["mysql-screation-statements"] = json!(
        "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'; GRANT NOPE ON *.* TO '{{name}}'@'%'"
    );
    let msg = h
        .fails("dynamic-secret-create-mysql", b, StatusCode::BAD_REQUEST)
        .await;
    assert!(msg.contains("GRANT NOPE"), "{msg}");
    // A target that does not exist, and a caller without read on it.
    let mut b = base.clone();
    b["target-name"] = json!("/t/none");
    h.fails("dynamic-secret-create-mysql", b, StatusCode::NOT_FOUND)
        .await;
    let (_, maker) = h
        .identity(
            "/maker",
            "maker",
            "none",
            &[("item-rule", "/ds/*", &["create"])],
        )
        .await;
    let mut b = base.clone();
    b["token"] = json!(maker);
    h.fails("dynamic-secret-create-mysql", b, StatusCode::FORBIDDEN)
        .await;
    // get-secret-value never hands out a producer's sealed settings.
    h.admin_ok("dynamic-secret-create-mysql", base.clone())
        .await;
    h.fails_with(
        "get-secret-value",
        json!({"token": h.admin, "names": ["/ds/h"]}),
        StatusCode::BAD_REQUEST,
        "get-dynamic-secret-value",
    )
    .await;
    h.fails_with(
        "get-dynamic-secret-value",
        json!({"token": h.admin, "name": "/ds/h", "args": ["x=1"]}),
        StatusCode::BAD_REQUEST,
        "args",
    )
    .await;
}

#[tokio::test]
async fn lease_operations_check_ownership_caps_and_token_ties() {
    let Some(db) = mysql() else { return };
    let h = Harness::new().await;
    let mut admin = my_admin(&db).await;
    let mut t = target_body(&db, "/t/l", "mysql");
    t["token"] = json!(h.admin);
    h.ok("target-create-db", t).await;
    h.admin_ok(
        "dynamic-secret-create-mysql",
        json!({"name": "/ds/l", "target-name": "/t/l", "user-ttl": "10m", "max-leases": 3, "skip-dry-run": true}),
    )
    .await;
    let (_, a) = h
        .identity("/a", "ra", "none", &[("item-rule", "/ds/*", &["read"])])
        .await;
    let (_, b) = h
        .identity("/b", "rb", "none", &[("item-rule", "/ds/*", &["read"])])
        .await;
    let la = h
        .ok(
            "get-dynamic-secret-value",
            json!({"token": a, "name": "/ds/l"}),
        )
        .await["id"]
        .clone();
    let lb = h
        .ok(
            "get-dynamic-secret-value",
            json!({"token": b, "name": "/ds/l"}),
        )
        .await["id"]
        .clone();
    h.ok(
        "get-dynamic-secret-value",
        json!({"token": a, "name": "/ds/l"}),
    )
    .await;
    // The cap.
    h.fails_with(
        "get-dynamic-secret-value",
        json!({"token": a, "name": "/ds/l"}),
        StatusCode::CONFLICT,
        "max-leases",
    )
    .await;
    // b may not revoke or extend a's credentials; a may its own.
    h.fails(
        "dynamic-secret-tmp-creds-delete",
        json!({"token": b, "name": "/ds/l", "tmp-creds-id": la}),
        StatusCode::FORBIDDEN,
    )
    .await;
    h.fails(
        "dynamic-secret-tmp-creds-update",
        json!({"token": b, "name": "/ds/l", "tmp-creds-id": la, "new-ttl-min": 5, "host": "x"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    h.fails(
        "dynamic-secret-tmp-creds-delete",
        json!({"token": a, "name": "/ds/l", "revoke-all": true}),
        StatusCode::FORBIDDEN,
    )
    .await;
    h.fails_with(
        "dynamic-secret-tmp-creds-update",
        json!({"token": a, "name": "/ds/l", "tmp-creds-id": la, "new-ttl-min": 11, "host": "x"}),
        StatusCode::BAD_REQUEST,
        "user-ttl",
    )
    .await;
    h.ok(
        "dynamic-secret-tmp-creds-update",
        json!({"token": a, "name": "/ds/l", "tmp-creds-id": la, "new-ttl-min": 1, "host": "x"}),
    )
    .await;
    let r = h
        .ok(
            "dynamic-secret-tmp-creds-delete",
            json!({"token": a, "name": "/ds/l", "tmp-creds-id": la}),
        )
        .await;
    assert_eq!(r["revoked"], json!([la]));
    assert!(!my_user_exists(&mut admin, la.as_str().unwrap()).await);
    let denied = h
        .audit_where(json!({"outcome": "denied", "limit": 100}))
        .await;
    assert!(
        denied
            .iter()
            .any(|r| r["operation"] == "dynamic-secret-tmp-creds-delete"),
        "{denied:?}"
    );
    // Deleting the item revokes the rest.
    h.admin_ok("dynamic-secret-delete", json!({"name": "/ds/l"}))
        .await;
    assert!(!my_user_exists(&mut admin, lb.as_str().unwrap()).await);
    let live = h.admin_ok("lease-list", json!({})).await;
    assert_eq!(live["leases"], json!([]), "{live}");

    // Credentials tied to the token die with it.
    h.admin_ok(
        "dynamic-secret-create-mysql",
        json!({"name": "/ds/tied", "target-name": "/t/l", "user-ttl": "10m", "skip-dry-run": true}),
    )
    .await;
    let created = h
        .admin_ok(
            "create-auth-method",
            json!({"name": "/job", "lease-tied-to-token": true}),
        )
        .await;
    h.admin_ok("create-role", json!({"name": "job"})).await;
    h.admin_ok(
        "set-role-rule",
        json!({"role-name": "job", "path": "/ds/*", "capability": ["read"]}),
    )
    .await;
    h.admin_ok(
        "assoc-role-am",
        json!({"role-name": "job", "am-name": "/job"}),
    )
    .await;
    let job = h
        .login_key(
            created["access_id"].as_str().unwrap(),
            created["access_key"].as_str().unwrap(),
        )
        .await;
    let tied = h
        .ok(
            "get-dynamic-secret-value",
            json!({"token": job, "name": "/ds/tied"}),
        )
        .await["id"]
        .clone();
    let untied = h
        .admin_ok("get-dynamic-secret-value", json!({"name": "/ds/tied"}))
        .await["id"]
        .clone();
    assert_eq!(reap(&h).await, 0, "nothing is due yet");
    h.ok("revoke-token", json!({"token": job})).await;
    assert_eq!(reap(&h).await, 1);
    assert!(!my_user_exists(&mut admin, tied.as_str().unwrap()).await);
    assert!(my_user_exists(&mut admin, untied.as_str().unwrap()).await);
    h.admin_ok("delete-item", json!({"name": "/ds/tied"})).await;
    assert!(!my_user_exists(&mut admin, untied.as_str().unwrap()).await);
}

#[tokio::test]
async fn rotation_changes_the_password_and_survives_interruptions() {
    let Some(db) = mysql() else { return };
    let h = Harness::new().await;
    let u = uniq();
    let user = format!("rot_{u}");
    let mut admin = my_admin(&db).await;
    my_exec(
        &mut admin,
        &format!("CREATE USER '{user}'@'%' IDENTIFIED BY 'First-pass-1'"),
    )
    .await;
    let mut t = target_body(&db, "/t/r", "mysql");
    t["token"] = json!(h.admin);
    h.ok("target-create-db", t).await;
    // The given password must log in.
    h.fails(
        "rotated-secret-create-mysql",
        json!({"token": h.admin, "name": "/rot/a", "target-name": "/t/r", "rotator-type": "password",
               "rotated-username": user, "rotated-password": "wrong", "authentication-credentials": "use-target-creds"}),
        StatusCode::BAD_REQUEST,
    )
    .await;
    h.admin_ok(
        "rotated-secret-create-mysql",
        json!({"name": "/rot/a", "target-name": "/t/r", "rotator-type": "password", "rotated-username": user,
               "rotated-password": "First-pass-1", "authentication-credentials": "use-target-creds"}),
    )
    .await;
    let d = h.admin_ok("describe-item", json!({"name": "/rot/a"})).await;
    assert_eq!(d["item_type"], json!("ROTATED_SECRET"));
    assert_eq!(
        d["item_general_info"]["rotated_secret_details"]["rotator_status"],
        json!("RotationInitialStatus")
    );
    // Rotate: new value works, old refused, version 1 kept.
    h.admin_ok("gateway-rotate-secret", json!({"name": "/rot/a"}))
        .await;
    let v = h
        .admin_ok("get-rotated-secret-value", json!({"names": "/rot/a"}))
        .await;
    let p2 = v["value"]["password"].as_str().unwrap().to_owned();
    assert_eq!(v["value"]["username"], json!(user));
    assert!(my_login(&db, &user, &p2, "").await.is_ok());
    assert!(my_login(&db, &user, "First-pass-1", "").await.is_err());
    let v1 = h
        .admin_ok(
            "rotated-secret-get-value",
            json!({"name": "/rot/a", "version": 1}),
        )
        .await;
    assert_eq!(v1["value"]["password"], json!("First-pass-1"));

    // Interrupted after the database changed (a login with the new password
    // fails, e.g. the account is locked): the new value stays pending, the
    // stored current value is untouched...
    my_exec(&mut admin, &format!("ALTER USER '{user}'@'%' ACCOUNT LOCK")).await;
    h.fails(
        "gateway-rotate-secret",
        json!({"token": h.admin, "name": "/rot/a"}),
        StatusCode::BAD_GATEWAY,
    )
    .await;
    let still = h
        .admin_ok("get-rotated-secret-value", json!({"names": "/rot/a"}))
        .await;
    assert_eq!(still["value"]["password"], json!(p2));
    let d = h.admin_ok("describe-item", json!({"name": "/rot/a"})).await;
    let pending = d["item_general_info"]["rotated_secret_details"]["pending_version"]
        .as_i64()
        .unwrap();
    h.fails(
        "get-rotated-secret-value",
        json!({"token": h.admin, "names": "/rot/a", "version": pending}),
        StatusCode::NOT_FOUND,
    )
    .await;
    // ...and the next pass keeps the one that logs in: the new one.
    my_exec(
        &mut admin,
        &format!("ALTER USER '{user}'@'%' ACCOUNT UNLOCK"),
    )
    .await;
    h.admin_ok("gateway-rotate-secret", json!({"name": "/rot/a"}))
        .await;
    let v3 = h
        .admin_ok("get-rotated-secret-value", json!({"names": "/rot/a"}))
        .await;
    let p3 = v3["value"]["password"].as_str().unwrap().to_owned();
    assert_ne!(p3, p2);
    assert_eq!(v3["version"].as_i64(), Some(pending));
    assert!(my_login(&db, &user, &p3, "").await.is_ok());

    // Interrupted before the database changed (simulated: the password is
    // set back behind Coffer's back while a rotation is pending): the next
    // pass rolls back to the value that logs in.
    my_exec(&mut admin, &format!("ALTER USER '{user}'@'%' ACCOUNT LOCK")).await;
    h.fails(
        "gateway-rotate-secret",
        json!({"token": h.admin, "name": "/rot/a"}),
        StatusCode::BAD_GATEWAY,
    )
    .await;
    my_exec(
        &mut admin,
        &format!("ALTER USER '{user}'@'%' IDENTIFIED BY '{p3}' ACCOUNT UNLOCK"),
    )
    .await;
    h.admin_ok("gateway-rotate-secret", json!({"name": "/rot/a"}))
        .await;
    let v4 = h
        .admin_ok("get-rotated-secret-value", json!({"names": "/rot/a"}))
        .await;
    assert_eq!(v4["value"]["password"], json!(p3));
    assert!(my_login(&db, &user, &p3, "").await.is_ok());
    let d = h.admin_ok("describe-item", json!({"name": "/rot/a"})).await;
    assert_eq!(
        d["item_general_info"]["rotated_secret_details"]["rotator_status"],
        json!("RotationFailed")
    );
    assert!(
        d["item_general_info"]["rotated_secret_details"]
            .get("pending_version")
            .is_none(),
        "{d}"
    );

    // A rotation whose ALTER fails keeps the old value.
    my_exec(&mut admin, &format!("DROP USER '{user}'@'%'")).await;
    h.fails(
        "gateway-rotate-secret",
        json!({"token": h.admin, "name": "/rot/a"}),
        StatusCode::BAD_GATEWAY,
    )
    .await;
    let v5 = h
        .admin_ok("get-rotated-secret-value", json!({"names": "/rot/a"}))
        .await;
    assert_eq!(v5["value"]["password"], json!(p3));
    // Rotating needs update; reading needs read.
    let (_, reader) = h
        .identity("/rr", "rr", "none", &[("item-rule", "/rot/*", &["read"])])
        .await;
    h.ok(
        "get-rotated-secret-value",
        json!({"token": reader, "names": "/rot/a"}),
    )
    .await;
    h.fails(
        "gateway-rotate-secret",
        json!({"token": reader, "name": "/rot/a"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    // Nothing secret in the audit log.
    let everything = serde_json::to_string(&h.audit().await).unwrap();
    for p in [&p2, &p3] {
        assert!(!everything.contains(p.as_str()));
    }
}

#[tokio::test]
async fn a_rotated_target_keeps_serving_its_dynamic_secrets() {
    let Some(db) = mysql() else { return };
    let h = Harness::new().await;
    let u = uniq();
    let tadmin = format!("tadm_{u}");
    let mut admin = my_admin(&db).await;
    my_exec(
        &mut admin,
        &format!("CREATE USER '{tadmin}'@'%' IDENTIFIED BY 'Admin-pass-1'; GRANT ALL ON *.* TO '{tadmin}'@'%' WITH GRANT OPTION"),
    )
    .await;
    let mut t = target_body(&db, "/t/rt", "mysql");
    t["user-name"] = json!(tadmin);
    t["pwd"] = json!("Admin-pass-1");
    t["token"] = json!(h.admin);
    h.ok("target-create-db", t).await;
    h.admin_ok(
        "dynamic-secret-create-mysql",
        json!({"name": "/ds/rt", "target-name": "/t/rt", "user-ttl": "1m"}),
    )
    .await;
    h.admin_ok(
        "rotated-secret-create-mysql",
        json!({"name": "/rot/t", "target-name": "/t/rt", "rotator-type": "target"}),
    )
    .await;
    h.admin_ok("gateway-rotate-secret", json!({"name": "/rot/t"}))
        .await;
    assert!(my_login(&db, &tadmin, "Admin-pass-1", "").await.is_err());
    let v = h
        .admin_ok("get-dynamic-secret-value", json!({"name": "/ds/rt"}))
        .await;
    assert!(my_user_exists(&mut admin, v["id"].as_str().unwrap()).await);
    let details = h
        .admin_ok("target-get-details", json!({"name": "/t/rt"}))
        .await;
    let current = h
        .admin_ok("get-rotated-secret-value", json!({"names": "/rot/t"}))
        .await;
    assert_eq!(
        details["value"]["db_target_details"]["db_pwd"],
        current["value"]["password"]
    );
    // A new pwd on a rotated target is refused; deleting the rotated
    // secret hands the current password back to the target.
    h.fails_with(
        "target-update-db",
        json!({"token": h.admin, "name": "/t/rt", "pwd": "x"}),
        StatusCode::CONFLICT,
        "/rot/t",
    )
    .await;
    h.admin_ok("rotated-secret-delete", json!({"name": "/rot/t"}))
        .await;
    h.admin_ok(
        "dynamic-secret-tmp-creds-delete",
        json!({"name": "/ds/rt", "revoke-all": true}),
    )
    .await;
    assert!(!my_user_exists(&mut admin, v["id"].as_str().unwrap()).await);
    h.admin_ok("delete-item", json!({"name": "/ds/rt"})).await;
    h.admin_ok("target-delete", json!({"name": "/t/rt"})).await;
    my_exec(&mut admin, &format!("DROP USER '{tadmin}'@'%'")).await;
}

#[tokio::test]
async fn postgres_credentials_are_roles_that_end_their_sessions_at_expiry() {
    let Some(db) = postgres() else { return };
    let h = Harness::new().await;
    let u = uniq();
    let opts = sqlx::postgres::PgConnectOptions::new()
        .host(&db.host)
        .port(db.port)
        .username(&db.user)
        .password(&db.password)
        .database(if db.db.is_empty() { "postgres" } else { &db.db });
    let mut admin = sqlx::PgConnection::connect_with(&opts).await.unwrap();
    let table = format!("dyn_{u}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE TABLE {table} (v INT)")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut t = target_body(&db, "/t/pg", "postgres");
    t["token"] = json!(h.admin);
    h.ok("target-create-db", t).await;
    let statements = format!(
        "CREATE ROLE \"{{{{name}}}}\" WITH LOGIN PASSWORD '{{{{password}}}}' VALID UNTIL '{{{{expiration}}}}'; GRANT SELECT ON {table} TO \"{{{{name}}}}\";"
    );
    h.admin_ok(
        "dynamic-secret-create-postgresql",
        json!({"name": "/ds/pg", "target-name": "/t/pg", "creation-statements": statements, "user-ttl": "3s",
               "postgresql-host": "127.0.0.1", "postgresql-port": "5432"}),
    )
    .await;
    let v = h
        .admin_ok("dynamic-secret-get-value", json!({"name": "/ds/pg"}))
        .await;
    let user = v["id"].as_str().unwrap().to_owned();
    let mut session = sqlx::PgConnection::connect_with(
        &opts
            .clone()
            .username(&user)
            .password(v["password"].as_str().unwrap()),
    )
    .await
    .expect("the credentials log in");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
        .execute(&mut session)
        .await
        .unwrap();
    assert!(
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} VALUES (1)"
        )))
        .execute(&mut session)
        .await
        .is_err(),
        "INSERT was not granted"
    );
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert!(reap(&h).await >= 1);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_roles WHERE rolname = $1")
        .bind(&user)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert_eq!(n, 0, "{user} survived its lease");
    assert!(
        sqlx::raw_sql("SELECT 1")
            .execute(&mut session)
            .await
            .is_err(),
        "the session outlived the role"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE {table}")))
        .execute(&mut admin)
        .await
        .unwrap();
}

#[tokio::test]
async fn stored_passwords_stay_with_their_server_and_their_owners() {
    let Some(db) = mysql() else { return };
    let h = Harness::new().await;
    let mut t = target_body(&db, "/t/s", "mysql");
    t["token"] = json!(h.admin);
    h.ok("target-create-db", t).await;
    // An inline dynamic secret: its admin password only to `update` holders.
    let mut inline = json!({"name": "/ds/inline", "mysql-host": db.host, "mysql-port": db.port.to_string(),
        "mysql-username": db.user, "user-ttl": "10m"});
    if !db.password.is_empty() {
        inline["mysql-password"] = json!(db.password);
    }
    h.admin_ok("dynamic-secret-create-mysql", inline).await;
    let (_, reader) = h
        .identity("/r", "r", "none", &[("item-rule", "/ds/*", &["read"])])
        .await;
    let d = h
        .ok(
            "dynamic-secret-get",
            json!({"token": reader, "name": "/ds/inline"}),
        )
        .await;
    assert!(d.get("db_pwd").is_none(), "{d}");
    // Moving the connection elsewhere needs the password again.
    h.fails_with(
        "dynamic-secret-update-mysql",
        json!({"token": h.admin, "name": "/ds/inline", "mysql-host": "localhost"}),
        StatusCode::BAD_REQUEST,
        "mysql-password is required",
    )
    .await;
    h.fails_with(
        "target-update-db",
        json!({"token": h.admin, "name": "/t/s", "host": "localhost"}),
        StatusCode::BAD_REQUEST,
        "pwd is required",
    )
    .await;
    // With live credentials the server cannot change (their revocation needs it).
    h.admin_ok(
        "dynamic-secret-create-mysql",
        json!({"name": "/ds/live", "target-name": "/t/s", "user-ttl": "10m", "skip-dry-run": true}),
    )
    .await;
    h.admin_ok("get-dynamic-secret-value", json!({"name": "/ds/live"}))
        .await;
    let mut moved =
        json!({"token": h.admin, "name": "/t/s", "host": "localhost", "pwd": db.password});
    if db.password.is_empty() {
        moved["pwd"] = json!("");
    }
    let (s, v) = h.call("target-update-db", moved).await;
    assert!(
        s == StatusCode::CONFLICT || s == StatusCode::BAD_REQUEST,
        "moving a target with live credentials: {s} {v}"
    );
    h.fails_with(
        "target-delete",
        json!({"token": h.admin, "name": "/t/s", "force-deletion": true}),
        StatusCode::CONFLICT,
        "live credentials",
    )
    .await;
    h.admin_ok("dynamic-secret-delete", json!({"name": "/ds/live"}))
        .await;
    // Taking over a target's password needs update on the target, and the
    // target's own user is rotated only as a target rotation.
    let (_, rotator) = h
        .identity(
            "/rot",
            "rot",
            "none",
            &[
                ("item-rule", "/rot/*", &["create"]),
                ("target-rule", "/t/*", &["read"]),
            ],
        )
        .await;
    h.fails(
        "rotated-secret-create-mysql",
        json!({"token": rotator, "name": "/rot/t", "target-name": "/t/s", "rotator-type": "target"}),
        StatusCode::FORBIDDEN,
    )
    .await;
    h.fails_with(
        "rotated-secret-create-mysql",
        json!({"token": rotator, "name": "/rot/p", "target-name": "/t/s", "rotator-type": "password",
               "rotated-username": db.user, "rotated-password": "x", "authentication-credentials": "use-target-creds"}),
        StatusCode::BAD_REQUEST,
        "rotator-type target",
    )
    .await;
}

#[tokio::test]
async fn an_items_own_statements_do_not_change_the_session_of_the_next() {
    let Some(db) = postgres() else { return };
    let h = Harness::new().await;
    let u = uniq();
    let opts = sqlx::postgres::PgConnectOptions::new()
        .host(&db.host)
        .port(db.port)
        .username(&db.user)
        .password(&db.password)
        .database(if db.db.is_empty() { "postgres" } else { &db.db });
    let mut admin = sqlx::PgConnection::connect_with(&opts).await.unwrap();
    let low = format!("low_{u}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE ROLE {low} NOLOGIN")))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut t = target_body(&db, "/t/sess", "postgres");
    t["token"] = json!(h.admin);
    h.ok("target-create-db", t).await;
    // A template that leaves its session as an unprivileged role.
    h.admin_ok(
        "dynamic-secret-create-postgresql",
        json!({"name": "/ds/setrole", "target-name": "/t/sess", "user-ttl": "1m", "skip-dry-run": true,
               "creation-statements": format!("CREATE ROLE \"{{{{name}}}}\" WITH LOGIN PASSWORD '{{{{password}}}}'; SET ROLE {low}")}),
    )
    .await;
    h.admin_ok(
        "dynamic-secret-create-postgresql",
        json!({"name": "/ds/plain", "target-name": "/t/sess", "user-ttl": "1m", "skip-dry-run": true}),
    )
    .await;
    for _ in 0..6 {
        h.admin_ok("get-dynamic-secret-value", json!({"name": "/ds/setrole"}))
            .await;
        // Would fail with "permission denied to create role" on a pooled
        // connection still running as the unprivileged role.
        h.admin_ok("get-dynamic-secret-value", json!({"name": "/ds/plain"}))
            .await;
    }
    // The reset keeps the connection usable for prepared statements too
    // (checking an admin runs some on the same pooled connections).
    h.admin_ok(
        "dynamic-secret-create-postgresql",
        json!({"name": "/ds/after", "target-name": "/t/sess", "user-ttl": "1m"}),
    )
    .await;
    for n in ["/ds/setrole", "/ds/plain", "/ds/after"] {
        h.admin_ok("dynamic-secret-delete", json!({"name": n}))
            .await;
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE {low}")))
        .execute(&mut admin)
        .await
        .unwrap();
}
