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

use crate::db_args::{
    DynamicSecretCommand, DynamicSecretMysqlArgs, DynamicSecretPostgresqlArgs,
    GetDynamicSecretValueArgs, GetRotatedSecretValueArgs, LeaseCommand, RotatedSecretCommand,
    RotatedSecretCreateArgs, RotatedSecretUpdateArgs, TargetCreateDbArgs, TargetDeleteArgs,
    TargetListArgs, TargetUpdateDbArgs, TmpCredsDeleteArgs, TmpCredsUpdateArgs,
};
use crate::key_args::{
    CertCommand, CertListArgs, CertRevokeArgs, CreateClassicKeyArgs, CreateKeyArgs,
    CreatePkiCertIssuerArgs, CreateSshCertIssuerArgs, DecryptArgs, EncryptArgs,
    GetPkiCertificateArgs, GetSshCertificateArgs, KeyNameArgs, UpdateClassicKeyCertificateArgs,
    UpdatePkiCertIssuerArgs, UpdateSshCertIssuerArgs,
};

/// Gateway used when neither a flag, `COFFER_GATEWAY_URL` nor the profile names one.
pub(crate) const DEFAULT_GATEWAY_URL: &str = "http://127.0.0.1:8200";

#[derive(Debug, Parser)]
#[command(
    name = "coffer",
    version,
    about = "Coffer: a self-hosted secrets manager for CI/CD with an Akeyless-compatible API",
    disable_help_subcommand = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Print the server's answer as JSON (machine-readable).
    #[arg(long, global = true)]
    pub json: bool,
    /// Filter the JSON answer with a jq expression (implies --json); string
    /// results print raw, as `jq -r` does.
    #[arg(long, global = true, value_name = "EXPR", allow_hyphen_values = true)]
    pub jq_expression: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the Coffer server.
    Server(ServerCommand),
    /// Print Coffer's version.
    Version,
    /// Print a shell completion script: `source <(coffer completion bash)`,
    /// `coffer completion zsh > "${fpath[1]}/_coffer"`,
    /// `coffer completion fish > ~/.config/fish/completions/coffer.fish`.
    Completion(CompletionArgs),
    /// Save a login profile (~/.coffer/profiles/<name>.toml).
    Configure(ConfigureArgs),
    /// Remove a login profile and its cached token.
    Unconfigure(UnconfigureArgs),
    /// Log in and print the token (cached for the profile).
    Auth(AuthArgs),
    /// Check a token and show when it expires.
    ValidateToken(NoArgs),
    /// Show who you are: access ID, auth method, sub-claims, roles and
    /// when the token expires.
    Whoami(NoArgs),
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
    /// Rename an item, change its description, tags or max versions.
    UpdateItem(UpdateItemArgs),
    /// Print an item's tags.
    GetTags(NameArgs),
    /// Delete every item under a folder (pending deletion, all or nothing).
    DeleteItems(DeleteItemsArgs),
    /// Bring back an item pending deletion (Coffer only).
    RestoreItem(NameArgs),
    /// Create an API-key auth method (prints its access ID and key).
    CreateAuthMethod(CreateAuthMethodArgs),
    /// Create an OAuth2/JWT auth method for CI job ID tokens (GitLab, GitHub, OIDC).
    #[command(alias = "auth-method-create-oauth2")]
    CreateAuthMethodOauth2(CreateAuthMethodOauth2Args),
    /// Create an AWS IAM auth method (logins send a signed STS GetCallerIdentity request).
    #[command(alias = "auth-method-create-aws-iam")]
    CreateAuthMethodAwsIam(CreateAuthMethodAwsIamArgs),
    /// Create a Kubernetes auth method (service-account tokens).
    #[command(alias = "auth-method-create-k8s")]
    CreateAuthMethodK8s(CreateAuthMethodK8sArgs),
    /// Create an Azure AD (Entra ID) auth method (managed identities).
    #[command(alias = "auth-method-create-azure-ad")]
    CreateAuthMethodAzureAd(CreateAuthMethodAzureAdArgs),
    /// Create a GCP auth method (Google-signed ID tokens).
    #[command(alias = "auth-method-create-gcp")]
    CreateAuthMethodGcp(CreateAuthMethodGcpArgs),
    /// Explain which role associations a login proof (e.g. a CI job's JWT)
    /// matches, which fail and why, and the capabilities on a path.
    ExplainAccess(ExplainAccessArgs),
    /// Create a client-certificate auth method (certificates a CA signs;
    /// clients prove they hold the key by signing a challenge).
    #[command(alias = "auth-method-create-cert")]
    CreateAuthMethodCert(CreateAuthMethodCertArgs),
    /// Replace a client-certificate auth method's settings (or rename it).
    #[command(alias = "auth-method-update-cert")]
    UpdateAuthMethodCert(UpdateAuthMethodCertArgs),
    /// Create an OIDC auth method: people log in through an OpenID
    /// Provider in their browser (coffer auth --access-type oidc).
    #[command(alias = "auth-method-create-oidc")]
    CreateAuthMethodOidc(CreateAuthMethodOidcArgs),
    /// Replace an OIDC auth method's settings (or rename it).
    #[command(alias = "auth-method-update-oidc")]
    UpdateAuthMethodOidc(UpdateAuthMethodOidcArgs),
    /// Create a Universal Identity auth method (machines hold rotating UID tokens).
    #[command(alias = "auth-method-create-universal-identity")]
    CreateAuthMethodUniversalIdentity(CreateAuthMethodUniversalIdentityArgs),
    /// Make a root UID token for a Universal Identity auth method (prints the token).
    UidGenerateToken(UidGenerateTokenArgs),
    /// Rotate the UID token given with --uid-token (prints the new token; the old one stops working).
    UidRotateToken(NoArgs),
    /// Make a child of a UID token (--uid-token), or of the token --uid-token-id (admin).
    UidCreateChildToken(UidCreateChildTokenArgs),
    /// Revoke a UID token alone (revokeSelf) or with every token below it (revokeAll).
    UidRevokeToken(UidRevokeTokenArgs),
    /// Show the UID token tree below --uid-token, or every tree of --auth-method-name (admin).
    UidListChildren(UidListChildrenArgs),
    /// Show an auth method.
    #[command(alias = "auth-method-get")]
    GetAuthMethod(NameArgs),
    /// List auth methods.
    #[command(alias = "auth-method-list")]
    ListAuthMethods(NoArgs),
    /// Delete an auth method (its tokens stop working).
    #[command(alias = "auth-method-delete")]
    DeleteAuthMethod(NameArgs),
    /// Change the options every auth method has, or rename it (options not
    /// given stay; the access ID never changes).
    UpdateAuthMethod(UpdateAuthMethodArgs),
    /// Give an API-key auth method a new access key (printed once; the old
    /// key stops working at once).
    ResetAccessKey(NameArgs),
    /// Create an access role.
    CreateRole(CreateRoleArgs),
    /// Show an access role with its rules and associations.
    GetRole(NameArgs),
    /// List access roles.
    ListRoles(NoArgs),
    /// Delete an access role.
    DeleteRole(NameArgs),
    /// Rename a role or change its description or audit access (its rules
    /// and associations stay).
    UpdateRole(UpdateRoleArgs),
    /// Set the capabilities of a role on a path.
    SetRoleRule(SetRoleRuleArgs),
    /// Remove a role's rule on a path.
    DeleteRoleRule(DeleteRoleRuleArgs),
    /// Associate a role with an auth method.
    AssocRoleAm(AssocRoleAmArgs),
    /// Remove a role / auth method association.
    DeleteAssoc(DeleteAssocArgs),
    /// Replace an association's sub-claims and case flag.
    UpdateAssoc(UpdateAssocArgs),
    /// Create a database target: a MySQL/MariaDB or PostgreSQL admin
    /// connection for dynamic and rotated secrets (checked before it is stored).
    #[command(alias = "create-db-target")]
    TargetCreateDb(TargetCreateDbArgs),
    /// Change a database target (options not given stay; the new
    /// connection is checked first).
    #[command(alias = "update-db-target")]
    TargetUpdateDb(TargetUpdateDbArgs),
    /// Show a target (never its password).
    #[command(alias = "get-target")]
    TargetGet(NameArgs),
    /// Show a target's connection, with its password when you may read it.
    #[command(alias = "get-target-details")]
    TargetGetDetails(NameArgs),
    /// List targets.
    #[command(alias = "list-targets")]
    TargetList(TargetListArgs),
    /// Delete a target.
    #[command(alias = "delete-target")]
    TargetDelete(TargetDeleteArgs),
    /// Dynamic secrets: a database user per request (create, update, get,
    /// list, delete, get-value, tmp-creds-*).
    DynamicSecret(DynamicSecretCommand),
    /// Create a database user from a dynamic secret and print it as JSON
    /// ({"id", "user", "password", "ttl_in_minutes"}).
    #[command(alias = "dynamic-secret-get-value")]
    GetDynamicSecretValue(GetDynamicSecretValueArgs),
    /// Leases: the credentials dynamic secrets issued (list, revoke).
    Lease(LeaseCommand),
    /// Rotated secrets: database passwords Coffer changes (create, update,
    /// list, delete, rotate, get-value).
    RotatedSecret(RotatedSecretCommand),
    /// Print a rotated secret's username and password as JSON.
    #[command(alias = "rotated-secret-get-value")]
    GetRotatedSecretValue(GetRotatedSecretValueArgs),
    /// Rotate a rotated secret now.
    #[command(alias = "rotate-secret")]
    GatewayRotateSecret(NameArgs),
    /// Create a key kept by the server (AES to encrypt, RSA/EC/Ed25519 to
    /// sign); its private part never leaves it.
    #[command(alias = "create-dfc-key")]
    CreateKey(CreateKeyArgs),
    /// Create a key, or import one (--key-file-path), optionally with a
    /// certificate: the signer of SSH and PKI certificate issuers.
    CreateClassicKey(CreateClassicKeyArgs),
    /// Print the public key of an RSA, EC or Ed25519 key (PEM, then OpenSSH).
    GetRsaPublic(KeyNameArgs),
    /// Encrypt text with a key and print the ciphertext (base64).
    Encrypt(EncryptArgs),
    /// Decrypt a ciphertext made by encrypt and print the plaintext.
    Decrypt(DecryptArgs),
    /// Give a key a new version (old ciphertexts still decrypt).
    RotateKey(KeyNameArgs),
    /// Attach a certificate (e.g. from another CA) to a key.
    UpdateClassicKeyCertificate(UpdateClassicKeyCertificateArgs),
    /// Create an SSH certificate issuer: a CA key plus the users,
    /// principals, lifetime and extensions of its certificates.
    CreateSshCertIssuer(CreateSshCertIssuerArgs),
    /// Change an SSH certificate issuer (options not given stay).
    UpdateSshCertIssuer(UpdateSshCertIssuerArgs),
    /// Get an SSH certificate for your public key (written next to it as
    /// ssh-keygen does, or printed).
    GetSshCertificate(GetSshCertificateArgs),
    /// Create a PKI (X.509) certificate issuer: a CA key plus the names,
    /// usages and lifetime of its certificates.
    CreatePkiCertIssuer(CreatePkiCertIssuerArgs),
    /// Change a PKI certificate issuer (options not given stay).
    UpdatePkiCertIssuer(UpdatePkiCertIssuerArgs),
    /// Get an X.509 certificate for a CSR or a public key (printed as JSON).
    GetPkiCertificate(GetPkiCertificateArgs),
    /// Issued certificates: list them, revoke one, print an issuer's CRL.
    Cert(CertCommand),
    // The flat names of the wire and of the older Akeyless CLI.
    #[command(
        name = "gateway-create-producer-mysql",
        alias = "dynamic-secret-create-mysql",
        hide = true
    )]
    GatewayCreateProducerMysql(DynamicSecretMysqlArgs),
    #[command(
        name = "gateway-create-producer-postgresql",
        alias = "dynamic-secret-create-postgresql",
        hide = true
    )]
    GatewayCreateProducerPostgresql(DynamicSecretPostgresqlArgs),
    #[command(
        name = "gateway-update-producer-mysql",
        alias = "dynamic-secret-update-mysql",
        hide = true
    )]
    GatewayUpdateProducerMysql(DynamicSecretMysqlArgs),
    #[command(
        name = "gateway-update-producer-postgresql",
        alias = "dynamic-secret-update-postgresql",
        hide = true
    )]
    GatewayUpdateProducerPostgresql(DynamicSecretPostgresqlArgs),
    #[command(
        name = "gateway-get-producer",
        alias = "dynamic-secret-get",
        hide = true
    )]
    GatewayGetProducer(NameArgs),
    #[command(
        name = "gateway-list-producers",
        alias = "dynamic-secret-list",
        hide = true
    )]
    GatewayListProducers(NoArgs),
    #[command(
        name = "gateway-delete-producer",
        alias = "dynamic-secret-delete",
        hide = true
    )]
    GatewayDeleteProducer(NameArgs),
    #[command(
        name = "gateway-get-producer-tmp-creds",
        alias = "dynamic-secret-tmp-creds-get",
        hide = true
    )]
    GatewayGetProducerTmpCreds(NameArgs),
    #[command(
        name = "gateway-revoke-producer-tmp-creds",
        alias = "dynamic-secret-tmp-creds-delete",
        hide = true
    )]
    GatewayRevokeProducerTmpCreds(TmpCredsDeleteArgs),
    #[command(
        name = "dynamic-secret-tmp-creds-update",
        alias = "gateway-update-tmp-users",
        hide = true
    )]
    DynamicSecretTmpCredsUpdate(TmpCredsUpdateArgs),
    #[command(name = "rotated-secret-create-mysql", hide = true)]
    RotatedSecretCreateMysql(RotatedSecretCreateArgs),
    #[command(name = "rotated-secret-create-postgresql", hide = true)]
    RotatedSecretCreatePostgresql(RotatedSecretCreateArgs),
    #[command(
        name = "rotated-secret-update-mysql",
        alias = "update-rotated-secret",
        hide = true
    )]
    RotatedSecretUpdateMysql(RotatedSecretUpdateArgs),
    #[command(name = "rotated-secret-update-postgresql", hide = true)]
    RotatedSecretUpdatePostgresql(RotatedSecretUpdateArgs),
    #[command(name = "rotated-secret-list", hide = true)]
    RotatedSecretList(NoArgs),
    #[command(name = "rotated-secret-delete", hide = true)]
    RotatedSecretDelete(NameArgs),
    #[command(name = "cert-list", alias = "list-certificates", hide = true)]
    CertList(CertListArgs),
    #[command(name = "revoke-certificate", hide = true)]
    RevokeCertificate(CertRevokeArgs),
    /// Read and verify the audit log (online, or offline with --data-dir/--storage).
    Audit(AuditCommand),
    /// Operator tools on the storage: backup, restore, root-key and
    /// data-key rotation.
    Operator(crate::commands::operator::OperatorCommand),
    /// Local development helpers.
    Dev(DevCommand),
    /// Resolve GitLab `secrets:` blocks in any CI, run commands with
    /// secrets injected and masked, Azure DevOps task equivalents.
    Ci(crate::ci_args::CiCommand),
}

