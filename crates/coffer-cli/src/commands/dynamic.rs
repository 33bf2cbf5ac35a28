//! Dynamic secrets (a database user per request) and their leases.

use anyhow::bail;
use coffer_client::ops::{
    DynamicSecretCommon, DynamicSecretCreateMysql, DynamicSecretCreatePostgresql,
    DynamicSecretDelete, DynamicSecretGet, DynamicSecretList, DynamicSecretMysql,
    DynamicSecretPostgresql, DynamicSecretTmpCredsDelete, DynamicSecretTmpCredsGet,
    DynamicSecretTmpCredsUpdate, DynamicSecretUpdateMysql, DynamicSecretUpdatePostgresql,
    GetDynamicSecretValue, LeaseList,
};
use coffer_client::{DynamicSecretDetails, LeaseInfo, ListProducersOutput, Operation, TmpCreds};
use secrecy::ExposeSecret;

use super::targets::{certificate, password};
use super::{date, respond};
use crate::args::{NameArgs, NoArgs};
use crate::db_args::{
    DynamicSecretCommand, DynamicSecretCommonArgs, DynamicSecretDb, DynamicSecretMysqlArgs,
    DynamicSecretPostgresqlArgs, DynamicSecretSubcommand, GetDynamicSecretValueArgs, LeaseCommand,
    LeaseListArgs, LeaseRevokeArgs, LeaseSubcommand, TmpCredsDeleteArgs, TmpCredsUpdateArgs,
};
use crate::output::{emit_json, fields, note, table};
use crate::session::Session;

pub(super) async fn run(c: DynamicSecretCommand) -> anyhow::Result<()> {
    match c.command {
        DynamicSecretSubcommand::Create(d) => match d.db {
            DynamicSecretDb::Mysql(a) => create_mysql(a).await,
            DynamicSecretDb::Postgresql(a) => create_postgresql(a).await,
        },
        DynamicSecretSubcommand::Update(d) => match d.db {
            DynamicSecretDb::Mysql(a) => update_mysql(a).await,
            DynamicSecretDb::Postgresql(a) => update_postgresql(a).await,
        },
        DynamicSecretSubcommand::Get(a) => get(a).await,
        DynamicSecretSubcommand::List(a) => list(a).await,
        DynamicSecretSubcommand::Delete(a) => delete(a).await,
        DynamicSecretSubcommand::GetValue(a) => get_value(a).await,
        DynamicSecretSubcommand::TmpCredsGet(a) => tmp_creds_get(a).await,
        DynamicSecretSubcommand::TmpCredsDelete(a) => tmp_creds_delete(a).await,
        DynamicSecretSubcommand::TmpCredsUpdate(a) => tmp_creds_update(a).await,
    }
}

fn common(a: DynamicSecretCommonArgs) -> anyhow::Result<DynamicSecretCommon> {
    Ok(DynamicSecretCommon {
        target_name: a.target_name,
        ssl: a.ssl,
        ssl_certificate: certificate(a.ssl_certificate)?,
        user_ttl: a.user_ttl,
        password_length: a.password_length,
        use_capital_letters: a.use_capital_letters,
        use_lower_letters: a.use_lower_letters,
        use_numbers: a.use_numbers,
        use_special_characters: a.use_special_characters,
        custom_username_template: a.custom_username_template,
        skip_dry_run: a.skip_dry_run,
        max_leases: a.max_leases,
        description: a.description,
        tags: a.tags,
    })
}

fn mysql_body(a: DynamicSecretMysqlArgs) -> anyhow::Result<DynamicSecretMysql> {
    Ok(DynamicSecretMysql {
        name: a.name,
        mysql_host: a.mysql_host,
        mysql_port: a.mysql_port,
        mysql_username: a.mysql_username,
        mysql_password: password(a.mysql_password)?,
        mysql_dbname: a.mysql_dbname,
        mysql_screation_statements: a.mysql_screation_statements,
        mysql_revocation_statements: a.mysql_revocation_statements,
        common: common(a.common)?,
    })
}

fn postgresql_body(a: DynamicSecretPostgresqlArgs) -> anyhow::Result<DynamicSecretPostgresql> {
    Ok(DynamicSecretPostgresql {
        name: a.name,
        postgresql_host: a.postgresql_host,
        postgresql_port: a.postgresql_port,
        postgresql_username: a.postgresql_username,
        postgresql_password: password(a.postgresql_password)?,
        postgresql_db_name: a.postgresql_db_name,
        creation_statements: a.creation_statements,
        revocation_statement: a.revocation_statement,
        common: common(a.common)?,
    })
}

