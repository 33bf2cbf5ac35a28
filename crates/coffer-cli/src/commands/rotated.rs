//! Rotated secrets: database passwords Coffer changes on a schedule or on
//! request.

use anyhow::bail;
use coffer_client::ops::{
    GatewayRotateSecret, GetRotatedSecretValue, RotatedSecretCreate, RotatedSecretCreateMysql,
    RotatedSecretCreatePostgresql, RotatedSecretDelete, RotatedSecretList, RotatedSecretUpdate,
    RotatedSecretUpdateMysql, RotatedSecretUpdatePostgresql, RotationSettings,
};
use secrecy::ExposeSecret;

use super::dynamic::format_producers;
use super::respond;
use super::targets::password;
use crate::args::{NameArgs, NoArgs};
use crate::db_args::{
    GetRotatedSecretValueArgs, RotatedSecretCommand, RotatedSecretCreateArgs,
    RotatedSecretCreateDb, RotatedSecretSubcommand, RotatedSecretUpdateArgs, RotatedSecretUpdateDb,
    RotationArgs,
};
use crate::output::emit_json;
use crate::session::Session;

pub(super) async fn run(c: RotatedSecretCommand) -> anyhow::Result<()> {
    match c.command {
        RotatedSecretSubcommand::Create(c) => match c.db {
            RotatedSecretCreateDb::Mysql(a) => create_mysql(a).await,
            RotatedSecretCreateDb::Postgresql(a) => create_postgresql(a).await,
        },
        RotatedSecretSubcommand::Update(u) => match u.db {
            RotatedSecretUpdateDb::Mysql(a) => update_mysql(a).await,
            RotatedSecretUpdateDb::Postgresql(a) => update_postgresql(a).await,
        },
        RotatedSecretSubcommand::List(a) => list(a).await,
        RotatedSecretSubcommand::Delete(a) => delete(a).await,
        RotatedSecretSubcommand::Rotate(a) => rotate(a).await,
        RotatedSecretSubcommand::GetValue(a) => get_value(a).await,
    }
}

fn settings(a: RotationArgs) -> RotationSettings {
    RotationSettings {
        auto_rotate: a.auto_rotate,
        rotation_interval: a.rotation_interval,
        rotation_hour: a.rotation_hour,
        password_length: a.password_length,
        use_capital_letters: a.use_capital_letters,
        use_lower_letters: a.use_lower_letters,
        use_numbers: a.use_numbers,
        use_special_characters: a.use_special_characters,
        max_versions: a.max_versions,
        description: a.description,
    }
}

fn create_body(a: RotatedSecretCreateArgs) -> anyhow::Result<RotatedSecretCreate> {
    Ok(RotatedSecretCreate {
        name: a.name,
        target_name: a.target_name,
        rotator_type: a.rotator_type,
        rotated_username: a.rotated_username,
        rotated_password: password(a.rotated_password)?,
        authentication_credentials: a.authentication_credentials,
        settings: settings(a.settings),
        skip_dry_run: a.skip_dry_run,
        tags: a.tags,
    })
}

fn update_body(a: RotatedSecretUpdateArgs) -> RotatedSecretUpdate {
    RotatedSecretUpdate {
        name: a.name,
        authentication_credentials: a.authentication_credentials,
        settings: settings(a.settings),
        add_tag: a.add_tag,
        rm_tag: a.rm_tag,
    }
}

pub(super) async fn create_mysql(a: RotatedSecretCreateArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let request = RotatedSecretCreateMysql(create_body(a)?);
    respond(&global, &request, |out| {
        Ok(format!("Created rotated secret {}", out.name))
    })
    .await
}

pub(super) async fn create_postgresql(a: RotatedSecretCreateArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let request = RotatedSecretCreatePostgresql(create_body(a)?);
    respond(&global, &request, |out| {
        Ok(format!("Created rotated secret {}", out.name))
    })
    .await
}

pub(super) async fn update_mysql(a: RotatedSecretUpdateArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let request = RotatedSecretUpdateMysql(update_body(a));
    respond(&global, &request, |out| {
        Ok(format!("Updated rotated secret {}", out.name))
    })
    .await
}

