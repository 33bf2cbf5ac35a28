//! Static secrets: get, create, update, describe, list, delete.

use anyhow::bail;
use coffer_client::ops::{
    CreateSecret, DeleteItem, DeleteItems, DescribeItem, GetSecretValue, GetTags, ListItems,
    RestoreItem, UpdateItem, UpdateSecretVal,
};
use coffer_client::{ItemInfo, SecretValues};
use secrecy::ExposeSecret;

use super::{date, respond};
use crate::args::{
    CreateSecretArgs, DeleteItemArgs, DeleteItemsArgs, DescribeItemArgs, GetSecretValueArgs,
    ListItemsArgs, NameArgs, UpdateItemArgs, UpdateSecretValArgs,
};
use crate::output::{fields, note};
use crate::session::secret_or_stdin;

/// The value the server returned for a requested name (which the server
/// may have normalised, e.g. `x` → `/x`).
fn value_for<'a>(values: &'a SecretValues, name: &str) -> Option<&'a str> {
    let normalised = format!("/{}", name.trim_matches('/'));
    values
        .get(name)
        .or_else(|| values.get(&normalised))
        .map(|v| v.expose_secret())
}

/// One name: the value alone (for `$(coffer get-secret-value -n x)`);
/// several: `name: value` lines in the order asked.
fn format_values(names: &[String], values: &SecretValues) -> anyhow::Result<String> {
    if let [name] = names {
        let value = match value_for(values, name) {
            Some(v) => v,
            // A lone value under another spelling of the name.
            None => match values.0.values().collect::<Vec<_>>().as_slice() {
                [only] => only.expose_secret(),
                _ => bail!("the gateway returned no value for {name}"),
            },
        };
        return Ok(value.to_string());
    }
    let mut out = String::new();
    for name in names {
        let Some(value) = value_for(values, name) else {
            bail!("the gateway returned no value for {name}");
        };
        out.push_str(&format!("{name}: {value}\n"));
    }
    Ok(out)
}

pub(super) async fn get_secret_value(a: GetSecretValueArgs) -> anyhow::Result<()> {
    let request = GetSecretValue {
        names: a.names.clone(),
        version: a.version,
    };
    respond(&a.global, &request, |values| {
        format_values(&a.names, &values)
    })
    .await
}

pub(super) async fn create_secret(a: CreateSecretArgs) -> anyhow::Result<()> {
    let request = CreateSecret {
        name: a.name,
        value: secret_or_stdin(a.value, false)?,
        format: a.format,
        description: a.description,
        tags: a.tags,
        max_versions: a.max_versions,
        secret_type: a.secret_type,
    };
    respond(&a.global, &request, |out| {
        Ok(format!("Created secret {}", out.name))
    })
    .await
}

pub(super) async fn update_secret_val(a: UpdateSecretValArgs) -> anyhow::Result<()> {
    let request = UpdateSecretVal {
        name: a.name,
        value: secret_or_stdin(a.value, false)?,
        keep_prev_version: a.keep_prev_version,
        format: a.format,
    };
    respond(&a.global, &request, |out| {
        Ok(format!("Updated secret {}", out.name))
    })
    .await
}

fn format_item(item: &ItemInfo) -> String {
    let format = item
        .item_general_info
        .static_secret_info
        .as_ref()
        .map(|i| i.format.clone())
        .unwrap_or_default();
    let mut rows = vec![
        ("name", item.item_name.clone()),
        ("id", item.item_id.to_string()),
        ("type", item.item_type.clone()),
        ("sub_type", item.item_sub_type.clone()),
        ("format", format),
        ("description", item.item_metadata.clone()),
        ("tags", item.item_tags.join(", ")),
        ("last_version", item.last_version.to_string()),
        ("enabled", item.is_enabled.to_string()),
        ("created", date(&item.creation_date)),
        ("modified", date(&item.modification_date)),
    ];
    if item.item_state == "PendingDeletion" {
        rows.push((
            "state",
            "pending deletion (restore-item brings it back)".into(),
        ));
        rows.push(("deletion_date", date(&item.deletion_date)));
    }
    rows.extend(producer_rows(item));
    let mut text = fields(&rows);
    if !item.item_versions.is_empty() {
        text.push_str("versions:\n");
        for v in &item.item_versions {
            text.push_str(&format!("  {:>4}  {}\n", v.version, date(&v.creation_date)));
        }
    }
    text
}