/// "Created …" / "Updated …" with a hint to get credentials.
fn saved(verb: &str, name: &str) -> anyhow::Result<String> {
    if verb == "Created" {
        note(&format!(
            "Get credentials with: coffer get-dynamic-secret-value -n {name}"
        ));
    }
    Ok(format!("{verb} dynamic secret {name}"))
}

pub(super) async fn create_mysql(a: DynamicSecretMysqlArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let body = mysql_body(a)?;
    let name = body.name.clone();
    respond(&global, &DynamicSecretCreateMysql(body), |_| {
        saved("Created", &name)
    })
    .await
}

pub(super) async fn create_postgresql(a: DynamicSecretPostgresqlArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let body = postgresql_body(a)?;
    let name = body.name.clone();
    respond(&global, &DynamicSecretCreatePostgresql(body), |_| {
        saved("Created", &name)
    })
    .await
}

pub(super) async fn update_mysql(a: DynamicSecretMysqlArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let body = mysql_body(a)?;
    let name = body.name.clone();
    respond(&global, &DynamicSecretUpdateMysql(body), |_| {
        saved("Updated", &name)
    })
    .await
}

pub(super) async fn update_postgresql(a: DynamicSecretPostgresqlArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let body = postgresql_body(a)?;
    let name = body.name.clone();
    respond(&global, &DynamicSecretUpdatePostgresql(body), |_| {
        saved("Updated", &name)
    })
    .await
}

/// The settings, without the inline admin password (`--json` has it for
/// a caller who may read the item).
fn format_details(d: &DynamicSecretDetails) -> String {
    let target: Vec<&str> = d
        .item_targets_assoc
        .iter()
        .map(|t| t.target_name.as_str())
        .collect();
    let (creation, revocation) = if d.producer_type == "mysql" {
        (&d.mysql_creation_statements, &d.mysql_revocation_statements)
    } else {
        (
            &d.postgres_creation_statements,
            &d.postgres_revocation_statements,
        )
    };
    let status = if d.failure_message.is_empty() {
        d.producer_status.clone()
    } else {
        d.failure_message.clone()
    };
    fields(&[
        ("name", d.item_name.clone()),
        ("id", d.item_id.to_string()),
        ("type", d.producer_type.clone()),
        ("target", target.join(", ")),
        ("host", d.db_host_name.clone()),
        ("port", d.db_port.clone()),
        ("user_name", d.db_user_name.clone()),
        ("db_name", d.db_name.clone()),
        ("ssl", d.ssl_connection_mode.to_string()),
        ("user_ttl", d.user_ttl.clone()),
        ("password_length", d.password_length.to_string()),
        ("max_leases", d.max_leases.to_string()),
        ("username_template", d.username_template.clone()),
        ("creation_statements", creation.clone()),
        ("revocation_statements", revocation.clone()),
        ("tags", d.tags.join(", ")),
        ("status", status),
    ])
}

pub(super) async fn get(a: NameArgs) -> anyhow::Result<()> {
    let request = DynamicSecretGet { name: a.name };
    respond(&a.global, &request, |d| Ok(format_details(&d))).await
}

/// NAME TYPE STATUS, for dynamic-secret-list and rotated-secret-list.
pub(super) fn format_producers(out: &ListProducersOutput) -> String {
    let rows: Vec<Vec<String>> = out
        .producers
        .iter()
        .map(|p| {
            let status = if p.active {
                "active".to_string()
            } else if p.failure_message.is_empty() {
                "inactive".to_string()
            } else {
                p.failure_message.clone()
            };
            vec![p.name.clone(), p.kind.clone(), status]
        })
        .collect();
    table(&["NAME", "TYPE", "STATUS"], &rows)
}

pub(super) async fn list(a: NoArgs) -> anyhow::Result<()> {
    respond(&a.global, &DynamicSecretList {}, |out| {
        Ok(format_producers(&out))
    })
    .await
}

pub(super) async fn delete(a: NameArgs) -> anyhow::Result<()> {
    let request = DynamicSecretDelete { name: a.name };
    respond(&a.global, &request, |out| {
        Ok(format!(
            "Deleted dynamic secret {}",
            out.dynamic_secret_name
        ))
    })
    .await
}

