//! `coffer ci`: GitLab `secrets:` blocks in any CI, `akeyless://`
//! references, and the Azure DevOps task equivalents.

use std::collections::BTreeSet;
use std::io::IsTerminal as _;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use coffer_ci::gitlab::{self, Variables};
use coffer_ci::providers::{Env, akeyless};
use coffer_ci::resolve::{self, Options, Resolved};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::ci_args::{
    CiAuthArgs, CiCommand, CiEnvArgs, CiFormat, CiGetDynamicArgs, CiGetRotatedArgs,
    CiGetSecretsArgs, CiJobArgs, CiLoginArgs, CiPipelineArgs, CiResolveArgs, CiRunArgs,
    CiSubcommand,
};
use crate::session::secret_or_stdin;

/// The variables `coffer ci` logs in with (`--access-key`, `--jwt`,
/// `--token`, `--uid-token`): removed from the environment of `coffer ci
/// run`'s command and masked in its output.
const LOGIN_ENV: [&str; 4] = [
    "AKEYLESS_ACCESS_KEY",
    "AKEYLESS_JWT",
    "AKEYLESS_TOKEN",
    "AKEYLESS_UID_TOKEN",
];

/// GitHub's bearer token for requesting ID tokens: masked in `coffer ci
/// run`'s output, left in the environment (every step of the job has it).
const GITHUB_ID_TOKEN_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";

/// How the `ci` commands reach the network: whether plain `http://` to
/// hosts that are not loopback is allowed, and the host environment the
/// providers read (with that decision in it).
struct Net {
    allow_insecure_http: bool,
    env: Env,
    /// The API URL for secrets and logins that name none, and where it
    /// came from (before the public SaaS default).
    fallback: Option<(String, String)>,
}

/// The gateway `coffer ci` uses when a secret or login names no API URL:
/// `COFFER_GATEWAY_URL`, else `AKEYLESS_GATEWAY_URL`, else the gateway of
/// the profile (`COFFER_PROFILE`, default `default`). With its source.
fn fallback_gateway() -> Option<(String, String)> {
    use crate::session::env_var;
    for name in ["COFFER_GATEWAY_URL", "AKEYLESS_GATEWAY_URL"] {
        if let Some(url) = env_var(name) {
            return Some((url.trim().to_owned(), name.to_owned()));
        }
    }
    let profile_name = env_var("COFFER_PROFILE").unwrap_or_else(|| "default".to_owned());
    let home = crate::profile::CofferHome::from_env().ok()?;
    let url = home.read_profile(&profile_name).ok()??.gateway_url?;
    Some((url, format!("profile {profile_name}")))
}

/// Where the fallback API URL came from (see [`fallback_gateway`]), for
/// the providers' view of the environment next to
/// [`akeyless::FALLBACK_API_URL_VAR`].
const FALLBACK_SOURCE_VAR: &str = "COFFER_CI_FALLBACK_SOURCE";

/// Say so (stderr) when the secrets `unnamed` (which name no API URL) go
/// to the gateway of a profile: the job's credentials are sent there only
/// because the profile exists, so never silently. A gateway named in
/// COFFER_GATEWAY_URL / AKEYLESS_GATEWAY_URL is the user's choice.
fn note_profile_fallback(what: &str, url: &str, source: &str) {
    if source.starts_with("profile") {
        eprintln!(
            "note: {what} use{} {url}, the gateway of {source}: nothing in the job names an API URL (akeyless_api_url, AKEYLESS_API_URL)",
            if what.contains(',') { "" } else { "s" },
        );
    }
}

/// [`note_profile_fallback`] or [`note_saas_default`] for the job's
/// secrets that name no API URL.
fn note_default_api(job: &gitlab::Job, vars: &Variables, env: &Env) {
    let unnamed =
        resolve::saas_default_vars(job, vars, &Env::from_pairs(Vec::<(String, String)>::new()));
    if unnamed.is_empty() {
        return;
    }
    match (
        env.get(akeyless::FALLBACK_API_URL_VAR),
        env.get(FALLBACK_SOURCE_VAR),
    ) {
        (Some(url), Some(source)) => note_profile_fallback(&unnamed.join(", "), &url, &source),
        (Some(_), None) => {}
        (None, _) => note_saas_default(&unnamed.join(", ")),
    }
}

