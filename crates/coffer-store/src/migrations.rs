//! Embedded schema migrations, one list per backend.
//!
//! Files follow the sqlx CLI layout (`migrations/<backend>/<version>_<description>.sql`)
//! but are embedded with `include_str!`: `sqlx::migrate!` needs sqlx's
//! `macros` feature, which the workspace does not enable. To add a
//! migration, add the file for *both* backends and a line to each list.

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// `(version, description, sql)`
type Embedded = (i64, &'static str, &'static str);

const SQLITE: &[Embedded] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "uid_tokens",
        include_str!("../migrations/sqlite/0002_uid_tokens.sql"),
    ),
    (
        3,
        "pipeline",
        include_str!("../migrations/sqlite/0003_pipeline.sql"),
    ),
    (
        4,
        "producers",
        include_str!("../migrations/sqlite/0004_producers.sql"),
    ),
    (
        5,
        "certificates",
        include_str!("../migrations/sqlite/0005_certificates.sql"),
    ),
    (
        6,
        "audit_retention",
        include_str!("../migrations/sqlite/0006_audit_retention.sql"),
    ),
    (
        7,
        "item_deletion",
        include_str!("../migrations/sqlite/0007_item_deletion.sql"),
    ),
    (
        8,
        "login_nonces",
        include_str!("../migrations/sqlite/0008_login_nonces.sql"),
    ),
];

const POSTGRES: &[Embedded] = &[
    (
        1,
        "init",
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "uid_tokens",
        include_str!("../migrations/postgres/0002_uid_tokens.sql"),
    ),
    (
        3,
        "pipeline",
        include_str!("../migrations/postgres/0003_pipeline.sql"),
    ),
    (
        4,
        "producers",
        include_str!("../migrations/postgres/0004_producers.sql"),
    ),
    (
        5,
        "certificates",
        include_str!("../migrations/postgres/0005_certificates.sql"),
    ),
    (
        6,
        "audit_retention",
        include_str!("../migrations/postgres/0006_audit_retention.sql"),
    ),
    (
        7,
        "item_deletion",
        include_str!("../migrations/postgres/0007_item_deletion.sql"),
    ),
    (
        8,
        "login_nonces",
        include_str!("../migrations/postgres/0008_login_nonces.sql"),
    ),
];

pub(crate) fn sqlite() -> Migrator {
    migrator(SQLITE)
}

pub(crate) fn postgres() -> Migrator {
    migrator(POSTGRES)
}

/// The migrations up to `version` only: a database as an older Coffer
/// left it (upgrade tests).
#[cfg(any(test, feature = "conformance"))]
pub(crate) fn up_to(postgres: bool, version: i64) -> Migrator {
    let list = if postgres { POSTGRES } else { SQLITE };
    let n = list.iter().take_while(|m| m.0 <= version).count();
    migrator(&list[..n])
}

fn migrator(list: &[Embedded]) -> Migrator {
    Migrator::with_migrations(
        list.iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}
