//! `coffer dev oidc`: a local OIDC issuer and its token minting.

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::args::{DevCommand, DevOidcAction, DevOidcMintArgs, DevSubcommand};
use crate::output::emit;

pub(super) async fn run(a: DevCommand) -> anyhow::Result<()> {
    match a.command {
        DevSubcommand::Oidc(o) => match o.action {
            Some(DevOidcAction::Mint(m)) => mint(m).await,
            None => {
                crate::output::refuse_json("dev oidc", "it serves until stopped")?;
                coffer_server::dev_oidc::serve(o.listen, o.key_file.as_deref(), o.issuer_url).await
            }
        },
    }
}

/// Ask the running issuer for a token; print only the token, so
/// `TOKEN=$(coffer dev oidc mint …)` works.
async fn mint(m: DevOidcMintArgs) -> anyhow::Result<()> {
    let claims: BTreeMap<String, String> = m.claims.into_iter().collect();
    let url = format!("{}/mint", m.issuer_url.trim_end_matches('/'));
    let body = json!({"profile": m.profile, "claims": claims, "aud": m.aud, "ttl": m.ttl});
    let resp = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(coffer_client::transport::redirect_policy())
        .build()?
        .post(&url)
        .json(&body)
        .send()
        .await
        .with_context(|| {
            format!(
                "cannot reach the dev OIDC issuer at {}: start it with `coffer dev oidc`",
                m.issuer_url
            )
        })?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
        .with_context(|| format!("{url} did not answer JSON; is it `coffer dev oidc`?"))?;
    if !status.is_success() {
        bail!(
            "the dev OIDC issuer refused: {}",
            v["error"].as_str().unwrap_or("no reason given")
        );
    }
    let Some(token) = v["token"].as_str() else {
        bail!("the dev OIDC issuer answered without a token");
    };
    if crate::output::json_wanted() {
        return crate::output::emit_json(&v);
    }
    emit(token)
}