/// Say so (stderr) when the public Akeyless SaaS is used because nothing
/// named another API URL.
fn note_saas_default(what: &str) {
    eprintln!(
        "note: {what} use{} the public Akeyless SaaS {}: nothing names another API (akeyless_api_url, AKEYLESS_API_URL, COFFER_GATEWAY_URL or the profile's gateway: `coffer configure --gateway-url URL`)",
        if what.contains(',') { "" } else { "s" },
        akeyless::DEFAULT_API_URL
    );
}

pub(super) async fn run(c: CiCommand) -> anyhow::Result<()> {
    // `--allow-insecure-http[=BOOL]`, or COFFER_ALLOW_INSECURE_HTTP (clap
    // merged it, flag first), is what the providers see.
    let allow_insecure_http = c.allow_insecure_http.unwrap_or(false);
    let fallback = fallback_gateway();
    let mut overrides = vec![(
        coffer_ci::providers::ALLOW_INSECURE_HTTP_VAR.to_owned(),
        if allow_insecure_http { "1" } else { "0" }.to_owned(),
    )];
    if let Some((url, source)) = &fallback {
        overrides.push((akeyless::FALLBACK_API_URL_VAR.to_owned(), url.clone()));
        overrides.push((FALLBACK_SOURCE_VAR.to_owned(), source.clone()));
    }
    let net = Net {
        allow_insecure_http,
        env: Env::process_with(overrides),
        fallback,
    };
    match c.command {
        CiSubcommand::Resolve(a) => resolve_cmd(a, &net).await,
        CiSubcommand::Run(a) => run_cmd(a, &net).await,
        CiSubcommand::Explain(a) => explain_cmd(a, &net).await,
        CiSubcommand::Env(a) => env_cmd(a, &net).await,
        CiSubcommand::Auth(a) => auth_cmd(a, &net).await,
        CiSubcommand::GetSecrets(a) => get_secrets_cmd(a, &net).await,
        CiSubcommand::GetDynamicSecret(a) => get_dynamic_cmd(a, &net).await,
        CiSubcommand::GetRotatedSecret(a) => get_rotated_cmd(a, &net).await,
    }
}

/// The CI/CD variables: this process's environment, then `--var`.
fn variables(extra: &[String]) -> anyhow::Result<Variables> {
    let mut vars = Variables::from_env();
    for kv in extra {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--var {kv:?}: expected NAME=VALUE"))?;
        vars.insert(k.trim(), v);
    }
    Ok(vars)
}

/// Load and validate the job, obtain its ID tokens, and compute the
/// expansion variables.
async fn prepare(
    file: &std::path::Path,
    job_name: &str,
    extra: &[String],
    id_tokens: &[String],
    env: &Env,
) -> anyhow::Result<(gitlab::Job, Variables)> {
    let ci_vars = variables(extra)?;
    let job = gitlab::load_file(file, job_name, &ci_vars)?;
    let given = coffer_ci::id_tokens::parse_given(id_tokens)?;
    let mut env_vars = ci_vars;
    coffer_ci::id_tokens::provide(&job, &mut env_vars, &given, env).await?;
    let vars = job.expansion_variables(&env_vars);
    note_default_api(&job, &vars, env);
    Ok((job, vars))
}

fn options(concurrency: usize) -> Options {
    let progress: Option<Arc<dyn Fn(usize, usize) + Send + Sync>> =
        if std::io::stderr().is_terminal() {
            Some(Arc::new(|done, total| {
                eprint!("\r\x1b[2Kresolving secrets: {done}/{total}");
                if done == total {
                    eprintln!();
                }
            }))
        } else {
            None
        };
    let fail_if_missing = std::env::var("FF_SECRET_RESOLVING_FAILS_IF_MISSING")
        .map(|v| !matches!(v.trim(), "false" | "0"))
        .unwrap_or(true);
    Options {
        concurrency,
        fail_if_missing,
        progress,
    }
}

