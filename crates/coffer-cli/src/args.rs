//! Command-line syntax. Subcommands and flags mirror the Akeyless CLI:
//! kebab-case commands named after the wire operations, flags named after
//! the wire keys, the same short flags (`-n`, `-v`, `-r`, `-a`, `-s`, `-c`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use coffer_server::ServerArgs;
use coffer_server::offline::OfflineArgs;
use secrecy::SecretString;

/// Gateway used when neither a flag, `COFFER_GATEWAY_URL` nor the profile names one.
pub const DEFAULT_GATEWAY_URL: &str = "http://127.0.0.1:8200";

#[derive(Debug, Parser)]
#[command(
    name = "coffer",
    version,
    about = "Coffer: a self-hosted secrets manager for CI/CD with an Akeyless-compatible API",
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Coffer server.
    Server(ServerCommand),
    /// Save a login profile (~/.coffer/profiles/<name>.toml).
    Configure(ConfigureArgs),
    /// Remove a login profile and its cached token.
    Unconfigure(UnconfigureArgs),
    /// Log in and print the token (cached for the profile).
    Auth(AuthArgs),
    /// Check a token and show when it expires.
    ValidateToken(NoArgs),
    /// Revoke the token in use.
    RevokeToken(NoArgs),
    /// Print the value of one or more static secrets.
    GetSecretValue(GetSecretValueArgs),
    /// Create a static secret.
    CreateSecret(CreateSecretArgs),
    /// Store a new version of a static secret.
    UpdateSecretVal(UpdateSecretValArgs),
    /// Show an item's metadata.
    DescribeItem(DescribeItemArgs),
    /// List items and folders.
    ListItems(ListItemsArgs),
    /// Delete an item or one of its versions.
    DeleteItem(DeleteItemArgs),
    /// Create an API-key auth method (prints its access ID and key).
    CreateAuthMethod(CreateAuthMethodArgs),
    /// Create an OAuth2/JWT auth method for CI job ID tokens (GitLab, GitHub, OIDC).
    #[command(alias = "auth-method-create-oauth2")]
    CreateAuthMethodOauth2(CreateAuthMethodOauth2Args),
    /// Show an auth method.
    GetAuthMethod(NameArgs),
    /// List auth methods.
    ListAuthMethods(NoArgs),
    /// Delete an auth method (its tokens stop working).
    DeleteAuthMethod(NameArgs),
    /// Create an access role.
    CreateRole(CreateRoleArgs),
    /// Show an access role with its rules and associations.
    GetRole(NameArgs),
    /// List access roles.
    ListRoles(NoArgs),
    /// Delete an access role.
    DeleteRole(NameArgs),
    /// Set the capabilities of a role on a path.
    SetRoleRule(SetRoleRuleArgs),
    /// Remove a role's rule on a path.
    DeleteRoleRule(DeleteRoleRuleArgs),
    /// Associate a role with an auth method.
    AssocRoleAm(AssocRoleAmArgs),
    /// Remove a role / auth method association.
    DeleteAssoc(DeleteAssocArgs),
    /// Read and verify the audit log (online, or offline with --data-dir/--storage).
    Audit(AuditCommand),
    /// Local development helpers.
    Dev(DevCommand),
}

/// Flags shared by every command that talks to a gateway.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Gateway URL (precedence: this flag, COFFER_GATEWAY_URL, the profile, http://127.0.0.1:8200).
    #[arg(long, env = "COFFER_GATEWAY_URL")]
    pub gateway_url: Option<String>,
    /// Login profile.
    #[arg(long, env = "COFFER_PROFILE", default_value = "default")]
    pub profile: String,
    /// Use this token instead of the profile's cached or new login.
    #[arg(long, value_parser = secret)]
    pub token: Option<SecretString>,
    /// Use this Universal Identity token.
    #[arg(long, value_parser = secret, conflicts_with = "token")]
    pub uid_token: Option<SecretString>,
    /// Print the server's JSON response.
    #[arg(long)]
    pub json: bool,
    /// Extra CA certificate (PEM) to trust for the gateway.
    #[arg(long, env = "COFFER_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
}

/// Parse a flag value straight into a [`SecretString`].
pub fn secret(value: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(value))
}