pub(super) async fn update_postgresql(a: RotatedSecretUpdateArgs) -> anyhow::Result<()> {
    let global = a.global.clone();
    let request = RotatedSecretUpdatePostgresql(update_body(a));
    respond(&global, &request, |out| {
        Ok(format!("Updated rotated secret {}", out.name))
    })
    .await
}

pub(super) async fn list(a: NoArgs) -> anyhow::Result<()> {
    respond(&a.global, &RotatedSecretList {}, |out| {
        Ok(format_producers(&out))
    })
    .await
}

pub(super) async fn delete(a: NameArgs) -> anyhow::Result<()> {
    let request = RotatedSecretDelete { name: a.name };
    respond(&a.global, &request, |out| {
        Ok(format!("Deleted rotated secret {}", out.item_name))
    })
    .await
}

/// `gateway-rotate-secret`.
pub(super) async fn rotate(a: NameArgs) -> anyhow::Result<()> {
    let request = GatewayRotateSecret { name: a.name };
    respond(&a.global, &request, |out| {
        Ok(format!("Rotated {}", out.name))
    })
    .await
}

/// The server's JSON answer as is (`{"value": {"username", "password"},
/// "version"}`), with or without `--json`: it is meant for `jq`.
pub(super) async fn get_value(a: GetRotatedSecretValueArgs) -> anyhow::Result<()> {
    let request = GetRotatedSecretValue {
        names: a.name,
        version: a.version,
    };
    let mut session = Session::open(&a.global).await?;
    let raw = session.call(&request).await?;
    let value = coffer_client::decode::<GetRotatedSecretValue>(raw.clone())?;
    if value.value.password.expose_secret().is_empty() {
        bail!("the gateway answered without a password");
    }
    emit_json(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::{Cli, Command};
    use clap::Parser;

    fn try_parse(args: &[&str]) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("coffer").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    #[test]
    fn akeyless_style_rotated_secret_commands() {
        let Ok(Command::RotatedSecret(RotatedSecretCommand {
            command: RotatedSecretSubcommand::Create(c),
        })) = try_parse(&[
            "rotated-secret",
            "create",
            "postgresql",
            "--name",
            "/rs/app",
            "--target-name",
            "/t/pg",
            "--rotator-type",
            "password",
            "--rotated-username",
            "app",
            "--rotated-password",
            "-old-pass",
            "--authentication-credentials",
            "use-target-creds",
            "--auto-rotate",
            "true",
            "--rotation-interval",
            "7",
            "--rotation-hour",
            "3",
        ])
        else {
            panic!("wrong command")
        };
        let RotatedSecretCreateDb::Postgresql(a) = c.db else {
            panic!("wrong database")
        };
        let body = create_body(a).unwrap();
        assert!(!format!("{body:?}").contains("-old-pass"));
        assert_eq!(
            serde_json::to_value(RotatedSecretCreatePostgresql(body)).unwrap(),
            serde_json::json!({
                "name": "/rs/app",
                "target-name": "/t/pg",
                "rotator-type": "password",
                "rotated-username": "app",
                "rotated-password": "-old-pass",
                "authentication-credentials": "use-target-creds",
                "auto-rotate": true,
                "rotation-interval": 7,
                "rotation-hour": 3
            })
        );
        // A password rotator needs the user and its password.
        assert!(
            try_parse(&[
                "rotated-secret",
                "create",
                "mysql",
                "-n",
                "/x",
                "--target-name",
                "/t",
                "--rotator-type",
                "password"
            ])
            .is_err()
        );
        assert!(
            try_parse(&[
                "rotated-secret",
                "create",
                "mysql",
                "-n",
                "/x",
                "--target-name",
                "/t",
                "--rotator-type",
                "target"
            ])
            .is_ok()
        );
        assert!(matches!(
            try_parse(&["gateway-rotate-secret", "-n", "/x"]),
            Ok(Command::GatewayRotateSecret(_))
        ));
        assert!(matches!(
            try_parse(&["update-rotated-secret", "-n", "/x", "--add-tag", "a"]),
            Ok(Command::RotatedSecretUpdateMysql(_))
        ));
        assert!(matches!(
            try_parse(&["get-rotated-secret-value", "-n", "/x", "--version", "2"]),
            Ok(Command::GetRotatedSecretValue(_))
        ));
    }
}