/// The job's secrets, resolved, and the credentials they logged in with.
async fn resolve_job(
    job_name: &str,
    p: &CiPipelineArgs,
    env: &Env,
) -> anyhow::Result<(Vec<resolve::LoginCredential>, Vec<Resolved>)> {
    let (job, vars) = prepare(&p.file, job_name, &p.vars, &p.id_tokens, env).await?;
    let credentials = resolve::login_credentials(&job, &vars);
    let resolved = resolve::resolve(&job, &vars, env, &options(p.concurrency)).await?;
    Ok((credentials, resolved))
}

async fn resolve_cmd(a: CiResolveArgs, net: &Net) -> anyhow::Result<()> {
    check_format(a.format)?;
    let (_, resolved) = resolve_job(&a.job.job, &a.job.pipeline, &net.env).await?;
    let pairs: Vec<(String, SecretString)> =
        resolved.into_iter().map(|r| (r.var, r.value)).collect();
    emit(a.format, &pairs)
}

async fn explain_cmd(a: CiJobArgs, net: &Net) -> anyhow::Result<()> {
    let p = &a.pipeline;
    let ci_vars = variables(&p.vars)?;
    let job = gitlab::load_file(&p.file, &a.job, &ci_vars)?;
    let given = coffer_ci::id_tokens::parse_given(&p.id_tokens)?;
    let mut env_vars = ci_vars;
    // Tokens given on the command line count; nothing is requested.
    for (k, v) in &given {
        env_vars.insert(k.clone(), v.expose_secret().to_owned());
    }
    let vars = job.expansion_variables(&env_vars);
    let explained = resolve::explain(&job, &vars, &net.env);
    note_default_api(&job, &vars, &net.env);
    let mut out = format!("job {} ({} secret(s))\n", job.name, explained.len());
    let mut missing_tokens = 0;
    let mut tokens_json = Vec::new();
    for (name, t) in &job.id_tokens {
        let aud = t.audiences(&vars).join(", ");
        let source = if given.contains_key(name) {
            "--id-token".to_owned()
        } else if vars.get(name).is_some_and(|v| !v.is_empty()) {
            "variable".to_owned()
        } else if std::env::var_os("ACTIONS_ID_TOKEN_REQUEST_URL").is_some() {
            "GitHub Actions OIDC".to_owned()
        } else {
            missing_tokens += 1;
            let first_aud = t.audiences(&vars).into_iter().next().unwrap_or_default();
            format!(
                "NOT SET: ${name} is not set and no --id-token {name}=… was given. In the CI job, declare it under id_tokens: (GitLab) or grant `permissions: id-token: write` (GitHub Actions); elsewhere pass --id-token {name}=VALUE (or {name}=@FILE), or mint a test token from a local issuer: `coffer dev oidc` then --id-token {name}=$(coffer dev oidc mint --aud {})",
                if first_aud.is_empty() {
                    "AUDIENCE"
                } else {
                    &first_aud
                }
            )
        };
        out.push_str(&format!("id_token {name}: aud {aud}; from {source}\n"));
        tokens_json.push(json!({"name": name, "aud": t.audiences(&vars), "source": source}));
    }
    let mut problems = 0;
    for e in &explained {
        out.push_str(&format!("\n{}\n", e.var));
        for (k, v) in [
            ("provider", e.provider.to_string()),
            ("endpoint", e.endpoint.clone()),
            ("identity", e.identity.clone()),
            ("token", e.token.clone()),
            ("fetches", e.item.clone()),
            ("lands in", e.destination.clone()),
        ] {
            if !v.is_empty() {
                out.push_str(&format!("  {k:<9} {v}\n"));
            }
        }
        if let Some(p) = &e.problem {
            problems += 1;
            out.push_str(&format!("  PROBLEM   {p}\n"));
        }
    }
    if crate::output::json_wanted() {
        let secrets: Vec<Value> = explained
            .iter()
            .map(|e| {
                json!({
                    "var": e.var, "provider": e.provider.to_string(), "endpoint": e.endpoint,
                    "identity": e.identity, "token": e.token, "fetches": e.item,
                    "destination": e.destination, "problem": e.problem,
                })
            })
            .collect();
        crate::output::emit_json(
            &json!({"job": job.name, "id_tokens": tokens_json, "secrets": secrets}),
        )?;
    } else {
        print!("{out}");
    }
    if problems > 0 {
        let tokens = if missing_tokens > 0 {
            format!(" ({missing_tokens} ID token(s) not set: see above)")
        } else {
            String::new()
        };
        bail!("{problems} secret(s) cannot be resolved as configured{tokens}");
    }
    Ok(())
}

