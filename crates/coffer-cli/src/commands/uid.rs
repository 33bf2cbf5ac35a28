//! Universal Identity: `create-auth-method-universal-identity` and the
//! `uid-*` token commands. Commands that make a token print only the token
//! on stdout (`UID=$(coffer uid-rotate-token --uid-token "$UID")`); its ID
//! and expiry go to stderr.

use anyhow::bail;
use coffer_client::ops::{
    CreateAuthMethodUniversalIdentity, UidCreateChildToken, UidGenerateToken, UidListChildren,
    UidRevokeToken, UidRotateToken, UidTokenDetails, UidTokenOutput,
};
use secrecy::ExposeSecret;

use super::{print_response, respond};
use crate::args::{
    CreateAuthMethodUniversalIdentityArgs, NoArgs, UidCreateChildTokenArgs, UidGenerateTokenArgs,
    UidListChildrenArgs, UidRevokeTokenArgs,
};
use crate::output::{fields, note};
use crate::session::{Context, secret_or_stdin};

pub(super) async fn create_auth_method_universal_identity(
    a: CreateAuthMethodUniversalIdentityArgs,
) -> anyhow::Result<()> {
    let global = a.global.clone();
    let request: CreateAuthMethodUniversalIdentity = a.into();
    respond(&global, &request, |out| {
        note(&format!(
            "Make a root token with: coffer uid-generate-token --auth-method-name {}",
            out.name
        ));
        Ok(fields(&[("name", out.name), ("access_id", out.access_id)]))
    })
    .await
}

/// The token on stdout, its ID and expiry on stderr.
fn token_only(out: UidTokenOutput) -> anyhow::Result<String> {
    if out.token.expose_secret().is_empty() {
        bail!("the gateway answered without a token");
    }
    note(&format!(
        "token_id: {}  expires: {}",
        out.token_id, out.expiration
    ));
    Ok(out.token.expose_secret().to_string())
}

pub(super) async fn generate_token(a: UidGenerateTokenArgs) -> anyhow::Result<()> {
    let request = UidGenerateToken {
        auth_method_name: a.auth_method_name,
        description: a.description,
    };
    respond(&a.global, &request, token_only).await
}

/// Authenticated by the UID token itself: no profile login happens.
pub(super) async fn rotate_token(a: NoArgs) -> anyhow::Result<()> {
    let Some(uid_token) = a.global.uid_token.clone() else {
        bail!(
            "--uid-token is required: the UID token to rotate (\"-\" reads it from standard input)"
        );
    };
    let uid_token = secret_or_stdin(uid_token, true)?;
    let ctx = Context::new(&a.global)?;
    let raw = ctx
        .client
        .send_value(None, &UidRotateToken { uid_token })
        .await?;
    print_response::<UidRotateToken>(a.global.json, raw, token_only)
}

pub(super) async fn create_child_token(a: UidCreateChildTokenArgs) -> anyhow::Result<()> {
    if a.global.uid_token.is_none() && (a.auth_method_name.is_none() || a.uid_token_id.is_none()) {
        bail!(
            "pass --uid-token (the parent), or --auth-method-name and --uid-token-id (as an admin)"
        );
    }
    let request = UidCreateChildToken {
        auth_method_name: a.auth_method_name,
        uid_token_id: a.uid_token_id,
        child_ttl: a.child_ttl,
        child_deny_rotate: a.child_deny_rotate,
        child_deny_inheritance: a.child_deny_inheritance,
        description: a.description,
    };
    respond(&a.global, &request, token_only).await
}

pub(super) async fn revoke_token(a: UidRevokeTokenArgs) -> anyhow::Result<()> {
    if a.global.uid_token.is_none() && a.auth_method_name.is_none() {
        bail!(
            "pass --uid-token (the token or one of its ancestors), or --auth-method-name (as an admin)"
        );
    }
    let request = UidRevokeToken {
        revoke_token: a.revoke_token,
        revoke_type: a.revoke_type,
        auth_method_name: a.auth_method_name,
    };
    respond(&a.global, &request, |out| {
        Ok(if out.revoked.is_empty() {
            format!("{} was already revoked", out.token_id)
        } else {
            format!("Revoked: {}", out.revoked.join(", "))
        })
    })
    .await
}