/// Flags shared by every command that talks to a gateway.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Gateway URL (precedence: this flag, COFFER_GATEWAY_URL, the profile, http://127.0.0.1:8200; AKEYLESS_* credentials: AKEYLESS_GATEWAY_URL, else this flag or COFFER_GATEWAY_URL).
    #[arg(long, env = "COFFER_GATEWAY_URL")]
    pub gateway_url: Option<String>,
    /// Login profile.
    #[arg(long, env = "COFFER_PROFILE", default_value = "default")]
    pub profile: String,
    /// Use this token instead of the profile's cached or new login
    /// (else COFFER_TOKEN, else AKEYLESS_TOKEN).
    #[arg(long, value_parser = secret)]
    pub token: Option<SecretString>,
    /// Use this Universal Identity token.
    #[arg(long, value_parser = secret, conflicts_with = "token")]
    pub uid_token: Option<SecretString>,
    /// `--json` or `--jq-expression` (global flags of `coffer`; see
    /// `output::json_wanted`).
    #[arg(skip = crate::output::json_wanted())]
    pub json: bool,
    /// Extra CA certificate (PEM) to trust for the gateway.
    #[arg(long, env = "COFFER_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Allow a plain http:// gateway URL whose host is not loopback
    /// (refused by default: credentials would travel unencrypted). Also
    /// the profile's allow_insecure_http, for the profile's own gateway.
    #[arg(
        long,
        env = "COFFER_ALLOW_INSECURE_HTTP",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    pub allow_insecure_http: Option<bool>,
}