async fn run_cmd(a: CiRunArgs, net: &Net) -> anyhow::Result<()> {
    crate::output::refuse_json("ci run", "the output is the command's own")?;
    let mut secrets: Vec<Resolved> = Vec::new();
    // (label, value) of every credential used to log in, and the variables
    // that hold them.
    let mut credentials: Vec<(String, SecretString)> = Vec::new();
    let mut login_vars: BTreeSet<String> = LOGIN_ENV.iter().map(|v| (*v).to_owned()).collect();
    if let Some(job) = &a.job {
        let (used, resolved) = resolve_job(job, &a.pipeline, &net.env).await?;
        for c in used {
            login_vars.extend(c.variables);
            credentials.push((c.label, c.value));
        }
        secrets = resolved;
    } else if !a.resolve_refs {
        bail!(
            "nothing to resolve: pass --job NAME (a job's secrets:) and/or --resolve-refs (akeyless:// variables)"
        );
    }
    if a.resolve_refs {
        let (pairs, credential) = resolve_refs(&a.login, net).await?;
        if let Some(c) = credential {
            credentials.push(("the --resolve-refs login credential".to_owned(), c));
        }
        for (var, value) in pairs {
            secrets.push(Resolved {
                var,
                file: false,
                value,
            });
        }
    }
    // The login variables are credentials whether or not this run used
    // them; GitHub's ID-token request token is masked only.
    for name in LOGIN_ENV.iter().chain([&GITHUB_ID_TOKEN_REQUEST_TOKEN]) {
        if let Ok(value) = std::env::var(name) {
            credentials.push(((*name).to_owned(), SecretString::from(value)));
        }
    }
    let credentials = dedup_values(credentials);
    // Any other variable holding exactly a credential (e.g. behind a job
    // variable that refers to it) goes too.
    for (name, value) in std::env::vars_os() {
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
            continue;
        };
        let value = value.trim();
        if value.chars().count() >= coffer_ci::mask::MIN_MASKED_CHARS
            && credentials
                .iter()
                .any(|(_, c)| c.expose_secret().trim() == value)
        {
            login_vars.insert(name.to_owned());
        }
    }
    login_vars.remove(GITHUB_ID_TOKEN_REQUEST_TOKEN);
    let env_remove = if a.keep_login_env {
        Vec::new()
    } else {
        login_vars.into_iter().collect()
    };
    let code = run_child(secrets, a.secrets_dir, a.command, env_remove, credentials).await?;
    std::process::exit(code);
}

/// Keeps the first (label, value) of each distinct value (trimmed), so a
/// credential known under several names is masked, and warned about, once.
fn dedup_values(pairs: Vec<(String, SecretString)>) -> Vec<(String, SecretString)> {
    let mut out: Vec<(String, SecretString)> = Vec::new();
    for (label, value) in pairs {
        let v = value.expose_secret().trim();
        if !v.is_empty() && !out.iter().any(|(_, o)| o.expose_secret().trim() == v) {
            out.push((label, value));
        }
    }
    out
}

/// Environment variables whose value is `akeyless://NAME` / `coffer://NAME`.
fn refs_in_env() -> Vec<(String, String)> {
    let mut refs: Vec<(String, String)> = std::env::vars()
        .filter_map(|(k, v)| {
            let name = v
                .strip_prefix("akeyless://")
                .or_else(|| v.strip_prefix("coffer://"))?;
            let name = if name.starts_with('/') {
                name.to_owned()
            } else {
                format!("/{name}")
            };
            Some((k, name))
        })
        .collect();
    refs.sort();
    refs
}