/// The rotation or producer settings of a rotated or dynamic secret.
fn producer_rows(item: &ItemInfo) -> Vec<(&'static str, String)> {
    let info = &item.item_general_info;
    let targets: Vec<&str> = item
        .item_targets_assoc
        .iter()
        .map(|t| t.target_name.as_str())
        .collect();
    if let Some(r) = &info.rotated_secret_details {
        return vec![
            ("target", targets.join(", ")),
            ("rotator_type", r.rotator_type.clone()),
            ("rotator_creds", r.rotator_creds_type.clone()),
            ("auto_rotate", item.auto_rotate.to_string()),
            (
                "rotation",
                if item.auto_rotate {
                    format!(
                        "every {} days at {:02}:00 UTC",
                        item.rotation_interval, r.rotation_hour
                    )
                } else {
                    String::new()
                },
            ),
            ("rotation_status", r.rotator_status.clone()),
            (
                "last_rotation_error",
                r.last_rotation_error.clone().unwrap_or_default(),
            ),
            (
                "last_rotation",
                item.last_rotation_date.clone().unwrap_or_default(),
            ),
            (
                "next_rotation",
                item.next_rotation_date.clone().unwrap_or_default(),
            ),
            (
                "pending_version",
                r.pending_version.map(|v| v.to_string()).unwrap_or_default(),
            ),
        ];
    }
    if let Some(d) = &info.dynamic_secret_producer_details {
        return vec![
            ("producer_type", d.producer_type.clone()),
            ("user_ttl", d.user_ttl.clone()),
            ("producer_status", d.producer_status.clone()),
        ];
    }
    Vec::new()
}

pub(super) async fn describe_item(a: DescribeItemArgs) -> anyhow::Result<()> {
    let request = DescribeItem {
        name: a.name,
        show_versions: a.show_versions,
    };
    respond(&a.global, &request, |item| Ok(format_item(&item))).await
}

pub(super) async fn list_items(a: ListItemsArgs) -> anyhow::Result<()> {
    let request = ListItems {
        path: a.path,
        filter: a.filter,
        types: a.types,
        pagination_token: a.pagination_token,
        minimal_view: a.minimal_view,
        current_folder: a.current_folder,
        pending_deletion: a.pending_deletion,
    };
    respond(&a.global, &request, |out| {
        let mut text = String::new();
        for folder in &out.folders {
            text.push_str(&format!("{}/\n", folder.trim_end_matches('/')));
        }
        for item in &out.items {
            text.push_str(&item.item_name);
            text.push('\n');
        }
        if !out.next_page.is_empty() {
            note(&format!(
                "More items: repeat with --pagination-token {}",
                out.next_page
            ));
        }
        Ok(text)
    })
    .await
}

pub(super) async fn delete_item(a: DeleteItemArgs) -> anyhow::Result<()> {
    let request = DeleteItem {
        name: a.name,
        version: a.version,
        delete_in_days: a.delete_in_days,
        delete_immediately: a.delete_immediately,
    };
    let immediate = a.delete_immediately == Some(true) || a.delete_in_days == Some(0);
    respond(&a.global, &request, |out| {
        Ok(match a.version {
            Some(v) if v >= 0 => format!(
                "Deleted version {} of {}",
                out.version_deleted, out.item_name
            ),
            _ if immediate => format!("Deleted {}", out.item_name),
            _ => format!(
                "{} is pending deletion until {} (restore-item brings it back)",
                out.item_name,
                date(&out.deletion_date)
            ),
        })
    })
    .await
}

pub(super) async fn update_item(a: UpdateItemArgs) -> anyhow::Result<()> {
    let request = UpdateItem {
        name: a.name.clone(),
        new_name: a.new_name.clone(),
        description: a.description,
        add_tag: a.add_tag,
        rm_tag: a.rm_tag,
        max_versions: a.max_versions,
    };
    respond(&a.global, &request, |_| {
        Ok(match &a.new_name {
            Some(n) if n.trim_matches('/') != a.name.trim_matches('/') => {
                format!("Updated {} (now {n})", a.name)
            }
            _ => format!("Updated {}", a.name),
        })
    })
    .await
}

pub(super) async fn get_tags(a: NameArgs) -> anyhow::Result<()> {
    let request = GetTags { name: a.name };
    respond(&a.global, &request, |tags| {
        Ok(tags.iter().map(|t| format!("{t}\n")).collect())
    })
    .await
}

pub(super) async fn delete_items(a: DeleteItemsArgs) -> anyhow::Result<()> {
    let request = DeleteItems {
        path: Some(a.path),
        item: Vec::new(),
    };
    respond(&a.global, &request, |out| {
        let mut text = format!(
            "{} items under {} are pending deletion (restore-item brings each back):\n",
            out.deleted_items.len(),
            out.path
        );
        for name in &out.deleted_items {
            text.push_str(&format!("  {name}\n"));
        }
        Ok(text)
    })
    .await
}

pub(super) async fn restore_item(a: NameArgs) -> anyhow::Result<()> {
    let request = RestoreItem { name: a.name };
    respond(&a.global, &request, |out| {
        Ok(format!("Restored {}", out.item_name))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn values(pairs: &[(&str, &str)]) -> SecretValues {
        SecretValues(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), SecretString::from(*v)))
                .collect(),
        )
    }

    #[test]
    fn one_value_alone_several_as_lines_in_request_order() {
        let v = values(&[("/a", "1"), ("/b", "2")]);
        assert_eq!(format_values(&["a".into()], &v).unwrap(), "1");
        assert_eq!(
            format_values(&["/b".into(), "/a".into()], &v).unwrap(),
            "/b: 2\n/a: 1\n"
        );
        assert!(format_values(&["/a".into(), "/c".into()], &v).is_err());
    }
}