/// Parse a flag value straight into a [`SecretString`].
pub(crate) fn secret(value: &str) -> Result<SecretString, Infallible> {
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
pub(crate) struct ServerCommand {
    #[command(flatten)]
    pub args: ServerArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ConfigureArgs {
    /// Profile name.
    #[arg(long, env = "COFFER_PROFILE", default_value = "default")]
    pub profile: String,
    /// Access ID (p-…).
    #[arg(long)]
    pub access_id: String,
    /// Access key (for access_key/api_key; "-" reads it from standard input,
    /// without echo on a terminal). Else COFFER_ACCESS_KEY, unless
    /// COFFER_ACCESS_ID names another access ID.
    #[arg(long, value_parser = secret, allow_hyphen_values = true)]
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
    /// Store allow_insecure_http in the profile: its gateway may be a plain
    /// http:// URL to a host that is not loopback (e.g. behind a TLS proxy).
    #[arg(long)]
    pub allow_insecure_http: bool,
    /// Save without logging in first (by default the profile is saved only
    /// after a login with it succeeded).
    #[arg(long)]
    pub no_login_check: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UnconfigureArgs {
    /// Profile name.
    #[arg(long, env = "COFFER_PROFILE", default_value = "default")]
    pub profile: String,
}

#[derive(Debug, Args)]
pub(crate) struct AuthArgs {
    /// Access ID (default: the profile's).
    #[arg(long)]
    pub access_id: Option<String>,
    /// access_key (alias api_key), jwt (alias oidc), k8s, aws_iam,
    /// azure_ad, gcp, universal_identity or cert.
    #[arg(long)]
    pub access_type: Option<String>,
    /// Access key ("-" reads it from standard input). Without --access-id,
    /// COFFER_ACCESS_ID comes with COFFER_ACCESS_KEY (AKEYLESS_… likewise).
    #[arg(long, value_parser = secret, allow_hyphen_values = true)]
    pub access_key: Option<SecretString>,
    /// JWT for --access-type jwt ("-" reads it from standard input).
    #[arg(long, value_parser = secret, allow_hyphen_values = true)]
    pub jwt: Option<SecretString>,
    /// Identity document for aws_iam, azure_ad and gcp (base64, as the
    /// cloud-id tools print it; "-" reads it from standard input).
    #[arg(long, value_parser = secret, allow_hyphen_values = true)]
    pub cloud_id: Option<SecretString>,
    /// gcp: the audience the ID token was requested for.
    #[arg(long)]
    pub gcp_audience: Option<String>,
    /// k8s: the service-account token (raw or base64; default: the pod's
    /// /var/run/secrets/kubernetes.io/serviceaccount/token).
    #[arg(long, value_parser = secret, allow_hyphen_values = true)]
    pub k8s_service_account_token: Option<SecretString>,
    /// k8s: auth config name (accepted for Akeyless compatibility).
    #[arg(long)]
    pub k8s_auth_config_name: Option<String>,
    /// cert: the client certificate (PEM file; intermediates may follow it).
    #[arg(long)]
    pub cert_file_name: Option<PathBuf>,
    /// cert: the certificate's private key (PEM file). It signs the
    /// server's login challenge here and is never sent.
    #[arg(long)]
    pub key_file_name: Option<PathBuf>,
    /// oidc: print the login URL only (do not start a browser).
    #[arg(long)]
    pub no_browser: bool,
    /// oidc: the loopback port the provider redirects the browser to
    /// (http://127.0.0.1:PORT/callback must be an allowed redirect URI).
    #[arg(long, default_value_t = 8250)]
    pub redirect_port: u16,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CreateAuthMethodOidcArgs {
    /// Auth method name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The provider's issuer URL.
    #[arg(long)]
    pub issuer: String,
    /// The client ID Coffer is registered with at the provider.
    #[arg(long)]
    pub client_id: String,
    /// The client secret ("-" reads it from standard input; stored sealed).
    #[arg(long, env = "COFFER_OIDC_CLIENT_SECRET", value_parser = secret, hide_env_values = true, allow_hyphen_values = true)]
    pub client_secret: SecretString,
    /// The aud of the ID tokens (default: the client ID).
    #[arg(long)]
    pub audience: Option<String>,
    /// The claim naming the person (default sub).
    #[arg(long)]
    pub unique_identifier: Option<String>,
    /// Scopes the provider must grant (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub required_scopes: Vec<String>,
    /// Prefix added to every required scope (e.g. api://coffer/).
    #[arg(long)]
    pub required_scopes_prefix: Option<String>,
    /// Redirect URIs logins may use (default http://127.0.0.1:8250/callback).
    #[arg(long, value_delimiter = ',')]
    pub allowed_redirect_uri: Vec<String>,
    /// Unix time after which it cannot log in (0 = never).
    #[arg(long)]
    pub access_expires: Option<i64>,
    #[command(flatten)]
    pub common: AuthMethodCommonArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateAuthMethodOidcArgs {
    #[command(flatten)]
    pub settings: CreateAuthMethodOidcArgs,
    /// Rename the method (its access ID stays).
    #[arg(long)]
    pub new_name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct CreateAuthMethodCertArgs {
    /// Auth method name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The trusted CA certificate(s), PEM, base64-encoded.
    #[arg(
        long,
        conflicts_with = "certificate_file",
        required_unless_present = "certificate_file"
    )]
    pub certificate_data: Option<String>,
    /// The trusted CA certificate(s): a PEM file (instead of --certificate-data).
    #[arg(long)]
    pub certificate_file: Option<PathBuf>,
    /// The certificate field naming the caller: common_name (default),
    /// organizational_unit, dns_sans, email_sans, uri_sans or serial_number.
    #[arg(long)]
    pub unique_identifier: Option<String>,
    /// Common names allowed (globs; repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub bound_common_names: Vec<String>,
    /// DNS SANs allowed (globs).
    #[arg(long, value_delimiter = ',')]
    pub bound_dns_sans: Vec<String>,
    /// E-mail SANs allowed (globs).
    #[arg(long, value_delimiter = ',')]
    pub bound_email_sans: Vec<String>,
    /// URI SANs allowed (globs).
    #[arg(long, value_delimiter = ',')]
    pub bound_uri_sans: Vec<String>,
    /// Organizational units allowed (globs).
    #[arg(long, value_delimiter = ',')]
    pub bound_organizational_units: Vec<String>,
    /// Extensions required, as oid:value-glob (repeatable).
    #[arg(long)]
    pub bound_extensions: Vec<String>,
    /// Serial numbers (hex) refused (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub revoked_cert_ids: Vec<String>,
    /// Unix time after which it cannot log in (0 = never).
    #[arg(long)]
    pub access_expires: Option<i64>,
    #[command(flatten)]
    pub common: AuthMethodCommonArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateAuthMethodCertArgs {
    #[command(flatten)]
    pub settings: CreateAuthMethodCertArgs,
    /// Rename the method (its access ID stays).
    #[arg(long)]
    pub new_name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct NoArgs {
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct NameArgs {
    /// Name.
    #[arg(short = 'n', long)]
    pub name: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct GetSecretValueArgs {
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
pub(crate) struct CreateSecretArgs {
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
pub(crate) struct UpdateSecretValArgs {
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
pub(crate) struct DescribeItemArgs {
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
pub(crate) struct ListItemsArgs {
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
    /// Only the items pending deletion (restore them with restore-item).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub pending_deletion: Option<bool>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DeleteItemArgs {
    /// Item name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Version to delete (0: the latest; -1 or absent: the whole item).
    #[arg(long, allow_negative_numbers = true)]
    pub version: Option<i64>,
    /// Days the item stays pending deletion, restorable with restore-item
    /// (default 7; 0 deletes at once).
    #[arg(long, allow_negative_numbers = true)]
    pub delete_in_days: Option<i64>,
    /// Delete at once instead of pending deletion.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub delete_immediately: Option<bool>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateItemArgs {
    /// Current item name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// New item name (needs read, update and delete on the old name and
    /// create on the new one).
    #[arg(long)]
    pub new_name: Option<String>,
    /// New description.
    #[arg(long)]
    pub description: Option<String>,
    /// Tag to add (repeatable).
    #[arg(long)]
    pub add_tag: Vec<String>,
    /// Tag to remove (repeatable).
    #[arg(long)]
    pub rm_tag: Vec<String>,
    /// Versions to keep (0: the server default).
    #[arg(long)]
    pub max_versions: Option<i64>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DeleteItemsArgs {
    /// Folder whose items to delete (recursively).
    #[arg(long)]
    pub path: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CreateAuthMethodArgs {
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
    /// Revoke the dynamic-secret credentials a token of this method
    /// obtained when that token is revoked or expires (CI jobs).
    #[arg(long)]
    pub lease_tied_to_token: bool,
}

impl From<AuthMethodCommonArgs> for coffer_client::ops::AuthMethodCommon {
    fn from(a: AuthMethodCommonArgs) -> Self {
        coffer_client::ops::AuthMethodCommon {
            bound_ips: a.bound_ips,
            jwt_ttl: a.jwt_ttl,
            force_sub_claims: a.force_sub_claims,
            description: a.description,
            lease_tied_to_token: a.lease_tied_to_token,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct CreateAuthMethodOauth2Args {
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
    /// The aud of the tokens meant for Coffer (required, unless
    /// --bound-client-ids is given for tokens without aud).
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
pub(crate) struct CreateAuthMethodAwsIamArgs {
    /// Auth method name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// AWS account IDs (12 digits) allowed to log in (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',', required = true)]
    pub bound_aws_account_id: Vec<String>,
    /// STS endpoint the signed requests are sent to (default https://sts.amazonaws.com;
    /// https, http only for loopback). Clients must sign for this same URL.
    #[arg(long)]
    pub sts_url: Option<String>,
    /// Allowed caller ARNs, `*` wildcards allowed; an assumed role also
    /// matches its role ARN arn:aws:iam::<account>:role/<name>.
    #[arg(long, value_delimiter = ',')]
    pub bound_arn: Vec<String>,
    /// Allowed role names (assumed roles).
    #[arg(long, value_delimiter = ',')]
    pub bound_role_name: Vec<String>,
    /// Allowed role IDs (AROA…).
    #[arg(long, value_delimiter = ',')]
    pub bound_role_id: Vec<String>,
    /// Allowed role session names (for EC2 instance profiles: instance IDs).
    #[arg(long, value_delimiter = ',')]
    pub bound_resource_id: Vec<String>,
    /// Allowed IAM user names.
    #[arg(long, value_delimiter = ',')]
    pub bound_user_name: Vec<String>,
    /// Allowed user IDs (AIDA…, or the role ID of an assumed role).
    #[arg(long, value_delimiter = ',')]
    pub bound_user_id: Vec<String>,
    /// Unix time after which it cannot log in (0 = never).
    #[arg(long)]
    pub access_expires: Option<i64>,
    #[command(flatten)]
    pub common: AuthMethodCommonArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CreateAuthMethodK8sArgs {
    /// Auth method name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Allowed namespaces (globs; repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub bound_namespaces: Vec<String>,
    /// Allowed service-account names (globs).
    #[arg(long, value_delimiter = ',')]
    pub bound_sa_names: Vec<String>,
    /// Allowed pod names (globs).
    #[arg(long, value_delimiter = ',')]
    pub bound_pod_names: Vec<String>,
    /// The token audience (required with --jwks-uri/--jwks-json-data: the
    /// audience of a token projected for Coffer).
    #[arg(long)]
    pub audience: Option<String>,
    /// The cluster's service-account issuer (with --jwks-uri/--jwks-json-data).
    #[arg(long)]
    pub k8s_issuer: Option<String>,
    /// The cluster issuer's JWKS URL.
    #[arg(long, conflicts_with_all = ["jwks_json_data", "k8s_host"])]
    pub jwks_uri: Option<String>,
    /// The cluster issuer's JWKS, base64 (`kubectl get --raw /openid/v1/jwks | base64 -w0`).
    #[arg(long, conflicts_with = "k8s_host")]
    pub jwks_json_data: Option<String>,
    /// API server URL, to verify tokens with the TokenReview API instead.
    #[arg(long, required_unless_present_any = ["jwks_uri", "jwks_json_data"])]
    pub k8s_host: Option<String>,
    /// API server CA certificate (PEM file).
    #[arg(long)]
    pub k8s_ca_cert: Option<PathBuf>,
    /// Token of a service account allowed to create TokenReviews ("-" reads standard input).
    #[arg(long, value_parser = secret, allow_hyphen_values = true)]
    pub token_reviewer_jwt: Option<SecretString>,
    #[command(flatten)]
    pub common: AuthMethodCommonArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CreateAuthMethodAzureAdArgs {
    /// Auth method name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// The Entra ID tenant whose identities may log in.
    #[arg(long)]
    pub bound_tenant_id: String,
    /// Issuer (default: the tenant's v1 or v2 issuer).
    #[arg(long)]
    pub issuer: Option<String>,
    /// JWKS URL (default https://login.microsoftonline.com/common/discovery/keys).
    #[arg(long)]
    pub jwks_uri: Option<String>,
    /// Audience: the resource the token is requested for (default
    /// api://coffer; https://management.azure.com/ only by explicit choice).
    #[arg(long)]
    pub audience: Option<String>,
    /// Claim naming the caller (default oid).
    #[arg(long)]
    pub unique_identifier: Option<String>,
    /// Service principal (object or app) IDs.
    #[arg(long, value_delimiter = ',')]
    pub bound_spid: Vec<String>,
    /// Group IDs (groups claim).
    #[arg(long, value_delimiter = ',')]
    pub bound_group_id: Vec<String>,
    /// Subscription IDs.
    #[arg(long, value_delimiter = ',')]
    pub bound_sub_id: Vec<String>,
    /// Resource groups.
    #[arg(long, value_delimiter = ',')]
    pub bound_rg_id: Vec<String>,
    /// Resource providers (e.g. Microsoft.Compute).
    #[arg(long, value_delimiter = ',')]
    pub bound_providers: Vec<String>,
    /// Resource types (e.g. virtualMachines).
    #[arg(long, value_delimiter = ',')]
    pub bound_resource_types: Vec<String>,
    /// Resource names.
    #[arg(long, value_delimiter = ',')]
    pub bound_resource_names: Vec<String>,
    /// Full resource IDs.
    #[arg(long, value_delimiter = ',')]
    pub bound_resource_id: Vec<String>,
    #[command(flatten)]
    pub common: AuthMethodCommonArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct CreateAuthMethodGcpArgs {
    /// Auth method name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// iam (service-account ID tokens) or gce (instance identity tokens).
    #[arg(long = "type", default_value = "iam")]
    pub kind: String,
    /// Audience the tokens must carry (default coffer).
    #[arg(long)]
    pub audience: Option<String>,
    /// JWKS URL (default Google's).
    #[arg(long)]
    pub jwks_uri: Option<String>,
    /// Claim naming the caller (default: email, else sub).
    #[arg(long)]
    pub unique_identifier: Option<String>,
    /// Service-account emails or IDs.
    #[arg(long, value_delimiter = ',')]
    pub bound_service_accounts: Vec<String>,
    /// Projects.
    #[arg(long, value_delimiter = ',')]
    pub bound_projects: Vec<String>,
    /// Zones (gce).
    #[arg(long, value_delimiter = ',')]
    pub bound_zones: Vec<String>,
    /// Regions (gce).
    #[arg(long, value_delimiter = ',')]
    pub bound_regions: Vec<String>,
    #[command(flatten)]
    pub common: AuthMethodCommonArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ExplainAccessArgs {
    /// Access ID of the auth method the job logs in to.
    #[arg(long)]
    pub access_id: String,
    /// The job's JWT ("-" reads it from standard input).
    #[arg(long, value_parser = secret, allow_hyphen_values = true)]
    pub jwt: Option<SecretString>,
    /// Cloud identity document (aws_iam, azure_ad, gcp).
    #[arg(long, value_parser = secret, allow_hyphen_values = true)]
    pub cloud_id: Option<SecretString>,
    /// gcp: the audience the ID token was requested for.
    #[arg(long)]
    pub gcp_audience: Option<String>,
    /// k8s: the service-account token.
    #[arg(long, value_parser = secret, allow_hyphen_values = true)]
    pub k8s_service_account_token: Option<SecretString>,
    /// Path to compute capabilities on (e.g. /app/db).
    #[arg(long)]
    pub path: Option<String>,
    /// Rule type of --path (default item-rule).
    #[arg(long)]
    pub rule_type: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct CreateAuthMethodUniversalIdentityArgs {
    /// Auth method name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// Lifetime of a UID token, renewed by each rotation, in minutes (default 60).
    #[arg(long)]
    pub ttl: Option<i64>,
    /// Root tokens cannot be rotated (true/false, default false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub deny_rotate: Option<bool>,
    /// Root tokens cannot create child tokens (true/false, default false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub deny_inheritance: Option<bool>,
    /// Longest child-token TTL in minutes (default 43200).
    #[arg(long)]
    pub child_ttl_limit: Option<i64>,
    /// Deepest token level, root = 1 (default 200).
    #[arg(long)]
    pub tree_length: Option<i64>,
    /// Unix time after which it cannot log in (0 = never).
    #[arg(long)]
    pub access_expires: Option<i64>,
    #[command(flatten)]
    pub common: AuthMethodCommonArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UidGenerateTokenArgs {
    /// The Universal Identity auth method.
    #[arg(long)]
    pub auth_method_name: String,
    /// Description of the token.
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UidCreateChildTokenArgs {
    /// The auth method (admin form, with --uid-token-id).
    #[arg(long)]
    pub auth_method_name: Option<String>,
    /// The parent token's ID (admin form).
    #[arg(long)]
    pub uid_token_id: Option<String>,
    /// Child TTL in minutes (default and maximum: the parent's).
    #[arg(long)]
    pub child_ttl: Option<i64>,
    /// The child cannot be rotated.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub child_deny_rotate: Option<bool>,
    /// The child cannot create children.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub child_deny_inheritance: Option<bool>,
    /// Description of the child token.
    #[arg(long, alias = "comment")]
    pub description: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UidRevokeTokenArgs {
    /// ID of the token to revoke (uid-…).
    #[arg(long)]
    pub revoke_token: String,
    /// revokeSelf (this token only) or revokeAll (with every token below it).
    #[arg(long, value_parser = ["revokeSelf", "revokeAll"])]
    pub revoke_type: String,
    /// The auth method (admin form; not needed with --uid-token).
    #[arg(long)]
    pub auth_method_name: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UidListChildrenArgs {
    /// The auth method (admin form; not needed with --uid-token).
    #[arg(long)]
    pub auth_method_name: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

impl From<CreateAuthMethodUniversalIdentityArgs>
    for coffer_client::ops::CreateAuthMethodUniversalIdentity
{
    fn from(a: CreateAuthMethodUniversalIdentityArgs) -> Self {
        coffer_client::ops::CreateAuthMethodUniversalIdentity {
            name: a.name,
            ttl: a.ttl,
            deny_rotate: a.deny_rotate,
            deny_inheritance: a.deny_inheritance,
            child_ttl_limit: a.child_ttl_limit,
            tree_length: a.tree_length,
            access_expires: a.access_expires,
            common: a.common.into(),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct DevCommand {
    #[command(subcommand)]
    pub command: DevSubcommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DevSubcommand {
    /// Run a local OIDC issuer (discovery document + JWKS) on loopback, or
    /// mint ID tokens from one (`coffer dev oidc mint`). For testing only.
    Oidc(DevOidcArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub(crate) struct DevOidcArgs {
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
pub(crate) enum DevOidcAction {
    /// Mint an ID token from a running `coffer dev oidc` and print it.
    Mint(DevOidcMintArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DevOidcMintArgs {
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
pub(crate) struct CreateRoleArgs {
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
pub(crate) struct SetRoleRuleArgs {
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
pub(crate) struct DeleteRoleRuleArgs {
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
pub(crate) struct AssocRoleAmArgs {
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
    pub(crate) fn sub_claims_map(&self) -> BTreeMap<String, Vec<String>> {
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
pub(crate) struct UpdateAssocArgs {
    /// Association ID.
    #[arg(long)]
    pub assoc_id: String,
    /// Sub-claim key=value1,value2 (repeatable); none clears them.
    #[arg(short = 's', long = "sub-claim", alias = "sub-claims", value_parser = sub_claim)]
    pub sub_claims: Vec<(String, Vec<String>)>,
    /// Match sub-claims case-sensitively (true/false, default true).
    #[arg(short = 'c', long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub case_sensitive: Option<bool>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

impl UpdateAssocArgs {
    /// Repeated keys accumulate their values.
    pub(crate) fn sub_claims_map(&self) -> BTreeMap<String, Vec<String>> {
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
pub(crate) struct UpdateRoleArgs {
    /// Role name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// New name.
    #[arg(long)]
    pub new_name: Option<String>,
    /// New description.
    #[arg(long)]
    pub description: Option<String>,
    /// Audit log access: none, own or all.
    #[arg(long)]
    pub audit_access: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct UpdateAuthMethodArgs {
    /// Auth method name.
    #[arg(short = 'n', long)]
    pub name: String,
    /// New name (the access ID stays).
    #[arg(long)]
    pub new_name: Option<String>,
    /// Access expiry, Unix seconds (0 = never).
    #[arg(long)]
    pub access_expires: Option<i64>,
    /// Allowed client addresses or CIDRs (repeatable or comma-separated;
    /// an empty value removes every bound).
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub bound_ips: Option<Vec<String>>,
    /// Token lifetime in minutes (0 = server default).
    #[arg(long)]
    pub jwt_ttl: Option<i64>,
    /// Require sub-claims on every role association (true/false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub force_sub_claims: Option<bool>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DeleteAssocArgs {
    /// Association ID.
    #[arg(long)]
    pub assoc_id: String,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct AuditCommand {
    #[command(subcommand)]
    pub command: AuditSubcommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AuditSubcommand {
    /// List audit records (newest filters first applied by the server).
    List(AuditListArgs),
    /// Verify the audit hash chain; exits non-zero when it is broken.
    Verify(AuditVerifyArgs),
    /// Export audit records as JSON Lines (one full record per line, with
    /// seq, prev_hash and hash so links can be re-checked), e.g. for a SIEM.
    Export(AuditExportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AuditListArgs {
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
pub(crate) struct AuditExportArgs {
    /// Records at or after this time (RFC 3339 or Unix seconds).
    #[arg(long)]
    pub since: Option<String>,
    /// Records before this time (RFC 3339 or Unix seconds).
    #[arg(long)]
    pub until: Option<String>,
    /// Write to this file (created mode 0600, replaced) instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub offline: OfflineArgs,
    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct AuditVerifyArgs {
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

        let cli = parse(&["describe-item", "-n", "/a", "--show-versions", "--json"]);
        assert!(cli.json);
        let Command::DescribeItem(d) = cli.command else {
            panic!()
        };
        assert_eq!(d.show_versions, Some(true));

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
    fn aws_iam_flags() {
        let Command::CreateAuthMethodAwsIam(a) = parse(&[
            "auth-method-create-aws-iam",
            "-n",
            "/aws",
            "--bound-aws-account-id",
            "123456789012,210987654321",
            "--bound-arn",
            "arn:aws:iam::123456789012:role/ci-*",
            "--bound-role-name",
            "ci-deployer",
            "--sts-url",
            "https://sts.us-east-1.amazonaws.com",
            "--jwt-ttl",
            "30",
        ])
        .command
        else {
            panic!()
        };
        assert_eq!(a.bound_aws_account_id, ["123456789012", "210987654321"]);
        assert_eq!(a.bound_arn, ["arn:aws:iam::123456789012:role/ci-*"]);
        assert_eq!(a.bound_role_name, ["ci-deployer"]);
        assert_eq!(
            a.sts_url.as_deref(),
            Some("https://sts.us-east-1.amazonaws.com")
        );
        assert_eq!(a.common.jwt_ttl, Some(30));
        assert!(
            Cli::try_parse_from(["coffer", "create-auth-method-aws-iam", "--name", "x"]).is_err(),
            "bound-aws-account-id is required"
        );
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

/// `coffer completion SHELL`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompletionArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    pub shell: clap_complete::Shell,
}