/// Resolve every `akeyless://` reference of the environment with one login:
/// one `get-secret-value` call when they are all static secrets, otherwise
/// each by its type (dynamic and rotated secrets as their JSON text), all at
/// once. Also returns the credential the login used (none when there was
/// nothing to resolve).
async fn resolve_refs(
    login: &CiLoginArgs,
    net: &Net,
) -> anyhow::Result<(Vec<(String, SecretString)>, Option<SecretString>)> {
    use coffer_ci::providers::akeyless;
    let refs = refs_in_env();
    if refs.is_empty() {
        return Ok((Vec::new(), None));
    }
    let (client, token, credential) = login_with(login, net).await?;
    let names: Vec<String> = refs.iter().map(|(_, n)| n.clone()).collect();
    if let Some(out) = akeyless::fetch_static_batch(&client, &token, &names).await {
        let pairs = refs
            .into_iter()
            .map(|(var, name)| {
                let value = match out.get(&name) {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => bail!("{var}: secret {name} not found"),
                };
                Ok((var, SecretString::from(value)))
            })
            .collect::<anyhow::Result<_>>()?;
        return Ok((pairs, Some(credential)));
    }
    let fetched = futures::future::join_all(refs.iter().map(|(_, name)| {
        let item = akeyless::Item {
            name: name.clone(),
            ..Default::default()
        };
        let (client, token) = (&client, &token);
        async move { akeyless::fetch(client, token, &item).await }
    }))
    .await;
    let mut pairs = Vec::with_capacity(refs.len());
    for ((var, name), value) in refs.into_iter().zip(fetched) {
        let value = value.map_err(|e| {
            anyhow::anyhow!(
                "resolving akeyless:// references ({var}=akeyless://{}): {e}",
                name.trim_start_matches('/')
            )
        })?;
        pairs.push((var, value));
    }
    Ok((pairs, Some(credential)))
}

async fn env_cmd(a: CiEnvArgs, net: &Net) -> anyhow::Result<()> {
    check_format(a.format)?;
    let (pairs, _) = resolve_refs(&a.login, net).await?;
    if pairs.is_empty() {
        eprintln!("no environment variable holds an akeyless:// or coffer:// reference");
    }
    emit(a.format, &pairs)
}

/// Log in as the Azure DevOps tasks do (API key or JWT), or take a token.
/// Returns the client, the token and the credential used.
async fn login_with(
    a: &CiLoginArgs,
    net: &Net,
) -> anyhow::Result<(coffer_client::Client, coffer_client::Token, SecretString)> {
    let api_url = a
        .gateway_url
        .clone()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| crate::session::env_var("AKEYLESS_API_URL"))
        .or_else(|| {
            net.fallback.as_ref().map(|(url, source)| {
                note_profile_fallback("the login", url, source);
                url.clone()
            })
        })
        .unwrap_or_else(|| {
            note_saas_default("the login");
            akeyless::DEFAULT_API_URL.to_owned()
        });
    let ca_pem = match &a.ca_cert {
        Some(p) => Some(
            std::fs::read(p).with_context(|| format!("cannot read --ca-cert {}", p.display()))?,
        ),
        None => None,
    };
    let read = |s: &Option<SecretString>| s.clone().map(|v| secret_or_stdin(v, true)).transpose();
    let credential = if let Some(t) = read(&a.token)? {
        akeyless::Credential::Token(t)
    } else {
        let key = read(&a.access_key)?;
        let jwt = read(&a.jwt)?;
        let uid = read(&a.uid_token)?;
        let access_type = a.access_type.clone().unwrap_or_else(|| {
            if key.is_some() {
                "access_key".into()
            } else if uid.is_some() {
                "universal_identity".into()
            } else {
                "jwt".into()
            }
        });
        match access_type.as_str() {
            "access_key" | "api_key" => akeyless::Credential::AccessKey(
                key.context("--access-key (or AKEYLESS_ACCESS_KEY) is required for access type access_key")?,
            ),
            "jwt" | "oidc" => akeyless::Credential::Jwt(jwt.context(
                "log in with --access-key, --jwt (or AKEYLESS_ACCESS_KEY / AKEYLESS_JWT), --uid-token, or pass --token",
            )?),
            "universal_identity" => akeyless::Credential::Uid(
                uid.context("--uid-token is required for access type universal_identity")?,
            ),
            other => bail!("access type {other} is not supported here: use access_key, jwt or universal_identity"),
        }
    };
    let access_type = match &credential {
        akeyless::Credential::AccessKey(_) => "access_key",
        akeyless::Credential::Uid(_) => "universal_identity",
        _ => "jwt",
    };
    let login = akeyless::Login {
        api_url,
        access_id: a.access_id.clone().unwrap_or_default(),
        access_type: access_type.to_owned(),
        credential,
        ca_pem,
        allow_insecure_http: net.allow_insecure_http,
    };
    let used = login
        .credential_secret()
        .cloned()
        .unwrap_or_else(|| SecretString::from(String::new()));
    let client = login.client()?;
    let token = login.token(&client).await?;
    Ok((client, token, used))
}

