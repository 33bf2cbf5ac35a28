//! The job's `id_tokens:` outside GitLab.
//!
//! For each declared ID token, in order of preference:
//! 1. `--id-token NAME=VALUE` or `NAME=@file` on the command line (e.g. a
//!    token minted by `coffer dev oidc mint`);
//! 2. a variable `NAME` already set (on GitLab the runner sets it);
//! 3. on GitHub Actions, the OIDC request endpoint
//!    (`ACTIONS_ID_TOKEN_REQUEST_URL` + `ACTIONS_ID_TOKEN_REQUEST_TOKEN`,
//!    job permission `id-token: write`) with the token's `aud`.
//!
//! A token no secret uses is not requested.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};

use crate::gitlab::{Job, Variables};
use crate::providers::{self, Env};

#[derive(Debug, thiserror::Error)]
pub enum IdTokenError {
    #[error("--id-token {0}: expected NAME=VALUE or NAME=@file")]
    Syntax(String),
    #[error("--id-token {name}: cannot read {path}: {reason}")]
    File {
        name: String,
        path: String,
        reason: String,
    },
    #[error(
        "ID token {name} (aud {aud}) is not available: run in GitLab CI, in GitHub Actions with `permissions: id-token: write`, or pass --id-token {name}=@file (e.g. from `coffer dev oidc mint`)"
    )]
    Unavailable { name: String, aud: String },
    #[error("ID token {name}: the GitHub Actions OIDC endpoint failed: {reason}")]
    Github { name: String, reason: String },
}

/// Parse `NAME=VALUE` / `NAME=@file` options.
pub fn parse_given(options: &[String]) -> Result<BTreeMap<String, SecretString>, IdTokenError> {
    let mut out = BTreeMap::new();
    for opt in options {
        let Some((name, value)) = opt.split_once('=') else {
            return Err(IdTokenError::Syntax(
                opt.split('=').next().unwrap_or_default().to_owned(),
            ));
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(IdTokenError::Syntax(name.to_owned()));
        }
        let value = match value.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| IdTokenError::File {
                    name: name.to_owned(),
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?
                .trim()
                .to_owned(),
            None => value.trim().to_owned(),
        };
        out.insert(name.to_owned(), SecretString::from(value));
    }
    Ok(out)
}

/// The names of the ID tokens the job's secrets refer to (`$NAME`).
pub fn used_names(job: &Job) -> Vec<String> {
    job.id_tokens
        .keys()
        .filter(|name| {
            job.secrets.iter().any(|s| {
                job.jwt_reference(s)
                    .is_some_and(|r| r == format!("${name}") || r == format!("${{{name}}}"))
            })
        })
        .cloned()
        .collect()
}

/// Obtain every ID token the job's secrets use and add them to `vars`.
pub async fn provide(
    job: &Job,
    vars: &mut Variables,
    given: &BTreeMap<String, SecretString>,
    env: &Env,
) -> Result<(), IdTokenError> {
    for name in used_names(job) {
        let aud = job.id_tokens[&name].audiences(vars);
        if let Some(v) = given.get(&name) {
            vars.insert(name.clone(), v.expose_secret().to_owned());
            continue;
        }
        if vars.get(&name).is_some_and(|v| !v.is_empty()) {
            continue;
        }
        if let (Some(url), Some(bearer)) = (
            env.get("ACTIONS_ID_TOKEN_REQUEST_URL"),
            env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
        ) {
            let aud = aud.first().map(String::as_str).unwrap_or("");
            let token = github_token(&url, &bearer, aud, env)
                .await
                .map_err(|reason| IdTokenError::Github {
                    name: name.clone(),
                    reason,
                })?;
            vars.insert(name.clone(), token.expose_secret().to_owned());
            continue;
        }
        return Err(IdTokenError::Unavailable {
            name,
            aud: aud.join(","),
        });
    }
    Ok(())
}

/// GitHub Actions: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=<aud>` with
/// the request token → `{"value": "<JWT>"}`. The request token is a bearer
/// credential: plain `http://` off loopback is refused (unless
/// `COFFER_ALLOW_INSECURE_HTTP`) and a redirect is an error.
async fn github_token(
    url: &str,
    bearer: &str,
    aud: &str,
    env: &Env,
) -> Result<SecretString, String> {
    let mut url = reqwest::Url::parse(url).map_err(|e| format!("invalid request URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("invalid request URL: expected https://".into());
    }
    providers::check_plain_http("ACTIONS_ID_TOKEN_REQUEST_URL", &url, env, &[])
        .map_err(|e| e.to_string())?;
    if !aud.is_empty() {
        url.query_pairs_mut().append_pair("audience", aud);
    }
    let client = providers::http_client(providers::DEFAULT_TIMEOUT).map_err(|e| e.to_string())?;
    let response = client
        .get(url)
        .bearer_auth(bearer)
        .header("Accept", "application/json; api-version=2.0")
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timed out".to_owned()
            } else {
                "cannot connect".to_owned()
            }
        })?;
    providers::refuse_redirect("GitHub OIDC", &response).map_err(|e| e.to_string())?;
    let status = response.status();
    let body = providers::read_capped("GitHub OIDC", response)
        .await
        .map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    #[derive(serde::Deserialize)]
    struct Reply {
        value: SecretString,
    }
    serde_json::from_slice::<Reply>(&body)
        .map(|r| r.value)
        .map_err(|_| "the reply has no token value".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t.jwt");
        std::fs::write(&f, "eyJ.file.token\n").unwrap();
        let got = parse_given(&["A=eyJ.inline.x".into(), format!("B=@{}", f.display())]).unwrap();
        assert_eq!(got["A"].expose_secret(), "eyJ.inline.x");
        assert_eq!(got["B"].expose_secret(), "eyJ.file.token");
        assert!(parse_given(&["nope".into()]).is_err());
        assert!(parse_given(&["BAD NAME=x".into()]).is_err());
        assert!(
            parse_given(&["C=@/nonexistent/x".into()])
                .unwrap_err()
                .to_string()
                .contains("cannot read")
        );
    }
}