pub(super) async fn list_children(a: UidListChildrenArgs) -> anyhow::Result<()> {
    if a.global.uid_token.is_none() && a.auth_method_name.is_none() {
        bail!("pass --uid-token (its tree), or --auth-method-name (every tree, as an admin)");
    }
    let request = UidListChildren {
        auth_method_name: a.auth_method_name,
    };
    respond(&a.global, &request, |out| {
        let mut text = format!(
            "{} token(s), depth up to {}\n",
            out.number_of_tokens, out.max_depth
        );
        render(&out.root, 0, &mut text);
        Ok(text)
    })
    .await
}

/// One line per token, indented by level.
fn render(t: &UidTokenDetails, indent: usize, text: &mut String) {
    let mut flags = Vec::new();
    if t.revoked {
        flags.push("revoked");
    }
    if t.deny_rotate {
        flags.push("deny-rotate");
    }
    if t.deny_inheritance {
        flags.push("deny-inheritance");
    }
    let mut line = format!(
        "{:indent$}{}  ttl {} min",
        "",
        t.id,
        t.ttl,
        indent = indent * 2
    );
    if let Some(e) = &t.expired_date {
        line.push_str(&format!("  expires {e}"));
    }
    if !flags.is_empty() {
        line.push_str(&format!("  [{}]", flags.join(", ")));
    }
    if !t.comment.is_empty() {
        line.push_str(&format!("  {}", t.comment));
    }
    text.push_str(&line);
    text.push('\n');
    for child in t.children.values() {
        render(child, indent + 1, text);
    }
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

    #[test]
    fn akeyless_style_uid_commands() {
        let Command::CreateAuthMethodUniversalIdentity(a) = parse(&[
            "create-auth-method-universal-identity",
            "--name",
            "/m",
            "--ttl",
            "30",
            "--deny-rotate",
            "--deny-inheritance",
            "false",
            "--bound-ips",
            "10.0.0.0/8",
        ]) else {
            panic!("wrong command")
        };
        let req: CreateAuthMethodUniversalIdentity = a.into();
        assert_eq!(req.ttl, Some(30));
        assert_eq!(req.deny_rotate, Some(true));
        assert_eq!(req.deny_inheritance, Some(false));
        assert_eq!(req.common.bound_ips, ["10.0.0.0/8"]);
        let Command::UidRotateToken(a) = parse(&["uid-rotate-token", "--uid-token", "u-1"]) else {
            panic!("wrong command")
        };
        assert_eq!(a.global.uid_token.unwrap().expose_secret(), "u-1");
        let Command::UidRevokeToken(a) = parse(&[
            "uid-revoke-token",
            "--revoke-token",
            "uid-x",
            "--revoke-type",
            "revokeAll",
            "--auth-method-name",
            "/m",
        ]) else {
            panic!("wrong command")
        };
        assert_eq!(a.revoke_type, "revokeAll");
        assert!(
            Cli::try_parse_from([
                "coffer",
                "uid-revoke-token",
                "--revoke-token",
                "uid-x",
                "--revoke-type",
                "revokeSome"
            ])
            .is_err()
        );
        let Command::UidCreateChildToken(a) = parse(&[
            "uid-create-child-token",
            "--uid-token",
            "u-1",
            "--child-ttl",
            "5",
            "--child-deny-rotate",
            "--comment",
            "agent",
        ]) else {
            panic!("wrong command")
        };
        assert_eq!(a.child_ttl, Some(5));
        assert_eq!(a.child_deny_rotate, Some(true));
        assert_eq!(a.description.as_deref(), Some("agent"));
        assert!(matches!(
            parse(&["uid-list-children", "--auth-method-name", "/m"]),
            Command::UidListChildren(_)
        ));
        assert!(matches!(
            parse(&["uid-generate-token", "--auth-method-name", "/m"]),
            Command::UidGenerateToken(_)
        ));
    }

    #[test]
    fn tree_rendering() {
        let leaf = UidTokenDetails {
            id: "uid-c".into(),
            ttl: 5,
            revoked: true,
            comment: "agent".into(),
            ..Default::default()
        };
        let root = UidTokenDetails {
            id: "uid-r".into(),
            ttl: 60,
            expired_date: Some("2030-01-01 00:00:00 +0000 UTC".into()),
            children: [("uid-c".to_string(), leaf)].into(),
            ..Default::default()
        };
        let mut text = String::new();
        render(&root, 0, &mut text);
        assert_eq!(
            text,
            "uid-r  ttl 60 min  expires 2030-01-01 00:00:00 +0000 UTC\n  uid-c  ttl 5 min  [revoked]  agent\n"
        );
    }
}