async fn auth_cmd(a: CiAuthArgs, net: &Net) -> anyhow::Result<()> {
    check_format(a.format)?;
    let (_, token, _) = login_with(&a.login, net).await?;
    emit(
        a.format,
        &[("akeylessToken".to_owned(), token.secret().clone())],
    )
}

/// `out=/path,out2=/path2` (the Azure DevOps task's `secretsPaths`).
fn parse_secrets_paths(s: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .with_context(|| format!("--secrets-paths entry {part:?}: expected name=/path"))?;
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() || v.is_empty() {
            bail!("--secrets-paths entry {part:?}: expected name=/path");
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    if out.is_empty() {
        bail!("--secrets-paths is empty: expected name=/path[,name=/path…]");
    }
    Ok(out)
}

async fn get_secrets_cmd(a: CiGetSecretsArgs, net: &Net) -> anyhow::Result<()> {
    check_format(a.format)?;
    let paths = parse_secrets_paths(&a.secrets_paths)?;
    let (client, token, _) = login_with(&a.login, net).await?;
    let names: Vec<&str> = paths.iter().map(|(_, p)| p.as_str()).collect();
    let mut body = json!({"names": names});
    if let Some(v) = a.version {
        body["version"] = json!(v);
    }
    let out = client
        .call_with_token(&token, "get-secret-value", body)
        .await?;
    let mut pairs = Vec::new();
    for (var, path) in paths {
        let value = match out.get(&path) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => bail!("secret {path} not found in the response"),
        };
        pairs.push((var, SecretString::from(value)));
    }
    emit(a.format, &pairs)
}

async fn get_dynamic_cmd(a: CiGetDynamicArgs, net: &Net) -> anyhow::Result<()> {
    check_format(a.format)?;
    let (client, token, _) = login_with(&a.login, net).await?;
    let mut body = json!({"name": a.name});
    if let Some(t) = a.target {
        body["target"] = json!(t);
    }
    if let Some(t) = a.timeout {
        body["timeout"] = json!(t);
    }
    if !a.args.is_empty() {
        body["args"] = json!(a.args);
    }
    if let Some(h) = a.host {
        body["host"] = json!(h);
    }
    let out = client
        .call_with_token(&token, "get-dynamic-secret-value", body)
        .await?;
    emit(
        a.format,
        &[(
            "dynamicSecretValue".to_owned(),
            SecretString::from(out.to_string()),
        )],
    )
}

async fn get_rotated_cmd(a: CiGetRotatedArgs, net: &Net) -> anyhow::Result<()> {
    check_format(a.format)?;
    let (client, token, _) = login_with(&a.login, net).await?;
    let mut body = json!({"names": a.name});
    if let Some(v) = a.version {
        body["version"] = json!(v);
    }
    if let Some(h) = a.host {
        body["host"] = json!(h);
    }
    let out = client
        .call_with_token(&token, "get-rotated-secret-value", body)
        .await?;
    emit(
        a.format,
        &[(
            "rotatedSecretValue".to_owned(),
            SecretString::from(out.to_string()),
        )],
    )
}