/// `key=v1,v2` → (key, [v1, v2]).
fn sub_claim(value: &str) -> Result<(String, Vec<String>), String> {
    let (key, values) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?} is not key=value[,value…]"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("{value:?} has an empty key"));
    }
    let values: Vec<String> = values
        .split(',')
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
        .collect();
    if values.is_empty() {
        return Err(format!("{value:?} has no value"));
    }
    Ok((key.to_string(), values))
}

#[derive(Debug, Args)]
pub struct ServerCommand {
    #[command(flatten)]
    pub args: ServerArgs,
}

#[derive(Debug, Args)]
pub struct ConfigureArgs {
    /// Profile name.
    #[arg(long, env = "COFFER_PROFILE", default_value = "default")]
    pub profile: String,
    /// Access ID (p-…).
    #[arg(long)]
    pub access_id: String,
    /// Access key (for access_key/api_key; "-" reads it from standard input).
    #[arg(long, env = "COFFER_ACCESS_KEY", value_parser = secret, hide_env_values = true, allow_hyphen_values = true)]
    pub access_key: Option<SecretString>,
    /// Access type.
    #[arg(long, default_value = "access_key")]
    pub access_type: String,
    /// Gateway URL stored in the profile.
    #[arg(long)]
    pub gateway_url: Option<String>,
    /// CA certificate (PEM) stored in the profile.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UnconfigureArgs {
    /// Profile name.
    #[arg(long, env = "COFFER_PROFILE", default_value = "default")]
    pub profile: String,
}

