//! Database targets: the admin connections dynamic and rotated secrets use.

use anyhow::Context as _;
use coffer_client::TargetInfo;
use coffer_client::ops::{
    DbTarget, TargetCreateDb, TargetDelete, TargetGet, TargetGetDetails, TargetList, TargetUpdateDb,
};
use secrecy::{ExposeSecret, SecretString};

use super::{date, respond};
use crate::args::NameArgs;
use crate::db_args::{
    TargetConnArgs, TargetCreateDbArgs, TargetDeleteArgs, TargetListArgs, TargetUpdateDbArgs,
};
use crate::output::{fields, note, table};
use crate::session::secret_or_stdin;

/// A password flag: `-` reads it from standard input.
pub(super) fn password(flag: Option<SecretString>) -> anyhow::Result<Option<SecretString>> {
    flag.map(|p| secret_or_stdin(p, true)).transpose()
}

/// A CA certificate flag: PEM text or its base64 as is, else the file it names.
pub(super) fn certificate(flag: Option<String>) -> anyhow::Result<Option<String>> {
    let Some(value) = flag.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    if value.contains("-----BEGIN") {
        return Ok(Some(value));
    }
    let path = std::path::Path::new(&value);
    if path.is_file() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the certificate {}", path.display()))?;
        return Ok(Some(text));
    }
    Ok(Some(value))
}

fn target_body(
    name: String,
    db_type: Option<String>,
    host: Option<String>,
    user_name: Option<String>,
    conn: TargetConnArgs,
) -> anyhow::Result<DbTarget> {
    Ok(DbTarget {
        name,
        db_type,
        host,
        port: conn.port,
        user_name,
        pwd: password(conn.pwd)?,
        db_name: conn.db_name,
        ssl: conn.ssl,
        ssl_certificate: certificate(conn.ssl_certificate)?,
        description: conn.description,
    })
}

pub(super) async fn create_db(a: TargetCreateDbArgs) -> anyhow::Result<()> {
    let body = target_body(
        a.name,
        Some(a.db_type),
        Some(a.host),
        Some(a.user_name),
        a.conn,
    )?;
    let name = body.name.clone();
    respond(&a.global, &TargetCreateDb(body), |_| {
        Ok(format!("Created target {name}"))
    })
    .await
}

pub(super) async fn update_db(a: TargetUpdateDbArgs) -> anyhow::Result<()> {
    let body = target_body(a.name, a.db_type, a.host, a.user_name, a.conn)?;
    let name = body.name.clone();
    respond(&a.global, &TargetUpdateDb(body), |_| {
        Ok(format!("Updated target {name}"))
    })
    .await
}

fn format_target(t: &TargetInfo) -> String {
    let items: Vec<&str> = t
        .target_items_assoc
        .iter()
        .map(|i| i.item_name.as_str())
        .collect();
    fields(&[
        ("name", t.target_name.clone()),
        ("id", t.target_id.to_string()),
        ("type", t.target_type.clone()),
        ("description", t.description.clone()),
        ("version", t.last_version.to_string()),
        ("used_by", items.join(", ")),
        ("created", date(&t.creation_date)),
        ("modified", date(&t.modification_date)),
    ])
}

pub(super) async fn get(a: NameArgs) -> anyhow::Result<()> {
    let request = TargetGet { name: a.name };
    respond(&a.global, &request, |t| Ok(format_target(&t))).await
}

/// The connection, with the password when the caller may read it.
pub(super) async fn get_details(a: NameArgs) -> anyhow::Result<()> {
    let request = TargetGetDetails { name: a.name };
    respond(&a.global, &request, |out| {
        let d = &out.value.db_target_details;
        let pwd = match &d.db_pwd {
            Some(p) => p.expose_secret().to_string(),
            None => {
                note("The password is shown to callers with read on the target only.");
                String::new()
            }
        };
        let mut text = format_target(&out.target);
        text.push_str(&fields(&[
            ("host", d.db_host_name.clone()),
            ("port", d.db_port.clone()),
            ("user_name", d.db_user_name.clone()),
            ("pwd", pwd),
            ("db_name", d.db_name.clone()),
            ("ssl", d.ssl_connection_mode.to_string()),
            (
                "ssl_certificate",
                if d.ssl_connection_certificate.is_empty() {
                    String::new()
                } else {
                    "(PEM, see --json)".to_string()
                },
            ),
        ]));
        Ok(text)
    })
    .await
}

pub(super) async fn list(a: TargetListArgs) -> anyhow::Result<()> {
    let request = TargetList {
        filter: a.filter,
        types: a.types,
    };
    respond(&a.global, &request, |out| {
        let rows: Vec<Vec<String>> = out
            .targets
            .iter()
            .map(|t| {
                vec![
                    t.target_name.clone(),
                    t.target_type.clone(),
                    t.target_items_assoc.len().to_string(),
                    t.description.clone(),
                ]
            })
            .collect();
        Ok(table(&["NAME", "TYPE", "ITEMS", "DESCRIPTION"], &rows))
    })
    .await
}

pub(super) async fn delete(a: TargetDeleteArgs) -> anyhow::Result<()> {
    let request = TargetDelete {
        name: a.name,
        force_deletion: a.force_deletion,
    };
    respond(&a.global, &request, |out| {
        Ok(format!("Deleted target {}", out.target_name))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_inline_or_from_a_file() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        assert_eq!(certificate(Some(pem.into())).unwrap().as_deref(), Some(pem));
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, pem).unwrap();
        assert_eq!(
            certificate(Some(file.display().to_string()))
                .unwrap()
                .as_deref(),
            Some(pem)
        );
        // Not a file: sent as is (base64 of the PEM).
        assert_eq!(
            certificate(Some("LS0tLS1CRUdJTg==".into()))
                .unwrap()
                .as_deref(),
            Some("LS0tLS1CRUdJTg==")
        );
        assert_eq!(certificate(Some(" ".into())).unwrap(), None);
    }
}