/// Refuse, before anything is fetched, an output that cannot work here:
/// `--format github` outside GitHub Actions (its `::add-mask::` lines would
/// mask nothing, and the values would land in a file no runner reads).
fn check_format(format: CiFormat) -> anyhow::Result<()> {
    if format == CiFormat::Github
        && !crate::output::json_wanted()
        && std::env::var("GITHUB_ACTIONS").as_deref() != Ok("true")
    {
        return Err(crate::output::UsageError(
            "--format github works only inside GitHub Actions (GITHUB_ACTIONS=true): outside it nothing masks the values. Use --format env, dotenv or json here".to_owned(),
        )
        .into());
    }
    Ok(())
}

/// Print (or, for GitHub, write) resolved secrets in a CI's format;
/// `--json`/`--jq-expression` print one JSON object whatever the format.
fn emit(format: CiFormat, pairs: &[(String, SecretString)]) -> anyhow::Result<()> {
    use coffer_ci::format;
    use std::io::Write as _;
    if crate::output::json_wanted() {
        let map: serde_json::Map<String, Value> = pairs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.expose_secret().to_owned())))
            .collect();
        return crate::output::emit_json(&Value::Object(map));
    }
    let mut out = std::io::stdout().lock();
    match format {
        CiFormat::Env => out.write_all(format::env(pairs)?.as_bytes())?,
        CiFormat::Dotenv => out.write_all(format::dotenv(pairs)?.as_bytes())?,
        CiFormat::Json => out.write_all(format::json(pairs)?.as_bytes())?,
        CiFormat::Github => {
            let gh = format::github(pairs)?;
            for w in &gh.warnings {
                eprintln!("warning: {w}");
            }
            // Masks first, so no later log line shows a value.
            out.write_all(gh.commands.as_bytes())?;
            out.flush()?;
            let target = std::env::var_os("GITHUB_ENV")
                .context("--format github needs $GITHUB_ENV (run inside GitHub Actions, or set it to a file)")?;
            format::append_to_file(std::path::Path::new(&target), &gh.file).with_context(|| {
                format!("cannot append to $GITHUB_ENV {}", target.to_string_lossy())
            })?;
            if let Some(output) = std::env::var_os("GITHUB_OUTPUT") {
                format::append_to_file(std::path::Path::new(&output), &gh.file).with_context(
                    || {
                        format!(
                            "cannot append to $GITHUB_OUTPUT {}",
                            output.to_string_lossy()
                        )
                    },
                )?;
            }
        }
        CiFormat::AzureDevops => {
            let az = format::azure_devops(pairs, true)?;
            for w in &az.warnings {
                eprintln!("warning: {w}");
            }
            out.write_all(az.commands.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Run the command with the secrets injected and masked, without the
/// variables `env_remove`, with the login credentials masked too; its exit
/// code.
async fn run_child(
    secrets: Vec<Resolved>,
    dir: Option<std::path::PathBuf>,
    command: Vec<String>,
    env_remove: Vec<String>,
    mask_only: Vec<(String, SecretString)>,
) -> anyhow::Result<i32> {
    use coffer_ci::run::{RunSpec, SecretVar};
    let mut parts = command.into_iter();
    let program = parts.next().context("no command given after --")?;
    let secrets: Vec<SecretVar> = secrets
        .into_iter()
        .map(|r| SecretVar {
            name: r.var,
            value: r.value,
            file: r.file,
        })
        .collect();
    let mut spec = RunSpec::new(program, parts, secrets);
    spec.secret_dir_parent = dir;
    spec.env_remove = env_remove.into_iter().map(Into::into).collect();
    spec.mask_only = mask_only;
    // Masking warnings are printed by `run` before the command starts.
    let outcome = match coffer_ci::run::run(spec).await {
        Ok(outcome) => outcome,
        // As a shell does: 127 when the command does not exist, 126 when
        // it cannot be executed.
        Err(coffer_ci::run::RunError::Spawn { program, source })
            if matches!(
                source.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            let (code, why) = if source.kind() == std::io::ErrorKind::NotFound {
                (127, "command not found (check the name and PATH)")
            } else {
                (
                    126,
                    "permission denied: it is not executable (chmod +x) or is a directory",
                )
            };
            eprintln!("Error: cannot run {program:?}: {why}");
            return Ok(code);
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(e) = &outcome.cleanup_error {
        eprintln!("warning: the secret files could not all be removed: {e}");
    }
    Ok(outcome.exit_code)
}