#[derive(Debug, Args)]
pub struct AuthArgs {
    /// Access ID (default: the profile's).
    #[arg(long)]
    pub access_id: Option<String>,
    /// access_key (alias api_key) or jwt.
    #[arg(long)]
    pub access_type: Option<String>,
    /// Access key ("-" reads it from standard input).
    #[arg(long, env = "COFFER_ACCESS_KEY", value_parser = secret, hide_env_values = true, allow_hyphen_values = true)]
    pub access_key: Option<SecretString>,
    /// JWT for --access-type jwt.
    #[arg(long, value_parser = secret)]
    pub jwt: Option<SecretString>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct NoArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// Name.
    #[arg(short = 'n', long)]
    pub name: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GetSecretValueArgs {
    /// Secret name (repeat for several).
    #[arg(short = 'n', long = "name", required = true)]
    pub names: Vec<String>,
    /// Version to read (default: the latest).
    #[arg(long, allow_negative_numbers = true)]
    pub version: Option<i64>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct CreateSecretArgs {
    /// Secret name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Value ("-" reads it from standard input, as is).
    #[arg(short = 'v', long, value_parser = secret)]
    pub value: SecretString,
    /// text, json or key-value.
    #[arg(long)]
    pub format: Option<String>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// Tag (repeatable).
    #[arg(long = "tag", alias = "tags")]
    pub tags: Vec<String>,
    /// Number of versions to keep.
    #[arg(long)]
    pub max_versions: Option<i64>,
    /// generic or password.
    #[arg(long = "type")]
    pub secret_type: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct UpdateSecretValArgs {
    /// Secret name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// New value ("-" reads it from standard input, as is).
    #[arg(short = 'v', long, value_parser = secret)]
    pub value: SecretString,
    /// Keep the previous versions (true/false, default true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub keep_prev_version: Option<bool>,
    /// text, json or key-value.
    #[arg(long)]
    pub format: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct DescribeItemArgs {
    /// Item name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Include the versions.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub show_versions: Option<bool>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct ListItemsArgs {
    /// Folder to list (default /).
    #[arg(long)]
    pub path: Option<String>,
    /// Only names containing this.
    #[arg(long)]
    pub filter: Option<String>,
    /// Item type (repeatable), e.g. static-secret.
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// Continue from a previous page.
    #[arg(long)]
    pub pagination_token: Option<String>,
    /// Fewer details per item.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub minimal_view: Option<bool>,
    /// Only direct children of --path, plus sub-folders.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub current_folder: Option<bool>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct DeleteItemArgs {
    /// Item name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Version to delete (-1 or absent: the whole item).
    #[arg(long, allow_negative_numbers = true)]
    pub version: Option<i64>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct CreateAuthMethodArgs {
    /// Auth method name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Unix time after which it cannot log in (0 = never).
    #[arg(long)]
    pub access_expires: Option<i64>,
    #[command(flatten)]
    pub common: AuthMethodCommonArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

/// Options every auth-method type takes.
#[derive(Debug, Args)]
pub struct AuthMethodCommonArgs {
    /// Allowed client IPs/CIDRs (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub bound_ips: Vec<String>,
    /// Token lifetime in minutes (0 = server default).
    #[arg(long)]
    pub jwt_ttl: Option<i64>,
    /// Require sub-claims on every role association (default: on for
    /// JWT-type methods, off for API keys).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub force_sub_claims: Option<bool>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
}

impl From<AuthMethodCommonArgs> for coffer_client::ops::AuthMethodCommon {
    fn from(a: AuthMethodCommonArgs) -> Self {
        coffer_client::ops::AuthMethodCommon {
            bound_ips: a.bound_ips,
            jwt_ttl: a.jwt_ttl,
            force_sub_claims: a.force_sub_claims,
            description: a.description,
        }
    }
}

#[derive(Debug, Args)]
pub struct CreateAuthMethodOauth2Args {
    /// Auth method name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// URL of the issuer's JWKS (https; http only for loopback),
    /// e.g. https://gitlab.example.com/oauth/discovery/keys.
    #[arg(
        long,
        required_unless_present = "jwks_json_data",
        conflicts_with = "jwks_json_data"
    )]
    pub jwks_uri: Option<String>,
    /// The JWKS itself, base64-encoded (instead of --jwks-uri).
    #[arg(long)]
    pub jwks_json_data: Option<String>,
    /// The claim that names the caller, e.g. user_login, sub or repository.
    #[arg(long)]
    pub unique_identifier: String,
    /// Required iss claim.
    #[arg(long)]
    pub issuer: Option<String>,
    /// Required aud claim (tokens without aud are then refused).
    #[arg(long)]
    pub audience: Option<String>,
    /// Accepted azp/client_id values (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub bound_client_ids: Vec<String>,
    #[command(flatten)]
    pub common: AuthMethodCommonArgs,
    /// Refuse a second login with the same jti (true/false, default false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub refuse_replay: Option<bool>,
    /// event_name values to refuse (default pull_request_target,workflow_run; "none" for none).
    #[arg(long, value_delimiter = ',')]
    pub refuse_events: Vec<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct DevCommand {
    #[command(subcommand)]
    pub command: DevSubcommand,
}

#[derive(Debug, Subcommand)]
pub enum DevSubcommand {
    /// Run a local OIDC issuer (discovery document + JWKS) on loopback, or
    /// mint ID tokens from one (`coffer dev oidc mint`). For testing only.
    Oidc(DevOidcArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DevOidcArgs {
    #[command(subcommand)]
    pub action: Option<DevOidcAction>,
    /// Address to listen on (loopback only; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8900")]
    pub listen: std::net::SocketAddr,
    /// Keep the RS256 signing key in this PEM file (created if missing), so
    /// the JWKS stays the same across restarts.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// The issuer URL put in tokens and the discovery document (default http://<listen>).
    #[arg(long)]
    pub issuer_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DevOidcAction {
    /// Mint an ID token from a running `coffer dev oidc` and print it.
    Mint(DevOidcMintArgs),
}

#[derive(Debug, Args)]
pub struct DevOidcMintArgs {
    /// URL of the running dev issuer.
    #[arg(
        long,
        env = "COFFER_DEV_OIDC_URL",
        default_value = "http://127.0.0.1:8900"
    )]
    pub issuer_url: String,
    /// Claim shape: gitlab, github or plain.
    #[arg(long, default_value = "gitlab")]
    pub profile: String,
    /// Claim key=value, overriding the profile's default (repeatable).
    #[arg(long = "claim", value_parser = claim_pair)]
    pub claims: Vec<(String, String)>,
    /// Audience (repeatable).
    #[arg(long)]
    pub aud: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 300)]
    pub ttl: i64,
}

/// `key=value` (the value may contain '=' and ',').
fn claim_pair(value: &str) -> Result<(String, String), String> {
    let (k, v) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?} is not key=value"))?;
    if k.trim().is_empty() {
        return Err(format!("{value:?} has an empty key"));
    }
    Ok((k.trim().to_string(), v.to_string()))
}

#[derive(Debug, Args)]
pub struct CreateRoleArgs {
    /// Role name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// Audit log access: none, own or all.
    #[arg(long)]
    pub audit_access: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct SetRoleRuleArgs {
    /// Role name.
    #[arg(long)]
    pub role_name: String,
    /// Exact name or prefix ending in '*'.
    #[arg(long)]
    pub path: String,
    /// read, list, create, update, delete or deny (repeatable or comma-separated).
    #[arg(long, required = true, value_delimiter = ',')]
    pub capability: Vec<String>,
    /// item-rule (default), target-rule, role-rule or auth-method-rule.
    #[arg(long)]
    pub rule_type: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct DeleteRoleRuleArgs {
    /// Role name.
    #[arg(long)]
    pub role_name: String,
    /// The rule's path.
    #[arg(long)]
    pub path: String,
    /// The rule's type (default item-rule).
    #[arg(long)]
    pub rule_type: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct AssocRoleAmArgs {
    /// Role name.
    #[arg(short = 'r', long)]
    pub role_name: String,
    /// Auth method name.
    #[arg(short = 'a', long)]
    pub am_name: String,
    /// Sub-claim key=value1,value2 (repeatable).
    #[arg(short = 's', long = "sub-claim", alias = "sub-claims", value_parser = sub_claim)]
    pub sub_claims: Vec<(String, Vec<String>)>,
    /// Match sub-claims case-sensitively (true/false, default true).
    #[arg(short = 'c', long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub case_sensitive: Option<bool>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

impl AssocRoleAmArgs {
    /// Repeated keys accumulate their values.
    pub fn sub_claims_map(&self) -> BTreeMap<String, Vec<String>> {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (key, values) in &self.sub_claims {
            map.entry(key.clone())
                .or_default()
                .extend(values.iter().cloned());
        }
        map
    }
}

#[derive(Debug, Args)]
pub struct DeleteAssocArgs {
    /// Association ID.
    #[arg(long)]
    pub assoc_id: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct AuditCommand {
    #[command(subcommand)]
    pub command: AuditSubcommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditSubcommand {
    /// List audit records (newest filters first applied by the server).
    List(AuditListArgs),
    /// Verify the audit hash chain; exits non-zero when it is broken.
    Verify(AuditVerifyArgs),
}

#[derive(Debug, Args)]
pub struct AuditListArgs {
    /// Records at or after this time (RFC 3339 or Unix seconds).
    #[arg(long)]
    pub since: Option<String>,
    /// Records before this time (RFC 3339 or Unix seconds).
    #[arg(long)]
    pub until: Option<String>,
    /// Only this access ID.
    #[arg(long)]
    pub access_id: Option<String>,
    /// Only this item / object name.
    #[arg(long)]
    pub item: Option<String>,
    /// Only this operation, e.g. get-secret-value.
    #[arg(long)]
    pub operation: Option<String>,
    /// allowed, denied or error.
    #[arg(long)]
    pub outcome: Option<String>,
    /// At most this many records (default 100, max 10000).
    #[arg(long)]
    pub limit: Option<i64>,
    /// Records after this sequence number (paging).
    #[arg(long)]
    pub after_seq: Option<i64>,
    #[command(flatten)]
    pub offline: OfflineArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct AuditVerifyArgs {
    #[command(flatten)]
    pub offline: OfflineArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use secrecy::ExposeSecret;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("coffer").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn clap_definition_is_valid() {
        Cli::command().debug_assert();
    }

    #[test]
    fn akeyless_style_flags() {
        let Command::AssocRoleAm(a) = parse(&[
            "assoc-role-am",
            "-r",
            "role",
            "-a",
            "/am",
            "-s",
            "repo=a,b",
            "-s",
            "ref=main",
            "-s",
            "repo=c",
            "-c",
            "false",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(a.role_name, "role");
        assert_eq!(a.case_sensitive, Some(false));
        let map = a.sub_claims_map();
        assert_eq!(map["repo"], ["a", "b", "c"]);
        assert_eq!(map["ref"], ["main"]);

        let Command::GetSecretValue(g) = parse(&[
            "get-secret-value",
            "-n",
            "/a",
            "--name",
            "/b",
            "--version",
            "-2",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(g.names, ["/a", "/b"]);
        assert_eq!(g.version, Some(-2));
        assert_eq!(g.global.profile, "default");

        let Command::SetRoleRule(r) = parse(&[
            "set-role-rule",
            "--role-name",
            "r",
            "--path",
            "/app/*",
            "--capability",
            "read",
            "--capability",
            "list,update",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(r.capability, ["read", "list", "update"]);

        let Command::DescribeItem(d) =
            parse(&["describe-item", "-n", "/a", "--show-versions", "--json"]).command
        else {
            panic!()
        };
        assert_eq!(d.show_versions, Some(true));
        assert!(d.global.json);

        let Command::UpdateSecretVal(u) = parse(&[
            "update-secret-val",
            "-n",
            "/a",
            "-v",
            "x",
            "--keep-prev-version",
            "false",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(u.keep_prev_version, Some(false));
        assert_eq!(u.value.expose_secret(), "x");

        let Command::Auth(a) = parse(&[
            "auth",
            "--access-id",
            "p-x",
            "--access-type",
            "jwt",
            "--jwt",
            "eyJ",
            "--profile",
            "ci",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(a.access_type.as_deref(), Some("jwt"));
        assert_eq!(a.global.profile, "ci");
        assert!(!format!("{a:?}").contains("eyJ"));
    }

    #[test]
    fn usage_errors() {
        for bad in [
            &["get-secret-value"][..],
            &["assoc-role-am", "-r", "x", "-a", "y", "-s", "novalue"],
            &["validate-token", "--token", "a", "--uid-token", "b"],
            &["create-secret", "-n", "x"],
        ] {
            let err = Cli::try_parse_from(std::iter::once("coffer").chain(bad.iter().copied()))
                .unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn audit_offline_and_server_flags() {
        let Command::Audit(AuditCommand {
            command: AuditSubcommand::Verify(v),
        }) = parse(&["audit", "verify", "--data-dir", "/tmp/d"]).command
        else {
            panic!()
        };
        assert!(v.offline.is_set());
        let Command::Server(s) = parse(&[
            "server",
            "--dev",
            "--data-dir",
            "/tmp/d",
            "--listen",
            "127.0.0.1:18999",
        ])
        .command
        else {
            panic!()
        };
        assert!(s.args.dev);
    }

    #[test]
    fn oauth2_and_dev_oidc_flags() {
        let Command::CreateAuthMethodOauth2(a) = parse(&[
            "auth-method-create-oauth2",
            "--name",
            "/ci",
            "--jwks-uri",
            "https://gitlab.example.com/oauth/discovery/keys",
            "--unique-identifier",
            "user_login",
            "--force-sub-claims",
            "false",
            "--audience",
            "coffer",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(a.common.force_sub_claims, Some(false));
        assert!(
            Cli::try_parse_from([
                "coffer",
                "create-auth-method-oauth2",
                "--name",
                "x",
                "--unique-identifier",
                "sub"
            ])
            .is_err(),
            "a JWKS source is required"
        );
        let Command::Dev(DevCommand {
            command: DevSubcommand::Oidc(o),
        }) = parse(&[
            "dev",
            "oidc",
            "mint",
            "--issuer-url",
            "http://127.0.0.1:1",
            "--claim",
            "ref=main",
            "--aud",
            "coffer",
        ])
        .command
        else {
            panic!()
        };
        let Some(DevOidcAction::Mint(m)) = o.action else {
            panic!()
        };
        assert_eq!(m.claims, [("ref".to_string(), "main".to_string())]);
        assert_eq!(m.ttl, 300);
        let Command::Dev(DevCommand {
            command: DevSubcommand::Oidc(o),
        }) = parse(&["dev", "oidc", "--listen", "127.0.0.1:0"]).command
        else {
            panic!()
        };
        assert!(o.action.is_none());
    }
}