/// The server's JSON answer as is, with or without `--json`: it is meant
/// for `jq` (`jq -r .password`), like the Akeyless CLI's.
pub(super) async fn get_value(a: GetDynamicSecretValueArgs) -> anyhow::Result<()> {
    let request = GetDynamicSecretValue {
        name: a.name,
        timeout: a.timeout,
        target: a.target,
    };
    let mut session = Session::open(&a.global).await?;
    let raw = session.call(&request).await?;
    let value = coffer_client::decode::<GetDynamicSecretValue>(raw.clone())?;
    if value.id.is_empty() || value.password.expose_secret().is_empty() {
        bail!(
            "the gateway answered {} without a user or password",
            GetDynamicSecretValue::NAME
        );
    }
    emit_json(&raw)
}

fn format_tmp_creds(creds: &[TmpCreds]) -> String {
    let rows: Vec<Vec<String>> = creds
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                who(&c.identity, &c.access_id),
                date(&c.creation_date),
                date(&c.expiration_date),
                c.revocation_attempts.to_string(),
                c.last_error.clone().unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "IDENTITY",
            "CREATED",
            "EXPIRES",
            "ATTEMPTS",
            "LAST ERROR",
        ],
        &rows,
    )
}

pub(super) async fn tmp_creds_get(a: NameArgs) -> anyhow::Result<()> {
    let request = DynamicSecretTmpCredsGet { name: a.name };
    respond(&a.global, &request, |out| {
        if out.0.is_empty() {
            note("No live credentials.");
        }
        Ok(format_tmp_creds(&out.0))
    })
    .await
}

/// Revoke one credential or all of them; shared by `lease revoke`.
async fn revoke(
    global: &crate::args::GlobalArgs,
    name: String,
    id: Option<String>,
    all: bool,
) -> anyhow::Result<()> {
    let request = DynamicSecretTmpCredsDelete {
        name,
        tmp_creds_id: id,
        revoke_all: all.then_some(true),
    };
    respond(global, &request, |out| {
        Ok(if out.revoked.is_empty() {
            "Nothing to revoke: no live credentials".to_string()
        } else {
            format!("Revoked: {}", out.revoked.join(", "))
        })
    })
    .await
}

pub(super) async fn tmp_creds_delete(a: TmpCredsDeleteArgs) -> anyhow::Result<()> {
    revoke(&a.global, a.name, a.tmp_creds_id, a.revoke_all).await
}

pub(super) async fn tmp_creds_update(a: TmpCredsUpdateArgs) -> anyhow::Result<()> {
    let request = DynamicSecretTmpCredsUpdate {
        name: a.name,
        tmp_creds_id: a.tmp_creds_id,
        new_ttl_min: a.new_ttl_min,
    };
    respond(&a.global, &request, |out| {
        Ok(format!(
            "{} now expires {}",
            out.id,
            date(&out.expiration_date)
        ))
    })
    .await
}

// ---- leases ----

pub(super) async fn lease(c: LeaseCommand) -> anyhow::Result<()> {
    match c.command {
        LeaseSubcommand::List(a) => lease_list(a).await,
        LeaseSubcommand::Revoke(a) => lease_revoke(a).await,
    }
}

/// Who holds a credential: the identity, else the access ID.
pub(super) fn who(identity: &str, access_id: &str) -> String {
    match (identity, access_id) {
        ("", "") => "-".to_string(),
        ("", id) => id.to_string(),
        (identity, _) => identity.to_string(),
    }
}

fn format_leases(leases: &[LeaseInfo]) -> String {
    let rows: Vec<Vec<String>> = leases
        .iter()
        .map(|l| {
            vec![
                l.id.clone(),
                l.item_name.clone(),
                who(&l.identity, &l.access_id),
                l.state.clone(),
                date(&l.expiration_date),
                l.revocation_attempts.to_string(),
                l.last_error.clone().unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "ITEM",
            "IDENTITY",
            "STATE",
            "EXPIRES",
            "ATTEMPTS",
            "LAST ERROR",
        ],
        &rows,
    )
}

async fn lease_list(a: LeaseListArgs) -> anyhow::Result<()> {
    let request = LeaseList {
        name: a.name,
        failing: a.failing.then_some(true),
        all: a.all.then_some(true),
        limit: a.limit,
    };
    respond(&a.global, &request, |out| {
        if out.leases.is_empty() {
            note("No leases.");
        }
        Ok(format_leases(&out.leases))
    })
    .await
}

async fn lease_revoke(a: LeaseRevokeArgs) -> anyhow::Result<()> {
    revoke(&a.global, a.name, a.id, a.all).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(std::iter::once("coffer").chain(args.iter().copied()))
            .unwrap()
            .command
    }

    fn fails(args: &[&str]) -> bool {
        Cli::try_parse_from(std::iter::once("coffer").chain(args.iter().copied())).is_err()
    }

    #[test]
    fn akeyless_style_dynamic_secret_commands() {
        let Command::DynamicSecret(DynamicSecretCommand {
            command: DynamicSecretSubcommand::Create(c),
        }) = parse(&[
            "dynamic-secret",
            "create",
            "mysql",
            "--name",
            "/db/ro",
            "--target-name",
            "/t/mysql",
            "--mysql-screation-statements",
            "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'",
            "--user-ttl",
            "30s",
            "--password-length",
            "16",
            "--skip-dry-run",
            "--max-leases",
            "5",
            "--custom-username-template",
            "ci_{{random}}",
        ])
        else {
            panic!("wrong command")
        };
        let DynamicSecretDb::Mysql(a) = c.db else {
            panic!("wrong database")
        };
        let body = mysql_body(a).unwrap();
        let v = serde_json::to_value(DynamicSecretCreateMysql(body)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "name": "/db/ro",
                "target-name": "/t/mysql",
                "mysql-screation-statements": "CREATE USER '{{name}}'@'%' IDENTIFIED BY '{{password}}'",
                "user-ttl": "30s",
                "password-length": 16,
                "skip-dry-run": true,
                "max-leases": 5,
                "custom-username-template": "ci_{{random}}"
            })
        );
        // The legacy flat names and the postgres spelling.
        assert!(matches!(
            parse(&["gateway-create-producer-mysql", "-n", "/x"]),
            Command::GatewayCreateProducerMysql(_)
        ));
        assert!(matches!(
            parse(&["dynamic-secret-create-postgresql", "-n", "/x"]),
            Command::GatewayCreateProducerPostgresql(_)
        ));
        let Command::DynamicSecret(DynamicSecretCommand {
            command: DynamicSecretSubcommand::Update(u),
        }) = parse(&[
            "dynamic-secret",
            "update",
            "postgres",
            "-n",
            "/x",
            "--postgresql-password",
            "-",
        ])
        else {
            panic!("wrong command")
        };
        let DynamicSecretDb::Postgresql(p) = u.db else {
            panic!("wrong database")
        };
        assert_eq!(p.postgresql_password.unwrap().expose_secret(), "-");
        assert!(matches!(
            parse(&["get-dynamic-secret-value", "-n", "/x"]),
            Command::GetDynamicSecretValue(_)
        ));
    }

    #[test]
    fn revocation_needs_one_id_or_all() {
        assert!(matches!(
            parse(&["lease", "revoke", "--name", "/x", "--id", "tmp_x"]),
            Command::Lease(_)
        ));
        assert!(matches!(
            parse(&["lease", "revoke", "-n", "/x", "--all"]),
            Command::Lease(_)
        ));
        assert!(fails(&["lease", "revoke", "-n", "/x"]));
        assert!(fails(&[
            "lease", "revoke", "-n", "/x", "--id", "a", "--all"
        ]));
        assert!(fails(&["dynamic-secret", "tmp-creds-delete", "-n", "/x"]));
        assert!(matches!(
            parse(&[
                "dynamic-secret",
                "tmp-creds-delete",
                "-n",
                "/x",
                "--revoke-all"
            ]),
            Command::DynamicSecret(_)
        ));
        let Command::Lease(LeaseCommand {
            command: LeaseSubcommand::List(l),
        }) = parse(&["lease", "list", "--failing", "--all"])
        else {
            panic!("wrong command")
        };
        assert!(l.failing && l.all && l.name.is_none());
    }

    #[test]
    fn lease_table() {
        let leases = vec![
            LeaseInfo {
                id: "tmp_db_1".into(),
                item_name: "/db".into(),
                identity: "ci@example".into(),
                state: "live".into(),
                expiration_date: Some("2030-01-01T00:00:00Z".into()),
                revocation_attempts: 2,
                last_error: Some("connection refused".into()),
                ..Default::default()
            },
            LeaseInfo {
                id: "tmp_db_2".into(),
                item_name: "/db".into(),
                access_id: "p-abc".into(),
                state: "revoked".into(),
                ..Default::default()
            },
        ];
        assert_eq!(
            format_leases(&leases),
            "ID        ITEM  IDENTITY    STATE    EXPIRES               ATTEMPTS  LAST ERROR\n\
             tmp_db_1  /db   ci@example  live     2030-01-01T00:00:00Z  2         connection refused\n\
             tmp_db_2  /db   p-abc       revoked  -                     0         -\n"
        );
    }
}
